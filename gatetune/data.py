"""Load the training data, check every record, turn it into tokens with a loss mask.

Records are read by `data_checks.read_records` (one reader for the gates and training),
checked with the same per-record rules, converted to one of three shapes
(`messages`, `prompt`+`completion`, `text`) and tokenised here, so the loss mask and
the truncation counts are ours to report rather than hidden inside a trainer.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from data_checks import DataError, LoadedData, read_records, record_problems
from data_checks.chat_template import ChatTemplate, TemplateError
from data_checks.formats import record_conversations, resolve_format
from data_checks.template import NOTE_TEXT, as_chat_template
from gatetune.config import DataConfig, RecipeConfig, check_format_fits
from gatetune.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class DataSplits:
    train: LoadedData
    eval: LoadedData
    format: str
    eval_source: str  # "file" or "held_out"


def _check_records(data: LoadedData, fmt: str) -> None:
    problems = record_problems(data.records, data.lines, fmt)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more bad records)" if len(problems) > 1 else ""
        raise DataError(data.path, first.line, f"{first.problem}{more}")


def _subset(data: LoadedData, indices: list[int]) -> LoadedData:
    return LoadedData(data.path, [data.records[i] for i in indices], [data.lines[i] for i in indices], data.kind)


def load_splits(d: DataConfig, recipe: RecipeConfig, seed: int) -> DataSplits:
    """Read, format-check and split the data the `data` node names (the format must fit the recipe's objective;
    `seed` picks the held-out records); raise DataError on bad input."""
    train = read_records(d.path, split=d.split)
    fmt = resolve_format(train.records, d.format.value, train.path, train.lines[0])
    check_format_fits(recipe, fmt)
    _check_records(train, fmt)
    if d.max_examples is not None and len(train) > d.max_examples:
        train = _subset(train, list(range(d.max_examples)))
    if d.eval_path is not None:
        evaluation = read_records(d.eval_path, split=d.eval_split)
        _check_records(evaluation, fmt)
        return DataSplits(train, evaluation, fmt, "file")
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(train) * d.eval_fraction))
    if len(train) - n_eval < 1:
        raise DataError(train.path, None, f"only {len(train)} records: too few to hold out an eval split")
    return DataSplits(_subset(train, sorted(order[n_eval:])), _subset(train, sorted(order[:n_eval])), fmt, "held_out")


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


@dataclass
class TokenizeStats:
    records: int = 0
    examples: int = 0
    truncated: int = 0
    dropped_no_answer_tokens: int = 0
    tokens: int = 0
    answer_tokens: int = 0
    template_notes: Counter = field(default_factory=Counter)  # ChatTemplate.encode notes -> records

    def warn(self, name: str, max_length: int) -> None:
        if self.truncated:
            log.warning("%s: %d of %d examples are longer than data.max_length=%d and were truncated",
                        name, self.truncated, self.examples, max_length)
        if self.dropped_no_answer_tokens:
            log.warning("%s: truncation removed every answer token from %d examples; they were dropped "
                        "(raise data.max_length to keep them)", name, self.dropped_no_answer_tokens)
        if self.examples != self.records:
            log.info("%s: %d records became %d examples (one per assistant turn whose history the template "
                     "renders differently)", name, self.records, self.examples)
        for note, count in sorted(self.template_notes.items()):
            if note != "generation_markers":
                log.warning("%s: %d records: %s", name, count, NOTE_TEXT.get(note, note))


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


def tokenize_split(data: LoadedData, fmt: str, tokenizer: Any, max_length: int, train_on: str,
                   name: str, template_kwargs: dict[str, Any] | None = None
                   ) -> tuple[list[dict[str, list[int]]], TokenizeStats]:
    """Tokenise every record (with a progress bar); drop examples left with no answer token. A template
    error names the file and line of the record."""
    from tqdm.auto import tqdm

    chat = tokenizer if isinstance(tokenizer, ChatTemplate) else ChatTemplate(tokenizer, template_kwargs)
    stats = TokenizeStats()
    rows = []
    for index, record in enumerate(tqdm(data.records, desc=f"tokenising {name}", leave=False)):
        notes: set[str] = set()
        try:
            examples = tokenize_example(to_example(record, fmt), chat, max_length, train_on, notes)
        except UserError as exc:
            raise DataError(data.path, data.lines[index], str(exc)) from None
        stats.records += 1
        stats.template_notes.update(notes)
        for row in examples:
            stats.examples += 1
            stats.truncated += row.pop("truncated")
            if not any(row["assistant_masks"]):
                stats.dropped_no_answer_tokens += 1
                continue
            stats.tokens += len(row["input_ids"])
            stats.answer_tokens += sum(row["assistant_masks"])
            rows.append(row)
    stats.warn(name, max_length)
    if not rows:
        raise DataError(data.path, None, f"no {name} example has an answer token left after truncation to "
                        f"data.max_length={max_length}")
    return rows, stats


def preference_rows(data: LoadedData, template_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows for TRL's DPOTrainer: prompt (when given), chosen, rejected, as strings or message lists; TRL renders
    conversational rows with each row's `chat_template_kwargs` (data.chat_template_kwargs)."""
    keys = ("prompt", "chosen", "rejected") if all("prompt" in r for r in data.records) else ("chosen", "rejected")
    extra = {"chat_template_kwargs": dict(template_kwargs)} if template_kwargs else {}
    return [{**{k: record[k] for k in keys}, **extra} for record in data.records]


def prompt_rows(data: LoadedData) -> list[dict[str, Any]]:
    """Rows for TRL's GRPOTrainer: the prompt plus every other column, which reward functions receive."""
    return [dict(record) for record in data.records]


def sft_rows(d: DataConfig, splits: DataSplits, chat: ChatTemplate) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """SFT's rows (`ObjectiveSpec.rows`): token ids with answer masks, and what the summary says of them."""
    max_length, train_on = d.max_length, d.train_on.value
    train, stats = tokenize_split(splits.train, splits.format, chat, max_length, train_on, "train")
    evaluation, _ = tokenize_split(splits.eval, splits.format, chat, max_length, train_on, "eval")
    return train, evaluation, {"truncated": stats.truncated, "dropped_no_answer_tokens": stats.dropped_no_answer_tokens,
                               "train_records": stats.records,
                               "template_notes": dict(sorted(stats.template_notes.items()))}


def dpo_rows(d: DataConfig, splits: DataSplits, chat: ChatTemplate) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """DPO's rows: TRL tokenises preference rows itself, with the template arguments."""
    return preference_rows(splits.train, chat.kwargs), preference_rows(splits.eval, chat.kwargs), {}


def grpo_rows(d: DataConfig, splits: DataSplits, chat: ChatTemplate) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """GRPO's rows: each prompt with every other column, for the rewards."""
    return prompt_rows(splits.train), prompt_rows(splits.eval), {}
