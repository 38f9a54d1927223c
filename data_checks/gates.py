"""The one gate pipeline: every configured gate fed in one pass over the records, then the report.

`check_records` is the pipeline. It starts a `Gate` (data_checks/gate.py) for each name in `checks.run`
whose spec (data_checks/registry.py) applies to the format, hands each record to all of them together
with the record's text, and asks each for its result. Where the records come from is the caller's:

- `stream_gates(source, ...)` reads a file one record at a time (`iter_records`; JSONL and CSV are
  streamed, other kinds are loaded whole first); `data-checks` uses it;
- `run_gates(data, ...)` takes records already in memory (`LoadedData`); training uses it.

After the pass only what the gates keep remains (the texts the near-duplicate gate compares, capped
lists of violations and examples, the judgements) plus the length in words of each record (4 bytes a
record, for the report's length histogram).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from data_checks.config import ChecksConfig
from data_checks.formats import record_text, resolve_format
from data_checks.gate import ANNOTATION_FORMAT, Gate, GateContext
from data_checks.progress import progress
from data_checks.records import LoadedData, SkippedLines, iter_records, source_label
from data_checks.registry import GATES

__all__ = ["ANNOTATION_FORMAT", "GateRun", "StreamedRun", "check_records", "run_gates", "run_gates_streamed",
           "stream_gates"]

LENGTH_BINS = 20
MAX_LISTED_SKIPPED = 100  # unparseable lines listed in the report (all are counted)


@dataclass
class GateRun:
    """One dataset checked by the pipeline: the report, each gate's full result, the resolved format,
    the number of records and their lines (an `array('I')`, 4 bytes a record)."""

    path: str
    fmt: str
    records: int
    lines: array
    results: dict[str, Any]
    not_applicable: dict[str, str]
    report: dict[str, Any]

    def __len__(self) -> int:
        return self.records


StreamedRun = GateRun  # the name data-checks' CLI and older callers use


def _length_histogram(words: array) -> dict[str, Any]:
    """The histogram of the records' lengths in words (one count per record)."""
    import numpy as np

    counts_per_record = np.frombuffer(words, dtype=np.dtype(f"u{words.itemsize}")).astype(np.int64) \
        if len(words) else np.empty(0, dtype=np.int64)
    if not len(counts_per_record):
        return {"unit": "words", "bin_edges": [], "counts": [], "mean": 0.0, "max": 0}
    top = int(counts_per_record.max())
    counts, edges = np.histogram(counts_per_record, bins=min(LENGTH_BINS, max(1, top + 1)))
    return {"unit": "words", "bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "mean": float(counts_per_record.mean()), "max": top}


def check_records(path: str, fmt: str, records: Iterable[tuple[int, dict[str, Any]]], config: ChecksConfig,
                  tokenizer: Any = None, max_length: int | None = None,
                  against: tuple[str, Iterator[dict[str, Any]]] | None = None,
                  skipped: SkippedLines | dict[str, Any] | None = None, encoded: Any = None) -> GateRun:
    """Run every gate of `config.run` that applies to `fmt` over `(line, record)` pairs; return the run.

    `against` is `(label, records)` of a second dataset (e.g. the eval split) for the gates that compare
    with one (contamination); its records are read to the end either way, so an unreadable file is an
    error whether or not such a gate runs. `skipped` gives the report's `skipped_invalid` entry: the
    lines `iter_records` skipped (read after the pass), or the entry itself.
    Gates not in `config.fail_on` are reported but stop nothing. `encoded`: see `GateContext`.
    """
    context = GateContext(path, fmt, config, tokenizer, max_length, encoded)
    not_applicable = {name: GATES[name].not_applicable_reason() for name in config.run
                      if not GATES[name].applies_to(fmt)}
    gates: dict[str, Gate] = {name: GATES[name].start(context) for name in config.run if name not in not_applicable}
    annotations = fmt == ANNOTATION_FORMAT
    words, lines, running = array("I"), array("I"), list(gates.values())
    for line, record in progress(records, desc="checking records"):
        lines.append(line)
        text = None if annotations else record_text(record, fmt)
        if text is not None:
            words.append(len(text.split()))
        for gate in running:
            gate.add(record, line, text)
    reading_against = against is not None and any(GATES[name].reads_against for name in gates)
    if against is not None and not reading_against:
        _drain(against[1])  # still read: an unreadable second dataset is an error either way, and the first one
    results = {name: gate.result(against[1] if reading_against and GATES[name].reads_against else None)
               for name, gate in gates.items()}
    checks = {name: result.to_dict() for name, result in results.items()}
    report: dict[str, Any] = {
        "passed": all(checks[name]["passed"] for name in config.fail_on if name in checks),
        "records": len(lines), "format": fmt, "sources": [path], "fail_on": list(config.fail_on),
        "checks": checks,
    }
    if not_applicable:
        report["not_applicable"] = not_applicable
    if against is not None:
        report["against"] = against[0]
    if isinstance(skipped, SkippedLines):
        skipped = {"count": skipped.count, "lines": skipped.lines}
    if skipped is not None:
        report["skipped_invalid"] = skipped
    if not annotations:
        report["lengths"] = _length_histogram(words)
    return GateRun(path, fmt, len(lines), lines, results, not_applicable, report)


def run_gates(data: LoadedData, fmt: str, config: ChecksConfig, tokenizer: Any = None,
              against: LoadedData | None = None, max_length: int | None = None,
              encoded: Any = None) -> dict[str, Any]:
    """The report of `check_records` on records in memory (`fmt` already resolved); `against`, e.g. the
    eval split, is checked for near-duplicates of `data` (contamination); `encoded`: see `GateContext`."""
    skipped = None
    if "skipped_invalid" in data.extra:
        lines = data.extra["skipped_invalid"]
        skipped = {"count": len(lines), "lines": lines[:MAX_LISTED_SKIPPED]}
    second = (against.path, iter(against.records)) if against is not None else None
    records = zip(data.lines, data.records, strict=True)
    return check_records(data.path, fmt, records, config, tokenizer, max_length, second, skipped, encoded).report


def _drain(records: Iterable[Any]) -> None:
    for _ in records:
        pass


def stream_gates(source: str | os.PathLike[str], fmt: str, config: ChecksConfig, tokenizer: Any = None,
                 against: str | os.PathLike[str] | None = None, max_length: int | None = None,
                 split: str = "train", skip_invalid: bool = False) -> GateRun:
    """`check_records` on a source read one record at a time (bounded memory for JSONL and CSV).

    `fmt` may be "auto": the first record's keys decide. `against` is a second source (streamed too;
    only its texts are kept, and only when the near-duplicate gate runs). Errors come in the order of
    reading everything first: a bad line anywhere in `source` is reported before a first record whose
    format cannot be told, and a bad line in `against` before an agreement error in `source`. Nothing
    is written.
    """
    skipped = SkippedLines(keep=MAX_LISTED_SKIPPED) if skip_invalid else None
    records = iter_records(source, split, skip_invalid, skipped)
    path = source_label(source)
    first_line, first = next(records)  # an empty source raises "no records" here
    try:
        fmt = resolve_format([first], fmt, path, first_line)
    except Exception:
        _drain(records)  # a bad line further on is the error read_records would have raised first
        raise
    second = None
    if against is not None:
        second = (source_label(against), _records_of(against, split, skip_invalid))
    return check_records(path, fmt, chain([(first_line, first)], records), config, tokenizer, max_length, second,
                         skipped)


def _records_of(source: str | os.PathLike[str], split: str, skip_invalid: bool) -> Iterator[dict[str, Any]]:
    """The records of `source`, opened when first asked for (after the first dataset's pass)."""
    for _, record in iter_records(source, split, skip_invalid):
        yield record


def run_gates_streamed(source: str | os.PathLike[str], fmt: str, config: ChecksConfig, tokenizer: Any = None,
                       against: str | os.PathLike[str] | None = None, max_length: int | None = None,
                       split: str = "train", skip_invalid: bool = False) -> dict[str, Any]:
    """The report of `stream_gates`: the same keys and values `run_gates(read_records(source), ...)` gives."""
    return stream_gates(source, fmt, config, tokenizer, against, max_length, split, skip_invalid).report
