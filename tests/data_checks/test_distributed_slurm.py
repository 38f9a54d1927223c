"""`data-checks --engine slurm` on the real one-node cluster of scripts/start_local_slurm.sh (CI starts it): each
stage a job array of datatrove's SlurmPipelineExecutor. The report equals the one-process report; a task killed
mid-stage fails the run with a message naming it, and the same command redoes only the unfinished tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_checks.config import ChecksConfig
from data_checks.gates import run_gates_streamed
from tests.conftest import ROOT
from tests.data_checks.test_dedup import planted_corpus
from tests.slurm_jobs import ONE_NODE

pytest.importorskip("datatrove", reason="pip install 'datatrove>=0.10' (a gatetune dependency)")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(ONE_NODE.problem() is not None, reason=str(ONE_NODE.problem()))]

# With the repository first on the path, the job's tasks import this checkout's data_checks.
ENV = {**ONE_NODE.env, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _one_process(path: Path) -> dict:
    config = ChecksConfig()
    config.run = config.fail_on = ["dedup", "pii"]
    return run_gates_streamed(str(path), "auto", config)


def _command(path: Path, workdir: Path, tasks: int, report: Path) -> list[str]:
    return [sys.executable, "-m", "data_checks", str(path), "--checks", "dedup,pii", "--engine", "slurm",
            "--workers", "2", "--tasks", str(tasks), "--workdir", str(workdir), "--json", str(report),
            "--slurm", "cpus_per_task=1", "--slurm", "mem_per_cpu_gb=1", "--slurm", "time=0:20:00"]


def _corpus(path: Path, **sizes: int) -> Path:
    texts, _ = planted_corpus(**sizes)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_job_arrays_give_the_one_process_report(tmp_path: Path):
    path = _corpus(tmp_path / "planted.jsonl")
    result = subprocess.run(_command(path, tmp_path / "work", 4, tmp_path / "report.json"), cwd=tmp_path, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr  # the planted pairs fail the gate
    for stage in ("1 sketch: 4 of 4 tasks on slurm", "2 exact-text groups: done", "6 verify: done", "7 report: done"):
        assert stage in result.stderr, result.stderr
    assert json.loads((tmp_path / "report.json").read_text()) == _one_process(path)
    launched = (tmp_path / "work" / "logs" / "sketch" / "launch_script.slurm").read_text()
    assert "#SBATCH --array=0-3%2" in launched and "#SBATCH --cpus-per-task=1" in launched


def _unfinished_running_task(stage_logs: Path) -> int:
    """The PID of a running task of that stage's job array that has not written its completion yet (all of the
    cluster runs on this machine; a task's rank is its array index)."""
    needle = str(stage_logs / "executor.pik").encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
            except OSError:
                continue
            if needle not in command or b"launch_pickled_pipeline" not in command or b"srun" in command:
                continue
            variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
            rank = int(variables.get(b"SLURM_ARRAY_TASK_ID", b"-1"))
            if rank >= 0 and not (stage_logs / "completions" / f"{rank:05d}").exists():
                return int(proc.name)
    raise LookupError("no running task")


def test_a_task_killed_mid_stage_fails_the_run_and_the_same_command_redoes_only_it(tmp_path: Path):
    path = _corpus(tmp_path / "big.jsonl", seed=5, per_level=150, singles=6000)
    workdir, report = tmp_path / "work", tmp_path / "report.json"
    command = _command(path, workdir, 8, report)
    process = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    sketch = workdir / "logs" / "sketch"
    deadline = time.monotonic() + 300
    while True:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        done = len(list((sketch / "completions").glob("*"))) if (sketch / "completions").is_dir() else 0
        try:
            if done >= 1:
                os.kill(_unfinished_running_task(sketch), signal.SIGKILL)
                break
        except LookupError:
            pass
        time.sleep(0.05)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 2, err
    assert "data-checks: error: stage 1 sketch: job" in err and "unfinished" in err and "Traceback" not in err
    assert not report.exists()
    finished = len(list((sketch / "completions").glob("*")))
    assert 1 <= finished < 8

    again = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1, again.stderr
    assert f"1 sketch: {8 - finished} of 8 tasks on slurm (2 at a time) ({finished} finished earlier, skipped)" \
        in again.stderr
    assert json.loads(report.read_text()) == _one_process(path)
