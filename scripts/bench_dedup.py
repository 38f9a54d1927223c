"""Benchmark the near-duplicate gate against a plain datasketch loop.

    python scripts/bench_dedup.py                 # 20k synthetic ~300-word documents, in this process
    python scripts/bench_dedup.py --file data.jsonl [--field text]   # also time a real JSONL file
    python scripts/bench_dedup.py --end-to-end    # 10^5 documents as JSONL through the `data-checks` command
    python scripts/bench_dedup.py --end-to-end --old-code DIR   # ... and the same command from another checkout

End to end (`--end-to-end`): the corpus below, `--docs` documents (default 100,000 in this mode), is
written once as JSONL (`{"id": k, "text": ...}`, cached in `--workdir`), and
`python -m data_checks FILE --checks dedup --json REPORT` runs as a child process, timed wall clock
from start to exit (interpreter start, reading and parsing, the per-record pass, the gate, the report),
best of `--repeats`. Precision and recall come from one more, untimed, run with `--write-clean`: a
planted pair is found when the copy leaves out its second record (the cluster keeps its lowest index),
and every record left out that is not the second record of a planted pair with true J >= 0.8 is a
false positive; that run's report must equal the timed one's. "Reading" is the same child process
doing only what the command does per record before the gate (`iter_records`, the record's text, its
word count). The plain datasketch loop runs in this process on `--plain-docs` documents, as below.

The synthetic corpus is seeded. A tenth of it is planted near-duplicate pairs (a base document and a
copy with scattered word replacements) whose true Jaccard on the 5-gram shingle sets spreads over
0.6-1.0; the true Jaccard of every planted pair is computed exactly. Ours runs on the whole corpus,
end to end (shingle, hash, LSH, verify, report; worker start-up included), best of `--repeats`.
The plain loop (datasketch `MinHash.update` per shingle + `MinHashLSH(threshold=0.8, num_perm=128)`,
reporting every LSH candidate pair, as that loop usually does) runs on `--plain-docs` documents with
the same mix. Both are scored on the planted pairs with true J >= 0.8 among the documents they saw
(precision counts reported pairs with true J < 0.8, checked exactly, as false). Peak memory is measured
in a separate single-process run under tracemalloc, minus the texts themselves.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATA_CHECKS_NO_PROGRESS", "1")

from data_checks.dedup import DedupGateConfig, find_near_duplicates, shingles  # noqa: E402

THRESHOLD = 0.8


def make_vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "pe", "do", "ga", "hu", "ber", "tin", "ost", "an",
                 "el", "is", "or", "um", "tra", "che", "spo", "gli", "ven"]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
    return sorted(words)


def make_document(rng: random.Random, vocabulary: list[str], weights: list[float], words: int) -> list[str]:
    body = rng.choices(vocabulary, cum_weights=weights, k=words)
    for i in range(0, words, rng.randint(8, 20)):  # sentences: capitals and punctuation (normalised away)
        body[i] = body[i].capitalize()
        if i:
            body[i - 1] += rng.choice((".", ".", ",", "!", "?", ";"))
    return body


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x or y else 0.0


def variant(rng: random.Random, base: list[str], vocabulary: list[str], target: float) -> list[str]:
    """A copy of `base` with scattered word replacements aiming at shingle Jaccard `target`."""
    copy = list(base)
    shingle_count = len(base) - 4
    edits = round(shingle_count * (1 - target) / (5 * (1 + target)))
    for i in rng.sample(range(len(copy)), edits):
        copy[i] = rng.choice(vocabulary)
    if target >= 1.0 and rng.random() < 0.5:  # same normalised text, different raw text
        copy = [w.upper() if rng.random() < 0.2 else w for w in copy]
    return copy


def make_corpus(docs: int, seed: int = 0, planted_fraction: float = 0.1) -> tuple[list[str], list[tuple]]:
    """Documents and the planted pairs (i, j, true Jaccard), in a shuffled order."""
    rng = random.Random(seed)
    vocabulary = make_vocabulary(rng)
    weights = list(itertools.accumulate(1.0 / (rank + 10) for rank in range(len(vocabulary))))  # Zipf-like
    units = []
    pairs = int(docs * planted_fraction / 2)
    for k in range(docs - pairs):
        base = make_document(rng, vocabulary, weights, rng.randint(250, 350))
        if k < pairs:
            target = 1.0 if k % 20 == 0 else rng.uniform(0.6, 1.0)
            units.append([" ".join(base), " ".join(variant(rng, base, vocabulary, target))])
        else:
            units.append([" ".join(base)])
    rng.shuffle(units)
    texts, planted = [], []
    for unit in units:
        if len(unit) == 2:
            planted.append((len(texts), len(texts) + 1, jaccard(unit[0], unit[1])))
        texts.extend(unit)
    order = list(range(len(texts)))
    rng.shuffle(order)  # scatter the pairs over the corpus
    position = {old: new for new, old in enumerate(order)}
    texts = [texts[old] for old in order]
    planted = [(min(position[i], position[j]), max(position[i], position[j]), s) for i, j, s in planted]
    return texts, planted


def plain_subset(n: int, planted: list[tuple], size: int, seed: int) -> list[int]:
    """`size` document indices with the corpus's mix: whole planted pairs plus unpaired documents."""
    rng = random.Random(seed + 1)
    paired = {k for i, j, _ in planted for k in (i, j)}
    pairs = planted[:round(size * len(paired) / n / 2)]
    singles = rng.sample([k for k in range(n) if k not in paired], size - 2 * len(pairs))
    return sorted({k for i, j, _ in pairs for k in (i, j)} | set(singles))


