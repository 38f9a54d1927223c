"""Four steps of each recipe on the tiny model reproduce the committed loss trajectory (to tolerance).

The numbers are in tests/data/loss_trajectories.json (scripts/record_loss_trajectories.py wrote them, with
the library versions). A change in how a batch is built, masked, or handed to TRL (or in TRL's loss) moves
them; a change that is meant to move them reruns the script and says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, compose

RECORDED = json.loads((ROOT / "tests" / "data" / "loss_trajectories.json").read_text())
RTOL = 1e-3  # the same code gives the same numbers on one CPU; other CPUs and BLAS builds differ ~1e-6
# QLoRA's 4-bit base goes through bitsandbytes' CPU kernels, which take another path on some CPUs (AVX512-BF16):
# there its first two losses agree to 3e-4 and the next two drift apart, 2.3% by step 4 (7.1316 against the
# recorded 6.9705), the same on every run of one machine. Its first loss is still held to RTOL.
LATER_RTOL = {"qlora": 0.03}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECORDED["runs"]))
def test_each_recipe_reproduces_its_loss_trajectory(recipe: str, tmp_path: Path, tiny_model_dir: Path):
    from gatetune.run import run

    expected = RECORDED["runs"][recipe]
    result = run(compose(expected["overrides"]), tmp_path)
    key = expected["key"]  # the loss; GRPO's entropy (its loss and reward are 0 this early)
    values = [float(e[key]) for e in result.log_history if key in e and "train_loss" not in e]
    assert len(values) == len(expected["values"]) == 4
    assert values[0] == pytest.approx(expected["values"][0], rel=RTOL, abs=1e-5)
    assert values == pytest.approx(expected["values"], rel=LATER_RTOL.get(recipe, RTOL), abs=1e-5)
