"""Our exported adapters pass vLLM's own LoRA loader; deliberately broken ones fail it, and our rules agree.

Needs the side environment with vLLM's code (`make vllm-env`); skipped with a reason when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gatetune.export import check_adapter, export_adapter
from tests.conftest import ROOT, typed

VLLM_PYTHON = Path(os.environ.get("VLLM_ENV", ROOT / ".venv-vllm")) / "bin" / "python"
pytestmark = pytest.mark.skipif(not VLLM_PYTHON.exists(),
                                reason=f"no vLLM side environment at {VLLM_PYTHON.parent.parent} (make vllm-env)")


def _vllm_check(*args: str) -> list[dict]:
    result = subprocess.run([str(VLLM_PYTHON), str(ROOT / "scripts/check_vllm_adapter.py"), *args],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _export(overrides: list[str], out: Path, tiny_model_dir: Path) -> Path:
    """An adapter exactly as the recipe builds and exports it (untrained: loading does not depend on values)."""
    from transformers import AutoTokenizer

    from gatetune.modeling import load_model

    model = load_model(typed(overrides), str(tiny_model_dir))
    export_adapter(model, AutoTokenizer.from_pretrained(tiny_model_dir), out, "test")
    return out


def _edit(adapter: Path, out: Path, **changes: object) -> Path:
    shutil.copytree(adapter, out)
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**config, **changes}))
    return out


@pytest.mark.slow
def test_vllm_loader_accepts_our_exports_and_refuses_broken_ones(tmp_path: Path, tiny_model_dir: Path):
    from safetensors.torch import load_file, save_file

    ours = [_export(o, tmp_path / name, tiny_model_dir) for name, o in (
        ("generation", []), ("classification", ["data.task_type=classification"]),
        ("rslora", ["lora.use_rslora=true"]), ("rank24", ["lora.rank=24"]),
        ("attention_only", ["lora.target_modules=[q_proj,v_proj]"]),
        ("qlora", ["recipe=qlora"]), ("dpo", ["recipe=dpo"]), ("grpo", ["recipe=grpo"]))]
    accepted = _vllm_check(*map(str, ours))
    assert [r["accepted"] for r in accepted] == [True] * len(ours), accepted
    assert [r["max_lora_rank"] for r in accepted] == [64, 16, 64, 32, 64, 64, 64, 64]

    too_big = _vllm_check(str(ours[3]), "--max-lora-rank", "16")[0]
    assert not too_big["accepted"] and "greater than max_lora_rank" in too_big["error"]

    bias = _edit(ours[1], tmp_path / "bias", bias="all")
    renamed = _edit(ours[1], tmp_path / "unsupported", target_modules=["q_rot", "v_proj"])
    weights = load_file(renamed / "adapter_model.safetensors")
    save_file({k.replace("q_proj", "q_rot"): v for k, v in weights.items()}, renamed / "adapter_model.safetensors")
    refused = _vllm_check(str(bias), str(renamed))
    assert [r["accepted"] for r in refused] == [False, False], refused
    assert "bias" in refused[0]["error"].lower() and "q_rot" in refused[1]["error"]
    base_config = json.loads((tiny_model_dir / "config.json").read_text())
    # Our own rules (used at export time, no vLLM needed) refuse the same adapters.
    assert check_adapter(bias, base_config)[0].startswith("bias:")
    assert check_adapter(renamed, base_config)[0].startswith("target_modules:")
    assert all(check_adapter(path, base_config) == [] for path in ours)
