"""A later turn's prompt without re-tokenising the history (data_checks/turn_tokens.py) gives exactly the ids of
tokenising it whole, the server's: on every family template with its special tokens, on the tiny model's
tokenizer and on a Metaspace (SentencePiece-style) one, over multi-turn shapes; and the shortcut really leaves
the whole later prompts out, switches itself off when a comparison disagrees, and cuts only at added tokens the
tokenizer always cuts at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data_checks.chat_template import ChatTemplate, TemplateError
from data_checks.turn_tokens import CHECKED_WINDOWS, TurnTokens
from tests.gatetune.test_chat_templates import FAMILIES, tokenizer
from tests.gatetune.test_rendering_shortcuts import _metaspace_tokenizer


def _exchange(q: str, a: str, reasoning: str | None = None) -> list[dict[str, str]]:
    answer = {"role": "assistant", "content": a}
    if reasoning:
        answer["reasoning_content"] = reasoning
    return [{"role": "user", "content": q}, answer]


CONVERSATIONS = [
    _exchange("Name a colour.", "Blue.") + _exchange("Another one?", "Green, then red.")
    + _exchange("And a number?", "Forty two."),
    [{"role": "system", "content": "You are brief."}] + _exchange("Hi", "Hello there.") + _exchange("Bye", "Bye!"),
    _exchange("  spaced  ", "\n\nleading newlines") + _exchange("trailing ", "space after ") + _exchange("x", " y"),
    _exchange("2+2?", "4", "Add them.") + _exchange("And 3+3?", "6", "Add again."),
    _exchange("ünïcödé?", "表 😀") + _exchange("tabs\tand\nnewlines", "ok\n\n") + _exchange("[INST]", "</s> then"),
]


def _tokenizers() -> list[str]:
    return sorted(FAMILIES) + ["tiny", "metaspace"]


def _tokenizer(which: str, tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    if which == "tiny":
        return AutoTokenizer.from_pretrained(tiny_model_dir)
    return _metaspace_tokenizer() if which == "metaspace" else tokenizer(which)


def _encodings(chat: ChatTemplate, conversations: list[list[dict]]) -> list[Any]:
    out = []
    for conversation in conversations:
        try:
            out.append([(e.input_ids, e.mask) for e in chat.encode(conversation).examples])
        except TemplateError:  # the template refuses this shape (gemma2's system turn)
            out.append(None)
    return out


@pytest.mark.parametrize("which", _tokenizers())
def test_the_shortcut_gives_the_whole_prompts_tokens(which: str, tiny_model_dir: Path, monkeypatch):
    tok = _tokenizer(which, tiny_model_dir)
    conversations = CONVERSATIONS
    if which == "metaspace":
        # Mistral v0.1's template on a SentencePiece-style tokenizer, whose answers are tokenised alone as after
        # [/INST] only when they start with a space (Metaspace prepends one to the start of the input).
        tok.chat_template = tokenizer("mistral_v0_1").chat_template
        conversations = [[{**m, "content": " " + m["content"].strip()} if m["role"] == "assistant" else m for m in c]
                         for c in CONVERSATIONS]
    whole = ChatTemplate(tok, {})
    whole._tokens.window_checks = -1  # every later prompt tokenised whole
    want = _encodings(whole, conversations)
    assert sum(e is not None for e in want) >= 3

    alone = ChatTemplate(tok, {})
    alone._tokens.window_checks = 0  # the shortcut alone, nothing compared
    asked: list[str] = []
    ids = TurnTokens.ids
    monkeypatch.setattr(TurnTokens, "ids", lambda self, texts: asked.extend(texts) or ids(self, texts))
    assert _encodings(alone, conversations) == want
    assert alone._tokens.window_checks == 0
    later_prompts = {t.prompt for c in conversations for t in _turns(whole, c)[1:]}
    shares = any(e is not None and len(e) < sum(m["role"] == "assistant" for m in c)
                 for e, c in zip(want, conversations, strict=True))
    # ...and where a template lets turns share one, later prompts went through the shortcut, not tokenised whole.
    assert later_prompts - set(asked) or not shares
    assert shares or which in {"qwen3", "deepseek_r1_distill", "gpt_oss", "falcon"}


def _turns(chat: ChatTemplate, conversation: list[dict]) -> list[Any]:
    try:
        style = chat.reasoning_style()
        from data_checks.reasoning import with_reasoning

        rendered = [with_reasoning(m, style) for m in conversation]
        return [chat._turn(rendered, conversation, i, set()) for i, m in enumerate(conversation)
                if m["role"] == "assistant"]
    except TemplateError:
        return []


def test_later_prompts_are_not_tokenised_whole_once_checked(tiny_model_dir: Path, monkeypatch):
    from transformers import AutoTokenizer

    chat = ChatTemplate(AutoTokenizer.from_pretrained(tiny_model_dir), {})
    conversation = CONVERSATIONS[0]
    turns = _turns(chat, conversation)
    first = chat.encode(conversation)
    assert len(first.examples) == 1 and chat._tokens.window_checks == CHECKED_WINDOWS - 2  # two later prompts
    asked: list[str] = []
    ids = TurnTokens.ids
    monkeypatch.setattr(TurnTokens, "ids", lambda self, texts: asked.extend(texts) or ids(self, texts))
    chat._tokens.window_checks = 0
    again = chat.encode(conversation)
    assert [(e.input_ids, e.mask) for e in again.examples] == [(e.input_ids, e.mask) for e in first.examples]
    assert turns[0].prompt in asked and not {t.prompt for t in turns[1:]} & set(asked)
    # What the tokenizer was given instead is far shorter than the history the whole prompts repeat.
    assert sum(map(len, asked)) < sum(len(t.prompt) + len(t.answer) for t in turns)


def test_a_shortcut_that_disagrees_is_switched_off(tiny_model_dir: Path, monkeypatch):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    whole = ChatTemplate(tok, {})
    whole._tokens.window_checks = -1
    want = [(e.input_ids, e.mask) for e in whole.encode(CONVERSATIONS[0]).examples]
    monkeypatch.setattr(TurnTokens, "_window_tail", lambda self, pieces, ids, previous: [7, 7, 7])
    chat = ChatTemplate(tok, {})
    assert [(e.input_ids, e.mask) for e in chat.encode(CONVERSATIONS[0]).examples] == want  # the whole one wins
    assert chat._tokens.window_checks < 0
    assert chat._tokens._window("a", "b", "abc") is None  # and the shortcut stays off


def test_only_added_tokens_the_tokenizer_always_cuts_at_are_cut_points():
    from tokenizers import AddedToken

    tok = tokenizer("qwen2_5")
    tok.add_tokens([AddedToken("<norm>", normalized=True), AddedToken("<word>", single_word=True, normalized=False)])
    tokens = TurnTokens(tok)
    assert "<|im_end|>" in tokens._cuts and "<|im_start|>" in tokens._cuts
    assert "<norm>" not in tokens._cuts and "<word>" not in tokens._cuts
    text = "a<|im_start|>b"
    assert tokens._cut_at(text, 1) and not tokens._cut_at(text, 2) and not tokens._cut_at(text, 0)


def test_the_shortcut_is_off_for_a_tokenizer_with_many_added_tokens(tiny_model_dir: Path):
    """Finding cut points among hundreds of added tokens (Llama 3 reserves 256) costs more than it saves."""
    from transformers import AutoTokenizer

    from data_checks.turn_tokens import MAX_ADDED_TOKENS

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    want = [(e.input_ids, e.mask) for e in ChatTemplate(tok, {}).encode(CONVERSATIONS[0]).examples]
    tok.add_special_tokens({"additional_special_tokens": [f"<|reserved_{i}|>" for i in range(MAX_ADDED_TOKENS + 1)]})
    chat = ChatTemplate(tok, {})
    assert [(e.input_ids, e.mask) for e in chat.encode(CONVERSATIONS[0]).examples] == want
    assert chat._tokens.window_checks < 0


def test_a_template_given_another_tokenizer_tokenises_with_it(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    chat = ChatTemplate(AutoTokenizer.from_pretrained(tiny_model_dir), {})
    before = chat.token_ids(["Hello"])
    other = AutoTokenizer.from_pretrained(tiny_model_dir)
    other.add_tokens(["Hello"])
    chat.tokenizer = other
    assert chat.token_ids(["Hello"]) == [[other.convert_tokens_to_ids("Hello")]] != before
    assert chat._tokens.tokenizer is other and "Hello" in chat._tokens._added
