"""How `training.effective_batch_size` splits into per-device batches and gradient accumulation."""

from __future__ import annotations

import math
import os
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


def steps_between_generations(steps_per_generation: int | None, num_iterations: int, accumulation: int) -> int:
    """Optimizer steps from the start of one GRPO generation batch to the next start that also ends an optimizer
    step. TRL generates every `steps_per_generation * num_iterations` micro-batches (steps_per_generation defaults
    to the accumulation); an optimizer step takes `accumulation` of them. Completions in between are buffered,
    and a checkpoint does not keep them."""
    micro = (steps_per_generation or accumulation) * num_iterations
    return math.lcm(micro, accumulation) // accumulation


def launched_world_size() -> int:
    """The number of processes the launcher started (torchrun, accelerate launch and SLURM's job set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
