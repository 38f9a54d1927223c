"""Point the experiment logger at the run directory. No key or token is ever written there."""

from __future__ import annotations

import os
from pathlib import Path

from gatetune.config import LoggerConfig, LoggerKind


def configure_logger(logger: LoggerConfig, run_dir: Path) -> None:
    kind = logger.kind
    if kind is LoggerKind.wandb:
        # Offline unless asked otherwise: runs land in run_dir/wandb and `wandb sync` uploads them later.
        os.environ["WANDB_MODE"] = logger.mode
        os.environ["WANDB_DIR"] = str(run_dir)
        os.environ["WANDB_PROJECT"] = logger.project
        os.environ.setdefault("WANDB_SILENT", "true")
    elif kind is LoggerKind.tensorboard:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
