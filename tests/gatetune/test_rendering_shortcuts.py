"""The two shortcuts of ChatTemplate's hot path give exactly what transformers gives: the compiled template rendered
without `apply_chat_template`'s per-call work, and a fast tokenizer's Rust backend called directly. Checked on every
family template in tests/chat_templates with its family's special tokens, on conversation shapes that exercise
what apply_chat_template does to its inputs (None fields, reasoning under each of its names, system turns,
multi-turn, template arguments), and on a byte-level and a Metaspace (SentencePiece-style) tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from data_checks.chat_template import CHECKED_RENDERINGS, ChatTemplate
from tests.gatetune.test_chat_templates import FAMILIES, tokenizer

CONVERSATIONS = [
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello.", "tool_calls": None}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4", "reasoning_content": "Add them."},
     {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "6", "thinking": "Add again."}],
    [{"role": "user", "content": "  spaced  "}, {"role": "assistant", "content": "\n\nleading newlines",
                                                  "reasoning": "old name"}],
    [{"role": "user", "content": "Count."}, {"role": "assistant", "content": "1 2 3", "reasoning_content": None}],
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("kwargs", [{}, {"enable_thinking": False}], ids=["plain", "enable_thinking=false"])
def test_the_compiled_template_renders_as_apply_chat_template(family: str, kwargs: dict[str, Any]):
    tok = tokenizer(family)
    chat = ChatTemplate(tok, kwargs)
    compared = 0
    for conversation in CONVERSATIONS:
        for end in range(1, len(conversation) + 1):
            messages = conversation[:end]
            for generation_prompt in (False, True):
                try:
                    want = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt,
                                                   **kwargs)
                except Exception:  # the template refuses this shape (gemma2's system turn, alternation)
                    continue
                assert chat._render_compiled(messages, generation_prompt) == want, (messages, generation_prompt)
                compared += 1
    assert compared >= 10


def test_a_shortcut_that_renders_differently_is_switched_off(monkeypatch):
    tok = tokenizer("qwen3")
    chat = ChatTemplate(tok, {})
    messages = CONVERSATIONS[0]
    want = tok.apply_chat_template(messages, tokenize=False)
    assert chat.render(messages) == want and chat._shortcut_checks == CHECKED_RENDERINGS - 1
    monkeypatch.setattr(ChatTemplate, "_render_compiled", lambda self, m, g: "something else")
    assert chat.render(messages) == want  # compared while checking: apply_chat_template's text wins
    assert chat._shortcut_checks < 0  # and the shortcut is off for this template from now on
    # Values the shortcut does not take (content blocks) go through apply_chat_template.
    monkeypatch.undo()
    blocks = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert ChatTemplate(tok, {})._render_compiled(blocks, True) is None


def _metaspace_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    texts = [" ".join(m["content"] for m in c) for c in CONVERSATIONS] * 20 + ["[INST] question [/INST] answer"] * 20
    backend.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>",
                                                                                              "[INST]", "[/INST]"]))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.mark.parametrize("which", ["tiny", "gpt_oss", "phi4_mini", "metaspace"])
def test_the_rust_backend_gives_the_tokenizers_ids(which: str, tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = {"tiny": lambda: AutoTokenizer.from_pretrained(tiny_model_dir), "metaspace": _metaspace_tokenizer}.get(
        which, lambda: tokenizer(which))()
    texts = ["", " ", "Hello world", "  two leading spaces", "<|im_end|>\nafter a special token", "[INST] q [/INST]",
             "</s> eos then text", "tabs\tand\nnewlines\n\n", "ünïcödé 表 😀", json.dumps(CONVERSATIONS[2])]
    want = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert ChatTemplate(tok, {}).token_ids(texts) == want
    tok.backend_tokenizer.enable_truncation(4)  # set to truncate: through the tokenizer, which resets it
    assert ChatTemplate(tok, {}).token_ids(texts) == want
