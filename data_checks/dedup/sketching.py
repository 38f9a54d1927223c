"""The texts of one source, sketched in batches: LSH band keys, exact-text keys, has-words flags.

`add` keeps each text (verification reads it again) and, once the texts are large enough to be worth
it (`workers.MIN_CHARS_FOR_POOL`), forks a child for the texts not yet sketched whenever BATCH_DOCS of
them are waiting and a worker is free: sketching overlaps whatever the caller does between texts
(reading and parsing the next records). `finish` shares the rest between the children and this process
and returns the arrays in record order. Each batch is sketched CHUNK_DOCS texts at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_checks.dedup import workers as pool
from data_checks.dedup.minhash import sketch_bands
from data_checks.dedup.store import TextStore
from data_checks.dedup.workers import Workers
from data_checks.progress import progress

CHUNK_DOCS = 256  # texts sketched at once (at 512 the arrays are large enough that glibc maps and unmaps
#                   them for every chunk: page faults cost a tenth of the time)
BATCH_DOCS = 8192  # texts per forked child at least (each child faults in its own working memory)
POLL_EVERY = 256  # texts added between two looks at whether a worker is free

Sketch = tuple[np.ndarray, np.ndarray, np.ndarray]  # band keys (bands, n), exact-text keys, has-words


def sketch_range(texts: TextStore, start: int, stop: int, ngram: int, bands: int, rows: int) -> Sketch:
    """`minhash.sketch_bands` of texts start..stop-1, CHUNK_DOCS texts at a time."""
    parts = [sketch_bands(texts.words(s, min(s + CHUNK_DOCS, stop)), ngram, bands, rows)
             for s in range(start, stop, CHUNK_DOCS)]
    if not parts:
        return np.empty((bands, 0), dtype=np.uint64), np.empty(0, dtype=np.uint64), np.empty(0, dtype=bool)
    return (np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


class SketchStream:
    """Texts of one source and their sketches, computed in batches by forked children where possible."""

    def __init__(self, workers: Workers, ngram: int, bands: int, rows: int) -> None:
        self.workers, self.ngram, self.bands, self.rows = workers, ngram, bands, rows
        self.texts = TextStore()
        self.chars = 0  # counted up to MIN_CHARS_FOR_POOL
        self.sent = 0  # texts handed to a child so far
        self.next_poll = BATCH_DOCS
        self.batches: list[tuple[int, int, Any]] = []  # (start, stop, the child computing them)

    def add(self, text: str) -> None:
        self.texts.add(text)
        if self.chars < pool.MIN_CHARS_FOR_POOL:
            self.chars += len(text)
        if len(self.texts) >= self.next_poll and self.workers.enabled:
            self.next_poll = len(self.texts) + POLL_EVERY
            if (self.chars >= pool.MIN_CHARS_FOR_POOL and len(self.texts) - self.sent >= BATCH_DOCS
                    and self.workers.free() > 0):
                self._fork(self.sent, len(self.texts))

    def extend(self, texts: Sequence[str]) -> None:
        """Add texts that are all at hand: nothing is forked until `finish`, which shares them out evenly."""
        for text in texts:
            self.texts.add(text)
            if self.chars < pool.MIN_CHARS_FOR_POOL:
                self.chars += len(text)

    def _fork(self, start: int, stop: int) -> None:
        task = self.workers.fork(sketch_range, self.texts, start, stop, self.ngram, self.bands, self.rows)
        self.batches.append((start, stop, task))
        self.sent = stop

    def finish(self, desc: str) -> Sketch:
        """Band keys (bands, n) uint64, exact-text keys (n,) uint64 and has-words flags (n,) of every text."""
        n = len(self.texts)
        band_keys = np.empty((self.bands, n), dtype=np.uint64)
        keys = np.empty(n, dtype=np.uint64)
        has_words = np.empty(n, dtype=bool)
        if self.workers.enabled and self.chars >= pool.MIN_CHARS_FOR_POOL:  # the rest: one share per worker
            size = max(CHUNK_DOCS, -(-(n - self.sent) // self.workers.count))
            for start in range(self.sent, n, size):
                self._fork(start, min(start + size, n))
        elif self.sent < n:
            band_keys[:, self.sent:], keys[self.sent:], has_words[self.sent:] = sketch_range(
                self.texts, self.sent, n, self.ngram, self.bands, self.rows)
        self.sent = n
        batches, self.batches = self.batches, []
        waiting = sum(stop - start for start, stop, _ in batches)
        finished = iter(batches)
        next_stop = 0
        for i in progress(range(waiting), desc=desc):  # a bar over the records the children sketch
            if i == next_stop:
                start, stop, task = next(finished)
                band_keys[:, start:stop], keys[start:stop], has_words[start:stop] = self.workers.collect(task)
                next_stop = i + stop - start
        return band_keys, keys, has_words
