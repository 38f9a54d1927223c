"""`checks.engine=local`: a training run's dedup and PII gates as datatrove stages (gatetune/engine_gates.py). The
gate report equals the one-process report of the same run, check for check (the template gate stays in process,
reading training's rendering), it stops the run before any model loads, and a second start skips every finished
stage."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from tests.conftest import chat, compose, write_jsonl
from tests.data_checks.test_dedup import planted_corpus

pytest.importorskip("datatrove", reason="pip install 'datatrove>=0.10' (a gatetune dependency)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Chats whose answers hold planted near-duplicate pairs and some real-looking PII, and an eval file with
    copies of some training answers (contamination) among fresh ones."""
    texts, _ = planted_corpus(seed=21, per_level=15, singles=250)
    records = [chat(f"Tell me about item {i}.", text) for i, text in enumerate(texts)]
    records[5] = chat("Who do I write to?", "Write to jane.doe@corp-mail.com or call 415-555-0172 after nine.")
    folder = tmp_path_factory.mktemp("engine")
    fresh, _ = planted_corpus(seed=22, per_level=2, singles=30)
    rng = random.Random(2)
    evaluation = [chat("Tell me more.", t) for t in fresh[:30] + rng.sample(texts, 6)]
    return write_jsonl(folder / "train.jsonl", records), write_jsonl(folder / "eval.jsonl", evaluation)


def _gates(files: tuple[Path, Path], run_dir: Path, *overrides: str) -> dict:
    from gatetune.run import run

    train, evaluation = files
    cfg = compose(["logger=none", f"data.path={train}", f"data.eval_path={evaluation}", *overrides])
    result = run(cfg, run_dir)
    assert result.summary["status"] == "failed_gates" and result.model is None  # stopped before the model
    return result.summary["gates"]


def test_the_engine_gives_the_one_process_gate_report_and_resumes_its_stages(files: tuple[Path, Path],
                                                                             tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture):
    one = _gates(files, tmp_path / "one")
    caplog.set_level(logging.INFO, logger="gatetune")
    many = _gates(files, tmp_path / "many", "checks.engine=local", "checks.engine_workers=2")
    assert many["checks"] == one["checks"]  # template (in process), dedup with contamination, pii: every key
    assert not many["passed"] and not one["passed"] and many["against"] == one["against"]
    dedup = many["checks"]["dedup"]
    assert dedup["clusters"] and dedup["contamination"]["contaminated"] == 6
    assert many["checks"]["pii"]["records_with_pii"] >= 1 and many["checks"]["template"]["checked"] == len(
        [line for line in files[0].read_text().splitlines() if line.strip()])
    workdir = tmp_path / "many" / "data_checks_work"
    assert many["engine"] == {"name": "local", "gates": ["dedup", "pii"], "workdir": str(workdir)}
    assert json.loads((workdir / "report.json").read_text())["checks"]["dedup"] == dedup
    plan = json.loads((workdir / "plan.json").read_text())["plan"]
    tasks = len(plan["shards"]) + len(plan["against"]["shards"])  # the train file's shards, then the eval file's
    assert f"1 sketch: {tasks} of {tasks} tasks on local (2 at a time)" in caplog.text
    caplog.clear()
    again = _gates(files, tmp_path / "many", "checks.engine=local", "checks.engine_workers=2")
    assert again["checks"] == one["checks"]
    assert f"1 sketch: all {tasks} tasks finished in an earlier run, skipped" in caplog.text
    assert "7 report: all 1 tasks finished in an earlier run, skipped" in caplog.text
