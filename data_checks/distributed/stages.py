"""The template, near-duplicate and PII gates as datatrove pipeline steps, one class per stage (the engine runs them in
order; `plan.py` lists the files each writes). Every stage calls the one-process gate's own code for the
work (sketching, exact-text groups, band pairs, Jaccard verification, clusters, the PII scan), so a
distributed run finds exactly the pairs and findings one process finds.

1. `Sketch` (a task per input shard): MinHash band keys and exact-text keys of each record, partitioned by
   key for the next stages; the shard's template check (each record's shape), PII scan and word counts.
2. `ExactGroups` (a task per key range): records with the same normalised text; all but the first are left
   out of the bands (as in one process, only one representative per text is compared).
3. `BandPairs` (a task per band and key range): representatives sharing the band's key, routed to the
   verification task that owns the pair's two shards.
4-6. `Needed`, `Fetch` and `Verify` (verification.py): each candidate pair's records' texts shuffled to the
   task that verifies it, and its exact Jaccard.
7. `Report` (one task): clusters, rates, PII counts and examples, the length histogram: `report.json`.
8. `Clean` (with `--write-clean`, a task per shard): the records the clean copy keeps, redacted if asked.
"""

from __future__ import annotations

import io
import json
from array import array
from typing import Any

import numpy as np
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from data_checks.dedup.clusters import exact_groups
from data_checks.dedup.lsh import pairs_within
from data_checks.dedup.sketching import sketch_range
from data_checks.dedup.store import TextStore
from data_checks.distributed import quiet  # noqa: F401  (task logs go to their files, errors to the console)
from data_checks.distributed.merge import build_report, exact_copies
from data_checks.distributed.plan import Plan
from data_checks.distributed.shards import ShardLines, iter_shard
from data_checks.errors import DataError
from data_checks.formats import record_text
from data_checks.gates import MAX_LISTED_SKIPPED
from data_checks.records import SkippedLines

U64 = np.uint64


