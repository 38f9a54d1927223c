"""The verifiers (gatetune/verifiers.py) on real data with known right and wrong answers, the code sandbox's
limits, the rewards built on them (same scores as the metrics), and the pre-training check of what a
reward can score (gatetune/reward_checks.py)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from data_checks import DataError, LoadedData
from gatetune import verifiers
from gatetune.code_sandbox import run_python
from gatetune.reward_checks import check_reward_scoring
from gatetune.rewards import gsm8k_final_number, load_rewards, verified
from tests.conftest import ROOT, needs_shared

DATA = ROOT / "tests" / "data"


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


MATH = read_jsonl(DATA / "math500" / "test_first100.jsonl")
HUMANEVAL = read_jsonl(DATA / "humaneval" / "HumanEval.jsonl.gz")


def trl_call(reward: Any, completions: list, **columns: Any) -> list:
    n = len(completions)
    return reward(prompts=columns.pop("prompts", ["p"] * n), completions=completions, completion_ids=[[1]] * n,
                  trainer_state=None, log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None, **columns)


# ------------------------------------------------------------------------------------------------ math

def test_math_solutions_score_one_against_their_own_answer_and_zero_against_the_next():
    """MATH-500 (first 100): each human solution's \\boxed{} answer is equivalent to its `answer` column; against
    the next problem's answer only the one truly equivalent pair (5 and x=5) scores."""
    assert len(MATH) == 100
    own = [verifiers.math_answer(r["solution"], r["answer"]) for r in MATH]
    assert own == [1.0] * 100
    shifted = [verifiers.math_answer(r["solution"], MATH[(i + 1) % 100]["answer"]) for i, r in enumerate(MATH)]
    assert [i for i, s in enumerate(shifted) if s] == [22]
    assert (MATH[22]["answer"], MATH[23]["answer"]) == ("5", "x=5")


@pytest.mark.parametrize("completion,reference,expected", [
    ("So the answer is $\\boxed{\\dfrac{14}{3}}$.", "\\frac{14}{3}", 1.0),
    ("14/3", "\\frac{14}{3}", 1.0),
    ("The polar form is $(3, \\pi/2)$", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0),
    ("$\\boxed{4.67}$", "\\frac{14}{3}", 0.0),
    ("no idea", "\\frac{14}{3}", 0.0),
    ("anything", "", None),
])
def test_math_answer_cases(completion: str, reference: str, expected: float | None):
    assert verifiers.math_answer(completion, reference) == expected


def test_final_number_reads_no_number_in_a_latex_reference():
    """The gsm8k reward on MATH: its last-number rule would read `\\frac{14}{3}` as 3, a wrong reference."""
    assert verifiers.final_number("3", "\\frac{14}{3}") is None
    assert verifiers.final_number("#### 3", "#### 3") == 1.0
    for r in MATH:
        number = verifiers.reference_number(r["answer"])
        if r["answer"].lstrip("-").isdigit():
            assert number == int(r["answer"]), r["answer"]
        elif any(c in r["answer"] for c in "\\{}"):
            assert number is None, r["answer"]


# ------------------------------------------------------------------------------------------------ code

def _humaneval_reference(record: dict) -> dict:
    return {"prompt": record["prompt"], "test": record["test"], "entry_point": record["entry_point"]}


@pytest.mark.parametrize("start", [0, 1])
def test_humaneval_canonical_solutions_pass_and_wrong_ones_fail(start: int):
    """A sample of 20 HumanEval problems (all 164 in the slow test below): the canonical solution passes,
    the body `return None` fails, and the next problem's solution fails."""
    for record in HUMANEVAL[start::8][:10]:
        reference = _humaneval_reference(record)
        assert verifiers.code_pass(record["canonical_solution"], reference) == 1.0, record["task_id"]
        assert verifiers.code_pass("    return None\n", reference) == 0.0, record["task_id"]


@pytest.mark.slow
def test_all_humaneval_canonical_solutions_pass():
    passed = [verifiers.code_pass(r["canonical_solution"], _humaneval_reference(r)) for r in HUMANEVAL]
    assert len(passed) == 164 and passed == [1.0] * 164
    wrong = [verifiers.code_pass(HUMANEVAL[(i + 1) % 164]["canonical_solution"], _humaneval_reference(r))
             for i, r in enumerate(HUMANEVAL)]
    assert sum(wrong) == 0


