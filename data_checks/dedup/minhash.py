"""MinHash signatures: per document and permutation, the minimum of the permuted shingle hashes.

Permutation k maps a shingle's hash x (the top 32 bits of its 64-bit hash, `hashing`) to a_k * x mod
2**32, a_k odd (a bijection), the a_k drawn once from `np.random.RandomState(1)`. x is already a
well-mixed hash, so any bijection makes "the minimum agrees" an event of probability J; the
multipliers only have to make the permutations behave as independent ones. datasketch's affine32
scheme adds an offset b_k as well: measured on 9,000 pairs from the generator of
tests/data_checks/test_dedup_statistics.py, the offset changes neither the bias (|z| < 2.3 for both)
nor the spread (chi^2 / dof 0.96-1.02 for both), and it costs a third of this stage (a third pass
over the block).

The multiply and the minimum run over a (permutations x about PERM_BATCH) uint32 block holding the
shingles of whole documents: large enough that NumPy's per-call cost is small against the work, small
enough to stay in cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_checks.dedup.hashing import shingle_hashes, text_keys, word_hashes
from data_checks.dedup.lsh import band_keys
from data_checks.dedup.words import Words, split_words

SEED = 1
MAX_PERM = 4096  # the most permutations a config may ask for (checks.dedup.num_perm)
PERM_BATCH = 4096  # shingles per block at 128 permutations (a 2 MB uint32 buffer)
MAX_HASH = np.uint32(0xFFFFFFFF)
_U32 = np.uint32
_MULTIPLIERS: list[np.ndarray] = []


def multipliers(num_perm: int) -> np.ndarray:
    """The permutations' odd uint32 multipliers a_0..a_{num_perm-1} (a prefix of one fixed draw)."""
    if not _MULTIPLIERS:
        drawn = np.random.RandomState(SEED).randint(0, 1 << 31, MAX_PERM, dtype=_U32)
        _MULTIPLIERS.append(drawn * _U32(2) + _U32(1))
    return _MULTIPLIERS[0][:num_perm]


def min_hashes(hashes: np.ndarray, offsets: np.ndarray, num_perm: int) -> np.ndarray:
    """(documents, num_perm) uint32: per document (its shingle hashes hashes[offsets[d]:offsets[d + 1]])
    and permutation, the smallest permuted value; MAX_HASH for a document with no shingles."""
    signatures = np.full((len(offsets) - 1, num_perm), MAX_HASH, dtype=_U32)
    nonempty = np.flatnonzero(np.diff(offsets) > 0)
    if not len(nonempty):
        return signatures
    values = (hashes >> np.uint64(32)).astype(_U32)
    a = multipliers(num_perm)[:, None]
    # Blocks of whole documents, about `batch` shingles each (one long document may make a longer block).
    starts = offsets[nonempty]
    batch = max(256, PERM_BATCH * 128 // num_perm)
    cuts = np.unique(np.r_[np.searchsorted(starts, np.arange(0, len(values), batch)), len(starts)])
    ends = np.r_[starts[cuts[1:-1]], len(values)]
    widest = int((ends - starts[cuts[:-1]]).max())
    buffer = np.empty((num_perm, widest), dtype=_U32)
    for first, last, hi in zip(cuts[:-1].tolist(), cuts[1:].tolist(), ends.tolist(), strict=True):
        lo = int(starts[first])
        block = buffer[:, :hi - lo]
        np.multiply(a, values[None, lo:hi], block)
        signatures[nonempty[first:last]] = np.minimum.reduceat(block, starts[first:last] - lo, axis=1).T
    return signatures


def sketch_words(words: Words, ngram: int, num_perm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MinHash signatures (n, num_perm) uint32, an exact-text key per document (uint64; equal for equal
    normalised texts), and whether each document has any words."""
    w = word_hashes(words)
    return min_hashes(shingle_hashes(words, ngram, w), words.first, num_perm), text_keys(words, w), words.counts > 0


def sketch(texts: Sequence[str], ngram: int, num_perm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`sketch_words` of the texts."""
    return sketch_words(split_words(texts), ngram, num_perm)


def sketch_bands(words: Words, ngram: int, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`sketch_words` folded into LSH band keys (bands, n) uint64, all the gate keeps of a signature. Only
    the bands * rows permutations the bands read are computed (126 of 128 at 21 x 6)."""
    signatures, keys, has_words = sketch_words(words, ngram, bands * rows)
    return band_keys(signatures, bands, rows), keys, has_words


def signatures(texts: Sequence[str], num_perm: int = 128, ngram: int = 5) -> np.ndarray:
    """MinHash signatures (len(texts), num_perm) uint32 of the shingle sets (all MAX_HASH for a text with
    no words). Their agreement estimates the Jaccard similarity (tests/data_checks/test_dedup_statistics.py)."""
    return sketch(texts, ngram, num_perm)[0]
