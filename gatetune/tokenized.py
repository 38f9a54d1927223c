"""SFT rows at scale: every record tokenised once, over several processes, into an Arrow-backed `datasets`
Dataset that is cached on disk by the hash of everything that decides its content.

The rows are those of `gatetune.encode.tokenize_example` (the one way a record becomes tokens and a loss mask),
plus a `length` column, so samplers read lengths without touching the token lists. Workers are spawned, not
forked: a forked worker inherits the parent's heap with every record in it, and the tokenizer ran at about half
speed in a process holding 200,000 records (scripts/bench_tokenize.py; docs/benchmarks.md); nor is forking safe
once CUDA or threads have started. Each worker gets the settings once and its chunks of records pickled, and
returns a chunk's rows as an Arrow table, so no process holds a Python object per token and a worker's memory
does not grow with the corpus. The cache key covers the records' content, the tokenizer (its full serialisation),
the chat template and its arguments, `max_length`, `train_on`, the format and `ENCODING_VERSION`: a second
run of the same data and settings loads the Dataset memory-mapped and skips tokenising; any change is a new
key. Entries are written under a staging name and renamed into place, so a half-written one is never read.
Delete `$GATETUNE_CACHE/tokenized/` to reclaim the space.

Beside the rows, each entry keeps one verdict per record (`verdicts.arrow`: the template gate's
`RecordEncoding`, from the same rendering): the gate of a training run reads those (`RecordVerdicts`) instead
of rendering every chat a second time. A record the template rejects is an error naming its line (`strict`,
when no template gate judges the data) or is left out of the rows with its verdict kept, for the gate to report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_checks import DataError, LoadedData
from data_checks.chat_template import ChatTemplate
from data_checks.template import RecordEncoding
from gatetune.encode import EncodedRecord, encode_record
from gatetune.errors import UserError

log = logging.getLogger(__name__)
ENCODING_VERSION = 3  # bump when encode_record gives other rows or verdicts for the same inputs
CHUNK = 1000  # records per task
START_METHOD = "spawn"  # scripts/bench_tokenize.py measures "fork" against it
SINGLE_PROCESS_BELOW = 10000  # records: starting a pool (about 2 s: each worker imports and unpickles) costs more
_STATS_KEYS = ("records", "examples", "truncated", "dropped_no_answer_tokens", "tokens", "answer_tokens",
               "template_rejected")
_JOB: dict[str, Any] = {}  # a worker's settings (`_start_worker`); the records come a chunk at a time


def cache_root() -> Path:
    return Path(os.environ.get("GATETUNE_CACHE", Path.home() / ".cache" / "gatetune")) / "tokenized"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A digest of what decides the tokenizer's output: its full serialisation (vocabulary, merges,
    normaliser, added tokens) for a fast tokenizer, else its vocabulary, plus the special tokens."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(json.dumps([str(tokenizer.eos_token), str(tokenizer.bos_token), str(tokenizer.pad_token),
                              type(tokenizer).__name__]).encode())
    return digest.hexdigest()


def cache_key(data: LoadedData, fmt: str, chat: ChatTemplate, max_length: int, train_on: str) -> str:
    digest = hashlib.sha256()
    settings = {"version": ENCODING_VERSION, "format": fmt, "max_length": max_length, "train_on": train_on,
                "template": chat.template, "template_kwargs": chat.kwargs,
                "tokenizer": tokenizer_fingerprint(chat.tokenizer)}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for record in data.records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def default_processes(records: int) -> int:
    """One per CPU core this process may use (shared with the other processes of a launch), at most 8."""
    if records < SINGLE_PROCESS_BELOW:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """While workers are spawned: without a path or name for `__main__`, they do not import it. They would, to find
    functions defined there (ours live here), and a script that calls this without an `if __name__ == "__main__":`
    guard would start again in each worker, which then dies, and the pool would restart it forever."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


def _start_worker(settings: dict[str, Any]) -> None:
    _JOB.update(settings)


