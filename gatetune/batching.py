"""How `training.effective_batch_size` splits into per-device batches and gradient accumulation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatetune.errors import ConfigError

if TYPE_CHECKING:
    from gatetune.config import TrainingConfig


def batch_layout(training: TrainingConfig, world_size: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation) that reach `training.effective_batch_size` exactly."""
    effective = training.effective_batch_size
    if effective % world_size:
        raise ConfigError("training.effective_batch_size",
                          f"{effective} is not divisible by the number of processes ({world_size})")
    per_process = effective // world_size
    per_device = max(d for d in range(1, min(per_process, training.max_per_device_batch_size) + 1)
                     if per_process % d == 0)
    return per_device, per_process // per_device
