"""`gatetune-eval PATH [options]`: evaluate an export by generation, base beside tuned, and optionally gate it
against a baseline run, without training.

PATH is a run directory (its export and, unless --data is given, the same eval split the run held out,
recomposed from its `config.yaml`), an export directory (`adapter/`, `model/`, `merged/`), or any
model directory or hub ID (with --adapter for a PEFT adapter on it). Writes eval.json, eval_results.jsonl
and eval.png to --out (default: the run directory, else ./eval).

Exit status: 0 evaluated (and no regression), 1 a metric regressed against --baseline, 2 a user error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from data_checks import LoadedData, read_records
from data_checks.formats import resolve_format
from data_checks.report import write_json_atomic
from gatetune.errors import USER_ERRORS, UserError
from gatetune.evaluation.config import EvalConfig, JudgeConfig, eval_problems
from gatetune.evaluation.examples import eval_examples
from gatetune.evaluation.metrics import metric_names
from gatetune.evaluation.regression import regression_check, regression_message
from gatetune.evaluation.step import check_eval_inputs
from gatetune.export import EXPORT_INFO

log = logging.getLogger("gatetune")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatetune-eval", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("path", help="run directory, export directory, or base model (directory or hub ID)")
    parser.add_argument("--adapter", help="a PEFT adapter directory to evaluate on PATH (a base model)")
    parser.add_argument("--data", help="eval data (JSONL, CSV, ...); default: the run's eval split")
    parser.add_argument("--format", default="auto", help="the data's format (default: detected)")
    parser.add_argument("--metrics", help="comma-separated metrics (exact_match, final_number, math, rouge_l, "
                        "label, code); default: from the data")
    parser.add_argument("--column", help="the reference column (default: each metric's own)")
    parser.add_argument("--max-examples", type=int, default=EvalConfig.max_examples)
    parser.add_argument("--max-new-tokens", type=int, help="default: twice the longest answer of the data")
    parser.add_argument("--max-prompt-tokens", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=EvalConfig.batch_size)
    parser.add_argument("--samples", type=int, default=EvalConfig.samples,
                        help="completions per prompt: 1 greedy (default), k > 1 sampled for pass@1 and pass@k")
    parser.add_argument("--temperature", type=float, default=EvalConfig.temperature, help="with --samples > 1")
    parser.add_argument("--no-base", action="store_true", help="do not generate with the base model")
    parser.add_argument("--baseline", help="a run directory or summary/eval JSON to compare against")
    parser.add_argument("--max-drop-points", type=float, default=EvalConfig.max_drop_points)
    parser.add_argument("--out", help="where eval.json, eval_results.jsonl and eval.png go")
    parser.add_argument("--judge-url", help="an OpenAI-compatible endpoint for an LLM judge (e.g. .../v1)")
    parser.add_argument("--judge-model", help="the model name the judge endpoint serves")
    parser.add_argument("--judge-golden", help="human-labelled JSONL the judge must agree with to be trusted")
    parser.add_argument("--judge-rubric", default="default", help="a rubric in gatetune/conf/rubrics/ or a path")
    return parser


def _target(args: argparse.Namespace) -> tuple[Path, dict[str, Any] | None, dict[str, Any] | None]:
    """(export directory, its export info or one made up for a plain model, the run's summary if a run)."""
    path = Path(args.path).expanduser()
    if (path / "summary.json").is_file():
        summary = json.loads((path / "summary.json").read_text())
        export = summary.get("export") or {}
        if not export.get("path"):
            raise UserError(f"{path}: the run has no export (status {summary.get('status')})")
        return Path(export["path"]), None, summary
    if (path / EXPORT_INFO).is_file():
        return path, None, None
    if args.adapter:
        return Path(args.adapter), {"kind": "adapter", "base_model": args.path}, None
    return path if path.exists() else Path(args.path), {"kind": "full_model", "base_model": args.path}, None


def _run_split(run_dir: Path) -> tuple[LoadedData, str, list[str], int, int]:
    """The eval split the run held out (or read), its format, its GRPO rewards, its max length and GRPO's
    completion length."""
    from omegaconf import OmegaConf

    from gatetune.config import TrainConfig, register_schema, typed_config
    from gatetune.data import load_splits

    saved = next((p for p in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml") if p.is_file()), None)
    if saved is None:
        raise UserError(f"{run_dir}: no config.yaml to recompose the run's eval split from; give --data")
    register_schema()
    config = typed_config(OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.load(saved)))
    splits = load_splits(config.data, config.recipe, config.seed)
    return (splits.eval, splits.format, list(config.grpo.rewards), config.data.max_length,
            config.grpo.max_completion_length)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from gatetune.evaluation.evaluate import evaluate_export

    config = EvalConfig(max_examples=args.max_examples, max_new_tokens=args.max_new_tokens,
                        batch_size=args.batch_size, compare_base=not args.no_base, baseline=args.baseline,
                        samples=args.samples, temperature=args.temperature,
                        max_drop_points=args.max_drop_points,
                        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None,
                        judge=JudgeConfig(base_url=args.judge_url, model=args.judge_model, golden=args.judge_golden,
                                          rubric=args.judge_rubric))
    problems = eval_problems(config)
    if problems:
        raise UserError(problems[0].replace("eval.", "--").replace("_", "-", 1))
    check_eval_inputs(config)
    export_dir, info, summary = _target(args)
    rewards, max_prompt, completion_length = [], args.max_prompt_tokens, None
    if args.data:
        data = read_records(args.data)
        fmt = resolve_format(data.records, args.format, data.path, data.lines[0])
    elif summary is not None:
        data, fmt, rewards, max_prompt, completion_length = _run_split(Path(args.path))
    else:
        raise UserError("--data: needed when PATH is not a run directory")
    if info is not None and info["kind"] == "full_model" and not args.adapter:
        config.compare_base = False  # a plain model is its own base
    examples = eval_examples(data, fmt, config.max_examples)
    if not examples:
        raise UserError(f"{data.path}: no prompts to generate for (format {fmt})")
    out = Path(args.out) if args.out else (Path(args.path) if summary is not None else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    names = metric_names(config.metrics, fmt, rewards)
    result = evaluate_export(export_dir, examples, names, config, max_prompt, out, args.column, info,
                             completion_length if fmt == "prompt" else None)
    result["data"] = data.path
    if args.baseline:
        result["regression"] = regression_check(result, args.baseline, args.max_drop_points)
    write_json_atomic(out / "eval.json", result)
    result["eval_json"] = str(out / "eval.json")
    return result


def main(argv: list[str] | None = None) -> int:
    from gatetune.evaluation.step import evaluation_lines
    from gatetune.quiet import quiet_library_noise

    quiet_library_noise()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parser().parse_args(argv)
    try:
        result = evaluate(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"evaluation ({result['examples']} examples of {result['data']}): {result['eval_json']}")
    for line in evaluation_lines(result):
        print(f"  {line}")
    regression = result.get("regression")
    if regression is not None:
        if not regression["passed"]:
            print(f"error: {regression_message(regression)}", file=sys.stderr)
            return 1
        print(f"no regression against {regression['baseline']} (max drop {regression['max_drop_points']:g} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
