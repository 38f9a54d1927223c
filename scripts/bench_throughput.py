"""Training throughput of each `training.packing` mode against TRL's padded default, on real long-tailed chats.

    python scripts/bench_throughput.py [--steps 40] [--repeats 2] [--max-length 512] [--modes none,...]

The data are the OASST 100-tree sample (`../shared/datasets/oasst_en_100_trees`, 687 two-turn chats, see
scripts/bench_padding.py), tokenised with the tiny model's chat template and answer masks as a run does. Each
mode trains the tiny model (LoRA, fp32, CPU) for `--steps` optimiser steps of `training.effective_batch_size`
16 through the real `build_trainer`, in a fresh child process each (one at a time, so peak memory is the
mode's own and no two share the CPU):

- `none` is TRL's default (padded batches of 8 in random order, 2 accumulation steps);
- `group_by_length`: the same, batches of similar length (transformers' LengthGroupedSampler);
- `padding_free`: the default batches, each concatenated without padding;
- `bin_pack`: first-fit-decreasing bins of the default budget (8 x the mean length).

The modes run in turn, `--repeats` rounds (this machine's speed drifts between minutes; each mode keeps its
fastest round). It prints, per mode: real (non-padding) tokens per second of training, the ratio to `none`,
peak resident memory above the process's size before training, and the eval loss after the last step on the
same 64 held-out chats (the loss curves should agree within the noise of the batch order).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
MODES = ("none", "group_by_length", "padding_free", "bin_pack")


def mode_overrides(mode: str) -> list[str]:
    if mode == "group_by_length":
        return ["training.packing=none", "training.group_by_length=true"]
    return [f"training.packing={mode}"]


class PeakRss:
    """The process's resident set size, sampled in a thread (every 5 ms); with `children`, plus each child process's
    unique set size (the pages a forked or spawned worker holds alone)."""

    def __init__(self, children: bool = False, every: float = 0.005) -> None:
        import psutil

        self.process, self.children, self.every = psutil.Process(), children, every
        self.start = self.peak = self._now()
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _now(self) -> int:
        import psutil

        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True) if self.children else ():
            try:
                total += child.memory_full_info().uss
            except psutil.Error:  # the child ended between the listing and the reading
                pass
        return total

    def _poll(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._now())
            time.sleep(self.every)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return (self.peak - self.start) / 2**20


def run_mode(mode: str, steps: int, max_length: int) -> dict:
    import torch
    from bench_padding import chats
    from transformers import set_seed

    import gatetune
    from data_checks.chat_template import ChatTemplate
    from gatetune.data import tokenize_example
    from gatetune.modeling import load_model, load_tokenizer, model_source
    from gatetune.quiet import quiet_library_noise
    from gatetune.trainer import build_trainer

    quiet_library_noise()
    torch.set_num_threads(2)
    config = gatetune.typed_config([
        "logger=none", f"data.max_length={max_length}", f"training.max_steps={steps}", "training.logging_steps=1",
        "training.eval_every_steps=100000", "training.warmup_ratio=0", "+trl.eval_on_start=false",
        "+trl.disable_tqdm=true", *mode_overrides(mode)])
    source = model_source(config.model)
    tokenizer = load_tokenizer(config.model, source)
    chat = ChatTemplate(tokenizer, {})
    rows = [row for c in chats() for row in tokenize_example({"messages": c}, chat, max_length, "answers")]
    for row in rows:
        row.pop("truncated")
    rows = [r for r in rows if any(r["assistant_masks"])]
    train, evaluation = rows[64:], rows[:64]
    set_seed(config.seed)
    model = load_model(config, source)
    trainer = build_trainer(config, model, tokenizer, train, evaluation, Path(tempfile.mkdtemp(prefix="bench-")))
    rss = PeakRss()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    peak = rss.stop()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {"mode": mode, "seconds": seconds, "tokens": int(trainer.state.num_input_tokens_seen),
            "tokens_per_second": trainer.state.num_input_tokens_seen / seconds, "peak_rss_mb": peak,
            "train_loss_last5": sum(losses[-5:]) / len(losses[-5:]), "eval_loss": trainer.evaluate()["eval_loss"],
            "train_examples": len(train)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512, help="the tiny model has 512 positions")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from bench_padding import OASST

    if not OASST.is_file():
        print(f"{OASST} is absent: this benchmark needs the shared OASST sample", file=sys.stderr)
        return 2
    if args.child:
        print("RESULT " + json.dumps(run_mode(args.child, args.steps, args.max_length)))
        return 0
    results: dict[str, dict] = {}
    for _ in range(args.repeats):
        for mode in args.modes.split(","):
            done = subprocess.run([sys.executable, __file__, "--child", mode, "--steps", str(args.steps),
                                   "--max-length", str(args.max_length)], capture_output=True, text=True,
                                  env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                return 1
            result = json.loads(line[len("RESULT "):])
            if mode not in results or result["tokens_per_second"] > results[mode]["tokens_per_second"]:
                results[mode] = result
    base = results.get("none")
    print(f"{args.steps} optimiser steps of ~16 OASST chats (max_length {args.max_length}), tiny model, LoRA, "
          f"fp32, CPU ({os.cpu_count()} cores); best of {args.repeats} rounds")
    print(f"{'mode':16s} {'tokens/s':>9s} {'vs none':>8s} {'seconds':>8s} {'peak MB':>8s} {'train loss':>10s} "
          f"{'eval loss':>9s}")
    for mode, r in results.items():
        ratio = r["tokens_per_second"] / base["tokens_per_second"] if base else float("nan")
        print(f"{mode:16s} {r['tokens_per_second']:9.0f} {ratio:7.2f}x {r['seconds']:8.1f} {r['peak_rss_mb']:8.0f} "
              f"{r['train_loss_last5']:10.3f} {r['eval_loss']:9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
