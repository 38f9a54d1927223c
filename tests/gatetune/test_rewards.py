"""The GRPO rewards (gatetune/rewards.py) and their configs (gatetune/conf/reward/*.yaml)."""

from __future__ import annotations

import asyncio
import functools
import json
import pickle
import re
from decimal import Decimal
from pathlib import Path

import pytest

from gatetune.rewards import (
    FINAL_ANSWER_LINE,
    REWARD_DIR,
    completion_text,
    extract_final_number,
    format_reward,
    gsm8k_final_number,
    keyword_reward,
    length_penalty,
    load_rewards,
)
from tests.conftest import needs_shared

SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
# Correct solutions per solver, as SOURCE.md counts them.
CORRECT_COUNTS = {"6b_finetuning": 286, "6b_verification": 515, "175b_finetuning": 458, "175b_verification": 742}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def trl_call(reward, completions, **columns):
    """Call a reward the way TRL 1.16's GRPOTrainer._calculate_rewards does: keywords only, plus its hooks."""
    n = len(completions)
    return reward(prompts=["p"] * n, completions=completions, completion_ids=[[1, 2]] * n, trainer_state=None,
                  log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None, **columns)


# ------------------------------------------------------------------------------------- GSM8K, real data

def test_gsm8k_reward_agrees_with_graded_model_solutions():
    """The oracle: the `is_correct` labels of 4 x 1,319 graded model solutions to the test questions.

    Every label is matched: 5,276 of 5,276, so the assertion is exact agreement. The solutions end with
    `A: <number>` (no `####`), so this exercises the last-number fallback on real text: calculator
    annotations `<<a*b=c>>`, `$`, thousands separators ("A: 1,450,000", "A: -28,800"), negatives, decimals
    and long floats ("A: 0.5333333333333333"; none of them is within float rounding of its reference, so
    comparing exactly and comparing with a tolerance agree here), and
    11 solutions cut off before any `A:` line (all labelled wrong; their last number is not the answer).
    Rewriting each `A: x` as `#### x` must give the same agreement through the `####` path."""
    folder = needs_shared("gsm8k")
    solutions = read_jsonl(folder / "example_model_solutions.jsonl")
    test = read_jsonl(folder / "test.jsonl")
    assert [s["question"] for s in solutions] == [t["question"] for t in test]  # aligned: one per test question

    for solver in SOLVERS:
        labels = [float(s[solver]["is_correct"]) for s in solutions]
        assert sum(labels) == CORRECT_COUNTS[solver]
        texts = [s[solver]["solution"] for s in solutions]
        references = [t["answer"] for t in test]  # "...#### 18"
        rewards = trl_call(gsm8k_final_number, texts, answer=references, question=[t["question"] for t in test])
        disagreements = [i for i, (r, y) in enumerate(zip(rewards, labels, strict=True)) if r != y]
        assert disagreements == [], (solver, disagreements[:5])

        # The same with the file's own `ground_truth` (a solution ending "A: 18") as the reference.
        assert trl_call(gsm8k_final_number, texts, answer=[s["ground_truth"] for s in solutions]) == labels

        hashed = [re.sub(r"\nA: (.*)$", r"\n#### \1", t) for t in texts]
        assert sum(h.count("####") for h in hashed) == len(texts) - sum("\nA: " not in t for t in texts)
        assert trl_call(gsm8k_final_number, hashed, answer=references) == labels


def test_gsm8k_reference_solutions_score_one():
    """Each of the 7,473 human train solutions gets 1.0 against its own answer, given as the full solution
    and as the bare final answer (e.g. "1,200"), and as chat messages."""
    rows = read_jsonl(needs_shared("gsm8k") / "train.jsonl")
    assert len(rows) == 7473
    solutions = [r["answer"] for r in rows]
    finals = [s.rsplit("####", 1)[1].strip() for s in solutions]
    assert sum("," in f for f in finals) > 50  # thousands separators are exercised
    assert trl_call(gsm8k_final_number, solutions, answer=solutions) == [1.0] * len(rows)
    assert trl_call(gsm8k_final_number, solutions, answer=finals) == [1.0] * len(rows)
    messages = [[{"role": "assistant", "content": s}] for s in solutions]
    assert trl_call(gsm8k_final_number, messages, answer=finals) == [1.0] * len(rows)
    # ...and 0.0 against the next question's answer, where the numbers differ.
    shifted = finals[1:] + finals[:1]
    expected = [float(extract_final_number(a) == extract_final_number(b)) for a, b in zip(finals, shifted, strict=True)]
    assert trl_call(gsm8k_final_number, solutions, answer=shifted) == expected
    assert sum(expected) < 0.05 * len(rows)


