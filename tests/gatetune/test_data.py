"""gatetune/data.py with the real tiny tokenizer: the loss mask, truncation and the train/eval split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from data_checks import DataError, LoadedData
from gatetune.data import load_splits, to_example, tokenize_example, tokenize_split
from tests.conftest import chat, typed, write_jsonl

END = "<|im_end|>"  # the tiny tokenizer's end-of-turn token, which is also its EOS


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _runs(tok: Any, row: dict[str, list[int]], value: int = 1) -> list[str]:
    """The decoded text of each maximal run of tokens whose mask is `value`."""
    runs, current = [], []
    for token, mask in zip(row["input_ids"], row["assistant_masks"], strict=True):
        if mask == value:
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    return runs


def _assert_turn(run: str, content: str) -> None:
    """A masked run is the assistant's content and its end-of-turn token (plus the template's newline)."""
    assert run.startswith(content + END), run
    assert run[len(content + END):].strip() == "", run


def test_chat_mask_covers_the_assistant_turn_and_its_end_token(tok: Any):
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is two plus two?"},
                {"role": "assistant", "content": "The answer is four."}]
    [row] = tokenize_example({"messages": messages}, tok, 512, "answers")
    assert row["truncated"] is False
    assert len(row["input_ids"]) == len(row["assistant_masks"])
    assert set(row["assistant_masks"]) == {0, 1}
    # The whole rendering is tokenised, with no BOS added, up to the stop token: the newline the template writes
    # after it is never generated, so it is not part of the example.
    assert tok.decode(row["input_ids"]) == tok.apply_chat_template(messages, tokenize=False).removesuffix("\n")
    masked = _runs(tok, row)
    assert len(masked) == 1
    _assert_turn(masked[0], "The answer is four.")
    unmasked = "".join(_runs(tok, row, 0))
    assert "You are a helpful assistant." in unmasked and "What is two plus two?" in unmasked
    assert unmasked.endswith("<|im_start|>assistant\n")  # the generation prompt is not trained
    # Exactly one end-of-turn token carries the loss: the assistant's, not the system's or the user's.
    end_id = tok.convert_tokens_to_ids(END)
    ends = [m for t, m in zip(row["input_ids"], row["assistant_masks"], strict=True) if t == end_id]
    assert ends == [0, 0, 1]


def test_multi_turn_masks_every_assistant_turn(tok: Any):
    messages = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another one?"}, {"role": "assistant", "content": "Green, then red."},
                {"role": "user", "content": "And a number?"}, {"role": "assistant", "content": "Forty two."}]
    [row] = tokenize_example({"messages": messages}, tok, 512, "answers")
    masked = _runs(tok, row)
    assert len(masked) == 3
    for run, content in zip(masked, ["Blue.", "Green, then red.", "Forty two."], strict=True):
        _assert_turn(run, content)
    unmasked = "".join(_runs(tok, row, 0))
    for question in ("Name a colour.", "Another one?", "And a number?"):
        assert question in unmasked
    for answer in ("Blue.", "Green", "Forty"):
        assert answer not in unmasked


def test_prompt_completion_masks_only_the_completion_and_eos(tok: Any):
    example = {"prompt": "Question: what colour is the sky?\nAnswer:", "completion": " blue"}
    [row] = tokenize_example(example, tok, 512, "answers")
    assert tok.decode(row["input_ids"]) == example["prompt"] + example["completion"] + END
    assert _runs(tok, row) == [" blue" + END]
    assert _runs(tok, row, 0) == [example["prompt"]]
    assert row["assistant_masks"][-1] == 1 and row["input_ids"][-1] == tok.eos_token_id


def test_prompt_with_trailing_space_still_trains_the_first_completion_word(tok: Any):
    [row] = tokenize_example({"prompt": "The sky is ", "completion": "blue."}, tok, 512, "answers")
    assert "blue" in "".join(_runs(tok, row))


def test_text_examples_train_on_everything_plus_eos(tok: Any):
    [row] = tokenize_example({"text": "Plain language modelling."}, tok, 512, "answers")
    assert all(row["assistant_masks"])
    assert tok.decode(row["input_ids"]) == "Plain language modelling." + END


def test_train_on_all_masks_every_token(tok: Any):
    example = {"messages": [{"role": "system", "content": "Be brief."}, *chat("Hi?", "Hello.")["messages"]]}
    [answers] = tokenize_example(example, tok, 512, "answers")
    [everything] = tokenize_example(example, tok, 512, "all")
    # train_on=all is the whole rendered conversation (the template's newline after the last turn included).
    assert tok.decode(everything["input_ids"]) == tok.apply_chat_template(example["messages"], tokenize=False)
    assert everything["input_ids"][: len(answers["input_ids"])] == answers["input_ids"]
    assert everything["assistant_masks"] == [1] * len(everything["input_ids"])
    assert 0 < sum(answers["assistant_masks"]) < len(answers["input_ids"])


def test_truncation_cuts_at_max_length(tok: Any):
    example = chat("Tell me a story.", "Once upon a time there was a fox who jumped over the lazy dog, twice.")
    [full] = tokenize_example(example, tok, 512, "answers")
    n = len(full["input_ids"])
    [exact] = tokenize_example(example, tok, n, "answers")
    assert exact["truncated"] is False and exact["input_ids"] == full["input_ids"]
    [cut] = tokenize_example(example, tok, n - 5, "answers")
    assert cut["truncated"] is True
    assert cut["input_ids"] == full["input_ids"][: n - 5]
    assert cut["assistant_masks"] == full["assistant_masks"][: n - 5]


def _loaded(records: list[dict[str, Any]]) -> LoadedData:
    return LoadedData("mem.jsonl", records, list(range(1, len(records) + 1)))


def test_tokenize_split_counts_truncated_and_drops_answerless(tok: Any, caplog: pytest.LogCaptureFixture):
    long_question = "Please read this long question carefully: " + "one two three four five " * 10
    records = [
        chat("Hi?", "Hello."),  # fits
        chat("Tell me a story.", "Once upon a time there was a fox. " * 6),  # answer cut, but some of it is left
        chat(long_question, "Yes."),  # the question alone is longer than max_length: no answer token left
        chat(long_question + "again?", "No."),  # likewise
    ]
    max_length = 32
    lengths = [len(tokenize_example(to_example(r, "chat"), tok, 10_000, "answers")[0]["input_ids"]) for r in records]
    assert lengths[0] <= max_length < min(lengths[1:])  # the premise of the test

    with caplog.at_level(logging.WARNING, logger="gatetune.data"):
        rows, stats, _ = tokenize_split(_loaded(records), "chat", tok, max_length, "answers", "train")

    assert (stats.examples, stats.truncated, stats.dropped_no_answer_tokens) == (4, 3, 2)
    assert len(rows) == 2
    assert [len(r["input_ids"]) for r in rows] == [lengths[0], max_length]
    assert all(set(r) == {"input_ids", "assistant_masks", "length"} for r in rows)
    assert [r["length"] for r in rows] == [len(r["input_ids"]) for r in rows]
    assert all(any(r["assistant_masks"]) for r in rows)
    assert stats.tokens == lengths[0] + max_length
    assert stats.answer_tokens == sum(sum(r["assistant_masks"]) for r in rows)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "train: 3 of 4 examples are longer than data.max_length=32 and were truncated" in warnings
    assert any("removed every answer token from 2 examples" in w and "raise data.max_length" in w for w in warnings)


def test_tokenize_split_without_any_answer_token_is_a_data_error(tok: Any):
    records = [chat("Please read this long question carefully: " + "one two three " * 10, "Yes.")] * 2
    with pytest.raises(DataError, match=r"^mem\.jsonl: no eval example has an answer token left .*max_length=16"):
        tokenize_split(_loaded(records), "chat", tok, 16, "answers", "eval")


def test_tokenize_split_no_warning_when_nothing_is_cut(tok: Any, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="gatetune.data"):
        rows, stats, _ = tokenize_split(_loaded([chat("Hi?", "Hello.")] * 3), "chat", tok, 256, "answers", "train")
    assert (len(rows), stats.truncated, stats.dropped_no_answer_tokens) == (3, 0, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------- to_example

def test_alpaca_becomes_a_conversation():
    assert to_example({"instruction": " Add the numbers. ", "input": "2 and 3\n", "output": " 5 "}, "alpaca") == {
        "messages": [{"role": "user", "content": "Add the numbers.\n\n2 and 3"},
                     {"role": "assistant", "content": "5"}]}
    assert to_example({"instruction": "Say hi.", "input": "", "output": "hi"}, "alpaca")["messages"][0] == {
        "role": "user", "content": "Say hi."}
    assert to_example({"instruction": "Say hi.", "output": "hi"}, "alpaca")["messages"][0]["content"] == "Say hi."


def test_to_example_other_shapes():
    record = chat("q", "a")
    assert to_example({**record, "id": 3}, "chat") == record
    assert to_example({"prompt": "p", "completion": "c", "x": 1}, "prompt_completion") == {
        "prompt": "p", "completion": "c"}
    assert to_example({"prompt": "p", "completion": [{"role": "assistant", "content": "c"}]},
                      "prompt_completion") == chat("p", "c")
    assert to_example({"text": "t", "meta": 0}, "text") == {"text": "t"}
    with pytest.raises(ValueError, match="no SFT example shape"):
        to_example({"prompt": "p", "chosen": "a", "rejected": "b"}, "preference")


def test_alpaca_tokenises_with_the_output_as_the_answer(tok: Any):
    [row] = tokenize_example(to_example({"instruction": "Add.", "input": "2 and 3", "output": "5"}, "alpaca"),
                           tok, 512, "answers")
    masked = _runs(tok, row)
    assert len(masked) == 1
    _assert_turn(masked[0], "5")
    assert "Add.\n\n2 and 3" in "".join(_runs(tok, row, 0))


# ---------------------------------------------------------------- load_splits

def _numbered_chats(n: int) -> list[dict[str, Any]]:
    return [chat(f"Question {i}?", f"Answer {i}.") for i in range(n)]


def _load_splits(overrides: list[str]) -> Any:
    config = typed(overrides)
    return load_splits(config.data, config.recipe, config.seed)


def _ids(data: LoadedData) -> list[int]:
    return [int(r["messages"][0]["content"].split()[1].rstrip("?")) for r in data.records]


def test_load_splits_holds_out_ten_percent_deterministically(tmp_path: Path):
    path = write_jsonl(tmp_path / "d.jsonl", _numbered_chats(100))
    splits = _load_splits([f"data.path={path}"])
    assert (splits.format, splits.eval_source) == ("chat", "held_out")
    assert (len(splits.train), len(splits.eval)) == (90, 10)
    train, held = _ids(splits.train), _ids(splits.eval)
    assert set(train).isdisjoint(held) and set(train) | set(held) == set(range(100))
    # Records keep their file order and their source lines.
    assert train == sorted(train) and held == sorted(held)
    assert splits.eval.lines == [i + 1 for i in held]
    assert splits.train.path == splits.eval.path == str(path)
    assert held != list(range(90, 100))  # a shuffled hold-out, not the file's tail
    # Same seed, same split; another seed, another split.
    again = _load_splits([f"data.path={path}"])
    assert (_ids(again.train), _ids(again.eval)) == (train, held)
    assert _ids(_load_splits([f"data.path={path}", "seed=7"]).eval) != held


def test_load_splits_eval_fraction(tmp_path: Path):
    path = write_jsonl(tmp_path / "d.jsonl", _numbered_chats(40))
    splits = _load_splits([f"data.path={path}", "data.eval_fraction=0.25"])
    assert (len(splits.train), len(splits.eval)) == (30, 10)


def test_load_splits_uses_the_eval_file_when_given(tmp_path: Path):
    train_path = write_jsonl(tmp_path / "train.jsonl", _numbered_chats(30))
    eval_path = write_jsonl(tmp_path / "eval.jsonl", [chat(f"Question {i}?", "Held.") for i in range(100, 107)])
    splits = _load_splits([f"data.path={train_path}", f"data.eval_path={eval_path}"])
    assert splits.eval_source == "file"
    assert _ids(splits.train) == list(range(30))  # nothing held out of the training file
    assert _ids(splits.eval) == list(range(100, 107))
    assert (splits.eval.path, splits.eval.lines) == (str(eval_path), list(range(1, 8)))


def test_load_splits_checks_the_eval_file_too(tmp_path: Path):
    train_path = write_jsonl(tmp_path / "train.jsonl", _numbered_chats(30))
    eval_path = write_jsonl(tmp_path / "eval.jsonl", [chat("q", "a"), chat("q", "a"), chat("q", "")])
    with pytest.raises(DataError, match=r"eval\.jsonl:3: messages\[1\] \(assistant\) has empty content"):
        _load_splits([f"data.path={train_path}", f"data.eval_path={eval_path}"])


def test_load_splits_reads_alpaca(tmp_path: Path):
    records = [{"instruction": f"Repeat {i}.", "input": "", "output": str(i)} for i in range(20)]
    path = write_jsonl(tmp_path / "d.jsonl", records)
    splits = _load_splits([f"data.path={path}"])
    assert (splits.format, len(splits.train), len(splits.eval)) == ("alpaca", 18, 2)
    example = to_example(splits.train.records[0], splits.format)
    n = int(example["messages"][1]["content"])
    assert example == chat(f"Repeat {n}.", str(n))
    assert _load_splits([f"data.path={path}", "data.format=alpaca"]).format == "alpaca"


def test_load_splits_reports_the_first_bad_record_and_the_count(tmp_path: Path):
    records = _numbered_chats(20)
    records[6] = chat("q", " ")
    records[11] = {"messages": []}
    path = write_jsonl(tmp_path / "d.jsonl", records)
    with pytest.raises(DataError) as err:
        _load_splits([f"data.path={path}"])
    assert err.value.line == 7
    assert str(err.value) == f"{path}:7: messages[1] (assistant) has empty content (and 1 more bad records)"


def test_load_splits_max_examples_takes_the_first_records(tmp_path: Path):
    path = write_jsonl(tmp_path / "d.jsonl", _numbered_chats(100))
    splits = _load_splits([f"data.path={path}", "data.max_examples=20"])
    assert (len(splits.train), len(splits.eval)) == (18, 2)
    assert sorted(_ids(splits.train) + _ids(splits.eval)) == list(range(20))


def test_load_splits_end_to_end_tokenises(tmp_path: Path, tok: Any):
    path = write_jsonl(tmp_path / "d.jsonl", _numbered_chats(20))
    splits = _load_splits([f"data.path={path}"])
    rows, stats, _ = tokenize_split(splits.eval, splits.format, tok, 256, "answers", "eval")
    assert stats.examples == len(rows) == 2
    for row, record in zip(rows, splits.eval.records, strict=True):
        _assert_turn(_runs(tok, row)[0], record["messages"][1]["content"])


def test_training_builds_its_conversations_with_the_gates_mapping():
    import gatetune.encode as training_data
    from data_checks.formats import consistency_problem, record_conversations

    assert training_data.record_conversations is record_conversations
    good = {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}], "completion": "a"}
    assert consistency_problem(good, "prompt_completion") is None
    assert record_conversations(good, "prompt_completion") == [good["prompt"] + [{"role": "assistant",
                                                                                  "content": "a"}]]
