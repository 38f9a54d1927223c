"""The near-duplicate gate: MinHash + LSH over word 5-grams, every candidate pair verified exactly.

Text is normalised (lower-cased; every run of characters that are not letters or digits, underscore
included, folded to one space; stripped) and cut into word n-grams (`ngram`, 5 by default). A document
with fewer than `ngram` words is one shingle: its whole normalised text. A document with no words
at all (empty, or punctuation only) has no shingles and is never a duplicate of anything; the
template gate reports such records.

Signatures are exactly `datasketch.MinHash(num_perm, seed=1)` signatures (its default "affine32"
scheme, datasketch >= 2.0) of the shingle set: `sha1_hash32` of each shingle's UTF-8 bytes, the
MurmurHash3 finalizer, then `a*h + b mod 2**32` for the permutations drawn from
`np.random.RandomState(1)`, minimum per permutation. The SHA-1 runs vectorised in NumPy over many
shingles at once (hashlib for the rare shingle over 55 bytes), and so do normalisation (ASCII text;
other text goes through the regex first) and the permutations: no Python code runs per shingle.
On Linux, inputs of two million characters or more are split over `workers` forked processes,
which read the texts from the parent's memory; elsewhere, and for small inputs, one process runs.

LSH bands are chosen so that a pair at the threshold collides with probability >= 0.99
(`choose_bands`: 21 bands x 6 rows for 0.8/128; datasketch's own 9 x 13 recalls about half the
pairs at J 0.80-0.85). Every candidate pair is then verified by its exact Jaccard on the shingle
sets, so no reported pair is below the threshold. Records with identical normalised text are
grouped first (exact duplicates); clusters are the connected components of the verified pairs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import sys
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from data_checks.progress import progress

SEED = 1  # datasketch's default seed
TARGET_COLLISION = 0.99  # probability that a pair exactly at the threshold becomes an LSH candidate
MAX_LISTED_CLUSTERS = 200
MAX_LISTED_PAIRS = 200
CHUNK_DOCS = 256  # documents per worker task
MIN_CHARS_FOR_POOL = 2_000_000  # below this (~1,000 300-word texts) one process is as fast as a pool
SHA_BATCH = 12288  # shingles per vectorised SHA-1 batch
PERM_BATCH = 4096  # shingles per permutation batch (a 128 x 4096 uint32 buffer: 2 MB)
SET_CACHE = 128  # shingle sets kept while verifying candidate pairs (least recently used go)
VERIFY_CHUNK = 256  # candidate pairs per verification task (at least)

_NON_WORD = re.compile(r"[\W_]+")
_U32 = np.uint32
_U64 = np.uint64
_MAX_HASH = np.uint32(0xFFFFFFFF)


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
        if not integer(self.num_perm) or not 1 <= self.num_perm <= 4096:
            found.append("checks.dedup.num_perm: must be an integer from 1 to 4096")
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


# ----------------------------------------------------------------------------- text -> shingles


def normalize(text: str) -> str:
    """Lower-case; fold every run of non-letters/digits (punctuation, `_`, whitespace) to one space; strip."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def shingles(text: str, ngram: int = 5) -> set[str]:
    """The shingle set of `text`: word `ngram`-grams of the normalised text (the whole text if shorter)."""
    words = normalize(text).split()
    if len(words) < ngram:
        return {" ".join(words)} if words else set()
    return set(map(" ".join, zip(*(words[i:] for i in range(ngram)), strict=False)))


def _build_table() -> np.ndarray:
    # Byte -> normalised byte for ASCII text: letters lower-cased, digits kept, the rest a space.
    # Bytes >= 0x80 only occur in text already normalised by `normalize` and are kept.
    table = np.full(256, 0x20, dtype=np.uint8)
    for c in range(256):
        if c >= 0x80 or chr(c).isalnum():
            table[c] = ord(chr(c).lower()) if c < 0x80 else c
    return table


_TABLE = _build_table()


