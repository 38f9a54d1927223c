"""Evaluation's vLLM backend: offline generation with `vllm.LLM` (the adapter through `enable_lora`).

Needs only the standard library and vLLM, so it runs in this process when vLLM is importable here, or as
`python vllm_generate.py OUT.json` under another interpreter that has vLLM (vLLM pins its own
transformers; `eval.vllm_python` names that interpreter). The request comes as JSON on stdin, the
generations go as JSON to OUT.json (vLLM logs to stdout):

    {"model": ..., "adapter": DIR | null, "max_lora_rank": 64, "max_model_len": 2048, "seed": 0,
     "prompts": [[token ids], ...], "max_new_tokens": N, "stop_ids": [...], "samples": k, "temperature": t,
     "runs": ["tuned", "base"],   # "base": the same model with the adapter off
     "llm_options": {...}}        # more vllm.LLM arguments
    -> {"tuned": [[{"text", "tokens", "stopped"}, ... k], ...], "base": [...]}

The prompts are token ids rendered by the caller with the chat template (the same ids the transformers
backend feeds), so both backends answer the same prompts.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def generate(request: dict[str, Any]) -> dict[str, list[list[dict[str, Any]]]]:
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    adapter = request.get("adapter")
    options: dict[str, Any] = {"model": request["model"], "seed": request.get("seed", 0),
                               "max_model_len": request.get("max_model_len"), "enforce_eager": True}
    if adapter:
        options.update(enable_lora=True, max_lora_rank=request.get("max_lora_rank", 64), max_loras=1)
    options.update(request.get("llm_options") or {})  # eval.vllm_options, e.g. gpu_memory_utilization
    llm = LLM(**{k: v for k, v in options.items() if v is not None})
    samples = int(request.get("samples", 1))
    params = SamplingParams(n=samples, temperature=float(request.get("temperature", 0.8)) if samples > 1 else 0.0,
                            max_tokens=int(request["max_new_tokens"]), stop_token_ids=list(request["stop_ids"]),
                            seed=request.get("seed", 0), skip_special_tokens=True)
    prompts = [{"prompt_token_ids": ids} for ids in request["prompts"]]
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for run in request.get("runs", ["tuned"]):
        lora = LoRARequest("adapter", 1, adapter) if adapter and run == "tuned" else None
        results = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
        out[run] = [[{"text": c.text, "tokens": len(c.token_ids), "stopped": c.finish_reason == "stop"}
                     for c in result.outputs] for result in results]
    return out


def main() -> int:
    request = json.load(sys.stdin)
    result = generate(request)
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
