"""The agreement gate's judgement rules alone, and the hand-over from the reader: what JudgementReader
checked, compute_agreement does not check again, and the result is the same as checking it."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest

from data_checks.agreement import AgreementGateConfig, JudgementReader, compute_agreement, judgements_from_records
from data_checks.agreement.grouping import group_labels
from data_checks.agreement.rules import (
    CheckedJudgements,
    NotScalar,
    cell_labels,
    cell_text,
    check_judgement,
    keep_one,
    not_numeric,
)
from data_checks.errors import DataError
from data_checks.records import read_records


@pytest.mark.parametrize(("value", "text"), [
    (None, None), ("", None), ("   ", None), (float("nan"), None), (" 1 ", "1"), (1, "1"), (1.0, "1"),
    (2.5, "2.5"), ("1.0", "1.0"), (True, "true"), (False, "false"), (np.int64(3), "3"), (Decimal("1.50"), "1.50"),
])
def test_cell_text(value, text):
    assert cell_text(value) == text


@pytest.mark.parametrize("value", [[1], (1,), {"a": 1}, {1}])
def test_lists_and_objects_are_not_one_value(value):
    with pytest.raises(NotScalar, match=type(value).__name__):
        cell_text(value)


def test_wide_cells():
    assert cell_labels("1, 0") == ["1", "0"]
    assert cell_labels([1, " 2", None]) == ["1", "2"]
    assert cell_labels("") == [] and cell_labels(None) == [] and cell_labels(3.0) == ["3"]
    with pytest.raises(NotScalar):
        cell_labels([[1]])


def test_numeric_rule():
    assert not_numeric("high", "linear") == (
        "label 'high' is not a number, and weights='linear' needs numeric (ordinal) labels")
    assert not_numeric("inf", "quadratic") is not None  # not finite
    assert not_numeric("-2.5", "linear") is None and not_numeric("high", None) is None
    assert not_numeric(None, "linear") is None


def test_keep_one():
    assert keep_one(["b", "a", "a"], "first") == "b"
    assert keep_one(["b", "a", "a"], "majority") == "a"
    assert keep_one(["b", "a", "a", "b"], "majority") == "b"  # a tie goes to the earliest


def test_check_judgement_names_the_judgement():
    assert check_judgement(0, (" q1", 7, 2.0)) == ("q1", "7", "2")
    assert check_judgement(0, ("q1", "A", None)) == ("q1", "A", None)
    for bad, what in ((("q1", "A"), "expected"), (("q1", "A", [1]), "expected"), (5, "expected"),
                      (("q1", " ", "x"), "missing item or annotator")):
        with pytest.raises(ValueError, match=rf"^judgement 3: {what}"):
            check_judgement(3, bad)


def test_checked_judgements_are_read_only():
    checked = CheckedJudgements([("1", "A", "x")], numeric=False)
    for change in (lambda: checked.append(("1", "B", "x")), lambda: checked.__setitem__(0, ("1", "B", "x")),
                   lambda: checked.extend([]), lambda: checked.__delitem__(0)):
        with pytest.raises(TypeError, match="read-only"):
            change()
    copy = list(checked)
    copy.append(("1", "B", "x"))
    assert checked == [("1", "A", "x")] and checked[-1:] == [("1", "A", "x")]


def test_grouping_skips_the_row_checks_only_for_checked_judgements():
    raw = [(" 1", "A", 1), ("1", "B ", "1")]
    assert group_labels(raw, "error").labels == {"1": {"A": "1", "B": "1"}}
    # not checked again: the values are taken as they are (which is why the reader's output is read-only)
    assert group_labels(CheckedJudgements(raw, numeric=False), "error").labels == {" 1": {"A": 1}, "1": {"B ": "1"}}


def _write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _read(path: str, config: AgreementGateConfig) -> CheckedJudgements:
    data = read_records(path)
    return judgements_from_records(data.records, data.lines, data.path, config)


def test_the_reader_output_gives_the_result_of_checking_it(tmp_path):
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 4, (200, 4)).astype(object)
    rows[rng.random((200, 4)) < 0.3] = ""
    columns = [" ann a", "ann_b ", "ann c", "D"]  # names that strip differently from how they are written
    wide = _write(tmp_path / "w.csv", ",".join(columns) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    long = _write(tmp_path / "l.jsonl", "".join(
        json.dumps({"item": f" i{n} ", "annotator": f"{c} ", "label": int(v) if v != "" else None}) + "\n"
        for n, r in enumerate(rows) for c, v in zip(columns, r, strict=True)))
    for path, extra in ((wide, {"annotator_columns": columns}), (long, {})):
        for weights in (None, "linear", "quadratic"):
            config = AgreementGateConfig(weights=weights, min_pair_items=1, **extra)
            checked = _read(path, config)
            assert isinstance(checked, CheckedJudgements) and checked.numeric is (weights is not None)
            assert all(cell_text(v) == v for judgement in checked for v in judgement[:2])
            trusted, rechecked = compute_agreement(checked, config), compute_agreement(list(checked), config)
            assert trusted == rechecked  # bit for bit, every field
            assert trusted.annotators == ["D", "ann a", "ann c", "ann_b"]


def test_what_the_reader_did_not_check_is_still_checked(tmp_path):
    path = _write(tmp_path / "l.csv", "item,annotator,label\n1,A,low\n1,B,high\n2,A,1\n2,A,1\n")
    checked = _read(path, AgreementGateConfig(multiple_labels="first"))  # read without weights
    with pytest.raises(ValueError, match="label 'high' is not a number"):
        compute_agreement(checked, AgreementGateConfig(multiple_labels="first", weights="linear"))
    with pytest.raises(ValueError, match="labels item '2' 2 times"):  # read under 'first', computed under 'error'
        compute_agreement(checked, AgreementGateConfig())


def test_an_empty_annotator_column_name_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"annotator_columns: ' ' is not a column name"):
        JudgementReader(str(tmp_path / "w.csv"), AgreementGateConfig(annotator_columns=["A", " "]))
