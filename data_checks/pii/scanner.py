"""Finding PII spans in one text: the prefilter, then only the recognizers it lets through, then conflicts.

The recognizers are called directly rather than through `AnalyzerEngine.analyze`, whose per-call overhead
(recognizer lookup, empty spaCy Doc, context pass) dominates on short texts; the answer is the engine's
(`Scanner.find_with_engine`; tests/data_checks/test_pii.py compares the two). One core does 30-45k short texts/s
(scripts/bench_pii.py, docs/benchmarks.md), so there is no worker pool: each worker would pay the
seconds-long presidio import first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from data_checks.pii.config import LANGUAGE, SUPPORTED_ENTITIES, PiiGateConfig, unknown_entities
from data_checks.pii.engine import Presidio, analyzer_engine, presidio
from data_checks.pii.findings import Dropped, Finding, classify
from data_checks.pii.prefilter import Prefilter

Span = tuple[int, int, str]  # (start, end, entity type)


def resolve_conflicts(results: list[Any]) -> list[Span]:
    """(start, end, type) of presidio results, sorted by position, after the cross-type rules: a
    PHONE_NUMBER overlapping a result of another type (SSN, card number, IP, ...) is dropped, and so is a
    URL overlapping an email address (its domain)."""
    def overlaps(a: Any, types: Any) -> bool:
        return any(b.entity_type in types and b.start < a.end and a.start < b.end for b in results)

    kept = []
    for r in results:
        if r.entity_type == "PHONE_NUMBER" and overlaps(r, set(SUPPORTED_ENTITIES) - {"PHONE_NUMBER"}):
            continue
        if r.entity_type == "URL" and overlaps(r, {"EMAIL_ADDRESS"}):
            continue
        kept.append((r.start, r.end, r.entity_type))
    return sorted(set(kept))


class Scanner:
    """The prefilter and the recognizers for one choice of entities and threshold."""

    def __init__(self, entities: Sequence[str], score_threshold: float) -> None:
        unknown = unknown_entities(entities)
        if unknown:
            raise ValueError(f"unknown PII entity {unknown[0]!r} (supported: {', '.join(SUPPORTED_ENTITIES)})")
        self.entities = [e for e in SUPPORTED_ENTITIES if e in set(entities)]
        self.threshold = score_threshold
        self.prefilter = Prefilter(self.entities)
        self._presidio: Optional[Presidio] = None

    @property
    def triggers(self) -> list[tuple[Any, tuple[str, ...]]]:
        """The prefilter's compiled triggers, each with the entity types it gates."""
        return self.prefilter.triggers

    def might_have_pii(self, text: str) -> bool:
        """The prefilter: False only for a text no enabled recognizer can match."""
        return self.prefilter.might_have_pii(text)

    def matches(self, text: str) -> list[Span]:
        """The recognizers' spans in `text` after the cross-type rules, before the context rules."""
        todo = self.prefilter.entities_to_run(text)
        if not todo:
            return []
        loaded = self._presidio or presidio()
        self._presidio = loaded
        results = []
        for entity in todo:
            found = loaded.recognizers[entity].analyze(text, [entity], loaded.artifacts)
            results.extend(r for r in found if r.score >= self.threshold)
        return resolve_conflicts(loaded.remove_duplicates(results)) if results else []

    def findings(self, text: str, dropped: Optional[list[Dropped]] = None) -> list[Finding]:
        """Every finding in `text` (placeholders included), sorted by position; matches the context
        rules drop go to `dropped` with the rule's reason."""
        return classify(text, self.matches(text), dropped)

    def find(self, text: str) -> list[Span]:
        """The span of every finding in `text` (placeholders and low confidence included)."""
        return [f.span for f in self.findings(text)]

    def find_with_engine(self, text: str) -> list[Span]:
        """The same answer through `AnalyzerEngine.analyze`, with no prefilter (slow; for tests and benchmarks)."""
        results = analyzer_engine().analyze(text, LANGUAGE, entities=list(self.entities),
                                            score_threshold=self.threshold)
        return [f.span for f in classify(text, resolve_conflicts(results))]


_SCANNERS: dict[tuple[tuple[str, ...], float], Scanner] = {}


def scanner(config: Optional[PiiGateConfig]) -> Scanner:
    """The scanner for `config` (the default config when None), built once per entities and threshold."""
    config = config or PiiGateConfig()
    key = (tuple(config.entities), float(config.score_threshold))
    if key not in _SCANNERS:
        _SCANNERS[key] = Scanner(*key)
    return _SCANNERS[key]


def find_pii(text: str, config: Optional[PiiGateConfig] = None) -> list[Span]:
    """Every PII span in `text` as (start, end, entity type), sorted by position: placeholders and
    low-confidence findings included (`pii_findings` says which is which)."""
    return scanner(config).find(text)


def pii_findings(text: str, config: Optional[PiiGateConfig] = None) -> list[Finding]:
    """Every finding in `text`, with its confidence and, for a known-fake value, why it is one."""
    return scanner(config).findings(text)
