"""Peak memory and speed of `data-checks` on a 10^6-line JSONL file (streamed) against the in-memory path.

    python scripts/bench_checks_memory.py                      # 10^6 and 10^5 lines, new and old path
    python scripts/bench_checks_memory.py --lines 1000000 100000 --no-old
    python scripts/bench_checks_memory.py --old-code /path/to/older/checkout   # the old path from other code

The file is seeded: short alpaca-style records (instruction, input, output; about 30 words in all)
from a 20,000-word synthetic vocabulary. 1% of the records are exact copies of an earlier record and
0.5% copies that differ only in case and punctuation (the same normalised text), so the near-duplicate
gate fails; 0.1% hold an e-mail address, so the PII gate fails; a few lines are malformed (cut-off
JSON, a JSON array, a non-UTF-8 byte) and are skipped under `--skip-invalid`.

Each measurement is one child process, reaped with `os.wait4`, whose resource usage (the child's
and its own reaped children's: the near-duplicate gate's forked workers) gives the peak RSS
(`ru_maxrss`, the largest single process, not a sum). Measured:

- new: `python -m data_checks FILE --skip-invalid --checks CHECKS --json REPORT` (the streamed path;
  CHECKS defaults to the CLI's gates: template, dedup, pii);
- old: `run_gates(read_records(FILE, skip_invalid=True), ...)` with the same gates, every record a dict
  in memory (`--old-code DIR` imports data_checks from DIR instead, e.g. a checkout of the previous commit);
- base: the new command on a 1,000-line file of the same mix: interpreter, NumPy and presidio.

"Per record beyond the text" is (peak - base - text bytes) / records, with text bytes the UTF-8 size
of every record's gate text (`record_text`). The two reports must be identical; the script exits 1
if they are not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_checks.formats import record_text  # noqa: E402

OLD_PATH = """
import json, sys
from data_checks import ChecksConfig, read_records, run_gates
from data_checks.formats import resolve_format
gates = sys.argv[3].split(",")
data = read_records(sys.argv[1], skip_invalid=True)
fmt = resolve_format(data.records, "auto", data.path, data.lines[0])
report = run_gates(data, fmt, ChecksConfig(run=gates, fail_on=gates))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(report, f)
sys.exit(0 if report["passed"] else 1)
"""


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "pe", "do", "ga", "hu", "ber", "tin", "ost", "an",
                 "el", "is", "or", "um", "tra", "che", "spo", "gli", "ven"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
    return sorted(words)


def write_file(path: Path, lines: int, seed: int = 0) -> tuple[int, int, int]:
    """Write `lines` lines; return (records, malformed lines, text bytes of the records)."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights, total = [], 0.0
    for rank in range(len(words)):  # a mild Zipf: common words repeat, 5-grams rarely do
        total += 1.0 / (rank + 20)
        weights.append(total)
    bad = {lines * k // 23 + 7 for k in range(1, 23)}  # 22 malformed lines spread over the file
    recent: list[dict[str, str]] = []
    records = malformed = text_bytes = 0
    with path.open("wb") as f:
        for number in range(1, lines + 1):
            if number in bad:
                kind = number % 3
                line = (b'{"instruction": "cut off' if kind == 0 else b'["a", "list"]' if kind == 1
                        else b'{"instruction": "caf\xe9", "output": "x"}')
                f.write(line + b"\n")
                malformed += 1
                continue
            roll = rng.random()
            if roll < 0.01 and recent:
                record = dict(rng.choice(recent))
            elif roll < 0.015 and recent:
                source = rng.choice(recent)
                record = {k: (v.upper() + " !" if v else v) for k, v in source.items()}
            else:
                def sentence(low: int, high: int) -> str:
                    return " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(low, high)))

                record = {"instruction": sentence(6, 12).capitalize() + "?",
                          "input": sentence(3, 8) if rng.random() < 0.4 else "",
                          "output": sentence(8, 20).capitalize() + "."}
                if rng.random() < 0.001:
                    record["input"] = f"write to {rng.choice(words)}.{rng.choice(words)}@example.com today"
                recent.append(record)
                if len(recent) > 1000:
                    recent.pop(0)
            f.write(json.dumps(record).encode() + b"\n")
            records += 1
            text_bytes += len(record_text(record, "alpaca").encode())
    return records, malformed, text_bytes


def measure(argv: list[str], pythonpath: str | None = None) -> dict[str, float]:
    """Run `argv`; its exit status, wall time and peak RSS (bytes) from wait4's resource usage."""
    env = dict(os.environ, DATA_CHECKS_NO_PROGRESS="1")
    env["PYTHONPATH"] = pythonpath or str(ROOT)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}:\n{output[-3000:]}")
    return {"rc": child.returncode, "wall_s": wall, "peak_rss": usage.ru_maxrss * 1024.0, "output": output}


