"""GRPO reward functions and the loader that turns `grpo.rewards` into TRL reward callables.

TRL's GRPOTrainer calls each reward function once per batch, with keywords only:

    reward_func(prompts=..., completions=..., completion_ids=..., **columns) -> list[float | None]

`prompts`, `completions` and `completion_ids` are lists with one entry per generated completion (a prompt
appears `num_generations` times). `columns` holds every other dataset column, one value per completion
(e.g. `answer=[...]`), plus `trainer_state`, `log_extra`, `log_metric` (and `environments` when used).
Completions are strings for standard data and lists of message dicts
(`[{"role": "assistant", "content": "..."}]`) for conversational data; `completion_text` reads both.
Return one float per completion; `None` means "not applicable" and TRL leaves that reward out for that row.
Every function here takes `**kwargs` so that columns it does not use pass through.

Rewards are configured by files in `gatetune/conf/reward/` (`_target_` plus `_partial_: true` and the parameters),
named in `grpo.rewards`; `load_rewards` instantiates them. It wraps each one in `NamedReward`, whose
`__name__` is the config's name, because TRL labels a reward's metrics (`rewards/<name>/mean`, `/std`) with
`trl.trainer.utils.get_callable_name`, which unwraps a `functools.partial` to the underlying function's
name: two configs of the same function (say two length penalties) would otherwise log under one name.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Optional

from gatetune import verifiers
from gatetune.verifiers import FINAL_MARKER, NUMBER, completion_text, extract_final_number, parse_number

__all__ = ["completion_text", "extract_final_number", "parse_number"]  # re-exported: rewards read them

REWARD_DIR = Path(__file__).resolve().parent / "conf" / "reward"

# The keywords TRL passes besides the dataset columns.
TRL_KEYWORDS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments")

# format_reward's default: the completion's last non-blank line is `#### <number>` (an optional full stop
# after the number), e.g. "...so she makes $18.\n#### 18".
FINAL_ANSWER_LINE = rf"(?:\A|\n)[ \t]*{FINAL_MARKER}[ \t]*{NUMBER}\.?\s*\Z"


# ---------------------------------------------------------------------------------------------- helpers

def _column(name: str, values: Any, completions: list, reward: str, kwargs: Mapping[str, Any]) -> list:
    if values is None:
        columns = sorted(k for k in kwargs if k not in TRL_KEYWORDS)
        raise ValueError(f"reward {reward} needs a dataset column {name!r}; the dataset has "
                         f"{', '.join(columns) or 'no columns besides the prompt'}")
    if len(values) != len(completions):
        raise ValueError(f"reward {reward}: {len(values)} values of {name!r} for {len(completions)} completions")
    return list(values)


# ---------------------------------------------------------------------------------------------- rewards

def gsm8k_final_number(completions: list, answer: Optional[list] = None, **kwargs: Any) -> list[Optional[float]]:
    """1.0 when the completion's final number equals the reference's, else 0.0 (GSM8K accuracy).

    `answer` is the dataset column: a GSM8K solution ending in `#### 72`, or a plain number. Both sides are
    read by `extract_final_number` (after the last `####`, else the last number) and compared by value,
    so `$1,000.` == `1000` == `1000.00`. A reference without a number, or in LaTeX without `####` (MATH's
    `\\frac{14}{3}`), gives None (TRL skips that row). The same score as the `final_number` metric."""
    references = _column("answer", answer, completions, "gsm8k_final_number", kwargs)
    score = verifiers.final_number
    return [score(completion, reference) for completion, reference in zip(completions, references, strict=True)]


# Checked against the data before any model loads (gatetune/reward_checks.py).
gsm8k_final_number.dataset_columns = ("answer",)
gsm8k_final_number.scores_record = lambda params: lambda record: verifiers.final_number("", record.get("answer")) \
    is not None


def verified(completions: list, verifier: str = "exact_match", column: Optional[str] = None,
             prompts: Optional[list] = None, **kwargs: Any) -> list[Optional[float]]:
    """The score of the verifier named `verifier` (`gatetune/verifiers.py`) for each completion against its
    row's reference: the dataset column `column` (default: the verifier's own, e.g. `answer`), or for
    `code` the row's `prompt`, `test` and `entry_point`. The evaluation metric of the same name gives the
    same score. None where the reference cannot be scored (TRL leaves the reward out for that row)."""
    spec = verifiers.verifier(verifier)
    names = spec.columns if len(spec.columns) > 1 else (column or spec.columns[0],)
    values = {}
    for name in names:
        given = prompts if name == "prompt" and name not in kwargs else kwargs.get(name)
        if name == "prompt" and given is not None:
            given = [_prompt_text(p) for p in given]
        values[name] = _column(name, given, completions, f"verified[{verifier}]", kwargs)
    rows = [{name: values[name][i] for name in names} for i in range(len(completions))]
    return [spec.score(c, spec.reference(row, column)) for c, row in zip(completions, rows, strict=True)]


def _verified_columns(params: Mapping[str, Any]) -> tuple[str, ...]:
    spec = verifiers.verifier(params.get("verifier", "exact_match"))
    columns = spec.columns if len(spec.columns) > 1 else (params.get("column") or spec.columns[0],)
    return tuple(c for c in columns if c != "prompt")  # TRL passes the prompt itself


def _verified_scores_record(params: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    spec = verifiers.verifier(params.get("verifier", "exact_match"))
    return lambda record: spec.can_score(spec.reference(record, params.get("column")))


verified.dataset_columns = _verified_columns
verified.scores_record = _verified_scores_record


def _prompt_text(prompt: Any) -> str:
    """A prompt's text: a string as is; for messages, the last user message's content."""
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt or [] if isinstance(m, Mapping) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else ""


def format_reward(completions: list, pattern: Optional[str] = None, **kwargs: Any) -> list[float]:
    """1.0 when `re.search(pattern, text)` matches the completion's text, else 0.0.

    The default pattern (None: `FINAL_ANSWER_LINE`) wants the completion to end with a final answer line
    `#### <number>`. A custom pattern is searched anywhere in the text: anchor it with `\\A` / `\\Z` and
    set flags inline (`(?s)`, `(?i)`, `(?m)`)."""
    regex = re.compile(FINAL_ANSWER_LINE if pattern is None else pattern)
    return [1.0 if regex.search(completion_text(c)) else 0.0 for c in completions]


def length_penalty(completions: list, target_chars: int = 400, window_chars: Optional[int] = None,
                   **kwargs: Any) -> list[float]:
    """0 for a completion of at most `target_chars` characters, falling linearly to -1 beyond it:

        penalty = -min(1, max(0, len(text) - target_chars) / window_chars)

    `window_chars` (default: `target_chars`) is how many characters past the target reach -1, so by
    default a completion twice the target length or longer gets -1. `len(text)` counts characters of the
    completion's text (the assistant messages' content for conversational data)."""
    window = target_chars if window_chars is None else window_chars
    if target_chars < 0 or window <= 0:
        raise ValueError(f"length_penalty needs target_chars >= 0 and window_chars > 0, got {target_chars}, {window}")
    return [-min(1.0, max(0, len(completion_text(c)) - target_chars) / window) for c in completions]


def keyword_reward(completions: list, column: str = "target", case_sensitive: bool = False, whole_word: bool = True,
                   **kwargs: Any) -> list[Optional[float]]:
    """1.0 when the completion contains the word in the dataset column `column` (default `target`), else 0.0.

    A column value may be one word or a list of words (any of them counts); an empty one gives None. With
    `whole_word` the word must not be part of a longer word ("cat" is not found in "category"); matching
    ignores case unless `case_sensitive`."""
    targets = _column(column, kwargs.get(column), completions, "keyword_reward", kwargs)
    flags = 0 if case_sensitive else re.IGNORECASE
    rewards: list[Optional[float]] = []
    for completion, target in zip(completions, targets, strict=True):
        words = [target] if isinstance(target, str) else list(target or [])
        words = [w.strip() for w in words if isinstance(w, str) and w.strip()]
        if not words:
            rewards.append(None)
            continue
        text = completion_text(completion)
        found = any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)" if whole_word else re.escape(w), text, flags)
                    for w in words)
        rewards.append(1.0 if found else 0.0)
    return rewards


keyword_reward.dataset_columns = lambda params: (params.get("column", "target"),)


# ---------------------------------------------------------------------------------------------- loading

class NamedReward:
    """A reward callable with a `__name__` of our choosing, which TRL logs it under.

    TRL names a reward `getattr(func, "__name__", type(func).__name__)` after unwrapping any
    `functools.partial`; an instance of this class is not a partial, so its own `__name__` is used. It is
    picklable when the wrapped callable is (a module-level function, or a partial of one)."""

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.__name__ = self.__qualname__ = name
        self.__wrapped__ = func
        self.__doc__ = getattr(_unwrap(func), "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"NamedReward({self.__name__!r}, {self.__wrapped__!r})"


class AsyncNamedReward(NamedReward):
    """NamedReward for an `async` reward function: TRL sees the coroutine `__call__` and awaits it."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.__wrapped__(*args, **kwargs)


