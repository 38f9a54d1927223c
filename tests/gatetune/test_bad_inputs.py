"""User errors end to end: `python train.py ...` exits 2 with one readable line, no traceback, no run output.

Every case fails before a model is loaded, so each subprocess takes about a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, chat, run_cli, write_jsonl

GOOD_CHAT = [chat(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(20)]
# What a failed run may leave in its run directory: Hydra's record of the config and the log.
ALLOWED_IN_RUN_DIR = {".hydra", "train.log"}


@dataclass
class Case:
    """One user error: the data file (if any) and overrides, and what the one error line must say.

    `data` is a list of JSONL lines (dicts are dumped, strings written as they are) or raw bytes;
    `line_has` are substrings that must all appear on one output line ({data} is the data file's path);
    `also` are substrings that must appear somewhere in the output.
    """

    overrides: list[str]
    line_has: list[str]
    data: Any = None
    suffix: str = ".jsonl"
    also: list[str] = field(default_factory=list)


CASES = {
    # --- malformed data, named by file:line ---
    "malformed_jsonl_line": Case(
        [], ["{data}:3:", "not valid JSON"],
        data=[GOOD_CHAT[0], GOOD_CHAT[1], '{"messages": [{"role": "user", "content": "hi"}', GOOD_CHAT[2]]),
    "malformed_line_after_blank_lines": Case(  # blank lines still count: the number is the file's line
        [], ["{data}:5:", "not valid JSON"], data=[GOOD_CHAT[0], "", GOOD_CHAT[1], "   ", "{oops}", GOOD_CHAT[2]]),
    "non_object_line": Case([], ["{data}:2:", "expected a JSON object, got list"], data=[GOOD_CHAT[0], [1, 2, 3]]),
    "alpaca_missing_output": Case(
        [], ["{data}:4:", "missing field 'output'"],
        data=[{"instruction": f"Say {i}.", "input": "", "output": str(i)} for i in range(3)]
        + [{"instruction": "Say nothing.", "input": ""}]),
    "unknown_role": Case(
        [], ["{data}:2:", "unknown role 'robot'"],
        data=[GOOD_CHAT[0], {"messages": [{"role": "robot", "content": "beep"},
                                          {"role": "assistant", "content": "boop"}]}]),
    "empty_content": Case(
        [], ["{data}:3:", "(assistant) has empty content"],
        data=[*GOOD_CHAT[:2], chat("A question?", "   "), *GOOD_CHAT[2:5]]),
    "messages_not_a_list": Case(
        [], ["{data}:2:", "'messages' must be a non-empty list"], data=[GOOD_CHAT[0], {"messages": "hello"}]),
    "no_assistant_turn": Case(
        [], ["{data}:2:", "no assistant turn"],
        data=[GOOD_CHAT[0], {"messages": [{"role": "user", "content": "hello?"}]}]),
    "unknown_keys": Case([], ["{data}:1:", "cannot tell the dataset format", "(foo)"], data=[{"foo": 1}]),
    "empty_file": Case([], ["{data}: no records"], data=b""),
    "only_blank_lines": Case([], ["{data}: no records"], data=b"\n  \n\n"),
    "not_utf8": Case([], ["{data}:", "not UTF-8"], data=b'{"text": "caf\xe9"}\n'),
    "unknown_file_type": Case([], ["{data}:", "unknown file type '.txt'"], data=[GOOD_CHAT[0]], suffix=".txt"),
    "nonexistent_data_path": Case(["data.path={tmp}/no/such/train.jsonl"],
                                  ["{tmp}/no/such/train.jsonl", "no such file or directory"]),
    "too_few_records_to_hold_out": Case([], ["{data}:", "too few to hold out an eval split"], data=[GOOD_CHAT[0]]),
    "bad_line_in_eval_file": Case(
        ["data.eval_path={tmp}/eval.jsonl"], ["{tmp}/eval.jsonl:2:", "unknown role 'robot'"], data=GOOD_CHAT),
    "preference_data_with_sft_recipe": Case(
        [], ["data.format", "recipe 'lora'", "but the data is 'preference'"],
        data=[{"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}] * 3),
    # --- chat templates: a template's own error, or one whose answers cannot be located, names the record ---
    "template_rejects_system_message": Case(
        ["checks=off", "model.chat_template={root}/tests/chat_templates/gemma2.jinja"],
        ["{data}:3:", "chat template rejects this conversation: System role not supported"],
        data=[*GOOD_CHAT[:2], {"messages": [{"role": "system", "content": "Be brief."}, *GOOD_CHAT[2]["messages"]]},
              *GOOD_CHAT[3:]]),
    "template_without_the_answer": Case(
        ["checks=off", "model.chat_template={root}/tests/data/template_without_content.jinja"],
        ["{data}:1:", "turn 1 (assistant)", "does not write the assistant's content"], data=GOOD_CHAT),
    "reasoning_field_not_a_string": Case(
        [], ["{data}:2:", "messages[1].reasoning_content is int, expected a string"],
        data=[GOOD_CHAT[0], {"messages": [{"role": "user", "content": "Hi"},
                                          {"role": "assistant", "content": "Hello", "reasoning_content": 5}]}]),
    "reasoning_on_a_user_turn": Case(
        [], ["{data}:2:", "messages[0].thinking: only assistant turns carry reasoning"],
        data=[GOOD_CHAT[0], {"messages": [{"role": "user", "content": "Hi", "thinking": "hm"},
                                          {"role": "assistant", "content": "Hello"}]}]),
    "reward_cannot_score_reference": Case(  # MATH's LaTeX answers: the gsm8k reward reads no number in them
        ["recipe=grpo", "grpo.rewards=[gsm8k]"],
        ["{data}:", "reward 'gsm8k' (grpo.rewards) can score none of the 20 training records", "answer"],
        data=[{"prompt": f"Simplify {i}/{2 * i}.", "answer": "\\frac{1}{2}"} for i in range(1, 23)]),
    "reward_column_missing": Case(  # found before the gates or any model: not at the step-0 evaluation
        ["recipe=grpo", "grpo.rewards=[gsm8k]"],
        ["{data}:1:", "reward 'gsm8k' (grpo.rewards) reads the column 'answer', which this record lacks",
         "its columns: prompt"],
        data=[{"prompt": f"What is {i} plus {i}?"} for i in range(20)]),
    # --- config errors, named by key ---
    "eval_baseline_missing": Case(["eval.baseline=/nonexistent/run"], ["eval.baseline: cannot read",
                                                                       "/nonexistent/run"]),
    "eval_judge_unreachable": Case(["eval.judge.base_url=http://127.0.0.1:9/v1", "eval.judge.model=x"],
                                   ["eval.judge.base_url: cannot reach http://127.0.0.1:9/v1"]),
    "eval_vllm_interpreter_missing": Case(["eval.backend=vllm", "eval.vllm_python=/nonexistent/python"],
                                          ["eval.vllm_python: /nonexistent/python is not a file"]),
    "eval_unknown_backend": Case(["eval.backend=tgi"], ["eval.backend: must be auto, transformers or vllm"]),
    "eval_unknown_metric": Case(["eval.metrics=[bleu]"], ["eval.metrics: no metric 'bleu'", "rouge_l"]),
    "misspelt_trl_key": Case(["+trl.optimm=adamw_torch"], ["trl.optimm: not a field of TRL's SFTConfig",
                                                           "did you mean optim"]),
    "unknown_chat_template": Case(["model.chat_template=nope"], ["model.chat_template:", "no bundled template",
                                                                 "chatml"]),
    "chat_template_that_does_not_parse": Case(
        ["model.chat_template={root}/tests/data/template_that_does_not_parse.jinja"],
        ["model.chat_template:", "template_that_does_not_parse.jinja:2:", "does not parse"]),
    "max_length_over_the_context": Case(["model.context_length=128", "data.max_length=256"],
                                        ["data.max_length: 256 is longer than the context", "context_length=128"]),
    "unknown_recipe": Case(["recipe=nope"], ["Could not find 'recipe/nope'"], also=["full", "lora"]),
    "resume_path_as_the_group": Case(["resume={tmp}/checkpoints/checkpoint-3"],
                                     ["resume={tmp}/checkpoints/checkpoint-3", "resume.checkpoint={tmp}/checkpoints"]),
    "unknown_config_key": Case(["training.nonsense=1"], ["training.nonsense"], also=["not in 'TrainingConfig'"]),
    "wrongly_typed_value": Case(["training.learning_rate=abc"], ["training.learning_rate=abc"],
                                also=["could not be converted to Float"]),
    "unknown_enum_value": Case(["data.train_on=some"], ["data.train_on=some"], also=["answers", "all"]),
    "eval_fraction_out_of_range": Case(["data.eval_fraction=0.05"],
                                       ["data.eval_fraction: must be between 0.1 and 0.5", "0.05"]),
    "zero_effective_batch_size": Case(["training.effective_batch_size=0"],
                                      ["training.effective_batch_size: must be at least 1, got 0"]),
    "preference_format_with_sft_recipe": Case(["data.format=preference"],
                                              ["data.format:", "recipe 'lora'", "'preference'"]),
    "merge_with_full_recipe": Case(["recipe=full", "export.merge=true"], ["export.merge:", "no adapter to merge"]),
    "too_few_max_examples": Case(["data.max_examples=5"], ["data.max_examples: must be at least 10, got 5"]),
    "unknown_checks_gate": Case(["checks.run=[nope]"], ["checks.run: unknown gate 'nope'", "available: template"]),
    "fail_on_gate_not_run": Case(["checks.run=[]"], ["checks.fail_on:", "'template' is not in checks.run"]),
    "violation_rate_out_of_range": Case(["checks.template.max_violation_rate=2"],
                                        ["checks.template.max_violation_rate: must be between 0 and 1"]),
}


def _write_data(path: Path, data: Any) -> None:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in data), encoding="utf-8")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_user_error_exits_2_with_one_line_and_no_output(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)  # Hydra would print the stack trace
    data_path = tmp_path / f"train{case.suffix}"
    if case.data is not None:
        _write_data(data_path, case.data)
    else:
        write_jsonl(data_path, GOOD_CHAT)
    write_jsonl(tmp_path / "eval.jsonl", [GOOD_CHAT[0], {"messages": [{"role": "robot", "content": "x"}]}])
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    run_dir = tmp_path / "run"
    subst = {"tmp": str(tmp_path), "data": str(data_path), "root": str(ROOT)}
    overrides = [o.format(**subst) for o in case.overrides]
    if not any(o.startswith("data.path=") for o in overrides):
        overrides.append(f"data.path={data_path}")

    result = run_cli([*overrides, "logger=none", f"hydra.run.dir={run_dir}"], timeout=120)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    expected = [s.format(**subst) for s in case.line_has]
    assert any(all(s in line for s in expected) for line in output.splitlines()), \
        f"no output line contains all of {expected}:\n{output}"
    for s in case.also:
        assert s in output, output
    # Nothing but Hydra's config record and the log: no summary.json, adapter/, checkpoints/, data_checks.json.
    if run_dir.exists():
        assert {p.name for p in run_dir.iterdir()} <= ALLOWED_IN_RUN_DIR, sorted(p.name for p in run_dir.iterdir())
    # The user's files are untouched and nothing new appeared beside them.
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_error_is_logged_to_train_log(tmp_path: Path):
    """A data error reaches the run's train.log too, so a failed run can be diagnosed afterwards."""
    data_path = write_jsonl(tmp_path / "train.jsonl", [GOOD_CHAT[0], {"messages": "hello"}])
    run_dir = tmp_path / "run"
    result = run_cli([f"data.path={data_path}", "logger=none", f"hydra.run.dir={run_dir}"], timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    log_text = (run_dir / "train.log").read_text(encoding="utf-8")
    assert f"{data_path}:2: field 'messages' must be a non-empty list" in log_text
    assert "Traceback" not in log_text
