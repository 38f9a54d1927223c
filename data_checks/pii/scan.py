"""The PII gate over a dataset: one text per record, counts per type and confidence, redacted examples."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from data_checks.pii.config import SUPPORTED_ENTITIES, PiiGateConfig, PiiResult
from data_checks.pii.engine import presidio
from data_checks.pii.findings import CONFIDENCES
from data_checks.pii.redact import excerpt
from data_checks.pii.scanner import scanner
from data_checks.progress import progress


def shape(value: str) -> str:
    """The value with every digit shown as 9 and every letter as a or A: enough to judge a finding
    ("(999) 999-9999", "aaaa.aaa@aaaaaaa.aaa") without the value itself."""
    return re.sub(r"[A-Z]", "A", re.sub(r"[^\W\d_A-Z]", "a", re.sub(r"\d", "9", value)))


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in SUPPORTED_ENTITIES if k in counts}


class PiiScan:
    """The PII gate fed one text at a time (`add`), then `result()`; keeps counts and, per kind of finding
    (high, low, placeholder), the first `max_examples` redacted excerpts, never the texts."""

    def __init__(self, config: PiiGateConfig) -> None:
        self.config = config
        self.scanner = scanner(config)
        presidio()  # load presidio now, even when no text gets past the prefilter: a missing install fails every run
        self.by_type: dict[str, int] = {}
        self.by_confidence: dict[str, dict[str, int]] = {c: {} for c in CONFIDENCES}
        self.placeholders: dict[str, int] = {}
        self.examples: list[dict[str, Any]] = []
        self._shown: dict[str, int] = {}
        self.records = self.records_with_pii = 0

    def add(self, text: Any) -> None:
        index = self.records
        self.records += 1
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        findings = self.scanner.findings(text)
        if not findings:
            return
        hidden = [f.span for f in findings if f.placeholder is None]  # placeholders stay readable in excerpts
        counted, seen = set(), set()
        for finding in findings:
            kind = "placeholder" if finding.placeholder else finding.confidence
            if (kind, finding.type) in seen:
                continue
            seen.add((kind, finding.type))
            tally = self.placeholders if finding.placeholder else self.by_confidence[finding.confidence]
            tally[finding.type] = tally.get(finding.type, 0) + 1
            if self.config.counts(finding.confidence, finding.placeholder) and finding.type not in counted:
                counted.add(finding.type)
                self.by_type[finding.type] = self.by_type.get(finding.type, 0) + 1
            if self._shown.get(kind, 0) < self.config.max_examples:
                self._shown[kind] = self._shown.get(kind, 0) + 1
                example = {"record": index, "type": finding.type, "confidence": finding.confidence,
                           "excerpt": excerpt(text, hidden, finding.span),
                           "shape": shape(text[finding.start:finding.end])}
                if finding.placeholder:
                    example["placeholder"] = finding.placeholder
                self.examples.append(example)
        if counted:
            self.records_with_pii += 1

    def result(self) -> PiiResult:
        config = self.config
        rate = self.records_with_pii / self.records if self.records else 0.0
        passed = self.records_with_pii == 0 or not config.data_leaves_trust_boundary
        return PiiResult(passed, self.records_with_pii, rate, _ordered(self.by_type), self.examples,
                         config.data_leaves_trust_boundary, list(self.scanner.entities),
                         {c: _ordered(v) for c, v in self.by_confidence.items()}, _ordered(self.placeholders),
                         config.fail_on_confidence, config.count_placeholders)


def scan_pii(texts: Sequence[str], config: PiiGateConfig) -> PiiResult:
    """Scan one text per record; fail when a finding that counts turns up and the data leaves the trust boundary."""
    scan = PiiScan(config)
    for text in progress(texts, desc="PII scan"):
        scan.add(text)
    return scan.result()
