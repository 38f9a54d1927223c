"""SFT rows at scale: every record tokenised once, over several processes, into an Arrow-backed `datasets`
Dataset that is cached on disk by the hash of everything that decides its content.

The rows are those of `gatetune.encode.tokenize_example` (the one way a record becomes tokens and a loss mask),
plus a `length` column, so samplers read lengths without touching the token lists. Workers are forked and read
the records from the parent's memory; each returns a chunk as an Arrow table, so the parent never holds a
Python object per token. The cache key covers the records' content, the tokenizer (its full serialisation),
the chat template and its arguments, `max_length`, `train_on`, the format and `ENCODING_VERSION`: a second
run of the same data and settings loads the Dataset memory-mapped and skips tokenising; any change is a new
key. Entries are written under a staging name and renamed into place, so a half-written one is never read.
Delete `$GATETUNE_CACHE/tokenized/` to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from data_checks import DataError, LoadedData
from data_checks.chat_template import ChatTemplate
from gatetune.encode import to_example, tokenize_example
from gatetune.errors import UserError

log = logging.getLogger(__name__)
ENCODING_VERSION = 1  # bump when tokenize_example gives other rows for the same inputs
CHUNK = 1000  # records per task
SINGLE_PROCESS_BELOW = 4000  # records: a pool costs more than it saves
_STATS_KEYS = ("records", "examples", "truncated", "dropped_no_answer_tokens", "tokens", "answer_tokens")
_JOB: dict[str, Any] = {}  # what forked workers read: the records and the settings (set before the fork)


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


def _tokenize_chunk(span: tuple[int, int]) -> tuple[Any, dict[str, Any], tuple[int, str] | None]:
    """Rows of records[start:end] as an Arrow table, their counts, and the first error (index, message)."""
    import pyarrow as pa

    records, fmt, chat, max_length, train_on = (_JOB[k] for k in ("records", "fmt", "chat", "max_length",
                                                                   "train_on"))
    ids_column, mask_column, lengths = [], [], []
    stats: dict[str, Any] = dict.fromkeys(_STATS_KEYS, 0)
    notes_count: Counter = Counter()
    for index in range(*span):
        notes: set[str] = set()
        try:
            rows = tokenize_example(to_example(records[index], fmt), chat, max_length, train_on, notes)
        except UserError as exc:
            return None, stats, (index, str(exc))
        stats["records"] += 1
        notes_count.update(notes)
        for row in rows:
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
    table = pa.table({"input_ids": pa.array(ids_column, type=pa.list_(pa.int32())),
                      "assistant_masks": pa.array(mask_column, type=pa.list_(pa.int8())),
                      "length": pa.array(lengths, type=pa.int32())})
    return table, stats, None


def _tokenize(data: LoadedData, fmt: str, chat: ChatTemplate, max_length: int, train_on: str, name: str,
              processes: int, out: Path) -> dict[str, Any]:
    """Tokenise `data` into the Arrow file `out`, chunk by chunk (memory does not grow with the corpus)."""
    from datasets.arrow_writer import ArrowWriter
    from tqdm.auto import tqdm

    _JOB.update(records=data.records, fmt=fmt, chat=chat, max_length=max_length, train_on=train_on)
    spans = [(start, min(start + CHUNK, len(data))) for start in range(0, len(data), CHUNK)]
    totals, notes = dict.fromkeys(_STATS_KEYS, 0), Counter()
    bar = tqdm(total=len(data), desc=f"tokenising {name}" + (f" ({processes} processes)" if processes > 1 else ""),
               unit=" records", leave=False)
    pool = None
    writer = ArrowWriter(path=str(out))
    try:
        if processes > 1:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the workers are the parallelism
            pool = multiprocessing.get_context("fork").Pool(processes)
            results = pool.imap(_tokenize_chunk, spans)
        else:
            results = map(_tokenize_chunk, spans)
        for table, stats, error in results:
            if error is not None:
                index, message = error
                raise DataError(data.path, data.lines[index], message)
            writer.write_table(table)
            for key in _STATS_KEYS:
                totals[key] += stats[key]
            notes.update(stats["template_notes"])
            bar.update(stats["records"])
        writer.finalize()
    finally:
        writer.close()
        bar.close()
        _JOB.clear()
        if pool is not None:
            pool.terminate()
    totals["template_notes"] = dict(notes)
    return totals


def tokenized_split(data: LoadedData, fmt: str, chat: ChatTemplate, max_length: int, train_on: str, name: str,
                    cache: bool = True, processes: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The rows of `data` as a memory-mapped Dataset (`input_ids`, `assistant_masks`, `length`) and their
    counts (the keys of `gatetune.data.TokenizeStats`), from the cache when this exact tokenisation was done
    before. Without the cache the Arrow file is a temporary one (deleted once mapped)."""
    from datasets import Dataset

    processes = processes or default_processes(len(data))
    if not cache:
        scratch = Path(tempfile.mkdtemp(prefix="gatetune-rows-"))
        try:
            stats = _tokenize(data, fmt, chat, max_length, train_on, name, processes, scratch / "rows.arrow")
            return Dataset.from_file(str(scratch / "rows.arrow"), in_memory=False), stats
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # the mapping keeps the data readable
    entry = cache_root() / f"{name}-{cache_key(data, fmt, chat, max_length, train_on)}"
    if (entry / "stats.json").is_file():
        log.info("%s: tokenised rows from the cache (%s)", name, entry)
        return Dataset.from_file(str(entry / "rows.arrow")), json.loads((entry / "stats.json").read_text())
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}.", dir=entry.parent))
    try:
        stats = _tokenize(data, fmt, chat, max_length, train_on, name, processes, staging / "rows.arrow")
        (staging / "stats.json").write_text(json.dumps(stats))
        try:
            os.replace(staging, entry)
        except OSError:  # another process of the launch published the same entry first: theirs is as good
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Dataset.from_file(str(entry / "rows.arrow")), stats
