"""The SFT data pipeline at scale (gatetune/tokenized.py): forked workers give exactly the rows of the one-record
path, in order, into a memory-mapped Arrow Dataset; the cache returns them on a second run and is keyed by
everything that decides them."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from data_checks import DataError, LoadedData
from data_checks.chat_template import ChatTemplate
from gatetune.config import SAMPLE_DATA_DIR
from tests.conftest import chat


@pytest.fixture(scope="module")
def sample() -> LoadedData:
    lines = (SAMPLE_DATA_DIR / "sft_sample.jsonl").read_text().splitlines()
    return LoadedData("sft_sample.jsonl", [json.loads(x) for x in lines], list(range(1, len(lines) + 1)))


@pytest.fixture()
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATETUNE_CACHE", str(tmp_path))
    return tmp_path / "tokenized"


def reference_rows(data: LoadedData, chat_template: ChatTemplate, max_length: int) -> list[dict]:
    from gatetune.data import to_example, tokenize_example

    rows = []
    for record in data.records:
        for row in tokenize_example(to_example(record, "chat"), chat_template, max_length, "answers"):
            if any(row["assistant_masks"]):
                rows.append({"input_ids": row["input_ids"], "assistant_masks": row["assistant_masks"],
                             "length": len(row["input_ids"])})
    return rows


def test_two_worker_processes_give_the_single_process_rows_in_order(sample, tokenizer, cache, monkeypatch):
    import gatetune.tokenized as tokenized

    monkeypatch.setattr(tokenized, "CHUNK", 50)  # 15 chunks over the 2 workers
    template = ChatTemplate(tokenizer, {})
    rows, stats, _ = tokenized.tokenized_split(sample, "chat", template, 48, "answers", "train", cache=False,
                                            processes=2)
    want = reference_rows(sample, template, 48)
    assert rows.to_list() == want
    assert stats["records"] == len(sample) and stats["tokens"] == sum(r["length"] for r in want)
    assert stats["truncated"] > 0  # max_length 48 cuts some of them
    assert not cache.exists()  # cache=False writes nothing there
    assert rows.cache_files  # memory-mapped from Arrow, not Python lists


def test_a_second_run_reads_the_cache_and_every_setting_that_changes_rows_is_a_new_entry(sample, tokenizer, cache,
                                                                                      caplog):
    from gatetune.tokenized import tokenized_split

    template = ChatTemplate(tokenizer, {})
    first, stats, _ = tokenized_split(sample, "chat", template, 256, "answers", "train")
    [entry] = list(cache.iterdir())
    written = (entry / "rows.arrow").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="gatetune.tokenized"):
        again, stats_again, _ = tokenized_split(sample, "chat", template, 256, "answers", "train")
    assert "tokenised rows from the cache" in caplog.text
    assert (entry / "rows.arrow").stat().st_mtime_ns == written and again.to_list() == first.to_list()
    assert stats_again == stats

    changed_record = LoadedData(sample.path, [chat("A new question?", "A new answer.")] + sample.records[1:],
                                sample.lines)
    other_tokenizer = ChatTemplate(tokenizer, {})
    other_tokenizer.tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    other_tokenizer.tokenizer.add_tokens(["<|new_token|>"])
    other_template = ChatTemplate(tokenizer, {})
    other_template.template = other_template.template.replace("<|im_start|>", "<|im_start|> ")
    variants = {
        "data": (changed_record, template, 256),
        "tokenizer": (sample, other_tokenizer, 256),
        "template": (sample, other_template, 256),
        "template settings": (sample, ChatTemplate(tokenizer, {"enable_thinking": False}), 256),
        "max_length": (sample, template, 40),
    }
    for n, (name, (data, chat_template, max_length)) in enumerate(variants.items(), start=2):
        rows, _, _ = tokenized_split(data, "chat", chat_template, max_length, "answers", "train")
        assert len(list(cache.iterdir())) == n, name  # a new entry: the old one is not reused
    rows, _, _ = tokenized_split(sample, "chat", template, 40, "answers", "train")
    assert max(rows["length"]) == 40 < max(first["length"])  # the max_length entry holds the cut rows


def test_a_template_error_in_a_worker_names_the_record_line(tokenizer, cache, monkeypatch):
    import gatetune.tokenized as tokenized

    monkeypatch.setattr(tokenized, "CHUNK", 10)
    records = [chat(f"Question {i}?", f"Answer {i}.") for i in range(60)]
    records[43] = {"messages": [{"role": "user", "content": "Only a question."}]}
    data = LoadedData("chats.jsonl", records, list(range(1, 61)))
    with pytest.raises(DataError, match=r"^chats\.jsonl:44: .*no assistant turn"):
        tokenized.tokenized_split(data, "chat", ChatTemplate(tokenizer, {}), 64, "answers", "train", processes=2)
    assert not cache.exists() or not any(cache.iterdir())  # no entry, and the staging one is removed


def test_workers_start_from_a_script_without_a_main_guard(tmp_path: Path, tiny_model_dir: Path):
    """Spawned workers would import the caller's script, which here starts tokenising again at import: they must not
    (the pool would restart its dying workers forever)."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(f"""
import json
from transformers import AutoTokenizer
from data_checks import LoadedData
from data_checks.chat_template import ChatTemplate
from gatetune.tokenized import tokenized_split
from tests.conftest import chat

records = [chat(f"Question {{i}}?", f"Answer {{i}}.") for i in range(30)]
template = ChatTemplate(AutoTokenizer.from_pretrained({str(tiny_model_dir)!r}), {{}})
rows, stats, _ = tokenized_split(LoadedData("q.jsonl", records, list(range(1, 31))), "chat", template, 64, "answers",
                                 "train", cache=False, processes=2)
print("ROWS", len(rows), stats["records"], json.dumps(rows[7]["input_ids"]))
""")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("ROWS "))
    from transformers import AutoTokenizer

    from gatetune.tokenized import tokenized_split

    template = ChatTemplate(AutoTokenizer.from_pretrained(tiny_model_dir), {})
    records = [chat(f"Question {i}?", f"Answer {i}.") for i in range(30)]
    want, _, _ = tokenized_split(LoadedData("q.jsonl", records, list(range(1, 31))), "chat", template, 64, "answers",
                                 "train", cache=False, processes=1)
    assert line == f"ROWS 30 30 {json.dumps(want[7]['input_ids'])}"
