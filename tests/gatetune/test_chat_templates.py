"""Answer masks on the real chat templates of today's model families (tests/chat_templates/, SOURCES.md there).

Each template is put on a GPT-4-style tokenizer trained locally with its family's special tokens. For every
family and conversation shape the decoded masked tokens must equal exactly what the model generates at
inference (template-injected text, reasoning where trained, the content, the end-of-turn marker up to its
stop token), and every example's unmasked prefix must be exactly the tokenised generation prompt a server
renders for that turn. Needs transformers and tokenizers, not torch models: fast.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from data_checks.chat_template import ChatTemplate, TemplateError

TEMPLATES = Path(__file__).resolve().parent.parent / "chat_templates"
FAMILIES = json.loads((TEMPLATES / "families.json").read_text())
SYSTEM = {"role": "system", "content": "You are brief."}
QUESTIONS = ["Name a colour.", "Another one?", "And a number?"]
ANSWERS = ["Blue.", "Green, then red.", "Forty two."]
REASONING = ["The user wants a colour.", "Pick another colour.", "Any number will do."]


def _q(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _a(text: str, reasoning: str | None = None) -> dict[str, str]:
    message = {"role": "assistant", "content": text}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def _think(r: str) -> str:
    return f"<think>\n{r}\n</think>\n\n"


# Mistral v0.3 / Nemo write the system prompt into the last user turn only: turns share one example without one.
SYSTEM_IN_LAST_TURN = "without a system message"
# family -> (what the model generates for content c and reasoning r, whether the turns of one multi-turn
# conversation share one example, whether the template accepts a system message, whether it trims content
# (True: whitespace; a string: those characters from the start, as Qwen3 lstrips newlines).
# `r` is None for answers without reasoning.
EXPECTED = {
    "qwen3": (lambda c, r: _think(r or "").replace("\n\n\n", "\n\n") + c + "<|im_end|>", False, True, "\n"),
    "qwen2_5": (lambda c, r: (_think(r) if r else "") + c + "<|im_end|>", True, True, False),
    "deepseek_r1_distill": (lambda c, r: f"{r or ''}\n</think>\n\n{c}<｜end▁of▁sentence｜>", False, True, False),
    "deepseek_r1_distill_old": (lambda c, r: (_think(r) if r else "") + c + "<｜end▁of▁sentence｜>", True, True, False),
    "gpt_oss": (lambda c, r: (f"<|channel|>analysis<|message|>{r}<|end|><|start|>assistant" if r else "")
                + f"<|channel|>final<|message|>{c}<|return|>", False, True, False),
    "llama3_1": (lambda c, r: (_think(r) if r else "") + c + "<|eot_id|>", True, True, True),
    "llama3_2": (lambda c, r: (_think(r) if r else "") + c + "<|eot_id|>", True, True, True),
    "gemma2": (lambda c, r: (_think(r) if r else "") + c + "<end_of_turn>", True, False, True),
    "gemma3": (lambda c, r: (_think(r) if r else "") + c + "<end_of_turn>", True, True, True),
    "phi3_5_mini": (lambda c, r: (_think(r) if r else "") + c + "<|end|>", True, True, False),
    "phi4_mini": (lambda c, r: (_think(r) if r else "") + c + "<|end|>", True, True, False),
    "mistral_v0_3": (lambda c, r: " " + (_think(r) if r else "") + c + "</s>", SYSTEM_IN_LAST_TURN, True, True),
    "mistral_nemo": (lambda c, r: (_think(r) if r else "") + c + "</s>", SYSTEM_IN_LAST_TURN, True, False),
    "mixtral": (lambda c, r: (_think(r) if r else "") + c + "</s>", True, False, False),
    "mistral_v0_1": (lambda c, r: (_think(r) if r else "") + c + "</s>", True, False, False),
    "falcon": (lambda c, r: " " + (_think(r).replace("\n\n", "\n") if r else "") + c + "<|endoftext|>", False, True,
               True),
}
# Templates that drop reasoning from earlier turns or rewrite them: reasoning turns become one example each.
DROPS_REASONING_HISTORY = {"qwen3", "deepseek_r1_distill", "deepseek_r1_distill_old", "gpt_oss", "falcon"}


@cache
def tokenizer(family: str) -> Any:
    from gatetune.tiny_families import build_gpt4_style_tokenizer

    info = FAMILIES[family]
    template = (TEMPLATES / info["file"]).read_text(encoding="utf-8")
    return build_gpt4_style_tokenizer(info["special_tokens"], info.get("bos_token"), info["eos_token"],
                                      info.get("pad_token"), template)


def _masked_runs(tok: Any, ids: list[int], mask: list[int]) -> list[str]:
    runs, current = [], []
    for token, m in zip(ids, mask, strict=True):
        if m:
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    return runs


def _check(family: str, messages: list[dict[str, Any]], kwargs: dict[str, Any] | None = None) -> list[list[str]]:
    """Encode; assert each example's unmasked prefix is the server's tokenised prompt; return the masked runs."""
    tok = tokenizer(family)
    chat = ChatTemplate(tok, kwargs)
    encoding = chat.encode(messages)
    assistant_turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    runs = [_masked_runs(tok, e.input_ids, e.mask) for e in encoding.examples]
    # The last turn of each example: its prompt, tokenised whole, is exactly what precedes its answer.
    ends = []
    for example, example_runs in zip(encoding.examples, runs, strict=True):
        ends.append(assistant_turns[sum(len(r) for r in runs[: len(ends)]) + len(example_runs) - 1])
        last_answer = len(tok(example_runs[-1], add_special_tokens=False)["input_ids"])
        prompt_ids = tok(chat.prompt_text(messages[: ends[-1]]), add_special_tokens=False)["input_ids"]
        assert example.input_ids[: len(example.input_ids) - last_answer] == prompt_ids
        assert example.mask[len(prompt_ids):] == [1] * last_answer
    return runs


def _conversation(system: bool, n: int, reasoning: bool = False, answers: list[str] = ANSWERS) -> list[dict]:
    messages = [SYSTEM] if system else []
    for i in range(n):
        messages += [_q(QUESTIONS[i]), _a(answers[i], REASONING[i] if reasoning else None)]
    return messages


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_single_turn_trains_exactly_the_answer_and_its_stop_token(family: str):
    expected, _, _, _ = EXPECTED[family]
    assert _check(family, _conversation(False, 1)) == [[expected(ANSWERS[0], None)]]


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_multi_turn_with_a_system_message(family: str):
    expected, shared, takes_system, _ = EXPECTED[family]
    messages = _conversation(takes_system, 3)
    runs = _check(family, messages)
    assert [run for example in runs for run in example] == [expected(a, None) for a in ANSWERS]
    assert len(runs) == (1 if shared is True else 3)
    if shared == SYSTEM_IN_LAST_TURN:
        assert len(_check(family, _conversation(False, 3))) == 1


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_whitespace_edged_answers(family: str):
    expected, _, _, trims = EXPECTED[family]
    answers = ["  Blue. ", "\nGreen, then red.\n", " Forty two.\n\n"]
    runs = _check(family, _conversation(False, 3, answers=answers))
    got = [run for example in runs for run in example]
    trimmed = [a.strip() if trims is True else a.lstrip(trims) if trims else a for a in answers]
    assert got == [expected(a, None) for a in trimmed]


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_reasoning_is_trained_where_the_model_writes_it(family: str):
    expected, shared, _, _ = EXPECTED[family]
    runs = _check(family, _conversation(False, 3, reasoning=True))
    assert [run for example in runs for run in example] == [expected(a, r) for a, r in zip(ANSWERS, REASONING,
                                                                                             strict=True)]
    # A template that drops reasoning from history: each reasoning turn is its own example, in the context
    # the model sees at inference; the others keep one example.
    assert len(runs) == (3 if family in DROPS_REASONING_HISTORY or not shared else 1)


@pytest.mark.parametrize("form", ["reasoning_content", "thinking", "reasoning", "inline"])
def test_every_reasoning_form_trains_the_same_tokens(form: str):
    def message(c: str, r: str) -> dict[str, str]:
        if form == "inline":
            return {"role": "assistant", "content": f"<think>\n{r}\n</think>\n\n{c}"}
        return {"role": "assistant", "content": c, form: r}

    for family in ("qwen3", "deepseek_r1_distill", "gpt_oss", "llama3_1"):
        expected = EXPECTED[family][0]
        runs = _check(family, [_q("Q?"), message("A.", "R.")])
        assert runs == [[expected("A.", "R.")]], family


def test_qwen3_enable_thinking_false_keeps_the_empty_block_in_the_prompt():
    messages = _conversation(True, 2)
    runs = _check("qwen3", messages, {"enable_thinking": False})
    assert runs == [[a + "<|im_end|>"] for a in ANSWERS[:2]]
    notes = ChatTemplate(tokenizer("qwen3"), {"enable_thinking": False}).encode(messages).notes
    assert "empty_reasoning_trained" not in notes
    assert "empty_reasoning_trained" in ChatTemplate(tokenizer("qwen3")).encode(messages).notes


def test_reasoning_with_thinking_switched_off_is_a_clear_error():
    with pytest.raises(TemplateError, match="enable_thinking"):
        ChatTemplate(tokenizer("qwen3"), {"enable_thinking": False}).encode(_conversation(False, 1, reasoning=True))


def test_notes_say_what_each_template_does():
    def notes(family: str, messages: list[dict]) -> set[str]:
        return ChatTemplate(tokenizer(family)).encode(messages).notes

    assert notes("deepseek_r1_distill", _conversation(False, 2, True)) == {"reasoning_reinserted",
                                                                            "reasoning_dropped_from_history"}
    assert notes("deepseek_r1_distill_old", _conversation(False, 1, True)) == {"reasoning_reinserted"}
    assert notes("falcon", _conversation(False, 1)) == {"eos_appended"}
    assert notes("mistral_nemo", _conversation(True, 2)) == {"history_rewritten"}
    assert notes("llama3_1", _conversation(True, 3, True)) == set()


@pytest.mark.parametrize("family,message", [("gemma2", "System role not supported"),
                                            ("mixtral", "Conversation roles must alternate"),
                                            ("mistral_v0_1", "Conversation roles must alternate")])
def test_a_template_that_rejects_a_system_message_says_so(family: str, message: str):
    with pytest.raises(TemplateError, match=message):
        ChatTemplate(tokenizer(family)).encode(_conversation(True, 1))


def test_no_token_straddles_the_prompt_answer_boundary():
    """A GPT-4-style pre-tokenizer merges "\\n" + "\\nBlue" jointly; the answer is tokenised on its own, so the
    prompt ids are the server's and the answer is exactly trained."""
    tok = tokenizer("qwen2_5")
    messages = [_q("Name a colour."), _a("\n\nBlue.")]
    chat = ChatTemplate(tok)
    prompt = chat.prompt_text(messages[:1])
    joint = tok(prompt + "\n\nBlue.<|im_end|>", add_special_tokens=False)["input_ids"]
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert joint[: len(prompt_ids)] != prompt_ids  # the joint tokenisation does merge across the boundary
    [example] = chat.encode(messages).examples
    assert example.input_ids[: len(prompt_ids)] == prompt_ids
    assert _masked_runs(tok, example.input_ids, example.mask) == ["\n\nBlue.<|im_end|>"]