class Stage(PipelineStep):
    """A stage of one plan: `run(data, rank, world_size)` does task `rank`; outputs go under `workdir`."""

    type = "gatetune data gates"

    def __init__(self, plan: Plan, workdir: str) -> None:
        super().__init__()
        self.plan, self.workdir = plan, workdir

    def __call__(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        """The task; a DataError (a malformed line) is also left in `errors/` for the command to report, since
        under SLURM and Ray a task's exception does not reach it."""
        error = f"errors/{self.name.split()[1]}-{rank:05d}.json"
        if self.folder.exists(error):
            self.folder.rm(error)
        try:
            return super().__call__(data, rank, world_size)
        except DataError as exc:
            self.write_json(error, {"path": exc.path, "line": exc.line, "problem": exc.problem})
            raise

    @property
    def folder(self) -> Any:
        return get_datafolder(self.workdir)

    def save(self, path: str, **arrays: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with self.folder.open(path, "wb") as f:
            f.write(buffer.getvalue())

    def load(self, path: str) -> dict[str, np.ndarray]:
        with self.folder.open(path, "rb") as f:
            data = np.load(io.BytesIO(f.read()))
            return {k: data[k] for k in data.files}

    def write_json(self, path: str, value: Any) -> None:
        with self.folder.open(path, "w") as f:
            json.dump(value, f)

    def read_json(self, path: str) -> Any:
        with self.folder.open(path, "r") as f:
            return json.load(f)

    def save_array(self, path: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, array)
        with self.folder.open(path, "wb") as f:
            f.write(buffer.getvalue())

    def load_array(self, path: str) -> np.ndarray:
        with self.folder.open(path, "rb") as f:
            return np.load(io.BytesIO(f.read()))

    def write_i64(self, path: str, values: Any) -> None:
        """`values` as raw int64, so that a reader can take a few of them without the rest (`read_i64`)."""
        with self.folder.open(path, "wb") as f:
            f.write(np.ascontiguousarray(values, dtype=np.int64).tobytes())

    def read_i64(self, path: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values [start, stop) of a `write_i64` file (all from `start` when `stop` is None), reading only those."""
        with self.folder.open(path, "rb") as f:
            f.seek(start * 8)
            raw = f.read() if stop is None else f.read((stop - start) * 8)
        return np.frombuffer(raw, dtype=np.int64)

    def write_sections(self, path: str, sections: Any) -> None:
        """Byte strings one after another in `path`, and where each starts in `path.bounds` (written last): a task
        that needs one section reads two bounds and its bytes (`read_section`), not the file. One file per task
        where a file per (task, reader) would make millions of small files at scale."""
        bounds = [0]
        with self.folder.open(path, "wb") as f:
            for section in sections:
                f.write(section)
                bounds.append(bounds[-1] + len(section))
        self.write_i64(f"{path}.bounds", bounds)

    def read_section(self, path: str, k: int) -> bytes:
        start, stop = self.read_i64(f"{path}.bounds", k, k + 2).tolist()
        if stop == start:
            return b""
        with self.folder.open(path, "rb") as f:
            f.seek(start)
            return f.read(stop - start)

    def write_keyed(self, path: str, parts: Any) -> None:
        """Sections of (key, record) pairs: `parts` gives (keys uint64, index int64) per section."""
        self.write_sections(path, (np.stack([np.asarray(k, dtype=U64).view(np.int64), np.asarray(i, dtype=np.int64)])
                                   .tobytes() for k, i in parts))

    def read_keyed(self, path: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Section `k` of a `write_keyed` file: its keys (uint64) and records (int64, within the shard)."""
        both = np.frombuffer(self.read_section(path, k), dtype=np.int64).reshape(2, -1)
        return both[0].view(U64), both[1]

    def write_bands(self, path: str, band_keys: np.ndarray, keep: np.ndarray) -> None:
        """A shard's band keys in one file: a section per (band, key range), the band tasks' order."""
        plan = self.plan
        self.write_keyed(path, (part for b in range(plan.bands) for part in partition(band_keys[b], keep,
                                                                                      plan.hash_ranges)))

    def task_pairs(self, rank: int, suffix: str = "") -> np.ndarray:
        """Verify task `rank`'s candidate pairs from every band task, each once (`suffix` "-x": across files)."""
        plan = self.plan
        parts = [self.load_array(f"bands/{b:02d}-{h:03d}-{rank:03d}{suffix}.npy")
                 for b in range(plan.bands) for h in range(plan.hash_ranges)]
        return np.unique(np.concatenate(parts), axis=0) if parts else np.empty((0, 2), dtype=np.int64)

    def save_verified(self, path: str, found: list[tuple[int, int, float]]) -> None:
        self.save_array(path, np.array(found, dtype=[("i", np.int64), ("j", np.int64), ("jaccard", np.float64)]))

    def verified_pairs(self, suffix: str = "") -> list[tuple[int, int, float]]:
        """Every verify task's verified pairs (i, j, Jaccard); `suffix` "-x": those across the two files."""
        verified: list[tuple[int, int, float]] = []
        for v in range(self.plan.verify_tasks):
            part = self.load_array(f"verified/{v:03d}{suffix}.npy")
            verified.extend(zip(part["i"].tolist(), part["j"].tolist(), part["jaccard"].tolist(), strict=True))
        return verified

    def metas(self) -> list[dict[str, Any]]:
        """Each shard's meta.json (its records and lines), read once per task."""
        if getattr(self, "_metas", None) is None:
            self._metas = [self.read_json(f"sketch/{s.index:05d}/meta.json") for s in self.plan.shards]
        return self._metas

    def offsets(self) -> np.ndarray:
        """The global index of each shard's first record (the first stage's counts, added up)."""
        return np.concatenate([[0], np.cumsum([m["records"] for m in self.metas()])]).astype(np.int64)


def partition(keys: np.ndarray, keep: np.ndarray, parts: int) -> Any:
    """(keys, records) of each key range `key % parts`, of the records `keep` marks, in record order."""
    index = np.arange(len(keys), dtype=np.int64)
    for p in range(parts):
        mine = keep & (keys % U64(parts) == U64(p))
        yield keys[mine], index[mine]


class Sketch(Stage):
    name = "1 sketch"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        if rank >= len(self.plan.shards):  # a shard of --against
            from data_checks.distributed.against import sketch_against

            sketch_against(self, rank - len(self.plan.shards))
            return data
        plan, shard = self.plan, self.plan.shards[rank]
        out = f"sketch/{rank:05d}"
        scan = None
        if "pii" in plan.gates:
            from data_checks.pii.scan import PiiScan

            scan = PiiScan(plan.pii)
        template = None
        if "template" in plan.gates:
            from data_checks.template import TemplateCheck, load_chat_template

            rendering = dict(plan.rendering or {})
            max_length = rendering.pop("max_length", None)
            chat = load_chat_template(**rendering) if rendering else None
            template = TemplateCheck(plan.fmt, chat, plan.template.max_violation_rate, max_length)
        store, words = TextStore(), array("I")
        skipped = SkippedLines(keep=MAX_LISTED_SKIPPED) if plan.skip_invalid else None
        reader = ShardLines(shard, skipped)
        for line, record in reader:  # one pass; the shard's texts stay as one UTF-8 buffer
            if template is not None:
                template.add(record, line)
            text = record_text(record, plan.fmt)
            words.append(len(text.split()))
            if "dedup" in plan.gates:
                store.add(text if plan.dedup.field is None else record_text(record, plan.fmt, plan.dedup.field))
            if scan is not None:
                scan.add(text if plan.pii.field is None else record_text(record, plan.fmt, plan.pii.field))
        if "dedup" in plan.gates:
            band_keys, keys, has_words = sketch_range(store, 0, len(store), plan.dedup.ngram, plan.bands, plan.rows)
            self.write_keyed(f"{out}/exact.bin", partition(keys, has_words, plan.exact_tasks))
            self.write_bands(f"{out}/bands.bin", band_keys, has_words)
        if scan is not None:
            self.write_json(f"{out}/pii.json", {
                "records_with_pii": scan.records_with_pii, "by_type": scan.by_type,
                "by_confidence": scan.by_confidence, "placeholders": scan.placeholders, "examples": scan.examples})
        if template is not None:
            self.write_json(f"{out}/template.json", {
                "checked": template.checked, "count": template.count, "violations": template.violations,
                "truncated": template.truncated, "notes": dict(template.notes)})
        if skipped is not None:
            self.write_json(f"{out}/skipped.json", {"count": skipped.count, "lines": skipped.lines})
        counts = np.frombuffer(words, dtype=np.uint32)
        self.save(f"{out}/words.npz", words=counts)
        meta = {"records": len(words), "lines": reader.lines, "words_sum": int(counts.sum(dtype=np.int64)),
                "words_min": int(counts.min()) if len(counts) else None,
                "words_max": int(counts.max()) if len(counts) else None}
        self.write_json(f"{out}/meta.json", meta)  # last: the later stages count on it
        self.stat_update("records", value=len(words))
        return data


class ExactGroups(Stage):
    name = "2 exact-text groups"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        offsets = self.offsets()
        keys, index = [], []
        for s in self.plan.shards:
            shard_keys, shard_index = self.read_keyed(f"sketch/{s.index:05d}/exact.bin", rank)
            keys.append(shard_keys)
            index.append(shard_index + offsets[s.index])
        keys_all = np.concatenate(keys) if keys else np.empty(0, dtype=U64)
        index_all = np.concatenate(index) if index else np.empty(0, dtype=np.int64)
        # exact_groups takes every record's key with a has-words flag: here the records of this key range
        order = np.argsort(index_all, kind="stable")
        ordered = index_all[order]  # once: indexing it anew per group made this stage quadratic
        _, groups = exact_groups(keys_all[order], np.ones(len(order), dtype=bool))
        members = [ordered[np.array(m)] for m in groups.values()]
        sizes = np.array([len(m) for m in members], dtype=np.int64)
        flat = np.concatenate(members) if members else np.empty(0, dtype=np.int64)
        self.save(f"exact/{rank:03d}.npz", members=flat, sizes=sizes)
        self.stat_update("exact groups", value=len(members))
        return data


class BandPairs(Stage):
    name = "3 band pairs"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        plan = self.plan
        band, hash_range = divmod(rank, plan.hash_ranges)
        offsets = self.offsets()
        _, copies = exact_copies(self)
        keys, index = [], []
        for s in plan.shards:
            shard_keys, shard_index = self.read_keyed(f"sketch/{s.index:05d}/bands.bin", rank)
            keep = ~np.isin(shard_index + offsets[s.index], copies, assume_unique=False)
            keys.append(shard_keys[keep])
            index.append(shard_index[keep] + offsets[s.index])
        keys_all = np.concatenate(keys) if keys else np.empty(0, dtype=U64)
        index_all = np.concatenate(index) if index else np.empty(0, dtype=np.int64)
        n = max(len(keys_all), 1)
        codes = pairs_within(keys_all)
        first, second = index_all[codes // n], index_all[codes % n]  # positions ascend with the global index
        shard_of = np.searchsorted(offsets, np.concatenate([first, second]), side="right") - 1
        si, sj = shard_of[:len(first)], shard_of[len(first):]
        owner = (si * len(plan.shards) + sj) % plan.verify_tasks
        for v in range(plan.verify_tasks):
            mine = owner == v
            self.save_array(f"bands/{band:02d}-{hash_range:03d}-{v:03d}.npy", np.stack([first[mine], second[mine]], 1))
        self.stat_update("candidate pairs", value=len(first))
        if plan.against is not None:
            from data_checks.distributed.against import band_pairs_across

            self.stat_update("candidate pairs across", value=band_pairs_across(self, band, hash_range, keys_all,
                                                                               index_all, offsets))
        return data


class Report(Stage):
    name = "7 report"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        report, dedup = build_report(self)
        if self.plan.clean:
            from data_checks.dedup.clusters import dropped_indices

            drop = np.array(sorted(dropped_indices(dedup)) if dedup is not None else [], dtype=np.int64)
            self.save_array("clean/dropped.npy", drop)
        self.write_json("report.json", report)  # last: the command waits for it
        return data


class Clean(Stage):
    """`--write-clean`, a task per shard: the shard's records but those the report's clusters leave out, PII
    redacted with `--redact-pii`, as JSON lines the way one process writes them; the command joins the parts."""

    name = "8 clean copy"

    def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Any:
        from data_checks.pii import redact_record

        plan = self.plan
        dropped, offsets = self.load_array("clean/dropped.npy"), self.offsets()
        first, end = int(offsets[rank]), int(offsets[rank + 1])
        drop = set((dropped[np.searchsorted(dropped, first):np.searchsorted(dropped, end)] - first).tolist())
        kept = 0
        with self.folder.open(f"clean/{rank:05d}.jsonl", "w", encoding="utf-8") as f:
            for local, record in enumerate(iter_shard(plan.shards[rank], plan.skip_invalid)):
                if local not in drop:
                    f.write(json.dumps(redact_record(record, plan.pii) if plan.redact_pii else record,
                                       ensure_ascii=False) + "\n")
                    kept += 1
        self.write_json(f"clean/{rank:05d}.json", {"kept": kept})
        self.stat_update("records kept", value=kept)
        return data
