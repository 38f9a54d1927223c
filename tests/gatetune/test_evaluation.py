"""Generation-based evaluation (gatetune/evaluation/): the examples each format gives, the scores and their
aggregates, the regression gate, the deployment decision, and end to end after a real training run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gatetune.errors import UserError
from gatetune.evaluation.config import EvalConfig, eval_problems
from gatetune.evaluation.decision import deploy_decision, improvement
from gatetune.evaluation.examples import eval_example
from gatetune.evaluation.generate import Generation
from gatetune.evaluation.metrics import delta, metric_names, output_stats, score_examples
from gatetune.evaluation.regression import regression_check, regression_message
from tests.conftest import ROOT, chat, compose, write_jsonl

# ------------------------------------------------------------------------------------------- examples


def test_each_format_gives_the_prompt_and_the_answer():
    turns = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "2+2?"},
                          {"role": "assistant", "content": "4"}]}
    example = eval_example(turns, 3, "chat")
    assert (example.line, example.prompt, example.answer) == (3, turns["messages"][:4], "4")
    alpaca = eval_example({"instruction": "Add.", "input": "2 and 2", "output": "4"}, 1, "alpaca")
    assert alpaca.prompt[-1]["role"] == "user" and "2 and 2" in alpaca.prompt[-1]["content"] and alpaca.answer == "4"
    plain = eval_example({"prompt": "2+2=", "completion": "4"}, 1, "prompt_completion")
    assert (plain.prompt, plain.answer) == ("2+2=", "4")
    preference = eval_example({"prompt": [{"role": "user", "content": "q"}],
                               "chosen": [{"role": "assistant", "content": "good"}],
                               "rejected": [{"role": "assistant", "content": "bad"}]}, 1, "preference")
    assert (preference.prompt, preference.answer) == ([{"role": "user", "content": "q"}], "good")
    grpo = eval_example({"prompt": "What is 2+2?", "answer": "#### 4"}, 1, "prompt")
    assert (grpo.prompt, grpo.answer, grpo.record["answer"]) == ("What is 2+2?", None, "#### 4")
    assert eval_example({"text": "just text"}, 1, "text") is None


# --------------------------------------------------------------------------------------------- scores

def _gen(text: str, tokens: int = 5, stopped: bool = True) -> list[Generation]:
    """One example's generations: a single greedy one."""
    return [Generation(text, tokens, stopped)]