def score(reported: set[tuple[int, int]], planted: list[tuple], texts: list[str]) -> dict:
    """Recall on the planted pairs with true J >= 0.8; precision over the reported pairs (false: true J < 0.8)."""
    truth = {(i, j) for i, j, s in planted if s >= THRESHOLD}
    true_positive = len(reported & truth)
    false_positive = sum(1 for i, j in reported - truth if jaccard(texts[i], texts[j]) < THRESHOLD)
    found = true_positive + false_positive
    bins = {}
    for low, high in ((0.8, 0.85), (0.85, 0.9), (0.9, 1.01)):
        inside = {(i, j) for i, j, s in planted if low <= s < high}
        bins[f"{low:.2f}-{min(high, 1.0):.2f}"] = len(reported & inside) / max(1, len(inside))
    return {"pairs_true": len(truth), "pairs_reported": len(reported), "recall": true_positive / max(1, len(truth)),
            "precision": true_positive / found if found else 1.0, "false_positives": false_positive,
            "recall_by_jaccard": bins}


def bins(scores: dict) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in scores["recall_by_jaccard"].items())


def run_ours(texts: list[str], workers: int) -> tuple[float, object]:
    config = DedupGateConfig(threshold=THRESHOLD, workers=workers)
    start = time.perf_counter()
    result = find_near_duplicates(texts, config)
    return time.perf_counter() - start, result


def run_plain(texts: list[str]) -> tuple[float, set[tuple[int, int]]]:
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    sketches = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=128, seed=1)
        for shingle in shingles(text):
            m.update(shingle.encode("utf-8"))
        lsh.insert(i, m)
        sketches.append(m)
    reported = set()
    for i, m in enumerate(sketches):
        for j in lsh.query(m):
            if j != i:
                reported.add((min(i, j), max(i, j)))
    return time.perf_counter() - start, reported


