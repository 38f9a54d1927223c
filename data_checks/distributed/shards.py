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
from data_checks.records import SkippedLines, parse_jsonl_line

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


class ShardLines:
    """(line, record) for the shard's lines, in order, `line` counted from 1 at the shard's first line; blank
    lines hold none. A line that is not a JSON object is a DataError naming the file and the line, as the
    one-process gate reports it, or, given `skipped` (`--skip-invalid`), counted there (by its line within the
    shard) and left out. After the pass, `lines` is the shard's line count (blank ones too): the line numbers
    of the shards after it start after these."""

    def __init__(self, shard: Shard, skipped: SkippedLines | None = None) -> None:
        self.shard, self.skipped, self.lines = shard, skipped, 0

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        shard = self.shard
        with open(shard.path, "rb") as f:
            f.seek(shard.start)
            position, self.lines = shard.start, 0
            while position < shard.end:
                raw = f.readline()
                if not raw:
                    break
                self.lines += 1
                if raw.strip():
                    value, problem = parse_jsonl_line(raw)
                    if problem is None:
                        yield self.lines, value
                    elif self.skipped is None:
                        raise DataError(shard.path, _line_number(shard.path, position), problem)
                    else:
                        self.skipped.add(self.lines, problem)
                position += len(raw)


def iter_shard(shard: Shard, skip_invalid: bool = False) -> Iterator[dict[str, Any]]:
    """The records of the shard's lines, in order (`ShardLines` without the lines)."""
    return (record for _, record in ShardLines(shard, SkippedLines(keep=0) if skip_invalid else None))


def records_at(shard: Shard, wanted: set[int], skip_invalid: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index within the shard, record) of the `wanted` records, in order. Without `--skip-invalid` every
    non-blank line is a record (the first stage has parsed them all), so only the wanted lines are parsed."""
    if skip_invalid:
        yield from ((i, r) for i, r in enumerate(iter_shard(shard, True)) if i in wanted)
        return
    last = max(wanted, default=-1)
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        position, index = shard.start, 0
        while position < shard.end and index <= last:
            raw = f.readline()
            if not raw:
                break
            position += len(raw)
            if raw.strip():
                if index in wanted:
                    value, problem = parse_jsonl_line(raw)
                    if problem is not None:  # the file changed since the first stage read it
                        raise DataError(shard.path, _line_number(shard.path, position - len(raw)), problem)
                    yield index, value
                index += 1


def verify_in_chunks(left: Any, right: Any, pairs: list[tuple[int, int]], ngram: int,
                     threshold: float) -> list[tuple[int, int, float]]:
    """`verify_pairs` over VERIFY_CHUNK pairs at a time, as the one-process gate does: only one chunk's shingle
    sets are held at once."""
    from data_checks.dedup.gate import VERIFY_CHUNK
    from data_checks.dedup.verify import verify_pairs

    kept: list[tuple[int, int, float]] = []
    for start in range(0, len(pairs), VERIFY_CHUNK):
        kept.extend(verify_pairs(left, right, pairs[start:start + VERIFY_CHUNK], ngram, threshold))
    return kept


def first_record(path: str | os.PathLike[str], skip_invalid: bool = False) -> dict[str, Any]:
    """The first record of the file, which decides its format ("auto")."""
    for shard in plan_shards(path, 1):
        for record in iter_shard(shard, skip_invalid):
            return record
    raise DataError(str(Path(path)), None, "no records")
