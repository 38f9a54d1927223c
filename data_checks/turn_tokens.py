"""Token ids of a chain of assistant turns that share one training sequence (`ChatTemplate.encode`'s examples).

Each turn is (prompt, answer): the prompt as a server renders it for that turn, the answer as the model writes
it, and each later prompt begins with the text of the turn before it. The prompt is tokenised as the server
tokenises it, whole; the answer apart, so no token straddles the boundary (a joint tokenisation can merge an
answer's first letters into the prompt's last token). Turns share a sequence only while every later prompt,
tokenised whole, begins with the tokens of the turns before it; the sequence then continues with the rest of that
whole tokenisation, which is what the server feeds the model.

A later prompt need not be tokenised whole, which would cost the whole history again at every turn. A fast
tokenizer first cuts its input at added tokens and tokenises the pieces between them on their own: a piece's ids
depend on its text and on whether it starts the input, nothing else. The previous answer ends on an added token
(its stop marker) and the previous prompt's last added token opens its assistant header, so

    ids(later prompt) = ids(previous prompt before its header) + ids(header + previous answer)
                        + ids(stop + new text)[1:]

and the later prompt begins with the chain's tokens exactly when ids(header + previous answer) equals
ids(header) + ids(previous answer). That asks the tokenizer for the previous answer again and for the new text,
not for the whole history. Only added tokens the tokenizer cuts at unconditionally count (not normalized, not
single-word, not inside a longer added token), and the first CHECKED_WINDOWS later prompts of each
`TurnTokens` are also tokenised whole and compared: any difference switches the shortcut off for good. Where a
turn does not have that shape, or any check fails, its prompt is tokenised whole.
"""

from __future__ import annotations

import logging
from typing import Any

CHECKED_WINDOWS = 16  # later prompts per TurnTokens tokenised whole as well, and compared, before the shortcut alone
# Above this many added tokens (Llama 3 reserves 256) finding the cut points costs more than the shortcut saves:
# 1,018 multi-turn records/s with it against 1,351 without, on the tiny tokenizer plus 256 special tokens.
MAX_ADDED_TOKENS = 64
log = logging.getLogger(__name__)


