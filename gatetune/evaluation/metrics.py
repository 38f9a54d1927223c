"""Scores of generations: each metric's per-example scores and aggregates, stop rate and output lengths,
and the base-to-tuned delta."""

from __future__ import annotations

import math
from typing import Any, Optional

from gatetune.evaluation.examples import EvalExample
from gatetune.evaluation.generate import Generation
from gatetune.verifiers import VERIFIERS, Verifier

DEFAULT_TEXT_METRICS = ("rouge_l", "exact_match")


def reward_metrics(rewards: list[str]) -> list[str]:
    """The verifiers behind GRPO rewards (gatetune/conf/reward/ files): the metric each one's score is."""
    from omegaconf import OmegaConf

    from gatetune.rewards import reward_config

    names = []
    for reward in rewards:
        node = OmegaConf.to_container(reward_config(reward))
        target = str(node.get("_target_", ""))
        if target.endswith(".gsm8k_final_number"):
            names.append("final_number")
        elif target.endswith(".verified"):
            names.append(node.get("verifier", "exact_match"))
    return list(dict.fromkeys(names))


def metric_names(requested: Optional[list[str]], fmt: str, rewards: list[str]) -> list[str]:
    if requested is not None:
        return list(requested)
    if fmt == "prompt":
        return reward_metrics(rewards)
    return list(DEFAULT_TEXT_METRICS)


def reference_of(spec: Verifier, example: EvalExample, column: Optional[str]) -> Any:
    """The record's own column(s) when it has them (answer, label, test...), else the answer its format gives."""
    if len(spec.columns) > 1:
        return spec.reference(example.record)
    name = column or spec.columns[0]
    return example.record[name] if name in example.record else example.answer


def _mean(values: list[Optional[float]]) -> Optional[float]:
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def score_examples(names: list[str], examples: list[EvalExample], generations: list[list[Generation]],
                   column: Optional[str]) -> tuple[dict[str, list[Optional[float]]], dict[str, Optional[float]]]:
    """Per metric: each example's score (None: its reference cannot be scored; with several samples, their
    mean: the pass@1 estimate), and the aggregates, keyed `NAME` (a mean) or `NAME_AGGREGATE` (e.g.
    `label_accuracy`, `label_macro_f1`), plus for a 0/1 metric `NAME_pass@K` with K samples (an example
    passes when any of its samples scores 1)."""
    per_example: dict[str, list[Optional[float]]] = {}
    aggregates: dict[str, Optional[float]] = {}
    k = max((len(g) for g in generations), default=1)
    texts = [g[0].text for g in generations]  # what a label's macro-F1 reads: the first sample
    for name in names:
        spec = VERIFIERS[name]
        references = [reference_of(spec, e, column) for e in examples]
        each = [[spec.score(s.text, ref) for s in samples]
                for samples, ref in zip(generations, references, strict=True)]
        scores = [_mean(values) for values in each]
        per_example[name] = scores
        for suffix, aggregate in spec.aggregates:
            aggregates[f"{name}_{suffix}" if suffix else name] = aggregate(scores, texts, references)
        if k > 1 and spec.binary:
            passed = [None if all(v is None for v in values) else float(any(v == 1.0 for v in values))
                      for values in each]
            aggregates[f"{name}_pass@{k}"] = _mean(passed)
    return per_example, aggregates


def output_stats(per_example: list[list[Generation]]) -> dict[str, Any]:
    """Stop rate and output lengths over every generation (every sample of every example)."""
    generations = [g for samples in per_example for g in samples]
    lengths = sorted(g.tokens for g in generations)
    if not lengths:
        return {"stop_rate": None, "mean_output_tokens": None, "p95_output_tokens": None}
    p95 = lengths[min(len(lengths) - 1, math.ceil(0.95 * len(lengths)) - 1)]
    return {"stop_rate": sum(g.stopped for g in generations) / len(generations),
            "mean_output_tokens": sum(lengths) / len(lengths), "p95_output_tokens": p95}


def delta(tuned: dict[str, Optional[float]], base: dict[str, Optional[float]]) -> dict[str, Optional[float]]:
    return {k: (tuned[k] - base[k]) if tuned.get(k) is not None and base.get(k) is not None else None for k in tuned}
