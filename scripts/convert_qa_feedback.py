"""QA-feedback's pairwise human judgments -> DPO preference rows (`prompt`, `chosen`, `rejected`).

Input: FineGrainedRLHF's `dev_feedback.json` (or `train_feedback.json`, same shape): a JSON list of
questions, each with `question`, `passages` (a list of `[title, sentence, sentence, ...]`), `prediction 1`
.. `prediction 4` (four sampled answers) and `preference`, six judgments in the order 1v2, 1v3, 1v4, 2v3,
2v4, 3v4: 1 = the first is preferred, 2 = the second, 0 = no preference (a tie).

Output: one JSONL row per judged pair, the preferred prediction as `chosen` and the other as `rejected`.
Ties are dropped and counted; so are pairs whose two answers are the same text (ignoring surrounding
whitespace), which carry no preference; so is a pair with an empty answer. Nothing else is filtered.

The prompt is the question followed by its passages, not the question alone. qa-feedback is ASQA
rebuilt as retrieval-grounded long-form QA: the four answers were sampled from a policy whose input was
the question plus these passages (upstream: "question: ... context: wikipage: TITLE text: ..."), the
answers copy facts from them nearly word for word, and the annotators judged them against the passages
(the fine-grained feedback cites passage and sentence ids). Trained on the question alone, DPO would
reward stating facts the prompt never gave, that is, hallucinating. The cost is length: prompts average
about 2,800 characters (roughly 700 tokens), so raise `data.max_length` when training (see
docs/preference_data.md). The prompt reads:

    Question: QUESTION

    Passage 1: TITLE
    SENTENCE SENTENCE ...

    Passage 2: ...

The sentences of a passage are joined by spaces as given; a first sentence that repeats the title as a
heading ("TITLE\\n\\n...") loses that heading, since the title is already on the line above.

By default the rows are standard (strings). `--conversational` writes message lists instead: the prompt
as one user message, chosen and rejected as one assistant message each, which DPO renders through the
model's chat template (what an instruct model wants).

Usage: python scripts/convert_qa_feedback.py IN.json OUT.jsonl [--conversational]
Exit status: 0 written, 2 unreadable or malformed input or unwritable output (one line, `path: problem`).
The input is never modified; the output appears only once complete (written to a temporary file, renamed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_checks.errors import DataError  # noqa: E402
from data_checks.report import write_jsonl_atomic  # noqa: E402

PAIRS = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))  # the order of the six `preference` judgments
PREDICTIONS = tuple(f"prediction {i}" for i in range(1, 5))


@dataclass
class Counts:
    questions: int = 0
    read: int = 0
    written: int = 0
    ties: int = 0
    identical: int = 0
    empty: int = 0

    def summary(self, source: str, out: str) -> str:
        return (f"{self.read} judged pairs read from {source} ({self.questions} questions): {self.written} written "
                f"to {out}, {self.ties} ties dropped, {self.identical} identical dropped, {self.empty} empty dropped")


def format_prompt(question: str, passages: list[list[str]]) -> str:
    """The question, then each passage as `Passage N: TITLE` and its sentences on the next line."""
    parts = [f"Question: {question.strip()}"]
    for number, (title, *sentences) in enumerate(passages, 1):
        title = title.strip()
        if sentences and sentences[0].startswith(f"{title}\n\n"):
            sentences = [sentences[0][len(title) + 2:], *sentences[1:]]
        text = " ".join(s.strip() for s in sentences if s.strip())
        parts.append(f"Passage {number}: {title}\n{text}" if text else f"Passage {number}: {title}")
    return "\n\n".join(parts)


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"is {type(record).__name__}, expected an object"
    for key in ("question", *PREDICTIONS):
        if not isinstance(record.get(key), str):
            return f"{key!r} is missing or not a string"
    if not record["question"].strip():
        return "'question' is empty"
    passages = record.get("passages")
    if not isinstance(passages, list) or not all(
            isinstance(p, list) and p and all(isinstance(s, str) for s in p) for p in passages):
        return "'passages' is missing or not a list of [title, sentence, ...] string lists"
    preference = record.get("preference")
    if (not isinstance(preference, list) or len(preference) != len(PAIRS)
            or not all(type(v) is int and v in (0, 1, 2) for v in preference)):
        return f"'preference' is {preference!r}, expected {len(PAIRS)} judgments, each 0, 1 or 2"
    return None


def load(path: str) -> list[dict[str, Any]]:
    """The questions in `path`, each checked; DataError (`path: problem`) on anything unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(records, list):
        raise DataError(path, None, f"expected a JSON list of questions, found {type(records).__name__}")
    for index, record in enumerate(records):
        problem = _record_problem(record)
        if problem is not None:
            raise DataError(path, None, f"question [{index}] (0-based): {problem}")
    return records


def convert(records: list[dict[str, Any]], conversational: bool = False,
            counts: Counts | None = None) -> Iterator[dict[str, Any]]:
    """One preference row per non-tied, non-identical judged pair; `counts` is filled in as rows are made."""
    counts = counts if counts is not None else Counts()
    for record in records:
        counts.questions += 1
        prompt = format_prompt(record["question"], record["passages"])
        for (a, b), judgment in zip(PAIRS, record["preference"], strict=True):
            counts.read += 1
            if judgment == 0:
                counts.ties += 1
                continue
            first, second = record[f"prediction {a}"], record[f"prediction {b}"]
            chosen, rejected = (first, second) if judgment == 1 else (second, first)
            if not chosen.strip() or not rejected.strip():
                counts.empty += 1
                continue
            if chosen.strip() == rejected.strip():
                counts.identical += 1
                continue
            counts.written += 1
            if conversational:
                yield {"prompt": [{"role": "user", "content": prompt}],
                       "chosen": [{"role": "assistant", "content": chosen}],
                       "rejected": [{"role": "assistant", "content": rejected}]}
            else:
                yield {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="QA-feedback pairwise judgments -> DPO preference JSONL "
                                     "(prompt = question + passages; ties and identical pairs dropped).")
    parser.add_argument("input", help="dev_feedback.json or train_feedback.json (FineGrainedRLHF qa-feedback)")
    parser.add_argument("output", help="the preference JSONL to write")
    parser.add_argument("--conversational", action="store_true",
                        help="write message lists (prompt: a user message; chosen/rejected: assistant messages)")
    args = parser.parse_args(argv)
    try:
        if Path(args.output).resolve() == Path(args.input).resolve():
            raise DataError(args.output, None, "is the input file; choose another output path")
        records = load(args.input)
        counts = Counts()
        rows = convert(records, args.conversational, counts)
        write_jsonl_atomic(args.output, rows)
    except DataError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(counts.summary(args.input, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
