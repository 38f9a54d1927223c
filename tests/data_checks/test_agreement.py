"""The label-agreement gate: textbook values, sklearn/statsmodels parity, formats, bad rows, real data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from data_checks.agreement import AgreementGateConfig, compute_agreement, judgements_from_records
from data_checks.errors import DataError
from data_checks.records import read_records
from tests.conftest import ROOT, needs_shared

RESULT_KEYS = {"passed", "kappa", "method", "annotators", "items", "skipped_items", "per_pair",
               "mean_pairwise_cohen", "min_kappa", "undefined_reason", "labels", "confusion"}


def from_table(table: list[list[int]], labels: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Judgements from an item-by-category count table, raters anonymous (r0, r1, ... within each item)."""
    labels = labels or [str(k) for k in range(len(table[0]))]
    out = []
    for i, row in enumerate(table):
        rated = [labels[k] for k, count in enumerate(row) for _ in range(count)]
        out.extend((f"item{i}", f"r{j}", label) for j, label in enumerate(rated))
    return out


def from_pairs(first: list, second: list) -> list[tuple[str, str, str]]:
    """Two annotators A and B; None is a missing label."""
    return [(f"i{n}", name, label) for n, (a, b) in enumerate(zip(first, second, strict=True))
            for name, label in (("A", a), ("B", b))]


def from_confusion(matrix: list[list[int]], labels: list[str]) -> list[tuple[str, str, str]]:
    first = [labels[r] for r, row in enumerate(matrix) for c, count in enumerate(row) for _ in range(count)]
    second = [labels[c] for r, row in enumerate(matrix) for c, count in enumerate(row) for _ in range(count)]
    return from_pairs(first, second)


def agreement(judgements: list, **config) -> dict:
    return compute_agreement(judgements, AgreementGateConfig(**config)).to_dict()


# --------------------------------------------------------------------------------------------------------
# Textbook values


def test_cohen_classic_two_by_two():
    # Wikipedia's "Cohen's kappa" example: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = (25*30 + 25*20) / 50^2 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4.
    result = agreement(from_confusion([[20, 5], [10, 15]], ["yes", "no"]))
    assert result["method"] == "cohen"
    assert result["kappa"] == pytest.approx(0.4, abs=1e-12)
    assert result["labels"] == ["no", "yes"]
    assert result["confusion"] == [[15, 10], [5, 20]]  # rows: A (first by name), columns: B
    assert result["annotators"] == ["A", "B"] and result["items"] == 50 and result["skipped_items"] == 0
    assert result["per_pair"] == {"A|B": pytest.approx(0.4, abs=1e-12)}
    assert result["passed"] is False


def test_weighted_cohen_by_hand():
    # O = [[2,1,0],[0,2,1],[1,0,3]] over labels 1,2,3; row and column sums 3,3,4; E = outer / 10.
    # unweighted: p_o = 7/10, p_e = 34/100, kappa = 0.36/0.66 = 6/11
    # linear W=|i-j|: sum W*O = 1+1+2 = 4, sum W*E = 9.0, kappa = 1 - 4/9 = 5/9
    # quadratic W=(i-j)^2: sum W*O = 1+1+4 = 6, sum W*E = 13.8, kappa = 1 - 6/13.8 = 13/23
    judgements = from_confusion([[2, 1, 0], [0, 2, 1], [1, 0, 3]], ["1", "2", "3"])
    assert agreement(judgements)["kappa"] == pytest.approx(6 / 11, abs=1e-12)
    linear = agreement(judgements, weights="linear")
    assert linear["kappa"] == pytest.approx(5 / 9, abs=1e-12) and linear["method"] == "cohen_linear"
    quadratic = agreement(judgements, weights="quadratic")
    assert quadratic["kappa"] == pytest.approx(13 / 23, abs=1e-12) and quadratic["method"] == "cohen_quadratic"