def test_scores_read_the_records_own_column_else_the_formats_answer():
    examples = [eval_example({"prompt": "q", "answer": "#### 12"}, 1, "prompt"),
                eval_example({"prompt": "q", "answer": "#### 7"}, 2, "prompt")]
    scores, aggregates = score_examples(["final_number"], examples, [_gen("so 12"), _gen("so 8")], None)
    assert scores == {"final_number": [1.0, 0.0]} and aggregates == {"final_number": 0.5}
    chats = [eval_example(chat("Capital of France?", "Paris."), 1, "chat"),
             eval_example(chat("Capital of Peru?", "Lima."), 2, "chat")]
    scores, aggregates = score_examples(["exact_match", "rouge_l"], chats, [_gen("paris"), _gen("Quito")], None)
    assert scores["exact_match"] == [1.0, 0.0] and aggregates["exact_match"] == 0.5
    # Multiple-choice letters stay labels ("A" is not dropped as an article); case and punctuation are ignored.
    labels = [eval_example({"prompt": "p", "label": lab}, i, "prompt") for i, lab in enumerate("AABB")]
    _, aggregates = score_examples(["label"], labels, [_gen(t) for t in ("a", "B)", "b", "B.")], None)
    assert aggregates["label_accuracy"] == 0.75
    assert aggregates["label_macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_several_samples_give_pass_at_1_as_their_mean_and_pass_at_k():
    examples = [eval_example({"prompt": "q", "answer": a}, i, "prompt") for i, a in enumerate(["3", "5", "8", ""])]
    samples = [[Generation(t, 2, True) for t in texts]
               for texts in (["3", "4", "3"], ["1", "2", "5"], ["0", "0", "0"], ["3", "3", "3"])]
    scores, aggregates = score_examples(["final_number"], examples, samples, None)
    assert scores["final_number"] == [pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0, None]
    assert aggregates["final_number"] == pytest.approx(1 / 3)  # pass@1 over the three scorable examples
    assert aggregates["final_number_pass@3"] == pytest.approx(2 / 3)
    assert output_stats(samples)["stop_rate"] == 1.0


def test_output_stats_and_delta():
    generations = [_gen("x", t, t < 20) for t in range(1, 21)]  # 19 stopped, lengths 1..20
    stats = output_stats(generations)
    assert stats == {"stop_rate": 0.95, "mean_output_tokens": 10.5, "p95_output_tokens": 19}
    assert delta({"a": 0.7, "b": None}, {"a": 0.5, "b": 0.1}) == {"a": pytest.approx(0.2), "b": None}


def test_default_metrics_follow_the_data_and_the_rewards():
    assert metric_names(None, "chat", []) == ["rouge_l", "exact_match"]
    assert metric_names(None, "prompt", ["gsm8k", "format", "math"]) == ["final_number", "math"]
    assert metric_names(["label"], "chat", []) == ["label"]


def test_eval_config_problems_name_the_key():
    assert eval_problems(EvalConfig()) == []
    assert eval_problems(EvalConfig(metrics=["bleu"]))[0].startswith("eval.metrics: no metric 'bleu'")
    assert eval_problems(EvalConfig(min_stop_rate=1.5))[0].startswith("eval.min_stop_rate")


# ------------------------------------------------------------------------------------------ regression

def _baseline(tmp_path: Path, **tuned: float) -> Path:
    path = tmp_path / "baseline" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": "completed", "eval": {"tuned": tuned, "stop_rate": 0.97}}))
    return path.parent


@pytest.mark.parametrize("before,passed", [(0.56, False), (0.54, True), (0.50, True), (0.40, True)])
def test_regression_gate_fails_six_points_down_and_passes_four(tmp_path: Path, before: float, passed: bool):
    evaluation = {"tuned": {"rouge_l": 0.50, "exact_match": 0.2}, "stop_rate": 0.97}
    check = regression_check(evaluation, str(_baseline(tmp_path, rouge_l=before, exact_match=0.2)), 5.0)
    assert check["passed"] is passed
    row = next(r for r in check["metrics"] if r["metric"] == "rouge_l")
    assert row["drop_points"] == pytest.approx(100 * (before - 0.50))
    if not passed:
        assert check["failed"] == ["rouge_l"]
        message = regression_message(check)
        assert "rouge_l 0.5000 vs 0.5600" in message and str(tmp_path / "baseline") in message


def test_regression_gate_errors_are_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match="eval.baseline: cannot read"):
        regression_check({"tuned": {"a": 1.0}}, str(tmp_path / "nowhere"), 5.0)
    with pytest.raises(UserError, match="shares no metric"):
        regression_check({"tuned": {"math": 1.0}}, str(_baseline(tmp_path, rouge_l=0.5)), 5.0)


# -------------------------------------------------------------------------------------------- decision

def test_a_run_that_got_worse_is_not_deploy_ready():
    """The DPO case from the issue: 0.6931 at step 0, 0.7030 best: the export is worse than the base."""
    worse = improvement({"eval_metric": "eval_loss", "eval_metric_initial": 0.6931, "eval_metric_best": 0.7030},
                        greater_is_better=False)
    assert worse["improved"] is False
    summary = {"gates": {"passed": True}, "improvement": worse,
               "eval": {"stop_rate": 1.0, "tuned": {}}}
    decision = deploy_decision(summary, EvalConfig())
    assert decision["deploy_ready"] is False
    assert [r["check"] for r in decision["reasons"] if not r["passed"]] == ["improved"]
    summary["improvement"] = improvement({"eval_metric": "eval_reward", "eval_metric_initial": 0.1,
                                          "eval_metric_best": 0.3}, greater_is_better=True)
    assert deploy_decision(summary, EvalConfig())["deploy_ready"] is True
    summary["eval"]["stop_rate"] = 0.9
    assert deploy_decision(summary, EvalConfig())["deploy_ready"] is False
    assert deploy_decision({**summary, "eval": None}, EvalConfig())["reasons"][-1]["check"] == "evaluation"


