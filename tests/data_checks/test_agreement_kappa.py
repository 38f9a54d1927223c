"""The agreement gate's computing functions alone, on arrays: weights, Cohen, Fleiss, pair enumeration."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest

from data_checks.agreement import kappa
from data_checks.agreement.kappa import (
    cohen_kappa,
    fleiss_kappa,
    nominal_weights,
    ordinal_weights,
    pair_confusions,
    pair_counts,
)
from tests.data_checks.test_agreement import FLEISS_1971, WIKIPEDIA_FLEISS


def test_weights():
    assert np.array_equal(nominal_weights(3), [[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    values = np.array([1.0, 2.0, 5.0])  # an unused scale point (3, 4) keeps its distance
    assert np.array_equal(ordinal_weights(values, "linear"), [[0, 1, 4], [1, 0, 3], [4, 3, 0]])
    assert np.array_equal(ordinal_weights(values, "quadratic"), [[0, 1, 16], [1, 0, 9], [16, 9, 0]])


def test_cohen_by_hand():
    assert cohen_kappa(np.array([[20, 5], [10, 15]]), nominal_weights(2)) == pytest.approx(0.4, abs=1e-12)
    confusion = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 3]])
    values = np.array([1.0, 2.0, 3.0])
    assert cohen_kappa(confusion, nominal_weights(3)) == pytest.approx(6 / 11, abs=1e-12)
    assert cohen_kappa(confusion, ordinal_weights(values, "linear")) == pytest.approx(5 / 9, abs=1e-12)
    assert cohen_kappa(confusion, ordinal_weights(values, "quadratic")) == pytest.approx(13 / 23, abs=1e-12)


def test_cohen_undefined():
    assert cohen_kappa(np.zeros((2, 2)), nominal_weights(2)) is None  # no items
    assert cohen_kappa(np.array([[0, 0], [0, 9]]), nominal_weights(2)) is None  # one label: chance agreement 1
    same = ordinal_weights(np.array([1.0, 1.0]), "linear")  # two labels with one value: no disagreement possible
    assert cohen_kappa(np.array([[3, 1], [2, 4]]), same) is None


def test_fleiss_by_hand():
    assert fleiss_kappa(np.array(FLEISS_1971, dtype=float)) == pytest.approx(5437 / 12637, abs=1e-12)
    assert fleiss_kappa(np.array(WIKIPEDIA_FLEISS, dtype=float)) == pytest.approx(4211 / 20059, abs=1e-12)
    # 2, 3 and 4 raters (test_agreement.py::test_fleiss_with_a_varying_number_of_raters_by_hand)
    assert fleiss_kappa(np.array([[2, 0], [1, 2], [1, 3]], dtype=float)) == pytest.approx(
        float(Fraction(71, 323)), abs=1e-12)
    assert fleiss_kappa(np.array([[3, 0], [2, 0]], dtype=float)) is None  # one label everywhere


def _brute_force_pairs(items: list[list[tuple[int, int]]], n_annotators: int, n_labels: int) -> dict[int, int]:
    codes: dict[int, int] = {}
    for rated in items:
        for (a, x), (b, y) in combinations(sorted(rated), 2):
            code = ((a * n_annotators + b) * n_labels + x) * n_labels + y
            codes[code] = codes.get(code, 0) + 1
    return codes


@pytest.mark.parametrize("chunk", [1, 3, 2_000_000])
def test_pair_counts_equal_brute_force_whatever_the_chunk(monkeypatch, chunk):
    monkeypatch.setattr(kappa, "_CHUNK_PAIRS", chunk)
    rng = np.random.default_rng(3)
    n_annotators, n_labels = 6, 3
    items = []
    for _ in range(40):
        raters = rng.choice(n_annotators, size=int(rng.integers(2, n_annotators + 1)), replace=False)
        items.append([(int(a), int(rng.integers(0, n_labels))) for a in raters])
    triples = np.array([(i, a, x) for i, rated in enumerate(items) for a, x in rated], dtype=np.int64)
    rng.shuffle(triples)
    codes, counts = pair_counts(*triples.T, n_annotators, n_labels)
    assert dict(zip(codes.tolist(), counts.tolist(), strict=True)) == _brute_force_pairs(items, n_annotators, n_labels)


def test_pair_confusions():
    # annotators 0, 1, 2 over labels 0/1: item0 0:0 1:0 2:1, item1 0:1 1:1, item2 0:0 2:0
    triples = np.array([(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 0, 1), (1, 1, 1), (2, 0, 0), (2, 2, 0)]).T
    codes, counts = pair_counts(*triples, 3, 2)
    pooled, pairs = pair_confusions(codes, counts, 3, 2, min_items=1)
    assert pooled.tolist() == [[2, 2], [0, 1]]  # pairs (0,1) 0/0 1/1, (0,2) 0/1 0/0, (1,2) 0/1
    assert [(a, b, m.tolist()) for a, b, m in pairs] == [
        (0, 1, [[1, 0], [0, 1]]), (0, 2, [[1, 1], [0, 0]]), (1, 2, [[0, 1], [0, 0]])]
    _, shared_twice = pair_confusions(codes, counts, 3, 2, min_items=2)
    assert [(a, b) for a, b, _ in shared_twice] == [(0, 1), (0, 2)]
