"""`data-checks`: run the gates on one or more datasets from the command line.

Exit status: 0 every gate passed, 1 a gate failed, 2 unreadable input or bad arguments.
JSONL and CSV inputs are read one record at a time, so memory does not grow with the records' parsed
size (`data_checks.gates.stream_gates`); `--write-clean` reads the input a second time.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_checks.config import AVAILABLE_GATES, ChecksConfig, load_checks_config
from data_checks.errors import DataError
from data_checks.formats import FORMATS
from data_checks.gates import ANNOTATION_FORMAT, StreamedRun, stream_gates
from data_checks.records import iter_records
from data_checks.report import summary_table, write_json_atomic, write_jsonl_atomic


class UsageError(Exception):
    """Bad arguments: printed after `data-checks: error:`, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep the message short
        self.exit(2, f"data-checks: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="data-checks", description="Data-quality gates for fine-tuning datasets: near-duplicates, "
                "PII, label agreement, format/chat-template consistency. Exit 0 pass, 1 a gate failed, 2 bad input.")
    p.add_argument("paths", nargs="+", help="JSONL/JSON/Parquet/CSV file, save_to_disk folder or hub dataset ID")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                   help="dataset format (default: auto); 'classification' is annotation data for the agreement gate")
    p.add_argument("--checks", help=f"comma-separated gates (available: {', '.join(AVAILABLE_GATES)}; default: "
                   "template,dedup,pii, or agreement for --format classification)")
    p.add_argument("--config", help="a checks YAML (the same as gatetune/conf/checks/*.yaml); flags below override it")
    p.add_argument("--json", dest="json_path", type=Path, help="write the report as JSON here")
    p.add_argument("--html", dest="html_path", type=Path, help="write an HTML report with plots here")
    p.add_argument("--write-clean", type=Path, metavar="OUT.jsonl",
                   help="write the records minus near-duplicates (one kept per cluster) as JSONL here")
    p.add_argument("--redact-pii", action="store_true", help="with --write-clean: replace the PII that counts "
                   "(checks.pii.fail_on_confidence, count_placeholders; --config) by <TYPE>")
    p.add_argument("--against", help="a second dataset (e.g. the eval split) checked for near-duplicates of PATH")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unparseable JSONL lines (counted in the report) instead of stopping")
    p.add_argument("--split", default="train", help="split to read from a saved or hub dataset")
    p.add_argument("--text-field", help="the field the content gates read (default: per format)")
    p.add_argument("--tokenizer", help="a tokenizer (local dir or hub ID) whose chat template the template gate "
                   "renders every record through (imports transformers)")
    p.add_argument("--max-length", type=int, help="with --tokenizer: report the share of records longer than this")
    p.add_argument("--chat-template", type=Path, metavar="FILE.jinja",
                   help="with --tokenizer: render with this template instead of the tokenizer's (model.chat_template)")
    p.add_argument("--chat-template-kwargs", metavar="JSON", help="with --tokenizer: arguments for every rendering, "
                   "as data.chat_template_kwargs, e.g. '{\"enable_thinking\": false}'")
    e = p.add_argument_group("distributed (the dedup and pii gates on a datatrove executor; docs/distributed_gates.md)")
    e.add_argument("--engine", choices=("local", "slurm", "ray"),
                   help="run the gates as pipeline stages: local (processes here), slurm (job arrays) or ray (tasks "
                   "on the cluster RAY_ADDRESS names, else on a local one)")
    e.add_argument("--workdir", help="the stages' files; the same command again continues the run, skipping what "
                   "finished")
    e.add_argument("--workers", type=int, default=2, help="tasks at a time (default 2)")
    e.add_argument("--tasks", type=int, help="input shards (default 4 per worker, and one per 128 MB at least)")
    e.add_argument("--hash-ranges", type=int, help="key ranges per MinHash band, a band-stage task each (default one "
                   "per 32 GB of input; more bounds a band task's memory)")
    e.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="with --engine slurm: partition, time, cpus_per_task, mem_per_cpu_gb, qos, account")
    g = p.add_argument_group("thresholds")
    g.add_argument("--max-template-violation-rate", type=float)
    g.add_argument("--dedup-threshold", type=float, help="Jaccard similarity of a near-duplicate (default 0.8)")
    g.add_argument("--max-duplicate-rate", type=float, help="near-duplicate rate that fails the gate (default 0.01)")
    g.add_argument("--num-perm", type=int, help="MinHash permutations (default 128)")
    g.add_argument("--pii-inside-trust-boundary", action="store_true",
                   help="the data stays inside the trust boundary: PII is reported but does not fail the gate")
    g.add_argument("--pii-fail-on-confidence", choices=("high", "low"),
                   help="high (default): only high-confidence PII fails the gate (and is redacted); low: every finding")
    g.add_argument("--pii-count-placeholders", action="store_true",
                   help="known-fake values (john@example.com, 555-0123, test cards) count as PII too")
    g.add_argument("--min-kappa", type=float, help="agreement below this fails (default 0.8)")
    g.add_argument("--kappa-weights", choices=("linear", "quadratic"), help="weighted Cohen's kappa (ordinal labels)")
    g.add_argument("--item-field", help="long format: the item ID field (default item)")
    g.add_argument("--annotator-field", help="long format: the annotator field (default annotator)")
    g.add_argument("--label-field", help="long format: the label field (default label)")
    g.add_argument("--annotator-columns", help="wide format: comma-separated columns, one per annotator")
    return p


