"""The label-agreement gate: do the annotators agree well enough for their labels to be trusted?

The headline figure is chance-corrected agreement:

- **two annotators**: Cohen's kappa on the items both labelled; with `weights` set to `linear` or
  `quadratic`, Cohen's weighted kappa for ordinal labels (method `cohen_linear` / `cohen_quadratic`);
- **three or more annotators**: Fleiss' kappa (method `fleiss`, always nominal: `weights` then applies
  only to the pairwise Cohen figures).

Beside it, `per_pair` gives Cohen's kappa (weighted as configured) for every pair of annotators that
share at least `min_pair_items` items, and `mean_pairwise_cohen` their mean (undefined pairs left out).
The gate fails when kappa < `min_kappa`, and when kappa is undefined (`kappa: null` with an
`undefined_reason`: no item with two labels, or one label everywhere so that chance agreement is 1);
it never reports NaN.

Definitions, so the numbers can be checked by hand:

- Labels, items and annotators are compared as text after stripping (`1` and `"1"` are one label; a
  whole float such as `1.0` from a Parquet column reads as `1`; other spellings such as `"1.0"` stay
  distinct labels). An empty or missing label is a missing annotation and is skipped.
- Items with fewer than two labels are skipped and counted (`skipped_items`).
- Cohen (weighted or not): kappa = 1 - sum(W * O) / sum(W * E), O the observed label-by-label counts,
  E = outer(row sums, column sums) / n, W = 0 on the diagonal and 1 elsewhere (unweighted), or
  |x - y| (linear) or (x - y)^2 (quadratic) for the labels' numeric values x, y. The distance uses the
  values themselves, so a 1-5 scale on which nobody chose 3 still puts 2 and 4 two steps apart. This
  equals `sklearn.metrics.cohen_kappa_score` whenever the labels are consecutive integers that all occur
  (or sklearn is given the full scale through `labels=`); sklearn itself measures the distance in
  positions among the labels that occur.
- Fleiss with a varying number of raters per item uses the standard generalisation for missing
  ratings (Gwet, *Handbook of Inter-Rater Reliability*, 4th ed., ch. 2; R package irrCAC,
  `fleiss.kappa.raw`): over the items with r_i >= 2 labels, P_o = mean_i sum_k n_ik (n_ik - 1) /
  (r_i (r_i - 1)), pi_k = mean_i n_ik / r_i, P_e = sum_k pi_k^2, kappa = (P_o - P_e) / (1 - P_e).
  With the same number of raters on every item this is exactly Fleiss (1971), as in
  `statsmodels.stats.inter_rater.fleiss_kappa`; no item is dropped for having fewer raters than others.
- `confusion[i][j]` counts the items on which one annotator chose `labels[i]` and another `labels[j]`;
  for two annotators the rows are the annotator first in name order and the columns the other; for
  more, it is pooled over every pair of annotators on every item, each pair ordered by name.
- `labels` are sorted numerically when all of them are numbers, else as text.

Several labels from one annotator for one item (a repeated row in the long format, a comma-joined cell
such as `"1, 1"` or `"0, 1"` or a JSON list in the wide format) are handled by `multiple_labels`:
`error` (the default) stops with a `DataError` naming the file, line and field or column;
`first` keeps the first label; `majority` keeps the most frequent one (a tie goes to the earliest).
In the wide format a comma always separates labels, so labels themselves cannot contain commas there.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from data_checks.errors import DataError
from data_checks.progress import progress

WEIGHTS = ("linear", "quadratic")
MULTIPLE_LABELS = ("error", "first", "majority")
# (item, annotator, label); label None records an item seen with a missing annotation (counted if skipped).
Judgement = tuple[str, str, Optional[str]]
_CHUNK_PAIRS = 2_000_000  # annotator pairs enumerated per numpy chunk (bounds memory on 100-rater items)


@dataclass
class AgreementGateConfig:
    """Fail when chance-corrected agreement between annotators is below `min_kappa`.

    Long format (one row per judgement): `item_field`, `annotator_field`, `label_field`.
    Wide format (one row per item, one column per annotator): set `annotator_columns`; each row is one
    item, named by its file and line (`item_field` is not used).
    """

    min_kappa: float = 0.8
    weights: Optional[str] = None  # None (nominal labels), "linear" or "quadratic" (numeric, ordinal labels)
    item_field: str = "item"
    annotator_field: str = "annotator"
    label_field: str = "label"
    annotator_columns: Optional[list[str]] = None
    min_pair_items: int = 10  # a pair of annotators enters `per_pair` when they share this many items
    multiple_labels: str = "error"  # one annotator, several labels for an item: error, first or majority

    def problems(self) -> list[str]:
        """Config mistakes, each naming its key."""
        key = "checks.agreement"
        found = []
        if isinstance(self.min_kappa, bool) or not isinstance(self.min_kappa, (int, float)) \
                or not -1.0 <= self.min_kappa <= 1.0:
            found.append(f"{key}.min_kappa: must be a number between -1 and 1")
        if self.weights is not None and self.weights not in WEIGHTS:
            found.append(f"{key}.weights: must be linear or quadratic (or null for nominal labels), "
                         f"got {self.weights!r}")
        for name in ("item_field", "annotator_field", "label_field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                found.append(f"{key}.{name}: must be a non-empty field name")
        if self.annotator_columns is not None:
            columns = list(self.annotator_columns)
            if len(set(columns)) < 2:
                found.append(f"{key}.annotator_columns: needs at least two different columns")
            for name, count in Counter(columns).items():
                if count > 1:
                    found.append(f"{key}.annotator_columns: lists {name!r} {count} times")
        if isinstance(self.min_pair_items, bool) or not isinstance(self.min_pair_items, int) \
                or self.min_pair_items < 1:
            found.append(f"{key}.min_pair_items: must be a whole number of at least 1")
        if self.multiple_labels not in MULTIPLE_LABELS:
            found.append(f"{key}.multiple_labels: must be one of {', '.join(MULTIPLE_LABELS)}, "
                         f"got {self.multiple_labels!r}")
        return found


@dataclass
class AgreementResult:
    passed: bool
    kappa: Optional[float]
    method: str
    annotators: list[str]  # on the items used, in name order
    items: int
    skipped_items: int
    per_pair: dict[str, Optional[float]]
    mean_pairwise_cohen: Optional[float]
    min_kappa: float
    undefined_reason: Optional[str]
    labels: list[str]
    confusion: list[list[int]]
    # Labels dropped because an annotator labelled an item more than once (multiple_labels first/majority).
    # Kept off to_dict(), whose keys are fixed.
    repeated_labels: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "kappa": self.kappa, "method": self.method, "annotators": self.annotators,
                "items": self.items, "skipped_items": self.skipped_items, "per_pair": self.per_pair,
                "mean_pairwise_cohen": self.mean_pairwise_cohen, "min_kappa": self.min_kappa,
                "undefined_reason": self.undefined_reason, "labels": self.labels, "confusion": self.confusion}


# ---------------------------------------------------------------------------------------------------------
# Reading judgements from records


class _NotScalar(Exception):
    pass


def _text(value: Any) -> Optional[str]:
    """A cell as comparable text: stripped; None for a missing value; `_NotScalar` for lists and objects."""
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
        raise _NotScalar(type(value).__name__)
    text = str(value).strip()  # e.g. numpy scalars or Decimal from Parquet
    return text or None


def _number(label: str) -> Optional[float]:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _wide_cell(value: Any) -> list[str]:
    """The labels in one wide-format cell: none, one, or several (comma-joined text or a JSON list)."""
    if isinstance(value, (list, tuple)):
        parts = [_text(v) for v in value]
    elif isinstance(value, str):
        parts = [_text(p) for p in value.split(",")]
    else:
        parts = [_text(value)]
    return [p for p in parts if p is not None]


def _fields_seen(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def judgements_from_records(records: list[dict[str, Any]], lines: list[int], path: str,
                            config: AgreementGateConfig) -> list[Judgement]:
    """Turn records (long or wide format, see `AgreementGateConfig`) into (item, annotator, label) triples.

    Raises `DataError(path, line, ...)` naming the field or column of a bad row: a missing item or
    annotator, a list or object where one label belongs, a non-numeric label when `weights` is set, and,
    under `multiple_labels: error`, an annotator labelling an item more than once.
    """
    reader = JudgementReader(path, config)
    for record, line in progress(list(zip(records, lines, strict=True)), desc="agreement: reading labels"):
        reader.add(record, line)
    return reader.judgements()


def _check_numeric(label: Optional[str], config: AgreementGateConfig, path: str, line: int, where: str) -> None:
    if label is not None and config.weights and _number(label) is None:
        raise DataError(path, line, f"{where}: label {label!r} is not a number, and weights={config.weights!r} "
                                    "needs numeric (ordinal) labels")


class JudgementReader:
    """`judgements_from_records` fed one record at a time (`add`), then `judgements()`.

    The errors are those of reading every record first: a field or column that no record has is
    reported (at the end) before the first bad row, so a bad row is remembered, not raised, and
    `add` after it only notes which fields occur.
    """

    SAMPLE = 50  # records whose field names an error message lists

    def __init__(self, path: str, config: AgreementGateConfig) -> None:
        self.path, self.config = path, config
        if config.annotator_columns:
            self.columns = list(dict.fromkeys(config.annotator_columns))
            self.required = [(name, None) for name in self.columns]
        else:
            self.roles = (("item", config.item_field), ("annotator", config.annotator_field),
                          ("label", config.label_field))
            self.required = [(name, role) for role, name in self.roles]
        self.missing = {name for name, _ in self.required}  # fields no record has had yet
        self.fields: dict[str, None] = {}  # the field names of the first SAMPLE records, in order
        self.sampled = 0
        self.error: DataError | None = None
        self.first_line: dict[tuple[str, str], int] = {}
        self._judgements: list[Judgement] = []

    def add(self, record: dict[str, Any], line: int) -> None:
        if self.sampled < self.SAMPLE:
            self.sampled += 1
            self.fields.update(dict.fromkeys(record))
        if self.missing:
            self.missing.difference_update([name for name in self.missing if name in record])
        if self.error is not None:
            return
        try:
            if self.config.annotator_columns:
                self._add_wide(record, line)
            else:
                self._add_long(record, line)
        except DataError as exc:
            self.error = exc

    def judgements(self) -> list[Judgement]:
        for name, role in self.required:
            if name not in self.missing:
                continue
            fields = _fields_seen(list(self.fields))
            if role is None:
                raise DataError(self.path, None, f"annotator column {name!r} is in no record "
                                                 f"(checks.agreement.annotator_columns); columns: {fields}")
            raise DataError(self.path, None, f"no record has the {role} field {name!r} "
                                             f"(checks.agreement.{role}_field); fields: {fields}")
        if self.error is not None:
            raise self.error
        return self._judgements

    def _add_long(self, record: dict[str, Any], line: int) -> None:
        path, config = self.path, self.config
        values = []
        for role, name in self.roles:
            try:
                values.append(_text(record.get(name)))
            except _NotScalar as exc:
                raise DataError(path, line, f"field {name!r} (the {role}) must be a single value, "
                                            f"got a {exc}") from None
            if values[-1] is None and role != "label":
                raise DataError(path, line, f"field {name!r} (the {role}) is missing or empty")
        item, annotator, label = values
        _check_numeric(label, config, path, line, f"field {config.label_field!r}")
        if label is not None and config.multiple_labels == "error":
            earlier = self.first_line.setdefault((item, annotator), line)
            if earlier != line:
                raise DataError(path, line, f"annotator {annotator!r} labels item {item!r} again (first at line "
                                            f"{earlier}); set checks.agreement.multiple_labels to 'first' or "
                                            "'majority' to keep one label per annotator and item")
        self._judgements.append((item, annotator, label))

    def _add_wide(self, record: dict[str, Any], line: int) -> None:
        path, config = self.path, self.config
        item = f"{path}:{line}"
        for name in self.columns:
            raw = record.get(name)
            try:
                labels = _wide_cell(raw)
            except _NotScalar as exc:
                raise DataError(path, line, f"column {name!r}: a label must be a single value, got a {exc}") from None
            if len(labels) > 1 and config.multiple_labels == "error":
                raise DataError(path, line, f"column {name!r}: {raw!r} holds {len(labels)} labels (the annotator "
                                            "labelled this item more than once); set "
                                            "checks.agreement.multiple_labels to 'first' or 'majority' to use one")
            for label in labels:
                _check_numeric(label, config, path, line, f"column {name!r}")
                self._judgements.append((item, name, label))
            if not labels:
                self._judgements.append((item, name, None))


# ---------------------------------------------------------------------------------------------------------
# Computing agreement


def _resolve(judgements: list[Judgement], policy: str) -> tuple[dict[str, dict[str, str]], list[str], int]:
    """One label per (item, annotator) by `policy`; also every item seen and the number of labels dropped."""
    seen: dict[str, dict[str, list[str]]] = {}
    for index, judgement in enumerate(progress(judgements, desc="agreement: grouping labels")):
        try:
            item, annotator, label = (_text(v) for v in judgement)
        except (_NotScalar, TypeError, ValueError):
            raise ValueError(f"judgement {index}: expected (item, annotator, label), got {judgement!r}") from None
        if item is None or annotator is None:
            raise ValueError(f"judgement {index}: missing item or annotator in {judgement!r}")
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
            if policy == "majority":
                counts = Counter(labels)
                top = max(counts.values())
                chosen[annotator] = next(label for label in labels if counts[label] == top)
            else:
                chosen[annotator] = labels[0]
        resolved[item] = chosen
    return resolved, list(seen), dropped


def _sorted_labels(labels: set[str]) -> list[str]:
    numbers = {label: _number(label) for label in labels}
    if all(v is not None for v in numbers.values()):
        return sorted(labels, key=lambda label: (numbers[label], label))
    return sorted(labels)


def _weight_matrix(labels: list[str], weights: Optional[str]) -> np.ndarray:
    k = len(labels)
    if weights is None:
        return 1.0 - np.eye(k)
    values = []
    for label in labels:
        number = _number(label)
        if number is None:
            raise ValueError(f"label {label!r} is not a number, and weights={weights!r} needs numeric (ordinal) labels")
        values.append(number)
    distance = np.abs(np.subtract.outer(np.array(values), np.array(values)))
    return distance if weights == "linear" else distance ** 2


def _cohen(confusion: np.ndarray, weight: np.ndarray) -> Optional[float]:
    """Cohen's (weighted) kappa of a label-by-label count matrix; None when undefined."""
    n = confusion.sum()
    if n == 0:
        return None
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
    expected_disagreement = float((weight * expected).sum())
    if expected_disagreement <= 1e-12 * n * max(1.0, float(weight.max())):
        return None
    return float(1.0 - (weight * confusion).sum() / expected_disagreement)


