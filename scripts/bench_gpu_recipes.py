"""GPU benchmark: qlora, lora and full_zero3 vs plain TRL SFTTrainer defaults on a Llama-3.2-1B-shaped model.

Run on a GPU machine (scripts/gpu_check.sh does, offline, from a wheelhouse). The model has Llama-3.2-1B's
shape with random weights, so nothing is downloaded. Each run trains the same steps on the bundled sample;
tokens/s, peak GPU memory and step time are printed as a Markdown table and appended to docs/benchmarks.md.

    python scripts/bench_gpu_recipes.py [--steps 30] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ("qlora", "lora", "full_zero3")


# Llama shapes with random weights: 3.2-1B (the default) and 3.1-8B (bench_gpu_throughput.py's QLoRA memory)
SHAPES = {
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "max_position_embeddings": 4096,
           "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "max_position_embeddings": 8192},
}


def build_model(out: Path, shape: str = "1b") -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from gatetune.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=128256, num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out


def run_recipe(recipe: str, model_dir: Path, steps: int, work: Path) -> dict:
    run_dir = work / recipe
    command = [sys.executable, str(ROOT / "train.py"), f"recipe={recipe}", f"model.path={model_dir}",
               "model.name=llama-3.2-1b-shaped", "logger=none", "checks=off", f"training.max_steps={steps}",
               f"training.eval_every_steps={steps}", "data.max_length=512", f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        return {"run": recipe, "error": (result.stdout + result.stderr)[-2000:]}
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    return {"run": recipe, "tokens_per_second": metrics["train_tokens_per_second"],
            "peak_gpu_memory_mb": metrics["peak_memory_mb"], "step_seconds": metrics["wall_seconds"] / steps,
            "wall_seconds": time.perf_counter() - started}


def run_plain_trl(model_dir: Path, steps: int, work: Path) -> dict:
    """TRL's SFTTrainer with its defaults (full fine-tune, bf16) on the same chats."""
    code = f"""
import json, time, torch
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer
data = load_dataset("json", data_files="{ROOT / 'gatetune/sample_data/sft_sample.jsonl'}", split="train")
args = SFTConfig(output_dir="{work / 'plain'}", max_steps={steps}, per_device_train_batch_size=8,
                 gradient_accumulation_steps=2, bf16=True, report_to=[], save_strategy="no", max_length=512,
                 include_num_input_tokens_seen="non_padding", logging_steps=10)
trainer = SFTTrainer(model="{model_dir}", args=args, train_dataset=data)
torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - start
print(json.dumps({{"tokens": trainer.state.num_input_tokens_seen, "seconds": seconds,
                  "peak": torch.cuda.max_memory_allocated() / 2**20}}))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        return {"run": "plain TRL SFTTrainer (full, defaults)", "error": (result.stdout + result.stderr)[-2000:]}
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return {"run": "plain TRL SFTTrainer (full, defaults)",
            "tokens_per_second": measured["tokens"] / measured["seconds"],
            "peak_gpu_memory_mb": measured["peak"], "step_seconds": measured["seconds"] / steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu_recipes: no CUDA device", file=sys.stderr)
        return 2
    os.environ.setdefault("GATETUNE_CACHE", tempfile.mkdtemp())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = build_model(work / "model")
        rows = [run_recipe(r, model_dir, args.steps, work) for r in RECIPES]
        rows.append(run_plain_trl(model_dir, args.steps, work))
    table = ["| run | train tokens/s | peak GPU memory (MB) | s/step |", "|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            table.append(f"| {row['run']} | failed: {row['error'].splitlines()[-1][:80]} | | |")
        else:
            table.append(f"| {row['run']} | {row['tokens_per_second']:.0f} | {row['peak_gpu_memory_mb']:.0f} "
                         f"| {row['step_seconds']:.3f} |")
    text = "\n".join(table)
    print(text)
    for row in rows:
        if "error" in row:
            print(f"\n{row['run']} failed:\n{row['error']}", file=sys.stderr)
    device = torch.cuda.get_device_name(0)
    with args.out.open("a", encoding="utf-8") as f:
        f.write(f"\n### GPU recipes on {device} ({time.strftime('%Y-%m-%d')}, {args.steps} steps, "
                "Llama-3.2-1B shape, random weights)\n\n`bash scripts/gpu_check.sh`\n\n" + text + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
