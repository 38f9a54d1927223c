"""Running the stages on a datatrove executor: `local` (processes of this machine), `slurm` (one job array per
stage, each waiting for the one before: `afterok`) or `ray`. A stage whose tasks all finished in an earlier run
of the same work directory is skipped, and so is each finished task of a stage that was cut short; the run says
so. The work directory is a local path or any fsspec URL (s3://bucket/run, gs://...): every file in it is read
and written through datatrove's `DataFolder`, each written whole (an object store's put).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from data_checks.config import ENGINES, ChecksConfig
from data_checks.distributed.plan import DISTRIBUTED_GATES, PLAN, Against, Plan, source_state
from data_checks.distributed.ray_cluster import ray_cluster
from data_checks.distributed.shards import first_record, plan_shards
from data_checks.distributed.slurm_jobs import SlurmJobError, SlurmOptions, slurm_executor, wait_for_stages
from data_checks.errors import DataError
from data_checks.formats import resolve_format
from data_checks.records import source_label
from data_checks.registry import GATES

SHARD_BYTES = 128 << 20  # a first-stage task holds its shard's texts (about this much) and their sketches


# A band task holds 16 bytes per record of its band's key range: one range per 32 GB of input keeps it under
# about 1.3 GB for records of 400 bytes or more (a 300-word record is ~2 KB: ~0.25 GB).
BAND_BYTES = 32 * 2**30
KEY_BYTES = 4 * 2**30


class EngineError(ValueError):
    """A distributed run that cannot start or go on: its message names the option or file."""


def make_plan(source: str, fmt: str, config: ChecksConfig, workers: int, tasks: int | None = None,
              hash_ranges: int | None = None, skip_invalid: bool = False, clean: bool = False,
              redact_pii: bool = False, against: str | None = None,
              rendering: dict[str, Any] | None = None) -> Plan:
    """The run over `source` (a JSONL file): shards of about equal size, `tasks` of them (default: 4 per worker,
    and at least one per SHARD_BYTES, which bounds a first-stage task's memory); each band's keys split into
    `hash_ranges` tasks (default: one per BAND_BYTES of input, which bounds a band task's memory)."""
    for path in filter(None, (source, against)):
        if not str(path).endswith(".jsonl") or not Path(path).is_file():
            raise EngineError(f"{path}: --engine reads JSONL files (one record a line); convert the data first")
    gates = [g for g in config.run if g in DISTRIBUTED_GATES]
    others = [g for g in config.run if g not in DISTRIBUTED_GATES]
    if others:
        names = f"{', '.join(DISTRIBUTED_GATES[:-1])} and {DISTRIBUTED_GATES[-1]}"
        raise EngineError(f"--engine runs the {names} gates; run {', '.join(others)} "
                          f"without --engine (--checks {','.join(gates or DISTRIBUTED_GATES)})")
    fmt = resolve_format([first_record(source, skip_invalid)], fmt, str(source))
    gates = [g for g in gates if GATES[g].applies_to(fmt)]
    absolute = str(Path(source).resolve())
    size, mtime = source_state(absolute)
    shards = plan_shards(absolute, tasks or max(4 * workers, -(-size // SHARD_BYTES)))
    # an exact task holds its key range's keys (16 bytes a record): one per KEY_BYTES of input at least. A verify
    # task holds the texts of its pairs' records (fetched for it): the same count spreads them as thinly
    keyed = max(workers, -(-size // KEY_BYTES))
    return Plan(absolute, source_label(source), size, mtime, fmt, gates, [g for g in config.fail_on if g in gates],
                config.dedup, config.pii, config.template, shards, exact_tasks=keyed, verify_tasks=keyed,
                hash_ranges=hash_ranges or -(-size // BAND_BYTES), skip_invalid=skip_invalid, clean=clean,
                redact_pii=redact_pii, against=_against(against, workers) if against else None, rendering=rendering)


def _against(path: str, workers: int) -> Against:
    absolute = str(Path(path).resolve())
    size, mtime = source_state(absolute)
    shards = plan_shards(absolute, max(workers, -(-size // SHARD_BYTES)))
    return Against(absolute, source_label(path), size, mtime, shards)


def _stages(plan: Plan, workdir: str) -> list[tuple[str, Any, int]]:
    from data_checks.distributed.stages import BandPairs, Clean, ExactGroups, Report, Sketch
    from data_checks.distributed.verification import Fetch, Needed, Verify

    dedup = "dedup" in plan.gates
    stages = [("sketch", Sketch(plan, workdir), plan.sketch_tasks)]
    if dedup:
        stages += [("exact", ExactGroups(plan, workdir), plan.exact_tasks),
                   ("bands", BandPairs(plan, workdir), plan.band_tasks),
                   ("needed", Needed(plan, workdir), plan.verify_tasks),
                   ("fetch", Fetch(plan, workdir), plan.sketch_tasks),
                   ("verify", Verify(plan, workdir), plan.verify_tasks)]
    stages.append(("report", Report(plan, workdir), 1))
    if plan.clean:
        stages.append(("clean", Clean(plan, workdir), len(plan.shards)))
    return stages


def workdir_url(workdir: str | Path) -> str:
    """The work directory as the stages take it: an fsspec URL (`s3://bucket/run`) as given, a path made absolute."""
    text = str(workdir)
    return text.rstrip("/") if "://" in text else str(Path(text).absolute())


def _folder(workdir: str) -> Any:
    from datatrove.io import get_datafolder

    return get_datafolder(workdir)


def read_json(workdir: str, path: str) -> Any:
    """A JSON file of the work directory (`report.json`, ...), local or remote."""
    with _folder(workdir).open(path, "r") as f:
        return json.load(f)


def _check_plan(plan: Plan, workdir: str) -> None:
    """A work directory holds one run: the same source (size and time), settings and tasks, or none yet."""
    try:
        folder = _folder(workdir)
        old = read_json(workdir, PLAN) if folder.isfile(PLAN) else None
        if old is None:
            folder.makedirs("", exist_ok=True)
            with folder.open(f"{PLAN}.tmp", "w") as f:  # then moved: a plan.json is always whole
                json.dump({"fingerprint": plan.fingerprint(), "plan": plan.to_dict()}, f, indent=1, default=str)
            folder.mv(f"{PLAN}.tmp", PLAN)
    except (OSError, ImportError, ValueError) as exc:  # unreachable, no credentials, no fsspec driver for the URL
        raise EngineError(f"--workdir {workdir}: {type(exc).__name__}: {exc}") from None
    if old is not None and old.get("fingerprint") != plan.fingerprint():
        raise EngineError(f"{workdir} holds another run (its {PLAN} has other data, settings or task counts); "
                          "use a new --workdir, or delete this one to start over")


def _executor(engine: str, step: Any, tasks: int, workers: int, logs: str, depends: Any,
              slurm: SlurmOptions | None, start_method: str = "fork") -> Any:
    if engine == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor([step], tasks=tasks, workers=min(workers, tasks), logging_dir=logs,
                                     start_method=start_method)
    if engine == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        # one CPU a task; the memory a task may take is Ray's to enforce (1 GB reserved: a task's bound)
        return RayPipelineExecutor([step], tasks=tasks, workers=min(workers, tasks), logging_dir=logs,
                                   cpus_per_task=1, mem_per_cpu_gb=1)
    return slurm_executor(step, tasks, workers, logs, depends, slurm or SlurmOptions())


def recorded_error(workdir: str) -> DataError | None:
    """The first DataError a task left in `errors/` (a malformed line), to report as one process would."""
    folder = _folder(workdir)
    errors = sorted(folder.list_files("errors", glob_pattern="*.json")) if folder.isdir("errors") else []
    if not errors:
        return None
    found = read_json(workdir, errors[0])
    return DataError(found["path"], found["line"], found["problem"])


def run_distributed(plan: Plan, workdir: str | Path, engine: str, workers: int,
                    slurm: SlurmOptions | None = None, say: Any = print, start_method: str = "fork") -> dict[str, Any]:
    """Run (or continue) the plan's stages in `workdir`; return the report. `start_method`: how the local
    executor starts its processes; "spawn" in a process that already runs threads (torch, tokenizers), where a
    forked child can deadlock on a lock another thread held."""
    if engine not in ENGINES:
        raise EngineError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    from data_checks.distributed.quiet import errors_only

    errors_only()  # datatrove's own INFO lines: the task logs have them
    workdir = workdir_url(workdir)
    _check_plan(plan, workdir)
    with ray_cluster(workers) if engine == "ray" else contextlib.nullcontext():
        return _run_stages(plan, workdir, engine, workers, slurm, say, start_method)


def _run_stages(plan: Plan, workdir: str, engine: str, workers: int, slurm: SlurmOptions | None,
                say: Any, start_method: str) -> dict[str, Any]:
    previous, stages = None, []
    for name, step, tasks in _stages(plan, workdir):
        logs = f"{workdir}/logs/{name}"
        executor = _executor(engine, step, tasks, workers, logs, previous, slurm, start_method)
        done = tasks - len(executor.get_incomplete_ranks())
        started = time.perf_counter()
        if done == tasks:
            say(f"{step.name}: all {tasks} tasks finished in an earlier run, skipped")
        else:
            note = f" ({done} finished earlier, skipped)" if done else ""
            say(f"{step.name}: {tasks - done} of {tasks} tasks on {engine} ({min(workers, tasks)} at a time){note}")
            try:
                executor.run()
            except DataError:
                raise
            except Exception as exc:  # a task's error, re-raised by the pool: its log has the traceback
                raise EngineError(f"stage {name}: {exc} (task logs: {logs}/logs/)") from None
        if engine != "slurm" and done < tasks:
            _check_finished(executor, name, logs, workdir)
            say(f"{step.name}: done in {time.perf_counter() - started:.1f} s")
        previous = executor
        stages.append((step.name, executor))
    if engine == "slurm":
        try:
            wait_for_stages(stages, workdir, say)
        except SlurmJobError:
            error = recorded_error(workdir)
            if error is not None:
                raise error from None
            raise
    return read_json(workdir, "report.json")


def write_clean_copy(plan: Plan, workdir: str | Path, out: str | Path) -> int:
    """The clean stage's parts joined in shard order into `out` (atomically: it appears only once whole); returns
    the records kept."""
    from data_checks.report import write_text_atomic

    workdir = workdir_url(workdir)
    folder = _folder(workdir)
    parts = [f"clean/{s.index:05d}" for s in plan.shards]

    def lines() -> Any:
        for part in parts:
            with folder.open(f"{part}.jsonl", "r", encoding="utf-8") as f:
                yield from f

    write_text_atomic(out, lines())
    return sum(read_json(workdir, f"{part}.json")["kept"] for part in parts)


def _check_finished(executor: Any, name: str, logs: str, workdir: str) -> None:
    failed = executor.get_incomplete_ranks()
    if failed:
        error = recorded_error(workdir)
        if error is not None:
            raise error
        raise EngineError(f"stage {name}: task(s) {', '.join(map(str, failed[:10]))} failed; see "
                          f"{logs}/logs/task_{failed[0]:05d}.log. Run the same command again to redo only those")
