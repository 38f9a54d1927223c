"""`data-checks --engine ray` on a real local Ray cluster (2 CPUs, started by the command): the report equals the
one-process report, and a malformed line fails with its file and line as without --engine (the task's error
reaches the command through the work directory, as under SLURM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_checks.config import ChecksConfig
from data_checks.gates import run_gates_streamed
from tests.conftest import ROOT
from tests.data_checks.test_dedup import planted_corpus

pytest.importorskip("datatrove", reason="pip install 'datatrove>=0.10' (a gatetune dependency)")
pytest.importorskip("ray", reason="pip install 'gatetune[ray]'")
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "data_checks"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, _ = planted_corpus(seed=4)
    path = tmp_path_factory.mktemp("ray") / "planted.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def _ray(path: Path, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([*CLI, str(path), "--engine", "ray", "--workers", "2", "--tasks", "5", "--workdir",
                           str(workdir), *extra], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_ray_tasks_give_the_one_process_report(corpus: Path, tmp_path: Path):
    config = ChecksConfig()
    one = run_gates_streamed(str(corpus), "auto", config)
    result = _ray(corpus, tmp_path / "work", "--json", str(tmp_path / "report.json"))
    assert result.returncode == 1, result.stderr  # the planted pairs fail the gate
    assert json.loads((tmp_path / "report.json").read_text()) == one
    assert "1 sketch: 5 of 5 tasks on ray (2 at a time)" in result.stderr
    assert "7 report: done in" in result.stderr and "Traceback" not in result.stderr
    again = _ray(corpus, tmp_path / "work")
    assert again.returncode == 1 and "1 sketch: all 5 tasks finished in an earlier run, skipped" in again.stderr


def test_a_malformed_line_fails_with_its_file_and_line(corpus: Path, tmp_path: Path):
    lines = corpus.read_text().splitlines()
    lines[300] = '{"text": "cut short'
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = _ray(bad, tmp_path / "work")
    assert result.returncode == 2, result.stderr
    assert f"data-checks: error: {bad}:301: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "work" / "report.json").exists()
