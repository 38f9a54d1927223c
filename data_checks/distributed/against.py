"""`--against` (contamination) in the distributed stages: the second dataset's records that have a verified
near-duplicate among the first's, exactly as the one-process gate finds them (`NearDuplicateGate._contamination`):

- sketch: a task per shard of `against` writes its records' band keys (records with words only);
- bands: each band task also pairs the representatives of the data with the `against` records that share the
  band's key (`pairs_across`), routed to the verify task that owns the pair's two shards;
- needed, fetch, verify (verification.py): the texts of each such pair's two records shuffled to its verify task
  (the fetch stage has a task per shard of either file), and its exact Jaccard;
- report: the `contamination` entry, pairs ordered by (against record, data record) as one process orders them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_checks.dedup.config import MAX_LISTED_PAIRS
from data_checks.dedup.lsh import pairs_across
from data_checks.dedup.sketching import sketch_range
from data_checks.dedup.store import TextStore
from data_checks.distributed.shards import iter_shard
from data_checks.formats import record_text

U64 = np.uint64


def sketch_against(stage: Any, a: int) -> None:
    """Task `a` of the against side of the first stage: band keys of shard `a` of `against`."""
    plan = stage.plan
    store = TextStore()
    for record in iter_shard(plan.against.shards[a], plan.skip_invalid):
        store.add(record_text(record, plan.fmt, plan.dedup.field))
    out = f"sketch-against/{a:05d}"
    if "dedup" in plan.gates:
        band_keys, _, has_words = sketch_range(store, 0, len(store), plan.dedup.ngram, plan.bands, plan.rows)
        stage.write_bands(f"{out}/bands.bin", band_keys, has_words)
    stage.write_json(f"{out}/meta.json", {"records": len(store)})  # last: the later stages count on it


def against_offsets(stage: Any) -> np.ndarray:
    """The global index (in `against`) of each of its shards' first record."""
    counts = [stage.read_json(f"sketch-against/{s.index:05d}/meta.json")["records"] for s in stage.plan.against.shards]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def band_pairs_across(stage: Any, band: int, hash_range: int, keys: np.ndarray, index: np.ndarray,
                      offsets: np.ndarray) -> int:
    """Pairs (data record, against record) sharing this band's key, one file per verify task; returns the count.
    `keys`, `index`: the data's representatives in this band and key range (global indices)."""
    plan = stage.plan
    theirs, their_index = [], []
    other_offsets = against_offsets(stage)
    for s in plan.against.shards:
        shard_keys, shard_index = stage.read_keyed(f"sketch-against/{s.index:05d}/bands.bin",
                                                   band * plan.hash_ranges + hash_range)
        theirs.append(shard_keys)
        their_index.append(shard_index + other_offsets[s.index])
    other = np.concatenate(theirs) if theirs else np.empty(0, dtype=U64)
    other_index = np.concatenate(their_index) if their_index else np.empty(0, dtype=np.int64)
    codes = pairs_across(keys, other)
    m = max(len(other), 1)
    first, second = index[codes // m], other_index[codes % m]
    si = np.searchsorted(offsets, first, side="right") - 1
    sj = np.searchsorted(other_offsets, second, side="right") - 1
    owner = (si * len(plan.against.shards) + sj) % plan.verify_tasks
    for v in range(plan.verify_tasks):
        mine = owner == v
        stage.save_array(f"bands/{band:02d}-{hash_range:03d}-{v:03d}-x.npy", np.stack([first[mine], second[mine]], 1))
    return len(first)


def contamination(stage: Any) -> tuple[dict[str, Any], list[tuple[int, int, float]]]:
    """The report's `contamination` entry and every verified pair, as `NearDuplicateGate._contamination`."""
    verified = stage.verified_pairs("-x")
    verified.sort(key=lambda p: (p[1], p[0]))
    m = int(against_offsets(stage)[-1])
    contaminated = len({j for _, j, _ in verified})
    listed = [[i, j, round(s, 4)] for i, j, s in verified[:MAX_LISTED_PAIRS]]
    return ({"records": m, "contaminated": contaminated, "rate": contaminated / m if m else 0.0,
             "pairs": listed}, verified)