def _config(args: argparse.Namespace) -> ChecksConfig:
    config = load_checks_config(args.config) if args.config else ChecksConfig()
    if args.checks is not None:
        config.run = [g.strip() for g in args.checks.split(",") if g.strip()]
        if not config.run:
            raise UsageError("--checks names no gate")
    elif args.format == ANNOTATION_FORMAT:
        config.run = ["agreement"]
    config.fail_on = list(config.run)  # on the command line every gate that runs decides the exit status

    def override(section: Any, **values: Any) -> Any:
        return dataclasses.replace(section, **{k: v for k, v in values.items() if v is not None})

    config.template = override(config.template, max_violation_rate=args.max_template_violation_rate)
    config.dedup = override(config.dedup, threshold=args.dedup_threshold, max_rate=args.max_duplicate_rate,
                            num_perm=args.num_perm, field=args.text_field)
    config.pii = override(config.pii, field=args.text_field,
                          data_leaves_trust_boundary=False if args.pii_inside_trust_boundary else None,
                          fail_on_confidence=args.pii_fail_on_confidence,
                          count_placeholders=True if args.pii_count_placeholders else None)
    columns = [c.strip() for c in args.annotator_columns.split(",")] if args.annotator_columns else None
    config.agreement = override(config.agreement, min_kappa=args.min_kappa, weights=args.kappa_weights,
                                item_field=args.item_field, annotator_field=args.annotator_field,
                                label_field=args.label_field, annotator_columns=columns)
    problems = config.problems()
    if problems:
        if args.config:
            raise DataError(args.config, None, problems[0])
        raise UsageError(problems[0])
    return config


def _write_clean(source: str, run: StreamedRun, out: Path, redact_pii: Any, split: str,
                 skip_invalid: bool) -> int:
    """Every record but the extra members of each near-duplicate cluster, PII redacted if asked
    (`redact_pii`: the checks.pii config whose findings are redacted, or None).

    The records are read again, one at a time (a second streamed pass), and written as they come;
    the file appears only once complete (an atomic rename).
    """
    from data_checks.dedup import dropped_indices
    from data_checks.pii import redact_record

    drop = dropped_indices(run.results["dedup"]) if "dedup" in run.results else set()
    kept = 0

    def rows() -> Iterator[Any]:
        nonlocal kept
        count = 0
        for index, (_, record) in enumerate(iter_records(source, split, skip_invalid)):
            count += 1
            if index not in drop:
                kept += 1
                yield redact_record(record, redact_pii) if redact_pii else record
        if count != len(run):
            raise DataError(run.path, None, f"changed while being checked ({len(run)} records, now {count}); "
                                            "nothing written")

    write_jsonl_atomic(out, rows())
    return kept