def _unwrap(func: Any) -> Any:
    while isinstance(func, functools.partial):
        func = func.func
    return func


def name_reward(name: str, func: Callable[..., Any]) -> NamedReward:
    """`func` (a function, a partial, a callable object) under `name`, async-aware."""
    inner = _unwrap(func)
    is_async = inspect.iscoroutinefunction(inner) or inspect.iscoroutinefunction(inner.__call__)
    return (AsyncNamedReward if is_async else NamedReward)(name, func)


def _config_error(key: str, problem: str) -> Exception:
    """gatetune.errors.ConfigError (imported here: the reward functions need nothing beyond the stdlib)."""
    from gatetune.errors import ConfigError

    return ConfigError(key, problem)


def _detached(node: Any) -> Any:
    """A writable DictConfig copy of a node (a dict, or a DictConfig that may be read-only or in struct mode)."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else dict(node)
    return OmegaConf.create(container)


def _check_parameters(name: str, target: str, obj: Any, keys: list[str]) -> None:
    """Every configured key must be a named parameter of the target. The rewards take `**kwargs` (TRL
    passes all dataset columns), which would otherwise swallow a misspelt parameter without a word."""
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # no signature to check against (some builtins)
        return
    named = [p for p, v in parameters.items() if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
    unknown = [k for k in keys if k not in named]
    if unknown:
        raise _config_error(f"grpo.rewards.{name}", f"{target} has no parameter {', '.join(map(repr, unknown))} "
                            f"(its parameters: {', '.join(p for p in named if p != 'completions')})")


def reward_config(name: str) -> Any:
    """The node of `gatetune/conf/reward/NAME.yaml`, or of NAME itself when it is a path to a YAML file."""
    from omegaconf import OmegaConf

    path = Path(name)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        path = REWARD_DIR / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in REWARD_DIR.glob("*.yaml"))
        raise _config_error("grpo.rewards", f"no reward {name!r}: not a file in {REWARD_DIR} (available: "
                          f"{', '.join(available)}) nor a path to a YAML file")
    return OmegaConf.load(path)


def instantiate_reward(name: str, node: Any) -> NamedReward:
    """One reward config (`_target_`, `_partial_`, parameters) as a callable named `name`.

    A `_target_` that is a plain function is instantiated as a partial even without `_partial_: true`
    (calling a reward function with no arguments at load time is never meant); a class is instantiated
    as written, and its instance must be callable."""
    from hydra.utils import get_object, instantiate

    node = _detached(node)
    node.pop("_name_", None)
    target = node.get("_target_")
    if not isinstance(target, str):
        raise _config_error(f"grpo.rewards.{name}", "the reward config has no `_target_` (a dotted path to a function)")
    try:
        obj = get_object(target)
    except Exception as exc:  # hydra raises ImportError, AttributeError or its own error types
        raise _config_error(f"grpo.rewards.{name}", f"cannot import _target_ {target!r}: {exc}") from None
    if not callable(obj):
        raise _config_error(f"grpo.rewards.{name}", f"_target_ {target!r} is a {type(obj).__name__}, not a callable")
    if inspect.isfunction(obj) and "_partial_" not in node:
        node["_partial_"] = True
    _check_parameters(name, target, obj, [k for k in node if not (k.startswith("_") and k.endswith("_"))])
    try:
        func = instantiate(node)
    except Exception as exc:
        raise _config_error(f"grpo.rewards.{name}", f"cannot instantiate {target!r}: {exc}") from None
    if not callable(func):
        raise _config_error(f"grpo.rewards.{name}", f"{target!r} gave a {type(func).__name__}, not a callable")
    return name_reward(name, func)


def load_rewards(entries: Iterable[Any] | Mapping[str, Any]) -> list[NamedReward]:
    """The reward callables for TRL's `reward_funcs`, in order, each with a distinct `__name__`.

    `entries` (usually `grpo.rewards`) is a list whose items are a name of a file in `gatetune/conf/reward/`
    (the name is the file's stem), a path to a reward YAML file (named by its stem), or a config node with
    `_target_` (named by its `_name_` key if it has one, else after its target's function); or a mapping
    from name to config node. Raises ConfigError (exit status 2) for an unknown name, a bad `_target_`, or two
    rewards with the same name (TRL would merge their metrics)."""
    from omegaconf import OmegaConf

    if isinstance(entries, Mapping) or OmegaConf.is_dict(entries):
        items = list(entries.items())
    else:
        items = []
        for entry in entries:
            if isinstance(entry, (str, Path)):
                is_file = str(entry).endswith((".yaml", ".yml"))
                items.append((Path(entry).stem if is_file else str(entry), reward_config(str(entry))))
            else:
                node = _detached(entry)
                name = node.get("_name_") or str(node.get("_target_", "reward")).rsplit(".", 1)[-1]
                items.append((name, node))
    rewards, seen = [], set()
    for name, node in items:
        if name in seen:
            raise _config_error("grpo.rewards", f"reward {name!r} is listed twice (weight it with grpo.reward_weights)")
        seen.add(name)
        rewards.append(instantiate_reward(str(name), node))
    return rewards
