"""A JSONL file cut into byte ranges of whole lines, one per task of the first stage.

No pass over the file is needed to cut it: each boundary is moved to the start of the next line. A task
numbers its own records from 0; the global record index (what the report's clusters and examples hold) is
that plus the records of the shards before it, which the later stages add up from the first stage's counts.
A malformed line is reported with its real line number, counted only when one is found.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from data_checks.errors import DataError
from data_checks.records import parse_jsonl_line

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Shard:
    """Bytes [start, end) of `path`: whole lines."""

    index: int
    path: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _next_line_start(f: Any, position: int, size: int) -> int:
    if position <= 0 or position >= size:
        return min(max(position, 0), size)
    f.seek(position - 1)
    f.readline()  # to just past the newline that ends the line holding `position - 1`
    return f.tell()


def plan_shards(path: str | os.PathLike[str], count: int) -> list[Shard]:
    """`count` ranges of about equal size (fewer when the file has fewer lines); empty ones are dropped."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        bounds = sorted({_next_line_start(f, size * k // count, size) for k in range(count)} | {size})
    ranges = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    return [Shard(i, str(path), a, b) for i, (a, b) in enumerate(ranges)]


def _line_number(path: str, offset: int) -> int:
    """The 1-based number of the line starting at byte `offset` (counted only when an error needs it)."""
    newlines, done = 0, 0
    with open(path, "rb") as f:
        while done < offset:
            block = f.read(min(READ_BLOCK, offset - done))
            if not block:
                break
            newlines += block.count(b"\n")
            done += len(block)
    return newlines + 1


def iter_shard(shard: Shard) -> Iterator[dict[str, Any]]:
    """The records of the shard's lines, in order; blank lines hold none. A line that is not a JSON object is
    a DataError naming the file and the line, as the one-process gate reports it."""
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        position = shard.start
        while position < shard.end:
            raw = f.readline()
            if not raw:
                break
            if raw.strip():
                value, problem = parse_jsonl_line(raw)
                if problem is not None:
                    raise DataError(shard.path, _line_number(shard.path, position), problem)
                yield value
            position += len(raw)


def first_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The first record of the file, which decides its format ("auto")."""
    for shard in plan_shards(path, 1):
        for record in iter_shard(shard):
            return record
    raise DataError(str(Path(path)), None, "no records")
