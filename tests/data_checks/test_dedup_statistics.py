"""The gate's MinHash is not datasketch's (SHA-1, affine permutations): its shingle hashes are 64-bit
multiply-adds of word hashes and its permutations x -> a * x mod 2**32 (data_checks/dedup/hashing.py,
minhash.py). Prove statistically, against brute-force Jaccard, that signature agreement still
estimates the Jaccard similarity without bias and with a binomial spread, and that the LSH bands recall
the pairs at the threshold.

Under ideal MinHash the number of the 128 permutations on which two signatures agree is
Binomial(128, J) for true Jaccard J, and a pair shares one of the 21 bands of 6 rows with probability
1 - (1 - J^6)^21. Everything is seeded, so each check is a fixed computation; the bounds are set so an
ideal hash would fail them with probability below about 1e-4.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from data_checks.dedup import DedupGateConfig, collision_probability, find_near_duplicates, shingles, signatures
from data_checks.dedup.lsh import band_keys

NUM_PERM = 128


def true_jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x or y else 0.0


def binomial_two_sided(k: int, n: int, p: float) -> float:
    """P(X as or less likely than k) for X ~ Binomial(n, p): the exact two-sided p-value."""
    probabilities = [math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(n + 1)]
    return min(1.0, sum(q for q in probabilities if q <= probabilities[k] * (1 + 1e-9)))


def fresh(rng: random.Random, count: int) -> list[str]:
    return [f"w{n}" for n in rng.sample(range(10**9), count)]


def random_pairs(seed: int, count: int) -> list[tuple[str, str]]:
    """Pairs whose true Jaccard spreads over [0, 1]: documents of 8-400 words, made of fresh words (all
    shingles distinct) or drawn from a small Zipf vocabulary (repeated words and shingles, and unrelated
    documents sharing a few), the copy edited at its tail, at scattered words, or by shuffling sentences."""
    rng = random.Random(seed)
    vocabulary = [f"v{i}" for i in range(300)]
    weights = [1 / (rank + 3) for rank in range(len(vocabulary))]
    pairs = []
    for k in range(count):
        words = rng.randint(8, 400)
        base = fresh(rng, words) if k % 2 else rng.choices(vocabulary, weights, k=words)
        target = rng.random()
        edit = k % 3
        if edit == 0:  # replace the tail
            m = round((words - 4) * (1 - target) / (1 + target))
            copy = base[:words - m] + fresh(rng, m)
        elif edit == 1:  # replace scattered words: each kills up to 5 shingles
            m = min(words, round((words - 4) * (1 - target) / (5 * (1 + target))))
            copy = list(base)
            for i in rng.sample(range(words), m):
                copy[i] = rng.choice(vocabulary) if k % 2 == 0 else fresh(rng, 1)[0]
        else:  # cut into pieces and reorder some (the shingles across each cut change)
            cuts = sorted(rng.sample(range(1, words), min(words - 1, 1 + int(30 * (1 - target)))))
            pieces = [base[i:j] for i, j in zip([0, *cuts], [*cuts, words], strict=True)]
            rng.shuffle(pieces)
            copy = [w for piece in pieces for w in piece]
        pairs.append((" ".join(base), " ".join(copy)))
    return pairs


@pytest.fixture(scope="module")
def measured():
    pairs = random_pairs(seed=11, count=400)
    truth = np.array([true_jaccard(a, b) for a, b in pairs])
    texts = [t for pair in pairs for t in pair]
    sig = signatures(texts, num_perm=NUM_PERM)
    agree = (sig[0::2] == sig[1::2]).sum(axis=1)
    return pairs, truth, sig, agree


def test_the_pairs_cover_the_jaccard_range(measured):
    _, truth, _, _ = measured
    counts, _ = np.histogram(truth, bins=10, range=(0, 1.0000001))
    assert counts.min() >= 15, counts  # every tenth of [0, 1] is tested
    assert (truth == 1).sum() >= 3 and (truth == 0).sum() >= 3


def test_minhash_agreement_is_binomial_in_the_true_jaccard(measured):
    _, truth, _, agree = measured
    p_values = [binomial_two_sided(int(k), NUM_PERM, j) for k, j in zip(agree, truth, strict=True)]
    # each pair within its binomial bound (Bonferroni over 400 pairs at a family-wise 4%)
    assert min(p_values) > 1e-4, sorted(p_values)[:5]
    # no bias: the total disagreement from the expectation is a standard normal z below 4
    expected, variance = NUM_PERM * truth, NUM_PERM * truth * (1 - truth)
    z = (agree - expected).sum() / math.sqrt(variance.sum())
    assert abs(z) < 4, z
    # the spread is binomial, not wider (dependent permutations would widen it): chi^2 / dof near 1
    inside = variance > 0
    ratio = ((agree - expected)[inside] ** 2 / variance[inside]).mean()
    assert 0.7 < ratio < 1.35, ratio
    # the p-values are uniform, as an ideal hash gives: a Kolmogorov-Smirnov distance below 1.63 / sqrt(n)
    # (the mid-p values of a discrete test are near uniform; exact two-sided ones lean high, so one side)
    inner = np.sort([p for p, v in zip(p_values, variance, strict=True) if v > 0])
    assert (np.arange(1, len(inner) + 1) / len(inner) - inner).max() < 1.63 / math.sqrt(len(inner))
    # identical shingle sets agree everywhere; disjoint ones nowhere
    assert (agree[truth == 1] == NUM_PERM).all() and (agree[truth == 0] == 0).all()


def test_estimates_track_brute_force_within_the_binomial_error(measured):
    _, truth, _, agree = measured
    estimate = agree / NUM_PERM
    error = np.abs(estimate - truth)
    bound = 4.5 * np.sqrt(truth * (1 - truth) / NUM_PERM) + 1 / NUM_PERM
    assert (error <= bound).all(), [(t, e) for t, e, b in zip(truth, estimate, bound, strict=True) if abs(e - t) > b]
    assert np.corrcoef(estimate, truth)[0, 1] > 0.99


def test_band_collisions_follow_the_theory(measured):
    _, truth, sig, _ = measured
    keys = band_keys(sig, 21, 6)
    collide = (keys[:, 0::2] == keys[:, 1::2]).any(axis=0)
    expected = np.array([collision_probability(j, 21, 6) for j in truth])
    z = (collide - expected).sum() / math.sqrt((expected * (1 - expected)).sum())
    assert abs(z) < 4, z
    assert collide[truth >= 0.8].all()


def planted_near_threshold(seed: int, pairs: int, singles: int) -> tuple[list[str], list[tuple[int, int, float]]]:
    """Unrelated documents plus `pairs` pairs whose true Jaccard lies in [0.8, 0.86], the hardest to recall."""
    rng = random.Random(seed)
    units, truth = [], []
    while len(units) < pairs:
        base = fresh(rng, rng.randint(60, 350))
        copy = list(base)
        shingle_count = len(base) - 4
        for i in rng.sample(range(len(base)), max(1, round(shingle_count * 0.17 / (5 * 1.83)))):
            copy[i] = fresh(rng, 1)[0]
        a, b = " ".join(base), " ".join(copy)
        if 0.8 <= true_jaccard(a, b) <= 0.86:
            units.append((a, b))
    units += [(" ".join(fresh(rng, rng.randint(60, 350))),) for _ in range(singles)]
    rng.shuffle(units)
    texts = []
    for unit in units:
        if len(unit) == 2:
            truth.append((len(texts), len(texts) + 1, true_jaccard(*unit)))
        texts.extend(unit)
    return texts, truth


def test_lsh_recall_at_the_threshold_on_planted_pairs():
    texts, truth = planted_near_threshold(seed=12, pairs=500, singles=500)
    assert len(truth) == 500 and min(j for _, _, j in truth) >= 0.8
    result = find_near_duplicates(texts, DedupGateConfig(workers=1))
    found = {(i, j) for i, j, _ in result.pairs}
    planted = {(i, j) for i, j, _ in truth}
    recall = len(found & planted) / len(planted)
    assert recall >= 0.99, recall  # expected >= 0.998 per pair at J = 0.8
    assert found <= planted  # precision: nothing but the planted pairs
    for i, j, reported in result.pairs:
        assert reported == pytest.approx(true_jaccard(texts[i], texts[j]))
