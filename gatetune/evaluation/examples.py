"""The examples evaluation generates for: a prompt (messages, or a plain string) and what the data gives as
the answer, from the one record-to-conversation mapping the gate and training use
(`data_checks.formats.record_conversations`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from data_checks import LoadedData
from data_checks.formats import record_conversations


@dataclass
class EvalExample:
    line: int  # the record's line in its file
    prompt: Any  # a list of messages (rendered with the chat template) or a plain string
    answer: Optional[str]  # the answer the record gives (last assistant turn, output, completion, chosen), if any
    record: dict[str, Any]  # every column, for verifiers that read their own (answer, label, test, ...)


def _split_last_answer(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Optional[str]]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant":
            content = messages[i].get("content")
            return messages[:i], content if isinstance(content, str) else None
    return messages, None


def eval_example(record: dict[str, Any], line: int, fmt: str) -> Optional[EvalExample]:
    """The prompt up to the last answer and that answer; None for plain-text records (no prompt to give)."""
    if fmt == "text":
        return None
    if fmt == "prompt" and not isinstance(record.get("prompt"), list):
        return EvalExample(line, str(record["prompt"]), None, record)
    if fmt == "prompt_completion" and not record_conversations(record, fmt):
        return EvalExample(line, str(record["prompt"]), str(record["completion"]), record)
    if fmt == "preference" and not record_conversations(record, fmt):
        return EvalExample(line, str(record["prompt"]), str(record["chosen"]), record)
    conversations = record_conversations(record, fmt)
    if not conversations:
        return None
    prompt, answer = _split_last_answer(conversations[0])
    return EvalExample(line, prompt, answer, record) if prompt else None


def eval_examples(data: LoadedData, fmt: str, limit: int) -> list[EvalExample]:
    """The first `limit` examples of `data` that have a prompt."""
    examples = []
    for record, line in zip(data.records, data.lines, strict=True):
        example = eval_example(record, line, fmt)
        if example is not None:
            examples.append(example)
            if len(examples) == limit:
                break
    return examples
