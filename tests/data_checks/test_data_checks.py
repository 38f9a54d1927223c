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
    iter_records,
    read_records,
    record_problems,
    run_gates,
    run_gates_streamed,
    summary_table,
    write_json_atomic,
)
from data_checks.cli import main as cli_main
from data_checks.formats import FormatProblem, consistency_problem, record_text, resolve_format
from data_checks.records import SkippedLines, looks_like_hub_id
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


def test_check_template_renders_chat_through_the_tokenizer(tiny_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
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
                                "truncated": None, "truncation_rate": None, "max_length": None,
                                "template_notes": {}}},
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


# ---------------------------------------------------------------- streamed reading and gates (data-checks' path)

def _words(seed: int, n: int) -> str:
    """A reproducible sentence of `n` distinct-ish words (no two seeds share a 5-gram by accident)."""
    return " ".join(f"w{(seed * 7919 + k * 104729) % 999983}" for k in range(n))


def _messy_alpaca() -> list[dict[str, Any]]:
    """Alpaca records with template violations, exact and near duplicates and PII."""
    records = [{"instruction": f"Task {i}: {_words(i, 8)}", "input": "", "output": _words(i + 500, 12)}
               for i in range(40)]
    records[3]["output"] = " "  # a violation: empty output
    records[7] = {"instruction": "no output here"}  # a violation: missing field
    records.append(dict(records[5]))  # an exact duplicate
    records.append({**records[9], "instruction": records[9]["instruction"].upper() + "!"})  # same normalised text
    records.append({**records[11], "output": records[11]["output"] + " extra"})  # a near duplicate
    records.append({"instruction": _words(77, 10), "input": "", "output": records[13]["output"]})  # same output only
    records[20]["input"] = "mail me at jane.doe@shop.co.uk or call +1 (415) 867-0132"
    return records


def _classification_csv(path: Path, wide: bool = False) -> Path:
    labels = {"ann_a": [i % 3 for i in range(30)], "ann_b": [(i % 3) if i % 5 else (i + 1) % 3 for i in range(30)]}
    if wide:
        rows = ["item,ann_a,ann_b"] + [f"item{i},{labels['ann_a'][i]},{labels['ann_b'][i]}" for i in range(30)]
    else:
        rows = ["item,annotator,label"] + [f"item{i},{name},{values[i]}" for name, values in labels.items()
                                           for i in range(30)]
    return _lines(path, rows)