def _shingle_bytes(text: str, ngram: int) -> set[bytes]:
    """The shingle set of `shingles`, as UTF-8 bytes, built faster (ASCII text skips the regex)."""
    if text.isascii():
        words = text.encode("ascii").translate(_TABLE_BYTES).split()
    else:
        words = normalize(text).encode("utf-8").split()
    if len(words) < ngram:
        return {b" ".join(words)} if words else set()
    return set(map(b" ".join, zip(*(words[i:] for i in range(ngram)), strict=False)))


_TABLE_BYTES = _TABLE.tobytes()


# ----------------------------------------------------------------------------- vectorised SHA-1

_SHA_K = tuple(_U32(k) for k in (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6))
_SHA_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
# For a block word whose valid bytes number r (clipped to -1..4, shifted by one): keep-mask and the 0x80 pad.
_PAD_AND = np.array([0, 0, 0xFF000000, 0xFFFF0000, 0xFFFFFF00, 0xFFFFFFFF], dtype=_U32)
_PAD_OR = np.array([0, 0x80000000, 0x00800000, 0x00008000, 0x00000080, 0], dtype=_U32)
MAX_SHORT = 55  # longest message that fits one SHA-1 block


def _sha1_first32(words: np.ndarray) -> np.ndarray:
    """SHA-1 of N one-block messages at once; `words` is (80, N) uint32 with rows 0..15 the block
    (big-endian words, padded). Returns `struct.unpack("<I", digest[:4])` per message (datasketch's
    `sha1_hash32`). Rows 16..79 are overwritten with the message schedule."""
    add, xor, band, bor, shl, shr = np.add, np.bitwise_xor, np.bitwise_and, np.bitwise_or, np.left_shift, np.right_shift
    n = words.shape[1]
    w = words
    tmp = np.empty((6, n), _U32)
    one, two, five, s27, s30, s31 = _U32(1), _U32(2), _U32(5), _U32(27), _U32(30), _U32(31)
    for t in range(16, 32, 3):  # w[t] depends on w[t-3]: three rows per call
        m = min(3, 32 - t)
        x, y = w[t:t + m], tmp[:m]
        xor(w[t - 3:t - 3 + m], w[t - 8:t - 8 + m], x)
        xor(x, w[t - 14:t - 14 + m], x)
        xor(x, w[t - 16:t - 16 + m], x)
        shl(x, one, y)
        shr(x, s31, x)
        bor(x, y, x)
    for t in range(32, 80, 6):  # the equivalent recurrence w[t] = rotl2(w[t-6]^w[t-16]^w[t-28]^w[t-32])
        x, y = w[t:t + 6], tmp
        xor(w[t - 6:t], w[t - 16:t - 10], x)
        xor(x, w[t - 28:t - 22], x)
        xor(x, w[t - 32:t - 26], x)
        shl(x, two, y)
        shr(x, s30, x)
        bor(x, y, x)
    for i, k in enumerate(_SHA_K):
        add(w[20 * i:20 * i + 20], k, w[20 * i:20 * i + 20])
    a, b, c, d, e = (np.full(n, v, _U32) for v in _SHA_INIT)
    t1, t2 = np.empty(n, _U32), np.empty(n, _U32)
    for t in range(80):
        if t < 20:
            xor(c, d, t1)
            band(t1, b, t1)
            xor(t1, d, t1)
        elif t < 40 or t >= 60:
            xor(b, c, t1)
            xor(t1, d, t1)
        else:
            bor(b, c, t1)
            band(t1, d, t1)
            band(b, c, t2)
            bor(t1, t2, t1)
        add(t1, e, t1)
        add(t1, w[t], t1)
        shl(a, five, t2)
        add(t1, t2, t1)
        shr(a, s27, t2)
        add(t1, t2, t1)
        if t < 79:
            shl(b, s30, t2)
            shr(b, two, b)
            bor(b, t2, b)
        e, d, c, b, a, t1 = d, c, b, a, t1, e
    add(a, _U32(_SHA_INIT[0]), a)
    return a.byteswap()