# Fleiss (1971), table 1: 30 patients, 6 psychiatrists each, counts over depression, personality disorder,
# schizophrenia, neurosis, other. Fleiss reports kappa = .430; exactly P_o = 5/9, P_e = 3563/16200.
FLEISS_1971 = [[0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0], [2, 0, 4, 0, 0],
               [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6], [1, 0, 0, 5, 0], [1, 1, 0, 4, 0],
               [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1], [0, 0, 5, 0, 1], [3, 0, 0, 1, 2], [5, 1, 0, 0, 0],
               [0, 2, 0, 4, 0], [1, 0, 2, 0, 3], [0, 0, 0, 0, 6], [0, 1, 0, 5, 0], [0, 2, 0, 1, 3], [2, 0, 0, 4, 0],
               [1, 0, 0, 4, 1], [0, 5, 0, 1, 0], [4, 0, 0, 0, 2], [0, 2, 0, 4, 0], [1, 0, 5, 0, 0], [0, 0, 0, 0, 6]]
# Wikipedia's "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories; kappa 0.210.
WIKIPEDIA_FLEISS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def _exact_fleiss(table: list[list[int]]) -> Fraction:
    raters = sum(table[0])
    p_o = sum(Fraction(sum(c * (c - 1) for c in row), raters * (raters - 1)) for row in table) / len(table)
    shares = [Fraction(sum(row[k] for row in table), raters * len(table)) for k in range(len(table[0]))]
    p_e = sum(s * s for s in shares)
    return (p_o - p_e) / (1 - p_e)


def test_fleiss_textbook_tables():
    assert _exact_fleiss(FLEISS_1971) == Fraction(5437, 12637)
    result = agreement(from_table(FLEISS_1971))
    assert result["method"] == "fleiss" and result["items"] == 30
    assert result["kappa"] == pytest.approx(5437 / 12637, abs=1e-12)
    assert round(result["kappa"], 3) == 0.430
    assert _exact_fleiss(WIKIPEDIA_FLEISS) == Fraction(4211, 20059)
    assert agreement(from_table(WIKIPEDIA_FLEISS))["kappa"] == pytest.approx(4211 / 20059, abs=1e-12)


def test_fleiss_with_a_varying_number_of_raters_by_hand():
    # item1 a,a (r=2): P=1, shares (1, 0); item2 a,b,b (r=3): P=2/6, shares (1/3, 2/3);
    # item3 a,b,b,b (r=4): P=6/12, shares (1/4, 3/4). P_o = 11/18, pi_a = 19/36, pi_b = 17/36,
    # P_e = 650/1296, kappa = 71/323. item4 has one label and item5 none: both skipped and counted.
    judgements = [("1", "x", "a"), ("1", "y", "a"), ("2", "x", "a"), ("2", "y", "b"), ("2", "z", "b"),
                  ("3", "w", "a"), ("3", "x", "b"), ("3", "y", "b"), ("3", "z", "b"),
                  ("4", "x", "a"), ("4", "y", None), ("5", "x", None)]
    result = agreement(judgements, min_pair_items=1)
    assert result["kappa"] == pytest.approx(71 / 323, abs=1e-12)
    assert (result["method"], result["items"], result["skipped_items"]) == ("fleiss", 3, 2)
    # pooled pairs, each ordered by name: item1 x-y a/a; item2 x-y a/b, x-z a/b, y-z b/b;
    # item3 w-x, w-y, w-z a/b, and x-y, x-z, y-z b/b
    assert result["confusion"] == [[1, 5], [0, 4]]
    assert result["labels"] == ["a", "b"]


# --------------------------------------------------------------------------------------------------------
# Parity with sklearn and statsmodels on random data


@pytest.mark.parametrize("seed", range(6))
def test_cohen_equals_sklearn(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 7)), int(rng.integers(40, 400))
    first = rng.integers(0, k, n)
    second = np.where(rng.random(n) < rng.uniform(0.2, 0.9), first, rng.integers(0, k, n))
    labels = list(range(k))  # sklearn measures weights in positions among the labels it is given
    judgements = from_pairs(first.tolist(), second.tolist())  # ints: compared as text, "1" == 1
    for weights in (None, "linear", "quadratic"):
        expected = metrics.cohen_kappa_score(first, second, labels=labels, weights=weights)
        result = agreement(judgements, weights=weights)
        assert abs(result["kappa"] - expected) < 1e-9
        assert abs(result["per_pair"]["A|B"] - expected) < 1e-9
    present = sorted(set(first.tolist()) | set(second.tolist()))
    assert np.array_equal(result["confusion"], metrics.confusion_matrix(first, second, labels=present))


