"""`python train.py` / `gatetune-train`: Hydra composes the config, `gatetune.run` does the work.

Exit status: 0 trained (completed or stopped early), 1 a data gate failed, a metric
regressed against eval.baseline (failed_regression) or the run crashed, 2 a user error
(bad config, unknown option, malformed data), printed as one message without a
traceback, 3 preempted (SIGUSR1/SIGTERM): a checkpoint was saved and the same command
resumes from it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gatetune.config import register_schema
from gatetune.errors import USER_ERRORS

CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
EXIT_GATES_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 3  # checkpointed and stopped on SIGUSR1/SIGTERM; the same command resumes
log = logging.getLogger("gatetune")
_task_started = False


def _print_summary(summary: dict[str, Any]) -> None:
    lines = [f"status: {summary['status']}", f"run_dir: {summary['run_dir']}"]
    if summary["status"] == "preempted" and summary.get("stopped_before_training"):
        lines.append(f"stopped on {summary['signal']} before training started; the same command "
                     + (f"resumes from {summary['checkpoint']}" if summary["checkpoint"] else "starts it"))
    elif summary["status"] == "preempted":
        lines.append(f"checkpoint: {summary['checkpoint']} (step {summary['preempted_at_step']}); the same command "
                     f"resumes from it")
    metrics = summary.get("metrics")
    if metrics and metrics["eval_metric_best"] is not None:
        name = metrics["eval_metric"].removeprefix("eval_").replace("_", " ")
        speed = metrics["train_tokens_per_second"]
        lines.append(f"eval {name}: {metrics['eval_metric_initial']:.4f} initial -> {metrics['eval_metric_best']:.4f} "
                     f"best ({metrics['steps']} steps, {metrics['wall_seconds']:.0f} s, "
                     + (f"{speed:.0f} train tokens/s, " if speed else "")
                     + f"peak memory {metrics['peak_memory_mb']:.0f} MB)")
    gates = summary.get("gates")
    if gates is not None:
        lines.append(f"data gates: {'passed' if gates['passed'] else 'FAILED'} (report {gates['report_path']})")
    export = summary.get("export")
    if export:
        lines.append(f"export ({export['kind']}): {export['path']}")
        lines.append(f"serve it: {export['vllm_command']}")
    evaluation = summary.get("eval")
    if evaluation:
        from gatetune.evaluation.step import evaluation_lines

        lines.append(f"evaluation ({evaluation['examples']} examples, {evaluation['results_path']}):")
        lines += [f"  {line}" for line in evaluation_lines(evaluation)]
    if "deploy_ready" in summary:
        failed = [r for r in summary["deploy_reasons"] if not r["passed"]]
        lines.append(f"deploy_ready: {str(summary['deploy_ready']).lower()}"
                     + "".join(f"\n  not ready: {r['check']}: {r['detail']}" for r in failed))
    log.info("\n".join(lines))  # to the terminal and to train.log


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    global _task_started
    _task_started = True
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    from gatetune.checkpoints import CheckpointWriteError

    try:
        from gatetune.run import run

        summary = run(cfg, run_dir).summary
    except USER_ERRORS as exc:
        log.error("error: %s", exc)
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:
        from data_checks import write_json_atomic

        if isinstance(exc, CheckpointWriteError):  # said in full: no traceback
            log.error("error: %s", exc)
        else:
            log.exception("the run failed")
        try:
            write_json_atomic(run_dir / "summary.json", {"status": "failed", "recipe": cfg.recipe.name,
                                                         "model": cfg.model.name, "run_dir": str(run_dir),
                                                         "error": str(exc)})
        except OSError as write_error:  # the disk that failed the checkpoint, say
            log.error("summary.json could not be written either: %s", write_error)
        sys.exit(1)
    from gatetune.run import is_main_process

    if is_main_process():
        _print_summary(summary)
    if summary["status"] in ("failed_gates", "failed_regression"):
        sys.exit(EXIT_GATES_FAILED)
    if summary["status"] == "preempted":
        sys.exit(EXIT_PREEMPTED)


def _needs_run_dir(argv: list[str]) -> bool:
    """Several processes (torchrun, accelerate launch) each resolve the timestamped default run directory
    on their own clock, and may not agree: they must be told one."""
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return several and not any(a.startswith(("hydra.run.dir=", "hydra.sweep.dir=")) for a in argv) \
        and not any(a in ("--help", "-h", "--cfg", "-c", "--info") for a in argv)


def main() -> None:
    """Console entry point. Hydra reports config errors with exit status 1; they are user errors: 2."""
    if _needs_run_dir(sys.argv[1:]):
        print("error: hydra.run.dir: a launch of several processes needs hydra.run.dir=DIR, so that every "
              "process writes to the same run directory", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    path = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("resume=")
                 and a.split("=", 1)[1] not in ("auto", "never")), None)
    if path is not None:
        print(f"error: resume={path}: resume=auto|never picks the mode; a checkpoint to resume from is "
              f"resume.checkpoint={path}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    register_schema()
    try:
        _hydra_main()
    except SystemExit as exc:
        if exc.code == 1 and not _task_started:
            sys.exit(EXIT_USER_ERROR)
        raise


if __name__ == "__main__":
    main()
