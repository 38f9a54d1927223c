"""The agreement gate as the registry knows it: judgements read from each record, kappa at the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_checks.agreement.config import AgreementResult
from data_checks.agreement.gate import compute_agreement
from data_checks.agreement.reading import JudgementReader
from data_checks.gate import GateContext, GateSpec
from data_checks.html_parts import facts_table, image, png


class AgreementGate:
    """`JudgementReader` fed every record, then `compute_agreement` on what it read."""

    def __init__(self, context: GateContext) -> None:
        self.config = context.config.agreement
        self.reader = JudgementReader(context.path, self.config)

    def add(self, record: dict[str, Any], line: int, text: str | None) -> None:
        self.reader.add(record, line)

    def result(self, against: Iterator[dict[str, Any]] | None = None) -> AgreementResult:
        return compute_agreement(self.reader.judgements(), self.config)


def _summary(result: dict[str, Any]) -> str:
    if result["kappa"] is None:
        return f"{result['method']} kappa undefined: {result['undefined_reason']}"
    return (f"{result['method']} kappa {result['kappa']:.3f} (min {result['min_kappa']}), "
            f"{len(result['annotators'])} annotators, {result['items']} items")


def _html_section(result: dict[str, Any]) -> str:
    kappa = result["kappa"]
    facts = [("method", result["method"]), ("kappa", "undefined" if kappa is None else f"{kappa:.4f}"),
             ("minimum", result["min_kappa"]), ("annotators", len(result["annotators"])),
             ("items", result["items"]), ("skipped items", result["skipped_items"])]
    if result.get("undefined_reason"):
        facts.append(("why undefined", result["undefined_reason"]))
    labels, confusion = result.get("labels") or [], result.get("confusion") or []

    def draw(ax: Any) -> None:
        ax.imshow(confusion, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        for i, row in enumerate(confusion):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        ax.set_xlabel("label (second annotator)")
        ax.set_ylabel("label (first annotator)")

    return facts_table(facts) + (image(png(draw), "agreement confusion matrix") if confusion else "")


GATE = GateSpec("agreement", AgreementGate, _summary, _html_section, annotation_data=True)
