"""A real signal to this process at a chosen optimizer step: preemption on cue, for the resume tests."""

from __future__ import annotations

import os

import pytest


class SignalAtStep:
    """Sends this process a real signal at the end of one optimizer step (what SLURM does, but on cue)."""

    def __init__(self, step: int, signum: int) -> None:
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
                if state.global_step == outer.step:
                    os.kill(os.getpid(), outer.signum)

        self.step, self.signum, self.callback = step, signum, Callback()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import gatetune.trainer

        build = gatetune.trainer.build_trainer

        def build_with_signal(*args, **kwargs):  # noqa: ANN002, ANN003
            trainer = build(*args, **kwargs)
            trainer.add_callback(self.callback)
            return trainer

        monkeypatch.setattr(gatetune.trainer, "build_trainer", build_with_signal)
