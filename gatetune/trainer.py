"""Build the TRL trainer for a recipe: the one place a trainer is set up, whatever the objective.

Every objective shares `common_args` (optimisation, evaluation, early stopping, checkpoints,
logging); the objective's spec (`gatetune/objectives.py`) adds the few keys that differ (DPO's beta,
GRPO's generations) and names the TRL pair; the `trl:` node passes any other field, last.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from gatetune.batching import batch_layout, launched_world_size, steps_between_generations
from gatetune.callbacks import RunMetricsCallback, early_stopping_callback
from gatetune.checkpoints import AtomicCheckpointMixin, checkpoints_dir
from gatetune.config import LoggerConfig, LoggerKind, Precision, TrainConfig, resolved_packing
from gatetune.errors import ConfigError
from gatetune.modeling import torch_dtype
from gatetune.objectives import ObjectiveSpec, objective_spec
from gatetune.packing import BinPackMixin, packing_args, prepare_model, token_budget
from gatetune.serving.server import free_port

log = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def report_to(logger: LoggerConfig) -> list[str]:
    return [] if logger.kind is LoggerKind.none else [logger.kind.value]


def ensure_distributed_env() -> None:
    """DeepSpeed needs a process group even for one process: describe a world of one, as a launcher would.

    Without this, a plain `python train.py recipe=full_zero3` makes DeepSpeed look for MPI.
    """
    if "WORLD_SIZE" in os.environ:
        return
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(free_port()))


def own_port_for_a_world_of_one() -> None:
    """A launcher may describe a world of one process (submitit does, with LOCAL_RANK set, which makes
    accelerate start a process group) on a port shared by every job of a sweep: two jobs on one node then
    fail with EADDRINUSE. One process has no peer to agree with, so it takes a free port of its own."""
    if launched_world_size() == 1 and "MASTER_PORT" in os.environ:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))


def deepspeed_config(name: str | None) -> str | None:
    """The recipe's DeepSpeed JSON (`recipe.deepspeed`): a name in gatetune/conf/deepspeed/ or a path."""
    if not name:
        return None
    path = Path(name) if name.endswith(".json") else CONFIG_DIR / "deepspeed" / f"{name}.json"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in (CONFIG_DIR / "deepspeed").glob("*.json")))
        raise ConfigError("recipe.deepspeed", f"no DeepSpeed config {name!r} (available: {available}, or a path)")
    return str(path)


def common_args(config: TrainConfig, run_dir: Path, train_examples: int, resuming: bool = False) -> dict[str, Any]:
    """TrainingArguments shared by every objective: each value comes from one config key.

    A resumed run skips the evaluation at its start: the checkpoint's run already did it, and
    repeating it would count against early stopping's patience.
    """
    import torch

    t = config.training
    per_device, accumulation = batch_layout(t, launched_world_size())
    dtype = torch_dtype(t.precision)
    spec = objective_spec(config.recipe.objective)
    if resolved_packing(config) != "bin_pack":  # bin_pack logs its own layout
        log.info("batch: %d per device x %d accumulation x %d processes = %d; %d steps per epoch", per_device,
                 accumulation, launched_world_size(), t.effective_batch_size,
                 math.ceil(train_examples / t.effective_batch_size))
    args = {
        "output_dir": str(checkpoints_dir(run_dir)),
        "seed": config.seed,
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "per_device_train_batch_size": per_device,
        "per_device_eval_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
        "lr_scheduler_type": t.lr_scheduler,
        "warmup_steps": t.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "activation_checkpointing": t.gradient_checkpointing,
        "bf16": dtype == torch.bfloat16,
        "fp16": t.precision is Precision.fp16,
        "eval_strategy": "steps",
        "eval_steps": t.eval_every_steps,
        "eval_on_start": not resuming,
        "save_strategy": "steps",
        "save_steps": t.eval_every_steps,
        "save_total_limit": t.save_total_limit,
        "restore_callback_states_from_checkpoint": True,  # early stopping's patience survives a resume
        "load_best_model_at_end": True,
        "metric_for_best_model": spec.metric,
        "greater_is_better": spec.greater_is_better,
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "report_to": report_to(config.logger),
        "run_name": run_dir.name,
        "include_num_input_tokens_seen": "non_padding",
        "disable_tqdm": False,
        "dataloader_pin_memory": torch.cuda.is_available(),
        "deepspeed": deepspeed_config(config.recipe.deepspeed),
        "use_liger_kernel": t.liger,  # checked against the GPU and the architecture by modeling.check_kernels
    }
    if not torch.cuda.is_available():
        # CPU processes (tests, CPU clusters): accelerate's multi-CPU path over gloo; NCCL is the GPU default.
        args["use_cpu"] = True
        if "WORLD_SIZE" in os.environ:
            args["ddp_backend"] = "gloo"
    return args


