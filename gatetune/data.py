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
from typing import Any, NamedTuple

from data_checks import DataError, LoadedData, read_records, record_problems
from data_checks.chat_template import ChatTemplate
from data_checks.formats import resolve_format
from data_checks.template import NOTE_TEXT
from gatetune.config import DataConfig, RecipeConfig, check_format_fits
from gatetune.encode import encode_record, to_example, tokenize_example  # noqa: F401 (the row functions, used from here too)

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


@dataclass
class TokenizeStats:
    records: int = 0
    examples: int = 0
    truncated: int = 0
    dropped_no_answer_tokens: int = 0
    tokens: int = 0
    answer_tokens: int = 0
    template_rejected: int = 0  # records the template rejects, left out (the template gate reports them)
    template_notes: Counter = field(default_factory=Counter)  # ChatTemplate.encode notes -> records

    def warn(self, name: str, max_length: int) -> None:
        if self.template_rejected:
            log.warning("%s: the chat template rejects %d of %d records; they are left out of training (the "
                        "template gate's report lists them)", name, self.template_rejected, self.records)
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


def tokenize_split(data: LoadedData, fmt: str, tokenizer: Any, max_length: int, train_on: str,
                   name: str, template_kwargs: dict[str, Any] | None = None, cache: bool = True,
                   processes: int | None = None, strict: bool = True) -> tuple[Any, TokenizeStats, Any]:
    """Every record's rows (`encode_record`) as an Arrow-backed Dataset with a `length` column, tokenised
    over `processes` (default: the cores) with a progress bar and cached by content (`gatetune/tokenized.py`),
    the counts, and each record's template verdict (`RecordVerdicts`, what the template gate reads); examples
    left with no answer token are dropped. A record the template rejects is an error naming its file and line
    when `strict`, else it is left out (and counted) for the template gate to report."""
    from gatetune.tokenized import tokenized_split

    chat = tokenizer if isinstance(tokenizer, ChatTemplate) else ChatTemplate(tokenizer, template_kwargs)
    rows, counts, verdicts = tokenized_split(data, fmt, chat, max_length, train_on, name, cache, processes, strict)
    stats = TokenizeStats(**{k: v for k, v in counts.items() if k != "template_notes"},
                          template_notes=Counter(counts["template_notes"]))
    stats.warn(name, max_length)
    if not len(rows) and not stats.template_rejected:
        raise DataError(data.path, None, f"no {name} example has an answer token left after truncation to "
                        f"data.max_length={max_length}")
    return rows, stats, verdicts


class ObjectiveRows(NamedTuple):
    """What an objective's `rows` hook gives: the train and eval rows its TRL trainer takes, what the summary's
    `data` says of them, and the per-record template verdicts the template gate may read instead of rendering
    each chat again (None when the rows did not come from the gate's rendering)."""

    train: Any
    eval: Any
    info: dict[str, Any]
    verdicts: Any = None


def preference_rows(data: LoadedData, template_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows for TRL's DPOTrainer: prompt (when given), chosen, rejected, as strings or message lists; TRL renders
    conversational rows with each row's `chat_template_kwargs` (data.chat_template_kwargs)."""
    keys = ("prompt", "chosen", "rejected") if all("prompt" in r for r in data.records) else ("chosen", "rejected")
    extra = {"chat_template_kwargs": dict(template_kwargs)} if template_kwargs else {}
    return [{**{k: record[k] for k in keys}, **extra} for record in data.records]


def prompt_rows(data: LoadedData) -> list[dict[str, Any]]:
    """Rows for TRL's GRPOTrainer: the prompt plus every other column, which reward functions receive."""
    return [dict(record) for record in data.records]


def sft_rows(d: DataConfig, splits: DataSplits, chat: ChatTemplate, gated: bool = False) -> ObjectiveRows:
    """SFT's rows (`ObjectiveSpec.rows`): Datasets of token ids with answer masks, what the summary says, and the
    train split's template verdicts. `gated`: the template gate judges the train split (with those verdicts),
    so a record the template rejects is its violation rather than an error here."""
    max_length, train_on, cache, processes = d.max_length, d.train_on.value, d.cache_tokenized, d.tokenize_processes
    train, stats, verdicts = tokenize_split(splits.train, splits.format, chat, max_length, train_on, "train",
                                            cache=cache, processes=processes, strict=not gated)
    evaluation, _, _ = tokenize_split(splits.eval, splits.format, chat, max_length, train_on, "eval", cache=cache,
                                      processes=processes)
    info = {"truncated": stats.truncated, "dropped_no_answer_tokens": stats.dropped_no_answer_tokens,
            "train_records": stats.records, "template_notes": dict(sorted(stats.template_notes.items()))}
    if stats.template_rejected:
        info["template_rejected"] = stats.template_rejected
    return ObjectiveRows(train, evaluation, info, verdicts)


def dpo_rows(d: DataConfig, splits: DataSplits, chat: ChatTemplate, gated: bool = False) -> ObjectiveRows:
    """DPO's rows: TRL tokenises preference rows itself, with the template arguments."""
    return ObjectiveRows(preference_rows(splits.train, chat.kwargs), preference_rows(splits.eval, chat.kwargs), {})


def grpo_rows(d: DataConfig, splits: DataSplits, chat: ChatTemplate, gated: bool = False) -> ObjectiveRows:
    """GRPO's rows: each prompt with every other column, for the rewards."""
    return ObjectiveRows(prompt_rows(splits.train), prompt_rows(splits.eval), {})