def _tokenize_chunk(chunk: tuple[int, list[dict[str, Any]]]) -> tuple[Any, Any, dict[str, Any],
                                                                     tuple[int, str] | None]:
    """Rows and verdicts of a chunk (the index of its first record, its records) as Arrow tables, their counts,
    and the first template error (index in the data, message) when strict."""
    import pyarrow as pa

    start, chunk_records = chunk
    fmt, chat, max_length, train_on, strict = (_JOB[k] for k in ("fmt", "chat", "max_length", "train_on", "strict"))
    ids_column, mask_column, lengths = [], [], []
    problems, truncations, notes_column, judged = [], [], [], []
    stats: dict[str, Any] = dict.fromkeys(_STATS_KEYS, 0)
    notes_count: Counter = Counter()
    for index, record in enumerate(chunk_records, start):
        try:
            encoded = encode_record(record, fmt, chat, max_length, train_on)
        except UserError as exc:  # a template error on rows the gate renders its own way (train_on=all)
            if strict:
                return None, None, stats, (index, str(exc))
            encoded = EncodedRecord([])
            stats["template_rejected"] += 1
        verdict = encoded.verdict
        if verdict is not None and not encoded.rows and verdict.problem is not None:
            if strict:
                return None, None, stats, (index, verdict.problem.removeprefix("chat template: "))
            stats["template_rejected"] += 1
        judged.append(verdict is not None)
        problems.append(verdict.problem if verdict else None)
        truncations.append(bool(verdict and verdict.truncated))
        notes_column.append(sorted(verdict.notes) if verdict else [])
        stats["records"] += 1
        notes_count.update(encoded.notes)
        for row in encoded.rows:
            stats["examples"] += 1
            stats["truncated"] += row["truncated"]
            if not any(row["assistant_masks"]):
                stats["dropped_no_answer_tokens"] += 1
                continue
            stats["tokens"] += len(row["input_ids"])
            stats["answer_tokens"] += sum(row["assistant_masks"])
            ids_column.append(row["input_ids"])
            mask_column.append(row["assistant_masks"])
            lengths.append(len(row["input_ids"]))
    stats["template_notes"] = dict(notes_count)
    rows = pa.table({"input_ids": pa.array(ids_column, type=pa.list_(pa.int32())),
                     "assistant_masks": pa.array(mask_column, type=pa.list_(pa.int8())),
                     "length": pa.array(lengths, type=pa.int32())})
    verdicts = pa.table({"judged": pa.array(judged, type=pa.bool_()), "problem": pa.array(problems, type=pa.string()),
                         "truncated": pa.array(truncations, type=pa.bool_()),
                         "notes": pa.array(notes_column, type=pa.list_(pa.string()))})
    return rows, verdicts, stats, None


class RecordVerdicts:
    """The per-record verdicts of a tokenisation (`verdicts.arrow`) as the sequence the template gate reads
    (`RecordEncoding`, or None where the rows did not come from the gate's rendering), decoded a block at a time."""

    BLOCK = 4096

    def __init__(self, path: Path) -> None:
        import pyarrow as pa

        self._table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
        self._start, self._block = -1, []

    def __len__(self) -> int:
        return self._table.num_rows

    def __getitem__(self, index: int) -> RecordEncoding | None:
        if not self._start <= index < self._start + len(self._block):
            self._start = index - index % self.BLOCK
            block = self._table.slice(self._start, self.BLOCK).to_pydict()
            columns = zip(block["judged"], block["problem"], block["truncated"], block["notes"], strict=True)
            self._block = [RecordEncoding(problem, truncated, frozenset(notes)) if judged else None
                           for judged, problem, truncated, notes in columns]
        return self._block[index - self._start]


