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


def _summary(result: dict[str, Any]) -> str:
    types = ", ".join(f"{t} {n}" for t, n in sorted(result["by_type"].items(), key=lambda kv: -kv[1]))
    where = "leaves" if result["data_leaves_trust_boundary"] else "stays inside"
    return f"{result['records_with_pii']} records with PII ({types or 'none'}); data {where} the trust boundary"


def _html_section(result: dict[str, Any]) -> str:
    by_type = result["by_type"]

    def draw(ax: Any) -> None:
        names = sorted(by_type, key=by_type.get, reverse=True)
        ax.barh(names, [by_type[n] for n in names])
        ax.set_xlabel("occurrences")

    facts = [("records with PII", result["records_with_pii"]),
             ("data leaves trust boundary", result["data_leaves_trust_boundary"])]
    rows = [[e["record"], e["type"], Markup(f"<code>{html.escape(e['excerpt'])}</code>")]
            for e in result["examples"][:50]]
    return (facts_table(facts) + (image(png(draw), "PII by type") if by_type else "")
            + table(["record", "type", "excerpt (redacted)"], rows))


GATE = GateSpec("pii", PiiGate, _summary, _html_section)
