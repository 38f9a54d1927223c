"""SLURM: the submit command, and real jobs on the one-node cluster of scripts/start_local_slurm.sh.

The job tests need that cluster (CI starts it); without `sinfo`, or with another cluster, they skip.
Jobs run the tiny LoRA recipe as 2 CPU processes over gloo (`slurm=local`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.slurm_jobs import ONE_NODE, SUBMIT, adapter_weights, max_difference

# As in test_resume: early stopping ends the run at step 50; checkpoints every 10 steps.
RUN = ["slurm=local", "logger=none", "training.max_steps=80", "training.eval_every_steps=10",
       "training.early_stopping_patience=2", "training.early_stopping_threshold=0.5"]

needs_slurm = pytest.mark.skipif(ONE_NODE.problem() is not None, reason=str(ONE_NODE.problem()))


def submit(run_dir: Path, *overrides: str) -> dict[str, str]:
    return ONE_NODE.submit(run_dir, *RUN, *overrides)


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, dict, str]:
    run_dir = tmp_path_factory.mktemp("slurm-uninterrupted")
    printed = submit(run_dir)
    info = ONE_NODE.wait_for_end(printed["job"])
    return run_dir, info, printed["log"]


@needs_slurm
@pytest.mark.slow
def test_submitted_two_process_job_trains_and_exports(finished_job: tuple[Path, dict, str]):
    run_dir, info, log = finished_job
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", info
    assert Path(log) == run_dir / f"slurm-{info['JobId']}.out"
    text = Path(log).read_text(errors="replace")
    assert "2 processes, rendezvous localhost:" in text
    assert (run_dir / "train.sbatch").read_text().startswith("#!/bin/bash")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped_early" and summary["metrics"]["steps"] == 50
    assert summary["export"]["kind"] == "adapter" and (run_dir / "adapter" / "adapter_config.json").is_file()
    # Two processes share each optimizer step: gloo, world size 2 (the trainer logs its batch layout).
    assert "x 2 processes = 16" in (run_dir / "train.log").read_text(errors="replace")


@needs_slurm
@pytest.mark.slow
def test_usr1_checkpoints_requeues_and_resumes_to_the_same_weights(tmp_path: Path,
                                                                   finished_job: tuple[Path, dict, str]):
    baseline, _, _ = finished_job
    job = submit(tmp_path)["job"]
    ONE_NODE.wait_for(tmp_path / "checkpoints" / "checkpoint-10", job)
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    info = ONE_NODE.wait_for_end(job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", info

    log = (tmp_path / f"slurm-{job}.out").read_text(errors="replace")
    assert "SIGUSR1: asking training to checkpoint and stop" in log
    assert f"requeueing job {job}" in log and "start 1 of it" in log
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "stopped_early" and "checkpoint-" in summary["resumed_from"]
    assert f"resuming from {summary['resumed_from']}" in log
    want = json.loads((baseline / "summary.json").read_text())
    assert [e["eval_loss"] for e in summary["metrics"]["eval_history"]] == pytest.approx(
        [e["eval_loss"] for e in want["metrics"]["eval_history"]], abs=1e-6)
    assert max_difference(adapter_weights(tmp_path), adapter_weights(baseline)) < 1e-6


@needs_slurm
@pytest.mark.slow
def test_scancel_checkpoints_and_ends_without_requeue(tmp_path: Path, tiny_model_dir: Path):
    job = submit(tmp_path)["job"]
    ONE_NODE.wait_for(tmp_path / "checkpoints" / "checkpoint-10", job)
    subprocess.run(["scancel", job], check=True)
    info = ONE_NODE.wait_for_end(job)
    time.sleep(3)  # a requeue would show up as PENDING again
    info = ONE_NODE.job_info(job)
    assert info["JobState"] == "CANCELLED" and info["Restarts"] == "0", info
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "preempted" and summary["signal"] == "SIGTERM"
    assert Path(summary["checkpoint"]).is_dir()


@needs_slurm
@pytest.mark.slow
def test_data_checks_job_reports_and_exits_with_the_gate_status(tmp_path: Path):
    from tests.conftest import chat, write_jsonl

    good = ROOT / "gatetune" / "sample_data" / "sft_sample.jsonl"
    bad = write_jsonl(tmp_path / "dupes.jsonl", [chat("What is two plus two?", "Four.")] * 30)
    jobs = {}
    for name, data in (("good", good), ("bad", bad)):
        result = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=1", f"--output={tmp_path}/{name}-%j.out",
                                 str(ROOT / "gatetune" / "slurm" / "data_checks.sbatch"), str(data),
                                 "--json", str(tmp_path / f"{name}.json")],
                                cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})
        assert result.returncode == 0, result.stderr
        jobs[name] = result.stdout.strip()
    good_info, bad_info = ONE_NODE.wait_for_end(jobs["good"], 180), ONE_NODE.wait_for_end(jobs["bad"], 180)
    assert good_info["JobState"] == "COMPLETED" and good_info["ExitCode"] == "0:0", good_info
    assert bad_info["JobState"] == "FAILED" and bad_info["ExitCode"] == "1:0", bad_info
    assert json.loads((tmp_path / "good.json").read_text())["passed"] is True
    report = json.loads((tmp_path / "bad.json").read_text())
    assert report["passed"] is False and report["checks"]["dedup"]["passed"] is False


def test_dry_run_renders_the_template_from_the_slurm_group(tmp_path: Path):
    result = subprocess.run([*SUBMIT, "--dry-run", "recipe=full_zero3", "slurm.nodes=2", "slurm.gpus_per_node=8",
                             "slurm.partition=gpu", "slurm.time=12:00:00", "+slurm.env.NCCL_DEBUG=WARN",
                             'slurm.directives=["--constraint=h100"]', "training.learning_rate=1e-5",
                             f"hydra.run.dir={tmp_path / 'z3 run'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --cpus-per-task=64", "#SBATCH --signal=B:USR1@120", "#SBATCH --requeue",
                 "#SBATCH --open-mode=append", f"#SBATCH --output={tmp_path / 'z3 run'}/slurm-%j.out",
                 "#SBATCH --partition=gpu", "#SBATCH --time=12:00:00", "#SBATCH --constraint=h100",
                 "export NCCL_DEBUG=WARN", "export PROCESSES_PER_NODE=8",
                 "export DS_ACCELERATOR=${DS_ACCELERATOR:-cuda}",
                 'scontrol show hostnames "$SLURM_JOB_NODELIST"', 'scontrol requeue "$SLURM_JOB_ID"',
                 '--machine_rank "$SLURM_NODEID"',
                 "export PET_SIGNALS_TO_HANDLE=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"):
        assert line in script, line
    # train.py gets the overrides, not the slurm ones, and the run directory (quoted: it has a space).
    assert f"recipe=full_zero3 training.learning_rate=1e-5 'hydra.run.dir={tmp_path / 'z3 run'}'" in script
    assert "slurm.nodes" not in script.split("-m gatetune.cli", 1)[1]
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert not (tmp_path / "z3 run").exists()  # a dry run writes nothing

    cpu = subprocess.run([*SUBMIT, "--dry-run", "slurm=local"], cwd=ROOT, capture_output=True, text=True)
    assert "--gpus-per-node" not in cpu.stdout and "export PROCESSES_PER_NODE=2" in cpu.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["recipe=nope"], "Could not find 'recipe/nope' Available options in 'recipe': dpo full full_zero3"),
    (["slurm.nodes=0"], "slurm.nodes: must be at least 1, got 0"),
    (["slurm.gpus_per_node=2", "slurm.processes_per_node=4"], "slurm.processes_per_node: 4 processes for 2 GPUs"),
    (["slurm=local", "slurm.processes_per_node=3"], "16 is not divisible by the number of processes (3)"),
    (["--nodes=2"], "unknown option --nodes=2"),
])
def test_bad_submissions_fail_before_sbatch(tmp_path: Path, args: list[str], message: str):
    result = subprocess.run([*SUBMIT, *args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


SINFO = """gpu*|g1|64|512000|gpu:h100:8(S:0-1)
gpu*|g2|64|512000|gpu:h100:8(S:0-1)
gpu*|g3|32|256000|gpu:a100:2,gpu:h100:2
cpu|c1|16|64000|(null)
cpu|c1|16|64000|(null)
"""


@pytest.mark.parametrize(("shape", "error"), [
    ((None, 2, 64, 8, "500G"), None),
    (("gpu", 3, 32, 4, None), None),  # g3's two GRES entries add up to 4 GPUs
    (("cpu", 1, 16, 0, "64000"), None),
    ((None, 3, 64, 8, None), "slurm.nodes: 3 nodes asked, but the default partition has 2 node(s) that can hold"),
    (("cpu", 2, 16, 0, None), "slurm.nodes: 2 nodes asked, but partition 'cpu' has 1 node(s)"),  # one node, twice
    (("gpu", 1, 128, 8, None), "slurm.cpus_per_task: 128 CPUs a node, but no node of partition 'gpu' has more than 64"),
    (("cpu", 1, 8, 1, None), "slurm.gpus_per_node: 1 GPUs a node, but no node of partition 'cpu' has more than 0"),
    (("cpu", 1, 8, 0, "1T"), "slurm.mem: 1048576 MB of memory a node, but no node of partition 'cpu' has more than"),
    (("nope", 1, 1, 0, None), "slurm.partition: partition 'nope' has no nodes in sinfo (partitions: cpu, gpu)"),
    (("cpu", 1, 1, 0, "lots"), "slurm.mem: 'lots' is not a SLURM memory size"),
])
def test_a_shape_is_checked_against_the_partitions_nodes(shape: tuple, error: str | None):
    from gatetune.errors import ConfigError
    from gatetune.partition import check_fits

    if error is None:
        check_fits(*shape, SINFO)
        return
    with pytest.raises(ConfigError) as raised:
        check_fits(*shape, SINFO)
    assert str(raised.value).startswith(error), str(raised.value)


@needs_slurm
@pytest.mark.parametrize(("args", "message"), [
    (["slurm.cpus_per_task=3"], "slurm.cpus_per_task: 3 CPUs a node, but no node of the default partition has more "
                                "than 2 (largest: localhost); set slurm.cpus_per_task to at most 2"),
    (["slurm.nodes=2"], "slurm.nodes: 2 nodes asked, but the default partition has 1"),
    (["slurm.gpus_per_node=1", "slurm.processes_per_node=1"], "slurm.gpus_per_node: 1 GPUs a node"),
    (["slurm.partition=gpu"], "slurm.partition: partition 'gpu' has no nodes in sinfo (partitions: debug)"),
])
def test_a_job_no_node_can_hold_is_refused_before_sbatch(tmp_path: Path, args: list[str], message: str):
    """Without the check, SLURM queues these and leaves them PENDING (PartitionConfig / Resources) forever."""
    name = f"refused-{tmp_path.name}"
    result = subprocess.run([*SUBMIT, "slurm=local", f"slurm.job_name={name}", *args,
                             f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
    queued = subprocess.run(["squeue", "-h", "-n", name], capture_output=True, text=True, timeout=30).stdout
    assert queued.strip() == ""


def test_without_sbatch_the_error_says_where_to_submit_from(tmp_path: Path):
    result = subprocess.run([*SUBMIT, "slurm=local", f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PATH": str(tmp_path)}, timeout=120)
    assert result.returncode == 2 and "sbatch not found" in result.stderr, result.stderr


@needs_slurm
@pytest.mark.slow
def test_hydra_submitit_launcher_sweep_runs_each_job_on_slurm(tmp_path: Path, tiny_model_dir: Path):
    """The documented alternative for sweeps: Hydra's multirun, one SLURM job per point (one process each)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install hydra-submitit-launcher")
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=submitit_slurm",
                             "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
                             "hydra.launcher.timeout_min=10", f"hydra.sweep.dir={tmp_path}", "logger=none",
                             "training.max_steps=6", "training.eval_every_steps=3",
                             "training.learning_rate=1e-4,1e-3"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)  # without accounting (sacct), submitit cannot see a failed job end
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rates = set()
    for job in ("0", "1"):
        summary = json.loads((tmp_path / job / "summary.json").read_text())
        assert summary["status"] == "completed" and (tmp_path / job / "adapter" / "adapter_config.json").is_file()
        config = (tmp_path / job / ".hydra" / "config.yaml").read_text()
        rates.add(next(line.strip() for line in config.splitlines() if "learning_rate" in line))
    assert rates == {"learning_rate: 0.0001", "learning_rate: 0.001"}
    assert len(list((tmp_path / ".submitit").iterdir())) >= 2  # the jobs went through submitit's SLURM executor
