"""The distributed near-duplicate gate (`data-checks --engine local`) at scale: records/s, time and disk per stage,
peak memory per worker, precision and recall on planted pairs, and 1 worker vs 2 on the same corpus.

    python scripts/bench_dedup_scale.py --records 1000000                # ~300-word synthetic records
    python scripts/bench_dedup_scale.py --records 10000000 --workers 2   # the issue's 10^7 (about 20 GB of JSONL)

The corpus is written once to `--workdir` (streamed: memory does not grow with it) and reused. Each document is
seeded by its position, so any of them can be made again for scoring without keeping the corpus. `--planted`
of the records form pairs (a document and a copy with scattered word replacements, true 5-gram Jaccard spread
over 0.6-1.0, one pair in 20 an exact copy), scattered over the file, so most pairs span two shards. Each worker
count runs in a fresh work directory, in this process's children, one after the other (nothing else should run).
Peak memory per worker is the largest resident set of any task process (`RUSAGE_CHILDREN`). Precision and
recall count the reported pairs (verified near pairs plus exact copies) against the planted pairs with true
J >= 0.8; a reported pair that is not planted is checked exactly. The estimate for 10^9 records on 100 nodes
scales each stage's measured time per record linearly, and divides by the workers, at the measured 1 -> 2
worker efficiency.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_dedup import make_document, make_vocabulary, score, variant  # noqa: E402

from data_checks.config import ChecksConfig  # noqa: E402
from data_checks.distributed.engine import BAND_BYTES, KEY_BYTES, SHARD_BYTES, make_plan, run_distributed  # noqa: E402


class Corpus:
    """Documents made from their position (and, for a planted copy, from its base's position)."""

    def __init__(self, records: int, planted: float, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.vocabulary = make_vocabulary(rng)
        self.weights = list(itertools.accumulate(1.0 / (rank + 10) for rank in range(len(self.vocabulary))))
        self.records, self.seed = records, seed
        pairs = int(records * planted / 2)
        positions = rng.sample(range(records), 2 * pairs)
        self.copy_of = {}  # copy position -> (base position, target Jaccard)
        for k in range(pairs):
            a, b = sorted(positions[2 * k:2 * k + 2])
            self.copy_of[b] = (a, 1.0 if k % 20 == 0 else rng.uniform(0.6, 1.0))

    def _base(self, i: int) -> list[str]:
        rng = random.Random(self.seed * 1_000_003 + i)
        return make_document(rng, self.vocabulary, self.weights, rng.randint(250, 350))

    def text(self, i: int) -> str:
        if i in self.copy_of:
            a, target = self.copy_of[i]
            return " ".join(variant(random.Random(-i - 1), self._base(a), self.vocabulary, target))
        return " ".join(self._base(i))

    def write(self, path: Path) -> None:
        with path.open("w") as f:
            for i in range(self.records):
                f.write(json.dumps({"id": i, "text": self.text(i)}) + "\n")

    def planted(self) -> list[tuple[int, int, float]]:
        from bench_dedup import jaccard

        return [(a, b, jaccard(self.text(a), self.text(b))) for b, (a, _) in self.copy_of.items()]


def _reported_pairs(workdir: Path, plan) -> set[tuple[int, int]]:  # noqa: ANN001
    import numpy as np

    pairs = set()
    for v in range(plan.verify_tasks):
        part = np.load(io.BytesIO((workdir / "verified" / f"{v:03d}.npy").read_bytes()))
        pairs.update(zip(part["i"].tolist(), part["j"].tolist(), strict=True))
    for e in range(plan.exact_tasks):
        part = np.load(workdir / "exact" / f"{e:03d}.npz")
        start = 0
        for size in part["sizes"].tolist():
            members = part["members"][start:start + size].tolist()
            pairs.update((members[0], other) for other in members[1:])
            start += size
    return pairs


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _dedup_config() -> ChecksConfig:
    config = ChecksConfig()
    config.run = config.fail_on = ["dedup"]
    return config


def run(corpus_path: Path, workdir: Path, workers: int, tasks: int) -> dict:
    """One worker count, in this process (called in a child of the benchmark: its peak memory is its own)."""
    plan = make_plan(str(corpus_path), "auto", _dedup_config(), workers, tasks)
    shutil.rmtree(workdir, ignore_errors=True)
    times: dict[str, float] = {}

    def say(line: str) -> None:
        if ": done in " in line:
            name, seconds = line.split(": done in ")
            times[name] = float(seconds.rstrip(" s"))

    started = time.perf_counter()
    report = run_distributed(plan, workdir, "local", workers, say=say)
    wall = time.perf_counter() - started
    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    disk = {stage: _disk(workdir / stage) for stage in ("sketch", "exact", "bands", "needed", "fetched", "verified")}
    return {"workers": workers, "tasks": len(plan.shards), "verify_tasks": plan.verify_tasks,
            "exact_tasks": plan.exact_tasks, "wall_s": round(wall, 1), "stages_s": times,
            "records_per_s": round(report["records"] / wall), "peak_task_rss_mb": round(peak_mb),
            "disk_bytes": disk, "report": report}


def _child(path: Path, workdir: Path, workers: int, tasks: int) -> dict:
    command = [sys.executable, __file__, "--one", str(workers), "--corpus", str(path), "--workdir", str(workdir),
               "--tasks", str(tasks)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--planted", type=float, default=0.02, help="share of records in planted pairs")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (comma-separated)")
    parser.add_argument("--tasks-per-worker", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_dedup_scale"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # in a child: one worker count
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run(args.corpus, args.workdir, args.one, args.tasks)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(args.records, args.planted)
    path = args.workdir / f"corpus-{args.records}-{args.planted}.jsonl"
    if not path.exists():
        started = time.perf_counter()
        corpus.write(path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        print(f"corpus: {args.records} records, {path.stat().st_size / 1e9:.2f} GB, written in "
              f"{time.perf_counter() - started:.0f} s")
    counts = [int(w) for w in args.workers.split(",")]
    results = []
    for workers in counts:
        workdir = args.workdir / f"work-{workers}"
        # as data-checks plans it: 4 shards a worker, and one per SHARD_BYTES at least (a task's memory bound)
        tasks = max(workers * args.tasks_per_worker, -(-path.stat().st_size // SHARD_BYTES))
        result = _child(path, workdir, workers, tasks)
        result["pairs"] = _reported_pairs(workdir, make_plan(str(path), "auto", _dedup_config(), workers, tasks))
        results.append(result)
        bands = make_plan(str(path), "auto", _dedup_config(), workers, 1).bands
        print(json.dumps({k: v for k, v in result.items() if k not in ("report", "pairs")}))
    planted = corpus.planted()
    text_of = _Texts(corpus)
    scores = score(results[0]["pairs"], planted, text_of)
    assert all(r["pairs"] == results[0]["pairs"] for r in results), "worker counts found different pairs"
    assert all(r["report"] == results[0]["report"] for r in results), "worker counts gave different reports"
    print(json.dumps({"precision": scores["precision"], "recall": scores["recall"],
                      "pairs_true_at_0.8": scores["pairs_true"], "pairs_reported": scores["pairs_reported"],
                      "recall_by_jaccard": scores["recall_by_jaccard"]}))
    if len(results) >= 2:
        one, two = results[0], results[1]
        speedup = one["wall_s"] / two["wall_s"]
        print(f"{one['workers']} -> {two['workers']} workers: {speedup:.2f}x faster "
              f"({one['wall_s']:.0f} s -> {two['wall_s']:.0f} s); the reports are identical")
        efficiency = speedup / (two["workers"] / one["workers"])
        for nodes, per_node in ((100, 32), (100, 64)):
            print(estimate_at_scale(one, args.records, path.stat().st_size, bands, nodes * per_node, efficiency,
                                    f"{nodes} nodes x {per_node} workers"))
    print(f"disk per stage (bytes): {json.dumps(results[-1]['disk_bytes'])}")


def estimate_at_scale(one: dict, records: int, size: int, bands: int, workers: int, efficiency: float, where: str,
                      target: int = 10**9) -> str:
    """Wall time for `target` records from one worker's measured time per stage. Every stage but the report's
    work grows linearly with the records and is spread over as many workers as it has tasks at that size
    (sketch and fetch: one per 128 MB shard; exact, needed and verify: one per worker or 4 GB; bands: bands x
    hash ranges), at the measured efficiency. Report: one task, linear. What this leaves out (job scheduling, a
    task's start, the file system's bandwidth for the corpus read twice and the stages' files) dominates there."""
    scale = target / records
    hash_ranges = -(-int(size * scale) // BAND_BYTES)
    keyed = max(workers, -(-int(size * scale) // KEY_BYTES))
    shards = -(-int(size * scale) // SHARD_BYTES)
    parallel = {"1 sketch": shards, "2 exact-text groups": keyed, "3 band pairs": bands * hash_ranges,
                "4 needed records": keyed, "5 fetch texts": shards, "6 verify": keyed}
    parts, total = [], 0.0
    for stage, seconds in one["stages_s"].items():
        spread = min(workers, parallel.get(stage, 1))
        wall = seconds * scale / (spread * (efficiency if spread > 1 else 1.0))
        parts.append(f"{stage.split(' ', 1)[1]} {wall / 60:.1f} min on {spread}")
        total += wall
    return (f"estimate, {target:.0e} records on {where}: {total / 60:.1f} min of compute ({'; '.join(parts)}; "
            f"{efficiency:.2f} of linear in workers as measured here; not counted: scheduling, each task's start, "
            "and the shared file system's bandwidth)")


class _Texts:
    """corpus.text(i) as `texts[i]`, for `bench_dedup.score`."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    def __getitem__(self, i: int) -> str:
        return self.corpus.text(i)


if __name__ == "__main__":
    main()
