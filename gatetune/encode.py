"""One record into training rows: the trainable shape of a record (`to_example`) and its tokens with the
loss mask (`tokenize_example`, `encode_record`). The one way a record becomes tokens, for the one-record path
and for the forked workers of `gatetune/tokenized.py`. A conversation trained on its answers is encoded by
`data_checks.template.encode_conversation`, the template gate's own call, so the gate can take training's
verdict on the record instead of rendering the chat again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_checks.chat_template import TemplateError
from data_checks.formats import record_conversations
from data_checks.template import RecordEncoding, as_chat_template, encode_conversation
from gatetune.errors import UserError


def to_example(record: dict[str, Any], fmt: str) -> dict[str, Any]:
    """One record in one of the three trainable shapes: a conversation (`messages`, the same mapping the
    template gate checks), a plain `prompt`+`completion`, or `text`."""
    if fmt == "text":
        return {"text": record["text"]}
    conversations = record_conversations(record, fmt)
    if fmt in ("chat", "alpaca", "prompt_completion") and conversations:
        return {"messages": conversations[0]}
    if fmt == "prompt_completion":
        return {"prompt": record["prompt"], "completion": record["completion"]}
    raise ValueError(f"format {fmt!r} has no SFT example shape")


def _row(ids: list[int], mask: list[int], max_length: int) -> dict[str, Any]:
    return {"input_ids": ids[:max_length], "assistant_masks": mask[:max_length], "truncated": len(ids) > max_length}


def tokenize_example(example: dict[str, Any], tokenizer: Any, max_length: int, train_on: str,
                     notes: set[str] | None = None) -> list[dict[str, Any]]:
    """The training rows of one example: `input_ids` plus `assistant_masks` (1 where the loss applies) and
    whether it was truncated. A conversation gives one row per group of turns (`ChatTemplate.encode`);
    `tokenizer` may be a ChatTemplate carrying `data.chat_template_kwargs`; `notes` collects what the
    template did."""
    chat = as_chat_template(tokenizer)
    tok = chat.tokenizer
    if "prompt" in example:
        # Tokenised apart, so a prompt ending in a space cannot merge into the first answer token.
        prompt_ids = tok(example["prompt"], add_special_tokens=False)["input_ids"]
        answer_ids = tok(example["completion"] + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
        mask = [int(train_on == "all")] * len(prompt_ids) + [1] * len(answer_ids)
        return [_row(prompt_ids + answer_ids, mask, max_length)]
    if "text" in example:
        ids = tok(example["text"] + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
        return [_row(ids, [1] * len(ids), max_length)]
    try:
        if train_on == "all":
            ids = tok(chat.full_text(example["messages"]), add_special_tokens=False)["input_ids"]
            return [_row(ids, [1] * len(ids), max_length)]
        encoding = chat.encode(example["messages"])
    except TemplateError as exc:
        raise UserError(str(exc)) from None
    if notes is not None:
        notes |= encoding.notes
    return [_row(e.input_ids, e.mask, max_length) for e in encoding.examples]


@dataclass
class EncodedRecord:
    """A record's training rows; `verdict`, the template gate's judgement of the same encoding (None when the
    rows came another way, e.g. `train_on=all` or plain text); `notes`, what the template did."""

    rows: list[dict[str, Any]]
    verdict: RecordEncoding | None = None
    notes: set[str] = field(default_factory=set)


def encode_record(record: dict[str, Any], fmt: str, chat: Any, max_length: int, train_on: str) -> EncodedRecord:
    """`tokenize_example(to_example(record, fmt), ...)` plus the gate's verdict. A conversation the template
    rejects gives no rows and a verdict naming the problem (not an error: the gate, or the caller, decides);
    any other input error is a UserError as in `tokenize_example`."""
    chat = as_chat_template(chat)
    conversations = record_conversations(record, fmt) if fmt in ("chat", "alpaca", "prompt_completion") else []
    if train_on == "all" or len(conversations) != 1 or conversations[0][-1]["role"] != "assistant":
        notes: set[str] = set()
        return EncodedRecord(tokenize_example(to_example(record, fmt), chat, max_length, train_on, notes), None, notes)
    encoding, verdict = encode_conversation(chat, conversations[0], max_length)
    if encoding is None:
        return EncodedRecord([], verdict)
    return EncodedRecord([_row(e.input_ids, e.mask, max_length) for e in encoding.examples], verdict,
                         set(encoding.notes))
