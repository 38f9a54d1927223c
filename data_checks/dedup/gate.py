"""The near-duplicate gate: sketch every record, group exact copies, band, verify, cluster; contamination.

Stages, each a call into the module that owns it: `sketching.SketchStream` sketches the records in
chunks (on the worker processes, while the caller reads on) into LSH band keys and exact-text keys;
`clusters.exact_groups` keeps one representative per normalised text; `lsh.candidates_within` pairs
representatives sharing a band; `verify.verify_pairs` (in blocks of VERIFY_CHUNK pairs, on the workers)
keeps the pairs whose exact Jaccard reaches the threshold; `clusters.clusters_of` joins them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_checks.dedup import workers as pool
from data_checks.dedup.clusters import clusters_of, exact_groups
from data_checks.dedup.config import MAX_LISTED_PAIRS, DedupGateConfig, DedupResult
from data_checks.dedup.lsh import candidates_across, candidates_within, choose_bands
from data_checks.dedup.sketching import SketchStream
from data_checks.dedup.store import TextStore
from data_checks.dedup.verify import verify_pairs
from data_checks.dedup.workers import Workers
from data_checks.progress import progress

VERIFY_CHUNK = 256  # candidate pairs per verification task (their shingle sets are built per task)


class NearDuplicateFinder:
    """The gate fed one record's text at a time (`add`), then `result`. Once the texts are large enough
    (`workers.MIN_CHARS_FOR_POOL`) and `config.workers` > 1, the worker processes sketch each chunk while
    the caller reads the next records."""

    def __init__(self, config: DedupGateConfig) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.config = config
        self.bands, self.rows = choose_bands(config.threshold, config.num_perm)
        self.workers = Workers(config.workers)
        self.main = SketchStream(self.workers, config.ngram, self.bands, self.rows)

    def add(self, text: str) -> None:
        self.main.add(text)

    def extend(self, texts: Sequence[str]) -> None:
        self.main.extend(texts)

    def result(self, against: Sequence[str] | None = None) -> DedupResult:
        """Near-duplicate clusters among the texts added (0-based indices) and, with `against` (e.g. an
        eval set), the `against` records that have a near-duplicate among them. Ends the finder."""
        try:
            return self._result(against)
        finally:
            self.workers.close()
            self.main.texts = TextStore()  # free the texts

    def _result(self, against: Sequence[str] | None) -> DedupResult:
        config, texts = self.config, self.main.texts
        n = len(texts)
        band_keys, keys, has_words = self.main.finish("near-duplicates: minhash")
        reps, exact = exact_groups(keys, has_words)  # exact duplicates: one representative, the first, per text
        exact_extra = sum(len(m) - 1 for m in exact.values())
        del keys
        rep_keys = band_keys if len(reps) == n else band_keys[:, reps]
        del band_keys

        codes = candidates_within(rep_keys)
        nr = max(len(reps), 1)
        candidate_pairs = list(zip(reps[codes // nr].tolist(), reps[codes % nr].tolist(), strict=True))
        del codes
        verified = self._verify(texts, None, candidate_pairs, "near-duplicates: verify")
        del candidate_pairs

        clusters = clusters_of(verified, exact)
        near_extra = sum(len(c) - 1 for c in clusters)
        pairs = verified + [(rep, other, 1.0) for rep, members in exact.items() for other in members[1:]]
        pairs.sort()

        contamination, contamination_pairs = None, []
        if against is not None:
            contamination, contamination_pairs = self._contamination(against, rep_keys, reps)
        near_rate = near_extra / n if n else 0.0
        passed = near_rate < config.max_rate
        if contamination is not None and config.fail_on_contamination and contamination["contaminated"]:
            passed = False
        return DedupResult(passed, near_rate, exact_extra / n if n else 0.0, clusters, config.threshold,
                           config.num_perm, self.bands, self.rows, config.max_rate, contamination, n, pairs,
                           contamination_pairs)

    def _verify(self, left: TextStore, right: TextStore | None, pairs: list[tuple[int, int]],
                desc: str) -> list[tuple[int, int, float]]:
        """The pairs (index in `left`, index in `right`; `right` None: both in `left`) whose exact
        shingle-set Jaccard is >= threshold, shared between the worker processes (which have the texts)."""
        parallel = self.workers.enabled and self.main.chars >= pool.MIN_CHARS_FOR_POOL
        shares = self.workers.count if parallel and len(pairs) >= 2 * VERIFY_CHUNK else 1
        size = max(1, -(-len(pairs) // shares))
        bar = desc if shares == 1 else None  # a child never writes to the terminal: no bar
        parts = [(left, right, pairs[s:s + size], self.config.ngram, self.config.threshold, bar)
                 for s in range(0, len(pairs), size)]
        return [found for part in self.workers.run(_verify_part, parts) for found in part]

    def _contamination(self, against: Sequence[str], rep_keys: np.ndarray,
                       reps: np.ndarray) -> tuple[dict[str, Any], list[tuple[int, int, float]]]:
        """The `against` records with a verified near-duplicate among the representatives of the texts."""
        config, m = self.config, len(against)
        other = SketchStream(self.workers, config.ngram, self.bands, self.rows)
        other.extend(against)
        other_keys, _, other_words = other.finish("contamination: minhash")
        present = np.flatnonzero(other_words)
        codes = candidates_across(rep_keys, other_keys[:, present])
        del other_keys
        width = max(len(present), 1)
        candidate_pairs = list(zip(reps[codes // width].tolist(), present[codes % width].tolist(), strict=True))
        candidate_pairs.sort(key=lambda p: (p[1], p[0]))
        verified = self._verify(self.main.texts, other.texts, candidate_pairs, "contamination: verify")
        contaminated = len({j for _, j, _ in verified})
        listed = [[i, j, round(s, 4)] for i, j, s in verified[:MAX_LISTED_PAIRS]]
        return ({"records": m, "contaminated": contaminated, "rate": contaminated / m if m else 0.0,
                 "pairs": listed}, verified)


def _verify_part(left: TextStore, right: TextStore | None, pairs: list[tuple[int, int]], ngram: int,
                 threshold: float, desc: str | None) -> list[tuple[int, int, float]]:
    """`verify.verify_pairs` over VERIFY_CHUNK pairs at a time (their shingle sets are built per block); a
    progress bar named `desc` unless None (a child never writes to the terminal)."""
    kept: list[tuple[int, int, float]] = []
    for start in range(0, len(pairs)) if desc is None else progress(range(len(pairs)), desc):
        if start % VERIFY_CHUNK == 0:
            kept.extend(verify_pairs(left, right, pairs[start:start + VERIFY_CHUNK], ngram, threshold))
    return kept


def find_near_duplicates(texts: Sequence[str], config: DedupGateConfig,
                         against: Sequence[str] | None = None) -> DedupResult:
    """Near-duplicate clusters in `texts` (0-based indices) and, with `against` (e.g. an eval set), the
    `against` records that have a near-duplicate in `texts`."""
    finder = NearDuplicateFinder(config)
    finder.extend(texts)
    return finder.result(against)