# ---------------------------------------------------------------- the template gate, on the same encoding
def _loaded(records: list[dict]) -> Any:
    from data_checks import LoadedData

    return LoadedData("train.jsonl", records, [i + 1 for i in range(len(records))], "jsonl")


def test_the_gate_names_the_line_of_a_conversation_the_template_rejects():
    from data_checks.template import check_template

    records = [{"messages": _conversation(False, 1)}, {"messages": _conversation(True, 1)},
               {"messages": _conversation(False, 2)}]
    result = check_template(_loaded(records), "chat", ChatTemplate(tokenizer("gemma2")))
    assert not result.passed
    [violation] = result.violations
    assert (violation["record"], violation["line"]) == (1, 2)
    assert violation["problem"].startswith("chat template: the chat template rejects this conversation: "
                                           "System role not supported (change the record, or give "
                                           "model.chat_template")


def test_the_gate_reports_what_the_template_does_to_reasoning():
    from data_checks.template import check_template

    records = [{"messages": _conversation(False, 2, reasoning=True)}, {"messages": _conversation(False, 1)}]
    result = check_template(_loaded(records), "chat", ChatTemplate(tokenizer("deepseek_r1_distill")))
    assert result.passed
    assert result.template_notes == {"reasoning_reinserted": 1, "reasoning_dropped_from_history": 1,
                                     "empty_reasoning_trained": 1}
    report = result.to_dict()["template_notes"]
    assert "deletes reasoning" in report["reasoning_reinserted"]["meaning"]