def peak_bytes_per_doc(texts: list[str]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    find_near_duplicates(texts, DedupGateConfig(threshold=THRESHOLD, workers=1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - base) / len(texts)


def bench_file(path: str, field: str | None, workers: int) -> None:
    from data_checks.formats import detect_format, record_text
    from data_checks.records import read_records

    data = read_records(path)
    fmt = detect_format(data.records[0]) or "unknown"  # unknown: every string field, joined
    texts = [record_text(r, fmt, field) for r in data.records]
    seconds, result = run_ours(texts, workers)
    words = sum(len(t.split()) for t in texts) / max(1, len(texts))
    print(f"file {path}: {len(texts)} records, {words:.0f} words/record on average")
    print(f"  ours: {len(texts) / seconds:,.0f} docs/s ({seconds:.2f} s); near-duplicate rate "
          f"{result.near_duplicate_rate:.2%}, exact {result.exact_duplicate_rate:.2%}, {len(result.clusters)} clusters")


READ_ONLY = """
import sys
from data_checks.formats import record_text
from data_checks.records import iter_records
for _, record in iter_records(sys.argv[1]):
    len(record_text(record, "text").split())
"""


def write_corpus(folder: Path, docs: int, seed: int) -> tuple[Path, list[tuple]]:
    """The corpus as JSONL plus its planted pairs, written once per (docs, seed) and reused."""
    path, truth = folder / f"corpus-{docs}-{seed}.jsonl", folder / f"planted-{docs}-{seed}.json"
    if not (path.exists() and truth.exists()):
        texts, planted = make_corpus(docs, seed)
        folder.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".partial")
        with staging.open("w", encoding="utf-8") as f:
            for k, text in enumerate(texts):
                f.write(json.dumps({"id": k, "text": text}) + "\n")
        truth.write_text(json.dumps(planted))
        staging.replace(path)
    return path, [tuple(p) for p in json.loads(truth.read_text())]


def run_child(argv: list[str], code: Path) -> tuple[float, int]:
    """Wall seconds and exit status of `argv` run with data_checks imported from `code`."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("DATA_CHECKS_NO_PROGRESS", None)  # as a user runs it
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, done.returncode


def score_clean_copy(clean: Path, docs: int, planted: list[tuple]) -> dict:
    kept = {json.loads(line)["id"] for line in clean.open(encoding="utf-8")}
    dropped = set(range(docs)) - kept
    truth = [(i, j) for i, j, s in planted if s >= THRESHOLD]
    found = sum(1 for i, j in truth if j in dropped and i in kept)
    return {"pairs_true": len(truth), "records_dropped": len(dropped), "recall": found / max(1, len(truth)),
            "precision": found / len(dropped) if dropped else 1.0, "false_positives": len(dropped) - found}


def end_to_end(args: argparse.Namespace) -> dict:
    docs = args.docs or 100_000
    folder = Path(args.workdir)
    path, planted = write_corpus(folder, docs, args.seed)
    size = path.stat().st_size
    print(f"corpus: {path} ({docs:,} records, {size / 2**20:,.0f} MiB, {len(planted)} planted pairs, "
          f"{sum(s >= THRESHOLD for *_, s in planted)} with J >= {THRESHOLD})")
    codes = {"ours": ROOT} | ({"old code": Path(args.old_code).resolve()} if args.old_code else {})
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in codes.items():
            report = Path(tmp) / f"{name}.json"
            command = [sys.executable, "-m", "data_checks", str(path), "--checks", "dedup", "--json", str(report)]
            timings = [run_child(command, code)[0] for _ in range(args.repeats)]
            seconds = min(timings)
            timed_report = json.loads(report.read_text())["checks"]["dedup"]
            clean = Path(tmp) / f"{name}-clean.jsonl"
            run_child([*command, "--write-clean", str(clean)], code)
            if json.loads(report.read_text())["checks"]["dedup"] != timed_report:
                raise SystemExit(f"{name}: the scoring run's report differs from the timed run's")
            scores = score_clean_copy(clean, docs, planted)
            read_seconds = min(run_child([sys.executable, "-c", READ_ONLY, str(path)], code)[0]
                               for _ in range(args.repeats))
            results[name] = {"records_per_s": docs / seconds, "seconds": seconds, "all_seconds": timings,
                             "read_seconds": read_seconds, **scores}
            print(f"{name} ({code}): {docs / seconds:,.0f} records/s end to end (best of {args.repeats}: "
                  f"{seconds:.2f} s; all: {', '.join(f'{t:.2f}' for t in timings)}); reading and the per-record "
                  f"pass alone {read_seconds:.2f} s")
            print(f"  precision {scores['precision']:.4f}, recall {scores['recall']:.4f} on "
                  f"{scores['pairs_true']} planted pairs with J >= {THRESHOLD} ({scores['records_dropped']} records "
                  f"dropped, {scores['false_positives']} of them wrongly); near-duplicate rate "
                  f"{timed_report['near_duplicate_rate']:.2%}, exact {timed_report['exact_duplicate_rate']:.2%}")
    chosen = plain_subset(docs, planted, args.plain_docs, args.seed)
    texts = [json.loads(line)["text"] for line in path.open(encoding="utf-8")]
    plain_seconds, plain_local = run_plain([texts[k] for k in chosen])
    plain = score({(chosen[i], chosen[j]) for i, j in plain_local}, [p for p in planted if p[0] in set(chosen)],
                  texts)
    results["plain"] = {"records_per_s": len(chosen) / plain_seconds, **plain}
    print(f"plain datasketch loop in this process on {len(chosen)} of the texts (already in memory): "
          f"{len(chosen) / plain_seconds:,.0f} docs/s; precision {plain['precision']:.4f}, recall "
          f"{plain['recall']:.4f} on {plain['pairs_true']} pairs with J >= {THRESHOLD}")
    for name in codes:
        ratio = results[name]["records_per_s"] / results["plain"]["records_per_s"]
        print(f"{name} end to end / plain loop: {ratio:,.0f}x")
    if args.old_code:
        print(f"ours / old code: {results['ours']['records_per_s'] / results['old code']['records_per_s']:.2f}x")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, help="documents (default 20,000; 100,000 with --end-to-end)")
    parser.add_argument("--plain-docs", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours; the best is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--file", help="also time a real JSONL file")
    parser.add_argument("--field", help="record field to read from --file (default: the format's text)")
    parser.add_argument("--json", help="write the numbers here as JSON")
    parser.add_argument("--end-to-end", action="store_true", help="time the data-checks command on a JSONL corpus")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "bench_dedup"),
                        help="--end-to-end: where the JSONL corpus is written (and reused)")
    parser.add_argument("--old-code", help="--end-to-end: also run the command with data_checks from this checkout")
    args = parser.parse_args()
    if args.end_to_end:
        results = end_to_end(args)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return
    args.docs = args.docs or 20000

    texts, planted = make_corpus(args.docs, args.seed)
    words = sum(len(t.split()) for t in texts) / len(texts)
    spread = sorted(s for _, _, s in planted)
    print(f"corpus: {len(texts)} documents, {words:.0f} words each on average, {len(planted)} planted pairs "
          f"(true J {spread[0]:.2f}-{spread[-1]:.2f}; {sum(s >= THRESHOLD for s in spread)} with J >= {THRESHOLD})")

    timings = []
    for _ in range(args.repeats):
        seconds, result = run_ours(texts, args.workers)
        timings.append(seconds)
    seconds = min(timings)
    ours_rate = len(texts) / seconds
    ours = score({(i, j) for i, j, _ in result.pairs}, planted, texts)
    print(f"ours ({args.workers} workers, {result.bands} bands x {result.rows} rows): {ours_rate:,.0f} docs/s "
          f"(best of {args.repeats}: {seconds:.2f} s; all: {', '.join(f'{t:.2f}' for t in timings)})")
    print(f"  precision {ours['precision']:.4f}, recall {ours['recall']:.4f} on {ours['pairs_true']} pairs "
          f"with J >= {THRESHOLD} ({ours['pairs_reported']} pairs reported); recall by true J: {bins(ours)}")

    chosen = plain_subset(len(texts), planted, args.plain_docs, args.seed)
    subset = [texts[k] for k in chosen]
    plain_seconds, plain_local = run_plain(subset)
    plain_rate = len(subset) / plain_seconds
    plain_pairs = {(chosen[i], chosen[j]) for i, j in plain_local}
    plain = score(plain_pairs, [p for p in planted if p[0] in set(chosen)], texts)
    print(f"plain datasketch loop on {len(subset)} documents (the same mix: whole planted pairs and singles): "
          f"{plain_rate:,.0f} docs/s ({plain_seconds:.2f} s)")
    print(f"  precision {plain['precision']:.4f}, recall {plain['recall']:.4f} on {plain['pairs_true']} pairs "
          f"with J >= {THRESHOLD} ({plain['pairs_reported']} pairs reported); recall by true J: {bins(plain)}")
    print(f"speed ratio: {ours_rate / plain_rate:,.0f}x")

    per_doc = peak_bytes_per_doc(texts)
    text_bytes = sum(sys.getsizeof(t) for t in texts) / len(texts)
    print(f"peak memory beyond the texts (tracemalloc, 1 process): {per_doc:,.0f} bytes/document "
          f"(the texts themselves: {text_bytes:,.0f} bytes/document)")

    if args.file:
        bench_file(args.file, args.field, args.workers)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "docs": len(texts), "ours_docs_per_s": ours_rate, "plain_docs_per_s": plain_rate,
            "ratio": ours_rate / plain_rate, "ours": ours, "plain": plain, "bytes_per_doc": per_doc,
            "bands": result.bands, "rows": result.rows}, indent=2))


if __name__ == "__main__":
    main()
