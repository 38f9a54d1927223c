"""An LLM judge on any OpenAI-compatible endpoint, trusted only after it agrees with people.

Before its scores count, the judge grades a human-labelled golden set (`eval.judge.golden`, JSONL):
pointwise records `{prompt, response, score}` (a person's 1-5) or pairwise ones `{prompt, chosen,
rejected}` (a person preferred `chosen`, the preference data format). Its agreement is the share of
golden records it gets right (a score within `agreement_within` of the person's; the person's choice,
in both orders). Below `min_agreement` (0.85) the judge is `trusted: false`: its scores are reported and
never gate anything; only a trusted judge's mean score joins the metrics the regression gate compares.

Pointwise: the rubric (1-5, explicit criteria per score, a verbosity penalty) and the answer, for the
tuned and the base model's generations. Pairwise: tuned against base in both orders; a win counts only
when both orders agree, so a judge that prefers whichever answer comes first scores a tie.

The API key comes from the environment variable `api_key_env` only and is never written anywhere.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Optional

from gatetune.errors import UserError
from gatetune.evaluation.config import JudgeConfig

log = logging.getLogger(__name__)
RUBRIC_DIR = Path(__file__).resolve().parent.parent / "conf" / "rubrics"
POINTWISE_ASK = 'Reply with the score alone, as JSON: {"score": N}'
PAIRWISE_ASK = ('Which answer is better by these criteria? Reply with JSON alone: {"winner": "A"}, '
                '{"winner": "B"} or {"winner": "tie"}')


class JudgeError(UserError):
    """The judge endpoint is unreachable or keeps failing."""


def load_rubric(name: str) -> str:
    path = Path(name).expanduser()
    if not path.is_file():
        path = RUBRIC_DIR / f"{name}.md"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in RUBRIC_DIR.glob("*.md") if p.stem != "README"))
        raise UserError(f"eval.judge.rubric: no rubric {name!r} (available: {available}, or a path)")
    return path.read_text(encoding="utf-8").strip()


def transcript(prompt: Any) -> str:
    """A prompt (messages or a string) as plain text for the judge."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in prompt)


class JudgeClient:
    """Chat completions with a timeout, retries with exponential backoff, and a request-rate limit."""

    def __init__(self, config: JudgeConfig) -> None:
        import openai

        self.config = config
        self.client = openai.OpenAI(base_url=config.base_url, api_key=os.environ.get(config.api_key_env) or "EMPTY",
                                    timeout=config.timeout_s, max_retries=0)
        self._last = 0.0

    def ask(self, content: str) -> str:
        import openai

        retryable = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                     openai.InternalServerError)
        for attempt in range(self.config.max_retries + 1):
            wait = self._last + 1.0 / self.config.requests_per_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            try:
                reply = self.client.chat.completions.create(
                    model=self.config.model, messages=[{"role": "user", "content": content}], temperature=0,
                    max_tokens=self.config.max_tokens)
                return reply.choices[0].message.content or ""
            except retryable as exc:
                if attempt == self.config.max_retries:
                    raise JudgeError(f"eval.judge: {self.config.base_url} failed {attempt + 1} times: "
                                     f"{type(exc).__name__}: {exc}") from None
                time.sleep(min(30.0, 0.5 * 2 ** attempt))
            except openai.APIStatusError as exc:
                raise JudgeError(f"eval.judge: {self.config.base_url} refused the request "
                                 f"({exc.status_code}): {exc.message}") from None
        raise AssertionError("unreachable")


def check_reachable(config: JudgeConfig) -> None:
    """Ask the endpoint for its models once (no retries): a dead endpoint is an error before any model loads."""
    import openai

    client = openai.OpenAI(base_url=config.base_url, api_key=os.environ.get(config.api_key_env) or "EMPTY",
                           timeout=min(config.timeout_s, 10.0), max_retries=0)
    try:
        client.models.list()
    except openai.APIConnectionError as exc:
        raise JudgeError(f"eval.judge.base_url: cannot reach {config.base_url} ({type(exc).__name__}: "
                         f"{exc.__cause__ or exc}); start the server or fix the address") from None
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise JudgeError(f"eval.judge: {config.base_url} rejected the key (HTTP {exc.status_code}); set "
                             f"{config.api_key_env}") from None


def parse_score(text: str) -> Optional[int]:
    match = re.search(r'"score"\s*:\s*"?([1-5])\b', text) or re.fullmatch(r"\s*([1-5])\s*\.?\s*", text)
    return int(match.group(1)) if match else None


