"""The PII gate over a dataset: one text per record, counts per type, redacted examples, the verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from data_checks.pii.config import SUPPORTED_ENTITIES, PiiGateConfig, PiiResult
from data_checks.pii.engine import presidio
from data_checks.pii.redact import excerpt
from data_checks.pii.scanner import scanner
from data_checks.progress import progress


class PiiScan:
    """The PII gate fed one text at a time (`add`), then `result()`; keeps counts and the first
    `max_examples` redacted excerpts, never the texts."""

    def __init__(self, config: PiiGateConfig) -> None:
        self.config = config
        self.scanner = scanner(config)
        presidio()  # load presidio now, even when no text gets past the prefilter: a missing install fails every run
        self.by_type: dict[str, int] = {}
        self.examples: list[dict[str, Any]] = []
        self.records = self.records_with_pii = 0

    def add(self, text: Any) -> None:
        index = self.records
        self.records += 1
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        spans = self.scanner.find(text)
        if not spans:
            return
        self.records_with_pii += 1
        seen = set()
        for span in spans:
            kind = span[2]
            if kind in seen:
                continue
            seen.add(kind)
            self.by_type[kind] = self.by_type.get(kind, 0) + 1
            if len(self.examples) < self.config.max_examples:
                self.examples.append({"record": index, "type": kind, "excerpt": excerpt(text, spans, span)})

    def result(self) -> PiiResult:
        config = self.config
        rate = self.records_with_pii / self.records if self.records else 0.0
        passed = self.records_with_pii == 0 or not config.data_leaves_trust_boundary
        by_type = {k: self.by_type[k] for k in SUPPORTED_ENTITIES if k in self.by_type}
        return PiiResult(passed, self.records_with_pii, rate, by_type, self.examples, config.data_leaves_trust_boundary,
                         list(self.scanner.entities))


def scan_pii(texts: Sequence[str], config: PiiGateConfig) -> PiiResult:
    """Scan one text per record; fail when any holds PII and the data leaves the trust boundary."""
    scan = PiiScan(config)
    for text in progress(texts, desc="PII scan"):
        scan.add(text)
    return scan.result()