def _fleiss(counts: np.ndarray) -> Optional[float]:
    """Fleiss' kappa from item-by-label counts, generalised to a varying number (>= 2) of raters per item."""
    raters = counts.sum(axis=1, keepdims=True)
    observed = float(((counts * (counts - 1)).sum(axis=1) / (raters[:, 0] * (raters[:, 0] - 1))).mean())
    shares = (counts / raters).mean(axis=0)
    chance = float((shares * shares).sum())
    if chance >= 1.0 - 1e-12:
        return None
    return (observed - chance) / (1.0 - chance)


def _pair_counts(item_index: np.ndarray, annotator_index: np.ndarray, label_index: np.ndarray,
                 n_annotators: int, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of annotators on every item, as unique codes ((a * A + b) * K + x) * K + y with counts.

    a < b are annotator indices (name order), x and y their labels on a shared item.
    """
    order = np.lexsort((annotator_index, item_index))
    annotators, labels = annotator_index[order], label_index[order]
    per_item = np.bincount(item_index)
    starts = np.concatenate(([0], np.cumsum(per_item)[:-1]))
    codes, counts = [], []
    for raters in np.unique(per_item):
        first, second = np.triu_indices(int(raters), 1)
        group = starts[per_item == raters]
        step = max(1, _CHUNK_PAIRS // len(first))
        for begin in range(0, len(group), step):
            rows = group[begin:begin + step, None] + np.arange(raters)
            a, x = annotators[rows], labels[rows]
            code = ((a[:, first] * n_annotators + a[:, second]) * n_labels + x[:, first]) * n_labels + x[:, second]
            unique, count = np.unique(code, return_counts=True)
            codes.append(unique)
            counts.append(count)
    all_codes, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    return all_codes, np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)


def compute_agreement(judgements: list[Judgement], config: AgreementGateConfig) -> AgreementResult:
    """Agreement of (item, annotator, label) judgements; see the module docstring for the definitions.

    Raises `ValueError` for a non-numeric label when `config.weights` is set, and for an annotator
    labelling an item twice under `multiple_labels: error` (`judgements_from_records` reports both
    with the file and line first).
    """
    resolved, all_items, dropped = _resolve(judgements, config.multiple_labels)
    used = {item: labels for item, labels in resolved.items() if len(labels) >= 2}
    skipped = len(all_items) - len(used)
    every_annotator = {a for labels in resolved.values() for a in labels}
    annotator_names = sorted({a for labels in used.values() for a in labels})
    label_names = _sorted_labels({label for labels in used.values() for label in labels.values()})
    n_annotators, n_labels = len(annotator_names), len(label_names)
    cohen_method = "cohen" if config.weights is None else f"cohen_{config.weights}"
    method = cohen_method if (n_annotators or len(every_annotator)) <= 2 else "fleiss"

    def result(kappa: Optional[float], reason: Optional[str], per_pair: dict[str, Optional[float]],
               confusion: np.ndarray) -> AgreementResult:
        defined = [v for v in per_pair.values() if v is not None]
        return AgreementResult(
            passed=kappa is not None and kappa >= config.min_kappa - 1e-12, kappa=kappa, method=method,
            annotators=annotator_names, items=len(used), skipped_items=skipped, per_pair=per_pair,
            mean_pairwise_cohen=float(np.mean(defined)) if defined else None, min_kappa=config.min_kappa,
            undefined_reason=None if kappa is not None else reason, labels=label_names,
            confusion=confusion.astype(int).tolist(), repeated_labels=dropped)

    if not used:
        reason = (f"no item has labels from two or more annotators ({skipped} item(s) with fewer than two labels, "
                  f"{len(every_annotator)} annotator(s) in all)")
        return result(None, reason, {}, np.zeros((0, 0), dtype=np.int64))

    weight = _weight_matrix(label_names, config.weights)
    annotator_at = {name: i for i, name in enumerate(annotator_names)}
    label_at = {name: i for i, name in enumerate(label_names)}
    triples = [(i, annotator_at[a], label_at[label]) for i, labels in enumerate(used.values())
               for a, label in labels.items()]
    item_index, annotator_index, label_index = np.array(triples, dtype=np.int64).T

    codes, counts = _pair_counts(item_index, annotator_index, label_index, n_annotators, n_labels)
    cells = n_labels * n_labels
    pooled = np.bincount(codes % cells, weights=counts, minlength=cells).reshape(n_labels, n_labels)
    pair_codes, pair_start = np.unique(codes // cells, return_index=True)
    pair_end = np.append(pair_start[1:], len(codes))
    per_pair: dict[str, Optional[float]] = {}
    for pair, begin, end in zip(pair_codes.tolist(), pair_start, pair_end, strict=True):
        if counts[begin:end].sum() < config.min_pair_items:
            continue
        matrix = np.bincount(codes[begin:end] % cells, weights=counts[begin:end], minlength=cells)
        first, second = divmod(pair, n_annotators)
        per_pair[f"{annotator_names[first]}|{annotator_names[second]}"] = _cohen(
            matrix.reshape(n_labels, n_labels), weight)

    single_label = f"every label is {label_names[0]!r}, so chance agreement is 1 and kappa is undefined"
    if method == "fleiss":
        table = np.zeros((len(used), n_labels))
        np.add.at(table, (item_index, label_index), 1)
        kappa = _fleiss(table) if n_labels > 1 else None
        return result(kappa, single_label, per_pair, pooled)
    kappa = _cohen(pooled, weight) if n_labels > 1 else None
    same_value = "expected disagreement is zero (every label has the same numeric value), so kappa is undefined"
    reason = single_label if n_labels == 1 else same_value
    return result(kappa, reason, per_pair, pooled)
