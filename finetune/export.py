"""Write the trained result where vLLM can serve it: a PEFT adapter or a full model, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# LoRA ranks vLLM accepts for --max-lora-rank (vllm/config/lora.py); the adapter's rank may sit below one.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` value vLLM allows that fits `rank`."""
    for allowed in VLLM_MAX_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"LoRA rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_MAX_LORA_RANKS[-1]})")


def _write_atomically(target: Path, write: Any) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def export_adapter(model: Any, tokenizer: Any, out_dir: Path, base_model: str, name: str) -> dict[str, Any]:
    """Save the PEFT adapter with the tokenizer (and its chat template) beside it."""
    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    path = _write_atomically(out_dir, write).resolve()
    rank = max([model.peft_config["default"].r, *model.peft_config["default"].rank_pattern.values()])
    command = (f"vllm serve {base_model} --enable-lora --lora-modules {name}={path} "
               f"--max-lora-rank {vllm_max_lora_rank(rank)}")
    return {"path": str(path), "kind": "adapter", "base_model": base_model, "vllm_command": command}


def export_full_model(model: Any, tokenizer: Any, out_dir: Path) -> dict[str, Any]:
    """Save a full model (safetensors shards, config, generation config) with its tokenizer."""
    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, max_shard_size="5GB")
        tokenizer.save_pretrained(tmp)

    path = _write_atomically(out_dir, write).resolve()
    return {"path": str(path), "kind": "full_model", "vllm_command": f"vllm serve {path}"}