# ------------------------------------------------------------------------------------- number parsing

@pytest.mark.parametrize(("text", "expected"), [
    ("#### 72", "72"),
    ("72", "72"),
    ("The answer is 72.", "72"),
    ("so 72.0", "72"),
    ("She makes $1,000 a week\n#### 1,000", "1000"),
    ("#### $1,000,000.", "1000000"),
    ("1,000", "1000"),
    ("A: 57,500", "57500"),
    ("The temperature is -5 degrees", "-5"),
    ("#### -12.5", "-12.5"),
    ("she owes -$3", "-3"),
    ("\u22127", "-7"),  # U+2212 minus sign
    ("costs 16.50 dollars", "16.5"),
    ("it is .5 of it", "0.5"),
    ("16-3=13", "13"),
    ("16-3", "3"),  # a minus after a digit is a subtraction, not a sign
    ("$<<9*2=18>>18 every day", "18"),
    ("3 and 4, so 7 apples; 1,2", "2"),  # "1,2" is not a thousands group
    ("#### 18\nNext question: 5 apples", "18"),  # the last #### wins over later numbers
    ("#### 3 then #### 4", "4"),
    ("x2 and y3", None),  # digits glued to a word are no number
    ("no numbers here", None),
    ("####", None),  # a final-answer marker with no number: no answer (no fallback to earlier numbers)
    ("12 then ####", None),
    ("", None),
    (72, "72"),
    (72.0, "72"),
    (None, None),
])
def test_extract_final_number(text, expected):
    got = extract_final_number(text)
    assert got == (None if expected is None else Decimal(expected))


def test_gsm8k_compares_numbers_by_value():
    completions = ["#### 72.0", "#### 72", "the answer is 72.", "#### 072", "#### 7.2", "#### 720", "#### -72", "no"]
    assert trl_call(gsm8k_final_number, completions, answer=["...#### 72"] * 8) == [1, 1, 1, 1, 0, 0, 0, 0]
    assert gsm8k_final_number(["#### 1000", "1,000.00"], answer=["1,000", 1000]) == [1.0, 1.0]
    # A reference with no number cannot be scored: None, which TRL leaves out of that row.
    assert gsm8k_final_number(["#### 3", "#### 3"], answer=["#### three", ""]) == [None, None]


def test_gsm8k_needs_its_column():
    with pytest.raises(ValueError, match="needs a dataset column 'answer'; the dataset has solution"):
        trl_call(gsm8k_final_number, ["#### 1"], solution=["#### 1"])
    with pytest.raises(ValueError, match="2 values of 'answer' for 1 completions"):
        gsm8k_final_number(["#### 1"], answer=["1", "2"])


# ------------------------------------------------------------------------------------- the other rewards

def test_format_reward_default_wants_a_final_answer_line():
    completions = [
        "She sells 9 eggs.\n#### 18",  # 1
        "#### 18",  # 1: the line may be the whole completion
        "9 * 2 = 18\n####  -1,234.5.  \n\n",  # 1: sign, separators, a full stop and trailing blanks
        "#### 18\nand then some text",  # 0: not the last line
        "The answer is 18",  # 0: no marker
        "She sells #### 18",  # 0: the marker must start the line
        "#### eighteen",  # 0: not a number
        "",  # 0
    ]
    assert trl_call(format_reward, completions) == [1, 1, 1, 0, 0, 0, 0, 0]
    assert format_reward(completions, pattern=FINAL_ANSWER_LINE) == format_reward(completions)


def test_format_reward_custom_pattern():
    pattern = r"(?s)\A<think>.+</think>\s*<answer>.+</answer>\s*\Z"
    completions = ["<think>2+2</think>\n<answer>4</answer>", "<answer>4</answer>", "<think>\nx\n</think><answer>4"]
    assert format_reward(completions, pattern=pattern) == [1.0, 0.0, 0.0]
    assert format_reward(["Answer: yes", "answer: no"], pattern=r"^Answer:") == [1.0, 0.0]


