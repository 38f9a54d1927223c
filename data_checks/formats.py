"""Dataset formats, detected from a record's keys and validated record by record.

The names follow TRL's dataset-format vocabulary:

| format              | fields                                               |
|---------------------|------------------------------------------------------|
| `chat`              | `messages`: list of `{"role", "content"}` (OpenAI roles) |
| `alpaca`            | `instruction`, optional `input`, `output`            |
| `prompt_completion` | `prompt`, `completion` (strings or message lists)   |
| `preference`        | optional `prompt`, `chosen`, `rejected`              |
| `prompt`            | `prompt` only (prompt-only, for GRPO)                |
| `text`              | `text` (plain language modelling)                    |
| `classification`    | annotation rows (`item`, `annotator`, `label`): input of the agreement gate |

`record_problems` finds what makes a record unusable (a missing field, an unknown
role, empty content); `consistency_problems` finds what makes a usable record
suspicious (turn order, a preference pair whose two answers are the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from data_checks.reasoning import reasoning_field_problem

FORMATS = ("chat", "alpaca", "prompt_completion", "preference", "prompt", "text", "classification")
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class FormatProblem:
    """One problem with one record: its 0-based index, 1-based source line and what is wrong."""

    record: int
    line: int
    problem: str


def detect_format(record: dict[str, Any]) -> str | None:
    """Name the format a record's keys indicate, or None."""
    keys = set(record)
    if "messages" in keys:
        return "chat"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "prompt" in keys:
        return "prompt"
    if "text" in keys:
        return "text"
    if {"annotator", "label"} <= keys:
        return "classification"
    return None


def _message_list_problem(messages: Any, field: str) -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"field {field!r} must be a non-empty list of messages"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"{field}[{i}] is {type(message).__name__}, expected an object with 'role' and 'content'"
        if "role" not in message:
            return f"{field}[{i}] has no 'role'"
        if message["role"] not in ROLES:
            return f"{field}[{i}] has unknown role {message['role']!r} (expected one of {', '.join(ROLES)})"
        if "content" not in message:
            return f"{field}[{i}] has no 'content'"
        content = message["content"]
        if not isinstance(content, str):
            return f"{field}[{i}].content is {type(content).__name__}, expected a string"
        if not content.strip():
            return f"{field}[{i}] ({message['role']}) has empty content"
        problem = reasoning_field_problem(message, f"{field}[{i}]")
        if problem is not None:
            return problem
    return None


def _text_or_messages_problem(record: dict[str, Any], field: str, required: bool = True) -> str | None:
    if field not in record or record[field] is None:
        return f"missing field {field!r}" if required else None
    value = record[field]
    if isinstance(value, str):
        return None if value.strip() else f"field {field!r} is empty"
    if isinstance(value, list):
        return _message_list_problem(value, field)
    return f"field {field!r} is {type(value).__name__}, expected a string or a list of messages"


def _string_problem(record: dict[str, Any], field: str, required: bool = True, allow_empty: bool = False) -> str | None:
    if field not in record or record[field] is None:
        return f"missing field {field!r}" if required else None
    value = record[field]
    if not isinstance(value, str):
        return f"field {field!r} is {type(value).__name__}, expected a string"
    if not allow_empty and not value.strip():
        return f"field {field!r} is empty"
    return None


def record_problem(record: dict[str, Any], fmt: str) -> str | None:
    """What makes this record unusable as `fmt`, or None."""
    if fmt == "chat":
        if "messages" not in record:
            return "missing field 'messages'"
        problem = _message_list_problem(record["messages"], "messages")
        if problem is None and not any(m["role"] == "assistant" for m in record["messages"]):
            problem = "messages has no assistant turn"
        return problem
    if fmt == "alpaca":
        return (_string_problem(record, "instruction") or _string_problem(record, "input", False, True)
                or _string_problem(record, "output"))
    if fmt == "prompt_completion":
        return _text_or_messages_problem(record, "prompt") or _text_or_messages_problem(record, "completion")
    if fmt == "preference":
        return (_text_or_messages_problem(record, "prompt", required=False)
                or _text_or_messages_problem(record, "chosen") or _text_or_messages_problem(record, "rejected"))
    if fmt == "prompt":
        return _text_or_messages_problem(record, "prompt")
    if fmt == "text":
        return _string_problem(record, "text")
    if fmt == "classification":
        return None  # rows are checked field by field when judgements are read (data_checks/agreement/reading.py)
    raise ValueError(f"unknown format {fmt!r}")


def record_problems(records: list[dict[str, Any]], lines: list[int], fmt: str) -> list[FormatProblem]:
    """Every unusable record, in order."""
    found = []
    for index, record in enumerate(records):
        problem = record_problem(record, fmt)
        if problem is not None:
            found.append(FormatProblem(index, lines[index], problem))
    return found


def _turn_order_problem(messages: list[dict[str, Any]]) -> str | None:
    roles = [m["role"] for m in messages]
    if "system" in roles[1:]:
        return f"system message at position {roles.index('system', 1)}; it must come first"
    turns = [r for r in roles if r != "system"]
    if turns and turns[0] != "user":
        return f"conversation starts with {turns[0]!r}, expected 'user'"
    for a, b in zip(turns, turns[1:], strict=False):
        if a == b and a in ("user", "assistant"):
            return f"two {a!r} turns in a row"
    if turns and turns[-1] != "assistant":
        return f"conversation ends with {turns[-1]!r}; the last turn is not trained on"
    return None


