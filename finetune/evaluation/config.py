"""`eval`: the generation-based evaluation after training, the regression gate and the deployment decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class EvalConfig:
    """What `conf/eval/*.yaml` sets; `eval=off` skips generation (the decision then says it did not run)."""

    enabled: bool = True
    path: Optional[str] = None  # a JSONL/CSV/... of the training data's format; default: the run's eval split
    max_examples: int = 200  # the first N examples of it
    # Verifier names (finetune/verifiers.py: exact_match, final_number, math, rouge_l, label, code);
    # null: the GRPO rewards' verifiers for prompt data, else rouge_l and exact_match against the answer
    metrics: Optional[list[str]] = None
    column: Optional[str] = None  # the reference column; default: each verifier's, else the format's answer
    # null: twice the longest answer of the eval examples (at least 32, at most 1024), or for prompt data
    # (GRPO) grpo.max_completion_length; the stop rate counts the generations that end before it
    max_new_tokens: Optional[int] = None
    batch_size: int = 8
    compare_base: bool = True  # also generate with the base model (the adapter disabled) and report the delta
    # A previous run directory (or its summary.json): a shared metric more than max_drop_points below it
    # fails the run (status failed_regression, exit 1)
    baseline: Optional[str] = None
    max_drop_points: float = 5.0  # points: 5 = 0.05 on a 0-1 metric
    min_stop_rate: float = 0.95  # share of generations that end with an end-of-turn token: needed to deploy


def eval_problems(config: EvalConfig) -> list[str]:
    """`eval.KEY: problem` for each bad value."""
    problems = []
    for key in ("max_examples", "max_new_tokens", "batch_size"):
        if getattr(config, key) is not None and getattr(config, key) < 1:
            problems.append(f"eval.{key}: must be at least 1, got {getattr(config, key)}")
    if config.max_drop_points < 0:
        problems.append(f"eval.max_drop_points: must not be negative, got {config.max_drop_points}")
    if not 0 <= config.min_stop_rate <= 1:
        problems.append(f"eval.min_stop_rate: must be in [0, 1], got {config.min_stop_rate}")
    if config.metrics is not None:
        from finetune.verifiers import VERIFIERS

        for name in config.metrics:
            if name not in VERIFIERS:
                problems.append(f"eval.metrics: no metric {name!r} (available: {', '.join(VERIFIERS)})")
    return problems
