"""The format/template gate: every record has the detected format's shape and a sane turn order.

With a tokenizer, every conversation is also encoded through the tokenizer's own chat template
(the single source of truth) exactly as training encodes it (`ChatTemplate.encode`): a template
that rejects a conversation (its own `raise_exception`, e.g. "System role not supported"), one whose
answers cannot be located, or an encoding with no answer token is a violation. What the template
does to the data is counted in `template_notes` (reasoning it deletes, text it injects into
answers, history it renders differently, a stop token it does not write), and the share of
examples longer than `max_length` tokens is reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from data_checks.chat_template import ChatTemplate, Encoding, TemplateError
from data_checks.formats import consistency_problem, record_conversations, record_problem
from data_checks.gate import GateContext, GateSpec
from data_checks.html_parts import facts_table, table
from data_checks.progress import progress
from data_checks.records import LoadedData

# What each note in `template_notes` means, for the report and the model card.
NOTE_TEXT = {
    "reasoning_reinserted": "the template deletes reasoning from assistant turns; it is trained where the model "
                            "writes it, as <think>...</think> before the answer",
    "reasoning_dropped_from_history": "the template drops reasoning from earlier turns; each such turn is "
                                      "trained as its own example, with its reasoning, in the context the "
                                      "model sees at inference",
    "history_rewritten": "the template renders earlier turns differently from how they were generated (system "
                         "prompt folded into the last user turn, a different end marker, ...); each such turn "
                         "is trained as its own example",
    "history_tokenised_differently": "earlier turns tokenise differently inside the history; each turn is "
                                     "trained as its own example",
    "empty_reasoning_trained": "the template puts an empty reasoning block (<think></think>) before answers "
                               "without reasoning, and it is trained: the model learns to skip thinking "
                               "(set data.chat_template_kwargs.enable_thinking=false to keep it in the prompt)",
    "eos_appended": "the template writes no stop token after an answer; EOS is appended and trained",
    "generation_markers": "the template's {% generation %} markers give the answer mask",
}


def load_chat_template(tokenizer: str, template: str | None = None,
                       template_kwargs: dict[str, Any] | None = None) -> ChatTemplate:
    """The chat template of the tokenizer at `tokenizer` (a local dir or hub ID; imports transformers), its template
    replaced by `template` (the text) when given, rendering with `template_kwargs`: `--tokenizer`,
    `--chat-template`, `--chat-template-kwargs`."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tokenizer)
    if template:
        loaded.chat_template = template
    return ChatTemplate(loaded, template_kwargs)


def as_chat_template(tokenizer: Any, template_kwargs: dict[str, Any] | None = None) -> ChatTemplate | None:
    """A ChatTemplate for `tokenizer` (passed through when it already is one; None stays None)."""
    if tokenizer is None or isinstance(tokenizer, ChatTemplate):
        return tokenizer
    return ChatTemplate(tokenizer, template_kwargs)


MAX_LISTED = 100  # violations a report lists (all are counted)


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
    template_notes: dict[str, int] = field(default_factory=dict)  # note -> records it applies to

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "format": self.format, "checked": self.checked,
                "violation_rate": self.violation_rate, "max_violation_rate": self.max_violation_rate,
                "violations": self.violations, "truncated": self.truncated,
                "truncation_rate": self.truncation_rate, "max_length": self.max_length,
                "template_notes": {k: {"records": v, "meaning": NOTE_TEXT.get(k, k)}
                                   for k, v in sorted(self.template_notes.items())}}


@dataclass(frozen=True)
class RecordEncoding:
    """How one record fared through the chat template, as this gate judges it: the problem (None when it
    encodes), whether an example is longer than `max_length` tokens, and what the template did (`notes`).
    Training's tokenisation records one per record (`gatetune/tokenized.py`) so this gate can read it
    instead of rendering every chat a second time."""

    problem: str | None
    truncated: bool = False
    notes: frozenset[str] = frozenset()


def encode_conversation(chat: ChatTemplate, conversation: list[dict[str, Any]],
                        max_length: int | None) -> tuple[Encoding | None, RecordEncoding]:
    """A conversation ending on an assistant turn through `ChatTemplate.encode`, and the gate's verdict on it:
    the one rendering training and the template gate share."""
    try:
        encoding = chat.encode(conversation)
    except TemplateError as exc:
        return None, RecordEncoding(f"chat template: {exc}")
    if not any(any(e.mask) for e in encoding.examples):
        return encoding, RecordEncoding("the encoded conversation has no assistant token to train on")
    truncated = max_length is not None and max(len(e.input_ids) for e in encoding.examples) > max_length
    return encoding, RecordEncoding(None, truncated, frozenset(encoding.notes))


