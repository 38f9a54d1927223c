"""gatetune: data-gated LLM fine-tuning (LoRA, QLoRA, full; SFT, DPO, GRPO) with TRL and Hydra recipes.

The Python API, for notebooks and other programs. It composes the same Hydra config as the command
line (the bundled presets plus any `config_dir`) and runs the same code:

    import gatetune

    result = gatetune.train(["recipe=lora", "model=tiny", "training.max_steps=20"])
    result.summary["status"], result.summary["export"]["path"]

    report = gatetune.check("chats.jsonl", overrides={"pii": {"fail_on_confidence": "low"}})
    report["passed"], report["checks"]["dedup"]["rate"]

Importing this package is light: torch, transformers and Hydra load on the first call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from gatetune.config import TrainConfig
    from gatetune.run import RunResult

__all__ = ["check", "compose", "train", "typed_config"]


def compose(overrides: Sequence[str] = (), config_dir: Optional[os.PathLike[str] | str] = None) -> DictConfig:
    """The config `gatetune train OVERRIDES` (with `--config-dir CONFIG_DIR`) would run with, as a DictConfig
    holding its `hydra` node too (the run directory is `hydra.run.dir`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gatetune.cli import CONFIG_DIR
    from gatetune.config import register_schema

    register_schema()
    extra = [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"] if config_dir is not None else []
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name="train", overrides=[*overrides, *extra], return_hydra_config=True)


def typed_config(overrides: Sequence[str] = (), config_dir: Optional[os.PathLike[str] | str] = None) -> TrainConfig:
    """The typed, checked config (`gatetune.config.TrainConfig`) that `gatetune train OVERRIDES` runs with:
    the pieces of a run (`gatetune.trainer.build_trainer`, ...) take it."""
    from omegaconf import open_dict

    from gatetune.config import typed_config as to_typed

    cfg = compose(overrides, config_dir)
    with open_dict(cfg):
        del cfg["hydra"]
    return to_typed(cfg)


def train(overrides: Sequence[str] = (), run_dir: Optional[os.PathLike[str] | str] = None,
          config_dir: Optional[os.PathLike[str] | str] = None) -> RunResult:
    """Run `gatetune train OVERRIDES`: gates, training, export and evaluation; the `RunResult` (its
    `.summary` is the run's summary.json; `.model` and `.tokenizer` are the trained model in memory).

    `run_dir` defaults to the config's `hydra.run.dir` (runs/RECIPE/TIMESTAMP). Errors in the config or
    data raise (ConfigError, DataError, ...) instead of exiting.
    """
    import logging

    from omegaconf import OmegaConf, open_dict

    from gatetune.run import run

    cfg = compose(overrides, config_dir)
    target = Path(run_dir) if run_dir is not None else Path(str(cfg.hydra.run.dir))
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.set_readonly(cfg, False)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    target.mkdir(parents=True, exist_ok=True)
    return run(cfg, target)


def check(path: os.PathLike[str] | str, fmt: str = "auto", config: Optional[os.PathLike[str] | str] = None,
          overrides: Optional[Mapping[str, Mapping[str, Any]]] = None, against: Optional[str] = None,
          skip_invalid: bool = False) -> dict[str, Any]:
    """The data gates' report on a dataset file, as `gatetune check PATH` writes it (`report["passed"]`,
    `report["checks"][gate]`). `config` is a checks YAML (conf/checks/default.yaml's shape); `overrides`
    sets keys per gate, e.g. `{"dedup": {"threshold": 0.9}, "pii": {"fail_on_confidence": "low"}}`."""
    from data_checks.api import check as check_data

    return check_data(path, fmt=fmt, config=config, overrides=overrides, against=against, skip_invalid=skip_invalid)
