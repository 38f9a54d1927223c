"""One training run, top to bottom: config -> data -> gates -> train -> export -> evaluate -> summary.

Read this file to follow a run; each step is a call into the module that owns it. The composed config
is converted to the typed schema once (`typed_config`), and each step is handed the node it reads.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from data_checks import run_gates, summary_table, write_json_atomic
from data_checks.chat_template import ChatTemplate
from data_checks.config import ChecksConfig
from data_checks.report import write_text_atomic
from gatetune.checkpoints import RESUME_AUTO, discard_after, resume_checkpoint
from gatetune.config import Adaptation, TrainConfig, resolved_packing, typed_config
from gatetune.data import DataSplits, load_splits
from gatetune.evaluation.decision import deploy_decision
from gatetune.evaluation.step import check_eval_inputs, evaluate_run
from gatetune.export import TemplateUse, export_adapter, export_full_model, merge_adapter
from gatetune.loggers import configure_logger
from gatetune.model_card import git_commit, library_versions, render_model_card, sha256_of
from gatetune.modeling import check_kernels, load_model, load_tokenizer, model_source
from gatetune.objectives import ObjectiveSpec, objective_spec
from gatetune.plots import plot_losses
from gatetune.quiet import quiet_library_noise
from gatetune.resume_check import check_resume, training_record
from gatetune.signals import EarlySignals, any_process_signalled, pending, single_process

log = logging.getLogger(__name__)


def is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch (or the only process): the one that writes run files."""
    return int(os.environ.get("RANK", "0")) == 0


def _metrics(spec: ObjectiveSpec, state: Any, train_seconds: float, peak_mb: float) -> dict[str, Any]:
    """Measured values only: the eval metric's history, throughput, memory, steps."""
    metric = spec.metric
    history = state.log_history
    evals = [(e["step"], e[metric]) for e in history if metric in e]
    tokens = state.num_input_tokens_seen or max((e.get("num_tokens", 0) for e in history), default=0)
    metrics: dict[str, Any] = {
        "eval_metric": metric,
        "eval_metric_initial": evals[0][1] if evals else None,
        "eval_metric_best": state.best_metric,
        "best_step": _best_step(state),
        "eval_history": [{"step": s, metric: v} for s, v in evals],
        "train_tokens_per_second": tokens / train_seconds if train_seconds and tokens else None,
        "train_tokens": int(tokens),
        "peak_memory_mb": peak_mb,
        "steps": state.global_step,
        "wall_seconds": None,
    }
    if metric == "eval_loss":
        metrics["eval_loss_initial"], metrics["eval_loss_best"] = metrics["eval_metric_initial"], state.best_metric
    for key in spec.summary_metrics:
        values = [e[key] for e in history if key in e]
        if values:
            metrics[key.removeprefix("eval_").replace("/", "_") + "_history"] = values
    return metrics


def _template_gated(checks: ChecksConfig) -> bool:
    """Whether the template gate judges the train split (so a record the template rejects is its violation)."""
    return checks.enabled and "template" in checks.run


def _run_gates(checks: ChecksConfig, splits: DataSplits, chat: ChatTemplate, max_length: int,
               run_dir: Path, verdicts: Any = None) -> dict[str, Any] | None:
    if not checks.enabled:
        log.info("data gates disabled (checks.enabled=false)")
        return None
    # The eval split rides along as `against`: near-duplicates of training records in it are contamination.
    # `verdicts`: the template gate reads what the rows' rendering found instead of rendering each chat again.
    if checks.engine is not None:  # dedup and pii as stages on a distributed engine (gatetune/engine_gates.py)
        from gatetune.engine_gates import engine_gates

        report = engine_gates(checks, splits, chat, max_length, run_dir, verdicts, is_main_process())
    else:
        report = run_gates(splits.train, splits.format, checks, tokenizer=chat, against=splits.eval,
                           max_length=max_length, encoded=verdicts)
    report["report_path"] = str(run_dir / "data_checks.json")
    if is_main_process():
        write_json_atomic(report["report_path"], report)
    log.info("data gates on %s:\n%s", splits.train.path, summary_table(report))
    return report


FINISHED = ("completed", "stopped_early")


