"""Trainer callbacks: measured run metrics and the early-stopping verdict."""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback


def peak_memory_mb() -> float:
    """Peak accelerator memory allocated by torch, or on CPU the process's peak resident set size."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


class RunMetricsCallback(TrainerCallback):
    """Wall time of the training loop, for tokens per second."""

    def __init__(self) -> None:
        self.train_started: float | None = None
        self.train_seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.train_started = time.perf_counter()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.train_started is not None:
            self.train_seconds = time.perf_counter() - self.train_started


def early_stopping_callback(patience: int, threshold: float) -> EarlyStoppingCallback:
    return EarlyStoppingCallback(early_stopping_patience=patience, early_stopping_threshold=threshold)


def stopped_early(callback: EarlyStoppingCallback) -> bool:
    return callback.early_stopping_patience_counter >= callback.early_stopping_patience
