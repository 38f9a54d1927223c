"""Tiny random-init models of real architectures, each with a GPT-4-style tokenizer trained locally.

For tests of what differs between model families: module names (Phi-3's fused `qkv_proj`), sliding-window
layers (Gemma, GPT-OSS), mixture-of-experts blocks (GPT-OSS), and tokenizers whose pre-tokenizer merges
text across a prompt/answer boundary (the cl100k / Llama-3 split pattern, as real Llama-3, Qwen and
GPT-OSS tokenizers use). Nothing is downloaded: the configs are built from transformers' classes at tiny
sizes and the tokenizer is trained with `tokenizers` on a short English corpus, the bundled sample data
and those conversations rendered by the family's own chat template. Builds are deterministic (fixed seed,
fixed corpus) and written atomically, like `gatetune/tiny_model.py`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatetune.tiny_model import SAMPLE_DIR

log = logging.getLogger(__name__)

# The pre-tokenizer split of OpenAI's cl100k_base, which Llama 3 copied (its tokenizer.json carries it
# verbatim); o200k (GPT-4o, GPT-OSS) and Qwen2's are close variants. Each match is one pre-token that BPE
# merges within, so a token can straddle a prompt/answer boundary wherever one match does: a space or
# punctuation before a word (" Hello", "(Hello"), a run of newlines ("\n" + "\nHello"), digits ("12" + "3").
GPT4_SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                      r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
TOKENIZER_VOCAB_SIZE = 1024
# Shared tiny sizes: 2 layers, hidden 64, 4 query heads of 16 over 2 key/value heads.
TINY_SIZES: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
                              "initializer_range": 0.1}
# Sliding-window architectures: one sliding and one full layer, and a window shorter than a typical test
# conversation so that the sliding mask really cuts attention.
SLIDING = {"sliding_window": 64, "layer_types": ["sliding_attention", "full_attention"]}
_ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "You are a helpful assistant. Answer the question in one short sentence.",
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "Write a response that appropriately completes the request.",
    "Question: what is the answer? Answer: the answer is forty two.",
    "One two three four five six seven eight nine ten eleven twelve. 1 12 123 1234 2024 3.14",
    "Hello! How can I help you today?\n\nI can explain, summarise, translate or answer questions.",
    "Thanks, that's what I'd hoped. We'll see; they're sure it's fine, and you've been kind.",
    "First line.\nSecond line.\n\nA new paragraph (with brackets), a list: a, b, c; and \"quotes\".",
]


# Paragraph breaks as often as real text has them, so "\n\n" and "\n\n\n" are tokens as in cl100k / Llama 3 /
# Qwen: an answer's leading newlines then merge with a prompt's trailing one when tokenised jointly.
_PARAGRAPHS = ["A first paragraph.\n\nA second one.\n\n\nA third.\n\n"] * 40


@dataclass(frozen=True)
class Architecture:
    """How to build one architecture: its transformers config and model classes, and its settings at tiny size."""

    config_class: str
    model_class: str
    settings: dict[str, Any] = field(default_factory=dict)  # on top of TINY_SIZES
    head_dim: bool = True  # the config takes head_dim (Phi-3 derives it from hidden size / heads)


ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("LlamaConfig", "LlamaForCausalLM", {"tie_word_embeddings": True}),  # as Llama 3.2 1B/3B
    "qwen2": Architecture("Qwen2Config", "Qwen2ForCausalLM"),  # biases on q/k/v, as Qwen2.5
    "qwen3": Architecture("Qwen3Config", "Qwen3ForCausalLM"),  # q/k RMS norms, no biases
    "mistral": Architecture("MistralConfig", "MistralForCausalLM", {"sliding_window": None}),  # v0.3 and Nemo: none
    "gemma2": Architecture("Gemma2Config", "Gemma2ForCausalLM", {**SLIDING, "query_pre_attn_scalar": 16}),
    "gemma3_text": Architecture("Gemma3TextConfig", "Gemma3ForCausalLM", {**SLIDING, "query_pre_attn_scalar": 16}),
    # Fused qkv_proj and gate_up_proj; partial rotary and tied embeddings as in Phi-4-mini.
    "phi3": Architecture("Phi3Config", "Phi3ForCausalLM", {
        "tie_word_embeddings": True, "original_max_position_embeddings": 512,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75}},
        head_dim=False),
    # Mixture of 4 experts (2 per token), attention sinks, alternating sliding/full layers, YaRN scaled to 512.
    "gpt_oss": Architecture("GptOssConfig", "GptOssForCausalLM", {
        **SLIDING, "num_local_experts": 4, "num_experts_per_tok": 2,
        "rope_parameters": {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 4.0, "beta_fast": 32.0,
                            "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 128}}),
}


def _sample_conversations() -> Iterator[list[dict[str, str]]]:
    with (SAMPLE_DIR / "sft_sample.jsonl").open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["messages"]


def _sample_texts() -> Iterator[str]:
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                for value in record.values():
                    for item in value if isinstance(value, list) else [value]:
                        if isinstance(item, dict) and isinstance(item.get("content"), str):
                            yield item["content"]
                        elif isinstance(item, str):
                            yield item


def _rendered_chats(chat_template: str, bos_token: str | None, eos_token: str) -> list[str]:
    """The sample conversations as the chat template renders them, so its markup gets the merges a real
    tokenizer trained on chat data has. Conversations the template refuses are left out."""
    from jinja2 import TemplateError
    from transformers.utils.chat_template_utils import render_jinja_template

    texts = []
    for messages in _sample_conversations():
        try:
            rendered, _ = render_jinja_template([messages], chat_template=chat_template,
                                                bos_token=bos_token or "", eos_token=eos_token)
        except TemplateError:
            continue
        texts.extend(rendered)
    return texts


def build_gpt4_style_tokenizer(special_tokens: list[str], bos_token: str | None, eos_token: str,
                               pad_token: str | None, chat_template: str | None,
                               vocab_size: int = TOKENIZER_VOCAB_SIZE, add_bos_token: bool = False) -> Any:
    """A byte-level BPE with the cl100k / Llama-3 pre-tokenizer split, as a transformers fast tokenizer.

    `special_tokens` (with bos, eos and pad) become single ids at the start of the vocabulary and are
    never split. `add_bos_token` prepends BOS when encoding with special tokens, as Llama-3's and
    Gemma's tokenizers do (their templates then write `bos_token` themselves for rendered text).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys([t for t in (pad_token, bos_token, eos_token) if t] + list(special_tokens)))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GPT4_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [*_ENGLISH, *_PARAGRAPHS, *_sample_texts(), *(_rendered_chats(chat_template, bos_token, eos_token)
                                            if chat_template else [])]
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    if add_bos_token and bos_token:
        bos_id = tokenizer.token_to_id(bos_token)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos_token} $A", pair=f"{bos_token} $A {bos_token} $B", special_tokens=[(bos_token, bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos_token, eos_token=eos_token,
                                   pad_token=pad_token, unk_token=None, chat_template=chat_template,
                                   model_max_length=TINY_SIZES["max_position_embeddings"])