@pytest.mark.parametrize("seed", range(6))
def test_fleiss_equals_statsmodels_and_pairs_equal_sklearn(seed):
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(100 + seed)
    k, n, raters = int(rng.integers(2, 6)), int(rng.integers(30, 300)), int(rng.integers(3, 9))
    truth = rng.integers(0, k, n)
    ratings = np.where(rng.random((n, raters)) < rng.uniform(0.3, 0.9), truth[:, None], rng.integers(0, k, (n, raters)))
    judgements = [(f"i{i}", f"rater{r}", str(ratings[i, r])) for i in range(n) for r in range(raters)]
    rng.shuffle(judgements)  # order does not matter
    result = agreement(judgements)
    table, _ = inter_rater.aggregate_raters(ratings)
    assert result["method"] == "fleiss"
    assert abs(result["kappa"] - inter_rater.fleiss_kappa(table)) < 1e-9
    assert len(result["per_pair"]) == raters * (raters - 1) // 2
    for a in range(raters):
        for b in range(a + 1, raters):
            expected = metrics.cohen_kappa_score(ratings[:, a], ratings[:, b])
            assert abs(result["per_pair"][f"rater{a}|rater{b}"] - expected) < 1e-9
    assert result["mean_pairwise_cohen"] == pytest.approx(np.mean(list(result["per_pair"].values())), abs=1e-12)
    assert np.sum(result["confusion"]) == n * raters * (raters - 1) // 2


def test_pairs_on_shared_items_with_missing_annotations_equal_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    n = 300
    ratings = rng.integers(0, 4, (n, 4)).astype(object)
    ratings[rng.random((n, 4)) < 0.3] = None
    judgements = [(f"i{i}", f"r{r}", ratings[i, r]) for i in range(n) for r in range(4)]
    result = agreement(judgements, weights="quadratic", min_pair_items=50)
    for a in range(4):
        for b in range(a + 1, 4):
            shared = [i for i in range(n) if ratings[i, a] is not None and ratings[i, b] is not None]
            expected = metrics.cohen_kappa_score([ratings[i, a] for i in shared], [ratings[i, b] for i in shared],
                                                 labels=[0, 1, 2, 3], weights="quadratic")
            assert abs(result["per_pair"][f"r{a}|r{b}"] - expected) < 1e-9
    labelled = (ratings != None).sum(axis=1)  # noqa: E711 - elementwise on an object array
    assert result["skipped_items"] == int((labelled < 2).sum())
    assert result["items"] == int((labelled >= 2).sum())


def test_weights_use_label_values_so_an_unused_scale_point_keeps_its_distance():
    metrics = pytest.importorskip("sklearn.metrics")
    first, second = [1, 2, 5, 5, 1, 2, 4], [2, 2, 4, 5, 1, 1, 5]  # nobody chose 3
    expected = metrics.cohen_kappa_score(first, second, labels=[1, 2, 3, 4, 5], weights="linear")
    assert abs(agreement(from_pairs(first, second), weights="linear")["kappa"] - expected) < 1e-12


# --------------------------------------------------------------------------------------------------------
# Undefined kappa, thresholds, result shape


def test_single_label_everywhere_is_undefined_and_fails():
    for judgements, method in ((from_pairs(["x"] * 20, ["x"] * 20), "cohen"),
                               (from_table([[3]] * 20, ["x"]), "fleiss")):
        result = compute_agreement(judgements, AgreementGateConfig(min_kappa=-1.0))
        data = result.to_dict()
        assert data["kappa"] is None and data["passed"] is False and data["method"] == method
        assert "undefined" in data["undefined_reason"] and "'x'" in data["undefined_reason"]
        assert "NaN" not in json.dumps(data, allow_nan=True)
        assert data["per_pair"] and all(value is None for value in data["per_pair"].values())
        assert data["mean_pairwise_cohen"] is None


