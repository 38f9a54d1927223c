"""The near-duplicate gate as the registry knows it: texts sketched during the pass, compared at the end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from data_checks.dedup.config import DedupResult
from data_checks.dedup.gate import NearDuplicateFinder
from data_checks.formats import record_text
from data_checks.gate import GateContext, GateSpec
from data_checks.html_parts import facts_table, image, png, table


class DedupGate:
    """Hands each record's text (`checks.dedup.field` or the record's text) to a `NearDuplicateFinder`,
    which sketches the texts on its worker processes while the records after them are read; the
    clusters at the end."""

    def __init__(self, context: GateContext) -> None:
        self.fmt, self.config = context.fmt, context.config.dedup
        self.finder = NearDuplicateFinder(self.config)

    def add(self, record: dict[str, Any], line: int, text: str | None) -> None:
        field = self.config.field
        self.finder.add(text if field is None else record_text(record, self.fmt, field))

    def result(self, against: Iterator[dict[str, Any]] | None = None) -> DedupResult:
        against_texts = None if against is None else [record_text(r, self.fmt, self.config.field) for r in against]
        return self.finder.result(against_texts)


def _summary(result: dict[str, Any]) -> str:
    detail = (f"near-duplicates {result['near_duplicate_rate']:.2%} (max {result['max_rate']:.2%}), "
              f"exact {result['exact_duplicate_rate']:.2%}, {len(result['clusters'])} clusters listed")
    contamination = result.get("contamination")
    if contamination:
        detail += f"; {contamination['contaminated']} of {contamination['records']} eval records contaminated"
    return detail


def _html_section(result: dict[str, Any]) -> str:
    sizes = Counter(len(c) for c in result["clusters"])
    facts = [("near-duplicate rate", f"{result['near_duplicate_rate']:.2%}"),
             ("exact-duplicate rate", f"{result['exact_duplicate_rate']:.2%}"),
             ("threshold (Jaccard)", result["threshold"]), ("bands x rows", f"{result['bands']} x {result['rows']}"),
             ("clusters listed", len(result["clusters"]))]
    if result.get("contamination"):
        c = result["contamination"]
        facts.append(("contaminated eval records", f"{c['contaminated']} of {c['records']}"))

    def draw(ax: Any) -> None:
        ax.bar([str(s) for s in sorted(sizes)], [sizes[s] for s in sorted(sizes)])
        ax.set_xlabel("cluster size (records)")
        ax.set_ylabel("clusters")

    listed = [[i + 1, len(c), ", ".join(str(r) for r in c[:12]) + (" ..." if len(c) > 12 else "")]
              for i, c in enumerate(result["clusters"][:MAX_CLUSTER_ROWS])]
    return (facts_table(facts) + (image(png(draw), "duplicate cluster sizes") if sizes else "")
            + (table(["cluster", "records", f"record numbers (first {MAX_CLUSTER_ROWS} clusters)"], listed)
               if listed else ""))


MAX_CLUSTER_ROWS = 20


GATE = GateSpec("dedup", DedupGate, _summary, _html_section, reads_against=True)