def test_a_fenced_full_function_is_run_with_the_prompts_imports():
    record = next(r for r in HUMANEVAL if "from typing import" in r["prompt"])
    body = record["prompt"].split('"""')[0].splitlines()
    signature = next(line for line in body if line.startswith("def "))
    completion = f"Here it is:\n```python\n{signature}\n{record['canonical_solution']}```\nDone."
    assert verifiers.code_pass(completion, _humaneval_reference(record)) == 1.0


def test_the_sandbox_stops_loops_fork_bombs_floods_and_the_network():
    loop = run_python("while True:\n    pass\n", timeout_s=2)
    assert (loop.passed, loop.status) == (False, "timeout")
    bomb = run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                      timeout_s=2, max_processes=8)
    assert not bomb.passed and bomb.process_limit
    flood = run_python("while True:\n    print('x' * 100000)\n", timeout_s=5, output_bytes=100_000)
    assert not flood.passed and flood.status != "timeout"  # stopped by the output cap, not the clock
    memory = run_python("x = bytearray(8 * 1024 ** 3)\n", memory_mb=512)
    assert not memory.passed and "MemoryError" in memory.stderr
    network = run_python("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)\n")
    assert not network.passed and ("unreachable" in network.stderr or "disabled" in network.stderr)
    assert run_python("print(sum(range(10)))\n").stdout == "45\n"


def test_the_sandbox_leaves_no_process_behind():
    import subprocess

    marker = f"sandbox-orphan-{random.randrange(10 ** 9)}"
    run_python(f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)  # {marker}\n"
               "time.sleep(600)\n", timeout_s=1)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == []


# -------------------------------------------------------------------------------------- text metrics

def test_exact_match_normalises_like_squad():
    assert verifiers.exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert verifiers.exact_match("Paris, France", ["Paris", "paris france"]) == 1.0
    assert verifiers.exact_match("Lyon", ["Paris"]) == 0.0
    assert verifiers.exact_match("x", ["", None]) is None


def test_rouge_l_is_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rows = read_jsonl(needs_shared("gsm8k") / "train.jsonl")[:50]
    for row, other in zip(rows, rows[1:] + rows[:1], strict=True):
        expected = scorer.score(row["answer"], other["answer"])["rougeL"].fmeasure
        assert verifiers.rouge_l(other["answer"], row["answer"]) == pytest.approx(expected, abs=1e-12)
    assert verifiers.rouge_l(rows[0]["answer"], rows[0]["answer"]) == 1.0


def test_macro_f1_equals_sklearn():
    from sklearn.metrics import f1_score

    rng = random.Random(3)
    labels = ["entailment", "neutral", "contradiction"]
    gold = [rng.choice(labels) for _ in range(300)]
    guess = [g if rng.random() < 0.6 else rng.choice(labels + ["unsure"]) for g in gold]
    scores = [verifiers.label_match(p, g) for p, g in zip(guess, gold, strict=True)]
    accuracy = sum(p == g for p, g in zip(guess, gold, strict=True)) / 300
    assert verifiers.mean_score(scores, guess, gold) == pytest.approx(accuracy)
    expected = f1_score(gold, guess, average="macro", labels=sorted(set(gold)), zero_division=0)
    assert verifiers.macro_f1(scores, guess, gold) == pytest.approx(expected, abs=1e-12)


def test_label_accuracy_and_macro_f1_on_chaosnli_raters():
    """Real labels: the first of SNLI's original five annotators as the prediction, the majority of ChaosNLI's
    100 new raters as the reference (items chosen for disagreement, so about half agree)."""
    from sklearn.metrics import accuracy_score, f1_score

    names = {"e": "entailment", "n": "neutral", "c": "contradiction"}
    rows = read_jsonl(needs_shared("chaosnli") / "chaosNLI_snli.jsonl")
    gold = [names[r["majority_label"]] for r in rows]
    guess = [r["old_labels"][0].capitalize() + "." for r in rows]  # case and punctuation do not count
    scores = [verifiers.label_match(p, g) for p, g in zip(guess, gold, strict=True)]
    plain = [g.lower().rstrip(".") for g in guess]
    assert verifiers.mean_score(scores, guess, gold) == pytest.approx(accuracy_score(gold, plain), abs=1e-12)
    assert 0.3 < accuracy_score(gold, plain) < 0.8
    expected = f1_score(gold, plain, average="macro", labels=sorted(set(gold)), zero_division=0)
    assert verifiers.macro_f1(scores, guess, gold) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------- rewards = metrics