def train_lengths(rows: Any) -> list[int]:
    """Tokens per training row: SFT's Dataset has a `length` column; the prompt rows of GRPO and the preference
    rows of DPO (lists) have no tokens yet: zeros."""
    if hasattr(rows, "column_names") and "length" in rows.column_names:
        return rows["length"]
    return [len(row.get("input_ids", ())) for row in rows]


def as_dataset(rows: Any) -> Any:
    from datasets import Dataset

    return rows if isinstance(rows, Dataset) else Dataset.from_list(rows)


def trl_arguments(config: TrainConfig, run_dir: Path, lengths: list[int], resuming: bool = False) -> dict[str, Any]:
    """The keyword arguments of the objective's TRL config: the common ones, the objective's, the packing
    mode's, then `trl:` (validated against the config class in `config.validate`) over all of them."""
    spec = objective_spec(config.recipe.objective)
    return {**common_args(config, run_dir, len(lengths), resuming), **spec.args(config),
            **packing_args(config, lengths, launched_world_size()), **config.trl}


def trl_classes(spec: ObjectiveSpec) -> tuple[Any, Any]:
    """The objective's TRL config class, and its trainer class with atomic checkpoints and bin_pack's
    sampler mixed in."""
    config_cls, trainer_cls = spec.trl_classes()
    return config_cls, type(trainer_cls.__name__, (AtomicCheckpointMixin, BinPackMixin, trainer_cls), {})


def build_trainer(config: TrainConfig, model: Any, tokenizer: Any, train_rows: Any, eval_rows: Any,
                  run_dir: Path, trainer_kwargs: dict[str, Any] | None = None, resuming: bool = False) -> Any:
    """The trainer, with the callbacks the run reads its metrics and preemption from. `trainer_kwargs`: what
    the objective's `prepare` hook built (GRPO's `reward_funcs`)."""
    from gatetune.preemption import PreemptionCallback

    if config.recipe.deepspeed:
        ensure_distributed_env()
    own_port_for_a_world_of_one()
    config_cls, trainer_cls = trl_classes(objective_spec(config.recipe.objective))
    lengths = train_lengths(train_rows)
    args = config_cls(**trl_arguments(config, run_dir, lengths, resuming))
    mode = resolved_packing(config)
    prepare_model(model, mode)
    t = config.training
    # GRPO: a preemption stops where no generated completions are buffered (checked against eval_every_steps in
    # objectives._grpo_check, so the regular checkpoints fall there too).
    generations = steps_between_generations(getattr(args, "steps_per_generation", None),
                                            getattr(args, "num_iterations", 1), args.gradient_accumulation_steps) \
        if hasattr(args, "steps_per_generation") else 1
    callbacks = [early_stopping_callback(t.early_stopping_patience, t.early_stopping_threshold),
                 RunMetricsCallback(), PreemptionCallback(stop_every=generations)]
    trainer = trainer_cls(model=model, args=args, train_dataset=as_dataset(train_rows),
                          eval_dataset=as_dataset(eval_rows), processing_class=tokenizer,
                          callbacks=callbacks, **(trainer_kwargs or {}))
    if mode == "bin_pack":
        trainer.token_budget = token_budget(config, lengths, launched_world_size())
    return trainer
