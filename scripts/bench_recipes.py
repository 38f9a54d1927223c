"""Overhead of our recipes over the equivalent raw TRL trainer, on the tiny model on CPU.

For each recipe, in one process, after an untimed one-step warm-up of both: our `gatetune.run.run`
(config, data checks off, tokenising, training,
evaluation, export with its checks, model card, loss plot, summary) and a raw TRL script doing the same
training (same model, LoRA settings, batch, steps, evaluation schedule, data, adapter save). Prints the
wall-time ratio ours / raw; the target is at most 1.05.

    python scripts/bench_recipes.py [--steps 60] [--recipes lora,qlora,dpo,grpo,full]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _overrides(recipe: str, steps: int) -> list[str]:
    return [f"recipe={recipe}", "logger=none", "checks=off", f"training.max_steps={steps}",
            f"training.eval_every_steps={steps}"]


def ours(recipe: str, steps: int, work: Path) -> float:
    from hydra import compose, initialize_config_dir

    from gatetune.cli import CONFIG_DIR
    from gatetune.config import register_schema
    from gatetune.run import run

    register_schema()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=_overrides(recipe, steps))
    start = time.perf_counter()
    run(cfg, work / f"ours-{recipe}")
    return time.perf_counter() - start


def raw_trl(recipe: str, steps: int, work: Path) -> float:
    """The same training written directly against TRL, the way a TRL example script does it."""
    import trl
    from datasets import load_dataset
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gatetune.cli import CONFIG_DIR
    from gatetune.config import register_schema
    from gatetune.rewards import load_rewards
    from gatetune.tiny_model import ensure_tiny_model

    register_schema()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=_overrides(recipe, steps))
    start = time.perf_counter()
    model_dir = ensure_tiny_model(cfg.model.path)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    quantization = None
    if recipe == "qlora":
        from gatetune.modeling import nf4_config

        quantization = nf4_config()
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quantization)
    data = load_dataset("json", data_files=OmegaConf.to_container(cfg.data, resolve=True)["path"],
                        split="train").train_test_split(test_size=0.1, seed=cfg.seed)
    common = dict(output_dir=str(work / f"raw-{recipe}"), max_steps=steps, per_device_train_batch_size=8,
                  per_device_eval_batch_size=8, gradient_accumulation_steps=2, learning_rate=cfg.training.learning_rate,
                  eval_strategy="steps", eval_steps=steps, eval_on_start=True, save_strategy="no", report_to=[],
                  use_cpu=True, logging_steps=10, seed=cfg.seed)
    peft = None if recipe == "full" else LoraConfig(r=64, lora_alpha=128, lora_dropout=0.05, task_type="CAUSAL_LM",
                                                    target_modules="all-linear")
    if recipe == "dpo":
        trainer = trl.DPOTrainer(model=model, args=trl.DPOConfig(**common, beta=0.1, max_length=128),
                                 train_dataset=data["train"], eval_dataset=data["test"], processing_class=tokenizer,
                                 peft_config=peft)
    elif recipe == "grpo":
        g = cfg.grpo
        trainer = trl.GRPOTrainer(model=model, reward_funcs=load_rewards(list(g.rewards)),
                                  args=trl.GRPOConfig(**common, num_generations=g.num_generations,
                                                      max_completion_length=g.max_completion_length),
                                  train_dataset=data["train"], eval_dataset=data["test"], processing_class=tokenizer,
                                  peft_config=peft)
    else:
        trainer = trl.SFTTrainer(model=model, args=trl.SFTConfig(**common, max_length=256),
                                 train_dataset=data["train"], eval_dataset=data["test"], processing_class=tokenizer,
                                 peft_config=peft)
    trainer.train()
    trainer.save_model(str(work / f"raw-{recipe}" / "final"))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--recipes", default="lora,qlora,dpo,grpo,full")
    args = parser.parse_args()
    os.environ.setdefault("GATETUNE_CACHE", tempfile.mkdtemp())
    rows = ["| recipe | ours (s) | raw TRL (s) | ours / raw |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes.split(","):
            # One untimed 1-step run of each first: imports, the datasets cache and kernel warm-up are paid
            # once per process by either approach and would otherwise land on whichever runs first.
            raw_trl(recipe, 1, Path(tmp) / "warm")
            ours(recipe, 1, Path(tmp) / "warm")
            raw_seconds = raw_trl(recipe, args.steps, Path(tmp))
            our_seconds = ours(recipe, args.steps, Path(tmp))
            rows.append(f"| {recipe} | {our_seconds:.1f} | {raw_seconds:.1f} | {our_seconds / raw_seconds:.2f} |")
            print(rows[-1], flush=True)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
