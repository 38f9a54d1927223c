"""The PII gate as the registry knows it: one text per record (`checks.pii.field` or the record's text)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from data_checks.formats import record_text
from data_checks.gate import GateContext, GateSpec
from data_checks.html_parts import Markup, facts_table, image, png, table
from data_checks.pii.config import PiiResult
from data_checks.pii.scan import PiiScan


class PiiGate:
    """`PiiScan` over the configured field of each record."""

    def __init__(self, context: GateContext) -> None:
        self.fmt, self.field = context.fmt, context.config.pii.field
        self.scan = PiiScan(context.config.pii)

    def add(self, record: dict[str, Any], line: int, text: str | None) -> None:
        self.scan.add(text if self.field is None else record_text(record, self.fmt, self.field))

    def result(self, against: Iterator[dict[str, Any]] | None = None) -> PiiResult:
        return self.scan.result()


def _counts(by_type: dict[str, int]) -> str:
    return ", ".join(f"{t} {n}" for t, n in sorted(by_type.items(), key=lambda kv: -kv[1]))


def _summary(result: dict[str, Any]) -> str:
    where = "leaves" if result["data_leaves_trust_boundary"] else "stays inside"
    n = result["records_with_pii"]
    line = f"{n} record{'' if n == 1 else 's'} with PII ({_counts(result['by_type']) or 'none'})"
    low = result.get("by_confidence", {}).get("low", {})
    if low and result.get("fail_on_confidence", "high") == "high":
        line += f"; low confidence, not counted: {_counts(low)}"
    placeholders = result.get("placeholders", {})
    if placeholders and not result.get("count_placeholders"):
        line += f"; placeholders, not counted: {_counts(placeholders)}"
    return f"{line}; data {where} the trust boundary"


_KINDS = (("high", "High-confidence findings"), ("low", "Low-confidence findings"),
          ("placeholder", "Placeholders (known-fake values)"))


def _html_section(result: dict[str, Any]) -> str:
    kinds = {"high": result.get("by_confidence", {}).get("high", {}),
             "low": result.get("by_confidence", {}).get("low", {}), "placeholder": result.get("placeholders", {})}
    types = sorted({t for tally in kinds.values() for t in tally},
                   key=lambda t: -sum(tally.get(t, 0) for tally in kinds.values()))

    def draw(ax: Any) -> None:  # records per type, stacked by kind of finding
        from matplotlib.ticker import MaxNLocator

        left = [0] * len(types)
        for kind, colour in (("high", "#b2182b"), ("low", "#ef8a62"), ("placeholder", "#999999")):
            values = [kinds[kind].get(t, 0) for t in types]
            ax.barh(types, values, left=left, color=colour, label=kind)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("records")
        ax.legend(loc="lower right", fontsize="small")

    counted = "every finding" if result.get("fail_on_confidence") == "low" else "high-confidence findings"
    facts = [("records with PII that counts", result["records_with_pii"]),
             ("what counts", counted + (" and placeholders" if result.get("count_placeholders") else "")),
             ("data leaves trust boundary", result["data_leaves_trust_boundary"])]
    for kind, title in _KINDS:
        tally = (result.get("placeholders", {}) if kind == "placeholder"
                 else result.get("by_confidence", {}).get(kind, {}))
        facts.append((title.split(" (")[0].lower() + " (records per type)", _counts(tally) or "none"))
    chart = image(png(draw, size=(6.5, 1.2 + 0.45 * len(types))), "findings by type and kind") if types else ""
    html_out = facts_table(facts) + chart
    for kind, title in _KINDS:
        examples = [e for e in result["examples"]
                    if ("placeholder" if e.get("placeholder") else e.get("confidence", "high")) == kind]
        if not examples:
            continue
        fake = kind == "placeholder"
        rows = [[e["record"], e["type"], Markup(f"<code>{html.escape(e.get('shape', ''))}</code>"),
                 *([e["placeholder"]] if fake else []), Markup(f"<code>{html.escape(e['excerpt'])}</code>")]
                for e in examples]
        html_out += f"<h3>{html.escape(title)}</h3>" + table(
            ["record", "type", "shape", *(["why fake"] if fake else []), "excerpt (redacted)"], rows)
    return html_out


GATE = GateSpec("pii", PiiGate, _summary, _html_section)
