"""Resume equality beyond SFT: a DPO run and a GRPO run interrupted by a real signal and resumed end with the
uninterrupted run's adapter and metrics (fixed seed, CPU). GRPO's completions are generated once per generation
batch and reused for TRL's `steps_per_generation` steps: a preemption waits for the end of a generation batch, so
a resumed run never needs completions it did not keep."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import compose
from tests.preempting import SignalAtStep
from tests.slurm_jobs import adapter_weights, max_difference

QUICK = ["logger=none", "eval=off", "checks.run=[template]", "checks.fail_on=[template]"]
DPO = ["recipe=dpo", *QUICK, "training.max_steps=16", "training.eval_every_steps=4", "training.learning_rate=2e-4",
       "training.logging_steps=1"]
GRPO = ["recipe=grpo", *QUICK, "training.max_steps=8", "training.eval_every_steps=4", "training.learning_rate=1e-3",
        "grpo.max_completion_length=16", "training.logging_steps=1"]


def _run(run_dir: Path, overrides: list[str]) -> dict:
    from gatetune.run import run

    return run(compose(overrides), run_dir).summary


def _preempted_and_resumed(run_dir: Path, overrides: list[str], step: int,
                           monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    with monkeypatch.context() as patch:
        SignalAtStep(step, signal.SIGUSR1).install(patch)
        preempted = _run(run_dir, overrides)
    assert preempted["status"] == "preempted"
    return preempted, _run(run_dir, overrides)


def _assert_same_train_logs(run_dir: Path, baseline: Path) -> None:
    """Every step's logged training metrics (logging_steps=1: a window of one step, which an interruption cannot
    split), from the final checkpoint's trainer state: the resumed run's holds the steps before the interruption
    too. Left out: timings, and TRL's token counters, which count from the start of each process."""
    def logs(directory: Path) -> list[dict]:
        last = max((directory / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        history = json.loads((last / "trainer_state.json").read_text())["log_history"]
        left_out = ("runtime", "per_second", "_time", "num_tokens")
        return [{k: v for k, v in e.items() if not any(t in k for t in left_out)} for e in history]

    got, want = logs(run_dir), logs(baseline)
    assert [e["step"] for e in got] == [e["step"] for e in want] and len(got) > 8
    for entry, expected in zip(got, want, strict=True):
        assert entry == pytest.approx(expected, abs=1e-6), entry["step"]


@pytest.fixture(scope="module")
def dpo_baseline(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("dpo-uninterrupted")
    assert _run(run_dir, DPO)["status"] == "completed"
    return run_dir


@pytest.mark.slow
def test_dpo_resumed_ends_with_the_uninterrupted_adapter_and_metrics(tmp_path: Path, dpo_baseline: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    preempted, resumed = _preempted_and_resumed(tmp_path, DPO, 6, monkeypatch)
    assert preempted["preempted_at_step"] == 7 and resumed["resumed_from"].endswith("checkpoint-7")
    want = json.loads((dpo_baseline / "summary.json").read_text())
    for key in ("eval_history", "rewards_margins_history", "rewards_accuracies_history"):
        assert resumed["metrics"][key] == pytest.approx(want["metrics"][key], abs=1e-6), key
    assert resumed["metrics"]["steps"] == want["metrics"]["steps"] == 16
    assert max_difference(adapter_weights(tmp_path), adapter_weights(dpo_baseline)) < 1e-6
    _assert_same_train_logs(tmp_path, dpo_baseline)


@pytest.mark.slow
@pytest.mark.parametrize(("extra", "signal_at", "stopped_at"), [
    ([], 2, 3),  # TRL's default: one generation batch per optimizer step, every step boundary is one
    # completions for 4 micro-batches, 2 optimizer steps of 2 accumulation each: batches end at steps 2, 4, ...
    (["+trl.steps_per_generation=4"], 2, 4),
], ids=["one-step-generations", "two-step-generations"])
def test_grpo_resumed_ends_with_the_uninterrupted_adapter_and_metrics(tmp_path: Path, tiny_model_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      extra: list[str], signal_at: int,
                                                                      stopped_at: int):
    baseline = tmp_path / "uninterrupted"
    assert _run(baseline, [*GRPO, *extra])["status"] == "completed"
    interrupted = tmp_path / "interrupted"
    preempted, resumed = _preempted_and_resumed(interrupted, [*GRPO, *extra], signal_at, monkeypatch)
    assert preempted["preempted_at_step"] == stopped_at
    assert resumed["resumed_from"].endswith(f"checkpoint-{stopped_at}")
    want = json.loads((baseline / "summary.json").read_text())
    assert resumed["metrics"]["eval_history"] == pytest.approx(want["metrics"]["eval_history"], abs=1e-6)
    assert max_difference(adapter_weights(interrupted), adapter_weights(baseline)) < 1e-6
    _assert_same_train_logs(interrupted, baseline)  # each step's reward, KL, completion lengths, ...


@pytest.mark.parametrize(("per_generation", "iterations", "accumulation", "steps"), [
    (None, 1, 2, 1),  # TRL's default: one generation batch per optimizer step
    (4, 1, 2, 2),
    (3, 1, 2, 3),  # generation batches of 3 micro-batches end with an optimizer step every 6
    (2, 2, 1, 4),  # each batch trained on twice (num_iterations)
])
def test_where_a_grpo_run_may_stop(per_generation: int | None, iterations: int, accumulation: int, steps: int):
    from gatetune.batching import steps_between_generations

    assert steps_between_generations(per_generation, iterations, accumulation) == steps