def run_new(path: Path, report: Path, checks: str) -> dict[str, float]:
    return measure([sys.executable, "-m", "data_checks", str(path), "--skip-invalid", "--checks", checks,
                    "--json", str(report)])


def run_old(path: Path, report: Path, checks: str, old_code: str | None) -> dict[str, float]:
    return measure([sys.executable, "-c", OLD_PATH, str(path), str(report), checks], old_code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 100_000])
    parser.add_argument("--no-old", action="store_true", help="measure only the streamed path")
    parser.add_argument("--old-code", help="import data_checks from this directory for the old path")
    parser.add_argument("--checks", default="template,dedup,pii", help="the gates to run (default: the CLI's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temporary directory)")
    args = parser.parse_args()

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bench-checks-"))
    workdir.mkdir(parents=True, exist_ok=True)
    MB = 1024 * 1024
    small = workdir / "base.jsonl"
    write_file(small, 1000, args.seed)
    base = run_new(small, workdir / "base.json", args.checks)
    print(f"base (1,000 lines, streamed CLI): peak RSS {base['peak_rss'] / MB:.0f} MiB, {base['wall_s']:.1f} s")

    rows, identical = [], True
    for lines in args.lines:
        path = workdir / f"lines_{lines}.jsonl"
        start = time.perf_counter()
        records, malformed, text_bytes = write_file(path, lines, args.seed)
        print(f"\n{lines:,} lines: {records:,} records, {malformed} malformed, text {text_bytes / MB:.1f} MiB "
              f"({text_bytes / records:.0f} B/record), file {path.stat().st_size / MB:.1f} MiB, "
              f"written in {time.perf_counter() - start:.0f} s")
        reports = {}
        for name in ["new"] + ([] if args.no_old else ["old"]):
            report = workdir / f"report_{name}_{lines}.json"
            result = run_new(path, report, args.checks) if name == "new" else \
                run_old(path, report, args.checks, args.old_code)
            reports[name] = json.loads(report.read_text(encoding="utf-8"))
            beyond = (result["peak_rss"] - base["peak_rss"] - text_bytes) / records
            rows.append((lines, name, result, records, text_bytes, beyond))
            print(f"  {name}: exit {result['rc']}, {result['wall_s']:.1f} s, {lines / result['wall_s']:,.0f} lines/s, "
                  f"peak RSS {result['peak_rss'] / MB:.0f} MiB, {(result['peak_rss'] - base['peak_rss']) / records:.0f}"
                  f" B/record over base, {beyond:.0f} B/record beyond the text")
        new = reports["new"]
        verdicts = ", ".join(f"{name} {'pass' if c['passed'] else 'FAIL'}" for name, c in new["checks"].items())
        print(f"  report: {new['records']:,} records, {new['skipped_invalid']['count']} lines skipped, {verdicts}")
        if "old" in reports:
            same = reports["old"] == new
            identical &= same
            print(f"  old and new reports identical: {same}")

    print("\n| lines | path | wall (s) | lines/s | peak RSS (MiB) | B/record over base | B/record beyond text |")
    print("|---|---|---|---|---|---|---|")
    for lines, name, result, records, _, beyond in rows:
        over = (result["peak_rss"] - base["peak_rss"]) / records
        print(f"| {lines:,} | {name} | {result['wall_s']:.1f} | {lines / result['wall_s']:,.0f} | "
              f"{result['peak_rss'] / MB:.0f} | {over:.0f} | {beyond:.0f} |")
    by = {(lines, name): (result, records, text) for lines, name, result, records, text, _ in rows}
    sizes = sorted({lines for lines, *_ in rows})
    if len(sizes) >= 2:
        low, high = sizes[0], sizes[-1]
        for name in ("new", "old"):
            if (low, name) in by and (high, name) in by:
                (a, ra, ta), (b, rb, tb) = by[(low, name)], by[(high, name)]
                grow = (b["peak_rss"] - a["peak_rss"]) / (rb - ra)
                print(f"{name}: {low:,} -> {high:,} lines: peak RSS x{b['peak_rss'] / a['peak_rss']:.2f}, "
                      f"+{grow:.0f} B per added record (text {(tb - ta) / (rb - ra):.0f} B per record)")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
