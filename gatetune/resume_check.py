"""A resumed run continues the training its checkpoint belongs to, or says what changed.

Every checkpoint records the settings that decide its training (`TRAINING_RECORD` in the checkpoint directory,
written by `checkpoints.AtomicCheckpointMixin`): the whole config except the parts that do not touch the
weights (logging, gates, post-training evaluation, export, SLURM, resume itself, the tokenisation cache), the
data files by SHA-256 instead of by path (a moved file is the same data; an edited one is not) and the number
of processes (the batch layout). Resuming under other values (a learning rate, a batch size, a data file, the
model, the LoRA rank, the seed, ...) is refused with each difference named, before the model loads, unless
`resume.allow_changes=true`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from gatetune.errors import ConfigError

log = logging.getLogger(__name__)


class Verify(str, Enum):
    """How a checkpoint is checked before a run resumes from it."""

    checksums = "checksums"  # every file's size and CRC32: reads the checkpoint once per process
    sizes = "sizes"  # sizes only: catches a save that did not finish, not a file overwritten in place


@dataclass
class ResumeConfig:
    """The `resume` node of the config: where a run continues from (`resume=auto|never`, or
    `resume.checkpoint=PATH`) and whether it may continue under settings that alter training."""

    checkpoint: str = "auto"  # auto: the run directory's latest complete checkpoint; never; or a checkpoint path
    allow_changes: bool = False  # resume although the learning rate, batch layout, data, model, ... changed
    verify: Verify = Verify.checksums


TRAINING_RECORD = "gatetune_training.json"
# Config nodes and keys that do not change what a step computes.
UNRELATED = {"logger", "checks", "eval", "export", "slurm", "resume"}
UNRELATED_KEYS = {"data.cache_tokenized", "data.tokenize_processes", "data.path", "data.eval_path"}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def training_record(config: Any) -> dict[str, Any]:
    """The settings of `config` (a TrainConfig) that decide training, as flat dotted keys."""
    from omegaconf import OmegaConf

    from gatetune.model_card import sha256_of

    tree = OmegaConf.to_container(OmegaConf.structured(config), resolve=True, enum_to_str=True)
    flat = {key: value for key, value in _flatten({k: v for k, v in tree.items() if k not in UNRELATED}).items()
            if key not in UNRELATED_KEYS}
    flat["data.sha256"] = sha256_of(config.data.path) or config.data.path
    if config.data.eval_path is not None:
        flat["data.eval_sha256"] = sha256_of(config.data.eval_path) or config.data.eval_path
    flat["processes"] = int(os.environ.get("WORLD_SIZE", "1"))
    return json.loads(json.dumps(flat, default=str))  # as it reads back from the file


def write_record(directory: Path, record: dict[str, Any] | None) -> None:
    if record is not None:
        (directory / TRAINING_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 70 else text[:67] + "..."


def check_resume(checkpoint: Path, record: dict[str, Any], allow_changes: bool) -> list[str]:
    """The differences between how `checkpoint` was trained and `record`; a ConfigError naming them unless
    `allow_changes` (then they are logged and returned)."""
    path = checkpoint / TRAINING_RECORD
    if not path.is_file():
        log.warning("%s has no %s (written by an earlier version): its settings are not compared with this run's",
                    checkpoint, TRAINING_RECORD)
        return []
    before = json.loads(path.read_text())
    changed = [f"{key}: {_shown(before.get(key))} -> {_shown(record.get(key))}"
               for key in sorted(set(before) | set(record)) if before.get(key) != record.get(key)]
    if not changed:
        return []
    if allow_changes:
        log.warning("resuming from %s with changed settings (resume.allow_changes=true): %s", checkpoint,
                    "; ".join(changed))
        return changed
    raise ConfigError("resume", f"{checkpoint} was trained with other settings than this run's, and resuming would "
                      "continue that training under these: " + "; ".join(changed) + ". Set them back, start "
                      "over (resume=never, or a new hydra.run.dir), or resume anyway with resume.allow_changes=true")
