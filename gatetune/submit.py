"""`python scripts/submit.py [OVERRIDES] [--dry-run]` (or `gatetune-submit`): train on SLURM.

The overrides are train.py's (`recipe=full_zero3 data.path=...`) plus the `slurm` group's
(`slurm.nodes=2 slurm.gpus_per_node=8 slurm.partition=gpu`). The config is composed and checked here,
so a typo fails now rather than after the job waited in the queue, and the shape is checked against the
partition's nodes as `sinfo` reports them (a request no node can hold is refused: SLURM would leave it pending
forever; `--dry-run` does not ask sinfo). gatetune/slurm/train.sbatch is rendered
with the `slurm` values into the run directory (`hydra.run.dir=`, or the default runs/<recipe>/<time>)
and handed to `sbatch --parsable`. Printed: `job <ID>`, `log <PATH>`, `run_dir <PATH>`.

Exit status: 0 submitted (or printed, with --dry-run), 1 sbatch refused the job, 2 a user error.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gatetune.errors import ConfigError, UserError
from gatetune.partition import check_fits, query_sinfo

if TYPE_CHECKING:
    from gatetune.config import SlurmConfig, TrainConfig, TrainingConfig

TEMPLATE = Path(__file__).resolve().parent / "slurm" / "train.sbatch"
USAGE = """usage: python scripts/submit.py [--dry-run] [OVERRIDE ...]     (or gatetune-submit)

Submit `python train.py OVERRIDES` as a SLURM job, shaped by the `slurm` config group:
  slurm.nodes=N  slurm.gpus_per_node=G  slurm.processes_per_node=P  slurm.cpus_per_task=C
  slurm.partition=...  slurm.account=...  slurm.time=24:00:00  slurm.mem=0  slurm.exclusive=true
  'slurm.directives=["--constraint=h100"]'  slurm.setup=['source .venv/bin/activate']  +slurm.env.NCCL_DEBUG=WARN
  slurm=local   (the CPU cluster of scripts/start_local_slurm.sh: 2 processes over gloo)
The run directory is hydra.run.dir=DIR (default runs/<recipe>/<time>); the rendered script is written
there as train.sbatch, the job's log as slurm-<ID>.out.

  --dry-run   print the rendered script; write and submit nothing
  -h, --help  this text

Examples:
  python scripts/submit.py recipe=full_zero3 slurm.nodes=2 slurm.gpus_per_node=8 slurm.partition=gpu
  python scripts/submit.py slurm=local hydra.run.dir=runs/try-slurm
"""


class SubmitError(UserError):
    """A problem with the submission itself (no sbatch, bad slurm values)."""


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def train_overrides(overrides: list[str], run_dir: Path) -> list[str]:
    """What train.py gets in the job: the user's overrides without the slurm ones, and the run directory."""
    kept = [o for o in overrides if not (_key(o) == "slurm" or _key(o).startswith("slurm.")
                                         or _key(o) == "hydra.run.dir")]
    return [*kept, f"hydra.run.dir={run_dir}"]


