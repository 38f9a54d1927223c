"""The rules every judgement obeys, each stated once; `reading.py` applies them to file rows (naming the
file, line and field), `check_judgement` to triples handed to `compute_agreement` directly.

- A value is compared as text after stripping: `1` and `"1"` are one label, a whole float such as `1.0`
  from a Parquet column reads as `1`, other spellings such as `"1.0"` stay distinct (`cell_text`).
- An empty or missing label is a missing annotation; an item or annotator may not be missing.
- A list or object where one value belongs is an error (`NotScalar`), except in a wide-format cell, where
  a JSON list or comma-joined text holds several labels (`cell_labels`).
- With `weights` set, labels must be numbers (`not_numeric`).
- One label per annotator and item: several are an error, or resolved by `keep_one` (`multiple_labels`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any, NoReturn, Optional

from data_checks.agreement.config import Judgement


class NotScalar(Exception):
    """A list or object where one value belongs; the message is its type's name."""


def cell_text(value: Any) -> Optional[str]:
    """A cell as comparable text: stripped; None for a missing value; `NotScalar` for lists and objects."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, str)):
        text = str(value).strip()
        return text or None
    if isinstance(value, (list, tuple, dict, set)):
        raise NotScalar(type(value).__name__)
    text = str(value).strip()  # e.g. numpy scalars or Decimal from Parquet
    return text or None


def cell_labels(value: Any) -> list[str]:
    """The labels in one wide-format cell: none, one, or several (comma-joined text or a JSON list)."""
    if isinstance(value, (list, tuple)):
        parts = [cell_text(v) for v in value]
    elif isinstance(value, str):
        parts = [cell_text(p) for p in value.split(",")]
    else:
        parts = [cell_text(value)]
    return [p for p in parts if p is not None]


def label_number(label: str) -> Optional[float]:
    """The label's numeric value; None when it is not a finite number."""
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def not_numeric(label: Optional[str], weights: Optional[str]) -> Optional[str]:
    """The problem with `label` under `weights`, or None: weighted kappa needs numeric (ordinal) labels."""
    if label is not None and weights and label_number(label) is None:
        return f"label {label!r} is not a number, and weights={weights!r} needs numeric (ordinal) labels"
    return None


def keep_one(labels: list[str], policy: str) -> str:
    """The label kept of one annotator's labels for one item: the first, or (`majority`) the most frequent,
    a tie going to the earliest."""
    if policy == "majority":
        counts = Counter(labels)
        top = max(counts.values())
        return next(label for label in labels if counts[label] == top)
    return labels[0]


def check_judgement(index: int, judgement: Any) -> Judgement:
    """Judgement number `index` as comparable text; `ValueError` naming it when it breaks a rule."""
    def invalid(what: str) -> NoReturn:
        raise ValueError(f"judgement {index}: {what} {judgement!r}") from None

    try:
        item, annotator, label = (cell_text(v) for v in judgement)
    except (NotScalar, TypeError, ValueError):
        invalid("expected (item, annotator, label), got")
    if item is None or annotator is None:
        invalid("missing item or annotator in")
    return item, annotator, label


class CheckedJudgements(list):
    """Judgements already checked row by row (`JudgementReader`): comparable text, item and annotator
    present, and, when `numeric` is True, every label a number. `compute_agreement` does not check them
    again; the list is read-only so that it stays so (`list(...)` gives a mutable copy)."""

    def __init__(self, judgements: Iterable[Judgement], numeric: bool) -> None:
        super().__init__(judgements)
        self.numeric = numeric

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("checked judgements are read-only; list(...) gives a copy to change")

    append = extend = insert = pop = remove = clear = sort = reverse = _read_only
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
