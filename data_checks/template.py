"""The format/template gate: every record has the detected format's shape and a sane turn order.

With a tokenizer, chat records are also rendered through the tokenizer's own chat
template (the single source of truth), so a template that rejects a conversation is
reported here rather than half-way into training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_checks.formats import consistency_problem, record_problem
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

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "format": self.format, "checked": self.checked,
                "violation_rate": self.violation_rate, "max_violation_rate": self.max_violation_rate,
                "violations": self.violations}


def _conversations(record: dict[str, Any], fmt: str) -> list[list[dict[str, Any]]]:
    if fmt == "chat":
        return [record["messages"]]
    prompt = record.get("prompt")
    prompt = prompt if isinstance(prompt, list) else []
    answers = [record.get(k) for k in ("completion", "chosen", "rejected")]
    return [prompt + a for a in answers if isinstance(a, list)] or ([prompt] if prompt else [])


def check_template(data: LoadedData, fmt: str, tokenizer: Any = None, max_violation_rate: float = 0.0,
                   max_listed: int = 100) -> TemplateResult:
    """Check every record of `data` against `fmt` (and the tokenizer's chat template, if given)."""
    violations: list[dict[str, Any]] = []
    count = 0
    for index, record in enumerate(progress(data.records, desc="template check")):
        problem = record_problem(record, fmt) or consistency_problem(record, fmt)
        if problem is None and tokenizer is not None:
            for conversation in _conversations(record, fmt):
                try:
                    tokenizer.apply_chat_template(conversation, tokenize=False)
                except Exception as exc:  # the template's own error message is what the user needs
                    problem = f"the tokenizer's chat template rejects this conversation: {exc}"
                    break
        if problem is not None:
            count += 1
            if len(violations) < max_listed:
                violations.append({"record": index, "line": data.lines[index], "problem": problem})
    rate = count / len(data.records) if data.records else 0.0
    return TemplateResult(rate <= max_violation_rate, fmt, len(data.records), rate, max_violation_rate, violations)
