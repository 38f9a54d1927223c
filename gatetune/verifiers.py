"""Verifiers: one function per metric, each scoring one completion against its reference.

Evaluation and the GRPO rewards (`gatetune.rewards.verified`, one `gatetune/conf/reward/` file per verifier) call
the same functions, so a metric and its reward give a completion the same score:

    verifier(completion: str, reference) -> float | None

`completion` is the model's text (`completion_text` reads TRL's message lists); `reference` is what the
dataset gives (a string, a number, a list of acceptable answers; for code the record's `prompt`, `test`
and `entry_point`). None means the reference cannot be scored (empty, no number in it for `final_number`,
nothing math-verify can read for `math`): such rows are counted before training and in evaluation,
never scored 0 silently.

| name | scores | reference columns |
|---|---|---|
| exact_match | 1.0 when the normalised completion equals a normalised reference (SQuAD normalisation) | answer |
| final_number | 1.0 when the final numbers agree (GSM8K: after the last `####`, else the last number) | answer |
| math | 1.0 when math-verify finds the answers equivalent (`\\boxed{}`, LaTeX, plain expressions) | answer |
| rouge_l | ROUGE-L F1 (rouge-score, stemmed) against the best of the references | answer |
| label | 1.0 when the completion is the reference label (case, punctuation ignored; macro-F1 too) | label |
| code | 1.0 when the completion passes the record's tests in the sandbox (pass@1) | prompt, test, entry_point |
"""

from __future__ import annotations

import re
import string
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Optional

# ------------------------------------------------------------------------------------------- text

def completion_text(completion: Any) -> str:
    """The text of one completion: a string as is; for a list of messages, the assistant messages' text
    (string content, or the `text` parts of a list content), joined by newlines. Tool messages are left out."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    parts = []
    for message in completion or []:
        if not isinstance(message, Mapping) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return "\n".join(parts)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, punctuation and the articles a/an/the removed, blanks collapsed."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def _references(reference: Any) -> list[str]:
    """A reference as the list of acceptable answers (a string, a number, or a list of them); blanks dropped."""
    values = reference if isinstance(reference, (list, tuple)) else [reference]
    return [str(v) for v in values if v is not None and not isinstance(v, bool) and str(v).strip()]


# ------------------------------------------------------------------------------------------ numbers

# A number as written in a solution: an optional minus sign (ASCII or U+2212) and dollar sign, digits with
# optional comma thousands separators in groups of three ("1,000,000"; "1,2" is two numbers), an optional
# decimal part; or a bare decimal (".5"). A trailing full stop is not part of it ("72." -> 72). The
# lookbehind keeps a minus that follows a word or a digit a subtraction ("16-3" -> 16, 3) and a number glued
# to a word ("x2") out.
NUMBER = r"(?:[-\u2212]\$?|\$[-\u2212]?)?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(rf"(?<![\w.]){NUMBER}")
FINAL_MARKER = "####"


def parse_number(token: str) -> Optional[Decimal]:
    """A number token as a Decimal: `,` separators, `$`, surrounding blanks and a trailing `.` removed,
    U+2212 read as a minus. None when it is not a number. Decimals compare by value: 72.0 == 72."""
    cleaned = token.strip().replace(",", "").replace("$", "").replace("\u2212", "-").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def extract_final_number(text: Any) -> Optional[Decimal]:
    """The final answer of a solution: the first number after the last `####` when there is one (None if
    no number follows it), else the last number in the text; None when there is none. A number or a
    numeric string is read as itself, so a reference may be `"#### 72"`, `"72"` or `72`."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, (int, float, Decimal)):
        return parse_number(str(text))
    text = completion_text(text)
    if FINAL_MARKER in text:
        match = _NUMBER_RE.search(text.rsplit(FINAL_MARKER, 1)[1])
        return parse_number(match.group()) if match else None
    numbers = _NUMBER_RE.findall(text)
    return parse_number(numbers[-1]) if numbers else None


_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+|[{}]")


def reference_number(reference: Any) -> Optional[Decimal]:
    """The number a `final_number` reference states, or None. A reference written in LaTeX with no `####`
    (MATH's `\\frac{14}{3}`) states no single number: its last number (3) would be a wrong reference."""
    if isinstance(reference, str) and FINAL_MARKER not in reference and _LATEX_COMMAND.search(reference):
        return None
    return extract_final_number(reference)