def _finished_before(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that already finished in this directory, if one did."""
    import json

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("status") in FINISHED and summary.get("export") else None


@dataclass
class RunResult:
    """The summary (as written to summary.json) and, when training ran, the trained model in memory."""

    summary: dict[str, Any]
    model: Any = None
    tokenizer: Any = None
    log_history: list[dict[str, Any]] = field(default_factory=list)  # the trainer's logs, step by step


def run(cfg: DictConfig | TrainConfig, run_dir: Path) -> RunResult:
    """Train and export as `cfg` (the composed config) says; the summary is also written to run_dir/summary.json.
    SIGUSR1/SIGTERM before training starts end the run cleanly, as preempted (gatetune/signals.py)."""
    with EarlySignals():
        return _run(cfg, run_dir)


def _stopped_before_training(summary: dict[str, Any], run_dir: Path, checkpoint: Path | None) -> RunResult:
    """A signal came before the first step: nothing was trained in this start; say so (the SLURM job requeues on
    SIGUSR1) and where the next one resumes from."""
    import signal

    summary.update(status="preempted", preempted_at_step=None, stopped_before_training=True,
                   signal=signal.Signals(pending()).name, checkpoint=str(checkpoint) if checkpoint else None)
    if is_main_process():
        write_json_atomic(run_dir / "summary.json", summary)
    log.warning("%s before training started: stopped; run the same command again (same hydra.run.dir) to %s",
                summary["signal"], f"resume from {checkpoint}" if checkpoint else "start over")
    return RunResult(summary)


def _run(cfg: DictConfig | TrainConfig, run_dir: Path) -> RunResult:
    quiet_library_noise()
    started = time.perf_counter()
    config = typed_config(cfg)
    check_eval_inputs(config.eval)  # a baseline or eval file that cannot be read fails before anything loads
    finished = _finished_before(run_dir) if config.resume.checkpoint == RESUME_AUTO else None
    if finished is not None:
        log.info("%s already holds a finished run (status %s); nothing to resume. Train again with a new "
                 "hydra.run.dir, or here with resume=never.", run_dir, finished["status"])
        return RunResult(finished)
    splits = load_splits(config.data, config.recipe, config.seed)
    spec = objective_spec(config.recipe.objective)
    prepare = spec.hook("prepare")  # e.g. GRPO's rewards, checked against the data: before anything loads
    trainer_kwargs, prepared = prepare(config, splits) if prepare else ({}, {})
    log.info("data: %d train / %d eval records (%s, eval %s) from %s", len(splits.train), len(splits.eval),
             splits.format, splits.eval_source, splits.train.path)
    source = model_source(config.model)
    check_kernels(config, source)
    tokenizer = load_tokenizer(config.model, source)
    chat = ChatTemplate(tokenizer, dict(config.data.chat_template_kwargs))

    summary: dict[str, Any] = {"status": "failed", "recipe": config.recipe.name, "model": config.model.name,
                               "base_model": source, "run_dir": str(run_dir)}
    # The rows first (tokenised once, cached): the template gate takes their per-record verdicts.
    rows = spec.hook("rows")(config.data, splits, chat, _template_gated(config.checks))
    gates = _run_gates(config.checks, splits, chat, config.data.max_length, run_dir, rows.verdicts)
    summary["gates"] = gates
    if gates is not None and not gates["passed"]:
        summary["status"] = "failed_gates"
        summary.update(deploy_ready=False, deploy_reasons=deploy_decision(summary, config.eval)["reasons"])
        if is_main_process():
            write_json_atomic(run_dir / "summary.json", summary)
        return RunResult(summary)

    train_rows, eval_rows, info = rows.train, rows.eval, rows.info
    if pending() is not None and single_process():  # no other rank waits for this one: stop before the model
        resume_from = resume_checkpoint(config.resume.checkpoint, run_dir, config.resume.verify.value)
        return _stopped_before_training(summary, run_dir, resume_from)
    summary["data"] = {"format": splits.format, "eval_source": splits.eval_source,
                       "chat_template_kwargs": chat.kwargs, **prepared, **info,
                       "train_examples": len(train_rows), "eval_examples": len(eval_rows)}

    # TRL and the trainer are imported only once the config and the data are known to be good.
    from transformers import EarlyStoppingCallback

    from gatetune.callbacks import RunMetricsCallback, find_callback, peak_memory_mb, stopped_early
    from gatetune.preemption import PreemptionCallback
    from gatetune.trainer import build_trainer

    configure_logger(config.logger, run_dir)
    record = training_record(config)
    checkpoint = resume_checkpoint(config.resume.checkpoint, run_dir, config.resume.verify.value)
    if checkpoint is not None:  # refused here, before the model loads, when the training settings changed
        summary["resumed_with_changes"] = check_resume(checkpoint, record, config.resume.allow_changes) or None
    if is_main_process():
        discard_after(run_dir, checkpoint, config.resume.checkpoint)
    summary["resumed_from"] = str(checkpoint) if checkpoint else None
    from transformers import set_seed

    set_seed(config.seed)  # LoRA's initial weights come from the global RNG: the same in every run of this config
    model = load_model(config, source)
    summary["kernels"] = {"packing": resolved_packing(config), "liger": config.training.liger,
                          "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    trainer = build_trainer(config, model, tokenizer, train_rows, eval_rows, run_dir, trainer_kwargs,
                            resuming=checkpoint is not None)
    trainer.training_record = record  # written into each checkpoint
    if any_process_signalled(pending() is not None, trainer.args.device):  # every rank stops here, or none
        return _stopped_before_training(summary, run_dir, checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    history = trainer.state.log_history
    preemption = find_callback(trainer, PreemptionCallback)
    train_seconds = find_callback(trainer, RunMetricsCallback).train_seconds
    summary["metrics"] = _metrics(spec, trainer.state, train_seconds, peak_memory_mb())
    summary["metrics"]["wall_seconds"] = time.perf_counter() - started
    if preemption.preempted:
        return _preempted(summary, trainer, preemption, run_dir)
    summary["status"] = "stopped_early" if stopped_early(find_callback(trainer, EarlyStoppingCallback)) \
        else "completed"
    weights_in = None
    if config.recipe.adaptation is Adaptation.full:
        # Every process takes part: under ZeRO-3 save_model gathers the shards, then the main one writes.
        weights_in = run_dir / ".model.partial"
        trainer.save_model(str(weights_in))
    if not trainer.is_world_process_zero():
        return RunResult(summary, trainer.model, tokenizer, history)
    summary["export"] = _export(config, trainer.model, tokenizer, source, splits, summary, run_dir, weights_in)
    plot_losses(history, run_dir / "loss.png", f"{config.recipe.name} on {config.model.name}")
    # Generation on the export (tuned and base), the regression gate against eval.baseline, deploy_ready.
    evaluate_run(config.eval, splits.eval, splits.format, list(config.grpo.rewards), summary, run_dir,
                 config.data.max_length, spec.greater_is_better,
                 config.grpo.max_completion_length if splits.format == "prompt" else None)
    # The resolved config, which gatetune-eval recomposes the run's eval split from.
    write_text_atomic(run_dir / "config.yaml", [OmegaConf.to_yaml(OmegaConf.structured(config))])
    write_json_atomic(run_dir / "summary.json", summary)
    return RunResult(summary, trainer.model, tokenizer, history)


def _preempted(summary: dict[str, Any], trainer: Any, preemption: Any, run_dir: Path) -> RunResult:
    """A signal stopped training at a step boundary, after a checkpoint: say so, and where to resume from."""
    import signal

    from gatetune.checkpoints import checkpoints_dir

    step = preemption.preempted_at_step
    summary.update(status="preempted", preempted_at_step=step,
                   signal=signal.Signals(preemption.received).name if preemption.received else None,
                   checkpoint=str(checkpoints_dir(run_dir) / f"checkpoint-{step}"))
    if trainer.is_world_process_zero():
        write_json_atomic(run_dir / "summary.json", summary)
        log.warning("preempted at step %d: checkpoint %s; run the same command again (same hydra.run.dir) to "
                    "resume", step, summary["checkpoint"])
    return RunResult(summary, trainer.model, None, trainer.state.log_history)


def _export(config: TrainConfig, model: Any, tokenizer: Any, source: str, splits: DataSplits,
            summary: dict[str, Any], run_dir: Path, weights_in: Path | None = None) -> dict[str, Any]:
    """The adapter (and, with export.merge, the merged model) or the full model, each with its model card."""
    datasets = [{"path": d.path, "sha256": sha256_of(d.path), "records": len(d)}
                for d in ([splits.train, splits.eval] if splits.eval_source == "file" else [splits.train])]
    run_info = {"recipe": config.recipe.name, "config_yaml": OmegaConf.to_yaml(OmegaConf.structured(config)),
                "datasets": datasets, "gates": summary["gates"], "metrics": summary["metrics"],
                "versions": library_versions(), "git_commit": git_commit()}

    def card(info: dict[str, Any]) -> str:
        return render_model_card(run_info, info)

    length = config.data.max_length
    template = TemplateUse(dict(config.data.chat_template_kwargs), bool(config.model.chat_template),
                           (summary.get("data") or {}).get("template_notes") or {})
    if config.recipe.adaptation is Adaptation.full:
        return export_full_model(model, tokenizer, run_dir / "model", source, card, weights_in=weights_in,
                                 trained_length=length, template=template)
    exported = export_adapter(model, tokenizer, run_dir / "adapter", config.export.adapter_name or config.recipe.name,
                              card, trained_length=length, template=template)
    if config.export.merge:
        exported["merged"] = merge_adapter(Path(exported["path"]), run_dir / "merged", source, card, length)
    return exported


def _best_step(state: Any) -> int | None:
    checkpoint = state.best_model_checkpoint
    if checkpoint is None:
        return None
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])
