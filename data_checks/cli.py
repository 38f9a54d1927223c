"""`data-checks`: run the gates on one or more datasets from the command line.

Exit status: 0 every gate passed, 1 a gate failed, 2 unreadable input or bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_checks.config import AVAILABLE_GATES, ChecksConfig, TemplateGateConfig
from data_checks.errors import DataError
from data_checks.formats import FORMATS, resolve_format
from data_checks.gates import run_gates
from data_checks.records import read_records
from data_checks.report import summary_table, write_json_atomic


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep the message short
        self.exit(2, f"data-checks: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="data-checks", description="Data-quality gates for fine-tuning datasets.")
    parser.add_argument("paths", nargs="+", help="JSONL/JSON/Parquet/CSV file, save_to_disk folder or hub ID")
    parser.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="dataset format (default: auto)")
    parser.add_argument("--checks", default=",".join(AVAILABLE_GATES),
                        help=f"comma-separated gates to run (available: {', '.join(AVAILABLE_GATES)})")
    parser.add_argument("--json", dest="json_path", type=Path, help="write the report as JSON here")
    parser.add_argument("--max-template-violation-rate", type=float, default=0.0,
                        help="template gate: largest fraction of bad records that still passes (default 0)")
    parser.add_argument("--split", default="train", help="split to read from a saved or hub dataset")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    gates = [g.strip() for g in args.checks.split(",") if g.strip()]
    if not gates:
        print("data-checks: error: --checks names no gate", file=sys.stderr)
        return 2
    config = ChecksConfig(run=gates, fail_on=gates,
                          template=TemplateGateConfig(max_violation_rate=args.max_template_violation_rate))
    problems = config.problems()
    if problems:
        print(f"data-checks: error: {problems[0]}", file=sys.stderr)
        return 2
    reports = []
    try:
        for path in args.paths:
            data = read_records(path, split=args.split)
            fmt = resolve_format(data.records, args.format, data.path, data.lines[0])
            reports.append(run_gates(data, fmt, config))
    except DataError as exc:
        print(f"data-checks: error: {exc}", file=sys.stderr)
        return 2
    report = reports[0] if len(reports) == 1 else {
        "passed": all(r["passed"] for r in reports), "records": sum(r["records"] for r in reports),
        "sources": [s for r in reports for s in r["sources"]], "datasets": reports,
        "checks": {name: {"passed": all(r["checks"][name]["passed"] for r in reports),
                          "violations": [v for r in reports for v in r["checks"][name]["violations"]],
                          "violation_rate": max(r["checks"][name]["violation_rate"] for r in reports)}
                   for name in reports[0]["checks"]},
    }
    print(summary_table(report))
    if args.json_path:
        write_json_atomic(args.json_path, report)
        print(f"report: {args.json_path}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