class TurnTokens:
    """The tokenizer calls of `ChatTemplate`: plain texts into ids, and chains of turns into (ids, mask)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        decoder = getattr(tokenizer, "added_tokens_decoder", {})
        self._added = sorted({t.content for t in decoder.values() if t.content}, key=len, reverse=True)
        # Added tokens a fast tokenizer cuts its input at whatever surrounds them (not normalized, not
        # single-word), longest first, with their ids.
        cuts = {t.content: i for i, t in decoder.items()
                if t.content and not getattr(t, "normalized", True) and not getattr(t, "single_word", True)}
        self._cuts = dict(sorted(cuts.items(), key=lambda kv: len(kv[0]), reverse=True))
        self._cut_ids = set(self._cuts.values())
        # < 0: the shortcut is off
        self.window_checks = CHECKED_WINDOWS if len(self._added) <= MAX_ADDED_TOKENS else -1

    def _backend(self) -> Any | None:
        """The fast tokenizer's Rust backend when `tokenizer(text, add_special_tokens=False)` is exactly its
        `encode` (nothing set to truncate, pad or split special tokens), else None."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None or getattr(self.tokenizer, "split_special_tokens", True) or backend.encode_special_tokens \
                or backend.truncation is not None or backend.padding is not None:
            return None
        return backend

    def ids(self, texts: list[str]) -> list[list[int]]:
        """`tokenizer(text, add_special_tokens=False)["input_ids"]` for each text: the Rust backend directly where
        that is what the call runs (without offsets, which nothing here reads), else the tokenizer in one call."""
        backend = self._backend()
        if backend is None:
            return self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        fast = getattr(backend, "encode_batch_fast", None)  # tokenizers >= 0.20: the same ids, no offsets
        if fast is not None:
            return [e.ids for e in fast(texts, add_special_tokens=False)]
        return [backend.encode(text, add_special_tokens=False).ids for text in texts]

    def chain(self, turns: list[tuple[str, str]]) -> tuple[list[int], list[int]] | None:
        """(ids, mask: 1 on the answers) of the turns as one sequence; None when a later prompt, tokenised whole,
        does not begin with the tokens of the turns before it (the turns then train apart)."""
        texts: list[str] = []
        plans: list[tuple[int, bool, bool]] = []  # (first text of the prompt's plan, windowed, also whole)
        for k, (prompt, answer) in enumerate(turns):
            window = self._window(*turns[k - 1], prompt) if k else None
            plans.append((len(texts), window is not None, window is not None and self.window_checks > 0))
            texts += list(window) if window else [prompt]
            if plans[-1][2]:
                texts.append(prompt)
            texts.append(answer)
        pieces = self.ids(texts)
        ids: list[int] = []
        mask: list[int] = []
        previous_answer: list[int] = []
        for (prompt, _), (at, windowed, compared) in zip(turns, plans, strict=True):
            tail = self._window_tail(pieces[at:at + 3], ids, previous_answer) if windowed else None
            if tail is None or compared:
                if compared:
                    whole = pieces[at + 3]
                elif windowed:  # the window did not prove it: tokenised whole after all
                    whole = self.ids([prompt])[0]
                else:
                    whole = pieces[at]
                whole_tail = whole[len(ids):] if whole[:len(ids)] == ids else None
                if compared:
                    self._compare(tail, whole_tail)
                tail = whole_tail
                if tail is None:
                    return None
            previous_answer = pieces[at + (3 if windowed else 1) + compared]
            ids += tail + previous_answer
            mask += [0] * len(tail) + [1] * len(previous_answer)
        return ids, mask

    def _compare(self, tail: list[int] | None, whole_tail: list[int] | None) -> None:
        if tail is not None and tail != whole_tail:
            log.debug("the later-prompt shortcut tokenises differently from the whole prompt here; it is off")
            self.window_checks = -1
        elif self.window_checks > 0:
            self.window_checks -= 1

    def _window(self, previous_prompt: str, previous_answer: str, prompt: str) -> tuple[str, str, str] | None:
        """(header, header + previous answer, stop + new text) for a later prompt, or None where the shortcut is
        off or the texts lack its shape."""
        if self.window_checks < 0 or self._backend() is None:
            return None
        stop = next((t for t in self._cuts if previous_answer.endswith(t)), None)
        start = max((previous_prompt.rfind(token) for token in self._cuts), default=-1)
        if stop is None or start < 0 or not self._cut_at(previous_prompt, start) \
                or not self._cut_at(previous_answer, len(previous_answer) - len(stop)):
            return None
        header = previous_prompt[start:]
        return header, header + previous_answer, stop + prompt[len(previous_prompt) + len(previous_answer):]

    def _window_tail(self, pieces: list[list[int]], ids: list[int], previous_answer: list[int]) -> list[int] | None:
        """The later prompt's ids after the chain's tokens, from the window's three tokenisations; None when they
        do not prove it (the prompt is then tokenised whole)."""
        header, joined, stop_and_new = pieces
        end = len(ids) - len(previous_answer)
        if not (header and previous_answer and stop_and_new) or stop_and_new[0] != previous_answer[-1] \
                or stop_and_new[0] not in self._cut_ids or joined != header + previous_answer \
                or ids[end - len(header):end] != header:
            return None
        return stop_and_new[1:]

    def _cut_at(self, text: str, at: int) -> bool:
        """Whether the tokenizer cuts `text` at `at`: no added token found there overlaps it from the left, and the
        longest added token starting there is a cut token."""
        for token in self._added:
            found = text.find(token, max(0, at - len(token) + 1), at + len(token) - 1)
            if 0 <= found < at:
                return False
        longest = next((t for t in self._added if text.startswith(t, at)), None)
        return longest is not None and longest in self._cuts
