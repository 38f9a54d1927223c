"""One chat-template rendering per record for the template gate and training: training's tokenisation records the
gate's verdict on each record (`RecordVerdicts`), the gate reads it instead of rendering again, and its report is
the one the gate gives rendering on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data_checks import ChecksConfig, DataError, LoadedData, run_gates
from data_checks.chat_template import ChatTemplate
from tests.conftest import ROOT, chat, write_jsonl

TEMPLATES = ROOT / "tests" / "chat_templates"


class CountingTemplate(ChatTemplate):
    """A ChatTemplate that counts its renderings."""

    renders = 0

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        CountingTemplate.renders += 1
        return super().render(messages, add_generation_prompt)


def records() -> list[dict[str, Any]]:
    out = [chat(f"What is {i} plus 1?", f"{i} plus 1 is {i + 1}.") for i in range(24)]
    out[3]["messages"].insert(0, {"role": "system", "content": "Be brief."})  # gemma2 rejects a system turn
    out[5] = chat("Explain addition at length. " * 8, "It is counting on. " * 12)  # past max_length 48
    out[8]["messages"][1]["reasoning_content"] = "One more than the number."  # reasoning: template notes
    out[11]["messages"] += [{"role": "user", "content": "And 2?"}, {"role": "assistant", "content": "Two more."}]
    out[14]["messages"].append({"role": "user", "content": "and then?"})  # ends on a user turn: a shape problem
    return out


@pytest.fixture()
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize("template", ["gemma2", "qwen3", "mistral_v0_3", "deepseek_r1_distill"])
def test_the_gate_reading_trainings_verdicts_reports_what_it_finds_rendering_alone(template, tokenizer, tmp_path,
                                                                                  monkeypatch):
    from gatetune.tokenized import tokenized_split

    monkeypatch.setenv("GATETUNE_CACHE", str(tmp_path))
    tokenizer.chat_template = (TEMPLATES / f"{template}.jinja").read_text()
    data = LoadedData("chats.jsonl", records(), list(range(1, 25)))
    checks = ChecksConfig(run=["template"], fail_on=["template"])
    alone = run_gates(data, "chat", checks, tokenizer=ChatTemplate(tokenizer, {}), max_length=48)

    chat_template = CountingTemplate(tokenizer, {})
    rows, stats, verdicts = tokenized_split(data, "chat", chat_template, 48, "answers", "train", strict=False)
    CountingTemplate.renders = 0
    shared = run_gates(data, "chat", checks, tokenizer=chat_template, against=None, max_length=48, encoded=verdicts)
    assert shared["checks"]["template"] == alone["checks"]["template"]
    assert CountingTemplate.renders == 0  # not one chat rendered a second time
    result = alone["checks"]["template"]
    assert result["truncated"] >= 1 and [v["line"] for v in result["violations"]][-1] == 15
    rejected = [v for v in result["violations"] if v["problem"].startswith("chat template: ")]
    assert stats["template_rejected"] == len(rejected)  # left out of the rows: exactly what the gate reports
    if template == "gemma2":
        assert [v["line"] for v in rejected] == [4] and "System role not supported" in rejected[0]["problem"]
    if template in ("qwen3", "deepseek_r1_distill"):
        assert result["template_notes"]  # what the template did to the data, counted alike

    # The same entry read strictly (no gate judges the data) is the error naming the line.
    if template == "gemma2":
        with pytest.raises(DataError, match=r"^chats\.jsonl:4: .*System role not supported"):
            tokenized_split(data, "chat", chat_template, 48, "answers", "train", strict=True)


def test_a_lenient_tokenisation_leaves_rejected_records_out_and_keeps_the_rest(tokenizer, tmp_path, monkeypatch):
    from gatetune.encode import to_example, tokenize_example
    from gatetune.tokenized import tokenized_split

    monkeypatch.setenv("GATETUNE_CACHE", str(tmp_path))
    tokenizer.chat_template = (TEMPLATES / "gemma2.jinja").read_text()
    data = LoadedData("chats.jsonl", records(), list(range(1, 25)))
    template = ChatTemplate(tokenizer, {})
    rows, stats, verdicts = tokenized_split(data, "chat", template, 48, "answers", "train", cache=False,
                                            strict=False)
    want = [row["input_ids"] for i, record in enumerate(data.records) if i != 3
            for row in tokenize_example(to_example(record, "chat"), template, 48, "answers")
            if any(row["assistant_masks"])]  # record 5's answer is cut away by max_length
    assert rows["input_ids"] == want and stats["records"] == 24
    assert verdicts[3].problem.startswith("chat template: ") and verdicts[0].problem is None
    assert verdicts[14] is None  # a conversation ending on a user turn: the gate renders it its own way
    with pytest.raises(DataError, match=r"^chats\.jsonl:4: .*System role not supported"):
        tokenized_split(data, "chat", template, 48, "answers", "train", cache=False, strict=True)


def test_a_run_renders_each_chat_once_for_the_gate_and_training(tiny_model_dir, tmp_path, monkeypatch):
    """Gates on (template among them) or off, a run renders the same number of times: the gate adds none. With the
    gemma2 template a system turn is the gate's violation (failed_gates), before any model is loaded."""
    import data_checks.chat_template as chat_template_module
    from gatetune.run import run
    from tests.conftest import compose

    monkeypatch.setenv("GATETUNE_CACHE", str(tmp_path / "cache"))
    counted = {"renders": 0}
    original = chat_template_module.ChatTemplate.render

    def render(self, messages, add_generation_prompt=False):
        counted["renders"] += 1
        return original(self, messages, add_generation_prompt)

    monkeypatch.setattr(chat_template_module.ChatTemplate, "render", render)
    import gatetune.run as run_module

    def no_model(*args, **kwargs):
        raise AssertionError("the model is loaded only after the gates pass")

    good = write_jsonl(tmp_path / "good.jsonl", [chat(f"What is {i} plus 1?", f"It is {i + 1}.") for i in range(30)])
    base = [f"data.path={good}", "logger=none", "training.max_steps=1", "data.cache_tokenized=false",
            "checks.run=[template]", "checks.fail_on=[template]"]
    monkeypatch.setattr(run_module, "load_model", no_model)
    renders = {}
    for name, extra in (("gated", []), ("off", ["checks.enabled=false"])):
        counted["renders"] = 0
        with pytest.raises(AssertionError, match="only after the gates pass"):
            run(compose(base + extra), tmp_path / name)
        renders[name] = counted["renders"]
    assert renders["gated"] == renders["off"] > 30 * 3  # three renderings per assistant turn, once

    bad = [chat(f"What is {i} plus 1?", f"It is {i + 1}.") for i in range(30)]
    bad[6]["messages"].insert(0, {"role": "system", "content": "Be brief."})
    data = write_jsonl(tmp_path / "bad.jsonl", bad)
    result = run(compose([f"data.path={data}", "logger=none", "data.cache_tokenized=false",
                          f"model.chat_template={TEMPLATES / 'gemma2.jinja'}", f"data.eval_path={good}",
                          "checks.run=[template]", "checks.fail_on=[template]"]), tmp_path / "bad")
    assert result.summary["status"] == "failed_gates"
    [violation] = result.summary["gates"]["checks"]["template"]["violations"]
    assert violation["line"] == 7 and "System role not supported" in violation["problem"]
