"""Render conversations with a tokenizer's own chat template and locate the answer tokens.

The tokenizer's `chat_template` is the single source of truth: nothing here re-implements a
template. Used by the template gate and by training (finetune/data.py) alike.
"""

from __future__ import annotations

from typing import Any


class TemplateError(ValueError):
    """The chat template cannot render a conversation in a way answers can be located in."""


def answer_spans(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns.

    Each assistant turn spans from the end of the rendered prefix with a generation prompt to
    the end of the rendered prefix that includes the turn, so the end-of-turn token is trained.
    The generation prompt must be a prefix of the full rendering, or answers cannot be located.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start_text = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        end_text = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not full.startswith(start_text):
            raise TemplateError(f"the rendering up to the generation prompt of turn {i} is not a prefix of the "
                                "full rendering, so assistant tokens cannot be located")
        if not full.startswith(end_text):
            raise TemplateError(f"the rendering up to turn {i} is not a prefix of the full rendering")
        spans.append((len(start_text), len(end_text)))
    return full, spans


def answer_token_mask(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token ids of `text` and a 0/1 mask of the tokens that start inside an answer span."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(s <= start < e for s, e in spans)) for start, _ in encoded["offset_mapping"]]
    return encoded["input_ids"], mask
