"""What to serve and with which vLLM flags, read from a run's export; refused before vLLM starts when vLLM
would refuse it (an adapter rank above `--max-lora-rank`, an adapter made for another base model).

The flags (vLLM's OpenAI server, `vllm serve` and `python -m vllm.entrypoints.openai.api_server` alike):
- an adapter: `--enable-lora --lora-modules NAME=PATH --max-lora-rank R` (R: the smallest vLLM allows that fits);
- `--max-model-len`: the training length when the base allows more (the export records it);
- `--enable-prefix-caching`: system-prompt-heavy traffic shares its prefix's KV cache;
- `--enable-chunked-prefill` when the context is above 16K tokens, so long prompts do not stall decoding;
- `--tensor-parallel-size`: the visible GPUs (1 on CPU);
- `--chat-template` when training replaced the base's template, and `--default-chat-template-kwargs`
  with the template arguments training rendered with;
- `--generation-config ADAPTER_DIR` for an adapter, so the stop tokens are the trained template's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gatetune.errors import UserError

CHUNKED_PREFILL_ABOVE = 16384  # tokens of context above which chunked prefill is switched on


class ServeError(UserError):
    """A run that cannot be served as asked: the message says why and what to do."""


@dataclass
class ServePlan:
    """The model vLLM loads and the adapter it serves (if any), with everything the flags need."""

    kind: str  # adapter, merged_model or full_model
    model: str  # the base model (adapter) or the exported model's folder
    served_name: str  # the name clients pass as `model`
    adapter: Optional[Path] = None
    rank: Optional[int] = None
    max_model_len: Optional[int] = None
    context_length: Optional[int] = None
    chat_template: Optional[Path] = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    stop_token_ids: list[int] = field(default_factory=list)
    export_dir: Optional[Path] = None


def _export_dir(path: Path, prefer: str) -> Path:
    """The export folder to serve: `path` itself, or a run directory's adapter/, merged/ or model/."""
    if (path / "gatetune_export.json").is_file():
        return path
    order = {"adapter": ("adapter", "merged", "model"), "merged": ("merged", "model", "adapter")}[prefer]
    for name in order:
        if (path / name / "gatetune_export.json").is_file():
            return path / name
    raise ServeError(f"{path}: no export to serve (neither an export folder with gatetune_export.json nor a run "
                     f"directory with adapter/, merged/ or model/); train first, or `gatetune export RUN_DIR --merge`")


def _model_config(model: str) -> dict[str, Any]:
    local = Path(model) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model).to_dict()
    except OSError as exc:
        raise ServeError(f"cannot read the base model's config ({model}): {exc}") from None


def serve_plan(path: Path, prefer: str = "adapter", name: Optional[str] = None,
               max_lora_rank: Optional[int] = None, max_model_len: Optional[int] = None) -> ServePlan:
    """The plan for a run directory or export folder, checked against vLLM's rules (ServeError if refused)."""
    from gatetune.export import check_adapter, fingerprint
    from gatetune.vllm_rules import adapter_rank, vllm_max_lora_rank

    export = _export_dir(path.resolve(), prefer)
    info = json.loads((export / "gatetune_export.json").read_text())
    recorded_len = info.get("max_model_len")
    if recorded_len is None:  # exports made before the key existed: the printed command has it
        found = re.search(r"--max-model-len (\d+)", info.get("vllm_command", ""))
        recorded_len = int(found.group(1)) if found else None
    kwargs = dict(info.get("chat_template_kwargs") or {})
    common = {"max_model_len": max_model_len or recorded_len, "template_kwargs": kwargs,
              "stop_token_ids": list(info.get("stop_token_ids") or []), "export_dir": export}
    if info["kind"] != "adapter":
        config = _model_config(str(export))
        return ServePlan(info["kind"], str(export), name or export.name, context_length=_context(config), **common)
    base = info["base_model"]
    base_config = _model_config(base)
    made_for = info.get("base_config") or {}
    now = fingerprint(base_config)
    differs = {k: (v, now.get(k)) for k, v in made_for.items() if now.get(k) != v}
    if differs:
        detail = ", ".join(f"{k} {a} (adapter) vs {b} (base)" for k, (a, b) in sorted(differs.items()))
        raise ServeError(f"{export}: the adapter was trained on another base model than {base}: {detail}")
    problems = check_adapter(export, base_config)
    if problems:
        raise ServeError(f"{export}: vLLM would refuse the adapter: " + "; ".join(problems))
    rank = adapter_rank(json.loads((export / "adapter_config.json").read_text()))
    if max_lora_rank is not None and rank > max_lora_rank:
        raise ServeError(f"{export}: the adapter's LoRA rank is {rank}, above --max-lora-rank {max_lora_rank}; "
                         f"use --max-lora-rank {vllm_max_lora_rank(rank)} (or leave it out)")
    template = export / "chat_template.jinja" if info.get("chat_template_replaced") else None
    return ServePlan("adapter", base, name or info.get("name") or "adapter", adapter=export,
                     rank=max_lora_rank or vllm_max_lora_rank(rank), context_length=_context(base_config),
                     chat_template=template, **common)


def _context(config: dict[str, Any]) -> Optional[int]:
    value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get("max_position_embeddings")
    return int(value) if value else None


def gpu_count() -> int:
    """Visible CUDA devices (0 on a machine without; no torch import needed)."""
    import os
    import shutil
    import subprocess

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    return sum(line.startswith("GPU ") for line in done.stdout.splitlines()) if done.returncode == 0 else 0


def server_flags(plan: ServePlan, host: str, port: int, gpus: int, dtype: Optional[str] = None) -> list[str]:
    """The OpenAI server's arguments for `plan` (after `--model MODEL`)."""
    flags = ["--host", host, "--port", str(port), "--served-model-name", plan.served_name if plan.adapter is None
             else f"{plan.served_name}-base", "--enable-prefix-caching"]
    if plan.adapter is not None:
        # vLLM takes sampling defaults (the stop tokens among them) from the base model's generation config;
        # the export's has the end-of-turn token of the template trained with.
        flags += ["--enable-lora", "--lora-modules", f"{plan.served_name}={plan.adapter}",
                  "--max-lora-rank", str(plan.rank), "--generation-config", str(plan.adapter)]
    context = plan.max_model_len or plan.context_length
    if plan.max_model_len:
        flags += ["--max-model-len", str(plan.max_model_len)]
    if context and context > CHUNKED_PREFILL_ABOVE:
        flags += ["--enable-chunked-prefill"]
    if gpus > 1:
        flags += ["--tensor-parallel-size", str(gpus)]
    if plan.chat_template is not None:
        flags += ["--chat-template", str(plan.chat_template)]
    if plan.template_kwargs:
        flags += ["--default-chat-template-kwargs", json.dumps(plan.template_kwargs, sort_keys=True)]
    if dtype:
        flags += ["--dtype", dtype]
    return flags


def serve_command_line(plan: ServePlan, flags: list[str]) -> str:
    """The same server as one `vllm serve` line (what to run on a GPU box by hand)."""
    import shlex

    return shlex.join(["vllm", "serve", plan.model, *flags])
