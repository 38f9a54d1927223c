"""Text -> normalised words -> word n-gram shingles.

`normalize` and `shingles` define the shingle set as strings (the reference the tests and benchmarks
compare against). The gate never builds those strings: `split_words` cuts a batch of texts into word
spans of one byte buffer with NumPy (ASCII text skips the regex), and `hashing` hashes the spans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_NON_WORD = re.compile(r"[\W_]+")
SPARE_BYTES = 16  # after the last word, so an 8-byte read at any word's byte stays inside the buffer


def normalize(text: str) -> str:
    """Lower-case; fold every run of non-letters/digits (punctuation, `_`, whitespace) to one space; strip."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def shingles(text: str, ngram: int = 5) -> set[str]:
    """The shingle set of `text`: word `ngram`-grams of the normalised text (the whole text if shorter)."""
    words = normalize(text).split()
    if len(words) < ngram:
        return {" ".join(words)} if words else set()
    return set(map(" ".join, zip(*(words[i:] for i in range(ngram)), strict=False)))


def _build_table() -> bytes:
    # Byte -> normalised byte for ASCII text: letters lower-cased, digits kept, the rest a space.
    # Bytes >= 0x80 only occur in text already normalised by `normalize` and are kept.
    table = bytearray(b" " * 256)
    for c in range(256):
        if c >= 0x80 or chr(c).isalnum():
            table[c] = ord(chr(c).lower()) if c < 0x80 else c
    return bytes(table)


_TABLE = _build_table()


@dataclass
class Words:
    """The normalised words of a batch of documents, as spans of one byte buffer. Words hold no space
    and no zero byte; documents are separated by spaces in `buffer`."""

    buffer: np.ndarray  # uint8, with SPARE_BYTES spaces at the end
    start: np.ndarray  # int64: each word's first byte
    length: np.ndarray  # int64: each word's length in bytes
    first: np.ndarray  # int64 (documents + 1): each document's first word; first[-1] = number of words

    @property
    def counts(self) -> np.ndarray:
        """Words per document."""
        return np.diff(self.first)


def encode(text: str) -> bytes:
    """A text as `split_joined` reads it: ASCII text as it is (the table normalises it), other text
    normalised by `normalize` first, as UTF-8."""
    return text.encode("ascii") if text.isascii() else normalize(text).encode("utf-8")


def split_words(texts: Sequence[str]) -> Words:
    """The words of `normalize(text).split()` for each text, found with byte-level NumPy passes."""
    parts = [encode(t) for t in texts]
    return split_joined(b" ".join(parts), np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))


def split_joined(body: bytes | bytearray | memoryview, lengths: np.ndarray) -> Words:
    """The words of documents given as `encode`d texts joined by single spaces (`lengths`: each one's
    length in bytes)."""
    joined = b"".join((b" ", body, b" " * SPARE_BYTES)).translate(_TABLE)
    buffer = np.frombuffer(joined, dtype=np.uint8)
    is_word = buffer != 0x20
    edges = np.flatnonzero(is_word[1:] != is_word[:-1]) + 1  # alternately a word's start and its end
    del is_word
    start, end = edges[0::2], edges[1::2]
    doc_start = np.cumsum(lengths + 1) - lengths  # the leading space, then each text and one separator
    first = np.searchsorted(start, doc_start).astype(np.int64)
    return Words(buffer, start, end - start, np.append(first, len(start)))