def test_no_item_with_two_labels_is_undefined():
    result = agreement([("1", "A", "x"), ("2", "B", "y"), ("3", "A", None)])
    assert result["kappa"] is None and not result["passed"]
    assert result["skipped_items"] == 3 and result["items"] == 0
    assert "no item has labels from two or more annotators" in result["undefined_reason"]
    assert result["confusion"] == [] and result["labels"] == []


def test_threshold_and_result_shape():
    judgements = from_confusion([[45, 5], [5, 45]], ["0", "1"])  # kappa = 0.8 exactly
    result = agreement(judgements)
    assert set(result) == RESULT_KEYS
    assert result["kappa"] == pytest.approx(0.8) and result["passed"] is True and result["min_kappa"] == 0.8
    assert agreement(judgements, min_kappa=0.81)["passed"] is False
    assert result["undefined_reason"] is None
    json.dumps(result, allow_nan=False)


def test_undefined_pair_is_left_out_of_the_mean():
    # A and B always say "x" on their 10 shared items (pair undefined); A-C and B-C disagree sometimes.
    judgements = [(f"i{n}", a, "x") for n in range(10) for a in ("A", "B")]
    judgements += [(f"j{n}", a, str((n + (a == "C") * (n % 3 == 0)) % 2)) for n in range(12) for a in ("A", "C")]
    judgements += [(f"k{n}", a, str(n % 2)) for n in range(12) for a in ("B", "C")]
    result = agreement(judgements, min_pair_items=10)
    assert result["per_pair"]["A|B"] is None
    assert result["mean_pairwise_cohen"] == pytest.approx((result["per_pair"]["A|C"] + 1.0) / 2)


def test_pairs_below_min_pair_items_are_left_out():
    result = agreement(from_pairs(["1", "0"] * 4, ["1", "0"] * 4))  # 8 shared items, default minimum 10
    assert result["kappa"] == 1.0 and result["per_pair"] == {} and result["mean_pairwise_cohen"] is None


