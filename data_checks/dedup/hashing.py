"""64-bit hashes of words, shingles and whole documents, vectorised in NumPy; `word_hash` and
`shingle_hash` are the one-string references the tests compare the vectorised path against.

A word is cut into 8-byte pieces p_0, p_1, ... read as little-endian integers, zero-padded (a word of
at most 8 bytes gets p_1 = 0); words hold no zero byte, so the pieces and the word determine each
other. The word's hash is fmix64 (MurmurHash3's 64-bit finalizer, a bijection) of x, where x = p_0 and
x = x * K ^ p_k for each further piece: one multiply and one xor for the words of up to 16 bytes, all
but a few, with no branch. A shingle of m words w_0..w_{m-1} hashes to fmix64(sum_k C_k * w_k + m *
C_LEN) mod 2**64 with fixed odd constants C_k, so shingles are hashed from the word hashes by a few
array multiply-adds and no shingle string is ever built. The hashes are deterministic (no per-process
seed, unlike Python's `hash`). Two distinct shingles collide with probability about 2**-64: the sets
verified by exact Jaccard are these hashes, and a collision could only raise one pair's Jaccard by
1/|union|.
"""

from __future__ import annotations

import numpy as np

from data_checks.dedup.words import Words, normalize

_U64 = np.uint64
_MASK = (1 << 64) - 1
_FMIX1, _FMIX2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53
_LEN = 0x9E3779B97F4A7C15  # C_LEN: tells a short document's one shingle from an n-gram
_PIECE = 0xD6E8FEB86659FD93  # K: chains a long word's pieces
_POSITION_SALT = 0x2545F4914F6CDD1D  # keeps the position multipliers apart from C_k
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [_MASK], dtype=_U64)  # keep the first k bytes


def _constants(count: int) -> np.ndarray:
    """C_0..C_{count-1}: fixed odd 64-bit multipliers, one per word position in a shingle (splitmix64's
    outputs, so C_k does not depend on `count`)."""
    return np.array([_fmix64_int((k + 1) * _LEN & _MASK) | 1 for k in range(count)], dtype=_U64)


def fmix64(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer on a uint64 array: into `out` (may be `h`), else a new array."""
    out = np.empty_like(h) if out is None else out
    shifted = np.right_shift(h, _U64(33))
    np.bitwise_xor(h, shifted, out=out)
    out *= _U64(_FMIX1)
    np.right_shift(out, _U64(33), out=shifted)
    out ^= shifted
    out *= _U64(_FMIX2)
    np.right_shift(out, _U64(33), out=shifted)
    out ^= shifted
    return out


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = h * _FMIX1 & _MASK
    h ^= h >> 33
    h = h * _FMIX2 & _MASK
    return h ^ h >> 33


def word_hash(word: bytes) -> int:
    """The hash of one normalised word (reference for `word_hashes`)."""
    pieces = [int.from_bytes(word[k:k + 8], "little") for k in range(0, len(word), 8)] + [0]
    x = pieces[0]
    for piece in pieces[1:max(2, -(-len(word) // 8))]:
        x = (x * _PIECE & _MASK) ^ piece
    return _fmix64_int(x)


def shingle_hash(shingle: str) -> int:
    """The hash of one shingle string as `shingles` builds it (reference for `shingle_hashes`)."""
    words = normalize(shingle).encode("utf-8").split()
    constants = _constants(max(1, len(words))).tolist()
    total = sum(c * word_hash(w) for c, w in zip(constants, words, strict=False)) + len(words) * _LEN
    return _fmix64_int(total & _MASK)


def _windows(buffer: np.ndarray, size: int) -> np.ndarray:
    """The `size` bytes at every offset of `buffer` as raw items (a view; gathering raw "V8"/"V16" items is
    two to three times as fast as gathering unaligned uint64 ones)."""
    return np.ndarray((len(buffer) - size + 1,), dtype=f"V{size}", buffer=buffer, strides=(1,))


def _read(windows: np.ndarray, at: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The first `count` (0..8) of the 8 bytes at each offset `at`, as little-endian uint64, zero-padded."""
    return windows[at].view("<u8") & _LOW_BYTES[count]


# For a word of length min(L, 16): the masks of its first and of its second 8-byte piece.
_FIRST_MASK = np.array([_LOW_BYTES[min(n, 8)] for n in range(17)], dtype=_U64)
_SECOND_MASK = np.array([_LOW_BYTES[max(0, n - 8)] for n in range(17)], dtype=_U64)


def word_hashes(words: Words) -> np.ndarray:
    """uint64 hash of every word (`word_hash` of its bytes)."""
    start, length = words.start, words.length
    pieces = _windows(words.buffer, 16)[start].view("<u8").reshape(-1, 2)  # p_0, p_1 of each word, unmasked
    clipped = np.minimum(length, 16)
    x = pieces[:, 0].copy()  # contiguous copies: faster to work on than the strided columns
    x &= _FIRST_MASK[clipped]
    x *= _U64(_PIECE)
    second = pieces[:, 1].copy()
    second &= _SECOND_MASK[clipped]
    x ^= second  # p_1 (0 for a word of <= 8 bytes)
    del pieces, clipped, second
    long = np.flatnonzero(length > 16)
    offset = 16
    windows = _windows(words.buffer, 8)
    while len(long):  # words over 16 bytes: the further pieces
        piece = _read(windows, start[long] + offset, np.minimum(length[long] - offset, 8))
        x[long] = (x[long] * _U64(_PIECE)) ^ piece
        offset += 8
        long = long[length[long] > offset]
    return fmix64(x, out=x)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, s + l) for each (s, l); lengths >= 0."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(offsets - starts, lengths)


