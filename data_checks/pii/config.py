"""The PII gate's settings (`checks.pii`), its verdict, and the entity types it knows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

SUPPORTED_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
                      "MAC_ADDRESS", "CRYPTO", "URL")
# URL is supported but off by default: every link in a training set would fail the gate, and presidio's URL
# pattern also fires on code such as `os.path` (`.pa` is a country TLD).
DEFAULT_ENTITIES = tuple(e for e in SUPPORTED_ENTITIES if e != "URL")
# The no-op NLP engine gives no context boost, so scores are the patterns' own: 0.4 keeps every
# validated result (1.0), IPs and MACs (0.6), URLs (0.5), the medium SSN pattern (0.5) and phones (0.4),
# and drops presidio's "very weak" SSN patterns (0.05, any 9 digits) and the bare "::" IPv6 (0.1).
DEFAULT_SCORE_THRESHOLD = 0.4
EXCERPT_CONTEXT = 20  # characters of context kept on each side of a span in a report excerpt
LANGUAGE = "en"


def unknown_entities(names: Iterable[str]) -> list[str]:
    """The names in `names` that are not in SUPPORTED_ENTITIES, in order."""
    return [name for name in names if name not in SUPPORTED_ENTITIES]


@dataclass
class PiiGateConfig:
    """Settings of the PII gate (`checks.pii`)."""

    data_leaves_trust_boundary: bool = True  # PII fails the gate only when the data leaves your control
    entities: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_ENTITIES))
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    field: Optional[str] = None  # one record field to scan; None: the record's text (`record_text`)
    max_examples: int = 50
    fail_on_confidence: str = "high"  # high: only high-confidence findings fail the gate; low: every finding
    count_placeholders: bool = False  # true: known-fake values (john@example.com, 555-0123) fail it too

    def counts(self, confidence: str, placeholder: Optional[str]) -> bool:
        """Whether a finding of this confidence (and placeholder reason) fails the gate and is redacted."""
        if placeholder is not None and not self.count_placeholders:
            return False
        return confidence == "high" or self.fail_on_confidence == "low"

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        found = [f"checks.pii.entities: unknown entity {name!r} (supported: {', '.join(SUPPORTED_ENTITIES)})"
                 for name in unknown_entities(self.entities)]
        if not self.entities:
            found.append("checks.pii.entities: is empty; list at least one entity type "
                         "(or leave 'pii' out of checks.run)")
        if not 0.0 <= self.score_threshold <= 1.0:
            found.append("checks.pii.score_threshold: must be between 0 and 1")
        if self.fail_on_confidence not in ("high", "low"):
            found.append(f"checks.pii.fail_on_confidence: must be high or low, not {self.fail_on_confidence!r}")
        if self.max_examples < 0:
            found.append("checks.pii.max_examples: must be 0 or more")
        if self.field is not None and not str(self.field).strip():
            found.append("checks.pii.field: must be a field name or null")
        return found


@dataclass
class PiiResult:
    """The gate's verdict. `by_type` counts the records holding each type among the findings that count
    (`PiiGateConfig.counts`); `by_confidence` and `placeholders` count every finding; `examples` are redacted."""

    passed: bool
    records_with_pii: int
    rate: float
    by_type: dict[str, int]
    examples: list[dict[str, Any]]
    data_leaves_trust_boundary: bool
    entities: list[str]
    by_confidence: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    placeholders: dict[str, int] = dataclasses.field(default_factory=dict)
    fail_on_confidence: str = "high"
    count_placeholders: bool = False

    @property
    def warning(self) -> bool:
        """PII was found but the gate passed, because the data stays inside the trust boundary."""
        return self.passed and self.records_with_pii > 0

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "records_with_pii": self.records_with_pii, "rate": self.rate,
                "by_type": dict(self.by_type), "examples": list(self.examples),
                "data_leaves_trust_boundary": self.data_leaves_trust_boundary, "entities": list(self.entities),
                "by_confidence": {k: dict(v) for k, v in self.by_confidence.items()},
                "placeholders": dict(self.placeholders), "fail_on_confidence": self.fail_on_confidence,
                "count_placeholders": self.count_placeholders}
