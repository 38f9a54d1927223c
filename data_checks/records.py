"""Read a dataset into plain records, remembering where each came from.

Supported: JSONL, JSON (a list of objects, or an object holding one), Parquet, CSV,
a `datasets.save_to_disk` directory, and a hub dataset ID (`datasets.load_dataset`).
`line` is the 1-based line in the file for JSONL and CSV (header is line 1); for the
other kinds it is the 1-based row number. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import json
import os
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


def _read_jsonl(path: Path, skip_invalid: bool = False) -> LoadedData:
    """Stream the file line by line; with `skip_invalid`, unparseable lines are counted, not fatal."""
    records, lines, skipped = [], [], []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
                problem = None if isinstance(value, dict) else f"expected a JSON object, got {type(value).__name__}"
            except UnicodeDecodeError as exc:
                problem = f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)"
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON ({exc.msg} at column {exc.colno})"
            if problem is not None:
                if not skip_invalid:
                    raise DataError(str(path), number, problem)
                skipped.append({"line": number, "problem": problem})
                continue
            records.append(value)
            lines.append(number)
    return LoadedData(str(path), records, lines, "jsonl", {"skipped_invalid": skipped} if skip_invalid else {})


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
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise DataError(str(path), 1, "CSV file has no header row")
        start = reader.line_num + 1  # a quoted cell may span lines: name a row by its first line
        for row in reader:
            if row:  # blank lines hold no record (as in csv.DictReader)
                if len(row) > len(header):
                    raise DataError(str(path), start, "row has more cells than the header")
                records.append(dict(zip(header, row + [None] * (len(header) - len(row)), strict=True)))
                lines.append(start)
            start = reader.line_num + 1
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


def read_records(source: str | os.PathLike[str], split: str = "train", skip_invalid: bool = False) -> LoadedData:
    """Read every record of `source`; raise `DataError` naming the path and line on bad input.

    `skip_invalid` (JSONL only) skips unparseable lines and lists them in `extra["skipped_invalid"]`.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return _read_saved_dataset(path, split)
        raise DataError(text, None, "a directory, but not one written by datasets' save_to_disk")
    if path.is_file():
        kind = LOCAL_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise DataError(text, None, f"unknown file type {path.suffix!r} (use .jsonl, .json, .parquet or .csv)")
        readers = {"jsonl": lambda p: _read_jsonl(p, skip_invalid), "json": _read_json, "csv": _read_csv,
                   "parquet": _read_parquet}
        try:
            loaded = readers[kind](path)
        except UnicodeDecodeError as exc:
            raise DataError(text, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if not loaded.records:
            raise DataError(text, None, "no records")
        return loaded
    if looks_like_hub_id(text):
        return _read_hub(text, split)
    raise DataError(text, None, "no such file or directory")
