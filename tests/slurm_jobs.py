"""Submitting to, and watching jobs on, the local test clusters: the one-node cluster of
scripts/start_local_slurm.sh and the two-node one of scripts/start_two_node_slurm.sh (its own SLURM_CONF)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

SUBMIT = [sys.executable, str(ROOT / "scripts" / "submit.py")]
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")


@dataclass
class Cluster:
    """One of the local test clusters, named by its ClusterName; `conf` is its SLURM_CONF (None: the default)."""

    name: str
    start: str  # the script that starts it
    conf: str | None = None
    nodes: int = 1
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {**os.environ, **({"SLURM_CONF": self.conf} if self.conf else {})}

    def problem(self) -> str | None:
        """Why jobs cannot be submitted to it here (the reason the job tests skip), or None."""
        if shutil.which("sinfo") is None:
            return f"sinfo not found: apt-get install slurm-wlm munge, then sudo bash {self.start}"
        if self.conf and not Path(self.conf).is_file():
            return f"no {self.conf}: sudo bash {self.start} starts that cluster (root and network namespaces needed)"
        try:
            config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20,
                                    env=self.env)
            nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=20,
                                   env=self.env).stdout.split("\n")
        except subprocess.TimeoutExpired:
            return f"no SLURM controller answers (sudo bash {self.start} starts one)"
        if config.returncode != 0:
            return f"no SLURM controller answers (sudo bash {self.start} starts one)"
        if not re.search(rf"^ClusterName\s*=\s*{self.name}$", config.stdout, re.MULTILINE):
            return f"this SLURM is not the test cluster {self.name!r} of {self.start}; not submitting to it"
        up = [line for line in nodes if line.split(" ")[-1].rstrip("*") in ("idle", "mixed", "allocated")]
        if len(up) < self.nodes:
            return f"{len(up)} of {self.nodes} nodes of {self.name!r} are up (sudo bash {self.start})"
        return None

    def run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
        return subprocess.run(command, capture_output=True, text=True, env=self.env, **kwargs)

    def submit(self, run_dir: Path, *overrides: str) -> dict[str, str]:
        """scripts/submit.py with `overrides` into `run_dir`; what it printed (job, log, run_dir)."""
        result = self.run([*SUBMIT, *overrides, f"hydra.run.dir={run_dir}"], cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
        assert set(lines) == {"job", "log", "run_dir"}, result.stdout
        return lines

    def job_info(self, job: str) -> dict[str, str]:
        out = self.run(["scontrol", "-o", "show", "job", job]).stdout
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    def wait_for_end(self, job: str, timeout: float = 420) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job_info(job)
            if info.get("JobState") in ENDED:
                return info
            time.sleep(1)
        self.run(["scancel", job])
        raise AssertionError(f"job {job} did not end within {timeout} s: {self.job_info(job)}")

    def wait_for(self, path: Path, job: str, timeout: float = 300) -> None:
        """Until `path` exists, while the job is still queued or running."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            state = self.job_info(job).get("JobState")
            assert state in ("PENDING", "RUNNING", "CONFIGURING"), f"job {job} is {state} before {path} appeared"
            assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
            time.sleep(0.05)


ONE_NODE = Cluster("local", "scripts/start_local_slurm.sh")
TWO_NODES = Cluster("twonodes", "scripts/start_two_node_slurm.sh", "/etc/slurm-two-nodes/slurm.conf", nodes=2)


def adapter_weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def max_difference(got: dict, want: dict) -> float:
    assert got.keys() == want.keys()
    return max((got[k].float() - want[k].float()).abs().max().item() for k in want)
