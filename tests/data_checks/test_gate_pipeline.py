"""The gate protocol, the registry and the one pipeline: a gate is one spec, and both entry points
(records in memory for training, a streamed file for data-checks) run the same code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from data_checks import ChecksConfig, LoadedData, run_gates, run_gates_streamed, summary_table
from data_checks.config import AVAILABLE_GATES
from data_checks.formats import consistency_problem
from data_checks.gate import GateContext, GateSpec
from data_checks.gates import check_records
from data_checks.html_report import render_html
from data_checks.registry import GATES
from tests.conftest import write_jsonl


def test_the_registry_is_what_checks_run_can_name():
    assert AVAILABLE_GATES == ("template", "dedup", "pii", "agreement")
    for name, spec in GATES.items():
        assert spec.name == name
        assert callable(spec.start) and callable(spec.summary) and callable(spec.html_section)
    assert [n for n, s in GATES.items() if s.annotation_data] == ["agreement"]
    assert [n for n, s in GATES.items() if s.reads_against] == ["dedup"]


@dataclass
class _LongResult:
    passed: bool
    longest: int

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "longest": self.longest}


class _LongGate:
    """A toy gate: fails when a record's text has more than `limit` words."""

    def __init__(self, context: GateContext) -> None:
        self.limit, self.longest, self.seen = 3, 0, []

    def add(self, record: dict[str, Any], line: int, text: str | None) -> None:
        self.seen.append(line)
        self.longest = max(self.longest, len(text.split()))

    def result(self, against: Any = None) -> _LongResult:
        return _LongResult(self.longest <= self.limit, self.longest)


_SPEC = GateSpec("long", _LongGate, lambda r: f"longest {r['longest']} words",
                 lambda r: f"<p>longest record: {r['longest']} words</p>")


def test_a_new_gate_is_one_spec_in_the_registry(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(GATES, "long", _SPEC)
    config = ChecksConfig(run=["template", "long"], fail_on=["long"])
    records = [{"text": "one two"}, {"text": "one two three four five"}]
    path = write_jsonl(tmp_path / "d.jsonl", records)
    for report in (run_gates_streamed(path, "auto", config),
                   run_gates(LoadedData(str(path), records, [1, 2]), "text", config)):
        assert report["checks"]["long"] == {"passed": False, "longest": 5}
        assert not report["passed"]  # it is in fail_on
        assert re.search(r"^long +FAIL +longest 5 words$", summary_table(report), re.M)
        assert config.problems() == []
        assert "<p>longest record: 5 words</p>" in render_html(report)


def test_the_pipeline_feeds_every_record_once_with_its_line_and_text(monkeypatch):
    seen: list[tuple[int, str]] = []

    class Recorder(_LongGate):
        def add(self, record, line, text):
            seen.append((line, text))

    monkeypatch.setitem(GATES, "rec", GateSpec("rec", Recorder, str, str))
    records = [{"instruction": "say hi", "output": "hi"}, {"instruction": "say yo", "input": "now", "output": "yo"}]
    run = check_records("mem", "alpaca", [(3, records[0]), (7, records[1])], ChecksConfig(run=["rec"], fail_on=[]))
    assert seen == [(3, "say hi\nhi"), (7, "say yo\nnow\nyo")]
    assert list(run.lines) == [3, 7] and run.records == 2
    assert run.report["lengths"]["max"] == 4  # "say yo now yo"


def test_gates_that_do_not_apply_are_reported_not_run():
    run = check_records("mem", "classification", [(1, {"item": "1", "annotator": "a", "label": "x"})],
                        ChecksConfig(run=["template", "agreement"], fail_on=[]))
    assert run.not_applicable == {"template": "does not apply to annotation data"}
    assert list(run.results) == ["agreement"]
    assert "lengths" not in run.report


# --------------------------------------------- one record-to-conversation mapping, checked as trained

@pytest.mark.parametrize("record, problem", [
    ({"prompt": "hi", "completion": [{"role": "user", "content": "yo"}]},
     "completion has no assistant turn, so nothing in it would be trained on"),
    ({"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}], "completion": "yo"},
     "prompt + completion: two 'assistant' turns in a row"),
    ({"prompt": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}], "completion": "yo"},
     "prompt + completion: system message at position 1; it must come first"),
    ({"prompt": "p", "chosen": [{"role": "assistant", "content": "c"}], "rejected": [{"role": "user", "content": "r"}]},
     "rejected has no assistant turn, so nothing in it would be trained on"),
])
def test_the_gate_checks_the_conversation_training_builds(record: dict, problem: str):
    fmt = "preference" if "chosen" in record else "prompt_completion"
    assert consistency_problem(record, fmt) == problem
    report = run_gates(LoadedData("mem.jsonl", [record], [1]), fmt, ChecksConfig(run=["template"],
                                                                              fail_on=["template"]))
    assert not report["passed"]
    assert report["checks"]["template"]["violations"][0]["problem"] == problem
