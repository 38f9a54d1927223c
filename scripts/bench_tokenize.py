"""Tokenising SFT data at scale: the Arrow pipeline (gatetune/tokenized.py) vs the previous path, one Python
loop into lists of lists.

    python scripts/bench_tokenize.py [--records 1000000] [--baseline-records 1000000] [--processes 2]
                                     [--modes previous,arrow,cached]

Records are synthetic chats (seeded): a system prompt on a third of them, one to three user/assistant
exchanges, answers of log-normal length (median about 60 words). They are rendered with the tiny model's chat
template and tokenised with its tokenizer, answer masks included, exactly as a run does. Each measurement runs
in a fresh child process (one at a time), after the records are built, and reports records/s and the peak
memory of its whole process tree above its size before tokenising: the child's resident set plus the pages
each of its worker processes holds alone (USS: what a forked worker allocated or copied from the parent),
sampled every 20 ms:

- `previous`: the path the project had before (tokenize_example per record, rows kept as Python lists, every
  rendering through `apply_chat_template` and every piece through `tokenizer(...)`: `PreviousTemplate`);
- `arrow`: tokenized_split without the cache, over `--processes` spawned workers, rows streamed to an Arrow file;
- `arrow-fork`: the same with forked workers (`gatetune.tokenized.START_METHOD = "fork"`), which inherit the
  parent's heap, records and all;
- `cached`: the same call a second time with the cache on (the first call fills it, untimed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
WORDS = ("a the of to and in is for on with as by at from that this it be are was or an not which can you your "
         "model data answer question example number value result first second step then each more most only "
         "other such into over after before because while where when how what why who").split()


def synthetic_chats(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)

    def text(median_words: float) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(max(1, int(rng.lognormvariate(0, 0.8) * median_words))))

    records = []
    for _ in range(n):
        messages = [{"role": "system", "content": text(12)}] if rng.random() < 0.33 else []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            messages += [{"role": "user", "content": text(20)}, {"role": "assistant", "content": text(60)}]
        records.append({"messages": messages})
    return records


def previous_template(tokenizer):
    """ChatTemplate as it was before its shortcuts: apply_chat_template for every rendering, one tokenizer call per
    piece, and every later prompt tokenised whole and compared with the pieces before it."""
    from data_checks.chat_template import ChatTemplate, EncodedExample

    class PreviousTemplate(ChatTemplate):
        def _render_compiled(self, messages, add_generation_prompt):
            return None

        def token_ids(self, texts):
            return [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]

        def _tokenize_chain(self, chain):
            texts, done = [], ""
            for k, turn in enumerate(chain):
                texts += [turn.prompt[len(done):], turn.answer] + ([turn.prompt] if k else [])
                done = turn.prompt + turn.answer
            pieces = iter(self.token_ids(texts))
            ids, mask = [], []
            for k in range(len(chain)):
                prompt_ids, answer_ids = next(pieces), next(pieces)
                ids += prompt_ids
                if k and next(pieces) != ids:
                    return None
                ids += answer_ids
                mask += [0] * len(prompt_ids) + [1] * len(answer_ids)
            return EncodedExample(ids, mask)

    return PreviousTemplate(tokenizer, {})


def measure(mode: str, records: int, processes: int) -> dict:
    from bench_throughput import PeakRss

    from data_checks import LoadedData
    from data_checks.chat_template import ChatTemplate
    from gatetune import tokenized
    from gatetune.data import to_example, tokenize_example
    from gatetune.tiny_model import build_tokenizer
    from gatetune.tokenized import tokenized_split

    if mode == "arrow-fork":
        tokenized.START_METHOD = "fork"
    chat = previous_template(build_tokenizer()) if mode == "previous" else ChatTemplate(build_tokenizer(), {})
    data = LoadedData("synthetic.jsonl", synthetic_chats(records), list(range(1, records + 1)), "jsonl")
    if mode == "cached":
        os.environ["GATETUNE_CACHE"] = tempfile.mkdtemp(prefix="bench-tokenize-")
        tokenized_split(data, "chat", chat, 1024, "answers", "train", cache=True, processes=processes)
    memory = PeakRss(children=True, every=0.02)
    started = time.perf_counter()
    if mode == "previous":
        rows = []
        for record in data.records:
            for row in tokenize_example(to_example(record, "chat"), chat, 1024, "answers"):
                row.pop("truncated")
                if any(row["assistant_masks"]):
                    rows.append(row)
        examples = len(rows)
    else:
        rows, stats, _ = tokenized_split(data, "chat", chat, 1024, "answers", "train", cache=mode == "cached",
                                      processes=processes)
        examples = len(rows)
    seconds = time.perf_counter() - started
    return {"mode": mode, "records": records, "examples": examples, "seconds": seconds,
            "records_per_second": records / seconds, "memory_growth_mb": memory.stop()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--baseline-records", type=int, default=None, help="records for `previous` (default: same)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--modes", default="previous,arrow,cached", help="which paths to measure (previous first)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args.records, args.processes)))
        return 0
    results = {}
    modes = args.modes.split(",")
    if modes[0] != "previous":
        parser.error("--modes starts with previous: the ratios are against it")
    for mode, n in [(m, args.baseline_records or args.records if m == "previous" else args.records) for m in modes]:
        done = subprocess.run([sys.executable, __file__, "--child", mode, "--records", str(n), "--processes",
                               str(args.processes)], capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            return 1
        r = results[mode] = json.loads(line[len("RESULT "):])
        if len(results) == 1:
            print(f"synthetic chats, tiny tokenizer, max_length 1024; {args.processes} processes; "
                  f"{os.cpu_count()} cores")
            print(f"{'path':10s} {'records':>9s} {'examples':>9s} {'seconds':>8s} {'records/s':>10s} "
                  f"{'vs previous':>11s} {'memory growth MB':>16s}")
        ratio = r["records_per_second"] / results["previous"]["records_per_second"]
        print(f"{mode:10s} {r['records']:9d} {r['examples']:9d} {r['seconds']:8.1f} {r['records_per_second']:10.0f} "
              f"{ratio:10.2f}x {r['memory_growth_mb']:16.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