def test_data_checks_cli_takes_the_template_and_its_arguments(tmp_path: Path):
    from data_checks.cli import main

    tok = tokenizer("qwen3")
    tok.save_pretrained(tmp_path / "tok")
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"messages": _conversation(False, 1, reasoning=True)}) + "\n"
                    + json.dumps({"messages": _conversation(False, 1)}) + "\n")
    report = tmp_path / "report.json"
    args = [str(data), "--checks", "template", "--tokenizer", str(tmp_path / "tok"), "--json", str(report)]
    assert main(args) == 0
    assert main([*args, "--chat-template-kwargs", '{"enable_thinking": false}']) == 1
    [violation] = json.loads(report.read_text())["checks"]["template"]["violations"]
    assert violation["line"] == 1 and "enable_thinking" in violation["problem"]
    no_content = Path(__file__).resolve().parent.parent / "data" / "template_without_content.jinja"
    assert main([*args, "--chat-template", str(no_content)]) == 1  # the answer cannot be located
    assert main([str(data), "--chat-template-kwargs", "{}"]) == 2  # needs --tokenizer


@pytest.mark.parametrize("family,end_of_turn", [("qwen3", "<|im_end|>"), ("llama3_1", "<|eot_id|>"),
                                                ("gemma3", "<end_of_turn>"), ("phi4_mini", "<|end|>"),
                                                ("gpt_oss", "<|return|>"), ("mistral_nemo", "</s>"),
                                                ("deepseek_r1_distill", "<｜end▁of▁sentence｜>")])
def test_the_export_stops_on_each_familys_end_of_turn_token(family: str, end_of_turn: str):
    from gatetune.export import stop_token_ids

    tok = tokenizer(family)
    stops = stop_token_ids(tok)
    assert tok.convert_tokens_to_ids(end_of_turn) in stops and tok.eos_token_id in stops
    if family == "gpt_oss":  # <|end|> closes the analysis channel mid-answer: stopping there would cut it
        assert tok.convert_tokens_to_ids("<|end|>") not in stops
