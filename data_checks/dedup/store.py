"""The texts of one source, kept as one UTF-8 buffer: compact, and readable by a forked child without
touching (so copying) one Python object per text.

Each text is stored UTF-8-encoded (lone surrogates kept, as JSON allows them) and followed by a space;
`ends[i]` is the offset just past text i's space. For a run of ASCII texts the buffer already holds
what `words.split_joined` reads (texts joined by single spaces): a child sketches it straight from the
buffer, with no per-text encoding, joining or reference counting.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

import numpy as np

from data_checks.dedup.words import Words, encode, split_joined


class TextStore:
    """Texts added one at a time (`add`), read back by index (`text`) or as words (`words`)."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.buffer = bytearray()
        self.ends = array("q")
        self.ascii = bytearray()  # 1 per ASCII text, else 0
        self.extend(texts)

    def add(self, text: str) -> None:
        self.buffer += text.encode("utf-8", "surrogatepass")
        self.buffer.append(0x20)
        self.ends.append(len(self.buffer))
        self.ascii.append(text.isascii())

    def extend(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.add(text)

    def section(self) -> bytes:
        """The store as bytes (`add_section` appends them to another): each text's end, ASCII flags, the buffer."""
        return self.ends.tobytes() + bytes(self.ascii) + bytes(self.buffer)

    def add_section(self, section: bytes, count: int) -> None:
        """Append the `count` texts of another store's `section()`, in order."""
        ends = np.frombuffer(section, dtype=np.int64, count=count) + len(self.buffer)
        self.ends.frombytes(ends.tobytes())
        self.ascii += section[8 * count:9 * count]
        self.buffer += section[9 * count:]

    def __len__(self) -> int:
        return len(self.ends)

    def _span(self, i: int) -> tuple[int, int]:
        """Text i's bytes, without its space."""
        return (self.ends[i - 1] if i else 0), self.ends[i] - 1

    def text(self, i: int) -> str:
        start, end = self._span(i)
        return self.buffer[start:end].decode("utf-8", "surrogatepass")

    def encoded(self, i: int) -> bytes:
        """Text i as `words.encode` gives it."""
        if self.ascii[i]:
            start, end = self._span(i)
            return bytes(self.buffer[start:end])
        return encode(self.text(i))

    def words(self, start: int, stop: int) -> Words:
        """The words of texts start..stop-1 (`words.split_words` of them)."""
        ends = np.array(self.ends[start:stop], dtype=np.int64)  # a copy: `ends` must stay resizable
        if stop > start and self.ascii.find(0, start, stop) < 0:  # all ASCII: the buffer as it is
            first = self.ends[start - 1] if start else 0
            lengths = np.diff(ends, prepend=first) - 1
            with memoryview(self.buffer) as view:
                return split_joined(view[first:int(ends[-1]) - 1], lengths)
        return self.subset_words(range(start, stop))

    def subset_words(self, indices: Sequence[int]) -> Words:
        """The words of the texts at `indices`, in that order."""
        parts = [self.encoded(i) for i in indices]
        return split_joined(b" ".join(parts), np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))
