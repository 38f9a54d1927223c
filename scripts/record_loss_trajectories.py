"""Record the per-step training loss of a few steps of each recipe on the tiny model (CPU), for
tests/gatetune/test_loss_trajectories.py, which reruns each and compares to tolerance.

    python scripts/record_loss_trajectories.py            # writes tests/data/loss_trajectories.json

Rerun it only when a change is meant to alter the numbers (a new tiny model, a new default), and say
why in the commit. The library versions it ran with are recorded beside the numbers.
"""

from __future__ import annotations

import json
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "tests" / "data" / "loss_trajectories.json"
QUICK = ["logger=none", "checks.run=[template]", "checks.fail_on=[template]", "training.logging_steps=1",
         "training.eval_every_steps=4", "training.max_steps=4"]
# recipe -> (its overrides, the logged value followed). GRPO's loss and reward are 0 for these first steps
# on the random tiny model (one policy update per batch; the sparse keyword reward is 0 for every
# completion), so its trajectory is the policy's entropy over the sampled completions.
RUNS = {
    "lora": ([], "loss"),
    "qlora": (["recipe=qlora"], "loss"),
    "full": (["recipe=full"], "loss"),
    "dpo": (["recipe=dpo"], "loss"),
    "grpo": (["recipe=grpo", "grpo.max_completion_length=16"], "entropy"),
}


def trajectory(overrides: list[str], key: str) -> list[float]:
    """`key` as logged at each training step of `python train.py OVERRIDES` (in this process)."""
    from gatetune.run import run
    from tests.conftest import compose

    with tempfile.TemporaryDirectory() as run_dir:
        result = run(compose(overrides), Path(run_dir))
    return [round(float(e[key]), 6) for e in result.log_history if key in e and "train_loss" not in e]


def main() -> None:
    recorded = {"versions": {p: version(p) for p in ("torch", "transformers", "trl", "peft", "bitsandbytes")},
                "runs": {}}
    for name, (extra, key) in RUNS.items():
        overrides = [*QUICK, *extra]
        recorded["runs"][name] = {"overrides": overrides, "key": key, "values": trajectory(overrides, key)}
        print(name, key, recorded["runs"][name]["values"], flush=True)
    OUT.write_text(json.dumps(recorded, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
