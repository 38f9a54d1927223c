"""Generate the bundled SFT sample (`gatetune/sample_data/sft_sample.jsonl`).

Every conversation is distinct: the sample must pass the project's own duplicate gate.

The sample is the project's own: small, deterministic assistant tasks (arithmetic,
word reversal, look-ups in fixed tables) whose answers follow a fixed pattern, so a
model of a few hundred thousand parameters visibly learns it within a minute on CPU.

Run: python scripts/make_sample_data.py  (rewrites the file; the output is deterministic)
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data_checks.report import write_jsonl_atomic  # noqa: E402

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "gatetune" / "sample_data"
N_EXAMPLES = 800
N_PREFERENCE = 400
N_PROMPTS = 400

WORDS = ["cat", "dog", "sun", "tree", "book", "fish", "bird", "milk", "rain", "star",
         "lamp", "door", "road", "ship", "frog", "wind", "rock", "leaf", "bell", "cake"]
COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black",
           "banana": "yellow", "tomato": "red", "orange": "orange", "plum": "purple"}
FRENCH = {"dog": "chien", "cat": "chat", "house": "maison", "water": "eau", "bread": "pain",
          "apple": "pomme", "book": "livre", "sun": "soleil", "tree": "arbre", "milk": "lait"}
SYSTEM = "You are a concise assistant. Answer in one sentence."


def _arithmetic(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    if rng.random() < 0.5:
        return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
    a, b = max(a, b), min(a, b)
    return f"What is {a} minus {b}?", f"{a} minus {b} is {a - b}."


def _reverse(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(WORDS)
    return f"Spell the word {word} backwards.", f"The word {word} backwards is {word[::-1]}."


def _colour(rng: random.Random) -> tuple[str, str]:
    thing = rng.choice(sorted(COLOURS))
    return f"What colour is {thing}?", f"The colour of {thing} is {COLOURS[thing]}."


def _french(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(sorted(FRENCH))
    return f"Translate {word} into French.", f"In French, {word} is {FRENCH[word]}."


def _upper(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(WORDS)
    return f"Write {word} in capital letters.", f"In capital letters, {word} is {word.upper()}."


TASKS = [_arithmetic, _reverse, _colour, _french, _upper]


def make_examples(n: int, seed: int = 0) -> list[dict]:
    """`n` distinct conversations (no exact duplicates, so the demo passes the dedup gate)."""
    rng = random.Random(seed)
    examples: list[dict] = []
    seen: set[str] = set()
    while len(examples) < n:
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": SYSTEM})
        for _turn in range(1 if rng.random() < 0.75 else 2):
            question, answer = rng.choice(TASKS)(rng)
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": answer})
        key = json.dumps(messages, sort_keys=True)
        if key not in seen:
            seen.add(key)
            examples.append({"messages": messages})
    return examples


def _wrong(answer: str, rng: random.Random) -> str:
    """The same answer with its last word replaced: a plausible, wrong rejected answer."""
    head, _, last = answer.rstrip(".").rpartition(" ")
    choices = [w for w in [*WORDS, *COLOURS.values(), *FRENCH.values(), *map(str, range(41))] if w != last]
    return f"{head} {rng.choice(choices)}."


def _distinct_questions(n: int, rng: random.Random) -> Iterator[tuple[str, str]]:
    """`n` (question, answer) pairs with no question twice."""
    seen: set[str] = set()
    while len(seen) < n:
        question, answer = rng.choice(TASKS)(rng)
        if question not in seen:
            seen.add(question)
            yield question, answer


def make_preferences(n: int, seed: int = 1) -> list[dict]:
    """Conversational preference pairs: the right answer is chosen, the same answer with a wrong last word rejected."""
    rng = random.Random(seed)
    return [{"prompt": [{"role": "user", "content": question}],
             "chosen": [{"role": "assistant", "content": answer}],
             "rejected": [{"role": "assistant", "content": _wrong(answer, rng)}]}
            for question, answer in _distinct_questions(n, rng)]


# The word a good answer repeats from each kind of question: the GRPO demo rewards it
# (gatetune/conf/reward/keyword.yaml).
TOPIC_WORDS = {"plus": "plus", "minus": "minus", "backwards": "backwards", "colour": "colour", "French": "French",
               "capital": "letters"}


def _topic_word(question: str) -> str:
    return next(word for key, word in TOPIC_WORDS.items() if key in question)


def make_prompts(n: int, seed: int = 2) -> list[dict]:
    """Prompt-only rows for GRPO: the question, the reference answer, and the topic word the answer repeats."""
    rng = random.Random(seed)
    return [{"prompt": [{"role": "user", "content": question}], "answer": answer, "target": _topic_word(question)}
            for question, answer in _distinct_questions(n, rng)]


def _write(name: str, rows: list[dict]) -> None:
    out = write_jsonl_atomic(SAMPLE_DIR / name, rows)
    print(f"wrote {len(rows)} rows to {out}")


def main() -> None:
    _write("sft_sample.jsonl", make_examples(N_EXAMPLES))
    _write("preference_sample.jsonl", make_preferences(N_PREFERENCE))
    _write("prompt_sample.jsonl", make_prompts(N_PROMPTS))


if __name__ == "__main__":
    main()