def _rendering_problem(chat: ChatTemplate, record: dict[str, Any], fmt: str, max_length: int | None,
                       notes: Counter) -> tuple[str | None, bool]:
    """(problem, truncated) for one record encoded through the chat template as training encodes it."""
    truncated = False
    conversations = record_conversations(record, fmt)
    record_notes: set[str] = set()
    for conversation in conversations:
        if conversation[-1]["role"] == "assistant":
            _, verdict = encode_conversation(chat, conversation, max_length)
            if verdict.problem is not None:
                return verdict.problem, truncated
            record_notes |= verdict.notes
            truncated = truncated or verdict.truncated
            continue
        try:  # prompt-only: it must render with a generation prompt
            length = len(chat.tokenizer(chat.prompt_text(conversation), add_special_tokens=False)["input_ids"])
        except TemplateError as exc:
            return f"chat template: {exc}", truncated
        truncated = truncated or (max_length is not None and length > max_length)
    notes.update(record_notes)
    if not conversations and max_length is not None:
        text = " ".join(str(record.get(k, "")) for k in ("prompt", "completion", "chosen", "text"))
        truncated = len(chat.tokenizer(text, add_special_tokens=False)["input_ids"]) > max_length
    return None, truncated


def template_problem(record: dict[str, Any], fmt: str, tokenizer: Any = None,
                     max_length: int | None = None, notes: Counter | None = None) -> tuple[str | None, bool]:
    """(problem, truncated) for one record: its shape as `fmt`, its consistency and, with a tokenizer (or a
    ChatTemplate), its encoding through the chat template (`truncated`: longer than `max_length` tokens)."""
    problem = record_problem(record, fmt) or consistency_problem(record, fmt)
    if problem is None and tokenizer is not None:
        return _rendering_problem(as_chat_template(tokenizer), record, fmt, max_length,
                                  notes if notes is not None else Counter())
    return problem, False


class TemplateCheck:
    """The template gate fed one record at a time (`add`), then `result()`; keeps counts and the
    first `max_listed` violations, never the records. `encoded` (record i's `RecordEncoding`, or None where
    training did not encode it the gate's way) is what training's tokenisation found: those records are not
    rendered again."""

    def __init__(self, fmt: str, tokenizer: Any = None, max_violation_rate: float = 0.0,
                 max_length: int | None = None, max_listed: int = MAX_LISTED,
                 encoded: Sequence[RecordEncoding | None] | None = None) -> None:
        self.fmt, self.tokenizer, self.max_length = fmt, as_chat_template(tokenizer), max_length
        self.notes: Counter = Counter()
        self.max_violation_rate, self.max_listed = max_violation_rate, max_listed
        self.encoded = encoded if self.tokenizer is not None else None
        self.checked = self.count = self.truncated = self.reused = 0
        self.violations: list[dict[str, Any]] = []

    def _problem(self, record: dict[str, Any]) -> tuple[str | None, bool]:
        verdict = self.encoded[self.checked] if self.encoded is not None else None
        if verdict is None:
            return template_problem(record, self.fmt, self.tokenizer, self.max_length, self.notes)
        self.reused += 1
        problem = record_problem(record, self.fmt) or consistency_problem(record, self.fmt) or verdict.problem
        if problem is None:
            self.notes.update(verdict.notes)
        return problem, problem is None and verdict.truncated

    def add(self, record: dict[str, Any], line: int, text: str | None = None) -> None:
        problem, truncated = self._problem(record)
        self.truncated += truncated
        if problem is not None:
            self.count += 1
            if len(self.violations) < self.max_listed:
                self.violations.append({"record": self.checked, "line": line, "problem": problem})
        self.checked += 1

    def result(self, against: Any = None) -> TemplateResult:
        n = self.checked
        rate = self.count / n if n else 0.0
        measured = self.tokenizer is not None and self.max_length is not None
        return TemplateResult(rate <= self.max_violation_rate, self.fmt, n, rate, self.max_violation_rate,
                              self.violations, self.truncated if measured else None,
                              self.truncated / n if measured and n else None, self.max_length if measured else None,
                              dict(self.notes))


def check_template(data: LoadedData, fmt: str, tokenizer: Any = None, max_violation_rate: float = 0.0,
                   max_length: int | None = None, max_listed: int = MAX_LISTED) -> TemplateResult:
    """Check every record of `data` against `fmt` (and the tokenizer's chat template, if given)."""
    check = TemplateCheck(fmt, tokenizer, max_violation_rate, max_length, max_listed)
    for index, record in enumerate(progress(data.records, desc="template check")):
        check.add(record, data.lines[index])
    return check.result()


def _start(context: GateContext) -> TemplateCheck:
    return TemplateCheck(context.fmt, context.tokenizer, context.config.template.max_violation_rate,
                         context.max_length, encoded=context.encoded)


def _summary(result: dict[str, Any]) -> str:
    detail = f"violation rate {result['violation_rate']:.2%} (max {result['max_violation_rate']:.2%})"
    if result["violations"]:
        first = result["violations"][0]
        detail += f"; first: line {first['line']}: {first['problem']}"
    if result.get("truncation_rate") is not None:
        detail += f"; {result['truncation_rate']:.2%} longer than {result['max_length']} tokens"
    return detail


def _html_section(result: dict[str, Any]) -> str:
    facts = [("violation rate", f"{result['violation_rate']:.2%}"), ("allowed", f"{result['max_violation_rate']:.2%}")]
    if result.get("truncation_rate") is not None:
        facts.append((f"longer than {result['max_length']} tokens", f"{result['truncation_rate']:.2%}"))
    rows = [[v["record"], v["line"], v["problem"]] for v in result["violations"][:50]]
    return facts_table(facts) + table(["record", "line", "problem"], rows)


GATE = GateSpec("template", _start, _summary, _html_section)
