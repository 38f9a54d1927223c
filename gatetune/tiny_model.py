"""The embedded default model: a tiny random-init Llama with a locally trained tokenizer.

Nothing is downloaded. The tokenizer is a byte-level BPE trained with the `tokenizers`
library on the bundled sample data plus a short built-in corpus, and it carries a
ChatML-style chat template whose end-of-turn token (`<|im_end|>`) is the EOS token.
The build is deterministic (fixed seed, fixed corpus) and written atomically, so a
half-built directory is never mistaken for a model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TINY_MODEL_VERSION = "tiny-llama-v2"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# A little general English so that text outside the sample data still gets useful merges.
_EXTRA_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "You are a helpful assistant. Answer the question in one short sentence.",
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "Write a response that appropriately completes the request.",
    "Question: what is the answer? Answer: the answer is forty two.",
    "One two three four five six seven eight nine ten eleven twelve.",
]


def _corpus() -> list[str]:
    texts = list(_EXTRA_CORPUS)
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                for message in record.get("messages", []):
                    texts.append(f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>")
                for key in ("prompt", "completion", "chosen", "rejected", "text"):
                    if isinstance(record.get(key), str):
                        texts.append(record[key])
    return texts


def build_tokenizer(vocab_size: int = 1024) -> Any:
    """Train a byte-level BPE tokenizer and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )


def build_tiny_model(out_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """Build the tiny model and tokenizer into `out_dir` (atomically) and return it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        initializer_range=0.1,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=64,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():  # another process finished first; keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built the tiny model (%d parameters) in %s", model.num_parameters(), out)
    return out


def ensure_tiny_model(out_dir: str | os.PathLike[str]) -> Path:
    """Return `out_dir`, building the tiny model there first if it is not complete."""
    out = Path(out_dir)
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    return build_tiny_model(out)
