"""Read a dataset into plain records, remembering where each came from.

Supported: JSONL, JSON (a list of objects, or an object holding one), Parquet, CSV,
a `datasets.save_to_disk` directory, and a hub dataset ID (`datasets.load_dataset`).
`line` is the 1-based line in the file for JSONL and CSV (header is line 1); for the
other kinds it is the 1-based row number. Nothing here imports torch.

Two ways in: `read_records` returns every record at once (`LoadedData`; training uses it), and
`iter_records` yields `(line, record)` one at a time. JSONL and CSV are streamed: one line (one CSV
row) is parsed, handed out and dropped, so memory does not grow with the file; `data-checks` reads
them this way. JSON (a single array), Parquet and `save_to_disk`/hub datasets are still loaded whole
and then handed out one by one. Either way the errors are the same: the first bad line stops the read
with `path:line: problem`, or, with `skip_invalid` (JSONL), is counted and skipped.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_checks.errors import DataError

LOCAL_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
                  ".csv": "csv"}


@dataclass
class LoadedData:
    """Records read from one source, with the source location of each."""

    path: str
    records: list[dict[str, Any]]
    lines: list[int]
    kind: str = "jsonl"
    extra: dict[str, Any] = field(default_factory=dict)

    def where(self, index: int) -> str:
        return f"{self.path}:{self.lines[index]}"

    def __len__(self) -> int:
        return len(self.records)


class SkippedLines:
    """The unparseable lines `skip_invalid` skipped: every one counted, the first `keep` listed
    (all of them when `keep` is None) as `{"line": n, "problem": "..."}`."""

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep
        self.count = 0
        self.lines: list[dict[str, Any]] = []

    def add(self, line: int, problem: str) -> None:
        self.count += 1
        if self.keep is None or len(self.lines) < self.keep:
            self.lines.append({"line": line, "problem": problem})


def parse_jsonl_line(raw: bytes) -> tuple[Any, str | None]:
    """One non-blank JSONL line: (the object, None), or (None, why it is not a record)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


