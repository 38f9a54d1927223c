"""Shared fixtures: an isolated model cache, config composition, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

# One tiny-model cache for the whole session, subprocesses included (they inherit the environment).
os.environ.setdefault("GATETUNE_CACHE", tempfile.mkdtemp(prefix="gatetune-test-cache-"))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("DATA_CHECKS_NO_PROGRESS", "1")
# Under pytest-xdist (`make test` and `make test-fast` run two workers) each worker keeps to one thread, and so do
# the processes it starts: two workers of two threads each would oversubscribe two cores, and torch on CPU slows
# down many times over when they do.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
# The whole suite (`make test`: `--dist loadgroup`) runs each test file on one worker, so a module's fixtures (a
# baseline run, an export) are built once; files that use one outside service share a group and run one at a
# time: the SLURM cluster's two CPUs, and vLLM (its servers' memory). `make test-fast` spreads single tests.
XDIST_GROUPS = {"test_slurm": "slurm", "test_slurm_two_nodes": "slurm", "test_distributed_slurm": "slurm",
                "test_serving": "vllm", "test_vllm_backend": "vllm", "test_judge": "vllm", "test_vllm_loader": "vllm"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.gpu` tests need CUDA: skipped, with the reason, where there is none. torch is imported only
    when a GPU test was collected, so the data_checks tests run where torch is not installed. Tests of one
    file, or of one outside service, share an xdist group (XDIST_GROUPS)."""
    for item in items:
        module = item.module.__name__ if item.module else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(XDIST_GROUPS.get(module.rsplit(".", 1)[-1], module)))
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if not gpu_tests:
        return
    try:
        import torch

        if torch.cuda.is_available():
            return
    except ImportError:
        pass
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run scripts/gpu_check.sh on a GPU machine)")
    for item in gpu_tests:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from gatetune.tiny_model import TINY_MODEL_VERSION, ensure_tiny_model

    return ensure_tiny_model(Path(os.environ["GATETUNE_CACHE"]) / TINY_MODEL_VERSION)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's tokenizer alone (the same deterministic build), saved without torch: for data_checks tests."""
    from gatetune.tiny_model import build_tokenizer

    out = tmp_path_factory.mktemp("tiny-tokenizer")
    build_tokenizer().save_pretrained(out)
    return out


def compose(overrides: list[str] | None = None) -> Any:
    """The config `python train.py OVERRIDES` would run with (Hydra's compose API, same schema)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from gatetune.cli import CONFIG_DIR
    from gatetune.config import register_schema

    register_schema()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides or [])


def typed(overrides: list[str] | None = None) -> Any:
    """The config a run works with: `compose(OVERRIDES)` converted once to the typed schema and checked, as
    `gatetune.run.run` does (`typed_config`)."""
    from gatetune.config import typed_config

    return typed_config(compose(overrides))


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a subprocess; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def chat(question: str, answer: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def needs_shared(name: str) -> Path:
    """Path of a shared dataset folder, or skip the test with a reason when ../shared is absent."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared datasets sit beside the repo only on project machines)")
    return path
