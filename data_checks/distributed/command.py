"""`data-checks DATA --engine local|slurm|ray --workdir DIR [--workers N] [--tasks N] [--hash-ranges N]`: what the
options must be, then the run, the same table, JSON and HTML report and exit status as one process gives."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from data_checks.config import ChecksConfig
from data_checks.report import summary_table, write_json_atomic


def _problem(args: argparse.Namespace) -> str | None:
    if not args.engine:
        return "--workdir needs --engine local, slurm or ray"
    if not args.workdir:
        return f"--engine {args.engine} needs --workdir DIR (where the stages keep their files)"
    if len(args.paths) != 1:
        return "--engine takes exactly one PATH"
    if args.workers < 1:
        return f"--workers: must be at least 1, got {args.workers}"
    if args.tasks is not None and args.tasks < 1:
        return f"--tasks: must be at least 1, got {args.tasks}"
    if args.hash_ranges is not None and args.hash_ranges < 1:
        return f"--hash-ranges: must be at least 1, got {args.hash_ranges}"
    if args.slurm and args.engine != "slurm":
        return "--slurm options need --engine slurm"
    return None


def _slurm_options(pairs: list[str]) -> Any:
    from data_checks.distributed.slurm_jobs import slurm_options

    return slurm_options([(f"--slurm {pair}", *pair.partition("=")[::2]) for pair in pairs])


def distributed_main(args: argparse.Namespace, config: ChecksConfig, rendering: dict[str, Any] | None = None) -> int:
    """`rendering`: with --tokenizer, what each sketch task needs to render the records through the chat template
    (`--tokenizer`, `--chat-template`'s text, `--chat-template-kwargs`, `--max-length`)."""
    problem = _problem(args)
    if problem:
        print(f"data-checks: error: {problem}", file=sys.stderr)
        return 2
    try:
        from data_checks.distributed.engine import EngineError, make_plan, run_distributed, write_clean_copy
    except ImportError as exc:
        print(f"data-checks: error: --engine needs datatrove ({exc}): pip install 'datatrove>=0.10'", file=sys.stderr)
        return 2
    try:
        slurm = _slurm_options(args.slurm) if args.engine == "slurm" else None
        plan = make_plan(args.paths[0], args.format, config, args.workers, args.tasks, args.hash_ranges,
                         args.skip_invalid, clean=bool(args.write_clean), redact_pii=args.redact_pii,
                         against=str(args.against) if args.against else None, rendering=rendering)
        report = run_distributed(plan, args.workdir, args.engine, args.workers, slurm,
                                 say=lambda line: print(line, file=sys.stderr))
    except (EngineError, ValueError) as exc:
        print(f"data-checks: error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(report))
    if args.json_path:
        print(f"report: {write_json_atomic(args.json_path, report)}")
    if args.html_path:
        from data_checks.html_report import write_html_report

        print(f"html report: {write_html_report(report, args.html_path)}")
    if args.write_clean:
        try:
            kept = write_clean_copy(plan, args.workdir, args.write_clean)
        except OSError as exc:
            print(f"data-checks: error: {exc}", file=sys.stderr)
            return 2
        print(f"clean copy: {kept} of {report['records']} records written to {args.write_clean}")
    return 0 if report["passed"] else 1
