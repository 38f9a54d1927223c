"""The agreement gate's settings (`checks.agreement`), its verdict, and the judgement triple."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

WEIGHTS = ("linear", "quadratic")
MULTIPLE_LABELS = ("error", "first", "majority")
# (item, annotator, label); label None records an item seen with a missing annotation (counted if skipped).
Judgement = tuple[str, str, Optional[str]]


@dataclass
class AgreementGateConfig:
    """Fail when chance-corrected agreement between annotators is below `min_kappa`.

    Long format (one row per judgement): `item_field`, `annotator_field`, `label_field`.
    Wide format (one row per item, one column per annotator): set `annotator_columns`; each row is one
    item, named by its file and line (`item_field` is not used).
    """

    min_kappa: float = 0.8
    weights: Optional[str] = None  # None (nominal labels), "linear" or "quadratic" (numeric, ordinal labels)
    item_field: str = "item"
    annotator_field: str = "annotator"
    label_field: str = "label"
    annotator_columns: Optional[list[str]] = None
    min_pair_items: int = 10  # a pair of annotators enters `per_pair` when they share this many items
    multiple_labels: str = "error"  # one annotator, several labels for an item: error, first or majority

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        key = "checks.agreement"
        found = []
        if isinstance(self.min_kappa, bool) or not isinstance(self.min_kappa, (int, float)) \
                or not -1.0 <= self.min_kappa <= 1.0:
            found.append(f"{key}.min_kappa: must be a number between -1 and 1")
        if self.weights is not None and self.weights not in WEIGHTS:
            found.append(f"{key}.weights: must be linear or quadratic (or null for nominal labels), "
                         f"got {self.weights!r}")
        for name in ("item_field", "annotator_field", "label_field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                found.append(f"{key}.{name}: must be a non-empty field name")
        if self.annotator_columns is not None:
            columns = list(self.annotator_columns)
            if len(set(columns)) < 2:
                found.append(f"{key}.annotator_columns: needs at least two different columns")
            for name, count in Counter(columns).items():
                if count > 1:
                    found.append(f"{key}.annotator_columns: lists {name!r} {count} times")
        if isinstance(self.min_pair_items, bool) or not isinstance(self.min_pair_items, int) \
                or self.min_pair_items < 1:
            found.append(f"{key}.min_pair_items: must be a whole number of at least 1")
        if self.multiple_labels not in MULTIPLE_LABELS:
            found.append(f"{key}.multiple_labels: must be one of {', '.join(MULTIPLE_LABELS)}, "
                         f"got {self.multiple_labels!r}")
        return found


@dataclass
class AgreementResult:
    passed: bool
    kappa: Optional[float]
    method: str
    annotators: list[str]  # on the items used, in name order
    items: int
    skipped_items: int
    per_pair: dict[str, Optional[float]]
    mean_pairwise_cohen: Optional[float]
    min_kappa: float
    undefined_reason: Optional[str]
    labels: list[str]
    confusion: list[list[int]]
    # Labels dropped because an annotator labelled an item more than once (multiple_labels first/majority).
    # Kept off to_dict(), whose keys are fixed.
    repeated_labels: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "kappa": self.kappa, "method": self.method, "annotators": self.annotators,
                "items": self.items, "skipped_items": self.skipped_items, "per_pair": self.per_pair,
                "mean_pairwise_cohen": self.mean_pairwise_cohen, "min_kappa": self.min_kappa,
                "undefined_reason": self.undefined_reason, "labels": self.labels, "confusion": self.confusion}
