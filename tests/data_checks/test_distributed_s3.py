"""`data-checks --engine local --workdir s3://...`: every stage's files in a real S3 API server (moto's, started on
loopback), reached through fsspec's s3fs as a user's bucket would be. The report and the clean copy equal one
process's, a second run skips every stage, a malformed line fails with its file and line (the task's error
comes back through the bucket), and nothing of the run is written to the local disk."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_checks.config import ChecksConfig
from data_checks.gates import run_gates_streamed
from tests.conftest import ROOT
from tests.data_checks.test_dedup import planted_corpus

pytest.importorskip("datatrove", reason="pip install 'datatrove>=0.10' (a gatetune dependency)")
s3fs = pytest.importorskip("s3fs", reason="pip install 'gatetune[s3]'")
pytest.importorskip("moto.server", reason="pip install 'moto[server]' (a dev dependency)")

CLI = [sys.executable, "-m", "data_checks"]
BUCKET = "gates"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, a bucket in it, and the environment that points fsspec there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": endpoint}
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        fs = _fs(env)
        fs.mkdir(BUCKET)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def _fs(env: dict[str, str]) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"],
                             skip_instance_cache=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, _ = planted_corpus(seed=5)
    path = tmp_path_factory.mktemp("s3") / "planted.jsonl"
    texts = [t + (f" Write to Dana Whitfield at dana.whitfield{i}@gmail.com." if i % 41 == 0 else "")
             for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def _cli(path: Path, cwd: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, str(path), "--checks", "dedup,pii", *extra], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
def test_a_run_with_its_work_directory_in_s3_gives_the_one_process_report_and_clean_copy(
        corpus: Path, tmp_path: Path, s3_env: dict[str, str]):
    config = ChecksConfig()
    config.run = config.fail_on = ["dedup", "pii"]
    one = run_gates_streamed(str(corpus), "auto", config)
    plain = _cli(corpus, tmp_path, s3_env, "--write-clean", str(tmp_path / "one.jsonl"), "--redact-pii")
    workdir = f"s3://{BUCKET}/runs/first"
    engine = [*("--engine", "local", "--workers", "2", "--tasks", "5", "--workdir", workdir)]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    engine += ["--write-clean", str(tmp_path / "many.jsonl"), "--redact-pii"]
    result = _cli(corpus, cwd, s3_env, *engine, "--json", str(tmp_path / "report.json"))
    assert plain.returncode == result.returncode == 1, result.stderr  # the planted pairs fail the gate
    assert json.loads((tmp_path / "report.json").read_text()) == one
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert one["checks"]["pii"]["records_with_pii"] > 5 and one["checks"]["dedup"]["clusters"]
    assert list(cwd.iterdir()) == []  # nothing of the run on the local disk
    fs = _fs(s3_env)
    stored = {p.split("/runs/first/", 1)[1] for p in fs.find(f"{BUCKET}/runs/first")}
    assert {"plan.json", "report.json", "clean/dropped.npy", "needed/000.i64", "fetched/00000.bin",
            "sketch/00000/bands.bin.bounds", "verified/000.npy", "sketch/00000/meta.json"} <= stored
    assert any(p.startswith("logs/verify/completions/") for p in stored)
    assert json.loads(fs.cat(f"{BUCKET}/runs/first/report.json")) == one
    again = _cli(corpus, cwd, s3_env, *engine)
    assert again.returncode == 1, again.stderr
    for stage in ("1 sketch", "3 band pairs", "5 fetch texts", "6 verify", "7 report", "8 clean copy"):
        assert f"{stage}: all " in again.stderr and "finished in an earlier run, skipped" in again.stderr, stage


@pytest.mark.slow
def test_a_malformed_line_fails_with_its_file_and_line_through_the_bucket(corpus: Path, tmp_path: Path,
                                                                           s3_env: dict[str, str]):
    lines = corpus.read_text().splitlines()
    lines[210] = '{"text": "cut short'
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = _cli(bad, tmp_path, s3_env, "--engine", "local", "--tasks", "4", "--workdir", f"s3://{BUCKET}/bad")
    assert result.returncode == 2, result.stderr
    assert f"data-checks: error: {bad}:211: not valid JSON" in result.stderr and "Traceback" not in result.stderr
    assert _fs(s3_env).find(f"{BUCKET}/bad/errors")  # where the task left it


def test_a_work_directory_url_without_a_driver_is_one_clear_error(corpus: Path, tmp_path: Path):
    result = subprocess.run([*CLI, str(corpus), "--engine", "local", "--workdir", "nosuchfs://bucket/run"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("data-checks: error: --workdir nosuchfs://bucket/run: ValueError"), result.stderr