def compose_config(overrides: list[str]) -> tuple[TrainConfig, Path]:
    """The training config train.py will run (checked as train.py checks it) and its absolute run directory."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from gatetune.cli import CONFIG_DIR
    from gatetune.config import register_schema, typed_config

    register_schema()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
        run_dir = Path(OmegaConf.select(cfg, "hydra.run.dir")).absolute()
    except (HydraException, OmegaConfBaseException) as exc:
        message = str(exc).split("Config search path")[0]
        raise SubmitError(" ".join(line.strip() for line in message.splitlines() if line.strip())) from None
    with open_dict(cfg):
        del cfg["hydra"]
    return typed_config(cfg), run_dir


def job_shape(s: SlurmConfig, training: TrainingConfig) -> dict[str, int]:
    """Nodes, GPUs and processes per node, checked against each other and the batch size."""
    from gatetune.batching import batch_layout

    processes = s.processes_per_node if s.processes_per_node is not None else max(s.gpus_per_node, 1)
    for key, value, least in (("nodes", s.nodes, 1), ("gpus_per_node", s.gpus_per_node, 0),
                              ("processes_per_node", processes, 1), ("cpus_per_task", s.cpus_per_task, 1),
                              ("signal_seconds", s.signal_seconds, 20)):
        if value < least:
            raise ConfigError(f"slurm.{key}", f"must be at least {least}, got {value}")
    if s.gpus_per_node and processes > s.gpus_per_node:
        raise ConfigError("slurm.processes_per_node", f"{processes} processes for {s.gpus_per_node} GPUs a node: "
                          "at most one process per GPU")
    for name in s.env:
        if not name.isidentifier():
            raise ConfigError("slurm.env", f"{name!r} is not an environment variable name")
    batch_layout(training, s.nodes * processes)  # the effective batch must split evenly over every process
    return {"nodes": s.nodes, "gpus_per_node": s.gpus_per_node, "processes_per_node": processes}


def render(config: TrainConfig, run_dir: Path, overrides: list[str], workdir: Path | None = None) -> str:
    """gatetune/slurm/train.sbatch filled in for this config."""
    import jinja2

    s = config.slurm
    directives = [f"--{k}={v}" for k, v in (("partition", s.partition), ("account", s.account), ("qos", s.qos),
                                               ("time", s.time), ("mem", s.mem)) if v is not None]
    directives += ["--exclusive"] if s.exclusive else []
    directives += list(s.directives)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["q"] = lambda value: shlex.quote(str(value))
    template = env.from_string(TEMPLATE.read_text())
    return template.render(
        **job_shape(s, config.training), job_name=s.job_name or f"gatetune-{config.recipe.name}",
        cpus_per_task=s.cpus_per_task, signal_seconds=s.signal_seconds,
        shutdown_timeout=max(s.signal_seconds - 15, 10), directives=directives,
        run_dir=run_dir, python=s.python or sys.executable, workdir=workdir or Path.cwd(), setup=list(s.setup),
        env=dict(s.env), train_args=shlex.join(train_overrides(overrides, run_dir)))


def _check_partition(config: TrainConfig) -> None:
    """Refuse a job no node of its partition can hold (it would pend forever); unchecked where sinfo is absent."""
    sinfo = query_sinfo()
    if sinfo is not None:
        s = config.slurm
        check_fits(s.partition, s.nodes, s.cpus_per_task, s.gpus_per_node, s.mem, sinfo)


def sbatch(script: Path) -> str:
    """Submit; the job ID."""
    try:
        result = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SubmitError("sbatch not found: submit from a SLURM login node (for a local test cluster: "
                          "bash scripts/start_local_slurm.sh)") from None
    if result.returncode != 0:
        raise RuntimeError(f"sbatch refused {script}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip().split(";", 1)[0]


def main(argv: list[str] | None = None) -> int:
    from data_checks.report import write_text_atomic

    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(USAGE)
        return 0
    dry_run = "--dry-run" in args
    overrides = [a for a in args if a != "--dry-run"]
    unknown = [a for a in overrides if a.startswith("-")]
    try:
        if unknown:
            raise SubmitError(f"unknown option {unknown[0]} (overrides are KEY=VALUE; see --help)")
        config, run_dir = compose_config(overrides)
        script = render(config, run_dir, overrides)
        if dry_run:
            print(script, end="")
            return 0
        _check_partition(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "train.sbatch"
        write_text_atomic(path, [script])
        job = sbatch(path)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"job {job}\nlog {run_dir / f'slurm-{job}.out'}\nrun_dir {run_dir}", flush=True)
    print(f"watch: squeue -j {job}; tail -f {run_dir / f'slurm-{job}.out'}\n"
          f"stop, checkpointing first: scancel --batch --signal=USR1 {job}  (the job requeues itself and resumes)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
