"""The near-duplicate gate's settings (`checks.dedup`) and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from data_checks.dedup.lsh import TARGET_COLLISION, choose_bands
from data_checks.dedup.minhash import MAX_PERM

MAX_LISTED_CLUSTERS = 200
MAX_LISTED_PAIRS = 200


@dataclass
class DedupGateConfig:
    """Fail when `max_rate` or more of the records are near-duplicates (Jaccard >= `threshold`) of another."""

    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    max_rate: float = 0.01
    field: Optional[str] = None  # the record field to read; None = the format's default text
    fail_on_contamination: bool = True
    workers: int = 2

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        found = []

        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        def integer(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not number(self.threshold) or not 0.0 < self.threshold <= 1.0:
            found.append("checks.dedup.threshold: must be in (0, 1]")
        if not integer(self.num_perm) or not 1 <= self.num_perm <= MAX_PERM:
            found.append(f"checks.dedup.num_perm: must be an integer from 1 to {MAX_PERM}")
        if not integer(self.ngram) or self.ngram < 1:
            found.append("checks.dedup.ngram: must be an integer >= 1")
        if not number(self.max_rate) or not 0.0 < self.max_rate <= 1.0:
            found.append("checks.dedup.max_rate: must be in (0, 1] (the gate fails when the rate reaches it)")
        if self.field is not None and (not isinstance(self.field, str) or not self.field):
            found.append("checks.dedup.field: must be a field name or null")
        if not isinstance(self.fail_on_contamination, bool):
            found.append("checks.dedup.fail_on_contamination: must be true or false")
        if not integer(self.workers) or self.workers < 1:
            found.append("checks.dedup.workers: must be an integer >= 1")
        if not found and choose_bands(self.threshold, self.num_perm) is None:
            found.append(f"checks.dedup.num_perm: {self.num_perm} permutations cannot give a {TARGET_COLLISION:.0%} "
                         f"LSH collision probability at threshold {self.threshold}; use more")
        return found


@dataclass
class DedupResult:
    """The gate's verdict. Rates count every cluster: records in a cluster minus the one kept per cluster,
    over all records (exact: the same for groups of identical normalised text). Indices are 0-based."""

    passed: bool
    near_duplicate_rate: float
    exact_duplicate_rate: float
    clusters: list[list[int]]  # every cluster, largest first; to_dict lists the first MAX_LISTED_CLUSTERS
    threshold: float
    num_perm: int
    bands: int
    rows: int
    max_rate: float
    contamination: Optional[dict[str, Any]] = None
    records: int = 0
    # Verified pairs (i < j, Jaccard), all of them: near pairs between distinct texts, and
    # (first, other, 1.0) for each exact duplicate. Not in the report.
    pairs: list[tuple[int, int, float]] = field(default_factory=list)
    contamination_pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (main, against, J), all

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "near_duplicate_rate": self.near_duplicate_rate,
                "exact_duplicate_rate": self.exact_duplicate_rate,
                "clusters": [list(c) for c in self.clusters[:MAX_LISTED_CLUSTERS]],
                "threshold": self.threshold, "num_perm": self.num_perm, "bands": self.bands, "rows": self.rows,
                "max_rate": self.max_rate, "contamination": self.contamination}
