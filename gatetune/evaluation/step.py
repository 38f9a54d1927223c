"""The evaluation step of a training run (called by gatetune/run.py after the export): its inputs checked
before anything loads, then generation, the regression gate, the model card's evaluation section and the
deployment decision, all written into the summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from data_checks import LoadedData, read_records, record_problems
from data_checks.report import write_text_atomic
from gatetune.errors import UserError
from gatetune.evaluation.config import EvalConfig
from gatetune.evaluation.decision import deploy_decision, improvement
from gatetune.evaluation.examples import eval_examples
from gatetune.evaluation.metrics import metric_names
from gatetune.evaluation.regression import read_baseline, regression_check, regression_message

log = logging.getLogger(__name__)


def check_eval_inputs(config: EvalConfig) -> None:
    """A baseline that cannot be read, or an eval file that does not exist: an error before any model loads."""
    if config.baseline:
        read_baseline(config.baseline)
    if config.enabled and config.path and not Path(config.path).expanduser().exists():
        raise UserError(f"eval.path: {config.path} does not exist")
    if config.enabled and config.backend == "vllm":
        from gatetune.evaluation.backends import choose_backend

        choose_backend(config)
        if config.vllm_python and not Path(config.vllm_python).expanduser().is_file():
            raise UserError(f"eval.vllm_python: {config.vllm_python} is not a file")
    if config.enabled and config.judge.base_url:
        from gatetune.evaluation.judge import check_reachable, load_rubric, read_golden

        load_rubric(config.judge.rubric)
        if config.judge.golden:
            read_golden(config.judge.golden)
        check_reachable(config.judge)


def eval_data(config: EvalConfig, default: LoadedData, fmt: str) -> LoadedData:
    if not config.path:
        return default
    data = read_records(config.path)
    problems = record_problems(data.records, data.lines, fmt)
    if problems:
        from data_checks import DataError

        raise DataError(data.path, problems[0].line, f"{problems[0].problem} (eval.path must have the training "
                        f"data's format, {fmt})")
    return data


def evaluate_run(config: EvalConfig, evaluation_split: LoadedData, fmt: str, rewards: list[str],
                 summary: dict[str, Any], run_dir: Path, max_prompt_tokens: int, greater_is_better: bool,
                 completion_length: Optional[int] = None) -> None:
    """Fills `improvement`, `eval` (with `regression`), `deploy_ready` and `deploy_reasons` in `summary`;
    a regression sets status `failed_regression`."""
    summary["improvement"] = improvement(summary.get("metrics"), greater_is_better)
    summary["eval"] = None
    export = summary.get("export")
    if config.enabled and export:
        data = eval_data(config, evaluation_split, fmt)
        examples = eval_examples(data, fmt, config.max_examples)
        if examples:
            from gatetune.evaluation.evaluate import evaluate_export

            names = metric_names(config.metrics, fmt, rewards)
            summary["eval"] = evaluate_export(Path(export["path"]), examples, names, config, max_prompt_tokens,
                                              run_dir, config.column, completion_length=completion_length)
            summary["eval"]["data"] = data.path
            add_to_model_card(Path(export["path"]), summary["eval"])
        else:
            log.warning("no evaluation: %s has no prompts to generate for (format %s)", data.path, fmt)
    if summary["eval"] is not None and config.baseline:
        check = regression_check(summary["eval"], config.baseline, config.max_drop_points)
        summary["eval"]["regression"] = check
        if not check["passed"]:
            summary["status"] = "failed_regression"
            log.error("%s", regression_message(check))
    decision = deploy_decision(summary, config)
    summary["deploy_ready"], summary["deploy_reasons"] = decision["deploy_ready"], decision["reasons"]


def evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    """Base vs tuned per metric, then stop rate and lengths: for the terminal and the model card."""
    lines = []
    base = evaluation.get("base") or {}
    for name, value in evaluation["tuned"].items():
        if value is None:
            lines.append(f"{name}: not scored (no usable reference)")
        elif name in base and base[name] is not None:
            lines.append(f"{name}: base {base[name]:.4f} -> tuned {value:.4f} ({value - base[name]:+.4f})")
        else:
            lines.append(f"{name}: tuned {value:.4f}")
    rate = evaluation.get("stop_rate")
    if rate is not None:
        base_rate = (evaluation.get("base_outputs") or {}).get("stop_rate")
        lines.append(f"stop rate: {rate:.2f}" + (f" (base {base_rate:.2f})" if base_rate is not None else "")
                     + f", output tokens mean {evaluation['mean_output_tokens']:.1f}, p95 "
                     f"{evaluation['p95_output_tokens']}")
    return lines


def add_to_model_card(export_dir: Path, evaluation: dict[str, Any]) -> Optional[Path]:
    card = export_dir / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8").rstrip("\n")
    section = [f"\n\n## Evaluation\n\nGreedy generation on {evaluation['examples']} examples of "
               f"`{evaluation.get('data', 'the eval split')}` (gatetune/evaluation/):\n\n"]
    section += [f"- {line}\n" for line in evaluation_lines(evaluation)]
    return write_text_atomic(card, [text, *section])
