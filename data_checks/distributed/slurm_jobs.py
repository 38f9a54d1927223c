"""`--engine slurm`: each stage one SLURM job array (datatrove's `SlurmPipelineExecutor`), submitted all at once,
each depending on the one before (`afterok`); then this command waits, saying when each stage is done, and stops
(cancelling the stages after it) when a stage's job ends with tasks unfinished."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SlurmJobError(ValueError):
    """A stage's job array ended with tasks unfinished, or the cluster cannot take the jobs."""


@dataclass
class SlurmOptions:
    """The job arrays' shape: `--slurm KEY=VALUE` (partition, time, cpus_per_task, mem_per_cpu_gb, qos, account)."""

    partition: str | None = None  # default: the cluster's default partition
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    time: str = "4:00:00"
    qos: str | None = None
    sbatch_args: dict[str, Any] = field(default_factory=dict)
    python: str = sys.executable


SLURM_KEYS = {"partition": str, "time": str, "cpus_per_task": int, "mem_per_cpu_gb": float, "qos": str,
              "account": str}


def slurm_options(settings: list[tuple[str, str, Any]]) -> SlurmOptions:
    """`(label, key, value)` settings (`--slurm KEY=VALUE` pairs, or `checks.engine_slurm`'s items) as
    SlurmOptions; a wrong key or value is a ValueError naming the setting by its label."""
    options = SlurmOptions()
    for label, key, value in settings:
        if key not in SLURM_KEYS or value in (None, ""):
            raise ValueError(f"{label}: expected KEY=VALUE with KEY one of {', '.join(SLURM_KEYS)}")
        try:
            parsed = SLURM_KEYS[key](value)
        except ValueError:
            raise ValueError(f"{label}: {value!r} is not a {SLURM_KEYS[key].__name__}") from None
        if key == "account":
            options.sbatch_args["account"] = parsed
        else:
            setattr(options, key, parsed)
    return options


def default_partition() -> str:
    """The partition sinfo marks as the default (`debug*`)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmJobError(f"--engine slurm: sinfo does not answer ({exc}); is this a SLURM login node?") from None
    for name in out.split():
        if name.endswith("*"):
            return name[:-1]
    raise SlurmJobError("--engine slurm: the cluster has no default partition; give one with --slurm partition=NAME")


def slurm_executor(step: Any, tasks: int, workers: int, logs: str, depends: Any, options: SlurmOptions) -> Any:
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        [step], tasks=tasks, workers=workers, time=options.time, partition=options.partition or default_partition(),
        cpus_per_task=options.cpus_per_task, mem_per_cpu_gb=options.mem_per_cpu_gb, qos=options.qos,
        logging_dir=logs, job_name=f"data-checks-{step.name.split()[1]}", depends=depends,
        # sbatch takes whole units only ("1.0G" is refused): the memory in MB, as an sbatch argument (which wins)
        sbatch_args={"mem-per-cpu": f"{round(options.mem_per_cpu_gb * 1024)}M", **options.sbatch_args},
        requeue=False,
        # the tasks run this interpreter, with this environment (sbatch exports it: PYTHONPATH too)
        env_command=f"export PATH={Path(options.python).parent}:$PATH")


def _queue(jobs: list[str]) -> dict[str, str]:
    """Each queued job's state and reason ("PENDING DependencyNeverSatisfied"), by job id (an array's base id)."""
    out = subprocess.run(["squeue", "-h", "-j", ",".join(jobs), "-o", "%i %T %r"], capture_output=True,
                         text=True).stdout
    states: dict[str, str] = {}
    for line in out.splitlines():
        job, _, rest = line.strip().partition(" ")
        states.setdefault(job.split("_")[0], rest)
    return states


def _job(executor: Any) -> str | None:
    job = getattr(executor, "job_id", None)
    return None if job in (None, -1) else str(job)


def _stop(pending: list[tuple[str, Any]], message: str) -> None:
    later = [job for _, executor in pending if (job := _job(executor))]
    if later:
        subprocess.run(["scancel", *later], capture_output=True)
    raise SlurmJobError(message + ". Run the same command again to redo only the unfinished tasks")


def wait_for_stages(stages: list[tuple[str, Any]], workdir: str, say: Any, poll: float = 1.0) -> None:
    """Until every stage's tasks finished. A stage whose job left the queue with tasks unfinished, or a job that
    SLURM will never start (a task of the job it depends on failed), stops the run and cancels the stages after."""
    pending = list(stages)
    while pending:
        name, executor = pending[0]
        if not executor.get_incomplete_ranks():
            say(f"{name}: done")
            pending.pop(0)
            continue
        queue = _queue([job for _, e in pending if (job := _job(e))])
        job = _job(executor)
        if job and job not in queue:
            time.sleep(poll)  # completion files are written before the job leaves the queue; look once more
            unfinished = executor.get_incomplete_ranks()
            if unfinished:
                _stop(pending[1:], f"stage {name}: job {job} ended with task(s) "
                      f"{', '.join(map(str, unfinished[:10]))} unfinished; see {executor.logging_dir.path}/"
                      "slurm_logs/ and logs/")
        elif job and "DependencyNeverSatisfied" in queue.get(job, ""):
            # every task of the stage before wrote its results, yet one exited with an error (killed on its way out)
            _stop(pending, f"stage {name}: job {job} will never start: a task of the stage before it failed "
                  f"(see {workdir}/logs/*/slurm_logs/)")
        time.sleep(poll)