def _combined(reports: list[dict[str, Any]]) -> dict[str, Any]:
    if len(reports) == 1:
        return reports[0]
    return {"passed": all(r["passed"] for r in reports), "records": sum(r["records"] for r in reports),
            "format": reports[0]["format"], "sources": [s for r in reports for s in r["sources"]],
            "fail_on": reports[0]["fail_on"],
            "checks": {name: {"passed": all(r["checks"][name]["passed"] for r in reports if name in r["checks"])}
                       for name in reports[0]["checks"]},
            "datasets": reports}


def _template_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """--tokenizer, --chat-template's text and --chat-template-kwargs, checked; None without --tokenizer."""
    if not args.tokenizer:
        if args.chat_template or args.chat_template_kwargs:
            raise UsageError("--chat-template and --chat-template-kwargs need --tokenizer")
        return None
    import json

    try:
        kwargs = json.loads(args.chat_template_kwargs) if args.chat_template_kwargs else {}
    except ValueError as exc:
        raise UsageError(f"--chat-template-kwargs is not valid JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise UsageError("--chat-template-kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'")
    template = args.chat_template.read_text(encoding="utf-8") if args.chat_template else None
    return {"tokenizer": args.tokenizer, "template": template, "template_kwargs": kwargs}


def _chat_template(args: argparse.Namespace) -> Any:
    """The tokenizer's chat template (with --chat-template and --chat-template-kwargs applied), or None."""
    from data_checks.template import load_chat_template

    options = _template_options(args)
    return load_chat_template(**options) if options else None


def _rendering(args: argparse.Namespace) -> dict[str, Any] | None:
    """--engine with --tokenizer: the template options for every sketch task (a local tokenizer as an absolute
    path: the tasks may start elsewhere), once loaded here so a tokenizer that cannot load fails before any task."""
    options = _template_options(args)
    if options is None:
        return None
    from data_checks.template import load_chat_template

    load_chat_template(**options)
    if Path(args.tokenizer).exists():
        options["tokenizer"] = str(Path(args.tokenizer).absolute())
    return {**options, "max_length": args.max_length}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.write_clean and len(args.paths) != 1:
        print("data-checks: error: --write-clean takes exactly one PATH", file=sys.stderr)
        return 2
    if args.redact_pii and not args.write_clean:
        print("data-checks: error: --redact-pii needs --write-clean", file=sys.stderr)
        return 2
    if args.engine or args.workdir:
        from data_checks.distributed.command import distributed_main

        try:
            return distributed_main(args, _config(args), _rendering(args))
        except (DataError, UsageError, OSError) as exc:
            print(f"data-checks: error: {exc}", file=sys.stderr)
            return 2
    try:
        config = _config(args)
        tokenizer = _chat_template(args)
        reports, runs = [], []
        for path in args.paths:
            run = stream_gates(path, args.format, config, tokenizer, args.against, args.max_length,
                               split=args.split, skip_invalid=args.skip_invalid)
            reports.append(run.report)
            runs.append(run)
    except (DataError, UsageError) as exc:
        print(f"data-checks: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a tokenizer that cannot be loaded
        print(f"data-checks: error: {exc}", file=sys.stderr)
        return 2
    report = _combined(reports)
    print(summary_table(report))
    if args.json_path:
        print(f"report: {write_json_atomic(args.json_path, report)}")
    if args.html_path:
        from data_checks.html_report import write_html_report

        print(f"html report: {write_html_report(report, args.html_path)}")
    if args.write_clean:
        try:
            redact_with = config.pii if args.redact_pii else None
            kept = _write_clean(args.paths[0], runs[0], args.write_clean, redact_with, args.split, args.skip_invalid)
        except (DataError, OSError) as exc:
            print(f"data-checks: error: {exc}", file=sys.stderr)
            return 2
        print(f"clean copy: {kept} of {len(runs[0])} records written to {args.write_clean}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
