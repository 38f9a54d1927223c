"""Which generator evaluation uses, and the vLLM one driven from here.

`eval.backend`: `transformers` (batched `generate`, any machine), `vllm` (offline `vllm.LLM`: in this
process when vLLM is importable here, else under `eval.vllm_python`, an interpreter that has it), or
`auto`: vLLM when it is importable here and a GPU is present, else transformers.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any, Optional

from data_checks.chat_template import ChatTemplate
from gatetune.errors import UserError
from gatetune.evaluation.config import EvalConfig
from gatetune.evaluation.examples import EvalExample
from gatetune.evaluation.generate import Generation, prompt_ids


def vllm_here() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_backend(config: EvalConfig) -> str:
    if config.backend == "transformers":
        return "transformers"
    if config.backend == "vllm":
        if not (vllm_here() or config.vllm_python):
            raise UserError("eval.backend: vllm is not installed here; install it, or set eval.vllm_python to an "
                            "interpreter that has it (or eval.backend=transformers)")
        return "vllm"
    import torch

    return "vllm" if vllm_here() and torch.cuda.is_available() else "transformers"


def _call(request: dict[str, Any], python: Optional[str]) -> dict[str, Any]:
    if python is None:
        from gatetune.evaluation.vllm_generate import generate

        return generate(request)
    import tempfile

    script = Path(__file__).with_name("vllm_generate.py")
    with tempfile.TemporaryDirectory(prefix="vllm-eval-") as work:
        out = Path(work) / "generations.json"
        done = subprocess.run([python, str(script), str(out)], input=json.dumps(request), capture_output=True,
                              text=True)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"vLLM generation under {python} failed:\n{(done.stdout + done.stderr)[-3000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


def generate_vllm(export_dir: Path, info: dict[str, Any], tokenizer: Any, chat: ChatTemplate,
                  examples: list[EvalExample], stop_ids: list[int], max_new_tokens: int, max_prompt_tokens: int,
                  config: EvalConfig) -> tuple[list[list[Generation]], Optional[list[list[Generation]]]]:
    """Tuned (and base) generations with vLLM, on the same prompt ids the transformers backend renders."""
    from gatetune.vllm_rules import vllm_max_lora_rank

    python = None if vllm_here() else config.vllm_python
    prompts = [prompt_ids(tokenizer, chat, e)[-max_prompt_tokens:] for e in examples]
    common = {"prompts": prompts, "max_new_tokens": max_new_tokens, "stop_ids": stop_ids,
              "samples": config.samples, "temperature": config.temperature, "seed": 0,
              "max_model_len": max_prompt_tokens + max_new_tokens, "llm_options": dict(config.vllm_options)}
    if info["kind"] == "adapter":
        runs = ["tuned", "base"] if config.compare_base else ["tuned"]
        out = _call({**common, "model": info["base_model"], "adapter": str(export_dir), "runs": runs,
                     "max_lora_rank": vllm_max_lora_rank(int(info.get("rank") or 8))}, python)
    else:
        out = _call({**common, "model": str(export_dir), "adapter": None, "runs": ["tuned"]}, python)
        if config.compare_base:
            out["base"] = _call({**common, "model": info["base_model"], "adapter": None, "runs": ["tuned"]},
                                python)["tuned"]

    def generations(rows: Optional[list]) -> Optional[list[list[Generation]]]:
        return None if rows is None else [[Generation(s["text"], s["tokens"], s["stopped"]) for s in r] for r in rows]

    return generations(out["tuned"]), generations(out.get("base"))