def parse_winner(text: str) -> Optional[str]:
    match = re.search(r'"winner"\s*:\s*"(A|B|tie)"', text, re.I)
    return None if not match else ("tie" if match.group(1).lower() == "tie" else match.group(1).upper())


def score(client: JudgeClient, rubric: str, prompt: Any, response: str) -> Optional[int]:
    return parse_score(client.ask(f"{rubric}\n\n[Request]\n{transcript(prompt)}\n\n[Answer]\n{response}\n\n"
                                  f"{POINTWISE_ASK}"))


def compare(client: JudgeClient, rubric: str, prompt: Any, first: str, second: str) -> str:
    """'first', 'second' or 'tie': both orders asked; a win only when they agree (position bias cancelled)."""
    def ask(a: str, b: str) -> Optional[str]:
        return parse_winner(client.ask(f"{rubric}\n\n[Request]\n{transcript(prompt)}\n\n[Answer A]\n{a}\n\n"
                                       f"[Answer B]\n{b}\n\n{PAIRWISE_ASK}"))

    forward, backward = ask(first, second), ask(second, first)
    if forward == "A" and backward == "B":
        return "first"
    if forward == "B" and backward == "A":
        return "second"
    return "tie"


def read_golden(path: str) -> list[dict[str, Any]]:
    from data_checks import DataError, read_records

    data = read_records(path)
    for record, line in zip(data.records, data.lines, strict=True):
        pointwise = {"prompt", "response", "score"} <= record.keys()
        if not (pointwise or {"prompt", "chosen", "rejected"} <= record.keys()):
            raise DataError(data.path, line, "a golden record needs prompt, response and score (1-5), or prompt, "
                            "chosen and rejected")
        if pointwise and record["score"] not in (1, 2, 3, 4, 5):
            raise DataError(data.path, line, f"score must be 1-5, got {record['score']!r}")
    return data.records


def agreement(client: JudgeClient, rubric: str, golden: list[dict[str, Any]], within: int) -> dict[str, Any]:
    agreed, unparsed = 0, 0
    for record in golden:
        if "score" in record:
            given = score(client, rubric, record["prompt"], str(record["response"]))
            unparsed += given is None
            agreed += given is not None and abs(given - record["score"]) <= within
        else:
            agreed += compare(client, rubric, record["prompt"], str(record["chosen"]), str(record["rejected"])) \
                == "first"
    return {"golden_records": len(golden), "agreement": agreed / len(golden) if golden else None,
            "unparsed_scores": unparsed}


def judge_generations(config: JudgeConfig, prompts: list[Any], tuned: list[str], base: Optional[list[str]]) -> \
        dict[str, Any]:
    """Validation on the golden set, then pointwise means (tuned, base) and tuned-vs-base wins."""
    client, rubric = JudgeClient(config), load_rubric(config.rubric)
    validation = agreement(client, rubric, read_golden(config.golden), config.agreement_within) if config.golden \
        else {"golden_records": 0, "agreement": None, "unparsed_scores": 0}
    trusted = validation["agreement"] is not None and validation["agreement"] >= config.min_agreement
    result: dict[str, Any] = {"model": config.model, "base_url": config.base_url, "rubric": config.rubric,
                              "min_agreement": config.min_agreement, **validation, "trusted": trusted}
    if not trusted:
        log.warning("the judge is untrusted (agreement %s with %d golden records, needs %.2f): its scores are "
                    "reported and gate nothing", validation["agreement"], validation["golden_records"],
                    config.min_agreement)
    n = min(len(prompts), config.max_examples)
    for label, outputs in (("tuned", tuned), ("base", base)):
        if outputs is None:
            continue
        scores = [score(client, rubric, prompts[i], outputs[i]) for i in range(n)]
        parsed = [s for s in scores if s is not None]
        result[f"{label}_mean_score"] = sum(parsed) / len(parsed) if parsed else None
        result[f"{label}_unparsed"] = len(scores) - len(parsed)
    if base is not None and config.pairwise:
        outcomes = [compare(client, rubric, prompts[i], tuned[i], base[i]) for i in range(n)]
        result["pairwise"] = {"tuned_wins": outcomes.count("first"), "base_wins": outcomes.count("second"),
                              "ties": outcomes.count("tie"), "compared": n}
    return result

