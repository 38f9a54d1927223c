"""The shuffle between the band pairs and their verification, so that the verify stage spreads over workers.

Candidate pairs join records from anywhere in the corpus: a verify task that read its records' texts from the
input would read nearly every shard, and each task would read the whole corpus. Instead:

4. `Needed` (a task per verify task V): V's candidate pairs from every band task, each once (`needed/V-pairs.npy`),
   and the sorted records they name (`needed/V.i64`, raw int64) with where each shard's records start in that
   list (`needed/V-cuts.i64`); with `--against` the same for the pairs across the files (`-x`).
5. `Fetch` (a task per input shard, then per shard of `--against`): reads its shard once and writes, for each
   verify task in turn, the texts of that task's records in the shard (`fetched/S.bin`, one section per task, each
   a `TextStore.section`), and where each section starts (`fetched/S.bin.bounds`, written last).

A fetch task reads two values of each verify task's cuts and its own slice of each needed list; a verify task
reads two values of each fetched shard's bounds and its section: raw int64 files read by offset, so neither reads
what the other tasks need.

6. `Verify` (a task per verify task V): the exact Jaccard of each of V's candidate pairs, with the one-process
   gate's code (`verify_pairs`, a chunk of pairs at a time): `verified/V.npy` (and `verified/V-x.npy`). It reads
   one byte range of each fetched shard (its own section), so the verify tasks together read only the
   candidates' texts, once per task that needs them, and no input shard at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_checks.dedup.store import TextStore
from data_checks.distributed.shards import records_at, verify_in_chunks
from data_checks.distributed.stages import Stage
from data_checks.formats import record_text


def _side(stage: Stage, suffix: str) -> tuple[list[Any], np.ndarray, str]:
    """The shards, their first records' global indices and the fetched folder of one file: the data ("") or
    `--against` ("-x")."""
    if suffix:
        from data_checks.distributed.against import against_offsets

        return stage.plan.against.shards, against_offsets(stage), "fetched-against"
    return stage.plan.shards, stage.offsets(), "fetched"


def fetched_texts(stage: Stage, rank: int, suffix: str = "") -> tuple[TextStore, np.ndarray]:
    """Verify task `rank`'s texts: its section of each fetched shard that holds one of its records, in one
    TextStore, and the record (global index) at each position of it."""
    shards, _, folder = _side(stage, suffix)
    needed = stage.read_i64(f"needed/{rank:03d}{suffix}.i64")
    cuts = stage.read_i64(f"needed/{rank:03d}{suffix}-cuts.i64")
    store = TextStore()
    for s in range(len(shards)):
        count = int(cuts[s + 1] - cuts[s])
        if count:
            store.add_section(stage.read_section(f"{folder}/{s:05d}.bin", rank), count)
    return store, needed


class Needed(Stage):
    name = "4 needed records"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        pairs = self.task_pairs(rank)
        self.save_array(f"needed/{rank:03d}-pairs.npy", pairs)
        mine = [pairs.ravel()]
        if self.plan.against is not None:
            across = self.task_pairs(rank, "-x")
            self.save_array(f"needed/{rank:03d}-pairs-x.npy", across)
            mine.append(across[:, 0])
            self._write(rank, "-x", np.unique(across[:, 1]))
        needed = np.unique(np.concatenate(mine))
        self._write(rank, "", needed)
        self.stat_update("records needed", value=len(needed))
        return data

    def _write(self, rank: int, suffix: str, needed: np.ndarray) -> None:
        _, offsets, _ = _side(self, suffix)
        self.write_i64(f"needed/{rank:03d}{suffix}.i64", needed)
        # where each shard's records start in the list; a fetch task reads only its two entries
        self.write_i64(f"needed/{rank:03d}{suffix}-cuts.i64", np.searchsorted(needed, offsets))


class Fetch(Stage):
    name = "5 fetch texts"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        plan = self.plan
        suffix = "-x" if rank >= len(plan.shards) else ""
        s = rank - len(plan.shards) if suffix else rank
        shards, offsets, folder = _side(self, suffix)
        wanted = []  # per verify task: the shard's records it needs (indices within the shard, ascending)
        for v in range(plan.verify_tasks):
            start, stop = self.read_i64(f"needed/{v:03d}{suffix}-cuts.i64", s, s + 2).tolist()
            wanted.append(self.read_i64(f"needed/{v:03d}{suffix}.i64", start, stop) - offsets[s])
        union = set(np.concatenate(wanted).tolist())
        texts: dict[int, str] = {}
        for local, record in records_at(shards[s], union, plan.skip_invalid):  # one pass, up to the last needed
            texts[local] = record_text(record, plan.fmt, plan.dedup.field)
        self.write_sections(f"{folder}/{s:05d}.bin",
                            (TextStore(texts[i] for i in local_records.tolist()).section() for local_records in wanted))
        self.stat_update("texts fetched", value=len(texts))
        return data


class Verify(Stage):
    name = "6 verify"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        plan = self.plan
        pairs = self.load_array(f"needed/{rank:03d}-pairs.npy")
        store, records = fetched_texts(self, rank)
        position = np.searchsorted(records, pairs)  # each pair's two records' places in the store
        verified = verify_in_chunks(store, None, [tuple(p) for p in position.tolist()], plan.dedup.ngram,
                                    plan.dedup.threshold)
        self.save_verified(f"verified/{rank:03d}.npy",
                           [(int(records[i]), int(records[j]), similarity) for i, j, similarity in verified])
        self.stat_update("candidate pairs", value=len(pairs))
        self.stat_update("verified pairs", value=len(verified))
        if plan.against is not None:
            across = self.load_array(f"needed/{rank:03d}-pairs-x.npy")
            theirs, their_records = fetched_texts(self, rank, "-x")
            local = np.stack([np.searchsorted(records, across[:, 0]), np.searchsorted(their_records, across[:, 1])], 1)
            found = verify_in_chunks(store, theirs, [tuple(p) for p in local.tolist()], plan.dedup.ngram,
                                     plan.dedup.threshold)
            self.save_verified(f"verified/{rank:03d}-x.npy",
                               [(int(records[i]), int(their_records[j]), s) for i, j, s in found])
            self.stat_update("candidate pairs across", value=len(across))
        return data
