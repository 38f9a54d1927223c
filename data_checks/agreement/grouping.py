"""Judgements grouped by item and annotator, one label kept per annotator and item (`multiple_labels`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from data_checks.agreement.rules import CheckedJudgements, check_judgement, keep_one
from data_checks.progress import progress


@dataclass
class LabelsByItem:
    labels: dict[str, dict[str, str]]  # item -> annotator -> the label kept, in the order first seen
    items_seen: int  # every item, labelled or not
    dropped: int  # labels dropped because their annotator labelled the item more than once


def group_labels(judgements: Iterable[Any], policy: str) -> LabelsByItem:
    """Group (item, annotator, label) judgements, checking each one unless they are `CheckedJudgements`.

    Under `policy` "error", an annotator with several labels for one item raises `ValueError`.
    """
    checked = isinstance(judgements, CheckedJudgements)
    seen: dict[str, dict[str, list[str]]] = {}
    for index, judgement in enumerate(progress(judgements, desc="agreement: grouping labels")):
        item, annotator, label = judgement if checked else check_judgement(index, judgement)
        labels = seen.setdefault(item, {})
        if label is not None:
            labels.setdefault(annotator, []).append(label)
    resolved: dict[str, dict[str, str]] = {}
    dropped = 0
    for item, by_annotator in seen.items():
        chosen = {}
        for annotator, labels in by_annotator.items():
            if len(labels) > 1:
                if policy == "error":
                    raise ValueError(f"annotator {annotator!r} labels item {item!r} {len(labels)} times "
                                     f"({', '.join(map(repr, labels))}); set multiple_labels to 'first' or "
                                     "'majority' to keep one")
                dropped += len(labels) - 1
            chosen[annotator] = keep_one(labels, policy)
        resolved[item] = chosen
    return LabelsByItem(resolved, len(seen), dropped)
