"""Config keys reach TRL: each `training.*` key sets the TRL field it names, and `trl:` passes any other field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gatetune.config import typed_config
from gatetune.errors import ConfigError
from gatetune.objectives import objective_spec
from gatetune.trainer import trl_arguments, trl_classes
from tests.conftest import compose

# training.KEY=VALUE -> (TRL config field, the value it must hold). The values differ from the defaults.
TRAINING_TO_TRL = {
    "learning_rate=3e-4": ("learning_rate", 3e-4),
    "epochs=2": ("num_train_epochs", 2.0),
    "max_steps=7": ("max_steps", 7),
    "effective_batch_size=8": ("gradient_accumulation_steps", 1),  # 8 per device x 1 step, one process
    "max_per_device_batch_size=2": ("per_device_train_batch_size", 2),
    "eval_every_steps=11": ("eval_steps", 11),
    "warmup_ratio=0.2": ("warmup_steps", 0.2),
    "lr_scheduler=linear": ("lr_scheduler_type", "linear"),
    "weight_decay=0.1": ("weight_decay", 0.1),
    "max_grad_norm=0.5": ("max_grad_norm", 0.5),
    "logging_steps=3": ("logging_steps", 3),
    "gradient_checkpointing=true": ("gradient_checkpointing", True),
    "save_total_limit=4": ("save_total_limit", 4),
    "precision=fp32": ("bf16", False),
    "packing=none": ("padding_free", False),
    "group_by_length=true": ("train_sampling_strategy", "group_by_length"),
    "tokens_per_batch=4096": ("per_device_train_batch_size", 1),  # bin_pack: one bin per micro-batch
    "liger=true": ("use_liger_kernel", True),
}


def _trl_config(overrides: list[str], tmp_path: Path) -> Any:
    config = typed_config(compose(overrides))
    config_cls, _ = trl_classes(objective_spec(config.recipe.objective))
    return config_cls(**trl_arguments(config, tmp_path, [50] * 100))


@pytest.mark.parametrize("override", TRAINING_TO_TRL)
def test_each_training_key_sets_its_trl_field(override: str, tmp_path: Path):
    field, value = TRAINING_TO_TRL[override]
    default = getattr(_trl_config([], tmp_path), field)
    changed = getattr(_trl_config([f"training.{override}"], tmp_path), field)
    assert changed == value and (default != value or field == "bf16")


def test_activation_checkpointing_is_off_unless_asked(tmp_path: Path):
    """TRL turns it on by default; the project's default (training.gradient_checkpointing=false) must win."""
    import dataclasses

    import trl

    assert {f.name: f.default for f in dataclasses.fields(trl.SFTConfig)}["gradient_checkpointing"] is True
    assert _trl_config([], tmp_path).gradient_checkpointing is False


def test_every_training_key_is_in_the_table():
    from gatetune.config import TrainingConfig

    keys = {o.split("=")[0] for o in TRAINING_TO_TRL}
    # Early stopping is a callback (gatetune/callbacks.py), not a TRL field.
    assert set(TrainingConfig.__dataclass_fields__) - keys == {"early_stopping_patience", "early_stopping_threshold"}


@pytest.mark.parametrize("recipe,key,value", [("lora", "neftune_noise_alpha", 5.0), ("lora", "optim", "adafactor"),
                                              ("dpo", "ld_alpha", 0.5), ("dpo", "label_smoothing", 0.1),
                                              ("grpo", "epsilon", 0.3), ("grpo", "loss_type", "dr_grpo")])
def test_trl_node_passes_any_field_of_the_objectives_config(recipe: str, key: str, value: Any, tmp_path: Path):
    config = _trl_config([f"recipe={recipe}", f"+trl.{key}={value}"], tmp_path)
    assert getattr(config, key) == value


def test_a_misspelt_trl_key_names_itself_and_the_closest_field():
    with pytest.raises(ConfigError, match=r"trl\.optimm: not a field of TRL's SFTConfig \(did you mean optim"):
        typed_config(compose(["+trl.optimm=adamw_torch"]))
    with pytest.raises(ConfigError, match="trl.beta: not a field of TRL's SFTConfig"):
        typed_config(compose(["+trl.beta=0.2"]))  # DPO's key under an SFT recipe


def test_every_objective_spec_resolves_and_names_real_trl_classes():
    """The registry's hooks import, its TRL pair exists, and every recipe's objective has a spec."""
    import dataclasses

    from gatetune.objectives import OBJECTIVES, Objective

    assert set(OBJECTIVES) == set(Objective)
    for spec in OBJECTIVES.values():
        config_cls, trainer_cls = spec.trl_classes()
        assert dataclasses.is_dataclass(config_cls) and trainer_cls.__name__ == spec.trl_trainer
        assert callable(spec.hook("rows")) and (spec.prepare is None or callable(spec.hook("prepare")))
        fields = {f.name for f in dataclasses.fields(config_cls)}
        recipe = "lora" if spec.objective is Objective.sft else spec.objective.value
        config = typed_config(compose([f"recipe={recipe}"]))
        assert set(spec.args(config)) <= fields  # every key an objective sets is a field of its TRL config
