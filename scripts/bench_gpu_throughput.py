"""GPU throughput: TRL's padded defaults vs padding-free + Liger + the best attention, LoRA and QLoRA.

Run on a GPU machine (scripts/gpu_check.sh does). The model has Llama-3.2-1B's shape with random weights
(scripts/bench_gpu_recipes.py builds it); the data are synthetic chats with a long-tailed length (log-normal
answer lengths, median about 150 words, capped at data.max_length), because padding is what packing removes.
Each run is `train.py` for the same steps; tokens/s (non-padding tokens) and peak GPU memory come from its
summary. A last run measures the peak memory of QLoRA on a Llama-3.1-8B shape (batch 2 x 2048 tokens,
activation checkpointing, padding-free + Liger), against torchtune's 7.4 GiB on a 4090.

    python scripts/bench_gpu_throughput.py [--steps 20] [--skip-8b] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
WORDS = ("the model answers each question with care and a short example of how it works in practice while "
         "numbers like forty two or seven appear now and then").split()


def long_tailed_chats(path: Path, n: int = 1500, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))
            answer = " ".join(rng.choice(WORDS) for _ in range(min(1500, int(rng.lognormvariate(5.0, 0.9)))))
            f.write(json.dumps({"messages": [{"role": "user", "content": question},
                                             {"role": "assistant", "content": answer}]}) + "\n")
    return path


def train(name: str, model_dir: Path, data: Path, steps: int, work: Path, overrides: list[str]) -> dict:
    run_dir = work / name.replace(" ", "_").replace("+", "")
    command = [sys.executable, str(ROOT / "train.py"), f"model.path={model_dir}", "model.name=bench",
               "logger=none", "checks=off", "eval=off", f"data.path={data}", f"training.max_steps={steps}",
               f"training.eval_every_steps={steps}", "training.logging_steps=5", f"hydra.run.dir={run_dir}",
               *overrides]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        return {"run": name, "error": (result.stdout + result.stderr)[-2000:]}
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = summary["metrics"]
    return {"run": name, "tokens_per_second": metrics["train_tokens_per_second"],
            "peak_gpu_memory_mb": metrics["peak_memory_mb"], "kernels": summary.get("kernels")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-8b", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    import torch
    from bench_gpu_recipes import build_model

    if not torch.cuda.is_available():
        print("bench_gpu_throughput: no CUDA device", file=sys.stderr)
        return 2
    liger = importlib.util.find_spec("liger_kernel") is not None
    ours = ["training.packing=padding_free", "model.attn_implementation=auto", f"training.liger={str(liger).lower()}"]
    label = "padding-free + " + ("Liger + " if liger else "") + "auto attention"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = long_tailed_chats(work / "chats.jsonl")
        model_dir = build_model(work / "model-1b")
        for recipe in ("lora", "qlora"):
            base = [f"recipe={recipe}", "data.max_length=2048"]
            default = train(f"{recipe} TRL default (padded)", model_dir, data, args.steps, work,
                            [*base, "training.packing=none"])
            packed = train(f"{recipe} {label}", model_dir, data, args.steps, work, [*base, *ours])
            if "error" not in default and "error" not in packed:
                packed["ratio"] = packed["tokens_per_second"] / default["tokens_per_second"]
            rows += [default, packed]
        if not args.skip_8b:
            model_8b = build_model(work / "model-8b", "8b")
            rows.append(train(f"qlora 8B shape, batch 2 x 2048, {label}", model_8b, data, 5, work,
                              ["recipe=qlora", "data.max_length=2048", "training.effective_batch_size=2",
                               "training.max_per_device_batch_size=2", "training.gradient_checkpointing=true",
                               *ours]))
    table = ["| run | train tokens/s | vs TRL default | peak GPU memory (GiB) | attention |", "|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            table.append(f"| {row['run']} | failed: {row['error'].splitlines()[-1][:80]} | | | |")
            continue
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        attention = (row.get("kernels") or {}).get("attn_implementation")
        table.append(f"| {row['run']} | {row['tokens_per_second']:.0f} | {ratio} | "
                     f"{row['peak_gpu_memory_mb'] / 1024:.2f} | {attention} |")
    text = "\n".join(table)
    print(text)
    for row in rows:
        if "error" in row:
            print(f"\n{row['run']} failed:\n{row['error']}", file=sys.stderr)
    with args.out.open("a", encoding="utf-8") as f:
        f.write(f"\n### Throughput on {torch.cuda.get_device_name(0)} ({time.strftime('%Y-%m-%d')}, {args.steps} "
                "steps, Llama-3.2-1B shape, long-tailed synthetic chats)\n\n`bash scripts/gpu_check.sh`\n\n"
                + text + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
