"""Each recipe trains for real on the tiny model on CPU: QLoRA, full fine-tune with ZeRO-3, DPO, GRPO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gatetune.config import typed_config
from gatetune.errors import ConfigError
from tests.conftest import ROOT, compose

QUICK = ["logger=none", "checks.run=[template]", "checks.fail_on=[template]"]


@pytest.mark.slow
def test_qlora_trains_a_lora_on_a_4bit_base(tmp_path: Path, tiny_model_dir: Path):
    import bitsandbytes as bnb
    import torch

    from gatetune.run import run

    result = run(compose(["recipe=qlora", *QUICK, "training.max_steps=8", "training.eval_every_steps=4",
                          "training.learning_rate=2e-3"]), tmp_path)
    quantised = [m for m in result.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantised) == 14  # every projection of both layers
    assert all(m.weight.dtype == torch.uint8 for m in quantised)
    assert all(m.weight.quant_state.quant_type == "nf4" for m in quantised)
    metrics = result.summary["metrics"]
    assert metrics["eval_loss_best"] < metrics["eval_loss_initial"] - 0.1
    adapter = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_model_dir)  # the un-quantised base


@pytest.mark.slow
def test_full_zero3_trains_with_two_cpu_processes(tmp_path: Path, tiny_model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM

    env = {**os.environ, "DS_ACCELERATOR": "cpu"}
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "train.py"),
         "recipe=full_zero3", *QUICK, "training.max_steps=4", "training.eval_every_steps=2",
         "training.learning_rate=1e-3", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("x 2 processes = 16") == 2  # both ranks saw a world of two
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["export"]["kind"] == "full_model"
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "model")  # a consolidated HF checkpoint
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert trained.num_parameters() == base.num_parameters()
    changed = [n for (n, p), (_, q) in zip(trained.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(p, q)]
    assert len(changed) > 10, "the gathered weights are not the trained ones"
    assert not (tmp_path / "model" / "training_args.bin").exists()


@pytest.mark.slow
def test_dpo_reward_margin_and_accuracy_rise(tmp_path: Path, tiny_model_dir: Path):
    from gatetune.run import run

    result = run(compose(["recipe=dpo", *QUICK, "training.max_steps=24", "training.eval_every_steps=8",
                          "training.learning_rate=2e-4"]), tmp_path)
    metrics = result.summary["metrics"]
    margins, accuracies = metrics["rewards_margins_history"], metrics["rewards_accuracies_history"]
    assert len(margins) == 4 and margins[0] == 0.0  # step 0: the policy is the reference
    assert margins[-1] > margins[1] > 0
    assert accuracies[-1] > 0.6
    assert metrics["eval_metric"] == "eval_loss" and metrics["eval_loss_best"] < metrics["eval_loss_initial"]
    assert result.summary["gates"]["checks"]["template"]["passed"]
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


@pytest.mark.slow
def test_grpo_mean_reward_rises(tmp_path: Path, tiny_model_dir: Path):
    from gatetune.run import run

    # 64-token completions (the recipe's default; the tiny demo uses 24 for speed) give the sparse keyword
    # reward enough variance within each group to learn from in 30 steps.
    result = run(compose(["recipe=grpo", *QUICK, "training.max_steps=30", "training.eval_every_steps=10",
                          "training.learning_rate=1e-3", "training.logging_steps=5",
                          "grpo.max_completion_length=64"]), tmp_path)
    metrics = result.summary["metrics"]
    assert metrics["eval_metric"] == "eval_reward"
    assert metrics["eval_metric_best"] > 1.5 * metrics["eval_metric_initial"] > 0
    rewards = [e["reward"] for e in result.log_history if "reward" in e]
    assert sum(rewards[-3:]) / 3 > rewards[0]
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert result.summary["data"]["format"] == "prompt"


@pytest.mark.slow
def test_grpo_with_the_math_reward_on_math_style_prompts(tmp_path: Path, tiny_model_dir: Path):
    """MATH-500 problems as prompts with their `answer` column: the math-verify reward scores every row (none
    unscored, reported in the summary) and TRL logs it; the tiny model's completions are wrong, so 0."""
    import json

    from gatetune.run import run
    from tests.conftest import write_jsonl

    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "math500" / "test_first100.jsonl").open()]
    data = write_jsonl(tmp_path / "math.jsonl", [{"prompt": r["problem"], "answer": r["answer"]} for r in rows[:40]])
    result = run(compose(["recipe=grpo", *QUICK, f"data.path={data}", "grpo.rewards=[math]", "training.max_steps=2",
                          "training.eval_every_steps=2", "grpo.max_completion_length=16", "data.max_length=512"]),
                 tmp_path / "run")
    assert result.summary["status"] in ("completed", "stopped_early")
    assert result.summary["data"]["rewards"] == {"unscored_by_reward": {"math": 0.0}, "unscored_by_all": 0.0,
                                                 "records": 40}
    logged = [e["rewards/math/mean"] for e in result.log_history if "rewards/math/mean" in e]
    assert logged and all(0.0 <= value <= 1.0 for value in logged)


def test_grpo_options_reach_trl():
    from gatetune.objectives import objective_spec

    cfg = compose(["recipe=grpo", "grpo.use_vllm=true", "grpo.num_generations=8",
                   "grpo.rewards=[keyword,length_penalty]", "grpo.reward_weights=[1.0,0.5]"])
    config = typed_config(cfg)
    args = objective_spec(config.recipe.objective).args(config)
    assert (args["use_vllm"], args["vllm_mode"], args["num_generations"]) == (True, "colocate", 8)
    assert args["reward_weights"] == [1.0, 0.5]


@pytest.mark.parametrize(("overrides", "key"), [
    (["recipe=qlora", "recipe.deepspeed=zero3"], "recipe.deepspeed"),
    (["recipe=grpo", "grpo.rewards=[]"], "grpo.rewards"),
    (["recipe=grpo", "grpo.num_generations=3"], "grpo.num_generations"),
    (["recipe=grpo", "grpo.reward_weights=[1.0,2.0]"], "grpo.reward_weights"),
    # completions for 4 micro-batches = 2 optimizer steps: a checkpoint at step 3 would lose those of step 4
    (["recipe=grpo", "+trl.steps_per_generation=4", "training.eval_every_steps=3"], "training.eval_every_steps"),
    (["recipe=dpo", "dpo.beta=0"], "dpo.beta"),
    (["recipe=dpo", "data=sample"], "data.format"),
    (["checks.engine=spark"], "checks.engine"),
    # the engine reads data.path whole: a held-out fraction of it would be gated as training data
    (["checks.engine=local"], "checks.engine"),
    (["checks.engine=local", "data.eval_path=eval.jsonl", "data.max_examples=20"], "checks.engine"),
    (["checks.engine=local", "data.eval_path=eval.parquet"], "data.eval_path"),
    (["checks.engine=local", "checks.engine_workers=0"], "checks.engine_workers"),
    (["+checks.engine_slurm.partition=cpu"], "checks.engine_slurm"),
])
def test_impossible_combinations_fail_at_config_time(overrides: list[str], key: str):
    cfg = compose(overrides)
    if key == "data.format":  # the sample's format is detected from the file: checked when the data loads
        from gatetune.data import load_splits

        config = typed_config(cfg)
        with pytest.raises(ConfigError, match="recipe 'dpo' .objective dpo. trains on preference data"):
            load_splits(config.data, config.recipe, config.seed)
        return
    with pytest.raises(ConfigError) as info:
        typed_config(cfg)
    assert str(info.value).startswith(f"{key}:")
