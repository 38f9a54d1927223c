"""scripts/convert_qa_feedback.py and scripts/convert_oasst_ranks.py: preference data from human judgments.

The shared-dataset tests re-derive every expected count from the raw files in a few lines (never from
the scripts' own output) and skip when ../shared/datasets is absent; the hand-made inputs run anywhere.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from data_checks.cli import main as data_checks_main
from data_checks.formats import consistency_problem, record_problem
from tests.conftest import ROOT, needs_shared, write_jsonl

QA_SCRIPT = ROOT / "scripts" / "convert_qa_feedback.py"
OASST_SCRIPT = ROOT / "scripts" / "convert_oasst_ranks.py"
PAIRS = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def convert(script: Path, *args: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=60)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def printed_counts(stdout: str) -> dict[str, int]:
    """The numbers the script printed, by name ("read", "written", "ties dropped", ...)."""
    counts = {"read": int(re.search(r"(\d+) (?:judged|ranked reply) pairs read", stdout).group(1)),
              "written": int(re.search(r"(\d+) written", stdout).group(1))}
    for name in ("ties", "identical", "empty", "below the rank gap", "synthetic"):
        found = re.search(rf"(\d+) {name} dropped", stdout)
        if found:
            counts[name] = int(found.group(1))
    return counts


def text(value: str | list[dict[str, str]]) -> str:
    return value if isinstance(value, str) else value[0]["content"]


def assert_valid_preference_data(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    rows = read_rows(path)
    assert rows
    for row in rows:
        assert record_problem(row, "preference") is None, row
        assert consistency_problem(row, "preference") is None, row
    capsys.readouterr()
    assert data_checks_main([str(path), "--checks", "template"]) == 0, capsys.readouterr().out
    return rows


# --- QA-feedback -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("conversational", [False, True])
def test_qa_feedback_pairs_on_the_shared_dev_set(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  conversational: bool) -> None:
    source = needs_shared("qa_feedback_prefs") / "dev_feedback.json"
    records = json.loads(source.read_text(encoding="utf-8"))
    expected, tied = Counter(), set()  # (question, chosen, rejected) per judged pair; unordered tied pairs
    for r in records:
        for (a, b), judgment in zip(PAIRS, r["preference"], strict=True):
            first, second = r[f"prediction {a}"], r[f"prediction {b}"]
            if judgment == 0:
                tied.add((r["question"], frozenset((first, second))))
            elif first.strip() != second.strip():
                expected[(r["question"], *((first, second) if judgment == 1 else (second, first)))] += 1
    identical = 6 * len(records) - len(tied) - sum(expected.values())
    assert (6 * len(records), len(tied)) == (3000, 384)  # SOURCE.md's numbers: the derivation reads the file right

    out = tmp_path / "qa.jsonl"
    result = convert(QA_SCRIPT, source, out, *(["--conversational"] if conversational else []))
    assert result.returncode == 0, result.stderr
    assert printed_counts(result.stdout) == {"read": 3000, "written": sum(expected.values()), "ties": len(tied),
                                             "identical": identical, "empty": 0}
    rows = assert_valid_preference_data(out, capsys)

    titles = {r["question"]: [p[0].strip() for p in r["passages"]] for r in records}
    got = Counter()
    for row in rows:
        if conversational:
            assert [[m["role"] for m in row[k]] for k in ("prompt", "chosen", "rejected")] == [
                ["user"], ["assistant"], ["assistant"]]
        else:
            assert all(isinstance(row[k], str) for k in ("prompt", "chosen", "rejected"))
        prompt = text(row["prompt"])
        question = prompt.split("\n", 1)[0].removeprefix("Question: ")
        assert all(f"Passage {i}: {title}" in prompt for i, title in enumerate(titles[question], 1))
        assert (question, frozenset((text(row["chosen"]), text(row["rejected"])))) not in tied
        got[(question, text(row["chosen"]), text(row["rejected"]))] += 1
    assert got == expected  # every judged pair once, the preferred output as chosen


def test_qa_feedback_drops_ties_and_identical_pairs(tmp_path: Path) -> None:
    source = tmp_path / "feedback.json"
    passages = [["Frogs", "Frogs\n\nFrogs are amphibians.", "They croak."]]
    record = {"question": "What is a frog?", "passages": passages, "prediction 1": "A frog.",
              "prediction 2": " A frog. ", "prediction 3": "An amphibian.", "prediction 4": "A toad.",
              "preference": [1, 2, 0, 1, 1, 2]}  # 1v2 identical, 1v3 -> 3, 1v4 tie, 2v3 -> 2, 2v4 -> 2, 3v4 -> 4
    source.write_text(json.dumps([record]), encoding="utf-8")
    before = source.read_bytes()
    out = tmp_path / "out.jsonl"
    result = convert(QA_SCRIPT, source, out)
    assert result.returncode == 0, result.stderr
    assert printed_counts(result.stdout) == {"read": 6, "written": 4, "ties": 1, "identical": 1, "empty": 0}
    rows = read_rows(out)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("An amphibian.", "A frog."), (" A frog. ", "An amphibian."), (" A frog. ", "A toad."),
        ("A toad.", "An amphibian.")]
    assert rows[0]["prompt"] == "Question: What is a frog?\n\nPassage 1: Frogs\nFrogs are amphibians. They croak."
    assert source.read_bytes() == before


# --- OpenAssistant ranks ---------------------------------------------------------------------------------

def walk(message: dict[str, Any], parent: dict[str, Any] | None = None, synthetic: bool = False):
    """(message, parent, synthetic anywhere on the path to it) for every message, depth first."""
    synthetic = synthetic or message["synthetic"]
    yield message, parent, synthetic
    for reply in message["replies"]:
        yield from walk(reply, message, synthetic)


@pytest.mark.parametrize("flags", [[], ["--skip-synthetic"], ["--min-rank-gap", "2"]])
def test_oasst_rank_pairs_on_the_shared_trees(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              flags: list[str]) -> None:
    source = needs_shared("oasst_en_100_trees") / "en_100_tree.jsonl"
    trees = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    gap = int(flags[1]) if flags[:1] == ["--min-rank-gap"] else 1
    skip_synthetic = "--skip-synthetic" in flags
    messages = [m for tree in trees for m in walk(tree["prompt"])]
    counts = Counter()
    for message, _, synthetic_path in messages:
        ranked = [r for r in message["replies"] if r["role"] == "assistant" and r.get("rank") is not None]
        for a, b in itertools.combinations(ranked if message["role"] == "prompter" else [], 2):
            counts["read"] += 1
            if skip_synthetic and (synthetic_path or a["synthetic"] or b["synthetic"]):
                counts["synthetic"] += 1
            elif a["rank"] == b["rank"]:
                counts["ties"] += 1
            elif abs(a["rank"] - b["rank"]) < gap:
                counts["below the rank gap"] += 1
            elif a["text"].strip() == b["text"].strip():
                counts["identical"] += 1
            else:
                counts["written"] += 1
    expected = {k: counts[k] for k in ("read", "written", "ties", "identical", "below the rank gap", "synthetic")}

    out = tmp_path / "oasst.jsonl"
    result = convert(OASST_SCRIPT, source, out, *flags)
    assert result.returncode == 0, result.stderr
    assert printed_counts(result.stdout) == expected
    rows = assert_valid_preference_data(out, capsys)
    assert len(rows) == expected["written"]

    roots = {tree["prompt"]["text"] for tree in trees}
    edges = {(p["text"], m["text"]) for m, p, _ in messages if p is not None}
    rank = {(p["text"], m["text"]): m.get("rank") for m, p, _ in messages if p is not None}
    synthetic_texts = {m["text"] for m, _, _ in messages if m["synthetic"]}
    for row in rows:
        prompt = [m["content"] for m in row["prompt"]]
        assert [m["role"] for m in row["prompt"]] == ["user", "assistant"] * (len(prompt) // 2) + ["user"]
        assert prompt[0] in roots and all(edge in edges for edge in zip(prompt, prompt[1:], strict=False))
        chosen, rejected = rank[(prompt[-1], text(row["chosen"]))], rank[(prompt[-1], text(row["rejected"]))]
        assert rejected - chosen >= gap  # a better rank (lower number) is chosen; no ties
        if skip_synthetic:
            assert not synthetic_texts & {*prompt, text(row["chosen"]), text(row["rejected"])}


def test_oasst_drops_ties_identical_unranked_and_synthetic(tmp_path: Path) -> None:
    def message(role: str, content: str, rank: int | None = None, replies: tuple = (),
                synthetic: bool = False) -> dict[str, Any]:
        return {"role": role, "text": content, "rank": rank, "synthetic": synthetic, "replies": list(replies)}

    # a synthetic prompter message whose replies are not: --skip-synthetic must still drop their pair
    follow_up = message("prompter", "And cats?", None, [message("assistant", "Meow.", 0),
                                                        message("assistant", "Woof.", 1)], synthetic=True)
    root = message("prompter", "Hi?", None, [
        message("assistant", "Hello.", 0), message("assistant", "Hey.", 1, [follow_up]),
        message("assistant", "Yo.", 1), message("assistant", " Hello. ", 2), message("assistant", "Unranked.")])
    source = write_jsonl(tmp_path / "trees.jsonl", [{"message_tree_id": "t", "prompt": root}])
    out = tmp_path / "out.jsonl"
    result = convert(OASST_SCRIPT, source, out)
    assert result.returncode == 0, result.stderr
    # root: 4 ranked replies -> 6 pairs: Hey/Yo tie, Hello/" Hello. " identical; follow-up: 1 pair
    assert printed_counts(result.stdout) == {"read": 7, "written": 5, "ties": 1, "identical": 1,
                                             "below the rank gap": 0, "synthetic": 0}
    rows = read_rows(out)
    assert [(text(r["chosen"]), text(r["rejected"])) for r in rows] == [
        ("Hello.", "Hey."), ("Hello.", "Yo."), ("Hey.", " Hello. "), ("Yo.", " Hello. "), ("Meow.", "Woof.")]
    assert rows[-1]["prompt"] == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hey."},
                                  {"role": "user", "content": "And cats?"}]

    result = convert(OASST_SCRIPT, source, out, "--skip-synthetic")
    assert result.returncode == 0, result.stderr
    assert printed_counts(result.stdout) == {"read": 7, "written": 4, "ties": 1, "identical": 1,
                                             "below the rank gap": 0, "synthetic": 1}
    assert "Meow." not in out.read_text(encoding="utf-8")


# --- errors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("script", [QA_SCRIPT, OASST_SCRIPT], ids=["qa_feedback", "oasst"])
@pytest.mark.parametrize("content", ["this is not JSON\n", None], ids=["not-json", "missing"])
def test_unreadable_input_exits_2_with_the_path(tmp_path: Path, script: Path, content: str | None) -> None:
    source = tmp_path / "input.json"
    if content is not None:
        source.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = convert(script, source, out)
    assert result.returncode == 2
    assert result.stderr.startswith(str(source)) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == ([source] if content is not None else [])


@pytest.mark.parametrize("script", [QA_SCRIPT, OASST_SCRIPT], ids=["qa_feedback", "oasst"])
def test_output_over_the_input_is_refused(tmp_path: Path, script: Path) -> None:
    source = tmp_path / "input.json"
    source.write_text("[]\n", encoding="utf-8")
    result = convert(script, source, tmp_path / "." / "input.json")
    assert result.returncode == 2 and "is the input file" in result.stderr
    assert source.read_text(encoding="utf-8") == "[]\n"


def load_script(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, path.stem, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("script", "empty_input"), [(QA_SCRIPT, "[]\n"), (OASST_SCRIPT, "")],
                         ids=["qa_feedback", "oasst"])
def test_a_failed_write_leaves_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], script: Path,
                                                   empty_input: str) -> None:
    module = load_script(script, monkeypatch)
    source = tmp_path / "input.json"
    source.write_text(empty_input, encoding="utf-8")  # no questions, no trees: the write is what is tested
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")

    def convert_then_fail(*args: Any, **kwargs: Any):
        yield {"prompt": "p", "chosen": "a", "rejected": "b"}
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "convert", convert_then_fail)
    assert module.main([str(source), str(out)]) == 2
    assert capsys.readouterr().err == f"{out}: cannot write: No space left on device\n"
    assert out.read_text(encoding="utf-8") == "previous\n"  # written to a temporary file, never renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.json", "out.jsonl"]
