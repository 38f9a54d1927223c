"""Run the configured gates over a dataset and assemble the one report format.

Two entry points give the same report for the same data:

- `run_gates(data, ...)` takes records already in memory (`LoadedData`; training uses it);
- `stream_gates(source, ...)` / `run_gates_streamed(source, ...)` read the source one record at a time
  (`iter_records`; JSONL and CSV are streamed, other kinds are loaded whole first) and hand each record
  straight to the per-record work; `data-checks` uses it.

Both feed records to a `GatePass`: the template gate's checks (and chat-template rendering), the
record's text, its length in words, the PII scan and the agreement judgements run per record. After
the pass only what the gates need is kept: the texts the near-duplicate gate compares (only when it
runs), the word counts for the length histogram (4 bytes a record), capped lists of violations and
examples, the judgements. Near-duplicates are then found over the kept texts.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from data_checks.agreement import JudgementReader, compute_agreement
from data_checks.config import ChecksConfig
from data_checks.dedup import find_near_duplicates
from data_checks.formats import record_text, resolve_format
from data_checks.pii import PiiScan
from data_checks.progress import progress
from data_checks.records import LoadedData, SkippedLines, iter_records, source_label
from data_checks.template import TemplateCheck

ANNOTATION_FORMAT = "classification"  # rows of judgements: only the agreement gate applies
LENGTH_BINS = 20
MAX_LISTED_SKIPPED = 100  # unparseable lines listed in the report (all are counted)


def _length_histogram(words: Any) -> dict[str, Any]:
    """The histogram of the records' lengths in words (`words`: one count per record, any integer sequence)."""
    import numpy as np

    if isinstance(words, array):
        words = np.frombuffer(words, dtype=np.dtype(f"u{words.itemsize}")) if len(words) else np.empty(0)
    words = np.asarray(words).astype(np.int64)
    if not len(words):
        return {"unit": "words", "bin_edges": [], "counts": [], "mean": 0.0, "max": 0}
    counts, edges = np.histogram(words, bins=min(LENGTH_BINS, max(1, int(words.max()) + 1)))
    return {"unit": "words", "bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "mean": float(words.mean()), "max": int(words.max())}


def _not_applicable(fmt: str, config: ChecksConfig) -> dict[str, str]:
    annotations = fmt == ANNOTATION_FORMAT
    return {name: ("applies to annotation data (--format classification)" if name == "agreement"
                   else "does not apply to annotation data")
            for name in config.run if annotations != (name == "agreement")}


class GatePass:
    """The per-record work of every gate in `config.run` that applies to `fmt`, fed one record at a
    time (`add`); `results` then finishes each gate. Holds no records (see the module docstring)."""

    def __init__(self, path: str, fmt: str, config: ChecksConfig, tokenizer: Any = None,
                 max_length: int | None = None) -> None:
        self.fmt, self.config = fmt, config
        self.not_applicable = _not_applicable(fmt, config)
        running = [name for name in config.run if name not in self.not_applicable]
        self.template = TemplateCheck(fmt, tokenizer, config.template.max_violation_rate, max_length) \
            if "template" in running else None
        self.dedup_texts: list[str] | None = [] if "dedup" in running else None
        self.pii = PiiScan(config.pii) if "pii" in running else None
        self.judgements = JudgementReader(path, config.agreement) if "agreement" in running else None
        self.word_counts = array("I") if fmt != ANNOTATION_FORMAT else None  # the length histogram's input
        self.records = 0

    @property
    def runs_dedup(self) -> bool:
        return self.dedup_texts is not None

    def add(self, record: dict[str, Any], line: int) -> None:
        self.records += 1
        if self.template is not None:
            self.template.add(record, line)
        if self.word_counts is not None:
            text = record_text(record, self.fmt)
            self.word_counts.append(len(text.split()))
            if self.dedup_texts is not None:
                field = self.config.dedup.field
                self.dedup_texts.append(text if field is None else record_text(record, self.fmt, field))
            if self.pii is not None:
                field = self.config.pii.field
                self.pii.add(text if field is None else record_text(record, self.fmt, field))
        if self.judgements is not None:
            self.judgements.add(record, line)

    def results(self, against_texts: list[str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """Each gate's result object (full, uncapped) in `config.run` order, and the gates that do not apply."""
        results: dict[str, Any] = {}
        for name in self.config.run:
            if name in self.not_applicable:
                continue
            if name == "template":
                results[name] = self.template.result()
            elif name == "dedup":
                results[name] = find_near_duplicates(self.dedup_texts, self.config.dedup, against_texts)
                self.dedup_texts = None
            elif name == "pii":
                results[name] = self.pii.result()
            elif name == "agreement":
                results[name] = compute_agreement(self.judgements.judgements(), self.config.agreement)
        return results, self.not_applicable


def gate_results(data: LoadedData, fmt: str, config: ChecksConfig, tokenizer: Any = None,
                 against: LoadedData | None = None, max_length: int | None = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """Each gate's result object (full, uncapped), and the gates in `config.run` that do not apply to `fmt`."""
    gates = GatePass(data.path, fmt, config, tokenizer, max_length)
    for index, record in enumerate(progress(data.records, desc="checking records")):
        gates.add(record, data.lines[index])
    against_texts = None
    if against is not None and gates.runs_dedup:
        against_texts = [record_text(r, fmt, config.dedup.field) for r in against.records]
    return gates.results(against_texts)


def _report(path: str, records: int, fmt: str, config: ChecksConfig, results: dict[str, Any],
            not_applicable: dict[str, str], against: str | None, skipped: dict[str, Any] | None,
            word_counts: Any) -> dict[str, Any]:
    checks = {name: result.to_dict() for name, result in results.items()}
    report: dict[str, Any] = {
        "passed": all(checks[name]["passed"] for name in config.fail_on if name in checks),
        "records": records, "format": fmt, "sources": [path], "fail_on": list(config.fail_on),
        "checks": checks,
    }
    if not_applicable:
        report["not_applicable"] = not_applicable
    if against is not None:
        report["against"] = against
    if skipped is not None:
        report["skipped_invalid"] = skipped
    if fmt != ANNOTATION_FORMAT:
        report["lengths"] = _length_histogram(word_counts)
    return report


def build_report(data: LoadedData, fmt: str, config: ChecksConfig, results: dict[str, Any],
                 not_applicable: dict[str, str], against: LoadedData | None = None) -> dict[str, Any]:
    """The one report format: `passed` is false when a gate named in `config.fail_on` failed."""
    skipped = None
    if "skipped_invalid" in data.extra:
        lines = data.extra["skipped_invalid"]
        skipped = {"count": len(lines), "lines": lines[:MAX_LISTED_SKIPPED]}
    words = [len(record_text(r, fmt).split()) for r in data.records] if fmt != ANNOTATION_FORMAT else None
    return _report(data.path, len(data), fmt, config, results, not_applicable,
                   against.path if against is not None else None, skipped, words)


def run_gates(data: LoadedData, fmt: str, config: ChecksConfig, tokenizer: Any = None,
              against: LoadedData | None = None, max_length: int | None = None) -> dict[str, Any]:
    """Run every gate in `config.run` that applies to `fmt` on `data`; return the report.

    `against` (optional) is a second dataset, e.g. the eval split, checked for near-duplicates
    of `data` (contamination). Gates not in `config.fail_on` are reported but stop nothing.
    """
    results, not_applicable = gate_results(data, fmt, config, tokenizer, against, max_length)
    return build_report(data, fmt, config, results, not_applicable, against)


@dataclass
class StreamedRun:
    """One source checked by `stream_gates`: the report, each gate's full result, the resolved format,
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


def _drain(records: Iterable[Any]) -> None:
    for _ in records:
        pass


def stream_gates(source: str | os.PathLike[str], fmt: str, config: ChecksConfig, tokenizer: Any = None,
                 against: str | os.PathLike[str] | None = None, max_length: int | None = None,
                 split: str = "train", skip_invalid: bool = False) -> StreamedRun:
    """`run_gates` on a source read one record at a time (bounded memory for JSONL and CSV).

    `fmt` may be "auto": the first record's keys decide. `against` is a second source (streamed too;
    only its texts are kept, and only when the near-duplicate gate runs). Errors are those of
    `read_records` followed by `run_gates`, in the same order: a bad line anywhere in `source` is
    reported before a first record whose format cannot be told, and a bad line in `against` before
    an agreement error in `source`. Nothing is written.
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
    gates = GatePass(path, fmt, config, tokenizer, max_length)
    lines = array("I")
    for line, record in progress(chain([(first_line, first)], records), desc="checking records"):
        gates.add(record, line)
        lines.append(line)
    del first
    against_texts, against_path = None, None
    if against is not None:
        against_path = source_label(against)
        against_records = iter_records(against, split, skip_invalid)
        if gates.runs_dedup:
            against_texts = [record_text(r, fmt, config.dedup.field) for _, r in against_records]
        else:
            _drain(against_records)  # still read: an unreadable `against` is an error either way
    results, not_applicable = gates.results(against_texts)
    skipped_report = {"count": skipped.count, "lines": skipped.lines} if skipped is not None else None
    report = _report(path, gates.records, fmt, config, results, not_applicable, against_path, skipped_report,
                     gates.word_counts)
    return StreamedRun(path, fmt, gates.records, lines, results, not_applicable, report)


def run_gates_streamed(source: str | os.PathLike[str], fmt: str, config: ChecksConfig, tokenizer: Any = None,
                       against: str | os.PathLike[str] | None = None, max_length: int | None = None,
                       split: str = "train", skip_invalid: bool = False) -> dict[str, Any]:
    """The report of `stream_gates`: the same keys and values `run_gates(read_records(source), ...)` gives."""
    return stream_gates(source, fmt, config, tokenizer, against, max_length, split, skip_invalid).report