# --------------------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_evaluation_after_a_real_run_and_the_regression_gate(tmp_path: Path, tiny_model_dir: Path):
    from gatetune.run import run

    overrides = ["logger=none", "training.max_steps=80", "training.eval_every_steps=40", "eval.max_examples=8"]
    summary = run(compose(overrides), tmp_path / "run").summary
    evaluation = summary["eval"]
    assert evaluation["metrics"] == ["rouge_l", "exact_match"] and evaluation["examples"] == 8
    assert evaluation["max_new_tokens"] == 32  # twice the longest answer of 8 short sentences, at least 32
    for name in evaluation["metrics"]:
        assert evaluation["delta"][name] == pytest.approx(evaluation["tuned"][name] - evaluation["base"][name])
    assert evaluation["tuned"]["rouge_l"] > evaluation["base"]["rouge_l"] + 0.1  # it learnt the task's phrasing
    rows = [json.loads(line) for line in Path(evaluation["results_path"]).read_text().splitlines()]
    assert len(rows) == 8 and all(r["output"] is not None and "base_output" in r for r in rows)
    assert sum(r["scores"]["rouge_l"] for r in rows) / 8 == pytest.approx(evaluation["tuned"]["rouge_l"])
    assert evaluation["stop_rate"] == sum(r["stopped"] for r in rows) / 8
    assert isinstance(summary["deploy_ready"], bool) and summary["deploy_reasons"]
    assert "## Evaluation" in (tmp_path / "run" / "adapter" / "README.md").read_text()
    assert (tmp_path / "run" / "eval.png").stat().st_size > 1000

    # gatetune-eval on the run directory recomposes the same eval split and gives the same numbers; against
    # a baseline 6 points better it fails (exit 1), against one 4 points better it passes.
    tuned = evaluation["tuned"]["rouge_l"]
    for points, code in ((6, 1), (4, 0)):
        baseline = _baseline(tmp_path / str(points), rouge_l=tuned + points / 100)
        done = _finetune_eval([str(tmp_path / "run"), "--baseline", str(baseline), "--out",
                               str(tmp_path / f"e{points}"), "--max-examples", "8"])
        assert done.returncode == code, done.stderr[-2000:]
        again = json.loads((tmp_path / f"e{points}" / "eval.json").read_text())
        assert again["tuned"] == pytest.approx(evaluation["tuned"])
        if code:
            assert "regression against" in done.stderr and "rouge_l" in done.stderr

    # Three sampled completions per prompt: the 0/1 metrics get pass@3 beside their pass@1 mean.
    done = _finetune_eval([str(tmp_path / "run"), "--out", str(tmp_path / "sampled"), "--max-examples", "8",
                           "--samples", "3"])
    assert done.returncode == 0, done.stderr[-2000:]
    sampled = json.loads((tmp_path / "sampled" / "eval.json").read_text())
    assert sampled["samples"] == 3 and "exact_match_pass@3" in sampled["tuned"]
    assert "rouge_l_pass@3" not in sampled["tuned"]  # a graded score has no pass@k
    rows = [json.loads(line) for line in (tmp_path / "sampled" / "eval_results.jsonl").read_text().splitlines()]
    assert all(len(r["samples"]) == 3 for r in rows)

    # The same gate inside training: status failed_regression, exit 1, named on one line.
    baseline = _baseline(tmp_path / "6", rouge_l=tuned + 0.06)
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides, f"eval.baseline={baseline}",
                           f"hydra.run.dir={tmp_path / 'gated'}"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads((tmp_path / "gated" / "summary.json").read_text())["status"] == "failed_regression"


def _finetune_eval(args: list[str]) -> Any:
    return subprocess.run([sys.executable, "-m", "gatetune.evaluation.cli", *args], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)


def test_finetune_eval_needs_data_for_a_plain_model(tmp_path: Path, tiny_model_dir: Path):
    done = _finetune_eval([str(tiny_model_dir)])
    assert done.returncode == 2 and "--data: needed when PATH is not a run directory" in done.stderr
    data = write_jsonl(tmp_path / "d.jsonl", [chat("Say hi.", "Hi.")] * 3)
    done = _finetune_eval([str(tiny_model_dir), "--data", str(data), "--metrics", "bleu"])
    assert done.returncode == 2 and "no metric 'bleu'" in done.stderr