def test_labels_compare_as_stripped_text_and_sort_numerically():
    result = agreement([("a", "A", 1), ("a", "B", " 1 "), ("b", "A", 10), ("b", "B", "10"), ("c", "A", 2.0),
                        ("c", "B", "2"), ("d", "A", "2"), ("d", "B", 10)])
    assert result["labels"] == ["1", "2", "10"]
    assert result["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_repeated_labels_policy():
    judgements = from_pairs(["1", "0", "1"], ["1", "0", "0"]) + [("i2", "B", "1"), ("i2", "B", "1")]
    with pytest.raises(ValueError, match="labels item 'i2' 3 times"):
        agreement(judgements)
    first = compute_agreement(judgements, AgreementGateConfig(multiple_labels="first"))
    assert first.confusion == [[1, 0], [1, 1]] and first.repeated_labels == 2
    assert agreement(judgements, multiple_labels="majority")["confusion"] == [[1, 0], [0, 2]]


def test_config_problems():
    assert AgreementGateConfig().problems() == []
    problems = AgreementGateConfig(weights="cubic", min_kappa=2, annotator_columns=["a", "a"], min_pair_items=0,
                                   multiple_labels="last", label_field="").problems()
    assert "checks.agreement.weights: must be linear or quadratic (or null for nominal labels), got 'cubic'" in problems
    assert any(p.startswith("checks.agreement.min_kappa:") for p in problems)
    assert any(p.startswith("checks.agreement.annotator_columns:") for p in problems)
    assert any(p.startswith("checks.agreement.min_pair_items:") for p in problems)
    assert any(p.startswith("checks.agreement.multiple_labels:") for p in problems)
    assert any(p.startswith("checks.agreement.label_field:") for p in problems)


# --------------------------------------------------------------------------------------------------------
# Long and wide formats, bad rows


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _judgements(path: str, **config) -> list:
    data = read_records(path)
    return judgements_from_records(data.records, data.lines, data.path, AgreementGateConfig(**config))


def test_long_and_wide_files_agree(tmp_path):
    rows = [("1", "2", "1"), ("2", "2", ""), ("3", "", "3"), ("1", "1", "2"), ("", "", "2"), ("2", "3", "3")]
    wide = _write(tmp_path / "wide.csv", "text,ann_a,ann_b,ann_c\n" + "".join(
        f"t{n},{a},{b},{c}\n" for n, (a, b, c) in enumerate(rows)))
    long_rows = [{"item": f"t{n}", "annotator": name, "label": int(v) if v else None}
                 for n, row in enumerate(rows) for name, v in zip(("ann_a", "ann_b", "ann_c"), row, strict=True)]
    long = _write(tmp_path / "long.jsonl", "".join(json.dumps(r) + "\n" for r in long_rows))
    config = {"min_pair_items": 1, "weights": "linear"}
    from_wide = compute_agreement(_judgements(wide, annotator_columns=["ann_a", "ann_b", "ann_c"], **config),
                                  AgreementGateConfig(**config)).to_dict()
    from_long = compute_agreement(_judgements(long, **config), AgreementGateConfig(**config)).to_dict()
    assert from_wide == from_long
    assert from_wide["items"] == 5 and from_wide["skipped_items"] == 1  # row 5 has a single label


def test_long_format_with_renamed_fields(tmp_path):
    path = _write(tmp_path / "l.csv", "id,who,says\nq1,ann,yes\nq1,bob,yes\nq2,ann,no\nq2,bob,no\nq3,ann,yes\n")
    result = compute_agreement(_judgements(path, item_field="id", annotator_field="who", label_field="says"),
                               AgreementGateConfig())
    assert (result.kappa, result.items, result.skipped_items) == (1.0, 2, 1)


@pytest.mark.parametrize(("text", "config", "line", "words"), [
    ('{"item": 1, "annotator": "A", "label": 1}\n{"annotator": "B", "label": 1}\n', {}, 2,
     ["field 'item'", "missing or empty"]),
    ('{"item": 1, "annotator": "A", "label": 1}\n{"item": 1, "annotator": "", "label": 1}\n', {}, 2,
     ["field 'annotator'"]),
    ('{"item": 1, "annotator": "A", "label": [1, 2]}\n', {}, 1, ["field 'label'", "single value", "list"]),
    ('{"item": 1, "annotator": "A", "label": 1}\n{"item": 1, "annotator": "B", "label": "high"}\n',
     {"weights": "quadratic"}, 2, ["'high' is not a number", "field 'label'", "quadratic"]),
    ('{"item": 1, "annotator": "A", "label": 1}\n\n{"item": 1, "annotator": "A", "label": 2}\n', {}, 3,
     ["annotator 'A' labels item '1' again (first at line 1)", "multiple_labels"]),
])
def test_bad_long_rows_name_file_line_and_field(tmp_path, text, config, line, words):
    path = _write(tmp_path / "bad.jsonl", text)
    with pytest.raises(DataError) as caught:
        _judgements(path, **config)
    assert caught.value.path == path and caught.value.line == line
    for word in words:
        assert word in str(caught.value)


def test_bad_wide_cells_name_file_line_and_column(tmp_path):
    path = _write(tmp_path / "w.csv", 'text,A,B\nhello,1,0\n"two\nlines","1, 0",1\n')
    with pytest.raises(DataError) as caught:
        _judgements(path, annotator_columns=["A", "B"])
    assert caught.value.line == 3  # the row's first line
    assert "column 'A': '1, 0' holds 2 labels" in str(caught.value) and "multiple_labels" in str(caught.value)
    judgements = _judgements(path, annotator_columns=["A", "B"], multiple_labels="first")
    assert judgements[-3:] == [(f"{path}:3", "A", "1"), (f"{path}:3", "A", "0"), (f"{path}:3", "B", "1")]
    bad = _write(tmp_path / "n.csv", "A,B\n1,x\n")
    with pytest.raises(DataError, match=r"n\.csv:2: column 'B': label 'x' is not a number"):
        _judgements(bad, annotator_columns=["A", "B"], weights="linear")


def test_missing_fields_and_columns_are_named(tmp_path):
    path = _write(tmp_path / "l.jsonl", '{"item": 1, "rater": "A", "label": 1}\n')
    with pytest.raises(DataError, match=r"no record has the annotator field 'annotator'.*'rater'"):
        _judgements(path)
    with pytest.raises(DataError, match=r"annotator column 'B' is in no record"):
        _judgements(path, annotator_columns=["rater", "B"])


def test_non_numeric_label_with_weights_through_the_api():
    with pytest.raises(ValueError, match="label 'high' is not a number"):
        agreement(from_pairs(["1", "high"], ["1", "2"]), weights="linear")


def test_import_needs_no_torch_sklearn_or_statsmodels():
    forbidden = ["torch", "transformers", "sklearn", "statsmodels"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, data_checks.agreement; "
         f"print(sorted(m for m in {forbidden!r} if m in sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
    blocked = subprocess.run([sys.executable, "-c", f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {forbidden!r}:
            raise ModuleNotFoundError("blocked: " + name)
sys.meta_path.insert(0, Block())
from data_checks.agreement import AgreementGateConfig, compute_agreement
print(compute_agreement([("1", "A", "x"), ("1", "B", "x"), ("2", "A", "y"), ("2", "B", "y")],
                        AgreementGateConfig()).kappa)
"""], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout.strip() == "1.0"


# --------------------------------------------------------------------------------------------------------
# Real data: ConvAbuse (long and wide, 8 named annotators, 5-point scale) and ChaosNLI (5 original labels)

CONVABUSE_SCALE = ("1", "0", "-1", "-2", "-3")
CONVABUSE_ITEM = ("conv_id", "prev_agent", "prev_user", "agent", "user")


@pytest.fixture(scope="module")
def convabuse_long() -> tuple:
    """The full (long) file as item/annotator/label records: one-hot `is_abuse.*` -> the 5-point label."""
    data = read_records(needs_shared("convabuse") / "ConvAbuseEMNLPfull.csv")
    records = [{"item": json.dumps([r[k] for k in CONVABUSE_ITEM]), "annotator": r["annotator_id"],
                "label": next(v for v in CONVABUSE_SCALE if r[f"is_abuse.{v}"] == "1")} for r in data.records]
    return data, records


def test_convabuse_long(convabuse_long):
    metrics = pytest.importorskip("sklearn.metrics")
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    data, records = convabuse_long
    with pytest.raises(DataError, match=r"ConvAbuseEMNLPfull\.csv:\d+: annotator 'Annotator\d' labels item .* again"):
        judgements_from_records(records, data.lines, data.path, AgreementGateConfig())
    config = AgreementGateConfig(multiple_labels="first")  # SOURCE.md: first label per annotator, repeats dropped
    judgements = judgements_from_records(records, data.lines, data.path, config)
    result = compute_agreement(judgements, config)
    assert result.repeated_labels == 357 and result.items == 4185 and result.skipped_items == 0
    assert result.method == "fleiss" and result.annotators == [f"Annotator{n}" for n in range(1, 9)]
    assert result.labels == ["-3", "-2", "-1", "0", "1"] and np.sum(result.confusion) > 0
    assert result.kappa == pytest.approx(0.4317, abs=5e-4) and not result.passed  # all 4,185 items, 2-7 raters

    quadratic = compute_agreement(judgements, AgreementGateConfig(multiple_labels="first", weights="quadratic"))
    assert quadratic.method == "fleiss" and quadratic.kappa == result.kappa  # Fleiss is nominal; pairs weighted
    first: dict[str, dict[str, str]] = defaultdict(dict)
    for item, annotator, label in judgements:
        first[item].setdefault(annotator, label)
    # SOURCE.md: Cohen 5-way Annotator4-Annotator7 0.467 (646 items), Annotator2-Annotator3 0.530 (591).
    for pair, value, shared in (("Annotator4|Annotator7", 0.467, 646), ("Annotator2|Annotator3", 0.530, 591)):
        a, b = pair.split("|")
        items = [m for m in first.values() if a in m and b in m]
        assert len(items) == shared
        for weights, got in ((None, result), ("quadratic", quadratic)):
            expected = metrics.cohen_kappa_score([m[a] for m in items], [m[b] for m in items],
                                                 labels=list(CONVABUSE_SCALE[::-1]), weights=weights)
            assert abs(got.per_pair[pair] - expected) < 1e-9
        assert result.per_pair[pair] == pytest.approx(value, abs=5e-4)

    # SOURCE.md: Fleiss on the 2,445 items with exactly 3 annotators: 5-way 0.435, binary 0.665
    three = [(item, a, label) for item, m in first.items() if len(m) == 3 for a, label in m.items()]
    table = np.array([[list(m.values()).count(v) for v in CONVABUSE_SCALE] for m in first.values() if len(m) == 3])
    five_way = compute_agreement(three, config)
    assert five_way.items == 2445 and abs(five_way.kappa - inter_rater.fleiss_kappa(table)) < 1e-9
    assert five_way.kappa == pytest.approx(0.435, abs=5e-4)
    binary = compute_agreement([(i, a, str(int(label) < 0)) for i, a, label in three], config)  # abusive: -1..-3
    assert binary.kappa == pytest.approx(0.665, abs=5e-4)


def test_convabuse_wide_messy_cells(convabuse_long):
    data = read_records(needs_shared("convabuse") / "ConvAbuseEMNLPtrain.csv")
    columns = [f"Annotator{n}_is_abuse.1" for n in range(1, 9)]  # 1 = "not abusive" in the one-hot block
    with pytest.raises(DataError) as caught:
        judgements_from_records(data.records, data.lines, data.path, AgreementGateConfig(annotator_columns=columns))
    assert caught.value.line == 16
    assert "column 'Annotator3_is_abuse.1': '1, 1' holds 2 labels" in str(caught.value)
    config = AgreementGateConfig(annotator_columns=columns, multiple_labels="first")
    result = compute_agreement(judgements_from_records(data.records, data.lines, data.path, config), config)
    assert (result.items, result.skipped_items, result.labels) == (2501, 0, ["0", "1"])
    assert result.repeated_labels == 231
    # The same items in the long file (joined on the conversation fields): the same kappa, give or take the
    # two train rows whose conversation fields repeat.
    full, records = convabuse_long
    in_train = {json.dumps([r[k] for k in CONVABUSE_ITEM]): line for r, line in zip(data.records, data.lines,
                                                                                     strict=True)}
    long = [(in_train[r["item"]], r["annotator"], str(int(r["label"] == "1"))) for r in records
            if r["item"] in in_train]
    from_long = compute_agreement(long, AgreementGateConfig(multiple_labels="first"))
    assert result.kappa == pytest.approx(from_long.kappa, abs=1e-3)
    assert result.kappa == pytest.approx(0.5902, abs=5e-4)


@pytest.mark.parametrize(("name", "expected", "items"), [("snli", 0.031, 1507), ("mnli_m", 0.039, 1599)])
def test_chaosnli_original_labels(name, expected, items):
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    data = read_records(needs_shared("chaosnli") / f"chaosNLI_{name}.jsonl")
    judgements = [(r["uid"], f"original{k}", label) for r in data.records for k, label in enumerate(r["old_labels"])]
    everything = compute_agreement(judgements, AgreementGateConfig())
    assert everything.items == len(data.records) and everything.method == "fleiss" and not everything.passed
    five = [r for r in data.records if len(r["old_labels"]) == 5]
    assert len(five) == items
    result = compute_agreement([(r["uid"], f"original{k}", label) for r in five
                                for k, label in enumerate(r["old_labels"])], AgreementGateConfig())
    table = np.array([[r["old_labels"].count(v) for v in ("entailment", "neutral", "contradiction")] for r in five])
    assert abs(result.kappa - inter_rater.fleiss_kappa(table)) < 1e-9
    assert result.kappa == pytest.approx(expected, abs=5e-4)  # SOURCE.md: SNLI 0.031, MNLI 0.039
    assert everything.kappa == pytest.approx(expected, abs=2e-3)  # the 7 SNLI items with 4 labels barely move it


def test_chaosnli_hundred_raters():
    data = read_records(needs_shared("chaosnli") / "chaosNLI_snli.jsonl")
    judgements = [(r["uid"], f"crowd{k}", label) for r in data.records for k, label in enumerate(
        label for label, count in sorted(r["label_counter"].items()) for _ in range(count))]
    result = compute_agreement(judgements, AgreementGateConfig())
    assert result.kappa == pytest.approx(0.447, abs=5e-4)  # SOURCE.md: label_counter, 100 raters, SNLI 0.447
    assert len(result.per_pair) == 4950 and np.sum(result.confusion) == len(data.records) * 4950