# ---------------------------------------------------------------------------------------- verifiers

def exact_match(completion: Any, reference: Any) -> Optional[float]:
    """1.0 when the normalised completion equals one of the normalised references, else 0.0."""
    references = {normalize_answer(r) for r in _references(reference)} - {""}
    if not references:
        return None
    return 1.0 if normalize_answer(completion_text(completion)) in references else 0.0


def final_number(completion: Any, reference: Any) -> Optional[float]:
    """1.0 when the completion's final number equals the reference's (`extract_final_number` on both,
    compared by value: `$1,000.` == `1000` == `1000.00`), else 0.0."""
    expected = reference_number(reference)
    if expected is None:
        return None
    return 1.0 if extract_final_number(completion) == expected else 0.0


def _math_timeout() -> Optional[int]:
    # math-verify's timeouts use SIGALRM, which only the main thread may set.
    return 5 if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=4096)
def _math_gold(reference: str) -> tuple:
    from math_verify import parse

    # A bare reference ("\\frac{14}{3}", "p - q") is read as LaTeX math; one with its own `$` or `\\boxed`
    # as written.
    text = reference if ("$" in reference or "\\boxed" in reference) else f"${reference}$"
    return tuple(parse(text, parsing_timeout=_math_timeout()))


def math_answer(completion: Any, reference: Any) -> Optional[float]:
    """1.0 when math-verify finds the completion's answer (its `\\boxed{}`, else its last LaTeX or plain
    expression) equivalent to the reference (`\\frac{14}{3}` == `14/3`, `\\left( 3, \\frac{\\pi}{2} \\right)`
    == `(3,\\pi/2)`), else 0.0; None when math-verify reads nothing in the reference."""
    from math_verify import parse, verify

    references = _references(reference)
    golds = [g for g in (_math_gold(r) for r in references) if g]
    if not golds:
        return None
    answer = parse(completion_text(completion), parsing_timeout=_math_timeout())
    timeout = _math_timeout()
    return 1.0 if any(verify(list(g), answer, timeout_seconds=timeout) for g in golds) else 0.0


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer, tokenizers

    # The tokenizer given explicitly: the scorer's default is the same, announced with a log line.
    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizers.DefaultTokenizer(use_stemmer=True))


def rouge_l(completion: Any, reference: Any) -> Optional[float]:
    """ROUGE-L F1 (longest common subsequence of stemmed words, rouge-score) against the best reference."""
    references = _references(reference)
    if not references:
        return None
    text = completion_text(completion)
    return max(_rouge().score(r, text)["rougeL"].fmeasure for r in references)


