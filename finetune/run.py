"""One training run, top to bottom: config -> data -> gates -> train -> export -> summary.

Read this file to follow a run; each step is a call into the module that owns it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_checks import run_gates, summary_table, write_json_atomic
from finetune.config import Adaptation, checks_config, validate
from finetune.data import load_splits, tokenize_split
from finetune.export import export_adapter, export_full_model, merge_adapter
from finetune.loggers import configure_logger
from finetune.model_card import git_commit, library_versions, render_model_card, sha256_of
from finetune.modeling import load_model, load_tokenizer, model_source
from finetune.plots import plot_losses

log = logging.getLogger(__name__)


def _eval_losses(log_history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]


def _run_gates(cfg: Any, splits: Any, tokenizer: Any, run_dir: Path) -> dict[str, Any] | None:
    if not cfg.checks.enabled:
        log.info("data gates disabled (checks.enabled=false)")
        return None
    # The eval split rides along as `against`: near-duplicates of training records in it are contamination.
    report = run_gates(splits.train, splits.format, checks_config(cfg), tokenizer=tokenizer, against=splits.eval,
                       max_length=cfg.data.max_length)
    report["report_path"] = str(write_json_atomic(run_dir / "data_checks.json", report))
    log.info("data gates on %s:\n%s", splits.train.path, summary_table(report))
    return report


@dataclass
class RunResult:
    """The summary (as written to summary.json) and, when training ran, the trained model in memory."""

    summary: dict[str, Any]
    model: Any = None
    tokenizer: Any = None


def run(cfg: Any, run_dir: Path) -> RunResult:
    """Train and export as `cfg` says; the summary is also written to run_dir/summary.json."""
    started = time.perf_counter()
    validate(cfg)
    splits = load_splits(cfg)
    log.info("data: %d train / %d eval records (%s, eval %s) from %s", len(splits.train), len(splits.eval),
             splits.format, splits.eval_source, splits.train.path)
    source = model_source(cfg)
    tokenizer = load_tokenizer(cfg, source)

    summary: dict[str, Any] = {"status": "failed", "recipe": cfg.recipe.name, "model": cfg.model.name,
                               "base_model": source, "run_dir": str(run_dir)}
    gates = _run_gates(cfg, splits, tokenizer, run_dir)
    summary["gates"] = gates
    if gates is not None and not gates["passed"]:
        summary["status"] = "failed_gates"
        write_json_atomic(run_dir / "summary.json", summary)
        return RunResult(summary)

    max_length, train_on = cfg.data.max_length, str(getattr(cfg.data.train_on, "value", cfg.data.train_on))
    train_rows, train_stats = tokenize_split(splits.train, splits.format, tokenizer, max_length, train_on, "train")
    eval_rows, _ = tokenize_split(splits.eval, splits.format, tokenizer, max_length, train_on, "eval")
    summary["data"] = {"format": splits.format, "train_examples": len(train_rows), "eval_examples": len(eval_rows),
                       "eval_source": splits.eval_source, "truncated": train_stats.truncated,
                       "dropped_no_answer_tokens": train_stats.dropped_no_answer_tokens}

    # TRL and the trainer are imported only once the config and the data are known to be good.
    from finetune.callbacks import peak_memory_mb, stopped_early
    from finetune.trainer import build_trainer

    configure_logger(cfg, run_dir)
    model = load_model(cfg, source)
    trainer, callbacks = build_trainer(cfg, model, tokenizer, train_rows, eval_rows, run_dir)
    trainer.train()

    history = trainer.state.log_history
    evals = _eval_losses(history)
    summary["status"] = "stopped_early" if stopped_early(callbacks["early_stopping"]) else "completed"
    train_seconds = callbacks["metrics"].train_seconds or math.nan
    summary["metrics"] = {
        "eval_loss_initial": evals[0][1] if evals else None,
        "eval_loss_best": trainer.state.best_metric,
        "best_step": _best_step(trainer.state),
        "eval_loss_history": [{"step": s, "eval_loss": v} for s, v in evals],
        "train_tokens_per_second": trainer.state.num_input_tokens_seen / train_seconds,
        "train_tokens": trainer.state.num_input_tokens_seen,
        "peak_memory_mb": peak_memory_mb(),
        "steps": trainer.state.global_step,
        "wall_seconds": None,
    }

    summary["metrics"]["wall_seconds"] = time.perf_counter() - started
    summary["export"] = _export(cfg, trainer.model, tokenizer, source, splits, summary, run_dir)
    plot_losses(history, run_dir / "loss.png", f"{cfg.recipe.name} on {cfg.model.name}")
    write_json_atomic(run_dir / "summary.json", summary)
    return RunResult(summary, trainer.model, tokenizer)


def _export(cfg: Any, model: Any, tokenizer: Any, source: str, splits: Any, summary: dict[str, Any],
            run_dir: Path) -> dict[str, Any]:
    """The adapter (and, with export.merge, the merged model) or the full model, each with its model card."""
    from omegaconf import OmegaConf

    datasets = [{"path": d.path, "sha256": sha256_of(d.path), "records": len(d)}
                for d in ([splits.train, splits.eval] if splits.eval_source == "file" else [splits.train])]
    run_info = {"recipe": cfg.recipe.name, "config_yaml": OmegaConf.to_yaml(cfg, resolve=True),
                "datasets": datasets, "gates": summary["gates"], "metrics": summary["metrics"],
                "versions": library_versions(), "git_commit": git_commit()}

    def card(info: dict[str, Any]) -> str:
        return render_model_card(run_info, info)

    if Adaptation(cfg.recipe.adaptation) is not Adaptation.lora:
        return export_full_model(model, tokenizer, run_dir / "model", source, card)
    exported = export_adapter(model, tokenizer, run_dir / "adapter", cfg.export.adapter_name or cfg.recipe.name, card)
    if cfg.export.merge:
        exported["merged"] = merge_adapter(Path(exported["path"]), run_dir / "merged", source, card)
    return exported


def _best_step(state: Any) -> int | None:
    checkpoint = state.best_model_checkpoint
    if checkpoint is None:
        return None
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])