@pytest.mark.parametrize(("length", "expected"), [
    (0, 0.0), (100, 0.0), (101, -0.01), (150, -0.5), (175, -0.75), (200, -1.0), (500, -1.0),
])
def test_length_penalty_values(length, expected):
    assert length_penalty(["x" * length], target_chars=100) == [pytest.approx(expected)]


def test_length_penalty_window_and_messages():
    # window_chars: the characters past the target that reach -1.
    assert length_penalty(["x" * 110, "x" * 150, "x" * 1000], target_chars=100, window_chars=200) == \
        [pytest.approx(-0.05), pytest.approx(-0.25), -1.0]
    # The completion text is measured, not the message dicts; tool output is not the model's text.
    messages = [{"role": "assistant", "content": "x" * 150}, {"role": "tool", "content": "y" * 1000}]
    assert trl_call(length_penalty, [messages], ) == [0.0]  # default target 400
    assert length_penalty([messages], target_chars=100) == [pytest.approx(-0.5)]
    with pytest.raises(ValueError, match="window_chars > 0"):
        length_penalty(["x"], target_chars=10, window_chars=0)


def test_keyword_reward():
    completions = ["The word is RATS.", "rats", "I like rat", "ratsy", "", "frog and DOG"]
    targets = ["rats", "rats", "rats", "rats", "rats", ["cat", "dog"]]
    assert trl_call(keyword_reward, completions, target=targets) == [1, 1, 0, 0, 0, 1]
    assert keyword_reward(completions, target=targets, whole_word=False) == [1, 1, 0, 1, 0, 1]
    assert keyword_reward(completions, target=targets, case_sensitive=True) == [0, 1, 0, 0, 0, 0]
    assert keyword_reward(["arbre", "lait"], column="word", word=["arbre", "arbre"]) == [1.0, 0.0]
    assert keyword_reward(["x", "x"], target=["", None]) == [None, None]  # nothing to look for: not scored
    assert keyword_reward(["a.b (c)"], target=["(c)"]) == [1.0]  # the word is literal text, not a regex
    with pytest.raises(ValueError, match="column 'target'"):
        trl_call(keyword_reward, ["x"], answer=["x"])


def test_conversational_completions():
    """TRL passes conversational completions as lists of messages; every reward reads their text."""
    chat = [
        [{"role": "assistant", "content": "9 * 2 = 18\n#### 18"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "so "}, {"type": "text", "text": "#### 7"}]}],
        [{"role": "assistant", "content": "I'll call a tool"}, {"role": "tool", "content": "18"},
         {"role": "assistant", "content": "It is 18.\n#### 18"}],
        [{"role": "assistant", "content": "I'll call a tool"}, {"role": "tool", "content": "#### 18"}],
    ]
    assert completion_text(chat[1]) == "so \n#### 7"
    assert completion_text(chat[3]) == "I'll call a tool"
    assert trl_call(gsm8k_final_number, chat, answer=["#### 18", "#### 7", "#### 18", "#### 18"]) == [1, 1, 1, 0]
    assert trl_call(format_reward, chat) == [1, 1, 1, 0]
    assert trl_call(keyword_reward, chat, target=["18", "so", "tool", "18"]) == [1, 1, 1, 0]
    assert trl_call(length_penalty, chat) == [0.0] * 4


# ------------------------------------------------------------------------------------- configs and loading

REWARD_FILES = sorted(p.stem for p in REWARD_DIR.glob("*.yaml"))


def test_every_reward_file_is_documented():
    assert {"gsm8k", "format", "length_penalty", "keyword"} <= set(REWARD_FILES)
    readme = (REWARD_DIR / "README.md").read_text(encoding="utf-8")
    for name in REWARD_FILES:
        text = (REWARD_DIR / f"{name}.yaml").read_text(encoding="utf-8")
        target = re.search(r"^_target_: (\S+)$", text, re.M).group(1)
        assert text.startswith("#") and f"# Python: {target}" in text, name  # says what it rewards and where
        assert f"`{name}.yaml`" in readme, name