def normalize_label(text: str) -> str:
    """A class label compared: lower case, punctuation removed, blanks collapsed; articles kept, so that
    multiple-choice letters ("A", "a)") stay labels."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def label_match(completion: Any, reference: Any) -> Optional[float]:
    """Classification accuracy for one example: 1.0 when the normalised completion is the reference label
    (or one of a list of labels)."""
    labels = {normalize_label(r) for r in _references(reference)} - {""}
    if not labels:
        return None
    return 1.0 if normalize_label(completion_text(completion)) in labels else 0.0


HUMANEVAL_COLUMNS = ("prompt", "test", "entry_point")
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def code_program(completion: str, prompt: str, test: str, entry_point: str) -> str:
    """The program a HumanEval record runs: the completion (the code of its first fenced block, if it has
    one) after the prompt, or alone when it defines `entry_point` itself (the prompt's imports kept); then
    the record's tests and `check(entry_point)`."""
    fenced = _FENCE.search(completion)
    code = fenced.group(1) if fenced else completion
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        imports = [line for line in prompt.splitlines() if re.match(r"\s*(import|from)\s", line)]
        body = "\n".join(imports) + "\n" + code
    else:
        body = prompt + code
    return f"{body}\n\n{test}\n\ncheck({entry_point})\n"


def code_pass(completion: Any, reference: Any, timeout_s: float = 10.0, memory_mb: int = 1024) -> Optional[float]:
    """1.0 when the completion passes the record's tests in `gatetune.code_sandbox` (pass@1), else 0.0.
    `reference`: a mapping with HumanEval's `prompt`, `test` and `entry_point`."""
    from gatetune.code_sandbox import run_python

    if not _code_reference_ok(reference):
        return None
    program = code_program(completion_text(completion), str(reference.get("prompt") or ""), reference["test"],
                           reference["entry_point"])
    return 1.0 if run_python(program, timeout_s=timeout_s, memory_mb=memory_mb).passed else 0.0


def _code_reference_ok(reference: Any) -> bool:
    return isinstance(reference, Mapping) and all(isinstance(reference.get(k), str) and reference[k].strip()
                                                  for k in ("test", "entry_point"))


# ---------------------------------------------------------------------------------------- aggregates

def mean_score(scores: Sequence[Optional[float]], predictions: Sequence[str], references: Sequence[Any]) -> \
        Optional[float]:
    """The mean over the scored examples (None ones left out); None when none was scored."""
    scored = [s for s in scores if s is not None]
    return sum(scored) / len(scored) if scored else None


def macro_f1(scores: Sequence[Optional[float]], predictions: Sequence[str], references: Sequence[Any]) -> \
        Optional[float]:
    """Macro-averaged F1 over the reference labels: each label's F1 (predicted = the normalised completion),
    averaged with equal weight. A prediction that is no label counts as a miss of the reference's label."""
    pairs = [(normalize_label(completion_text(p)), normalize_label(_references(r)[0]))
             for s, p, r in zip(scores, predictions, references, strict=True) if s is not None]
    if not pairs:
        return None
    labels = sorted({gold for _, gold in pairs})
    true_pos, predicted, actual = Counter(), Counter(), Counter()
    for guess, gold in pairs:
        predicted[guess] += 1
        actual[gold] += 1
        true_pos[gold] += guess == gold
    f1s = []
    for label in labels:
        precision = true_pos[label] / predicted[label] if predicted[label] else 0.0
        recall = true_pos[label] / actual[label]
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1s) / len(f1s)


@dataclass(frozen=True)
class Verifier:
    """A metric: its per-example score, the dataset columns its reference is read from, and how the
    examples' scores combine into the metric (`aggregates`: name -> function)."""

    name: str
    score: Callable[..., Optional[float]]
    columns: tuple[str, ...] = ("answer",)
    aggregates: tuple[tuple[str, Callable[..., Optional[float]]], ...] = (("", mean_score),)
    reference_ok: Optional[Callable[[Any], bool]] = None  # cheaper than score("", reference) is not None
    binary: bool = True  # scores are 0 or 1 (pass@k applies); False for a graded score such as ROUGE-L

    def reference(self, record: Mapping[str, Any], column: Optional[str] = None) -> Any:
        """The reference of one record: its `column` (default the verifier's one column), or for a verifier
        of several columns the mapping of them."""
        if len(self.columns) > 1:
            return {c: record.get(c) for c in self.columns}
        return record.get(column or self.columns[0])

    def can_score(self, reference: Any) -> bool:
        check = self.reference_ok or (lambda r: self.score("", r) is not None)
        return bool(check(reference))


VERIFIERS: dict[str, Verifier] = {v.name: v for v in (
    Verifier("exact_match", exact_match),
    Verifier("final_number", final_number, reference_ok=lambda r: reference_number(r) is not None),
    Verifier("math", math_answer, reference_ok=lambda r: any(_math_gold(x) for x in _references(r))),
    Verifier("rouge_l", rouge_l, reference_ok=lambda r: bool(_references(r)), binary=False),
    Verifier("label", label_match, columns=("label",), aggregates=(("accuracy", mean_score), ("macro_f1", macro_f1)),
             reference_ok=lambda r: bool(_references(r))),
    Verifier("code", code_pass, columns=HUMANEVAL_COLUMNS, reference_ok=_code_reference_ok),
)}


def verifier(name: str) -> Verifier:
    """The verifier called `name`, or a ValueError listing the available ones."""
    if name not in VERIFIERS:
        raise ValueError(f"no verifier {name!r} (available: {', '.join(VERIFIERS)})")
    return VERIFIERS[name]