def shingle_hashes(words: Words, ngram: int, hashes: np.ndarray | None = None) -> np.ndarray:
    """One hash per word: the hash of the shingle starting at that word (`shingle_hash` of each n-gram of
    `shingles`); a document's last `ngram - 1` words, which start no n-gram, repeat its first shingle's
    hash, and every word of a document shorter than `ngram` holds the hash of its one shingle (its whole
    text). So document d's shingle set is the set of hashes[words.first[d]:words.first[d + 1]]: the
    minimum and the set are those of the n-grams, and no array is compacted. `hashes`: the word hashes,
    if computed."""
    w = word_hashes(words) if hashes is None else hashes
    counts = words.counts
    first = words.first[:-1]
    out = np.empty(len(w), dtype=_U64)
    constants = _constants(ngram)
    positions = len(w) - (ngram - 1)
    full = np.flatnonzero(counts >= ngram)
    if len(full) and positions > 0:
        combined = np.full(positions, _U64((ngram * _LEN) & _MASK), dtype=_U64)
        term = np.empty(positions, dtype=_U64)
        for k in range(ngram):  # in place: one scratch array
            np.multiply(w[k:k + positions], constants[k], out=term)
            combined += term
        fmix64(combined, out=out[:positions])
        if ngram > 1:  # the tail of each document: its first shingle again
            tail = (first[full] + counts[full] - (ngram - 1))[:, None] + np.arange(ngram - 1)
            out[tail] = out[first[full]][:, None]
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):
        size = counts[short]
        combined = size.astype(_U64) * _U64(_LEN)
        for k in range(int(size.max())):
            has = k < size
            combined[has] += constants[k] * w[first[short[has]] + k]
        out[_ranges(first[short], size)] = np.repeat(fmix64(combined), size)
    return out


_POSITIONS = np.ones(0, dtype=_U64)


def _position_multipliers(count: int) -> np.ndarray:
    """M_0..M_{count-1}: an independent-looking odd 64-bit multiplier per word position (M_i does not
    depend on `count`). Not the powers of one base: a polynomial hash mod 2**64 gives every pair of
    Thue-Morse word sequences the same key, whatever the base."""
    global _POSITIONS
    if len(_POSITIONS) < count:
        size = max(count, 2 * len(_POSITIONS), 1024)
        golden = np.arange(1, size + 1, dtype=_U64) * _U64(_LEN)
        _POSITIONS = fmix64(golden ^ _U64(_POSITION_SALT)) | _U64(1)
    return _POSITIONS[:count]


def text_keys(words: Words, hashes: np.ndarray | None = None) -> np.ndarray:
    """uint64 per document: equal for equal normalised texts (the word sequence), else equal with
    probability about 2**-64; 0 for a document with no words. `hashes`: the word hashes, if computed."""
    w = word_hashes(words) if hashes is None else hashes
    counts = words.counts
    keys = np.zeros(len(counts), dtype=_U64)
    present = np.flatnonzero(counts)
    if not len(present):
        return keys
    first = words.first[:-1]
    local = np.arange(len(w), dtype=np.int64) - np.repeat(first, counts)
    sums = np.add.reduceat(w * _position_multipliers(int(counts.max()))[local], first[present])
    keys[present] = fmix64(sums ^ counts[present].astype(_U64))
    return keys
