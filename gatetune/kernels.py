"""Which kernels a run uses: the attention (`model.attn_implementation`, with padding-free attention without
flash-attention) and Liger's (`training.liger`).

`auto` picks flash-attention 2 where the `flash_attn` package, a CUDA GPU, a 16-bit dtype and the
architecture's support are all there, else PyTorch's SDPA. A packed row (`training.packing` padding_free or
bin_pack) then needs each example to attend only to itself:

- flash-attention reads the example boundaries (`cu_seq_lens`) that TRL's padding-free collator passes;
- SDPA has no such input. Transformers isolates the examples with a block-diagonal mask over the whole
  row, so every layer computes attention over (sum of lengths)^2 entries and throws most of them away:
  on real chats that made padding-free *slower* than padding (docs/benchmarks.md). `varlen_sdpa`, registered
  here with transformers' AttentionInterface, runs causal SDPA on each example's slice of the row instead
  (sum of length^2), with the layer's sliding window where it has one, and is plain SDPA on batches without
  boundaries (evaluation, generation).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from gatetune.errors import ConfigError

log = logging.getLogger(__name__)
VARLEN_SDPA = "varlen_sdpa"


def varlen_sdpa_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any
                        ) -> tuple[Any, None]:
    """Causal SDPA per example of a padding-free row (boundaries in `cu_seq_lens_q`), else plain SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None or query.shape[0] != 1:
        kwargs.pop("cu_seq_lens_q", None)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    starts = bounds.tolist()
    gqa = query.shape[1] != key.shape[1]
    dropout = kwargs.get("dropout", 0.0) if module.training else 0.0
    window = kwargs.get("sliding_window")  # a sliding-window layer (Gemma 3, Mistral v0.1, ...): that many keys back
    pieces = []
    for a, b in zip(starts, starts[1:], strict=False):
        if b <= a:
            continue
        mask = None
        if window and b - a > window:  # the window cuts this example: causal and at most `window` keys back
            i = torch.arange(b - a, device=query.device)
            mask = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < window)
        pieces.append(torch.nn.functional.scaled_dot_product_attention(
            query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], attn_mask=mask, dropout_p=dropout,
            is_causal=mask is None, scale=kwargs.get("scaling"), enable_gqa=gqa))
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def register_varlen_sdpa() -> None:
    """Make `attn_implementation="varlen_sdpa"` loadable: the attention function, and SDPA's mask for it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(VARLEN_SDPA, varlen_sdpa_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(VARLEN_SDPA, sdpa_mask)


def flash_attention_usable(model_class: Any, dtype: Any) -> tuple[bool, str]:
    """Whether flash-attention 2 can run this model here, and if not, why."""
    import torch

    if importlib.util.find_spec("flash_attn") is None:
        return False, "the flash_attn package is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU"
    if dtype not in (torch.float16, torch.bfloat16):
        return False, f"it needs fp16 or bf16 (training in {dtype})"
    if model_class is not None and not getattr(model_class, "_supports_flash_attn", False):
        return False, f"{model_class.__name__} does not support it"
    return True, ""


def choose_attention(requested: str | None, model_class: Any, dtype: Any, packed: bool) -> str | None:
    """The `attn_implementation` to load with: `requested` as given (null: transformers' default), or for
    `auto` flash-attention 2 where usable else SDPA; SDPA of a packed run becomes `varlen_sdpa`."""
    if requested == "auto":
        usable, why = flash_attention_usable(model_class, dtype)
        chosen = "flash_attention_2" if usable else "sdpa"
        log.info("attention: %s (model.attn_implementation=auto%s)", chosen, "" if usable else f"; flash-attention "
                 f"2 not used: {why}")
    else:
        chosen = requested
    sdpa = chosen == "sdpa" or (chosen is None and getattr(model_class, "_supports_sdpa", False))
    if packed and sdpa:
        register_varlen_sdpa()
        log.info("attention: %s (SDPA per example of each padding-free row)", VARLEN_SDPA)
        return VARLEN_SDPA
    return chosen


def liger_architectures() -> set[str]:
    """The `model_type`s Liger patches (its own table), or ConfigError when liger-kernel is not installed."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        raise ConfigError("training.liger", "needs the liger-kernel package: pip install 'gatetune[liger]' (on a "
                          "CUDA machine)") from None
    return set(MODEL_TYPE_TO_APPLY_LIGER_FN)


def check_liger(model_type: str | None, supported: set[str] | None = None) -> None:
    """`training.liger=true` needs a CUDA GPU (Liger's kernels are Triton), liger-kernel, and an architecture
    Liger patches (`supported`: its table). ConfigError naming the key otherwise, before any model loads."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("training.liger", "Liger's kernels are Triton kernels for CUDA GPUs and this machine has "
                          "none; set training.liger=false")
    supported = liger_architectures() if supported is None else supported
    if model_type not in supported:
        raise ConfigError("training.liger", f"Liger has no kernels for the {model_type!r} architecture (it patches "
                          f"{', '.join(sorted(supported))}); set training.liger=false")
