"""What needs a GPU: bitsandbytes' 4-bit CUDA kernels, bf16 training, DeepSpeed over NCCL (and its preemption and
resume). Skipped without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, compose

pytestmark = pytest.mark.gpu
QUICK = ["logger=none", "checks.run=[template]", "checks.fail_on=[template]", "training.max_steps=8",
         "training.eval_every_steps=4", "training.learning_rate=2e-3"]


def test_qlora_on_cuda_uses_4bit_kernels_and_learns(tmp_path: Path, tiny_model_dir: Path):
    import bitsandbytes as bnb
    import torch

    from gatetune.run import run

    result = run(compose(["recipe=qlora", *QUICK]), tmp_path)
    quantised = [m for m in result.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised and all(m.weight.device.type == "cuda" and m.weight.dtype == torch.uint8 for m in quantised)
    assert result.summary["metrics"]["eval_loss_best"] < result.summary["metrics"]["eval_loss_initial"]
    assert result.summary["metrics"]["peak_memory_mb"] > 0


def test_lora_trains_in_bf16_and_the_adapter_reloads(tmp_path: Path, tiny_model_dir: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from gatetune.run import run

    result = run(compose(["recipe=lora", *QUICK]), tmp_path)
    assert next(result.model.parameters()).dtype == torch.bfloat16  # precision=auto picks bf16 on a GPU
    batch = result.tokenizer(["What colour is snow?"], return_tensors="pt").to("cuda")
    base = AutoModelForCausalLM.from_pretrained(result.summary["base_model"], dtype=torch.bfloat16).to("cuda")
    reloaded = PeftModel.from_pretrained(base, result.summary["export"]["path"]).eval()
    with torch.no_grad():
        diff = (reloaded(**batch).logits.float() - result.model.eval()(**batch).logits.float()).abs().max().item()
    assert diff < 5e-2  # bf16


def test_full_zero3_on_one_gpu_over_nccl(tmp_path: Path, tiny_model_dir: Path):
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "recipe=full_zero3", *QUICK,
                             f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and (tmp_path / "model" / "model.safetensors").is_file()


def test_zero3_over_nccl_one_process_per_gpu_is_preempted_and_resumes_to_the_same_model(tmp_path: Path,
                                                                                      tiny_model_dir: Path):
    """Issue 17's GPU check: ZeRO-3 over NCCL, one process per GPU of this machine, SIGUSR1 after the first
    checkpoint, then the same command resumes. fp32 so that the comparison is not bf16 rounding."""
    import torch

    from tests.preempting import zero3_preempted_and_resumed

    processes = torch.cuda.device_count()
    difference = zero3_preempted_and_resumed(tmp_path, {**os.environ, "DS_ACCELERATOR": "cuda"}, processes,
                                             ("training.precision=fp32",))
    print(f"ZeRO-3 over NCCL, {processes} GPU process(es): preempted and resumed, largest weight difference "
          f"{difference:.2e}")
    assert difference < 1e-5
