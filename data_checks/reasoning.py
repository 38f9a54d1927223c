"""Reasoning in assistant messages: where a record keeps it, and how a chat template is given it.

A record may carry an assistant turn's reasoning in a field (`reasoning_content` as Qwen3's template
and vLLM's reasoning parsers name it, `reasoning`, or `thinking` as GPT-OSS's template names it) or
inline, as `<think>...</think>` before the answer in `content`. Templates differ in which of these
they read; `ChatTemplate.reasoning_style` probes the template once and `with_reasoning` hands every
message over in the form that template reads.
"""

from __future__ import annotations

from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")
INLINE, REINSERT = "inline", "reinsert"


def reasoning_styles() -> tuple[str, ...]:
    """The forms a template may read reasoning in, in the order they are tried."""
    return (*REASONING_FIELDS, INLINE)


def split_reasoning(message: dict[str, Any]) -> tuple[str, str | None]:
    """(answer content, reasoning or None) of a message, from a reasoning field or inline `<think>` tags."""
    content = message.get("content") or ""
    for name in REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value.strip():
            return content, value
    if THINK_CLOSE in content:
        head, _, tail = content.partition(THINK_CLOSE)
        reasoning = head.split(THINK_OPEN, 1)[-1].strip("\n")
        return tail.lstrip("\n"), reasoning if reasoning.strip() else None
    return content, None


def reasoning_field_problem(message: dict[str, Any], where: str) -> str | None:
    """A reasoning field that is not a string, or reasoning on a turn other than the assistant's."""
    for name in REASONING_FIELDS:
        if name in message and message[name] is not None:
            if not isinstance(message[name], str):
                return f"{where}.{name} is {type(message[name]).__name__}, expected a string"
            if message.get("role") != "assistant":
                return f"{where}.{name}: only assistant turns carry reasoning"
    return None


def with_reasoning(message: dict[str, Any], style: str) -> dict[str, Any]:
    """The message as a template with reasoning style `style` reads it (other keys kept as they are)."""
    plain = {k: v for k, v in message.items() if k not in REASONING_FIELDS}
    if message.get("role") != "assistant":
        return plain
    content, reasoning = split_reasoning(message)
    plain["content"] = content
    if reasoning is None or style == REINSERT:
        return plain
    if style == INLINE:
        plain["content"] = f"{THINK_OPEN}\n{reasoning.strip(chr(10))}\n{THINK_CLOSE}\n\n{content}"
        return plain
    plain[style] = reasoning
    return plain
