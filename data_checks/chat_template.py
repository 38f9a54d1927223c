"""Render conversations with a tokenizer's own chat template and find the tokens to train on.

The tokenizer's `chat_template` is the single source of truth: nothing here re-implements a
template. The template gate, training and evaluation all go through `ChatTemplate.encode`.

How answers are located (docs/ARCHITECTURE.md, "Answer masks"):

- A template with `{% generation %}` markers: transformers' own assistant-token mask.
- Otherwise each assistant turn is rendered as the *last* turn after its history, exactly as an
  inference server renders the prompt for it (`add_generation_prompt=True`). A second rendering
  with a sentinel in place of the content shows where the template puts the content and what it
  writes after it; the trained answer is everything the model has to generate after the prompt:
  template-injected text (Qwen3's empty `<think></think>`, GPT-OSS's channel header), the content,
  and the end-of-turn marker up to its stop token (`<|return|>` for GPT-OSS's final turn, never
  the trailing newline or Phi's extra `<|endoftext|>`). No stop token in the template's turn: EOS
  is appended. Whole-prefix equality between renderings is never required.
- Turns whose rendering as history equals what was trained (and tokenises the same) share one
  example; a template that rewrites history (drops reasoning, folds the system prompt into the
  last user turn, ends earlier turns differently) gives one example per such turn.
- Prompt and answer are tokenised apart: the prompt ids are the ids the server feeds the model,
  so a token can never straddle the prompt/answer boundary (a joint tokenisation can merge an
  answer's leading whitespace or letters into the prompt's last token). A later turn's prompt is
  the server's whole tokenisation of it, found without re-tokenising the history
  (data_checks/turn_tokens.py).

Speed (`scripts/bench_tokenize.py`): a conversation of plain strings is rendered by the template transformers
compiles, with the inputs `apply_chat_template` gives it (None fields dropped, reasoning aliased, the special
tokens), skipping its per-call normalisation; the first renderings of each ChatTemplate are compared with
`apply_chat_template` and any difference switches the shortcut off. The pieces of one conversation are tokenised
by a fast tokenizer's Rust backend directly, which is what `tokenizer(text, add_special_tokens=False)` calls, and a
later turn's prompt costs the tokenizer its new text and the previous answer, not the whole history.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from data_checks.reasoning import REINSERT, THINK_CLOSE, THINK_OPEN, reasoning_styles, split_reasoning, with_reasoning
from data_checks.turn_tokens import TurnTokens

SENTINEL = "ANSWERSENTINEL"
_GENERATION_MARKER = re.compile(r"{%-?\s*generation\s*-?%}")
_PLAIN = (str, int, float, bool, type(None))
CHECKED_RENDERINGS = 16  # renderings per ChatTemplate compared with apply_chat_template before the shortcut alone
log = logging.getLogger(__name__)


class TemplateError(ValueError):
    """The chat template rejects a conversation, or renders it so that answers cannot be located."""


@dataclass
class EncodedExample:
    """One training sequence: token ids and a 0/1 mask of the tokens the loss applies to."""

    input_ids: list[int]
    mask: list[int]


@dataclass
class Encoding:
    """What one conversation turns into, and what the template did to it (`notes`, counted by the gate)."""

    examples: list[EncodedExample]
    notes: set[str] = field(default_factory=set)


@dataclass
class _Turn:
    prompt: str  # the rendering up to the answer, as the server renders it for this turn
    answer: str  # what the model generates: injected text, reasoning, content, end-of-turn marker
    has_reasoning: bool = False


class ChatTemplate:
    """A tokenizer's chat template with the keyword arguments every rendering gets (`enable_thinking`, ...)."""

    def __init__(self, tokenizer: Any, template_kwargs: dict[str, Any] | None = None) -> None:
        self.kwargs = dict(template_kwargs or {})
        template = getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        self.template = template or ""
        self.has_generation_markers = bool(_GENERATION_MARKER.search(self.template))
        self._reasoning_style: str | None = None
        self._shortcut_checks = CHECKED_RENDERINGS  # < 0: the shortcut is off
        self._memo: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] | None = None  # see _prepared
        self.tokenizer = tokenizer

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: Any) -> None:
        """Another tokenizer drops what was derived from the previous one (its special tokens, cut points, the
        compiled template's inputs)."""
        self._tokenizer = tokenizer
        self._special: list[str] | None = None
        self._compiled: tuple[str, Any, Any, dict[str, Any]] | None = None  # (template, compiled, alias, inputs)
        self._tokens = TurnTokens(tokenizer)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (for spawned tokenising workers): the compiled template is compiled again where it is used."""
        return {**self.__dict__, "_compiled": None, "_memo": None}

    # -- rendering -------------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        """The template's text for `messages`; a template's own error is a TemplateError with its message."""
        if not self.template:
            raise TemplateError("the tokenizer has no chat template (set model.chat_template to a .jinja file)")
        try:
            text = self._render_compiled(messages, add_generation_prompt)
        except Exception:  # the template's own error, or the shortcut's: apply_chat_template says which
            text = None
        try:
            if text is None or self._shortcut_checks > 0:
                full = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                          add_generation_prompt=add_generation_prompt, **self.kwargs)
                if text is not None:
                    self._shortcut_checks -= 1
                    if text != full:
                        log.debug("the compiled-template shortcut renders differently here; it is off")
                        self._shortcut_checks = -1
                text = full
            return text
        except TemplateError:
            raise
        except Exception as exc:  # jinja2's TemplateError from raise_exception, or a template bug on this input
            message = str(exc).strip() or type(exc).__name__
            if type(exc).__name__ == "TemplateSyntaxError":
                raise TemplateError(f"the chat template does not parse: {message}") from None
            raise TemplateError(f"the chat template rejects this conversation: {message} (change the record, or "
                                "give model.chat_template a template that accepts it)") from None

    def _render_compiled(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str | None:
        """`apply_chat_template(messages, tokenize=False, ...)` without its per-call overhead, for messages of plain
        strings and numbers; None where the shortcut does not apply (other values, another transformers)."""
        if self._shortcut_checks < 0:
            return None
        if self._compiled is None or self._compiled[0] != self.template:
            try:
                from transformers.utils.chat_template_utils import (
                    _alias_reasoning_fields,
                    _compile_jinja_template,
                    _plain_template_data,
                )
            except ImportError:
                self._shortcut_checks = -1
                return None
            compiled = _compile_jinja_template(self.template)
            # What `compiled.render(**inputs, ...)` puts in its context (the template's globals under its
            # arguments), merged once instead of at every call.
            inputs = {**compiled.globals, **_plain_template_data({**self.tokenizer.special_tokens_map, **self.kwargs})}
            self._compiled = (self.template, compiled, _alias_reasoning_fields, inputs)
        _, compiled, alias, inputs = self._compiled
        chat = [self._prepared(m, alias) for m in messages]
        if None in chat:
            return None
        context = compiled.new_context({**inputs, "messages": chat, "tools": None, "documents": None,
                                        "add_generation_prompt": add_generation_prompt}, shared=True)
        return compiled.environment.concat(compiled.root_render_func(context))

    def _prepared(self, message: dict[str, Any], alias: Any) -> dict[str, Any] | None:
        """A message as apply_chat_template hands it to the template (None fields dropped, reasoning aliased), or
        None when it holds other than plain values. Inside `encode`, kept per message object for the renderings
        of its conversation, which repeat the history (the entry holds the message, so its id is not reused)."""
        memo = self._memo
        entry = memo.get(id(message)) if memo is not None else None
        if entry is None or entry[0] is not message:
            plain = all(type(v) in _PLAIN for v in message.values())
            entry = (message, alias([{k: v for k, v in message.items() if v is not None}])[0] if plain else None)
            if memo is not None:
                memo[id(message)] = entry
        return entry[1]

    def encode(self, messages: list[dict[str, Any]]) -> Encoding:
        """The training examples of one conversation ending on an assistant turn (see the module docstring)."""
        if self.has_generation_markers:
            return self._encode_with_markers(messages)
        style = self.reasoning_style()
        rendered = [with_reasoning(m, style) for m in messages]
        notes: set[str] = set()
        self._memo = {}
        try:
            turns = [(i, self._turn(rendered, messages, i, notes)) for i, m in enumerate(messages)
                     if m["role"] == "assistant"]
        finally:
            self._memo = None
        if not turns:
            raise TemplateError("the conversation has no assistant turn")
        return Encoding(self._examples([t for _, t in turns], notes), notes)

    def prompt_text(self, messages: list[dict[str, Any]]) -> str:
        """The prompt a server renders to generate the next assistant turn."""
        style = self.reasoning_style()
        return self.render([with_reasoning(m, style) for m in messages], add_generation_prompt=True)

    def full_text(self, messages: list[dict[str, Any]]) -> str:
        """The whole conversation as the template renders it (for `data.train_on=all`)."""
        style = self.reasoning_style()
        return self.render([with_reasoning(m, style) for m in messages])

    # -- template properties, probed once ----------------------------------------------------------------
    def reasoning_style(self) -> str:
        """How this template takes reasoning: a message field, inline `<think>` in the content, or not at all."""
        if self._reasoning_style is None:
            self._reasoning_style = REINSERT
            probe = "REASONINGPROBE"
            for style in reasoning_styles():
                messages = [{"role": "user", "content": "Q"},
                            with_reasoning({"role": "assistant", "content": "A", "reasoning_content": probe}, style)]
                try:
                    if probe in self.render(messages):
                        self._reasoning_style = style
                        break
                except TemplateError:
                    continue
        return self._reasoning_style

    def special_tokens(self) -> list[str]:
        if self._special is None:
            tok = self.tokenizer
            special = {t.content for t in getattr(tok, "added_tokens_decoder", {}).values() if t.special}
            special |= set(getattr(tok, "all_special_tokens", []))
            self._special = sorted((s for s in special if s), key=len, reverse=True)
        return self._special

    def stop_marker(self, suffix: str) -> str:
        """The part of what a template writes after an answer that the model generates: up to its first
        special token (the end-of-turn or EOS token); empty when the template writes none."""
        first = None
        for token in self.special_tokens():
            at = suffix.find(token)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, token)
        return "" if first is None else suffix[: first[0] + len(first[1])]

    def _turn_opening(self, before: str, prompt: str) -> str | None:
        """What the rendered turn writes after the prompt's assistant header (the end of the generation prompt
        from its last special token, e.g. `[/INST]`), when `before` has that header followed only by plain
        text (Mistral v0.3's space before the content); None when it has not."""
        starts = [prompt.rfind(token) for token in self.special_tokens()]
        start = max(starts, default=-1)
        if start < 0:
            start = prompt.rstrip("\n").rfind("\n") + 1
        header = prompt[start:]
        at = before.rfind(header) if header else -1
        if at < 0:
            return None
        opening = before[at + len(header):]
        return None if any(token in opening for token in self.special_tokens()) else opening

    # -- one assistant turn ---------------------------------------------------------------------------
    def _turn(self, rendered: list[dict[str, Any]], original: list[dict[str, Any]], i: int,
              notes: set[str]) -> _Turn:
        history, message = rendered[:i], rendered[i]
        content, reasoning = split_reasoning(original[i])
        where = f"turn {i} (assistant)"
        prompt = self.render(history, add_generation_prompt=True)
        sentinel = self.render(history + [{**message, "content": SENTINEL}])
        if sentinel.count(SENTINEL) != 1:
            raise TemplateError(f"{where}: the template does not write the assistant's content once, so the "
                                "answer cannot be located; give model.chat_template a template that does")
        before, suffix = sentinel.split(SENTINEL)
        full = self.render(history + [message])
        if not (full.startswith(before) and full.endswith(suffix)) or len(full) < len(before) + len(suffix):
            raise TemplateError(f"{where}: the template renders this content in a way that changes the rest of "
                                "the turn, so the answer cannot be located")
        body = full[len(before): len(full) - len(suffix)]
        reasoning_done = False
        stop = self.stop_marker(suffix)
        if not stop:
            stop = self.tokenizer.eos_token or ""
            notes.add("eos_appended")
        if before.startswith(prompt):
            answer = full[len(prompt): len(full) - len(suffix)]
        elif prompt.startswith(before):
            forced = prompt[len(before):]  # text the generation prompt adds that the rendered turn lacks
            if body.startswith(forced):
                answer = body[len(forced):]
            elif THINK_OPEN in forced and THINK_CLOSE not in forced:
                # The prompt opens a reasoning block the template deletes from rendered turns (DeepSeek-R1):
                # the model writes the reasoning (empty without it), closes the block, then answers.
                answer = f"{(reasoning or '').strip(chr(10))}\n{THINK_CLOSE}\n\n" + body
                notes.add("reasoning_reinserted" if reasoning else "empty_reasoning_trained")
                reasoning_done = True
            else:
                raise TemplateError(f"{where}: the generation prompt ends with {forced!r}, which the template's "
                                    "rendering of the turn does not contain; the answer cannot be located")
        elif (opening := self._turn_opening(before, prompt)) is not None:
            # The history renders differently once the turn is there (Mistral writes the system prompt only
            # into the last user turn of what it renders), but the turn opens as the prompt ends: the model
            # sees `prompt` and writes the rest of the rendered turn.
            answer = opening + body
        else:
            raise TemplateError(f"{where}: the generation prompt and the rendered turn disagree before the answer "
                                f"(prompt ends {prompt[-40:]!r}, turn has {before[-40:]!r}); check "
                                "data.chat_template_kwargs against the data (e.g. reasoning with "
                                "enable_thinking=false)")
        if reasoning and not reasoning_done and self.reasoning_style() == REINSERT \
                and reasoning.strip() not in answer:
            answer = f"{THINK_OPEN}\n{reasoning.strip(chr(10))}\n{THINK_CLOSE}\n\n" + answer
            notes.add("reasoning_reinserted")
        if reasoning and reasoning.strip() not in answer:
            raise TemplateError(f"{where}: the template leaves this turn's reasoning out of what the model writes "
                                f"(the generation prompt ends {prompt[-40:]!r}); with reasoning data, do not switch "
                                "thinking off in data.chat_template_kwargs (enable_thinking: false), or drop the "
                                "reasoning from the data")
        if content.strip() and content.strip() not in answer:
            raise TemplateError(f"{where}: the template does not write the assistant's content into the turn")
        if not reasoning and THINK_CLOSE in answer and THINK_CLOSE not in content:
            notes.add("empty_reasoning_trained")  # e.g. Qwen3's <think>\n\n</think>\n\n before a plain answer
        return _Turn(prompt, answer + stop, reasoning is not None)

    # -- turns into examples ---------------------------------------------------------------------------
    def _examples(self, turns: list[_Turn], notes: set[str]) -> list[EncodedExample]:
        """Chains of turns whose trained text is exactly the next turn's history share one example."""
        chains: list[list[_Turn]] = [[turns[0]]]
        for turn in turns[1:]:
            previous = chains[-1][-1]
            if turn.prompt.startswith(previous.prompt + previous.answer):
                chains[-1].append(turn)
            else:
                notes.add("reasoning_dropped_from_history" if previous.has_reasoning else "history_rewritten")
                chains.append([turn])
        examples = []
        for chain in chains:
            merged = self._tokenize_chain(chain)
            if merged is None:  # the history tokenises differently than the turns did: keep the turns apart
                notes.add("history_tokenised_differently")
                examples.extend(self._tokenize_chain([turn]) for turn in chain)
            else:
                examples.append(merged)
        return examples

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """`tokenizer(text, add_special_tokens=False)["input_ids"]` for each text (`TurnTokens.ids`)."""
        return self._tokens.ids(texts)

    def _tokenize_chain(self, chain: list[_Turn]) -> EncodedExample | None:
        """Each prompt as the server tokenises it and each answer apart (`TurnTokens.chain`); None when a later
        turn's prompt, tokenised whole, does not begin with the tokens of the turns before it."""
        encoded = self._tokens.chain([(turn.prompt, turn.answer) for turn in chain])
        return None if encoded is None else EncodedExample(*encoded)

    # -- templates with {% generation %} markers ---------------------------------------------------------
    def _encode_with_markers(self, messages: list[dict[str, Any]]) -> Encoding:
        style = self.reasoning_style()
        try:
            out = self.tokenizer.apply_chat_template([with_reasoning(m, style) for m in messages], tokenize=True,
                                                     return_dict=True, return_assistant_tokens_mask=True,
                                                     **self.kwargs)
        except Exception as exc:
            raise TemplateError(f"the chat template rejects this conversation: {str(exc).strip()}") from None
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        return Encoding([EncodedExample(ids, [int(m) for m in mask])], {"generation_markers"})


def answer_token_mask(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token ids of `text` and a 0/1 mask of the tokens that start inside a character span (plain text)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(s <= start < e for s, e in spans)) for start, _ in encoded["offset_mapping"]]
    return encoded["input_ids"], mask
