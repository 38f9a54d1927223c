"""Verification of candidate pairs: the Jaccard similarity of the two documents' shingle sets.

The sets are the documents' 64-bit shingle hashes (`hashing`): the Jaccard is the exact one unless two
distinct shingles of the pair share a hash (about 2**-64 per pair of shingles). They are sorted and
made unique per document, computed for the documents a block of pairs names and dropped with the block
(memory stays bounded); the intersection is counted by a binary search of the smaller set in the
larger. No shingle string is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_checks.dedup.hashing import shingle_hashes
from data_checks.dedup.store import TextStore

SET_BATCH = 512  # documents hashed at once: larger batches are slower per document (fresh memory, cache)


def shingle_sets(texts: TextStore, indices: Sequence[int], ngram: int) -> list[np.ndarray]:
    """The distinct shingle hashes, sorted, of each text at `indices` (hashed SET_BATCH texts at a time)."""
    found = []
    for start in range(0, len(indices), SET_BATCH):
        words = texts.subset_words(indices[start:start + SET_BATCH])
        hashes = shingle_hashes(words, ngram)
        bounds = words.first.tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            values = np.sort(hashes[lo:hi])
            found.append(values[np.r_[True, values[1:] != values[:-1]]] if hi > lo else values)
    return found


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct values (0 for two empty ones)."""
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return 0.0
    at = np.searchsorted(b, a)
    at[at == len(b)] = 0
    common = int(np.count_nonzero(b[at] == a))
    return common / (len(a) + len(b) - common)


def verify_pairs(left: TextStore, right: TextStore | None, pairs: Sequence[tuple[int, int]], ngram: int,
                 threshold: float) -> list[tuple[int, int, float]]:
    """The pairs (index in `left`, index in `right`; `right` None: both in `left`) whose Jaccard similarity
    is >= threshold, with it, in the order given."""
    if not pairs:
        return []
    if right is None:
        names = sorted({i for i, _ in pairs} | {j for _, j in pairs})
        sets = dict(zip(names, shingle_sets(left, names, ngram), strict=True))
        left_sets = right_sets = sets
    else:
        names, others = sorted({i for i, _ in pairs}), sorted({j for _, j in pairs})
        left_sets = dict(zip(names, shingle_sets(left, names, ngram), strict=True))
        right_sets = dict(zip(others, shingle_sets(right, others, ngram), strict=True))
    kept = []
    for i, j in pairs:
        similarity = jaccard(left_sets[i], right_sets[j])
        if similarity >= threshold:
            kept.append((i, j, similarity))
    return kept
