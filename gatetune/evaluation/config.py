"""`eval`: the generation-based evaluation after training, the regression gate and the deployment decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class JudgeConfig:
    """An LLM judge on an OpenAI-compatible endpoint (gatetune/evaluation/judge.py); off while base_url is null."""

    base_url: Optional[str] = None  # e.g. http://127.0.0.1:8000/v1
    model: Optional[str] = None  # the model name the endpoint serves
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable only, never written anywhere
    rubric: str = "default"  # a file in gatetune/conf/rubrics/ (without .md) or a path
    golden: Optional[str] = None  # human-labelled JSONL: {prompt, response, score 1-5} or {prompt, chosen, rejected}
    min_agreement: float = 0.85  # below it the judge is untrusted: reported, never gating
    agreement_within: int = 0  # a pointwise score agrees when within this many points of the person's
    pairwise: bool = True  # also tuned vs base, in both orders
    max_examples: int = 50
    timeout_s: float = 60.0
    max_retries: int = 3
    requests_per_second: float = 2.0
    max_tokens: int = 64


@dataclass
class EvalConfig:
    """What `gatetune/conf/eval/*.yaml` sets; `eval=off` skips generation (the decision then says it did not run)."""

    enabled: bool = True
    path: Optional[str] = None  # a JSONL/CSV/... of the training data's format; default: the run's eval split
    max_examples: int = 200  # the first N examples of it
    # Verifier names (gatetune/verifiers.py: exact_match, final_number, math, rouge_l, label, code);
    # null: the GRPO rewards' verifiers for prompt data, else rouge_l and exact_match against the answer
    metrics: Optional[list[str]] = None
    column: Optional[str] = None  # the reference column; default: each verifier's, else the format's answer
    # null: twice the longest answer of the eval examples (at least 32, at most 1024), or for prompt data
    # (GRPO) grpo.max_completion_length; the stop rate counts the generations that end before it
    max_new_tokens: Optional[int] = None
    batch_size: int = 8
    samples: int = 1  # 1: greedy; k > 1: k sampled completions per prompt, scored as pass@1 (their mean) and pass@k
    temperature: float = 0.8  # for samples > 1
    backend: str = "auto"  # transformers, vllm (offline vllm.LLM), or auto: vllm when importable and on a GPU
    vllm_python: Optional[str] = None  # an interpreter with vLLM, when it is not importable here
    vllm_options: dict[str, Any] = field(default_factory=dict)  # more vllm.LLM arguments (gpu_memory_utilization)
    compare_base: bool = True  # also generate with the base model (the adapter disabled) and report the delta
    # A previous run directory (or its summary.json): a shared metric more than max_drop_points below it
    # fails the run (status failed_regression, exit 1)
    baseline: Optional[str] = None
    max_drop_points: float = 5.0  # points: 5 = 0.05 on a 0-1 metric
    min_stop_rate: float = 0.95  # share of generations that end with an end-of-turn token: needed to deploy
    judge: JudgeConfig = field(default_factory=JudgeConfig)


def eval_problems(config: EvalConfig) -> list[str]:
    """`eval.KEY: problem` for each bad value."""
    problems = []
    for key in ("max_examples", "max_new_tokens", "batch_size", "samples"):
        if getattr(config, key) is not None and getattr(config, key) < 1:
            problems.append(f"eval.{key}: must be at least 1, got {getattr(config, key)}")
    if config.samples > 1 and config.temperature <= 0:
        problems.append(f"eval.temperature: must be positive to sample {config.samples} completions, got "
                        f"{config.temperature}")
    if config.backend not in ("auto", "transformers", "vllm"):
        problems.append(f"eval.backend: must be auto, transformers or vllm, got {config.backend!r}")
    if config.max_drop_points < 0:
        problems.append(f"eval.max_drop_points: must not be negative, got {config.max_drop_points}")
    if not 0 <= config.min_stop_rate <= 1:
        problems.append(f"eval.min_stop_rate: must be in [0, 1], got {config.min_stop_rate}")
    judge = config.judge
    if judge.base_url and not judge.model:
        problems.append("eval.judge.model: the model the judge endpoint serves is needed with eval.judge.base_url")
    if not 0 <= judge.min_agreement <= 1:
        problems.append(f"eval.judge.min_agreement: must be in [0, 1], got {judge.min_agreement}")
    if judge.requests_per_second <= 0 or judge.timeout_s <= 0 or judge.max_retries < 0:
        problems.append("eval.judge: requests_per_second and timeout_s must be positive, max_retries >= 0")
    if config.metrics is not None:
        from gatetune.verifiers import VERIFIERS

        for name in config.metrics:
            if name not in VERIFIERS:
                problems.append(f"eval.metrics: no metric {name!r} (available: {', '.join(VERIFIERS)})")
    return problems
