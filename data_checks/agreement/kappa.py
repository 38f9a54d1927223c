"""Cohen's (weighted) and Fleiss' kappa: pure functions on count arrays, no labels, no validation."""

from __future__ import annotations

from typing import Optional

import numpy as np

_CHUNK_PAIRS = 2_000_000  # annotator pairs enumerated per numpy chunk (bounds memory on 100-rater items)


def nominal_weights(n_labels: int) -> np.ndarray:
    """Disagreement weights for unordered labels: 0 on the diagonal, 1 elsewhere."""
    return 1.0 - np.eye(n_labels)


def ordinal_weights(values: np.ndarray, weights: str) -> np.ndarray:
    """Disagreement weights between labels with numeric `values`: |x - y| (linear) or (x - y)^2 (quadratic)."""
    distance = np.abs(np.subtract.outer(values, values))
    return distance if weights == "linear" else distance ** 2


def cohen_kappa(confusion: np.ndarray, weight: np.ndarray) -> Optional[float]:
    """Cohen's (weighted) kappa of a label-by-label count matrix; None when undefined."""
    n = confusion.sum()
    if n == 0:
        return None
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
    expected_disagreement = float((weight * expected).sum())
    if expected_disagreement <= 1e-12 * n * max(1.0, float(weight.max())):
        return None
    return float(1.0 - (weight * confusion).sum() / expected_disagreement)


def fleiss_kappa(counts: np.ndarray) -> Optional[float]:
    """Fleiss' kappa from item-by-label counts, generalised to a varying number (>= 2) of raters per item."""
    raters = counts.sum(axis=1, keepdims=True)
    observed = float(((counts * (counts - 1)).sum(axis=1) / (raters[:, 0] * (raters[:, 0] - 1))).mean())
    shares = (counts / raters).mean(axis=0)
    chance = float((shares * shares).sum())
    if chance >= 1.0 - 1e-12:
        return None
    return (observed - chance) / (1.0 - chance)


def pair_counts(item_index: np.ndarray, annotator_index: np.ndarray, label_index: np.ndarray,
                n_annotators: int, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of annotators on every item, as unique codes ((a * A + b) * K + x) * K + y with counts.

    a < b are annotator indices (name order), x and y their labels on a shared item.
    """
    order = np.lexsort((annotator_index, item_index))
    annotators, labels = annotator_index[order], label_index[order]
    per_item = np.bincount(item_index)
    starts = np.concatenate(([0], np.cumsum(per_item)[:-1]))
    codes, counts = [], []
    for raters in np.unique(per_item):
        first, second = np.triu_indices(int(raters), 1)
        group = starts[per_item == raters]
        step = max(1, _CHUNK_PAIRS // len(first))
        for begin in range(0, len(group), step):
            rows = group[begin:begin + step, None] + np.arange(raters)
            a, x = annotators[rows], labels[rows]
            code = ((a[:, first] * n_annotators + a[:, second]) * n_labels + x[:, first]) * n_labels + x[:, second]
            unique, count = np.unique(code, return_counts=True)
            codes.append(unique)
            counts.append(count)
    all_codes, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    return all_codes, np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)


def pair_confusions(codes: np.ndarray, counts: np.ndarray, n_annotators: int, n_labels: int,
                    min_items: int) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]:
    """From `pair_counts`: the label-by-label confusion pooled over every pair, and (a, b, confusion) for
    each pair of annotators a < b sharing at least `min_items` items."""
    cells = n_labels * n_labels
    pooled = np.bincount(codes % cells, weights=counts, minlength=cells).reshape(n_labels, n_labels)
    pair_codes, pair_start = np.unique(codes // cells, return_index=True)
    pair_end = np.append(pair_start[1:], len(codes))
    pairs = []
    for pair, begin, end in zip(pair_codes.tolist(), pair_start, pair_end, strict=True):
        if counts[begin:end].sum() < min_items:
            continue
        matrix = np.bincount(codes[begin:end] % cells, weights=counts[begin:end], minlength=cells)
        first, second = divmod(pair, n_annotators)
        pairs.append((first, second, matrix.reshape(n_labels, n_labels)))
    return pooled, pairs
