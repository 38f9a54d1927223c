"""The format/template gate: every record has the detected format's shape and a sane turn order.

With a tokenizer, every conversation is also rendered through the tokenizer's own chat template
(the single source of truth): a template that rejects a conversation, a generation prompt that is
not a prefix of the full rendering, or a rendering with no answer token is a violation, and the
share of examples longer than `max_length` tokens is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_checks.chat_template import TemplateError, answer_spans, answer_token_mask
from data_checks.formats import alpaca_to_messages, consistency_problem, record_problem
from data_checks.progress import progress
from data_checks.records import LoadedData


@dataclass
class TemplateResult:
    passed: bool
    format: str
    checked: int
    violation_rate: float
    max_violation_rate: float
    violations: list[dict[str, Any]] = field(default_factory=list)
    truncated: int | None = None
    truncation_rate: float | None = None
    max_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "format": self.format, "checked": self.checked,
                "violation_rate": self.violation_rate, "max_violation_rate": self.max_violation_rate,
                "violations": self.violations, "truncated": self.truncated,
                "truncation_rate": self.truncation_rate, "max_length": self.max_length}


def _conversations(record: dict[str, Any], fmt: str) -> list[list[dict[str, Any]]]:
    """The chat-template conversations a record turns into (none for plain-text formats)."""
    if fmt == "chat":
        return [record["messages"]]
    if fmt == "alpaca":
        return [alpaca_to_messages(record)]
    prompt = record.get("prompt")
    if not isinstance(prompt, list):
        return []
    answers = [record.get(k) for k in ("completion", "chosen", "rejected")]
    return [prompt + a for a in answers if isinstance(a, list)] or [prompt]


def _rendering_problem(tokenizer: Any, record: dict[str, Any], fmt: str,
                       max_length: int | None) -> tuple[str | None, bool]:
    """(problem, truncated) for one record rendered through the tokenizer's chat template."""
    truncated = False
    for conversation in _conversations(record, fmt):
        try:
            if conversation[-1]["role"] != "assistant":  # prompt-only: it must render with a generation prompt
                text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
                spans = None
            else:
                text, spans = answer_spans(tokenizer, conversation)
        except TemplateError as exc:
            return f"chat template: {exc}", truncated
        except Exception as exc:  # the template's own error message is what the user needs
            return f"the tokenizer's chat template rejects this conversation: {exc}", truncated
        ids, mask = answer_token_mask(tokenizer, text, spans or [])
        if spans is not None and not any(mask):
            return "the rendered conversation has no assistant token to train on", truncated
        truncated = truncated or (max_length is not None and len(ids) > max_length)
    if not _conversations(record, fmt) and max_length is not None:
        text = " ".join(str(record.get(k, "")) for k in ("prompt", "completion", "chosen", "text"))
        truncated = len(tokenizer(text, add_special_tokens=False)["input_ids"]) > max_length
    return None, truncated


def template_problem(record: dict[str, Any], fmt: str, tokenizer: Any = None,
                     max_length: int | None = None) -> tuple[str | None, bool]:
    """(problem, truncated) for one record: its shape as `fmt`, its consistency and, with a tokenizer,
    its rendering through the chat template (`truncated`: longer than `max_length` tokens)."""
    problem = record_problem(record, fmt) or consistency_problem(record, fmt)
    if problem is None and tokenizer is not None:
        return _rendering_problem(tokenizer, record, fmt, max_length)
    return problem, False


class TemplateCheck:
    """The template gate fed one record at a time (`add`), then `result()`; keeps counts and the
    first `max_listed` violations, never the records."""

    def __init__(self, fmt: str, tokenizer: Any = None, max_violation_rate: float = 0.0,
                 max_length: int | None = None, max_listed: int = 100) -> None:
        self.fmt, self.tokenizer, self.max_length = fmt, tokenizer, max_length
        self.max_violation_rate, self.max_listed = max_violation_rate, max_listed
        self.checked = self.count = self.truncated = 0
        self.violations: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any], line: int) -> None:
        problem, truncated = template_problem(record, self.fmt, self.tokenizer, self.max_length)
        self.truncated += truncated
        if problem is not None:
            self.count += 1
            if len(self.violations) < self.max_listed:
                self.violations.append({"record": self.checked, "line": line, "problem": problem})
        self.checked += 1

    def result(self) -> TemplateResult:
        n = self.checked
        rate = self.count / n if n else 0.0
        measured = self.tokenizer is not None and self.max_length is not None
        return TemplateResult(rate <= self.max_violation_rate, self.fmt, n, rate, self.max_violation_rate,
                              self.violations, self.truncated if measured else None,
                              self.truncated / n if measured and n else None, self.max_length if measured else None)


def check_template(data: LoadedData, fmt: str, tokenizer: Any = None, max_violation_rate: float = 0.0,
                   max_length: int | None = None, max_listed: int = 100) -> TemplateResult:
    """Check every record of `data` against `fmt` (and the tokenizer's chat template, if given)."""
    check = TemplateCheck(fmt, tokenizer, max_violation_rate, max_length, max_listed)
    for index, record in enumerate(progress(data.records, desc="template check")):
        check.add(record, data.lines[index])
    return check.result()