def _both_reports(path: Path, fmt: str, config: ChecksConfig, against: Path | None = None,
                  skip_invalid: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(in-memory report, streamed report) for the same source."""
    data = read_records(path, skip_invalid=skip_invalid)
    other = read_records(against) if against is not None else None
    old = run_gates(data, resolve_format(data.records, fmt, data.path, data.lines[0]), config, against=other)
    new = run_gates_streamed(path, fmt, config, against=against, skip_invalid=skip_invalid)
    return old, new


def _gates(*names: str, **sections: Any) -> ChecksConfig:
    return ChecksConfig(run=list(names), fail_on=list(names), **sections)


@pytest.mark.parametrize("case", ["chat", "alpaca", "preference", "messy", "messy_against_skip_invalid",
                                  "messy_text_field_all_gates", "classification_long_csv",
                                  "classification_wide_csv"])
def test_streamed_and_in_memory_reports_are_identical(tmp_path: Path, case: str):
    from data_checks.agreement import AgreementGateConfig
    from data_checks.dedup import DedupGateConfig
    from data_checks.pii import PiiGateConfig

    default = ChecksConfig()
    fmt, against, skip_invalid, config = "auto", None, False, default
    if case == "chat":
        path = write_jsonl(tmp_path / "d.jsonl", [chat(_words(i, 6), _words(i + 99, 9)) for i in range(30)]
                           + [_msgs("user", "user", "assistant"), chat("q", "")])
    elif case == "alpaca":
        path = _lines(tmp_path / "d.csv", ["instruction,input,output"]
                      + [f"{_words(i, 6)},,{_words(i + 99, 9)}" for i in range(30)] + ["say hi,,"])
    elif case == "preference":
        records = [{"prompt": _words(i, 5), "chosen": _words(i + 50, 8), "rejected": _words(i + 80, 8)}
                   for i in range(30)]
        records += [{"prompt": "p", "chosen": "same", "rejected": "same"}, dict(records[2])]
        path = write_jsonl(tmp_path / "d.jsonl", records)
    elif case.startswith("messy"):
        lines = [json.dumps(r) for r in _messy_alpaca()]
        if case == "messy_against_skip_invalid":
            lines[10:10] = ['{"instruction": "cut', "[1, 2]"]
            against = write_jsonl(tmp_path / "eval.jsonl", [_messy_alpaca()[14], {"instruction": "x", "output": "y"}])
            skip_invalid = True
        if case == "messy_text_field_all_gates":
            config = ChecksConfig(run=["template", "dedup", "pii", "agreement"], fail_on=["template"],
                                  dedup=DedupGateConfig(field="output"), pii=PiiGateConfig(field="input"))
        path = _lines(tmp_path / "d.jsonl", lines)
    elif case == "classification_long_csv":
        path, fmt, config = _classification_csv(tmp_path / "a.csv"), "classification", _gates("agreement")
    else:
        path, fmt = _classification_csv(tmp_path / "a.csv", wide=True), "classification"
        config = _gates("agreement", agreement=AgreementGateConfig(annotator_columns=["ann_a", "ann_b"], min_kappa=0.5))

    old, new = _both_reports(path, fmt, config, against, skip_invalid)
    assert new == old
    assert json.dumps(new) == json.dumps(old)  # same key order too
    # The reports hold what each case is about, so an empty or wrong pair of reports cannot pass.
    checks = new["checks"]
    if case.startswith("classification"):
        assert checks["agreement"]["items"] == 30 and checks["agreement"]["kappa"] is not None
        assert "not_applicable" not in new and "lengths" not in new
    elif case.startswith("messy"):
        assert checks["template"]["violation_rate"] > 0
        if case == "messy_text_field_all_gates":
            assert new["not_applicable"] == {"agreement": "applies to annotation data (--format classification)"}
            assert checks["pii"]["records_with_pii"] == 1  # the input field holds it
            assert checks["dedup"]["clusters"] == [[5, 40], [9, 41], [11, 42], [13, 43]]  # outputs only
        else:
            assert [v["line"] for v in checks["template"]["violations"]] == [4, 8]
            assert checks["pii"]["by_type"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
            assert checks["dedup"]["clusters"] == [[5, 40], [9, 41], [11, 42]]
        if skip_invalid:
            skipped = new["skipped_invalid"]
            assert skipped["count"] == 2 and [s["line"] for s in skipped["lines"]] == [11, 12]
            assert skipped["lines"][0]["problem"].startswith("not valid JSON")
            assert new["against"] == str(against) and checks["dedup"]["contamination"]["contaminated"] == 1
    else:
        assert new["records"] in (32, 31) and sum(new["lengths"]["counts"]) == new["records"]
        assert not new["passed"]


def test_streamed_and_in_memory_reports_match_with_a_tokenizer(tmp_path: Path, tiny_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                               "{{ raise_exception('System role not supported') }}{% endif %}"
                               "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}")
    records = [chat(_words(i, 3 + 4 * i), _words(i + 50, 5)) for i in range(12)]
    records.append(_msgs("system", "user", "assistant"))
    path = write_jsonl(tmp_path / "d.jsonl", records)
    data = read_records(path)
    config = _gates("template")
    old = run_gates(data, "chat", config, tokenizer=tokenizer, max_length=60)
    new = run_gates_streamed(path, "auto", config, tokenizer=tokenizer, max_length=60)
    assert new == old
    template = new["checks"]["template"]
    assert [v["line"] for v in template["violations"]] == [13]
    assert "System role not supported" in template["violations"][0]["problem"]
    assert 0 < template["truncated"] < 12


@pytest.mark.parametrize("case", ["format_then_bad_line", "agreement_field_missing_everywhere",
                                  "agreement_bad_row_then_bad_line", "agreement_bad_row_then_bad_against",
                                  "agreement_bad_row_before_missing_field"])
def test_streamed_and_in_memory_errors_are_identical(tmp_path: Path, case: str):
    """The streamed path reports the error the in-memory path does, even when it meets another one first."""
    fmt, config, against = "auto", ChecksConfig(), None
    rows = [{"item": f"i{i}", "annotator": a, "label": str(i % 2)} for i in range(6) for a in ("x", "y")]
    if case == "format_then_bad_line":  # line 1 has unknown keys, line 3 is not JSON: the bad line wins
        path = _lines(tmp_path / "d.jsonl", ['{"foo": 1}', '{"foo": 2}', "{nope"])
        expected = f"{path}:3: not valid JSON"
    else:
        fmt, config = "classification", _gates("agreement")
        if case == "agreement_field_missing_everywhere":
            path = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "annotator": "x", "label": "1"}])
            expected = f"{path}: no record has the item field 'item'"
        elif case == "agreement_bad_row_then_bad_line":
            rows[1] = {"item": "i0", "label": "1"}  # no annotator on line 2, then a bad line at the end
            path = _lines(tmp_path / "d.jsonl", [json.dumps(r) for r in rows] + ["[1]"])
            expected = f"{path}:13: expected a JSON object, got list"
        elif case == "agreement_bad_row_then_bad_against":
            rows[1] = {"item": "i0", "label": "1"}
            path = write_jsonl(tmp_path / "d.jsonl", rows)
            against = _lines(tmp_path / "eval.jsonl", ['{"item": "a", "annotator": "x", "label": "1"}', "{oops"])
            expected = f"{against}:2: not valid JSON"
        else:  # a bad row on line 2, and no record has the label field: the missing field is named
            rows = [{"item": "i0", "annotator": "x"}, {"item": "i0", "annotator": ["x"]}]
            path = write_jsonl(tmp_path / "d.jsonl", rows)
            expected = f"{path}: no record has the label field 'label'"
    errors = []
    for run in (lambda: _both_reports(path, fmt, config, against)[0],
                lambda: run_gates_streamed(path, fmt, config, against=against)):
        with pytest.raises(DataError) as err:
            run()
        errors.append(str(err.value))
    assert errors[0] == errors[1]
    assert errors[1].startswith(expected)


def test_iter_records_is_lazy_and_stops_at_the_first_bad_line(tmp_path: Path):
    path = _lines(tmp_path / "d.jsonl", ['{"text": "a"}', "", '{"text": "b"}', "{bad", '{"text": "c"}'])
    records = iter_records(path)
    assert next(records) == (1, {"text": "a"})
    assert next(records) == (3, {"text": "b"})  # handed out before the bad line is read
    with pytest.raises(DataError) as err:
        next(records)
    assert str(err.value).startswith(f"{path}:4: not valid JSON")
    rows = iter_records(_lines(tmp_path / "d.csv", ["text", "a", "b,c", "d"]))
    assert next(rows) == (2, {"text": "a"})
    with pytest.raises(DataError, match=r"d\.csv:3: row has more cells than the header"):
        next(rows)


def test_iter_records_skip_invalid_counts_every_line_and_lists_a_few(tmp_path: Path):
    path = _lines(tmp_path / "d.jsonl", ['{"text": "a"}', "{x", "[]", '{"text": "b"}', "7"])
    skipped = SkippedLines(keep=2)
    assert list(iter_records(path, skip_invalid=True, skipped=skipped)) == [(1, {"text": "a"}), (4, {"text": "b"})]
    assert skipped.count == 3
    assert [s["line"] for s in skipped.lines] == [2, 3]
    assert skipped.lines[1]["problem"] == "expected a JSON object, got list"


@pytest.mark.parametrize(("name", "content"), [
    ("d.jsonl", b""), ("d.jsonl", b"\n  \n\n"), ("d.jsonl", b'{"text": "caf\xe9"}\n'), ("d.jsonl", b"[1]\n"),
    ("d.jsonl", b'{"text": "a"}\n"b"\n'), ("d.csv", b"text\ncaf\xe9\n"), ("d.csv", b""), ("d.csv", b"text\n\n"),
    ("d.json", b"[]"), ("d.json", b'[{"text": "caf\xe9"}]'), ("d.txt", b"hi\n"), ("missing.jsonl", None),
], ids=["empty", "blank", "not_utf8", "list_line", "string_line", "csv_not_utf8", "csv_empty", "csv_header_only",
        "json_empty_list", "json_not_utf8", "unknown_suffix", "missing"])
def test_iter_records_fails_as_read_records_does(tmp_path: Path, name: str, content: bytes | None):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as old:
        read_records(path)
    with pytest.raises(DataError) as new:
        list(iter_records(path))
    assert str(new.value) == str(old.value)
    assert (new.value.path, new.value.line) == (old.value.path, old.value.line)


def _big_file(path: Path, n: int, bad_lines: dict[int, bytes]) -> Path:
    """`n` lines of distinct, clean alpaca records, with the lines in `bad_lines` (1-based) replaced."""
    with path.open("wb") as f:
        for number in range(1, n + 1):
            record = {"instruction": f"Item {number}: {_words(number, 6)}", "input": "",
                      "output": _words(number + n, 10)}
            f.write(bad_lines.get(number, json.dumps(record).encode()) + b"\n")
    return path


def test_cli_streams_20000_lines_with_malformed_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = {1234: b'{"instruction": "cut off', 5678: b"[1, 2, 3]", 19_999: b'{"output": "caf\xe9"}'}
    path = _big_file(tmp_path / "big.jsonl", 20_000, bad)
    report_path, clean = tmp_path / "report.json", tmp_path / "clean.jsonl"

    # --skip-invalid: every bad line counted, the gates decide the exit status (clean data: 0).
    assert cli_main([str(path), "--skip-invalid", "--json", str(report_path), "--write-clean", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "3 unparseable lines skipped (--skip-invalid)" in out
    assert "clean copy: 19997 of 19997 records written" in out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert (report["records"], report["passed"]) == (19_997, True)
    assert report["skipped_invalid"]["count"] == 3
    assert [s["line"] for s in report["skipped_invalid"]["lines"]] == [1234, 5678, 19_999]
    assert report["skipped_invalid"]["lines"][2]["problem"].startswith("not UTF-8 text")
    assert sum(report["lengths"]["counts"]) == 19_997
    assert sum(1 for _ in clean.open(encoding="utf-8")) == 19_997
    # ... and a gate that fails decides it too: one empty output among 20,000 fails the template gate.
    path = _big_file(path, 20_000, {**bad, 10: b'{"instruction": "say nothing", "output": ""}'})
    assert cli_main([str(path), "--skip-invalid", "--checks", "template", "--json", str(report_path)]) == 1
    assert "first: line 10: field 'output' is empty" in capsys.readouterr().out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["skipped_invalid"]["count"] == 3 and report["checks"]["template"]["violation_rate"] == 1 / 19_997

    # Without it: exit 2 naming the first bad line, and nothing written (no report, no clean copy).
    report_path.unlink()
    clean.unlink()
    assert cli_main([str(path), "--json", str(report_path), "--write-clean", str(clean)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"data-checks: error: {path}:1234: not valid JSON (")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""
    assert sorted(os.listdir(tmp_path)) == ["big.jsonl"]


def test_streamed_pass_keeps_no_records(tmp_path: Path):
    """Bounded memory: the streamed template gate holds a few bytes per record; reading the records holds them all."""
    import tracemalloc

    from data_checks.gates import stream_gates

    path = _big_file(tmp_path / "big.jsonl", 10_000, {})
    config = _gates("template")
    tracemalloc.start()
    try:
        run = stream_gates(path, "auto", config)
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        data = read_records(path)
        _, loaded_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.report["records"] == len(data) == 10_000 and run.report["checks"]["template"]["passed"]
    assert list(run.lines[:3]) == [1, 2, 3] and run.lines.itemsize == 4  # an array('I'), not a list of ints
    assert loaded_peak > 5_000_000  # the dicts: several hundred bytes a record
    assert streamed_peak < 1_000_000, streamed_peak  # word counts and lines (8 bytes a record) and fixed costs


def test_cli_write_clean_second_pass_matches_the_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from data_checks.dedup import DedupGateConfig, find_near_duplicates, keep_indices
    from data_checks.pii import redact_record

    records = _messy_alpaca()
    path = _lines(tmp_path / "d.jsonl", [json.dumps(r) for r in records[:10]] + ["{bad"]
                  + [json.dumps(r) for r in records[10:]])
    clean = tmp_path / "out" / "clean.jsonl"
    assert cli_main([str(path), "--skip-invalid", "--write-clean", str(clean), "--redact-pii"]) == 1
    assert f"clean copy: {len(records) - 3} of {len(records)} records written" in capsys.readouterr().out
    # the three near-duplicate copies (40-42) are left out: they were compared with the originals
    written = [json.loads(line) for line in clean.read_text(encoding="utf-8").splitlines()]
    texts = [record_text(r, "alpaca") for r in records]
    keep = keep_indices(find_near_duplicates(texts, DedupGateConfig()), len(records))
    from data_checks.pii import PiiGateConfig

    assert written == [redact_record(records[i], PiiGateConfig()) for i in keep]
    assert len(written) == len(records) - 3 and written[-1] == records[43]
    assert written[20]["input"] == "mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>"
    assert os.listdir(clean.parent) == ["clean.jsonl"]


def test_cli_redact_pii_honours_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """--redact-pii redacts what the gate counts under --config: by default high-confidence PII only; with
    fail_on_confidence=low and count_placeholders=true also phone-shaped numbers and known-fake values."""
    record = {"instruction": "Reply to ann@shop.co.uk", "input": "or to john@example.com, desk 212 867 5309",
              "output": "Done."}
    path = _lines(tmp_path / "d.jsonl", [json.dumps(record)])
    default, strict = tmp_path / "default.jsonl", tmp_path / "strict.jsonl"
    assert cli_main([str(path), "--checks", "pii", "--write-clean", str(default), "--redact-pii"]) == 1
    assert json.loads(default.read_text(encoding="utf-8")) == {
        "instruction": "Reply to <EMAIL_ADDRESS>", "input": "or to john@example.com, desk 212 867 5309",
        "output": "Done."}
    config = tmp_path / "checks.yaml"
    config.write_text("pii:\n  fail_on_confidence: low\n  count_placeholders: true\n", encoding="utf-8")
    assert cli_main([str(path), "--config", str(config), "--checks", "pii", "--write-clean", str(strict),
                     "--redact-pii"]) == 1
    assert json.loads(strict.read_text(encoding="utf-8"))["input"] == "or to <EMAIL_ADDRESS>, desk <PHONE_NUMBER>"
    out = capsys.readouterr().out
    assert "low confidence, not counted: PHONE_NUMBER 1" in out and "placeholders, not counted: EMAIL_ADDRESS 1" in out
    assert json.loads(path.read_text(encoding="utf-8")) == record  # the input is never modified


def test_cli_write_clean_refuses_a_file_that_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]):
    import data_checks.cli as cli

    path = write_jsonl(tmp_path / "d.jsonl", [{"text": _words(i, 8)} for i in range(5)])
    checked = cli.stream_gates

    def check_then_append(*args: Any, **kwargs: Any) -> Any:
        run = checked(*args, **kwargs)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"text": "late arrival"}) + "\n")
        return run

    monkeypatch.setattr(cli, "stream_gates", check_then_append)
    assert cli_main([str(path), "--write-clean", str(tmp_path / "clean.jsonl")]) == 2
    assert f"{path}: changed while being checked (5 records, now 6); nothing written" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["d.jsonl"]


def test_csv_cell_over_the_field_limit_is_a_data_error(tmp_path: Path):
    import csv

    path = tmp_path / "d.csv"
    limit = csv.field_size_limit()
    path.write_text(f'text\nfine\n"{"a" * (limit + 1)}"\nlater\n', encoding="utf-8")
    for read in (read_records, lambda p: list(iter_records(p))):
        with pytest.raises(DataError) as err:
            read(path)
        assert (err.value.line, err.value.problem) == (3, f"not valid CSV (field larger than field limit ({limit}))")
