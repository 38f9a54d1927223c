"""Build the TRL trainer for a recipe. The one place a trainer is set up, whatever the recipe."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from finetune.callbacks import RunMetricsCallback, early_stopping_callback
from finetune.config import LoggerKind, Precision, batch_layout
from finetune.modeling import torch_dtype

log = logging.getLogger(__name__)


def world_size() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def report_to(cfg: Any) -> list[str]:
    kind = LoggerKind(cfg.logger.kind)
    return [] if kind is LoggerKind.none else [kind.value]


def sft_config(cfg: Any, run_dir: Path, train_examples: int) -> Any:
    """TRL `SFTConfig` from the recipe config: every value here comes from one config key."""
    import torch
    from trl import SFTConfig

    t = cfg.training
    per_device, accumulation = batch_layout(cfg, world_size())
    dtype = torch_dtype(cfg)
    steps_per_epoch = math.ceil(train_examples / t.effective_batch_size)
    log.info("batch: %d per device x %d accumulation x %d processes = %d; %d steps per epoch",
             per_device, accumulation, world_size(), t.effective_batch_size, steps_per_epoch)
    return SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
        seed=cfg.seed,
        learning_rate=t.learning_rate,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        activation_checkpointing=t.gradient_checkpointing,
        bf16=dtype == torch.bfloat16,
        fp16=Precision(t.precision) is Precision.fp16,
        eval_strategy="steps",
        eval_steps=t.eval_every_steps,
        eval_on_start=True,
        save_strategy="steps",
        save_steps=t.eval_every_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        report_to=report_to(cfg),
        run_name=str(run_dir.name),
        include_num_input_tokens_seen="non_padding",
        max_length=cfg.data.max_length,
        dataset_kwargs={"skip_prepare_dataset": False},
        disable_tqdm=False,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def build_trainer(cfg: Any, model: Any, tokenizer: Any, train_rows: list[dict], eval_rows: list[dict],
                  run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The trainer plus the callbacks the run reads its metrics from."""
    from datasets import Dataset
    from trl import SFTTrainer

    callbacks = {
        "early_stopping": early_stopping_callback(cfg.training.early_stopping_patience,
                                                  cfg.training.early_stopping_threshold),
        "metrics": RunMetricsCallback(),
    }
    trainer = SFTTrainer(
        model=model,
        args=sft_config(cfg, run_dir, len(train_rows)),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows),
        processing_class=tokenizer,
        callbacks=list(callbacks.values()),
    )
    return trainer, callbacks
