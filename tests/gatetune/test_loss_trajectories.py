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


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECORDED["runs"]))
def test_each_recipe_reproduces_its_loss_trajectory(recipe: str, tmp_path: Path, tiny_model_dir: Path):
    from gatetune.run import run

    expected = RECORDED["runs"][recipe]
    result = run(compose(expected["overrides"]), tmp_path)
    key = expected["key"]  # the loss; GRPO's entropy (its loss and reward are 0 this early)
    values = [float(e[key]) for e in result.log_history if key in e and "train_loss" not in e]
    assert len(values) == len(expected["values"]) == 4
    assert values == pytest.approx(expected["values"], rel=RTOL, abs=1e-5)
