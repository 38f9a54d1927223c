"""How much of a padded batch is padding on real chat data, in random order and grouped by length.

    python scripts/bench_padding.py [--max-length 1024] [--batch 8] [--steps 40]

Groundwork for issue 16 (packing, length-aware batching). The data are the OASST 100-tree sample
(`../shared/datasets/oasst_en_100_trees`): every prompter message with each reply, 687 real two-turn chats
with a long-tailed length. They are rendered with the tiny model's chat template and tokenizer.

It compares two orders:
- random: `torch.utils.data.RandomSampler`, what a run uses by default;
- grouped: transformers' `LengthGroupedSampler`, what `+trl.train_sampling_strategy=group_by_length`
  selects today, through the TRL pass-through.

Each order gets the padding share of its batches (right-padded to the longest, as TRL's collator pads),
and the wall time of `--steps` forward+backward passes of the tiny model over those batches on CPU, timed
in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OASST = ROOT.parent / "shared" / "datasets" / "oasst_en_100_trees" / "en_100_tree.jsonl"


def chats() -> list[list[dict[str, str]]]:
    found = []
    for line in OASST.read_text(encoding="utf-8").splitlines():
        stack = [json.loads(line)["prompt"]]
        while stack:
            message = stack.pop()
            for reply in message.get("replies", []):
                if message["role"] == "prompter" and reply["role"] == "assistant":
                    found.append([{"role": "user", "content": message["text"]},
                                  {"role": "assistant", "content": reply["text"]}])
                stack.append(reply)
    return found


def batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order) - size + 1, size)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40, help="batches timed per order")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not OASST.is_file():
        print(f"{OASST} is absent: this benchmark needs the shared OASST sample", file=sys.stderr)
        return 2
    import torch
    from torch.utils.data import RandomSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from data_checks.chat_template import ChatTemplate
    from gatetune.tiny_model import ensure_tiny_model

    cache = Path(os.environ.get("GATETUNE_CACHE", Path.home() / ".cache" / "gatetune"))
    model_dir = ensure_tiny_model(cache / "tiny-llama-v2")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    chat = ChatTemplate(tokenizer, {})
    rows = [tokenizer(chat.full_text(c), add_special_tokens=False)["input_ids"][:args.max_length] for c in chats()]
    lengths = [len(r) for r in rows]
    generator = torch.Generator().manual_seed(args.seed)
    orders = {
        "random": list(RandomSampler(range(len(rows)), generator=generator)),
        "grouped": list(LengthGroupedSampler(args.batch, lengths=lengths,
                                             generator=torch.Generator().manual_seed(args.seed))),
    }
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    positions = model.config.max_position_embeddings
    print(f"{len(rows)} OASST chats, tokens per chat: median {sorted(lengths)[len(lengths) // 2]}, max "
          f"{max(lengths)} (max_length {args.max_length}); batch {args.batch}; the tiny model is timed on "
          f"batches cut to its {positions} positions")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    results = {}
    for name, order in orders.items():
        groups = batches(order, args.batch)
        real = sum(lengths[i] for g in groups for i in g)
        padded = sum(max(lengths[i] for i in g) * len(g) for g in groups)
        timed = groups[:args.steps]
        start = time.perf_counter()
        for group in timed:
            width = min(positions, max(lengths[i] for i in group))
            ids = torch.tensor([rows[i][:width] + [pad] * (width - len(rows[i][:width])) for i in group])
            mask = (torch.arange(width)[None, :] < torch.tensor([min(width, lengths[i]) for i in group])[:, None])
            out = model(input_ids=ids, attention_mask=mask.long(), labels=ids.masked_fill(~mask, -100))
            out.loss.backward()
            model.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - start
        results[name] = {"padding_share": 1 - real / padded, "seconds": seconds}
        print(f"{name:8s} padding {1 - real / padded:6.1%} of batch tokens; {len(timed)} forward+backward steps "
              f"in {seconds:.2f} s")
    print(f"grouped / random wall time: {results['grouped']['seconds'] / results['random']['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