def _tokenize(data: LoadedData, fmt: str, chat: ChatTemplate, max_length: int, train_on: str, name: str,
              processes: int, out: Path, strict: bool) -> dict[str, Any]:
    """Tokenise `data` into the Arrow files `out/rows.arrow` and `out/verdicts.arrow`, chunk by chunk (memory does
    not grow with the corpus)."""
    from datasets.arrow_writer import ArrowWriter
    from tqdm.auto import tqdm

    settings = {"fmt": fmt, "chat": chat, "max_length": max_length, "train_on": train_on, "strict": strict}
    chunks = ((start, data.records[start:start + CHUNK]) for start in range(0, len(data), CHUNK))
    totals, notes = dict.fromkeys(_STATS_KEYS, 0), Counter()
    bar = tqdm(total=len(data), desc=f"tokenising {name}" + (f" ({processes} processes)" if processes > 1 else ""),
               unit=" records", leave=False)
    pool = None
    writer = ArrowWriter(path=str(out / "rows.arrow"))
    verdict_writer = ArrowWriter(path=str(out / "verdicts.arrow"))
    try:
        if processes > 1:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the workers are the parallelism
            with _main_script_hidden():
                pool = multiprocessing.get_context(START_METHOD).Pool(processes, _start_worker, (settings,))
            results = pool.imap(_tokenize_chunk, chunks)  # pickled as the pipe to the workers takes them
        else:
            _start_worker(settings)
            results = map(_tokenize_chunk, chunks)
        for table, verdicts, stats, error in results:
            if error is not None:
                index, message = error
                raise DataError(data.path, data.lines[index], message)
            writer.write_table(table)
            verdict_writer.write_table(verdicts)
            for key in _STATS_KEYS:
                totals[key] += stats[key]
            notes.update(stats["template_notes"])
            bar.update(stats["records"])
        writer.finalize()
        verdict_writer.finalize()
    finally:
        writer.close()
        verdict_writer.close()
        bar.close()
        _JOB.clear()
        if pool is not None:
            pool.terminate()
    totals["template_notes"] = dict(notes)
    return totals


def tokenized_split(data: LoadedData, fmt: str, chat: ChatTemplate, max_length: int, train_on: str, name: str,
                    cache: bool = True, processes: int | None = None,
                    strict: bool = True) -> tuple[Any, dict[str, Any], RecordVerdicts]:
    """The rows of `data` as a memory-mapped Dataset (`input_ids`, `assistant_masks`, `length`), their counts
    (the keys of `gatetune.data.TokenizeStats`) and the per-record verdicts, from the cache when this exact
    tokenisation was done before. A record the template rejects raises DataError when `strict`, else is counted
    in `template_rejected` and has no rows. Without the cache the files are temporary (deleted once mapped)."""
    from datasets import Dataset

    processes = processes or default_processes(len(data))
    if not cache:
        scratch = Path(tempfile.mkdtemp(prefix="gatetune-rows-"))
        try:
            stats = _tokenize(data, fmt, chat, max_length, train_on, name, processes, scratch, strict)
            return (Dataset.from_file(str(scratch / "rows.arrow"), in_memory=False), stats,
                    RecordVerdicts(scratch / "verdicts.arrow"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # the mappings keep the data readable
    entry = cache_root() / f"{name}-{cache_key(data, fmt, chat, max_length, train_on)}"
    if (entry / "stats.json").is_file():
        stats = json.loads((entry / "stats.json").read_text())
        if not (strict and stats["template_rejected"]):
            log.info("%s: tokenised rows from the cache (%s)", name, entry)
            return Dataset.from_file(str(entry / "rows.arrow")), stats, RecordVerdicts(entry / "verdicts.arrow")
        # A lenient entry holds rejected records, which strictly are an error: tokenising again raises it.
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}.", dir=entry.parent))
    try:
        stats = _tokenize(data, fmt, chat, max_length, train_on, name, processes, staging, strict)
        (staging / "stats.json").write_text(json.dumps(stats))
        try:
            os.replace(staging, entry)
        except OSError:  # another process of the launch published the same entry first: theirs is as good
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Dataset.from_file(str(entry / "rows.arrow")), stats, RecordVerdicts(entry / "verdicts.arrow")

