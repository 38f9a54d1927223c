"""The data_checks package on its own: readers, formats, the template gate, the report and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from data_checks import (
    FORMATS,
    ChecksConfig,
    DataError,
    LoadedData,
    TemplateGateConfig,
    detect_format,
    read_records,
    record_problems,
    run_gates,
    summary_table,
    write_json_atomic,
)
from data_checks.cli import main as cli_main
from data_checks.formats import FormatProblem, consistency_problem, resolve_format
from data_checks.records import looks_like_hub_id
from data_checks.template import check_template
from tests.conftest import ROOT, chat, needs_shared, write_jsonl

ALPACA = "alpaca_libre_quality_labels"
GOOD = {"chat": chat("q", "a"), "alpaca": {"instruction": "i", "output": "o"},
        "prompt_completion": {"prompt": "p", "completion": "c"},
        "preference": {"prompt": "p", "chosen": "c", "rejected": "r"}, "prompt": {"prompt": "p"}, "text": {"text": "t"},
        "classification": {"item": "1", "annotator": "a", "label": "yes"}}


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _data(records: list[dict[str, Any]], lines: list[int] | None = None) -> LoadedData:
    return LoadedData("mem.jsonl", records, lines or [i + 1 for i in range(len(records))])


# ---------------------------------------------------------------- read_records

def test_jsonl_lines_are_file_lines_and_blank_lines_are_skipped(tmp_path: Path):
    path = _lines(tmp_path / "d.jsonl", ['{"text": "a"}', "", '{"text": "b"}', "   ", "", '{"text": "c"}'])
    data = read_records(path)
    assert data.records == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    assert data.lines == [1, 3, 6]
    assert (data.kind, data.path, len(data)) == ("jsonl", str(path), 3)
    assert data.where(2) == f"{path}:6"


@pytest.mark.parametrize(("lines", "line", "problem"), [
    (['{"text": "a"}', "", '{"text": "b",}'], 3, "not valid JSON"),
    (['{"text": "a"}', '"just a string"'], 2, "expected a JSON object, got str"),
    (["[1, 2]"], 1, "expected a JSON object, got list"),
    (['{"text": "a"}', "null"], 2, "expected a JSON object, got NoneType"),
])
def test_jsonl_errors_name_path_and_line(tmp_path: Path, lines: list[str], line: int, problem: str):
    path = _lines(tmp_path / "d.jsonl", lines)
    with pytest.raises(DataError) as err:
        read_records(path)
    assert (err.value.path, err.value.line) == (str(path), line)
    assert str(err.value).startswith(f"{path}:{line}: {problem}")


def test_ndjson_suffix_reads_as_jsonl(tmp_path: Path):
    path = _lines(tmp_path / "d.NDJSON", ['{"text": "a"}'])
    assert read_records(path).kind == "jsonl"


def test_json_list_and_object_holding_one_list(tmp_path: Path):
    records = [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(records, indent=2), encoding="utf-8")
    data = read_records(listed)
    assert (data.records, data.lines, data.kind) == (records, [1, 2, 3], "json")
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": 2, "data": records}), encoding="utf-8")
    assert read_records(wrapped).records == records


@pytest.mark.parametrize(("text", "line", "problem"), [
    ('[\n  {"text": "a"},\n  {"text": }\n]', 3, "not valid JSON"),
    ('[{"text": "a"}, 7]', None, "record 2 is int, expected an object"),  # a record number, not a file line
    ('{"a": [1], "b": [2]}', None, "expected a JSON list of records (or an object holding exactly one list)"),
    ('"text"', None, "expected a JSON list of records, got str"),
])
def test_json_errors(tmp_path: Path, text: str, line: int | None, problem: str):
    path = tmp_path / "d.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_records(path)
    assert err.value.line == line
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(err.value).startswith(f"{where}: {problem}")


def test_csv_lines_count_the_header_as_line_1(tmp_path: Path):
    path = _lines(tmp_path / "d.csv", ["instruction,input,output", "Say hi.,,hi", "", "Add,1 and 2,3"])
    data = read_records(path)
    assert data.records == [{"instruction": "Say hi.", "input": "", "output": "hi"},
                            {"instruction": "Add", "input": "1 and 2", "output": "3"}]
    assert (data.lines, data.kind) == ([2, 4], "csv")


def test_csv_errors(tmp_path: Path):
    extra = _lines(tmp_path / "extra.csv", ["text", "a", "b,c"])
    with pytest.raises(DataError, match=r"extra\.csv:3: row has more cells than the header"):
        read_records(extra)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv:1: CSV file has no header row"):
        read_records(empty)


def test_csv_multiline_record_is_named_by_its_first_line(tmp_path: Path):
    path = tmp_path / "d.csv"
    path.write_text('text\n"two\nlines"\nnext\n', encoding="utf-8")
    data = read_records(path)
    assert data.records == [{"text": "two\nlines"}, {"text": "next"}]
    assert data.lines == [2, 4]


def test_parquet_rows_are_numbered_from_1(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(5)]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    data = read_records(path)
    assert (data.records, data.lines, data.kind) == (records, [1, 2, 3, 4, 5], "parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable Parquet file"):
        read_records(broken)


def test_save_to_disk_dataset_and_dataset_dict(tmp_path: Path):
    from datasets import Dataset, DatasetDict

    train = [{"text": f"t{i}"} for i in range(4)]
    Dataset.from_list(train).save_to_disk(str(tmp_path / "single"))
    data = read_records(tmp_path / "single")
    assert (data.records, data.lines, data.kind) == (train, [1, 2, 3, 4], "saved_dataset")

    validation = [{"text": "v0"}, {"text": "v1"}]
    DatasetDict({"train": Dataset.from_list(train), "validation": Dataset.from_list(validation)}).save_to_disk(
        str(tmp_path / "dict"))
    assert read_records(tmp_path / "dict").records == train
    assert read_records(tmp_path / "dict", split="validation").records == validation
    with pytest.raises(DataError, match="split 'test' not found \\(has: train, validation\\)"):
        read_records(tmp_path / "dict", split="test")


@pytest.mark.parametrize(("make", "problem"), [
    (lambda p: p.mkdir(), "a directory, but not one written by datasets' save_to_disk"),
    (lambda p: p.with_suffix(".txt").write_text("hi\n"), "unknown file type '.txt'"),
    (lambda p: p.with_suffix(".jsonl").write_text(""), "no records"),
    (lambda p: p.with_suffix(".jsonl").write_text("\n \n"), "no records"),
    (lambda p: p.with_suffix(".json").write_text("[]"), "no records"),
    (lambda p: p.with_suffix(".jsonl").write_bytes(b'{"text": "caf\xe9"}\n'), "not UTF-8 text"),
    (lambda p: None, "no such file or directory"),
], ids=["plain_dir", "unknown_suffix", "empty", "blank", "empty_list", "not_utf8", "missing"])
def test_unreadable_sources(tmp_path: Path, make: Any, problem: str):
    base = tmp_path / "sub" / "data"
    base.parent.mkdir()
    make(base)
    path = next(iter(base.parent.iterdir()), base)
    with pytest.raises(DataError) as err:
        read_records(path)
    line = 1 if problem == "not UTF-8 text" else None  # JSONL is decoded line by line, so the line is known
    assert err.value.line == line
    assert str(err.value) == (f"{path}:{line}: " if line else f"{path}: ") + err.value.problem
    assert err.value.problem.startswith(problem)


def test_data_error_message_shape():
    assert str(DataError("a/b.jsonl", 7, "bad")) == "a/b.jsonl:7: bad"
    assert str(DataError("a/b.jsonl", None, "bad")) == "a/b.jsonl: bad"


def test_hub_ids():
    assert looks_like_hub_id("tatsu-lab/alpaca")
    assert not looks_like_hub_id("./tatsu-lab/alpaca")
    assert not looks_like_hub_id("a/b/c")
    assert not looks_like_hub_id("alpaca")


def test_missing_relative_file_is_not_a_hub_id():
    assert not looks_like_hub_id("data/train.jsonl")


# ---------------------------------------------------------------- formats

@pytest.mark.parametrize(("record", "fmt"), [
    ({"messages": [], "text": "x"}, "chat"),
    ({"prompt": "p", "chosen": "c", "rejected": "r"}, "preference"),
    ({"chosen": "c", "rejected": "r"}, "preference"),
    ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
    ({"instruction": "i", "output": "o"}, "alpaca"),
    ({"prompt": "p", "completion": "c"}, "prompt_completion"),
    ({"prompt": "p"}, "prompt"),
    ({"text": "t"}, "text"),
    ({"instruction": "i"}, None),
    ({"chosen": "c"}, None),
    ({}, None),
])
def test_detect_format(record: dict[str, Any], fmt: str | None):
    assert detect_format(record) == fmt


def test_every_format_is_detectable_and_has_rules():
    assert set(GOOD) == set(FORMATS)
    for fmt, record in GOOD.items():
        assert detect_format(record) == fmt
        assert record_problems([record], [1], fmt) == []


@pytest.mark.parametrize(("record", "fmt", "problem"), [
    ({"text": "x"}, "chat", "missing field 'messages'"),
    ({"messages": "hi"}, "chat", "field 'messages' must be a non-empty list of messages"),
    ({"messages": []}, "chat", "field 'messages' must be a non-empty list of messages"),
    ({"messages": ["hi"]}, "chat", "messages[0] is str, expected an object with 'role' and 'content'"),
    ({"messages": [{"content": "hi"}]}, "chat", "messages[0] has no 'role'"),
    ({"messages": [{"role": "bot", "content": "hi"}]}, "chat", "messages[0] has unknown role 'bot'"),
    ({"messages": [{"role": "user"}]}, "chat", "messages[0] has no 'content'"),
    ({"messages": [{"role": "user", "content": 3}]}, "chat", "messages[0].content is int, expected a string"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " \n"}]}, "chat",
     "messages[1] (assistant) has empty content"),
    ({"messages": [{"role": "user", "content": "q"}]}, "chat", "messages has no assistant turn"),
    ({"instruction": "i", "input": ""}, "alpaca", "missing field 'output'"),
    ({"instruction": "i", "output": ""}, "alpaca", "field 'output' is empty"),
    ({"instruction": "", "output": "o"}, "alpaca", "field 'instruction' is empty"),
    ({"instruction": "i", "input": 3, "output": "o"}, "alpaca", "field 'input' is int, expected a string"),
    ({"prompt": "p"}, "prompt_completion", "missing field 'completion'"),
    ({"prompt": "p", "completion": None}, "prompt_completion", "missing field 'completion'"),
    ({"prompt": "p", "completion": 5}, "prompt_completion",
     "field 'completion' is int, expected a string or a list of messages"),
    ({"prompt": [], "completion": "c"}, "prompt_completion", "field 'prompt' must be a non-empty list"),
    ({"chosen": "c", "rejected": ""}, "preference", "field 'rejected' is empty"),
    ({"prompt": "", "chosen": "c", "rejected": "r"}, "preference", "field 'prompt' is empty"),
    ({"prompt": "  "}, "prompt", "field 'prompt' is empty"),
    ({"text": ["a"]}, "text", "field 'text' is list, expected a string"),
])
def test_record_problems(record: dict[str, Any], fmt: str, problem: str):
    found = record_problems([GOOD[fmt], record], [3, 9], fmt)
    assert len(found) == 1
    assert (found[0].record, found[0].line) == (1, 9)
    assert found[0].problem.startswith(problem)


def test_record_problems_lists_every_bad_record_in_order():
    records = [{"text": "ok"}, {"text": ""}, {"text": "ok"}, {"nope": 1}]
    assert record_problems(records, [1, 2, 4, 7], "text") == [
        FormatProblem(1, 2, "field 'text' is empty"), FormatProblem(3, 7, "missing field 'text'")]


def test_unknown_format_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        record_problems([{"text": "x"}], [1], "nope")


def _msgs(*roles: str) -> dict[str, Any]:
    return {"messages": [{"role": r, "content": f"{r} says"} for r in roles]}


@pytest.mark.parametrize(("record", "fmt", "problem"), [
    (_msgs("system", "user", "assistant"), "chat", None),
    (_msgs("user", "assistant", "user", "assistant"), "chat", None),
    (_msgs("user", "assistant", "tool", "assistant"), "chat", None),
    (_msgs("user", "system", "assistant"), "chat", "system message at position 1; it must come first"),
    (_msgs("system", "assistant", "user", "assistant"), "chat", "conversation starts with 'assistant'"),
    (_msgs("user", "user", "assistant"), "chat", "two 'user' turns in a row"),
    (_msgs("user", "assistant", "assistant"), "chat", "two 'assistant' turns in a row"),
    (_msgs("user", "assistant", "user"), "chat", "conversation ends with 'user'; the last turn is not trained on"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "preference", "chosen and rejected are identical"),
    ({"prompt": "p", "chosen": "a", "rejected": "b"}, "preference", None),
    ({"instruction": "i", "output": "o"}, "alpaca", None),
    ({"instruction": "i", "output": "o", "text": "t"}, "text", "record looks like 'alpaca', the rest of the dataset"),
    ({"prompt": "p", "completion": "c"}, "prompt", "record looks like 'prompt_completion'"),
])
def test_consistency_problem(record: dict[str, Any], fmt: str, problem: str | None):
    found = consistency_problem(record, fmt)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_resolve_format():
    assert resolve_format([{"text": "x"}], "auto", "d.jsonl") == "text"
    assert resolve_format([{"text": "x"}], "chat", "d.jsonl") == "chat"  # explicit wins; records checked later
    with pytest.raises(DataError, match=r"^d\.jsonl:4: cannot tell the dataset format from the keys \(a, b\)"):
        resolve_format([{"b": 1, "a": 2}], "auto", "d.jsonl", 4)
    with pytest.raises(DataError, match=r"^d\.jsonl: unknown format 'csv'"):
        resolve_format([{"text": "x"}], "csv", "d.jsonl")


# ---------------------------------------------------------------- the template gate and the report

def test_check_template_lists_violations_with_record_and_line():
    records = [chat("q", "a"), chat("q", ""), _msgs("user", "user", "assistant"), chat("q2", "a2")]
    result = check_template(_data(records, [1, 3, 4, 8]), "chat")
    assert result.passed is False
    assert (result.format, result.checked, result.violation_rate) == ("chat", 4, 0.5)
    assert result.violations == [
        {"record": 1, "line": 3, "problem": "messages[1] (assistant) has empty content"},
        {"record": 2, "line": 4, "problem": "two 'user' turns in a row"},
    ]


@pytest.mark.parametrize(("rate", "passed"), [(0.0, False), (0.2, False), (0.25, True), (1.0, True)])
def test_check_template_threshold(rate: float, passed: bool):
    records = [{"text": "a"}, {"text": "b"}, {"text": ""}, {"text": "d"}]  # 1 of 4 bad
    result = check_template(_data(records), "text", max_violation_rate=rate)
    assert result.violation_rate == 0.25
    assert (result.passed, result.max_violation_rate) == (passed, rate)


def test_check_template_caps_the_list_not_the_count():
    records = [{"text": ""}] * 7 + [{"text": "ok"}] * 3
    result = check_template(_data(records), "text", max_listed=5)
    assert len(result.violations) == 5
    assert result.violation_rate == 0.7
    assert [v["line"] for v in result.violations] == [1, 2, 3, 4, 5]


def test_check_template_renders_chat_through_the_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    good = [chat("q", "a"), _msgs("system", "user", "assistant")]
    assert check_template(_data(good), "chat", tokenizer=tokenizer).passed
    # A real template that refuses system messages (as some model families' templates do).
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                               "{{ raise_exception('System role not supported') }}{% endif %}"
                               "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}")
    result = check_template(_data(good), "chat", tokenizer=tokenizer)
    assert not result.passed
    assert len(result.violations) == 1 and result.violations[0]["record"] == 1
    assert "chat template rejects this conversation" in result.violations[0]["problem"]
    assert "System role not supported" in result.violations[0]["problem"]


def test_run_gates_report_shape():
    records = [{"instruction": "i", "output": "o"}, {"instruction": "i", "output": ""}]
    report = run_gates(_data(records, [1, 5]), "alpaca", ChecksConfig(run=["template"], fail_on=["template"]))
    lengths = report.pop("lengths")
    assert (lengths["unit"], lengths["max"], sum(lengths["counts"])) == ("words", 2, 2)
    assert report == {
        "passed": False, "records": 2, "format": "alpaca", "sources": ["mem.jsonl"], "fail_on": ["template"],
        "checks": {"template": {"passed": False, "format": "alpaca", "checked": 2, "violation_rate": 0.5,
                                "max_violation_rate": 0.0,
                                "violations": [{"record": 1, "line": 5, "problem": "field 'output' is empty"}],
                                "truncated": None, "truncation_rate": None, "max_length": None}},
    }
    json.dumps(report)  # serialisable as is
    table = summary_table(report)
    assert "template  FAIL" in table and "first: line 5: field 'output' is empty" in table
    assert table.splitlines()[-1] == "2 records from mem.jsonl: a gate failed"


def test_run_gates_only_fail_on_gates_stop():
    bad = _data([{"text": ""}])
    report = run_gates(bad, "text", ChecksConfig(run=["template"], fail_on=[]))
    assert report["passed"] is True and report["checks"]["template"]["passed"] is False
    assert run_gates(bad, "text", ChecksConfig(run=[], fail_on=[]))["checks"] == {}
    good = run_gates(_data([{"text": "x"}]), "text", ChecksConfig())
    assert good["passed"] is True and "all gates passed" in summary_table(good)


def test_checks_config_problems():
    assert ChecksConfig().problems() == []
    gates = "template, dedup, pii, agreement"
    assert ChecksConfig(run=["nope"], fail_on=[]).problems() == [
        f"checks.run: unknown gate 'nope' (available: {gates})"]
    assert ChecksConfig(fail_on=["template", "x"]).problems() == [
        f"checks.fail_on: unknown gate 'x' (available: {gates})"]
    assert ChecksConfig(run=[], fail_on=["template"]).problems() == [
        "checks.fail_on: gate 'template' is not in checks.run, so it cannot fail"]
    for rate in (-0.1, 1.5):
        assert ChecksConfig(template=TemplateGateConfig(max_violation_rate=rate)).problems() == [
            "checks.template.max_violation_rate: must be between 0 and 1"]


# ---------------------------------------------------------------- write_json_atomic

def test_write_json_atomic_replaces_and_leaves_no_temp_file(tmp_path: Path):
    target = tmp_path / "deep" / "report.json"
    assert write_json_atomic(target, {"a": 1, "é": "ü"}) == target
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1, "é": "ü"}
    assert "ü" in target.read_text(encoding="utf-8")  # not \u-escaped
    write_json_atomic(target, [1, 2])
    assert json.loads(target.read_text(encoding="utf-8")) == [1, 2]
    assert os.listdir(target.parent) == ["report.json"]


def test_write_json_atomic_keeps_the_old_file_when_writing_fails(tmp_path: Path):
    target = write_json_atomic(tmp_path / "report.json", {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"new": object()})  # not JSON-serialisable, fails half-way
    assert json.loads(target.read_text(encoding="utf-8")) == {"old": True}
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_json_atomic_file_has_normal_permissions(tmp_path: Path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}", encoding="utf-8")  # what open() gives under the current umask
    target = write_json_atomic(tmp_path / "report.json", {})
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


# ---------------------------------------------------------------- the CLI

def test_cli_exit_0_on_clean_data_with_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    data = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}", f"a{i}") for i in range(5)])
    report_path = tmp_path / "out" / "report.json"
    assert cli_main([str(data), "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "all gates passed" in out and f"report: {report_path}" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["passed"] is True and report["records"] == 5 and report["format"] == "chat"
    assert report["sources"] == [str(data)]
    assert os.listdir(report_path.parent) == ["report.json"]


def test_cli_exit_1_when_a_gate_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    records = [{"instruction": f"i{i}", "output": f"o{i}"} for i in range(9)]
    records.insert(4, {"instruction": "i", "output": " "})
    data = write_jsonl(tmp_path / "d.jsonl", records)
    report_path = tmp_path / "report.json"
    assert cli_main([str(data), "--json", str(report_path)]) == 1
    out = capsys.readouterr().out
    assert "template  FAIL" in out and "first: line 5: field 'output' is empty" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert report["checks"]["template"]["violations"] == [
        {"record": 4, "line": 5, "problem": "field 'output' is empty"}]
    # The same data passes under a threshold above its violation rate (1 of 10).
    assert cli_main([str(data), "--max-template-violation-rate", "0.1"]) == 0


def test_cli_several_paths_merge_into_one_report(tmp_path: Path):
    good = write_jsonl(tmp_path / "good.jsonl", [chat("q", "a")] * 3)
    bad = write_jsonl(tmp_path / "bad.jsonl", [chat("q", "a"), _msgs("user", "user", "assistant")])
    report_path = tmp_path / "report.json"
    assert cli_main([str(good), str(bad), "--checks", "template", "--json", str(report_path)]) == 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert (report["passed"], report["records"], report["sources"]) == (False, 5, [str(good), str(bad)])
    assert [d["passed"] for d in report["datasets"]] == [True, False]
    assert report["checks"] == {"template": {"passed": False}}
    per_file = report["datasets"][1]["checks"]["template"]
    assert per_file["violations"] == [{"record": 1, "line": 2, "problem": "two 'user' turns in a row"}]
    assert per_file["violation_rate"] == 0.5


@pytest.mark.parametrize(("args", "message"), [
    (["{bad}"], "{bad}:2: not valid JSON"),
    (["{good}", "{bad}"], "{bad}:2: not valid JSON"),
    (["{missing}"], "{missing}: no such file or directory"),
    (["{unknown}"], "{unknown}:1: cannot tell the dataset format"),
    (["{good}", "--format", "text"], None),  # a gate failure (missing field 'text'), not an input error: exit 1
    (["{good}", "--checks", "template,nope"], "checks.run: unknown gate 'nope'"),
    (["{good}", "--max-template-violation-rate", "1.5"], "checks.template.max_violation_rate: must be between 0"),
])
def test_cli_exit_2_on_bad_input_or_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                              message: str | None):
    paths = {"good": write_jsonl(tmp_path / "good.jsonl", [chat("q", "a")]),
             "bad": _lines(tmp_path / "bad.jsonl", [json.dumps(chat("q", "a")), "{nope"]),
             "unknown": write_jsonl(tmp_path / "unknown.jsonl", [{"foo": 1}]), "missing": tmp_path / "missing.jsonl"}
    report_path = tmp_path / "report.json"
    argv = [a.format(**paths) for a in args] + ["--json", str(report_path)]
    code = cli_main(argv)
    err = capsys.readouterr().err
    if message is None:
        assert code == 1 and report_path.is_file()
        return
    assert code == 2
    assert err.startswith(f"data-checks: error: {message.format(**paths)}")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not report_path.exists()


def test_cli_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exc:
        cli_main(["x.jsonl", "--format", "nope"])
    assert exc.value.code == 2
    assert "data-checks: error: argument --format: invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main([])
    assert exc.value.code == 2


def test_data_checks_imports_no_torch(tmp_path: Path):
    """The gates run in CI images without torch: neither the import nor a CLI run may pull it in."""
    data = write_jsonl(tmp_path / "d.jsonl", [chat("q", "a"), chat("q", "")])
    code = (
        "import sys, data_checks, data_checks.cli\n"
        "heavy = ('torch', 'transformers', 'trl', 'peft')\n"
        "assert not [m for m in heavy if m in sys.modules], 'import: ' + str([m for m in heavy if m in sys.modules])\n"
        f"rc = data_checks.cli.main([{str(data)!r}, '--json', {str(tmp_path / 'r.json')!r}])\n"
        "assert not [m for m in heavy if m in sys.modules], 'run: ' + str([m for m in heavy if m in sys.modules])\n"
        "print('rc', rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rc 1" in result.stdout  # the run really happened and the gate failed on record 2
    assert json.loads((tmp_path / "r.json").read_text())["checks"]["template"]["violations"][0]["line"] == 2


def test_python_dash_m_data_checks_exit_status(tmp_path: Path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}, {"text": ""}])
    result = subprocess.run([sys.executable, "-m", "data_checks", str(data)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "line 2: field 'text' is empty" in result.stdout


# ---------------------------------------------------------------- the real shared datasets

def test_shared_alpaca_v2_has_unparseable_lines():
    path = needs_shared(ALPACA) / "alpaca_libre_tasks_v2.jsonl"
    with pytest.raises(DataError) as err:
        read_records(path)
    assert err.value.line == 2279  # the first of its 14 lines with unescaped quotes
    assert str(err.value).startswith(f"{path}:2279: not valid JSON (Expecting ',' delimiter")


def test_shared_alpaca_v2_cli_exits_2_naming_the_first_bad_line(capsys: pytest.CaptureFixture[str]):
    path = needs_shared(ALPACA) / "alpaca_libre_tasks_v2.jsonl"
    assert cli_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"data-checks: error: {path}:2279: not valid JSON")


def test_shared_alpaca_v1_fails_the_template_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = needs_shared(ALPACA) / "alpaca_libre_tasks_v1.jsonl"
    report_path = tmp_path / "v1.json"
    assert cli_main([str(path), "--json", str(report_path)]) == 1
    assert "first: line 35: field 'output' is empty" in capsys.readouterr().out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    template = report["checks"]["template"]
    assert (report["passed"], report["records"], report["format"]) == (False, 2375, "alpaca")
    assert template["violation_rate"] == pytest.approx(237 / 2375)  # 237 rows with an empty output
    assert len(template["violations"]) == 100  # listed up to 100
    assert template["violations"][:3] == [
        {"record": 34, "line": 35, "problem": "field 'output' is empty"},
        {"record": 81, "line": 82, "problem": "field 'output' is empty"},
        {"record": 128, "line": 129, "problem": "field 'output' is empty"},
    ]
    # No blank lines in the file: record i sits on line i + 1.
    assert all(v["line"] == v["record"] + 1 for v in template["violations"])
    # Below its ~10% violation rate the gate passes.
    assert cli_main([str(path), "--max-template-violation-rate", "0.1"]) == 0
