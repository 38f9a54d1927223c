"""Multi-node for real: jobs across the two nodes of scripts/start_two_node_slurm.sh (two slurmd daemons, each in
its own network namespace and address, one CPU training process per node over gloo).

Proven here: the head-node address and the rendezvous across hosts, one launcher per node, ZeRO-3 gathering across
nodes (the consolidated export loads), a USR1 preemption that checkpoints every node's part, requeues and resumes to
the uninterrupted weights, the same adapter as one node with two processes, and kill -9 of one rank: the job fails
within seconds, naming the node, and its last complete checkpoint resumes to the uninterrupted result.
The tests skip when that cluster is not running (it needs root and network namespaces; CI starts it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.slurm_jobs import ONE_NODE, TWO_NODES, adapter_weights, max_difference

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(TWO_NODES.problem() is not None, reason=str(TWO_NODES.problem()))]

# As in test_slurm: early stopping ends the LoRA run at step 50 of 80, checkpoints every 10 steps.
LORA = ["logger=none", "eval=off", "training.max_steps=80", "training.eval_every_steps=10",
        "training.early_stopping_patience=2", "training.early_stopping_threshold=0.5"]
ZERO3 = ["recipe=full_zero3", "logger=none", "eval=off", "training.max_steps=30", "training.eval_every_steps=10"]
KILL_TIMEOUT = 60  # seconds from kill -9 of one rank to the end of the job, at most (wait_for_end fails after)


def _submit(run_dir: Path, overrides: list[str]) -> str:
    return TWO_NODES.submit(run_dir, "slurm=local_two_nodes", *overrides)["job"]


def _finished(run_dir: Path, overrides: list[str]) -> tuple[Path, dict[str, str]]:
    info = TWO_NODES.wait_for_end(_submit(run_dir, overrides))
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", (info, _log(run_dir, info["JobId"]))
    return run_dir, info


def _log(run_dir: Path, job: str) -> str:
    return (run_dir / f"slurm-{job}.out").read_text(errors="replace")


@pytest.fixture(scope="module")
def zero3_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, dict[str, str]]:
    return _finished(tmp_path_factory.mktemp("two-nodes-zero3"), ZERO3)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, dict[str, str]]:
    return _finished(tmp_path_factory.mktemp("two-nodes-lora"), LORA)


def _preempted_then_finished(run_dir: Path, overrides: list[str]) -> tuple[str, dict]:
    """Submit, send USR1 once the first checkpoint is written, and return the job and the preempted leg's summary
    (read while the requeued job waits to start again)."""
    job = _submit(run_dir, overrides)
    TWO_NODES.wait_for(run_dir / "checkpoints" / "checkpoint-10", job)
    TWO_NODES.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    summary_path, deadline = run_dir / "summary.json", time.monotonic() + 120
    while not (summary_path.is_file() and json.loads(summary_path.read_text())["status"] == "preempted"):
        assert time.monotonic() < deadline, f"no preempted summary: {TWO_NODES.job_info(job)}"
        time.sleep(0.05)
    preempted = json.loads(summary_path.read_text())
    preempted["files"] = sorted(str(p.relative_to(preempted["checkpoint"]))
                                for p in Path(preempted["checkpoint"]).rglob("*") if p.is_file())
    info = TWO_NODES.wait_for_end(job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", (info, _log(run_dir, job))
    return job, preempted


def test_zero3_job_runs_one_launcher_per_node_and_exports_a_model_that_loads(zero3_run: tuple[Path, dict],
                                                                             tiny_model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM

    run_dir, info = zero3_run
    log = _log(run_dir, info["JobId"])
    assert "on gtnode[1-2]: 2 processes, rendezvous gtnode1:" in log
    assert "node 0 (gtnode1): launching 1 training process(es)" in log
    assert "node 1 (gtnode2): launching 1 training process(es)" in log
    assert "x 2 processes = 16" in (run_dir / "train.log").read_text(errors="replace")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["export"]["kind"] == "full_model"
    trained = AutoModelForCausalLM.from_pretrained(run_dir / "model")  # gathered from both nodes' shards
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = [n for (n, p), (_, q) in zip(trained.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(p, q)]
    assert trained.num_parameters() == base.num_parameters() and len(changed) > 10


def test_zero3_usr1_checkpoints_both_nodes_requeues_and_resumes_to_the_same_model(tmp_path: Path,
                                                                                 zero3_run: tuple[Path, dict]):
    from safetensors.torch import load_file

    baseline, _ = zero3_run
    job, preempted = _preempted_then_finished(tmp_path, ZERO3)
    step = preempted["preempted_at_step"]
    assert preempted["signal"] == "SIGUSR1" and 10 < step < 30
    # Each node wrote its own part: ZeRO-3 shards and RNG state of rank 0 (gtnode1) and rank 1 (gtnode2).
    for rank in (0, 1):
        assert f"global_step{step}/zero_pp_rank_{rank}_mp_rank_00_optim_states.pt" in preempted["files"]
        assert f"rng_state_{rank}.pth" in preempted["files"]
    log = _log(tmp_path, job)
    assert "SIGUSR1: asking training to checkpoint and stop" in log and "start 1 of it" in log
    assert f"resuming from {preempted['checkpoint']}" in log
    got, want = (json.loads((d / "summary.json").read_text()) for d in (tmp_path, baseline))
    assert got["resumed_from"] == preempted["checkpoint"]
    assert [e["eval_loss"] for e in got["metrics"]["eval_history"]] == pytest.approx(
        [e["eval_loss"] for e in want["metrics"]["eval_history"]], abs=1e-6)
    weights, reference = (load_file(d / "model" / "model.safetensors") for d in (tmp_path, baseline))
    assert max_difference(weights, reference) < 1e-6


def test_lora_usr1_across_two_nodes_resumes_to_the_same_adapter(tmp_path: Path, lora_run: tuple[Path, dict]):
    baseline, _ = lora_run
    _, preempted = _preempted_then_finished(tmp_path, LORA)
    assert {"rng_state_0.pth", "rng_state_1.pth", "adapter_model.safetensors"} <= set(preempted["files"])
    got, want = (json.loads((d / "summary.json").read_text()) for d in (tmp_path, baseline))
    assert got["status"] == want["status"] == "stopped_early" and got["metrics"]["steps"] == 50
    assert [e["eval_loss"] for e in got["metrics"]["eval_history"]] == pytest.approx(
        [e["eval_loss"] for e in want["metrics"]["eval_history"]], abs=1e-6)
    assert max_difference(adapter_weights(tmp_path), adapter_weights(baseline)) < 1e-6


@pytest.mark.skipif(ONE_NODE.problem() is not None, reason=str(ONE_NODE.problem()))
def test_two_nodes_train_the_adapter_one_node_with_two_processes_trains(tmp_path: Path, lora_run: tuple[Path, dict]):
    """The same world of two processes, split over two hosts or not: the same batches, the same all-reduces."""
    baseline, _ = lora_run
    info = ONE_NODE.wait_for_end(ONE_NODE.submit(tmp_path, "slurm=local", *LORA)["job"])
    assert info["JobState"] == "COMPLETED", info
    assert max_difference(adapter_weights(tmp_path), adapter_weights(baseline)) < 1e-6


def test_usr1_before_training_stops_both_nodes_cleanly_requeues_and_the_next_start_trains(
        tmp_path: Path, lora_run: tuple[Path, dict]):
    """The signal lands while the data gates run: every rank holds it, they agree once the trainer is built, and the
    job stops without a checkpoint and requeues; its next start trains the whole run."""
    baseline, _ = lora_run
    job = _submit(tmp_path, LORA)
    deadline = time.monotonic() + 120
    while "data gates on" not in (_log(tmp_path, job) if (tmp_path / f"slurm-{job}.out").exists() else ""):
        assert time.monotonic() < deadline, TWO_NODES.job_info(job)
        time.sleep(0.05)
    TWO_NODES.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    info = TWO_NODES.wait_for_end(job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", (info, _log(tmp_path, job))
    log = _log(tmp_path, job)
    first_start = log.split("start 1 of it")[0]
    assert "SIGUSR1 before training started" in first_start and f"requeueing job {job}" in first_start
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "stopped_early" and summary["resumed_from"] is None
    assert max_difference(adapter_weights(tmp_path), adapter_weights(baseline)) < 1e-6


def _pid_of_rank(rank: int, run_dir: Path) -> int:
    """The training process of `rank` of the job writing to `run_dir` (all nodes share this machine's /proc)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gatetune.cli" in command and f"RANK={rank}".encode() in environ \
                and f"hydra.run.dir={run_dir}".encode() in command:
            return int(proc.name)
    raise AssertionError(f"no training process of rank {rank} for {run_dir}")


def test_kill_9_of_one_rank_fails_the_job_fast_and_its_last_checkpoint_resumes(tmp_path: Path,
                                                                              lora_run: tuple[Path, dict]):
    from gatetune.checkpoints import incomplete_reason, latest_complete

    baseline, _ = lora_run
    job = _submit(tmp_path, LORA)
    TWO_NODES.wait_for(tmp_path / "checkpoints" / "checkpoint-10", job)
    os.kill(_pid_of_rank(1, tmp_path), signal.SIGKILL)  # rank 1 runs on gtnode2
    killed = time.monotonic()
    info = TWO_NODES.wait_for_end(job, timeout=KILL_TIMEOUT)
    print(f"the job ended {time.monotonic() - killed:.1f} s after kill -9 of rank 1")  # docs/multi_node.md
    assert info["JobState"] == "FAILED" and info["Restarts"] == "0", info
    log = _log(tmp_path, job)
    assert "host      : gtnode2" in log and "Signal 9 (SIGKILL)" in log  # torchrun's root cause: node and rank
    assert "srun: error: gtnode2: task 1: Exited with exit code 1" in log
    last = latest_complete(tmp_path)
    assert last is not None and incomplete_reason(last) is None  # size and CRC32 of every file
    assert f"the latest complete checkpoint is {last}: sbatch {tmp_path}/train.sbatch resumes from it" in log

    again = TWO_NODES.run(["sbatch", "--parsable", str(tmp_path / "train.sbatch")], check=True).stdout.strip()
    info = TWO_NODES.wait_for_end(again)
    assert info["JobState"] == "COMPLETED", (info, _log(tmp_path, again))
    assert f"resuming from {last}" in _log(tmp_path, again)
    assert json.loads((tmp_path / "summary.json").read_text())["metrics"]["steps"] == 50
    assert max_difference(adapter_weights(tmp_path), adapter_weights(baseline)) < 1e-6


def test_the_cluster_is_two_hosts_on_a_private_network():
    """What the other tests stand on: two nodes, each its own hostname and address, reachable from each other."""
    result = TWO_NODES.run(["srun", "-N2", "--ntasks-per-node=1", "bash", "-c",
                            "echo $SLURM_NODEID $(hostname) $(hostname -I) $(getent hosts gtnode1 gtnode2 | wc -l)"],
                           timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")[:2]) == ["0 gtnode1 10.77.0.11 2", "1 gtnode2 10.77.0.12 2"]
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() not in ("gtnode1", "gtnode2")
