"""Check exported LoRA adapters with vLLM's own loader code, as `vllm serve --enable-lora` would load them.

Run it with the side environment's Python (built by `make vllm-env`, i.e. scripts/setup_vllm_env.sh):

    .venv-vllm/bin/python scripts/check_vllm_adapter.py ADAPTER_DIR [ADAPTER_DIR ...] [--max-lora-rank R]

For each adapter it does what vLLM's LoRA worker does when a request names the adapter:
`PEFTHelper.from_local_dir(...).validate_legal(LoRAConfig(max_lora_rank=R))`, then
`LoRAModel.from_local_checkpoint(...)` with the modules vLLM's implementation of the base architecture
supports (its linear layers after the packed-module mapping, plus its embedding modules). R defaults to
the value our export prints. Prints one JSON line per adapter; exit 0 when every adapter is accepted,
1 when one is refused, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for gatetune.vllm_rules (pure Python)


def expected_lora_modules(model_cls: Any, base_dir: str) -> set[str]:
    """vLLM's expected LoRA module names for this architecture (worker_manager._load_adapter's rule)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base_dir)
    with torch.device("meta"):
        hf_model = AutoModelForCausalLM.from_config(config)
    packed = model_cls.packed_modules_mapping
    packed_of = {sub: name for name, subs in packed.items() for sub in subs}
    head = hf_model.get_output_embeddings()
    supported = {packed_of.get(n.rsplit(".", 1)[-1], n.rsplit(".", 1)[-1]) for n, m in hf_model.named_modules()
                 if isinstance(m, torch.nn.Linear) and m is not head}
    supported |= set(getattr(model_cls, "embedding_modules", {}))
    if getattr(model_cls, "is_3d_moe_weight", False):  # its fused-MoE layer, named experts, takes expert LoRAs
        supported.add("experts")
    expected = set()
    for name in supported:
        expected.update(packed.get(name, [name]))
    return expected


def check(adapter_dir: str, max_lora_rank: int | None) -> dict[str, Any]:
    import torch
    from vllm.config import LoRAConfig
    from vllm.lora.lora_model import LoRAModel
    from vllm.lora.peft_helper import PEFTHelper
    from vllm.model_executor.models.registry import ModelRegistry

    from gatetune.vllm_rules import adapter_rank, vllm_max_lora_rank

    adapter_config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    base = adapter_config["base_model_name_or_path"]
    base_config = json.loads((Path(base) / "config.json").read_text())
    model_cls = ModelRegistry._try_load_model_cls(base_config["architectures"][0])
    if model_cls is None:
        return {"adapter": adapter_dir, "accepted": False,
                "error": f"vLLM has no implementation of {base_config['architectures'][0]}"}
    rank = max_lora_rank or vllm_max_lora_rank(adapter_rank(adapter_config))
    mapper = getattr(model_cls, "hf_to_vllm_mapper", None)
    if mapper is not None:  # renames only, ignoring stacking, as the worker does
        mapper = mapper.get_rename_mapper()
    try:
        helper = PEFTHelper.from_local_dir(adapter_dir, base_config.get("max_position_embeddings"))
        helper.validate_legal(LoRAConfig(max_lora_rank=rank))
        model = LoRAModel.from_local_checkpoint(
            adapter_dir, expected_lora_modules(model_cls, base), helper, lora_model_id=1, device="cpu",
            dtype=torch.float32, model_vocab_size=base_config["vocab_size"],
            weights_mapper=mapper)
    except (ValueError, TypeError, KeyError) as exc:
        return {"adapter": adapter_dir, "accepted": False, "max_lora_rank": rank, "error": str(exc)}
    return {"adapter": adapter_dir, "accepted": True, "max_lora_rank": rank, "modules": len(model.loras)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapters", nargs="+")
    parser.add_argument("--max-lora-rank", type=int, help="vLLM's --max-lora-rank (default: what our export prints)")
    args = parser.parse_args(argv)
    results = [check(path, args.max_lora_rank) for path in args.adapters]
    for result in results:
        print(json.dumps(result))
    return 0 if all(r["accepted"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