def _sha1_short(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`sha1_hash32` of the messages buffer[s:s+l] (each l <= 55); `buffer` has 64 spare bytes at the end."""
    n = len(starts)
    top = int(lengths.max()) // 4  # the last block word holding message bytes or the 0x80 pad
    full = int(lengths.min()) // 4  # words before this hold message bytes only, in every message
    window = np.lib.stride_tricks.sliding_window_view(buffer, 4 * (top + 1))
    words = np.empty((80, n), _U32)
    words[:top + 1] = window[starts].view(">u4").T  # rows of message bytes, as big-endian words
    if top > full:  # zero the words past each message's pad word
        past = np.arange(full + 1, top + 1, dtype=np.int16)[:, None] > (lengths // 4).astype(np.int16)[None, :]
        np.multiply(words[full + 1:top + 1], past == 0, words[full + 1:top + 1])
    pad_word = lengths // 4 * n + np.arange(n)  # flat index of each message's pad word
    flat = words.reshape(-1)
    rest = lengths % 4 + 1
    flat[pad_word] = (flat[pad_word] & _PAD_AND[rest]) | _PAD_OR[rest]
    words[top + 1:15] = 0
    words[15] = lengths.astype(_U32) * _U32(8)
    return _sha1_first32(words)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U32(16))
    h *= _U32(0x85EBCA6B)
    h ^= h >> _U32(13)
    h *= _U32(0xC2B2AE35)
    h ^= h >> _U32(16)
    return h


_PERMUTATION_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a odd, b) for `seed=1`."""
    if num_perm not in _PERMUTATION_CACHE:
        gen = np.random.RandomState(SEED)
        a = gen.randint(0, 1 << 31, num_perm, dtype=_U32) * _U32(2) + _U32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=_U32)
        _PERMUTATION_CACHE[num_perm] = (a, b)
    return _PERMUTATION_CACHE[num_perm]


# ----------------------------------------------------------------------------- sketching


