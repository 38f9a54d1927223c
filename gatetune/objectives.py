"""What is specific to each training objective, in one spec per objective: the registry.

A spec says which data formats the objective trains on, the eval metric it stops early on and keeps the
best checkpoint by, its TRL config/trainer pair, the TRL keys it adds, its cross-field rules, how its
rows are built and what the trainer needs besides them. `run.py`, `trainer.py` and `config.validate` look
the spec up once (`objective_spec(config.recipe.objective)`); nothing else dispatches on the objective.

Hooks that need the layers above (data, rewards, TRL) are named as `module:function` strings, resolved
on use, as Hydra's `_target_` is: this module imports nothing of the project but its errors and the
batch layout, so the config schema can use the `Objective` enum. The functions take the typed config
(`gatetune.config.TrainConfig`, converted once by `typed_config`), or the one node they read.

Adding an objective (KTO, ORPO, ...): one `ObjectiveSpec` in `OBJECTIVES` (plus its rows function if its
data has a new shape, and its config node if it has keys of its own) and one recipe YAML in
gatetune/conf/recipe/ that sets `recipe.objective`. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from gatetune.batching import batch_layout, launched_world_size, steps_between_generations
from gatetune.errors import ConfigError

if TYPE_CHECKING:  # the schema imports this module: its types only for the annotations
    from gatetune.config import TrainConfig


class Objective(str, Enum):
    sft = "sft"  # TRL SFTTrainer
    dpo = "dpo"  # TRL DPOTrainer
    grpo = "grpo"  # TRL GRPOTrainer


def _no_check(config: TrainConfig) -> None:
    return None


@dataclass(frozen=True)
class ObjectiveSpec:
    """Everything one objective adds to the shared run. `rows` and `prepare` are `module:function` hooks:

    - `rows(data, splits, chat, gated) -> gatetune.data.ObjectiveRows(train, eval, info, verdicts)`: the rows
      its TRL trainer takes, from the `data` node (DataConfig), the loaded splits and the chat template, built
      before the gates; `gated` says the template gate judges the train split, and `verdicts` (or None) is
      what the rows' rendering found per record, which that gate reads instead of rendering again;
    - `prepare(config, splits) -> (trainer_kwargs, summary_info)`: extra trainer keyword arguments, built
      (and checked against the data) before any model is loaded, e.g. GRPO's reward functions, and what the
      summary's `data` keeps of that check.
    """

    objective: Objective
    formats: tuple[str, ...]  # data formats it trains on
    metric: str  # the eval metric for early stopping and the best checkpoint
    greater_is_better: bool
    trl_config: str  # class names in `trl`
    trl_trainer: str
    rows: str
    args: Callable[[TrainConfig], dict[str, Any]]  # the TRL config keys it sets from its config node
    check: Callable[[TrainConfig], None] = _no_check  # its cross-field rules (ConfigError naming the key)
    prepare: str | None = None
    summary_metrics: tuple[str, ...] = field(default_factory=tuple)  # eval metrics also kept in the summary
    packings: tuple[str, ...] = ("none",)  # training.packing values it supports; the first is its default
    packing_note: str = ""  # why the others are not supported, for the error

    def hook(self, name: str) -> Callable[..., Any] | None:
        target = getattr(self, name)
        if target is None:
            return None
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)

    def trl_classes(self) -> tuple[Any, Any]:
        import trl

        return getattr(trl, self.trl_config), getattr(trl, self.trl_trainer)


def _sft_args(config: TrainConfig) -> dict[str, Any]:
    return {"max_length": config.data.max_length}


def _dpo_args(config: TrainConfig) -> dict[str, Any]:
    return {"beta": config.dpo.beta, "loss_type": [config.dpo.loss_type], "max_length": config.data.max_length}


def _dpo_check(config: TrainConfig) -> None:
    if not 0 < config.dpo.beta:
        raise ConfigError("dpo.beta", f"must be positive, got {config.dpo.beta}")


def _grpo_args(config: TrainConfig) -> dict[str, Any]:
    g = config.grpo
    return {"num_generations": g.num_generations, "max_completion_length": g.max_completion_length,
            "temperature": g.temperature, "beta": g.beta, "use_vllm": g.use_vllm, "vllm_mode": g.vllm_mode,
            "reward_weights": list(g.reward_weights) if g.reward_weights is not None else None,
            "log_completions": False,
            # Prompts are rendered for generation with the same template arguments as the gates and the export.
            "chat_template_kwargs": dict(config.data.chat_template_kwargs) or None}


def _grpo_check(config: TrainConfig) -> None:
    g = config.grpo
    if not g.rewards:
        raise ConfigError("grpo.rewards", "GRPO needs at least one reward (a file name in gatetune/conf/reward/)")
    if g.reward_weights is not None and len(g.reward_weights) != len(g.rewards):
        raise ConfigError("grpo.reward_weights", f"{len(g.reward_weights)} weights for {len(g.rewards)} rewards")
    if not 0 <= g.max_unscored_fraction <= 1:
        raise ConfigError("grpo.max_unscored_fraction", f"must be in [0, 1], got {g.max_unscored_fraction}")
    if g.num_generations < 2:
        raise ConfigError("grpo.num_generations", "must be at least 2 (GRPO compares completions of a prompt)")
    per_device, _ = batch_layout(config.training, 1)
    if per_device % g.num_generations:  # TRL groups each prompt's generations inside one device batch
        raise ConfigError("grpo.num_generations", f"{g.num_generations} does not divide the per-device batch "
                          f"({per_device}); change training.effective_batch_size or grpo.num_generations")
    _, accumulation = batch_layout(config.training, launched_world_size())
    steps = steps_between_generations(config.trl.get("steps_per_generation"), config.trl.get("num_iterations", 1),
                                      accumulation)
    if config.training.eval_every_steps % steps:  # a checkpoint there would lose the buffered completions
        raise ConfigError("training.eval_every_steps", f"{config.training.eval_every_steps} is not a multiple of the "
                          f"{steps} optimizer steps each GRPO generation batch lasts (trl.steps_per_generation x "
                          f"trl.num_iterations micro-batches, {accumulation} per step): a checkpoint in between could "
                          "not be resumed exactly")


OBJECTIVES: dict[Objective, ObjectiveSpec] = {spec.objective: spec for spec in (
    ObjectiveSpec(Objective.sft, ("chat", "alpaca", "prompt_completion", "text"), "eval_loss", False,
                  "SFTConfig", "SFTTrainer", rows="gatetune.data:sft_rows", args=_sft_args,
                  packings=("padding_free", "none", "bin_pack")),  # default measured: docs/benchmarks.md
    ObjectiveSpec(Objective.dpo, ("preference",), "eval_loss", False, "DPOConfig", "DPOTrainer",
                  rows="gatetune.data:dpo_rows", args=_dpo_args, check=_dpo_check,
                  summary_metrics=("eval_rewards/margins", "eval_rewards/accuracies"),  # DPO's implicit reward
                  packing_note=" (TRL 1.16 disabled DPOTrainer's padding_free after a refactor)"),
    ObjectiveSpec(Objective.grpo, ("prompt",), "eval_reward", True, "GRPOConfig", "GRPOTrainer",
                  rows="gatetune.data:grpo_rows", args=_grpo_args, check=_grpo_check,
                  prepare="gatetune.reward_checks:prepare_rewards",
                  packing_note=" (GRPO batches are prompts TRL generates from, not packed sequences)"),
)}


def objective_spec(objective: Objective | str) -> ObjectiveSpec:
    """The spec of an objective (`recipe.objective`, or its name)."""
    return OBJECTIVES[Objective(objective)]