ANSWER_FIELDS = {"prompt_completion": ("completion",), "preference": ("chosen", "rejected")}


def _answer_problem(record: dict[str, Any], fmt: str) -> str | None:
    """A message-list answer with no assistant turn, or a conversation (as the chat template gets it,
    `record_conversations`) whose turns are out of order: training would learn nothing from it."""
    fields = ANSWER_FIELDS[fmt]
    for key in fields:
        value = record[key]
        if isinstance(value, list) and not any(m["role"] == "assistant" for m in value):
            return f"{key} has no assistant turn, so nothing in it would be trained on"
    for key, conversation in zip(fields, record_conversations(record, fmt), strict=False):
        problem = _turn_order_problem(conversation)
        if problem is not None:
            return f"prompt + {key}: {problem}"
    return None


def consistency_problem(record: dict[str, Any], fmt: str) -> str | None:
    """What makes a usable record suspicious as `fmt`, or None."""
    if fmt == "chat":
        return _turn_order_problem(record["messages"])
    if fmt == "preference" and record["chosen"] == record["rejected"]:
        return "chosen and rejected are identical"
    if fmt in ANSWER_FIELDS:
        problem = _answer_problem(record, fmt)
        if problem is not None:
            return problem
    other = detect_format(record)
    if other is not None and other != fmt:
        return f"record looks like {other!r}, the rest of the dataset is {fmt!r}"
    return None


def alpaca_to_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """Alpaca `instruction`/`input`/`output` as a user/assistant conversation."""
    prompt = record["instruction"].strip()
    extra = (record.get("input") or "").strip()
    if extra:
        prompt = f"{prompt}\n\n{extra}"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"].strip()}]


def as_messages(value: str | list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """A message list as it is, or a string as one message of `role`."""
    return value if isinstance(value, list) else [{"role": role, "content": value}]


def record_conversations(record: dict[str, Any], fmt: str) -> list[list[dict[str, Any]]]:
    """The conversations a record is rendered as by the chat template: the one mapping from a record to
    a conversation, used by the template gate, training and evaluation alike.

    chat: its messages; alpaca: user instruction(+input), assistant output; prompt_completion with a
    message list on either side: prompt (a string becomes a user turn) + completion (a string becomes an
    assistant turn); preference with message lists: prompt + chosen and prompt + rejected; prompt-only
    with a message list: the prompt (rendered with a generation prompt). Plain-text records: none.
    """
    if fmt == "chat":
        return [record["messages"]]
    if fmt == "alpaca":
        return [alpaca_to_messages(record)]
    prompt = record.get("prompt")
    if fmt == "prompt_completion":
        completion = record["completion"]
        if isinstance(prompt, list) or isinstance(completion, list):
            return [as_messages(prompt, "user") + as_messages(completion, "assistant")]
        return []
    if fmt == "preference":
        answers = [record[k] for k in ("chosen", "rejected")]
        if not (isinstance(prompt, list) or any(isinstance(a, list) for a in answers)):
            return []
        head = as_messages(prompt, "user") if prompt is not None else []
        return [head + as_messages(a, "assistant") for a in answers]
    if fmt == "prompt":
        return [prompt] if isinstance(prompt, list) else []
    return []


def resolve_format(records: list[dict[str, Any]], requested: str, source: str, first_line: int = 1) -> str:
    """`requested` itself, or (for "auto") the format the first record's keys indicate."""
    from data_checks.errors import DataError

    if requested != "auto":
        if requested not in FORMATS:
            expected = ", ".join(FORMATS)
            raise DataError(source, None, f"unknown format {requested!r} (expected auto or one of {expected})")
        return requested
    fmt = detect_format(records[0]) if records else None
    if fmt is None:
        keys = ", ".join(sorted(records[0])) if records else "none"
        raise DataError(source, first_line, f"cannot tell the dataset format from the keys ({keys}); "
                        "expected messages, instruction/output, prompt/completion, prompt/chosen/rejected, "
                        "prompt or text (or set the format explicitly)")
    return fmt


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
    return "" if value is None else str(value)


def record_text(record: dict[str, Any], fmt: str, field: str | None = None) -> str:
    """The text a content gate (near-duplicates, PII) looks at in one record.

    chat: every turn's content joined; alpaca: instruction, input and output; prompt_completion:
    prompt + completion; preference: prompt + chosen; prompt: the prompt; text: the text.
    `field` names one field to use instead (its value flattened the same way).
    """
    if field is not None:
        return _flatten(record.get(field))
    keys = {"chat": ("messages",), "alpaca": ("instruction", "input", "output"),
            "prompt_completion": ("prompt", "completion"), "preference": ("prompt", "chosen"),
            "prompt": ("prompt",), "text": ("text",)}.get(fmt)
    if keys is None:
        return " ".join(_flatten(v) for v in record.values() if isinstance(v, (str, list)))
    return "\n".join(part for part in (_flatten(record.get(k)) for k in keys) if part)
