"""Every config file composes and validates; the seed defaults and cross-field rules hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gatetune.batching import batch_layout
from gatetune.config import TrainConfig, resolved_alpha, resolved_rank, typed_config
from gatetune.errors import ConfigError
from tests.conftest import ROOT, compose

# gatetune/conf/reward/ is not a group of the training config: rewards are named in grpo.rewards
# (tests/gatetune/test_rewards.py).
GROUP_OPTIONS = sorted((p.parent.name, p.stem) for p in (ROOT / "gatetune" / "conf").glob("*/*.yaml")
                       if p.parent.name != "reward")


def test_every_group_has_options():
    groups = {g for g, _ in GROUP_OPTIONS}
    assert {"recipe", "model", "data", "checks", "logger"} <= groups


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_config_composes_and_validates(group: str, option: str):
    overrides = [f"{group}={option}"]
    if group == "data":  # data of a fixed format composes with a recipe that trains on it
        recipe = {"preference": "dpo", "prompt": "grpo"}.get(compose(overrides).data.format.value)
        overrides += [f"recipe={recipe}"] if recipe else []
    cfg = compose(overrides)
    as_object = OmegaConf.to_object(cfg)  # resolves every interpolation and checks every type
    assert isinstance(as_object, TrainConfig)
    typed_config(cfg)
    if group not in ("checks", "eval", "logger", "slurm", "resume"):
        assert cfg[group].name, f"{group}={option} sets no name"


def test_default_is_lora_tiny_sample():
    cfg = compose()
    assert (cfg.recipe.name, cfg.model.name, cfg.data.name) == ("lora", "tiny-llama", "sample")
    assert Path(cfg.data.path).is_file()
    assert cfg.model.trust_remote_code is False


def test_seed_defaults():
    cfg = compose(["model=llama3_1_8b"])
    assert cfg.training.learning_rate == 2e-4
    assert cfg.training.eval_every_steps == 200
    assert cfg.training.early_stopping_patience == 3
    assert cfg.data.eval_fraction == 0.1
    assert cfg.lora.target_modules == "all-linear"
    config = typed_config(cfg)
    assert resolved_rank(config.lora, config.data.task_type) == 64
    assert resolved_alpha(config.lora, config.data.task_type) == 128
    assert compose(["recipe=full"]).training.learning_rate == 2e-5


@pytest.mark.parametrize(("overrides", "rank", "alpha"), [
    (["data.task_type=classification"], 16, 32),
    (["data.task_type=extraction"], 16, 32),
    (["data.task_type=generation"], 64, 128),
    (["data.task_type=classification", "lora.rank=8"], 8, 16),
    (["lora.rank=8", "lora.alpha=8"], 8, 8),
])
def test_lora_rank_follows_task_type(overrides: list[str], rank: int, alpha: int):
    config = typed_config(compose(overrides))
    assert (resolved_rank(config.lora, config.data.task_type), resolved_alpha(config.lora, config.data.task_type)) \
        == (rank, alpha)


@pytest.mark.parametrize(("effective", "max_per_device", "world", "layout"), [
    (16, 8, 1, (8, 2)), (16, 16, 1, (16, 1)), (12, 8, 1, (6, 2)), (16, 8, 2, (8, 1)), (32, 4, 2, (4, 4)),
    (7, 8, 1, (7, 1)),
])
def test_batch_layout_reaches_effective_batch(effective: int, max_per_device: int, world: int,
                                              layout: tuple[int, int]):
    cfg = compose([f"training.effective_batch_size={effective}",
                   f"training.max_per_device_batch_size={max_per_device}"])
    per_device, accumulation = batch_layout(typed_config(cfg).training, world)
    assert (per_device, accumulation) == layout
    assert per_device * accumulation * world == effective


def test_batch_layout_rejects_indivisible_world():
    with pytest.raises(ConfigError, match="training.effective_batch_size"):
        batch_layout(typed_config(compose(["training.effective_batch_size=15"])).training, 2)


@pytest.mark.parametrize(("override", "key"), [
    ("data.eval_fraction=0.05", "data.eval_fraction"),
    ("training.eval_every_steps=0", "training.eval_every_steps"),
    ("training.learning_rate=-1", "training.learning_rate"),
    ("data.format=preference", "data.format"),
    ("lora.dropout=1.5", "lora.dropout"),
    ("checks.run=[nope]", "checks.run"),
    ("checks.fail_on=[template]", None),  # valid: the default
])
def test_cross_field_rules(override: str, key: str | None):
    cfg = compose([override])
    if key is None:
        typed_config(cfg)
        return
    with pytest.raises(ConfigError) as info:
        typed_config(cfg)
    assert str(info.value).startswith(f"{key}:")


def test_merge_with_full_recipe_is_rejected():
    with pytest.raises(ConfigError, match="export.merge"):
        typed_config(compose(["recipe=full", "export.merge=true"]))


def test_unknown_key_is_named():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as info:
        compose(["training.nonsense=1"])
    assert "nonsense" in str(info.value.__cause__ or info.value)


def test_appended_unknown_key_is_rejected_by_the_schema():
    cfg = compose(["+training.nonsense=1"])  # `+` bypasses Hydra's struct check ...
    with pytest.raises(ConfigError, match=r"^training\.nonsense: Key 'nonsense' not in 'TrainingConfig'"):
        typed_config(cfg)  # ... the schema check does not
