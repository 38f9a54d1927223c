"""What GRPO's rewards need from the data, checked before any model loads (the objective's `prepare` hook).

- every column a reward reads is in every record (`dataset_columns` on the reward function);
- each reward that declares `scores_record` can score at least one training record, and the share of
  records no reward can score is at most `grpo.max_unscored_fraction`. TRL would otherwise train on
  rows whose every reward is None, printing "Please ensure that at least one reward function returns a
  valid reward" at every step, and still report success. The shares go into the summary.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, Optional

from gatetune.rewards import _unwrap, load_rewards

log = logging.getLogger(__name__)


def reward_parameters(reward: Callable[..., Any]) -> tuple[Any, dict[str, Any]]:
    """The reward's underlying function and its parameters: the function's defaults, then the partial's."""
    func = getattr(reward, "__wrapped__", reward)
    params: dict[str, Any] = {}
    inner = _unwrap(func)
    try:
        params.update({k: p.default for k, p in inspect.signature(inner).parameters.items()
                       if p.default is not inspect.Parameter.empty})
    except (TypeError, ValueError):
        pass
    while isinstance(func, functools.partial):
        params.update(func.keywords)
        func = func.func
    return inner, params


def reward_columns(reward: Callable[..., Any]) -> tuple[str, ...]:
    """The dataset columns a reward reads, as its function declares them in `dataset_columns` (a tuple of
    names, or a function of the reward's parameters); () when it declares none."""
    inner, params = reward_parameters(reward)
    declared = getattr(inner, "dataset_columns", ())
    return tuple(declared(params) if callable(declared) else declared)


def record_scorer(reward: Callable[..., Any]) -> Optional[Callable[[dict[str, Any]], bool]]:
    """Whether the reward can score a record (its reference is usable), as its function declares it in
    `scores_record` (a function of the reward's parameters returning a function of the record); None when it
    declares nothing (it scores every record: a format or length reward)."""
    inner, params = reward_parameters(reward)
    declared = getattr(inner, "scores_record", None)
    return declared(params) if declared is not None else None


def check_reward_columns(rewards: Iterable[Callable[..., Any]], datasets: Iterable[Any]) -> None:
    """Every column a reward reads is in every record of `datasets` (LoadedData): else a DataError naming the
    file, the first record's line that lacks it, and the reward (before any model is loaded)."""
    from data_checks import DataError

    for data in datasets:
        for reward in rewards:
            for column in reward_columns(reward):
                for record, line in zip(data.records, data.lines, strict=True):
                    if column not in record:
                        present = ", ".join(sorted(record)) or "none"
                        raise DataError(data.path, line, f"reward {reward.__name__!r} (grpo.rewards) reads the "
                                        f"column {column!r}, which this record lacks (its columns: {present})")


def check_reward_scoring(rewards: list[Callable[..., Any]], train: Any, evaluation: Any,
                         max_unscored_fraction: float) -> dict[str, Any]:
    """The share of records each reward cannot score, and of records no reward can score, over both splits;
    a DataError when a reward scores no training record or too many records go unscored."""
    from data_checks import DataError

    scorers = {reward.__name__: record_scorer(reward) for reward in rewards}
    checked = {name: scorer for name, scorer in scorers.items() if scorer is not None}
    records = [(data, record, line) for data in (train, evaluation)
               for record, line in zip(data.records, data.lines, strict=True)]
    unscored = {name: 0 for name in checked}
    scored_in_train = {name: 0 for name in checked}
    nobody, first_nobody = 0, None
    for data, record, line in records:
        scored_by = [name for name, scorer in checked.items() if scorer(record)]
        for name in checked:
            if name not in scored_by:
                unscored[name] += 1
            elif data is train:
                scored_in_train[name] += 1
        if checked and len(checked) == len(scorers) and not scored_by:
            nobody += 1
            first_nobody = first_nobody or (data.path, line)
    by_name = {reward.__name__: reward for reward in rewards}
    for name in checked:
        if not scored_in_train[name]:
            columns = reward_columns(by_name[name]) or ("the reference",)
            first = str(train.records[0].get(columns[0], ""))[:60] if train.records else ""
            raise DataError(train.path, train.lines[0], f"reward {name!r} (grpo.rewards) can score none of the "
                            f"{len(train)} training records: it cannot read their {', '.join(columns)} (the first: "
                            f"{first!r}); pick the reward that fits the data (gatetune/conf/reward/README.md)")
    share = nobody / len(records) if records else 0.0
    if share > max_unscored_fraction:
        path, line = first_nobody
        raise DataError(path, line, f"no reward in grpo.rewards can score {nobody} of {len(records)} records "
                        f"({share:.1%}, more than grpo.max_unscored_fraction={max_unscored_fraction}); this is the "
                        "first: fix its reference or the rewards")
    report = {"unscored_by_reward": {name: count / len(records) for name, count in unscored.items()},
              "unscored_by_all": share, "records": len(records)}
    for name, count in unscored.items():
        if count:
            log.warning("reward %s cannot score %d of %d records (%.1f%%): TRL leaves it out for them", name, count,
                        len(records), 100 * count / len(records))
    return report


def prepare_rewards(config: Any, splits: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """GRPO's `prepare` hook (gatetune/objectives.py): the reward functions of `grpo.rewards` (`config` is the
    typed TrainConfig), checked against both splits before any model loads, as the trainer's `reward_funcs`;
    and what the summary keeps of the check (`rewards`)."""
    rewards = load_rewards(list(config.grpo.rewards))
    check_reward_columns(rewards, [splits.train, splits.eval])
    report = check_reward_scoring(rewards, splits.train, splits.eval, config.grpo.max_unscored_fraction)
    return {"reward_funcs": rewards}, {"rewards": report}
