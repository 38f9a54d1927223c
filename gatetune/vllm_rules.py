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
EMBEDDING_TARGETS = {"embed_tokens", "lm_head"}
_ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj"}
_MLP = {"gate_proj", "up_proj", "down_proj"}
# LoRA targets (adapter module names, i.e. the Hugging Face names) vLLM loads per config.json model_type.
# vLLM expects the leaf names of its own linear layers, each packed one expanded by the class's
# packed_modules_mapping (qkv_proj -> q/k/v_proj, gate_up_proj -> gate/up_proj), plus the names in its
# embedding_modules (worker_manager._load_adapter, lora/utils.py get_supported_lora_modules); anything
# else in the adapter's weights is refused by lora_model.from_local_checkpoint. Read from vLLM 0.33's
# model_executor/models/<arch>.py:
VLLM_LORA_TARGETS = {
    # LlamaForCausalLM (and Qwen3's, Granite's) declare embed_tokens/lm_head as embedding modules.
    "llama": _ATTENTION | _MLP | EMBEDDING_TARGETS,
    "qwen3": _ATTENTION | _MLP | EMBEDDING_TARGETS,
    "granite": _ATTENTION | _MLP | EMBEDDING_TARGETS,
    # MistralForCausalLM sets embedding_modules = {} ("We don't support LoRA on the embedding layers");
    # Qwen2 (also DeepSeek-R1-Distill-Qwen) and the Gemmas declare none.
    "mistral": _ATTENTION | _MLP,
    "qwen2": _ATTENTION | _MLP,
    "gemma": _ATTENTION | _MLP,
    "gemma2": _ATTENTION | _MLP,
    "gemma3_text": _ATTENTION | _MLP,  # Gemma3ForCausalLM (text-only checkpoints such as gemma-3-1b-it)
    # Gemma3ForConditionalGeneration: the language model's names. Its vision tower's (out_proj, fc1, fc2)
    # load, but are applied only with --enable-tower-connector-lora (experimental), so they are refused here.
    "gemma3": _ATTENTION | _MLP,
    # Phi3ForCausalLM maps qkv_proj -> [qkv_proj] and gate_up_proj -> [gate_up_proj]: Phi-3's checkpoints
    # (and so its adapters) already hold the fused layers; q_proj etc. do not exist. Embeddings as Llama.
    "phi3": {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"} | EMBEDDING_TARGETS,
    # GptOssForCausalLM: attention only among module targets. The MoE experts are 3-D parameters
    # (PEFT's target_parameters, stored as mlp.experts[.base_layer]), not modules; the router is a plain
    # parameter pair in transformers (not an nn.Linear). No embedding modules.
    "gpt_oss": _ATTENTION,
    # Olmo2 runs on vLLM's Transformers backend: the Hugging Face linear names, and embed_tokens only.
    "olmo2": _ATTENTION | _MLP | {"embed_tokens"},
}
# PEFT's target_parameters (LoRA on nn.Parameters rather than modules) vLLM loads only as the experts of a
# fused 3-D mixture of experts (classes with is_3d_moe_weight; lora_model.py's ".experts" case): PEFT saves
# them as mlp.experts.base_layer (gate_up_proj) and mlp.experts (down_proj).
VLLM_LORA_TARGET_PARAMETERS = {"gpt_oss": {"mlp.experts.gate_up_proj", "mlp.experts.down_proj"}}


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
    parameters = adapter_config.get("target_parameters") or []
    if parameters and model_type in VLLM_LORA_TARGETS:
        allowed = VLLM_LORA_TARGET_PARAMETERS.get(model_type, set())
        unsupported = sorted(p for p in parameters if not any(p == a or p.endswith("." + a) for a in allowed))
        if unsupported:
            problems.append(f"target_parameters: {unsupported} are not parameter LoRAs vLLM loads for {model_type} "
                            f"(it loads them only on the MoE experts of {', '.join(VLLM_LORA_TARGET_PARAMETERS)})")
    if embedding_vocab is not None and base_config and embedding_vocab != base_config.get("vocab_size"):
        problems.append(f"target_modules: the embedding LoRA covers {embedding_vocab} tokens but the base vocabulary "
                        f"has {base_config.get('vocab_size')}; vLLM has no extra-vocabulary support")
    return problems