def test_each_reward_file_gives_the_metric_score():
    """The `verified` rewards of gatetune/conf/reward/ score exactly as the verifiers do, on real completions."""
    gsm8k = read_jsonl(needs_shared("gsm8k") / "train.jsonl")[:40]
    solutions = [r["answer"] for r in gsm8k]
    shuffled = solutions[1:] + solutions[:1]
    answers = [s.rsplit("####", 1)[1].strip() for s in solutions]
    cases = {
        "exact_match": (answers[::-1], {"answer": answers}),
        "rouge_l": (shuffled, {"answer": solutions}),
        "label": (answers[:20] + ["x"] * 20, {"label": answers}),
        "math": ([r["solution"] for r in MATH[:20]] + [r["solution"] for r in MATH[21:41]],
                 {"answer": [r["answer"] for r in MATH[:40]]}),
        "code": ([r["canonical_solution"] for r in HUMANEVAL[:3]] + ["    return None\n"],
                 {"prompts": [r["prompt"] for r in HUMANEVAL[:4]], "test": [r["test"] for r in HUMANEVAL[:4]],
                  "entry_point": [r["entry_point"] for r in HUMANEVAL[:4]]}),
    }
    rewards = {r.__name__: r for r in load_rewards(list(cases))}
    for name, (completions, columns) in cases.items():
        spec = verifiers.VERIFIERS[name]
        got = trl_call(rewards[name], completions, **dict(columns))
        rows = [{**{k: v[i] for k, v in columns.items()}} for i in range(len(completions))]
        for row in rows:
            row.setdefault("prompt", row.pop("prompts", None))
        expected = [spec.score(c, spec.reference(row)) for c, row in zip(completions, rows, strict=True)]
        assert got == expected, name
        assert 0 < sum(s or 0 for s in got) < len(got), name  # some right, some wrong
    final = [verifiers.final_number(s, a) for s, a in zip(shuffled, answers, strict=True)]
    assert trl_call(gsm8k_final_number, shuffled, answer=answers) == final
    assert trl_call(verified, shuffled, verifier="final_number", answer=answers) == final


# ----------------------------------------------------------------------------- what a reward can score

def _data(records: list[dict], path: str = "d.jsonl") -> LoadedData:
    return LoadedData(path, records, list(range(1, len(records) + 1)), "jsonl")


def test_the_gsm8k_reward_on_math_data_is_caught_and_the_math_reward_scores_it():
    records = [{"prompt": r["problem"], "answer": r["answer"]} for r in MATH]
    latex = [r for r in records if verifiers.reference_number(r["answer"]) is None]
    with pytest.raises(DataError, match="reward 'gsm8k' .grpo.rewards. can score none of the 20 training records"):
        check_reward_scoring(load_rewards(["gsm8k"]), _data(latex[:20]), _data(latex[20:25]), 0.05)
    # On the whole mix, gsm8k scores the integer answers; the share it cannot score is reported.
    report = check_reward_scoring(load_rewards(["gsm8k", "math"]), _data(records[:80]), _data(records[80:]), 0.05)
    assert report["unscored_by_reward"]["math"] == 0.0
    assert report["unscored_by_reward"]["gsm8k"] == pytest.approx(len(latex) / 100)
    assert report["unscored_by_all"] == 0.0
    with pytest.raises(DataError, match=r"no reward in grpo.rewards can score \d+ of 100 records"):
        check_reward_scoring(load_rewards(["gsm8k"]), _data(records[:80]), _data(records[80:]), 0.05)
    assert check_reward_scoring(load_rewards(["format"]), _data(latex[:20]), _data(latex[20:25]), 0.0) == {
        "unscored_by_reward": {}, "unscored_by_all": 0.0, "records": 25}
