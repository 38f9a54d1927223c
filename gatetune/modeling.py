"""Load the base model and tokenizer named by the `model` node, and wrap the model for the recipe."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gatetune.config import (
    Adaptation,
    LoraConfig,
    ModelConfig,
    Precision,
    TaskType,
    TrainConfig,
    resolved_alpha,
    resolved_packing,
    resolved_rank,
)
from gatetune.errors import ConfigError, UserError
from gatetune.kernels import check_liger, choose_attention
from gatetune.templates import read_chat_template

log = logging.getLogger(__name__)
BUILDERS = ("tiny_llama",)


def model_source(m: ModelConfig) -> str:
    """The local directory or hub ID to load from, building the embedded tiny model first if asked."""
    if m.build is not None:
        if m.build not in BUILDERS:
            raise ConfigError("model.build", f"unknown builder {m.build!r} (available: {', '.join(BUILDERS)})")
        from gatetune.tiny_model import ensure_tiny_model

        return str(ensure_tiny_model(m.path))
    path = Path(m.path).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise ConfigError("model.path", f"{m.path} exists but holds no config.json; expected a Hugging Face model "
                          "directory or a hub ID")
    return str(path) if path.exists() else m.path


def torch_dtype(precision: Precision) -> Any:
    import torch

    if precision is Precision.auto:
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return {Precision.fp32: torch.float32, Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}[precision]


def load_tokenizer(m: ModelConfig, source: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=m.revision, trust_remote_code=m.trust_remote_code)
    except OSError as exc:
        raise UserError(f"model.path: cannot load a tokenizer from {source!r}: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if m.chat_template:
        tokenizer.chat_template = read_chat_template(m.chat_template)
        log.info("chat template: %s (replaces the tokenizer's; the export carries it)", m.chat_template)
    if not getattr(tokenizer, "chat_template", None):
        log.warning("the tokenizer of %s has no chat template; chat data needs one", source)
    return tokenizer


def load_model(config: TrainConfig, source: str) -> Any:
    """The base causal LM in the recipe's precision, with LoRA applied when the recipe adapts with LoRA."""
    from transformers import AutoModelForCausalLM

    m, adaptation, checkpointing = config.model, config.recipe.adaptation, config.training.gradient_checkpointing
    kwargs: dict[str, Any] = {"dtype": torch_dtype(config.training.precision), "revision": m.revision,
                              "trust_remote_code": m.trust_remote_code}
    attention = choose_attention(m.attn_implementation, causal_lm_class(m, source), kwargs["dtype"],
                                 resolved_packing(config) != "none")
    if attention:
        kwargs["attn_implementation"] = attention
    if _is_mxfp4(m, source):
        # GPT-OSS ships MXFP4 experts, which transformers cannot train: dequantise them to the training dtype.
        if adaptation is Adaptation.qlora:
            raise ConfigError("recipe", f"{source} is an MXFP4 checkpoint (GPT-OSS); a 4-bit bitsandbytes base "
                              "does not apply to it: use recipe=lora (the experts are dequantised to bf16)")
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    elif adaptation is Adaptation.qlora:
        kwargs["quantization_config"] = nf4_config(kwargs["dtype"])
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise UserError(f"model.path: cannot load a model from {source!r}: {exc}") from None
    if checkpointing:
        model.config.use_cache = False
    if adaptation is Adaptation.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    if adaptation in (Adaptation.lora, Adaptation.qlora):
        model = apply_lora(config.lora, config.data.task_type, model)
    return model


def _model_config(m: ModelConfig, source: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, revision=m.revision, trust_remote_code=m.trust_remote_code)
    except (OSError, ValueError):
        return None  # the model load reports it


def causal_lm_class(m: ModelConfig, source: str) -> Any:
    """The transformers class `AutoModelForCausalLM` would load for the model (None when it cannot tell)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    return MODEL_FOR_CAUSAL_LM_MAPPING.get(type(_model_config(m, source)), None)


def check_kernels(config: TrainConfig, source: str) -> None:
    """Kernel choices that cannot work here fail before anything loads (training.liger)."""
    if config.training.liger:
        model_config = _model_config(config.model, source)
        check_liger(getattr(model_config, "model_type", None))


def _is_mxfp4(m: ModelConfig, source: str) -> bool:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, revision=m.revision, trust_remote_code=m.trust_remote_code)
    except (OSError, ValueError):
        return False  # the model load below reports it
    quantization = getattr(config, "quantization_config", None) or {}
    method = quantization.get("quant_method") if isinstance(quantization, dict) else getattr(quantization,
                                                                                            "quant_method", None)
    return getattr(method, "value", method) == "mxfp4"


def nf4_config(compute_dtype: Any = None) -> Any:
    """QLoRA's base: 4-bit NF4 weights with double quantisation (bitsandbytes).

    Compute runs in the training precision: bf16 on a GPU that has it (QLoRA's setting); on a CPU,
    fp32, where bf16 matrix products are several times slower.
    """
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype or torch.bfloat16)


def linear_layer_names(model: Any) -> list[str]:
    """Leaf names of every linear layer but the output head: what `all-linear` means, spelled out.

    PEFT would record full module paths for `all-linear`; short names keep the adapter config
    readable and match the names vLLM's packed-module mapping expects (q_proj, ..., down_proj).
    """
    import torch

    head = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and module is not head})


def lora_config(lora: LoraConfig, task_type: TaskType, model: Any) -> Any:
    """PEFT's LoraConfig for `model` from the `lora` node (the rank's default depends on `data.task_type`)."""
    import peft

    targets = lora.target_modules
    if targets == "all-linear":
        targets = linear_layer_names(model)
    elif not isinstance(targets, str):
        targets = list(targets)
    parameters = list(lora.target_parameters) if lora.target_parameters else None
    return peft.LoraConfig(r=resolved_rank(lora, task_type), lora_alpha=resolved_alpha(lora, task_type),
                           lora_dropout=lora.dropout, target_modules=targets, target_parameters=parameters,
                           use_rslora=lora.use_rslora, bias="none", task_type="CAUSAL_LM")


def apply_lora(lora: LoraConfig, task_type: TaskType, model: Any) -> Any:
    from peft import get_peft_model

    try:
        peft_model = get_peft_model(model, lora_config(lora, task_type, model))
    except ValueError as exc:  # e.g. target modules not found in the model
        raise ConfigError("lora.target_modules", str(exc)) from None
    trainable, total = peft_model.get_nb_trainable_parameters()
    log.info("LoRA rank %d, alpha %d on %s: %d of %d parameters trainable (%.2f%%)",
             resolved_rank(lora, task_type), resolved_alpha(lora, task_type),
             sorted(peft_model.peft_config["default"].target_modules), trainable, total, 100 * trainable / total)
    return peft_model
