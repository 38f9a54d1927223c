"""OpenAssistant message trees -> DPO preference rows from the human ranking of sibling replies.

Input: an OASST export in tree form (`*_tree.jsonl`, e.g. `en_100_tree.jsonl`): one tree per line,
`{"message_tree_id", "tree_state", "prompt": MESSAGE}`, where a MESSAGE has `message_id`, `role`
(`prompter` or `assistant`), `text`, `synthetic`, optional `rank` (0 = best among its siblings) and
`replies` (a list of MESSAGEs), plus fields this script ignores (`lang`, `emojis`, `review_result`, ...).

Output: conversational preference rows. For every prompter message with at least two ranked assistant
replies, each pair of those replies gives one row: `prompt` is the whole conversation from the tree's
root down to and including that prompter message (prompter -> user, assistant -> assistant), `chosen`
the better-ranked reply and `rejected` the worse one, each as a single assistant message. Replies
without a `rank` are not paired.

Pairing rule: all pairs, not best-vs-rest. OASST's `rank` is a full order merged from several human
rankings, so every pair in it is a human-backed comparison, and all pairs is how rankings become
comparisons for reward models (InstructGPT's K-choose-2; OASST's own reward-model training); best-vs-rest
would throw away the order among the rest (for 3 ranked replies: 3 pairs vs 2; for 4: 6 vs 3). Two
consequences, both visible in the counts: a prompt with many replies contributes many rows (k replies give
k(k-1)/2), and close calls (adjacent ranks) are included. `--min-rank-gap N` keeps only pairs whose ranks
differ by at least N (2 drops adjacent ranks, the least certain comparisons).

Every candidate pair is counted once, under the first of these that applies, so read = written + the rest:
synthetic (`--skip-synthetic`: the prompt path or either reply contains a message flagged `synthetic`,
OASST's model-written seed data), tie (equal ranks; the official exports have none, but a hand-made
file may), below the rank gap, identical (the two replies have the same text, ignoring surrounding
whitespace).

Usage: python scripts/convert_oasst_ranks.py IN.jsonl OUT.jsonl [--min-rank-gap 1] [--skip-synthetic]
Exit status: 0 written, 2 unreadable or malformed input, bad arguments or unwritable output (one line,
`path: problem` or `path:line: problem`). The input is never modified; the output appears only once
complete (written to a temporary file, renamed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_checks.errors import DataError  # noqa: E402
from data_checks.report import write_jsonl_atomic  # noqa: E402

ROLES = {"prompter": "user", "assistant": "assistant"}


@dataclass
class Counts:
    trees: int = 0
    prompts: int = 0  # prompter messages with at least two ranked assistant replies
    read: int = 0
    written: int = 0
    synthetic: int = 0
    ties: int = 0
    below_gap: int = 0
    identical: int = 0

    def summary(self, source: str, out: str) -> str:
        return (f"{self.read} ranked reply pairs read from {source} ({self.trees} trees, {self.prompts} prompter "
                f"messages with 2+ ranked replies): {self.written} written to {out}, {self.ties} ties dropped, "
                f"{self.identical} identical dropped, {self.below_gap} below the rank gap dropped, "
                f"{self.synthetic} synthetic dropped")


def _message_problem(message: Any, parent_role: str | None) -> str | None:
    if not isinstance(message, dict):
        return f"a message is {type(message).__name__}, expected an object"
    where = f"message {message.get('message_id', '?')}"
    role = message.get("role")
    if role not in ROLES:
        return f"{where} has role {role!r}, expected prompter or assistant"
    if parent_role is None and role != "prompter":
        return f"{where} is a tree root with role {role!r}, expected prompter"
    if role == parent_role:
        return f"{where} ({role}) replies to a {role} message; roles must alternate"
    if not isinstance(message.get("text"), str) or not message["text"].strip():
        return f"{where} has no text"
    rank = message.get("rank")
    if rank is not None and type(rank) is not int:
        return f"{where} has rank {rank!r}, expected an integer or null"
    if not isinstance(message.get("replies", []), list):
        return f"{where} has 'replies' that is not a list"
    return None


def _check_tree(tree: Any) -> str | None:
    if not isinstance(tree, dict) or not isinstance(tree.get("prompt"), dict):
        return "expected a tree object with a 'prompt' message"
    stack: list[tuple[Any, str | None]] = [(tree["prompt"], None)]
    while stack:
        message, parent_role = stack.pop()
        problem = _message_problem(message, parent_role)
        if problem is not None:
            return problem
        stack.extend((reply, message["role"]) for reply in message.get("replies", []))
    return None


def load(path: str) -> list[dict[str, Any]]:
    """The trees in `path`, each checked; DataError (`path:line: problem`) on anything unusable."""
    trees = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    tree = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(path, number, f"not JSON: {exc.msg} (column {exc.colno})") from None
                problem = _check_tree(tree)
                if problem is not None:
                    raise DataError(path, number, problem)
                trees.append(tree)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return trees


def _pairs(message: dict[str, Any], path: list[dict[str, str]], synthetic_path: bool, min_rank_gap: int,
           skip_synthetic: bool, counts: Counts) -> Iterator[dict[str, Any]]:
    path = [*path, {"role": ROLES[message["role"]], "content": message["text"]}]
    synthetic_path = synthetic_path or bool(message.get("synthetic"))
    replies = message.get("replies", [])
    if message["role"] == "prompter":
        ranked = sorted((r for r in replies if r["role"] == "assistant" and r.get("rank") is not None),
                        key=lambda r: r["rank"])
        counts.prompts += len(ranked) >= 2
        for better, worse in itertools.combinations(ranked, 2):
            counts.read += 1
            if skip_synthetic and (synthetic_path or better.get("synthetic") or worse.get("synthetic")):
                counts.synthetic += 1
            elif better["rank"] == worse["rank"]:
                counts.ties += 1
            elif worse["rank"] - better["rank"] < min_rank_gap:
                counts.below_gap += 1
            elif better["text"].strip() == worse["text"].strip():
                counts.identical += 1
            else:
                counts.written += 1
                yield {"prompt": path, "chosen": [{"role": "assistant", "content": better["text"]}],
                       "rejected": [{"role": "assistant", "content": worse["text"]}]}
    for reply in replies:
        yield from _pairs(reply, path, synthetic_path, min_rank_gap, skip_synthetic, counts)


def convert(trees: list[dict[str, Any]], min_rank_gap: int = 1, skip_synthetic: bool = False,
            counts: Counts | None = None) -> Iterator[dict[str, Any]]:
    """Preference rows from every tree, in tree order, depth first; `counts` is filled in as rows are made."""
    counts = counts if counts is not None else Counts()
    for tree in trees:
        counts.trees += 1
        yield from _pairs(tree["prompt"], [], False, min_rank_gap, skip_synthetic, counts)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {number}")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAssistant message trees -> DPO preference JSONL: all pairs "
                                     "of ranked sibling assistant replies, conversation so far as the prompt.")
    parser.add_argument("input", help="an OASST tree export (JSONL, one message tree per line)")
    parser.add_argument("output", help="the preference JSONL to write")
    parser.add_argument("--min-rank-gap", type=_positive_int, default=1,
                        help="keep a pair only if its ranks differ by at least this (default 1: all pairs)")
    parser.add_argument("--skip-synthetic", action="store_true",
                        help="drop pairs whose prompt or replies contain a message flagged synthetic")
    args = parser.parse_args(argv)
    try:
        if Path(args.output).resolve() == Path(args.input).resolve():
            raise DataError(args.output, None, "is the input file; choose another output path")
        trees = load(args.input)
        counts = Counts()
        rows = convert(trees, args.min_rank_gap, args.skip_synthetic, counts)
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
