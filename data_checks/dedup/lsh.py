"""LSH banding: the band choice, one 64-bit key per (band, document), and the candidate pairs that share a key."""

from __future__ import annotations

from typing import Optional

import numpy as np

TARGET_COLLISION = 0.99  # probability that a pair exactly at the threshold becomes an LSH candidate
_U64 = np.uint64


def collision_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one LSH band."""
    return 1.0 - (1.0 - jaccard ** rows) ** bands


def choose_bands(threshold: float, num_perm: int) -> Optional[tuple[int, int]]:
    """(bands, rows): the most rows per band (fewest false candidates) for which `num_perm // rows` bands
    still make a pair at the threshold collide with probability >= 0.99; all those bands are used.
    None when no choice reaches it."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if collision_probability(threshold, bands, rows) >= TARGET_COLLISION:
            return bands, rows
    return None


_MULTIPLIERS: dict[tuple[int, int], np.ndarray] = {}


def _multipliers(bands: int, rows: int) -> np.ndarray:
    """(rows, bands) odd uint64 multipliers, fixed per band."""
    if (bands, rows) not in _MULTIPLIERS:
        per_band = [np.random.RandomState(band + 7).randint(0, 1 << 62, rows, dtype=_U64) * _U64(2) + _U64(1)
                    for band in range(bands)]
        _MULTIPLIERS[bands, rows] = np.ascontiguousarray(np.array(per_band).T)
    return _MULTIPLIERS[bands, rows]


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(bands, n) uint64: for each band, the `rows` signature values of each document folded into one key.
    Documents share a key (barring a 2**-64 coincidence, which only adds a candidate) iff they agree on
    the whole band."""
    values = signatures[:, :bands * rows].reshape(len(signatures), bands, rows)
    multipliers = _multipliers(bands, rows)
    key = np.zeros((len(signatures), bands), dtype=_U64)
    for j in range(rows):
        key += values[:, :, j] * multipliers[j]  # uint32 * uint64 -> uint64
        key ^= key >> _U64(29)
    return np.ascontiguousarray(key.T)


def pairs_within(keys: np.ndarray) -> np.ndarray:
    """Position pairs (i < j) with equal keys, as int64 codes i * n + j."""
    n = len(keys)
    order = np.argsort(keys)  # any order of equal keys gives the same pairs; 6x a stable sort
    ordered = keys[order]
    found = []
    distance = 1
    while distance < n:
        same = np.flatnonzero(ordered[distance:] == ordered[:-distance])
        if not len(same):
            break
        i, j = order[same], order[same + distance]
        found.append(np.minimum(i, j).astype(np.int64) * n + np.maximum(i, j))
        distance += 1
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def pairs_across(keys: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pairs (i in keys, j in other) with equal keys, as int64 codes i * len(other) + j."""
    order = np.argsort(keys)
    ordered = keys[order]
    lo = np.searchsorted(ordered, other, side="left")
    counts = np.searchsorted(ordered, other, side="right") - lo
    total = int(counts.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    j = np.repeat(np.arange(len(other)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    i = order[np.repeat(lo, counts) + within]
    return i.astype(np.int64) * len(other) + j


def candidates_within(keys: np.ndarray) -> np.ndarray:
    """Sorted unique pair codes (i * n + j, i < j) of the columns of `keys` (bands, n) that share any band."""
    codes = [pairs_within(band) for band in keys]
    return np.unique(np.concatenate(codes)) if codes else np.empty(0, dtype=np.int64)


def candidates_across(keys: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Sorted unique pair codes (i * m + j) of columns i of `keys` and j of `other` (bands, m) sharing a band."""
    codes = [pairs_across(mine, theirs) for mine, theirs in zip(keys, other, strict=True)]
    return np.unique(np.concatenate(codes)) if codes else np.empty(0, dtype=np.int64)