def _iter_jsonl(path: Path, skip_invalid: bool, skipped: SkippedLines | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """One line at a time; with `skip_invalid`, unparseable lines go to `skipped` instead of stopping."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            value, problem = parse_jsonl_line(raw)
            if problem is not None:
                if not skip_invalid:
                    raise DataError(str(path), number, problem)
                if skipped is not None:
                    skipped.add(number, problem)
                continue
            yield number, value


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """One row at a time, named by its first line (the header is line 1)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header, start = None, 1
        try:
            header = next(reader, None)
            if not header:
                raise DataError(str(path), 1, "CSV file has no header row")
            start = reader.line_num + 1  # a quoted cell may span lines: name a row by its first line
            for row in reader:
                if row:  # blank lines hold no record (as in csv.DictReader)
                    if len(row) > len(header):
                        raise DataError(str(path), start, "row has more cells than the header")
                    yield start, dict(zip(header, row + [None] * (len(header) - len(row)), strict=True))
                start = reader.line_num + 1
        except csv.Error as exc:  # e.g. a cell over csv.field_size_limit()
            raise DataError(str(path), start, f"not valid CSV ({exc})") from None


def _read_jsonl(path: Path, skip_invalid: bool = False) -> LoadedData:
    skipped = SkippedLines()
    records, lines = [], []
    for number, record in _iter_jsonl(path, skip_invalid, skipped):
        records.append(record)
        lines.append(number)
    return LoadedData(str(path), records, lines, "jsonl", {"skipped_invalid": skipped.lines} if skip_invalid else {})


def _read_json(path: Path) -> LoadedData:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(str(path), exc.lineno, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(str(path), None, "expected a JSON list of records (or an object holding exactly one list)")
        value = lists[0]
    if not isinstance(value, list):
        raise DataError(str(path), None, f"expected a JSON list of records, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise DataError(str(path), None, f"record {i + 1} is {type(item).__name__}, expected an object")
    return LoadedData(str(path), value, list(range(1, len(value) + 1)), "json")


def _read_csv(path: Path) -> LoadedData:
    records, lines = [], []
    for number, record in _iter_csv(path):
        records.append(record)
        lines.append(number)
    return LoadedData(str(path), records, lines, "csv")


def _read_parquet(path: Path) -> LoadedData:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DataError(str(path), None, "reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(str(path), None, f"not a readable Parquet file ({exc})") from None
    records = table.to_pylist()
    return LoadedData(str(path), records, list(range(1, len(records) + 1)), "parquet")


def _from_hf_dataset(dataset: Any, source: str, kind: str) -> LoadedData:
    records = [dict(r) for r in dataset]
    return LoadedData(source, records, list(range(1, len(records) + 1)), kind)


def _read_saved_dataset(path: Path, split: str) -> LoadedData:
    from datasets import DatasetDict, load_from_disk

    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise DataError(str(path), None, f"split {split!r} not found (has: {', '.join(dataset)})")
        dataset = dataset[split]
    return _from_hf_dataset(dataset, str(path), "saved_dataset")


def _read_hub(name: str, split: str) -> LoadedData:
    from datasets import load_dataset

    try:
        dataset = load_dataset(name, split=split)
    except Exception as exc:  # network or missing dataset: say which source failed
        raise DataError(name, None, f"could not load hub dataset (split {split!r}): {exc}") from None
    return _from_hf_dataset(dataset, name, "hub")


def looks_like_hub_id(source: str) -> bool:
    """`owner/name` with no such local path: treat it as a hub dataset ID."""
    parts = source.split("/")
    return (len(parts) == 2 and all(parts) and not source.startswith((".", "~")) and not os.path.exists(source)
            and Path(source).suffix.lower() not in LOCAL_SUFFIXES)


def source_label(source: str | os.PathLike[str]) -> str:
    """How `LoadedData.path` and the reports name `source`: the local path (`~` expanded), or the hub ID."""
    text = str(source)
    return text if looks_like_hub_id(text) else str(Path(text).expanduser())


def source_kind(source: str | os.PathLike[str]) -> str:
    """What `source` is: jsonl, json, csv, parquet, saved_dataset or hub; `DataError` when it is none of them."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return "saved_dataset"
        raise DataError(text, None, "a directory, but not one written by datasets' save_to_disk")
    if path.is_file():
        kind = LOCAL_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise DataError(text, None, f"unknown file type {path.suffix!r} (use .jsonl, .json, .parquet or .csv)")
        return kind
    if looks_like_hub_id(text):
        return "hub"
    raise DataError(text, None, "no such file or directory")


def _read_whole(source: str, kind: str, split: str, skip_invalid: bool) -> LoadedData:
    path = Path(source).expanduser()
    if kind == "saved_dataset":
        return _read_saved_dataset(path, split)
    if kind == "hub":
        return _read_hub(source, split)
    readers = {"jsonl": lambda p: _read_jsonl(p, skip_invalid), "json": _read_json, "csv": _read_csv,
               "parquet": _read_parquet}
    return readers[kind](path)


def read_records(source: str | os.PathLike[str], split: str = "train", skip_invalid: bool = False) -> LoadedData:
    """Read every record of `source`; raise `DataError` naming the path and line on bad input.

    `skip_invalid` (JSONL only) skips unparseable lines and lists them in `extra["skipped_invalid"]`.
    """
    text = str(source)
    kind = source_kind(text)
    try:
        loaded = _read_whole(text, kind, split, skip_invalid)
    except UnicodeDecodeError as exc:  # JSON and CSV files (JSONL is decoded line by line)
        raise _not_utf8(text, exc) from None
    if kind not in ("saved_dataset", "hub") and not loaded.records:
        raise DataError(text, None, "no records")
    return loaded


def iter_records(source: str | os.PathLike[str], split: str = "train", skip_invalid: bool = False,
                 skipped: SkippedLines | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """`(line, record)` for every record of `source`, one at a time: JSONL and CSV are streamed (bounded
    memory), the other kinds are loaded whole first (see the module docstring).

    A missing or unknown source raises `DataError` here, at the call; bad lines raise it when reached,
    with the path and line, and a source without records raises "no records" at its end. With
    `skip_invalid` (JSONL only), unparseable lines are recorded in `skipped` (when given) and passed over.
    """
    text = str(source)
    kind = source_kind(text)
    if kind == "jsonl":
        found = _iter_jsonl(Path(text).expanduser(), skip_invalid, skipped)
    elif kind == "csv":
        found = _iter_csv(Path(text).expanduser())
    else:
        found = None
    return _nonempty(text, kind, split, found)


def _not_utf8(source: str, exc: UnicodeDecodeError) -> DataError:
    return DataError(source, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")


def _nonempty(source: str, kind: str, split: str,
              found: Iterator[tuple[int, dict[str, Any]]] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """`found` (or, for the kinds not streamed, the whole source read now) with `read_records`' errors."""
    empty = True
    try:
        if found is None:
            loaded = _read_whole(source, kind, split, False)
            if kind in ("saved_dataset", "hub"):
                empty = False  # read_records does not call these empty either
            found = zip(loaded.lines, loaded.records, strict=True)
        for item in found:
            empty = False
            yield item
    except UnicodeDecodeError as exc:
        raise _not_utf8(source, exc) from None
    if empty:
        raise DataError(source, None, "no records")
