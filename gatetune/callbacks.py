"""Trainer callbacks: measured run metrics and the early-stopping verdict."""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.trainer_callback import ExportableState


def peak_memory_mb() -> float:
    """Peak accelerator memory allocated by torch, or on CPU the process's peak resident set size."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


class RunMetricsCallback(TrainerCallback, ExportableState):
    """Wall time of the training loop, for tokens per second; saved in checkpoints, so that a resumed
    run adds its time to that of the runs before it."""

    def __init__(self, seconds_before: float = 0.0) -> None:
        self.seconds_before = seconds_before  # spent in earlier, interrupted runs
        self.train_started: float | None = None
        self.train_seconds = seconds_before

    def _elapsed(self) -> float:
        now = time.perf_counter()
        return self.seconds_before + (now - self.train_started if self.train_started is not None else 0.0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.train_started = time.perf_counter()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.train_seconds = self._elapsed()

    def state(self) -> dict[str, Any]:
        return {"args": {"seconds_before": self._elapsed()}, "attributes": {}}


def find_callback(trainer: Any, kind: type) -> Any:
    """The trainer's callback of this type: resuming replaces stateful callbacks with restored copies."""
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, kind))


def early_stopping_callback(patience: int, threshold: float) -> EarlyStoppingCallback:
    return EarlyStoppingCallback(early_stopping_patience=patience, early_stopping_threshold=threshold)


def stopped_early(callback: EarlyStoppingCallback) -> bool:
    return callback.early_stopping_patience_counter >= callback.early_stopping_patience