def tiny_config(family: str, vocab_size: int, bos_token_id: int | None, eos_token_id: int,
                pad_token_id: int | None) -> Any:
    """The transformers config of `family` (a key of ARCHITECTURES) at tiny size."""
    import transformers

    if family not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {family!r} (known: {', '.join(ARCHITECTURES)})")
    arch = ARCHITECTURES[family]
    sizes = {**TINY_SIZES, **({"head_dim": 16} if arch.head_dim else {})}
    config_class = getattr(transformers, arch.config_class)
    return config_class(**sizes, **arch.settings, vocab_size=vocab_size, bos_token_id=bos_token_id,
                        eos_token_id=eos_token_id, pad_token_id=pad_token_id)


def build_tiny_family(family: str, out_dir: str | os.PathLike[str], chat_template: str, bos_token: str | None,
                      eos_token: str, pad_token: str | None, special_tokens: list[str], seed: int = 0,
                      add_bos_token: bool = False, stop_tokens: list[str] | None = None) -> Path:
    """Build a tiny random-init model of architecture `family` with its tokenizer into `out_dir` (atomically).

    The tokenizer carries `chat_template`; `generation_config.json` stops on the EOS token, and on
    `stop_tokens` too when given (as real ones list the end-of-turn token, e.g. Gemma's [<eos>, <end_of_turn>]).
    An existing complete `out_dir` is kept (another process finished first).
    """
    import torch
    import transformers
    from transformers import GenerationConfig

    out = Path(out_dir)
    tokenizer = build_gpt4_style_tokenizer([*special_tokens, *(stop_tokens or [])], bos_token, eos_token, pad_token,
                                           chat_template, add_bos_token=add_bos_token)
    config = tiny_config(family, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                         tokenizer.pad_token_id)
    stop_ids = list(dict.fromkeys([tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(stop_tokens or [])]))
    torch.manual_seed(seed)
    model = getattr(transformers, ARCHITECTURES[family].model_class)(config)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=stop_ids[0] if len(stop_ids) == 1 else stop_ids,
                                               pad_token_id=tokenizer.pad_token_id, max_new_tokens=64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if (out / "config.json").is_file():
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(out, ignore_errors=True)  # a leftover without config.json is not a model
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built a tiny %s (%d parameters) in %s", family, model.num_parameters(), out)
    return out
