"""`checks.engine=local|slurm|ray`: a training run's near-duplicate and PII gates as stages on a distributed engine
(data_checks/distributed/, docs/distributed_gates.md), for training data too large for one process's gates.

The template gate stays in this process: it reads what training's tokenisation found per record (the one
rendering both share), which costs nothing more. The engine reads `data.path` whole, with `data.eval_path` as
`--against` (contamination), so both must be JSONL files and the train split must be the file as it is (no
held-out fraction, no `data.max_examples`): `engine_problems` says so before anything loads. Only the main process
runs the engine; the others wait for its report, or stop with its error (`failed.json`). The work directory
(default `<run dir>/data_checks_work`) stays, so a resumed run's gates skip every finished stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from data_checks import run_gates
from data_checks.config import ChecksConfig
from data_checks.distributed.plan import DISTRIBUTED_GATES
from gatetune.errors import UserError

log = logging.getLogger("gatetune")

ENGINE_GATES = tuple(g for g in DISTRIBUTED_GATES if g != "template")  # the template gate renders in process


def engine_problems(checks: ChecksConfig, data: Any) -> list[str]:
    """Why `checks.engine` cannot run on the `data` node's files (each as "key: problem"); empty when it can."""
    if not checks.enabled or checks.engine is None:
        return []
    for key, value in (("data.path", data.path), ("data.eval_path", data.eval_path)):
        if value is not None and not str(value).endswith(".jsonl"):
            return [f"{key}: checks.engine reads JSONL files (one record a line), got {value}"]
    if data.eval_path is None:
        return ["checks.engine: the engine reads data.path whole, so the eval split must be its own file: give "
                "data.eval_path (a held-out fraction of data.path would be checked as training data)"]
    if data.max_examples is not None:
        return ["checks.engine: the engine reads data.path whole; data.max_examples would train on part of it"]
    return []


def _only(checks: ChecksConfig, names: tuple[str, ...], keep: bool) -> ChecksConfig:
    chosen = [g for g in checks.run if (g in names) == keep]
    return dataclasses.replace(checks, run=chosen, fail_on=[g for g in checks.fail_on if g in chosen])


FAILED = "failed.json"  # the main process's error, for the ranks that wait on it
CLOCK_SLACK_S = 5.0  # ranks start within seconds of each other; clocks of nodes agree to about this


def _process_start() -> float:
    import psutil

    return psutil.Process().create_time()


def _workdir_folder(workdir: str) -> Any:
    """The work directory as a DataFolder (a path or an fsspec URL)."""
    from datatrove.io import get_datafolder

    return get_datafolder(workdir)


def _wait_for(workdir: str, poll: float = 2.0) -> dict[str, Any]:
    """The main process's report, or its error as a UserError: a `failed.json` written after this process
    started (an older one is a previous attempt's, left for the main process to clear)."""
    from data_checks.distributed.engine import read_json

    folder, started = _workdir_folder(workdir), _process_start()
    log.info("data gates: waiting for the main process's %s/report.json", workdir)
    while True:
        if folder.isfile(FAILED):
            failed = read_json(workdir, FAILED)
            if failed["time"] >= started - CLOCK_SLACK_S:
                raise UserError(f"the main process's data gates failed: {failed['message']}")
        if folder.isfile("report.json"):
            return read_json(workdir, "report.json")
        time.sleep(poll)


def _run_main(workdir: str, run: Any) -> dict[str, Any]:
    """`run()` in the main process; its error, whatever it is, is left in `failed.json` for the waiting ranks
    before it is raised, so they stop with it instead of waiting for a report that will not come."""
    folder = _workdir_folder(workdir)
    with contextlib.suppress(Exception):  # an unreachable work directory is run()'s to report
        if folder.isfile(FAILED):
            folder.rm(FAILED)
    try:
        return run()
    except BaseException as exc:
        try:
            with folder.open(FAILED, "w") as f:
                json.dump({"time": time.time(), "message": str(exc) or type(exc).__name__}, f)
        except Exception:  # noqa: BLE001  (the error to raise is exc)
            log.warning("data gates: could not leave the error in %s for the other ranks", workdir)
        raise


def engine_gates(checks: ChecksConfig, splits: Any, chat: Any, max_length: int, run_dir: Path, verdicts: Any,
                 main_process: bool) -> dict[str, Any]:
    """The run's gate report: the in-process gates' checks and the engine's, in `checks.run` order."""
    try:
        from data_checks.distributed.engine import make_plan, run_distributed, workdir_url
        from data_checks.distributed.slurm_jobs import slurm_options
    except ImportError as exc:
        raise UserError(f"checks.engine={checks.engine} needs datatrove ({exc}): "
                        "pip install 'datatrove>=0.10'") from None

    workdir = workdir_url(checks.engine_workdir or run_dir / "data_checks_work")  # a path or an fsspec URL
    distributed = _only(checks, ENGINE_GATES, keep=True)
    local = _only(checks, ENGINE_GATES, keep=False)
    report = run_gates(splits.train, splits.format, local, tokenizer=chat, max_length=max_length, encoded=verdicts)
    if distributed.run:
        if main_process:
            def run() -> dict[str, Any]:
                try:
                    settings = [(f"checks.engine_slurm.{k}", k, v) for k, v in checks.engine_slurm.items()]
                    slurm = slurm_options(settings) if checks.engine == "slurm" else None
                    plan = make_plan(splits.train.path, splits.format, distributed, checks.engine_workers,
                                     against=splits.eval.path)
                    log.info("data gates %s on %s: %d shards, %d at a time, files in %s",
                             ", ".join(distributed.run), checks.engine, len(plan.shards), checks.engine_workers,
                             workdir)
                    # spawned, not forked: this process runs torch's and the tokenizer's threads
                    return run_distributed(plan, workdir, checks.engine, checks.engine_workers, slurm,
                                           say=log.info, start_method="spawn")
                except ValueError as exc:  # the engine's own errors (a stage's job failed, Ray unreachable, ...)
                    raise UserError(f"checks.engine={checks.engine}: {exc}") from None

            found = _run_main(workdir, run)
        else:
            found = _wait_for(workdir)
        report["checks"].update(found["checks"])
        if "against" in found:
            report["against"] = found["against"]
    report["checks"] = {name: report["checks"][name] for name in checks.run if name in report["checks"]}
    report["fail_on"] = list(checks.fail_on)
    report["passed"] = all(report["checks"][name]["passed"] for name in checks.fail_on if name in report["checks"])
    report["engine"] = {"name": checks.engine, "gates": distributed.run, "workdir": workdir}
    return report