def _sketch(texts: Sequence[str], ngram: int, num_perm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MinHash signatures (n, num_perm) uint32, an exact-text key per document (uint64), and whether
    each document has any words."""
    n = len(texts)
    signatures = np.full((n, num_perm), _MAX_HASH, dtype=_U32)
    keys = np.zeros(n, dtype=_U64)
    if not n:
        return signatures, keys, np.zeros(0, dtype=bool)
    parts = [t.encode("ascii") if t.isascii() else normalize(t).encode("utf-8") for t in texts]
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=n)
    text = np.frombuffer(b"".join(parts).translate(_TABLE_BYTES), dtype=np.uint8)
    del parts
    size = text.size
    doc_end = np.cumsum(lengths)
    doc_start = doc_end - lengths
    is_word = text != 0x20
    before = np.zeros(size, dtype=bool)
    before[1:] = is_word[:-1]
    before[doc_start[doc_start < size]] = False
    after = np.zeros(size, dtype=bool)
    after[:-1] = is_word[1:]
    after[doc_end[doc_end > 0] - 1] = False
    word_start = np.flatnonzero(is_word & ~before)
    word_end = np.flatnonzero(is_word & ~after) + 1
    del before, after
    words_before_end = np.searchsorted(word_start, doc_end)  # words starting before each document ends
    first_word = np.r_[0, words_before_end[:-1]]
    doc_words = words_before_end - first_word
    has_words = doc_words > 0
    if not len(word_start):
        return signatures, keys, has_words
    word_doc = np.repeat(np.arange(n), doc_words)
    last_word = first_word + doc_words - 1

    # Compact: the words of each document joined by single spaces, documents back to back.
    not_last = np.ones(len(word_end), dtype=bool)
    not_last[last_word[has_words]] = False
    keep = is_word
    keep[word_end[not_last]] = True  # the (space) byte right after each word but a document's last
    compact = np.empty(int(keep.sum()) + 64, dtype=np.uint8)
    compact[:-64] = text[keep]
    compact[-64:] = 0
    del text, keep, is_word
    word_len = word_end - word_start
    nonempty_before = np.cumsum(has_words) - has_words  # documents with words before this one
    word_index = np.arange(len(word_start))
    new_start = np.cumsum(word_len) - word_len + word_index - nonempty_before[word_doc]
    new_end = new_start + word_len
    del word_start, word_end, word_len, nonempty_before, not_last

    # Exact-duplicate key: a 64-bit hash of each document's normalised text. Python's own bytes hash is
    # enough: keys are only compared within one run, whose worker processes are forks sharing its seed.
    whole = compact[:-64].tobytes()
    docs = np.flatnonzero(has_words)
    spans = zip(new_start[first_word[docs]].tolist(), new_end[last_word[docs]].tolist(), strict=True)
    keys[docs] = np.fromiter((hash(whole[s:e]) for s, e in spans), dtype=np.int64, count=len(docs)).view(_U64)
    del whole
    view = memoryview(compact)

    # Shingles: the n-gram starting at each word, or the whole text for a document shorter than n.
    last_first = last_word - (ngram - 1)  # per document: the last word that starts a shingle
    short_doc = doc_words < ngram
    last_first[short_doc] = first_word[short_doc]
    chosen = np.flatnonzero(word_index <= last_first[word_doc])
    sh_doc = word_doc[chosen]
    sh_start = new_start[chosen]
    sh_len = new_end[np.minimum(chosen + (ngram - 1), last_word[sh_doc])] - sh_start
    del chosen, word_index, new_start, new_end, word_doc
    hashes = np.empty(len(sh_start), dtype=_U32)
    long = sh_len > MAX_SHORT
    if long.any():
        for i in np.flatnonzero(long).tolist():
            s = int(sh_start[i])
            hashes[i] = int.from_bytes(hashlib.sha1(view[s:s + int(sh_len[i])]).digest()[:4], "little")
    short = np.flatnonzero(~long) if long.any() else None
    starts = sh_start if short is None else sh_start[short]
    lens = sh_len if short is None else sh_len[short]
    for lo in range(0, len(starts), SHA_BATCH):
        out = _sha1_short(compact, starts[lo:lo + SHA_BATCH], lens[lo:lo + SHA_BATCH])
        if short is None:
            hashes[lo:lo + SHA_BATCH] = out
        else:
            hashes[short[lo:lo + SHA_BATCH]] = out
    del view, compact, starts, lens, sh_start, sh_len, short, long
    hashes = _fmix32(hashes)

    # Permutations and the per-document minimum, in batches of shingles (a document may span batches).
    a, b = _permutations(num_perm)
    doc_first_shingle = np.flatnonzero(np.r_[True, sh_doc[1:] != sh_doc[:-1]])
    batch = max(256, (PERM_BATCH * 128) // num_perm)
    buffer = np.empty((num_perm, min(batch, len(hashes))), dtype=_U32)
    for lo in range(0, len(hashes), batch):
        hi = min(lo + batch, len(hashes))
        m = buffer[:, :hi - lo]
        np.multiply(a[:, None], hashes[None, lo:hi], m)
        np.add(m, b[:, None], m)
        inside = doc_first_shingle[(doc_first_shingle > lo) & (doc_first_shingle < hi)]
        segments = np.r_[lo, inside] - lo
        mins = np.minimum.reduceat(m, segments, axis=1).T
        seg_docs = sh_doc[segments + lo]
        signatures[seg_docs] = np.minimum(signatures[seg_docs], mins)
    return signatures, keys, has_words


def signatures(texts: Sequence[str], num_perm: int = 128, ngram: int = 5) -> np.ndarray:
    """MinHash signatures (len(texts), num_perm) uint32, equal to datasketch.MinHash(num_perm, seed=1)
    updated with each shingle's UTF-8 bytes (all max-hash for a text with no words)."""
    return _sketch(texts, ngram, num_perm)[0]


_FORK_SOURCES: dict[str, Sequence[str]] = {}  # texts forked workers read from memory (nothing pickled)


def _pool_context() -> Any:
    """A fork context on Linux (workers inherit the texts; nothing is pickled to them), else None: one
    process. Spawn is not used: it re-imports the caller's main module, which breaks scripts without a
    `__main__` guard, and costs seconds of start-up. None inside a pool worker (no grandchildren)."""
    if multiprocessing.current_process().daemon or not sys.platform.startswith("linux"):
        return None
    return multiprocessing.get_context("fork")


class _Workers:
    """The processes of one gate run: a pool of forked workers for large inputs, else this process.
    Tasks name their texts by source and index; forked workers read them from `_FORK_SOURCES`."""

    def __init__(self, workers: int, sources: dict[str, Sequence[str]]) -> None:
        self.pool, self.sources, self.workers = None, sources, workers
        total = sum(len(t) for texts in sources.values() for t in texts)
        context = _pool_context() if workers > 1 and total >= MIN_CHARS_FOR_POOL else None
        if context is not None:
            from concurrent.futures import ProcessPoolExecutor

            _FORK_SOURCES.update(sources)  # before the workers fork
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def texts(self, name: str) -> Optional[Sequence[str]]:
        """The texts a task carries: none for a forked worker (it has them), the source itself here."""
        return None if self.pool is not None else self.sources[name]

    def map(self, function: Any, tasks: Iterable[tuple]) -> Iterator[Any]:
        """`function` over `tasks`, results in order, with a bounded number of tasks in flight."""
        if self.pool is None:
            yield from map(function, tasks)
            return
        pending: deque = deque()
        for task in tasks:
            with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads (e.g. tqdm's monitor);
                warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)  # the
                pending.append(self.pool.submit(function, task))  # workers run only NumPy and hashlib code
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            for name in self.sources:
                _FORK_SOURCES.pop(name, None)


def _with_progress(results: Iterable[Any], bounds: list[tuple[int, int]], total: int,
                   desc: str) -> Iterator[tuple[int, int, Any]]:
    """(start, stop, result) per chunk, advancing a progress bar over the `total` items the chunks cover."""
    chunks = iter(zip(bounds, results, strict=False))
    next_start = 0
    for i in progress(range(total), desc=desc):
        if i == next_start:
            (start, stop), result = next(chunks)
            next_start = stop
            yield start, stop, result


def _sketch_task(task: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    name, texts, start, stop, ngram, num_perm = task
    return _sketch((_FORK_SOURCES[name] if texts is None else texts)[start:stop], ngram, num_perm)


def _sketch_all(workers: _Workers, name: str, ngram: int, num_perm: int,
                desc: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(workers.sources[name])
    signatures_ = np.empty((n, num_perm), dtype=_U32)
    keys = np.empty(n, dtype=_U64)
    has_words = np.empty(n, dtype=bool)
    bounds = [(s, min(s + CHUNK_DOCS, n)) for s in range(0, n, CHUNK_DOCS)]
    tasks = ((name, workers.texts(name), s, e, ngram, num_perm) for s, e in bounds)
    for s, e, (sig, key, words) in _with_progress(workers.map(_sketch_task, tasks), bounds, n, desc):
        signatures_[s:e], keys[s:e], has_words[s:e] = sig, key, words
    return signatures_, keys, has_words


# ----------------------------------------------------------------------------- LSH and verification


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


def _band_keys(signatures_: np.ndarray, select: Optional[np.ndarray], band: int, rows: int) -> np.ndarray:
    columns = signatures_[:, band * rows:(band + 1) * rows]
    if select is not None:
        columns = columns[select]
    multipliers = np.random.RandomState(band + 7).randint(0, 1 << 62, rows, dtype=_U64) * _U64(2) + _U64(1)
    key = np.zeros(len(columns), dtype=_U64)
    for j in range(rows):
        key += columns[:, j].astype(_U64) * multipliers[j]
        key ^= key >> _U64(29)
    return key


def _pairs_within(keys: np.ndarray) -> np.ndarray:
    """Position pairs (i < j) with equal keys, as int64 codes i * n + j."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
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


def _pairs_across(keys: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pairs (i in keys, j in other) with equal keys, as int64 codes i * len(other) + j."""
    order = np.argsort(keys, kind="stable")
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


_SETS: OrderedDict[tuple[str, int], set] = OrderedDict()  # recently used shingle sets (per process)


def _shingle_set(name: str, texts: Any, index: int, ngram: int) -> set:
    key = (name, index)
    found = _SETS.get(key)
    if found is None:
        text = _FORK_SOURCES[name][index] if texts is None else texts[index]
        found = _SETS[key] = _shingle_bytes(text, ngram)
        if len(_SETS) > SET_CACHE:
            _SETS.popitem(last=False)
    else:
        _SETS.move_to_end(key)
    return found


def _jaccard(a: set, b: set) -> float:
    if len(a) > len(b):
        a, b = b, a
    common = len(a & b)
    return common / (len(a) + len(b) - common) if a or b else 0.0


def _verify_task(task: tuple) -> list[tuple[int, int, float]]:
    left, left_texts, right, right_texts, pairs, ngram, threshold = task
    kept = []
    for i, j in pairs:
        similarity = _jaccard(_shingle_set(left, left_texts, i, ngram), _shingle_set(right, right_texts, j, ngram))
        if similarity >= threshold:
            kept.append((i, j, similarity))
    return kept


def _verify(workers: _Workers, left: str, right: str, pairs: list[tuple[int, int]], ngram: int, threshold: float,
            desc: str) -> list[tuple[int, int, float]]:
    """The pairs (index in `left`, index in `right`) whose exact shingle-set Jaccard is >= threshold."""
    size = max(VERIFY_CHUNK, -(-len(pairs) // (4 * workers.workers))) if workers.pool else VERIFY_CHUNK
    bounds = [(s, min(s + size, len(pairs))) for s in range(0, len(pairs), size)]
    tasks = []
    for s, e in bounds:
        chunk = pairs[s:e]
        tasks.append((left, workers.texts(left), right, workers.texts(right), chunk, ngram, threshold))
    kept = []
    try:
        for _, _, found in _with_progress(workers.map(_verify_task, tasks), bounds, len(pairs), desc):
            kept.extend(found)
    finally:
        _SETS.clear()
    return kept


def _components(edges: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Union-find: root -> members, for the nodes touched by `edges`."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for i, j in edges:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
        parent.setdefault(i, i)
        parent.setdefault(j, j)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return groups


# ----------------------------------------------------------------------------- the gate


def find_near_duplicates(texts: Sequence[str], config: DedupGateConfig,
                         against: Sequence[str] | None = None) -> DedupResult:
    """Near-duplicate clusters in `texts` (0-based indices) and, with `against` (e.g. an eval set), the
    `against` records that have a near-duplicate in `texts`."""
    problems = config.problems()
    if problems:
        raise ValueError("; ".join(problems))
    bands, rows = choose_bands(config.threshold, config.num_perm)
    sources = {"main": texts} if against is None else {"main": texts, "against": against}
    workers = _Workers(config.workers, sources)
    try:
        return _find(workers, config, bands, rows)
    finally:
        workers.close()


def _find(workers: _Workers, config: DedupGateConfig, bands: int, rows: int) -> DedupResult:
    n = len(workers.sources["main"])
    signatures_, keys, has_words = _sketch_all(workers, "main", config.ngram, config.num_perm,
                                               "near-duplicates: minhash")

    # Exact duplicates (identical normalised text): one representative, the first, per text.
    present = np.flatnonzero(has_words)
    _, first, inverse, counts = np.unique(keys[present], return_index=True, return_inverse=True,
                                          return_counts=True)
    reps = np.sort(present[first])
    exact_groups: dict[int, list[int]] = {}
    if (counts > 1).any():
        by_group = present[np.argsort(inverse, kind="stable")]  # members of each group, ascending
        ends = np.cumsum(counts)
        for group in np.flatnonzero(counts > 1).tolist():
            members = by_group[ends[group] - counts[group]:ends[group]].tolist()
            exact_groups[members[0]] = members
    exact_extra = sum(len(m) - 1 for m in exact_groups.values())
    del keys, inverse, present, first

    # LSH over the representatives, then exact verification of every candidate pair.
    select = None if len(reps) == n else reps
    codes = [_pairs_within(_band_keys(signatures_, select, band, rows)) for band in range(bands)]
    candidates = np.unique(np.concatenate(codes)) if codes else np.empty(0, dtype=np.int64)
    del codes
    nr = max(len(reps), 1)
    candidate_pairs = list(zip(reps[candidates // nr].tolist(), reps[candidates % nr].tolist(), strict=True))
    del candidates
    verified = _verify(workers, "main", "main", candidate_pairs, config.ngram, config.threshold,
                       "near-duplicates: verify")
    del candidate_pairs

    groups = list(_components((i, j) for i, j, _ in verified).values())
    linked = {rep for members in groups for rep in members}
    groups += [[rep] for rep in exact_groups if rep not in linked]
    clusters = [sorted(x for rep in members for x in exact_groups.get(rep, [rep])) for members in groups]
    clusters.sort(key=lambda c: (-len(c), c[0]))
    near_extra = sum(len(c) - 1 for c in clusters)
    pairs = verified + [(rep, other, 1.0) for rep, members in exact_groups.items() for other in members[1:]]
    pairs.sort()

    contamination, contamination_pairs = None, []
    if "against" in workers.sources:
        contamination, contamination_pairs = _contamination(workers, signatures_, reps, select, config, bands, rows)
    near_rate = near_extra / n if n else 0.0
    passed = near_rate < config.max_rate
    if contamination is not None and config.fail_on_contamination and contamination["contaminated"]:
        passed = False
    return DedupResult(passed, near_rate, exact_extra / n if n else 0.0, clusters, config.threshold,
                       config.num_perm, bands, rows, config.max_rate, contamination, n, pairs, contamination_pairs)


def _contamination(workers: _Workers, signatures_: np.ndarray, reps: np.ndarray, select: Optional[np.ndarray],
                   config: DedupGateConfig, bands: int,
                   rows: int) -> tuple[dict[str, Any], list[tuple[int, int, float]]]:
    m = len(workers.sources["against"])
    other_signatures, _, other_words = _sketch_all(workers, "against", config.ngram, config.num_perm,
                                                   "contamination: minhash")
    present = np.flatnonzero(other_words)
    codes = [_pairs_across(_band_keys(signatures_, select, band, rows),
                           _band_keys(other_signatures, present, band, rows)) for band in range(bands)]
    candidates = np.unique(np.concatenate(codes)) if codes else np.empty(0, dtype=np.int64)
    del codes, other_signatures
    width = max(len(present), 1)
    candidate_pairs = list(zip(reps[candidates // width].tolist(), present[candidates % width].tolist(),
                               strict=True))
    candidate_pairs.sort(key=lambda p: (p[1], p[0]))
    verified = _verify(workers, "main", "against", candidate_pairs, config.ngram, config.threshold,
                       "contamination: verify")
    contaminated = len({j for _, j, _ in verified})
    listed = [[i, j, round(s, 4)] for i, j, s in verified[:MAX_LISTED_PAIRS]]
    return ({"records": m, "contaminated": contaminated, "rate": contaminated / m if m else 0.0,
             "pairs": listed}, verified)


def dropped_indices(result_or_clusters: Union[DedupResult, Sequence[Sequence[int]]]) -> set[int]:
    """The record indices a clean copy leaves out: in each cluster (every one, not only the listed ones),
    every member but the first (lowest index)."""
    clusters = result_or_clusters.clusters if isinstance(result_or_clusters, DedupResult) else result_or_clusters
    return {x for cluster in clusters for x in sorted(cluster)[1:]}


def keep_indices(result_or_clusters: Union[DedupResult, Sequence[Sequence[int]]], n: int) -> list[int]:
    """The record indices to keep when writing a clean copy: all of range(n) except, in each cluster,
    every member but the first (lowest index). Uses every cluster, not only the listed ones."""
    drop = dropped_indices(result_or_clusters)
    return [i for i in range(n) if i not in drop]
