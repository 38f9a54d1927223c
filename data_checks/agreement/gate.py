"""The agreement gate: (item, annotator, label) judgements in, an `AgreementResult` out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from data_checks.agreement.config import AgreementGateConfig, AgreementResult
from data_checks.agreement.grouping import group_labels
from data_checks.agreement.kappa import (
    cohen_kappa,
    fleiss_kappa,
    nominal_weights,
    ordinal_weights,
    pair_confusions,
    pair_counts,
)
from data_checks.agreement.rules import CheckedJudgements, label_number, not_numeric


def _sorted_labels(labels: set[str]) -> list[str]:
    """Numerically when every label is a number, else as text."""
    numbers = {label: label_number(label) for label in labels}
    if all(v is not None for v in numbers.values()):
        return sorted(labels, key=lambda label: (numbers[label], label))
    return sorted(labels)


def _label_values(labels: list[str], weights: str) -> np.ndarray:
    """The labels' numeric values; `ValueError` for the first that is not a number."""
    for label in labels:
        problem = not_numeric(label, weights)
        if problem:
            raise ValueError(problem)
    return np.array([label_number(label) for label in labels])


def compute_agreement(judgements: Iterable[Any], config: AgreementGateConfig) -> AgreementResult:
    """Agreement of (item, annotator, label) judgements; see the package docstring for the definitions.

    Raises `ValueError` for a non-numeric label when `config.weights` is set, and for an annotator
    labelling an item twice under `multiple_labels: error` (`judgements_from_records` reports both
    with the file and line first, and its judgements are not checked again).
    """
    grouped = group_labels(judgements, config.multiple_labels)
    used = {item: labels for item, labels in grouped.labels.items() if len(labels) >= 2}
    skipped = grouped.items_seen - len(used)
    every_annotator = {a for labels in grouped.labels.values() for a in labels}
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
            confusion=confusion.astype(int).tolist(), repeated_labels=grouped.dropped)

    if not used:
        reason = (f"no item has labels from two or more annotators ({skipped} item(s) with fewer than two labels, "
                  f"{len(every_annotator)} annotator(s) in all)")
        return result(None, reason, {}, np.zeros((0, 0), dtype=np.int64))

    if config.weights is None:
        weight = nominal_weights(n_labels)
    else:
        if isinstance(judgements, CheckedJudgements) and judgements.numeric:
            values = np.array([label_number(label) for label in label_names])  # checked when read
        else:
            values = _label_values(label_names, config.weights)
        weight = ordinal_weights(values, config.weights)
    annotator_at = {name: i for i, name in enumerate(annotator_names)}
    label_at = {name: i for i, name in enumerate(label_names)}
    triples = [(i, annotator_at[a], label_at[label]) for i, labels in enumerate(used.values())
               for a, label in labels.items()]
    item_index, annotator_index, label_index = np.array(triples, dtype=np.int64).T

    codes, counts = pair_counts(item_index, annotator_index, label_index, n_annotators, n_labels)
    pooled, pairs = pair_confusions(codes, counts, n_annotators, n_labels, config.min_pair_items)
    per_pair: dict[str, Optional[float]] = {
        f"{annotator_names[a]}|{annotator_names[b]}": cohen_kappa(matrix, weight) for a, b, matrix in pairs}

    single_label = f"every label is {label_names[0]!r}, so chance agreement is 1 and kappa is undefined"
    if method == "fleiss":
        table = np.zeros((len(used), n_labels))
        np.add.at(table, (item_index, label_index), 1)
        kappa = fleiss_kappa(table) if n_labels > 1 else None
        return result(kappa, single_label, per_pair, pooled)
    kappa = cohen_kappa(pooled, weight) if n_labels > 1 else None
    same_value = "expected disagreement is zero (every label has the same numeric value), so kappa is undefined"
    reason = single_label if n_labels == 1 else same_value
    return result(kappa, reason, per_pair, pooled)