@pytest.mark.parametrize("name", REWARD_FILES)
def test_reward_file_instantiates_with_hydra(name):
    """Each file through plain hydra.utils.instantiate gives a callable TRL can call (it has `_partial_`)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    func = instantiate(OmegaConf.load(REWARD_DIR / f"{name}.yaml"))
    assert isinstance(func, functools.partial)
    out = trl_call(func, ["#### 18", "no answer here"], answer=["#### 18", "#### 18"], target=["18", "18"],
                   label=["18", "18"], test=["def check(f):\n    assert f() == 18\n"] * 2, entry_point=["f", "f"])
    assert len(out) == 2 and all(isinstance(r, float) for r in out)


EXPECTED = {  # what each file gives for ["#### 18", "no answer here", 500 x "a"] with answer 18 and target "answer"
    "gsm8k": [1.0, 0.0, 0.0],
    "format": [1.0, 0.0, 0.0],
    "length_penalty": [0.0, 0.0, -0.25],
    "keyword": [0.0, 1.0, 0.0],
}


def test_load_rewards_from_names():
    rewards = load_rewards(list(EXPECTED))
    assert [r.__name__ for r in rewards] == list(EXPECTED)
    completions = ["#### 18", "no answer here", "a" * 500]
    columns = {"answer": ["#### 18"] * 3, "target": ["answer"] * 3, "question": ["q"] * 3}
    for reward in rewards:
        out = trl_call(reward, completions, **columns)
        assert len(out) == len(completions)
        assert out == pytest.approx(EXPECTED[reward.__name__]), reward.__name__
        assert reward.__doc__ and pickle.loads(pickle.dumps(reward)).__name__ == reward.__name__


def test_load_rewards_names_are_what_trl_logs():
    """TRL names a reward with trl.trainer.utils.get_callable_name, which unwraps functools.partial to the
    function's name: two configs of one function would collide. A loaded reward keeps its config's name."""
    trl_utils = pytest.importorskip("trl.trainer.utils")
    partial = functools.partial(length_penalty, target_chars=10)
    assert trl_utils.get_callable_name(partial) == "length_penalty"  # the raw partial: the function's name
    rewards = load_rewards({"short": {"_target_": "gatetune.rewards.length_penalty", "target_chars": 10},
                            "long": {"_target_": "gatetune.rewards.length_penalty", "_partial_": True,
                                     "target_chars": 100}})
    assert [trl_utils.get_callable_name(r) for r in rewards] == ["short", "long"]
    assert not any(trl_utils.is_async_callable(r) for r in rewards)
    assert [r(completions=["x" * 55]) for r in rewards] == [[-1.0], [0.0]]


async def _async_reward(completions, **kwargs):
    return [1.0] * len(completions)


def test_load_rewards_other_entries(tmp_path: Path):
    from omegaconf import OmegaConf

    my = tmp_path / "my_format.yaml"
    my.write_text("# Mine.\n_target_: gatetune.rewards.format_reward\n_partial_: true\npattern: '^ok\\b'\n")
    nodes = [str(my), OmegaConf.create({"_target_": "gatetune.rewards.keyword_reward", "column": "word"}),
             {"_target_": "tests.gatetune.test_rewards._async_reward", "_name_": "always"}]
    fmt, kw, always = load_rewards(OmegaConf.create(nodes))
    assert (fmt.__name__, kw.__name__, always.__name__) == ("my_format", "keyword_reward", "always")
    assert fmt(completions=["ok then", "not ok"]) == [1.0, 0.0]
    assert kw(completions=["a b"], word=["b"]) == [1.0]
    assert asyncio.run(always(completions=["a", "b"])) == [1.0, 1.0]
    trl_utils = pytest.importorskip("trl.trainer.utils")
    assert trl_utils.is_async_callable(always) and not trl_utils.is_async_callable(fmt)


@pytest.mark.parametrize(("entries", "message"), [
    (["nope"], "grpo.rewards: no reward 'nope'.*available: .*gsm8k"),
    (["gsm8k", "gsm8k"], "reward 'gsm8k' is listed twice"),
    ([{"_target_": "gatetune.rewards.no_such_reward"}], "cannot import _target_ 'gatetune.rewards.no_such_reward'"),
    # A misspelt parameter would vanish into the function's **kwargs: it is refused at load time.
    ([{"_target_": "gatetune.rewards.length_penalty", "target_char": 1}],
     "length_penalty has no parameter 'target_char' \\(its parameters: target_chars, window_chars\\)"),
    ([{"pattern": "x"}], "has no `_target_`"),
    ([{"_target_": "gatetune.rewards.FINAL_ANSWER_LINE"}], "is a str, not a callable"),
    ([{"_target_": "collections.OrderedDict"}], "gave a OrderedDict, not a callable"),
])
def test_load_rewards_errors(entries, message):
    from gatetune.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_rewards(entries)
