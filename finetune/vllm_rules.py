"""The rules vLLM enforces on a LoRA adapter, checked without importing vLLM.

Read from vLLM 0.33's `vllm/lora/peft_helper.py`, `vllm/config/lora.py` and
`vllm/lora/lora_model.py`. Each problem names the adapter_config.json key it is about.
"""

from __future__ import annotations

from typing import Any

# --max-lora-rank values vLLM accepts (vllm/config/lora.py). The adapter's r (and the largest
# rank_pattern value) must not exceed the chosen one; r itself need not be in the list.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# modules_to_save vLLM loads (peft_helper.py): none, or a classification head.
VLLM_MODULES_TO_SAVE = {"classifier", "score"}
VLLM_REFUSED_INITS = ("pissa", "olora", "corda", "loftq")
_DECODER_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                    "qkv_proj", "gate_up_proj", "embed_tokens", "lm_head"}
# LoRA targets per architecture after vLLM's packed-module mapping (q/k/v -> qkv_proj, gate/up -> gate_up_proj).
VLLM_LORA_TARGETS = {model_type: _DECODER_TARGETS for model_type in
                     ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "granite", "olmo2")}
EMBEDDING_TARGETS = {"embed_tokens", "lm_head"}


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` value vLLM allows that fits `rank`."""
    for allowed in VLLM_MAX_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"LoRA rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_MAX_LORA_RANKS[-1]})")


def adapter_rank(adapter_config: dict[str, Any]) -> int:
    return max([int(adapter_config["r"]), *[int(v) for v in (adapter_config.get("rank_pattern") or {}).values()]])


def vllm_adapter_problems(adapter_config: dict[str, Any], base_config: dict[str, Any] | None = None,
                          embedding_vocab: int | None = None) -> list[str]:
    """Everything about this adapter that vLLM would refuse, each naming its key; empty when it loads.

    `base_config` is the base model's config.json (for the architecture's supported targets and the
    vocabulary); `embedding_vocab` is the vocabulary size of an embedding LoRA's weights, if any.
    """
    problems = []
    if adapter_config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type: {adapter_config.get('peft_type')!r}; vLLM serves LoRA adapters only")
    rank = adapter_rank(adapter_config)
    if rank > VLLM_MAX_LORA_RANKS[-1]:
        problems.append(f"r: rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_MAX_LORA_RANKS[-1]})")
    if adapter_config.get("bias", "none") != "none":
        problems.append(f"bias: {adapter_config['bias']!r}; vLLM needs 'none' (adapter biases are not loaded)")
    if adapter_config.get("lora_bias"):
        problems.append("lora_bias: true; vLLM does not load LoRA biases")
    if adapter_config.get("use_dora"):
        problems.append("use_dora: true; vLLM does not support DoRA")
    saved = adapter_config.get("modules_to_save")
    if saved and not set(saved) <= VLLM_MODULES_TO_SAVE:
        problems.append(f"modules_to_save: {sorted(saved)}; vLLM accepts none, or only {sorted(VLLM_MODULES_TO_SAVE)}")
    init = adapter_config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(VLLM_REFUSED_INITS):
        problems.append(f"init_lora_weights: {init!r}; vLLM refuses {', '.join(VLLM_REFUSED_INITS)} initialisations")
    if adapter_config.get("trainable_token_indices") or adapter_config.get("additional_trainable_tokens"):
        problems.append("trainable_token_indices: vLLM has no extra-vocabulary support")
    targets = adapter_config.get("target_modules")
    model_type = (base_config or {}).get("model_type")
    if isinstance(targets, str):
        problems.append(f"target_modules: the pattern {targets!r}; list the module names so they can be checked")
    elif model_type in VLLM_LORA_TARGETS:
        unsupported = sorted(set(targets or []) - VLLM_LORA_TARGETS[model_type])
        if unsupported:
            problems.append(f"target_modules: {unsupported} are not LoRA targets vLLM supports for {model_type} "
                            f"(supported: {', '.join(sorted(VLLM_LORA_TARGETS[model_type]))})")
    if embedding_vocab is not None and base_config and embedding_vocab != base_config.get("vocab_size"):
        problems.append(f"target_modules: the embedding LoRA covers {embedding_vocab} tokens but the base vocabulary "
                        f"has {base_config.get('vocab_size')}; vLLM has no extra-vocabulary support")
    return problems
