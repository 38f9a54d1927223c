"""Preemption and resume on one machine: a signalled run checkpoints and stops, the next run with the same
run directory resumes and ends exactly where an uninterrupted run ends (weights, eval losses, early stop)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, compose
from tests.preempting import SignalAtStep, zero3_preempted_and_resumed

# Early stopping bites at step 50 of 80: evals every 10 steps; the improvement falls below 0.5 at step 40
# (patience counter 1) and again at 50 (counter 2, stop). A signal at step 43 falls between the two, so a
# resume that forgot the counter would train on to step 60.
RUN = ["logger=none", "training.max_steps=80", "training.eval_every_steps=10", "training.early_stopping_patience=2",
       "training.early_stopping_threshold=0.5"]
SIGNAL_AT_STEP = 43


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def _assert_same_result(run_dir: Path, baseline: Path) -> None:
    got, want = (json.loads((d / "summary.json").read_text()) for d in (run_dir, baseline))
    assert got["status"] == want["status"] == "stopped_early"
    assert got["metrics"]["steps"] == want["metrics"]["steps"] == 50
    history = [(e["step"], e["eval_loss"]) for e in got["metrics"]["eval_history"]]
    expected = [(e["step"], e["eval_loss"]) for e in want["metrics"]["eval_history"]]
    assert [s for s, _ in history] == [s for s, _ in expected] == [0, 10, 20, 30, 40, 50]
    assert max(abs(a - b) for (_, a), (_, b) in zip(history, expected, strict=True)) < 1e-6
    weights, reference = _adapter(run_dir), _adapter(baseline)
    assert weights.keys() == reference.keys()
    assert max((weights[k] - reference[k]).abs().max().item() for k in weights) < 1e-6


def _run(run_dir: Path, overrides: list[str] | None = None):  # noqa: ANN202
    from gatetune.run import run

    return run(compose(RUN + (overrides or [])), run_dir)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert _run(run_dir).summary["status"] == "stopped_early"
    return run_dir


def _preempt(run_dir: Path, monkeypatch: pytest.MonkeyPatch, signum: int = signal.SIGUSR1) -> dict:
    with monkeypatch.context() as patch:
        SignalAtStep(SIGNAL_AT_STEP, signum).install(patch)
        summary = _run(run_dir).summary
    assert summary["status"] == "preempted"
    return summary


@pytest.mark.slow
def test_signal_checkpoints_and_resume_matches_uninterrupted(tmp_path: Path, baseline: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    previous = signal.getsignal(signal.SIGUSR1)
    summary = _preempt(tmp_path, monkeypatch)
    # The signal lands after step 43's end-of-step check, so the next boundary (44) saves and stops.
    assert summary["preempted_at_step"] == SIGNAL_AT_STEP + 1
    assert summary["signal"] == "SIGUSR1"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "preempted"
    checkpoint = Path(summary["checkpoint"])
    assert checkpoint == tmp_path / "checkpoints" / "checkpoint-44"
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                 "trainer_state.json", "checkpoint_manifest.json"):
        assert (checkpoint / name).is_file(), name
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"] == 1
    assert not (tmp_path / "adapter").exists()  # nothing exported from an interrupted run
    assert signal.getsignal(signal.SIGUSR1) == previous  # handlers are the trainer's only while it trains

    resumed = _run(tmp_path).summary
    assert resumed["resumed_from"] == str(checkpoint)
    _assert_same_result(tmp_path, baseline)
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp-")]


def _truncate(path: Path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "adapter_model.safetensors has"


def _flip_a_byte(path: Path) -> str:
    """The same size, one byte changed in the tensor data: a bad disk block, or a file overwritten in place."""
    data = bytearray(path.read_bytes())
    data[len(data) - 10] ^= 0xFF
    path.write_bytes(bytes(data))
    return "adapter_model.safetensors is corrupted (CRC32"


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte], ids=["truncated", "overwritten"])
def test_a_damaged_checkpoint_is_skipped_for_the_previous_complete_one(tmp_path: Path, baseline: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture,
                                                                       damage: Callable[[Path], str]):
    summary = _preempt(tmp_path, monkeypatch, signal.SIGTERM)
    assert summary["signal"] == "SIGTERM"
    reason = damage(Path(summary["checkpoint"]) / "adapter_model.safetensors")

    with caplog.at_level(logging.WARNING, logger="gatetune.checkpoints"):
        resumed = _run(tmp_path).summary
    assert "skipping incomplete checkpoint" in caplog.text and reason in caplog.text
    assert resumed["resumed_from"] == str(tmp_path / "checkpoints" / "checkpoint-40")
    _assert_same_result(tmp_path, baseline)


@pytest.mark.slow
def test_sigterm_to_the_cli_then_the_same_command_resumes(tmp_path: Path, baseline: Path):
    """Test 3: a real `python train.py` stopped by SIGTERM mid-run; rerunning the same command finishes it."""
    command = [sys.executable, str(ROOT / "train.py"), *RUN, f"hydra.run.dir={tmp_path}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / "checkpoints" / "checkpoint-10").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 3, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "preempted" and summary["signal"] == "SIGTERM"
    assert summary["preempted_at_step"] < 50
    assert "the same command resumes from it" in output

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"resuming from {summary['checkpoint']}" in rerun.stdout
    _assert_same_result(tmp_path, baseline)
    assert "resuming from" in (tmp_path / "train.log").read_text()


@pytest.mark.slow
def test_a_finished_run_is_not_trained_again(baseline: Path, caplog: pytest.LogCaptureFixture):
    before = (baseline / "summary.json").read_text()
    mtime = (baseline / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="gatetune.run"):
        summary = _run(baseline).summary
    assert "already holds a finished run" in caplog.text
    assert summary == json.loads(before)
    assert (baseline / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_resume_never_and_resume_path(tmp_path: Path, baseline: Path, monkeypatch: pytest.MonkeyPatch):
    from gatetune.errors import ConfigError

    _preempt(tmp_path, monkeypatch)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-40", "checkpoint-44"]
    changed = [f"resume.checkpoint={tmp_path / 'checkpoints' / 'checkpoint-40'}",
               "training.early_stopping_patience=9", "training.max_steps=42"]
    # Other training settings than the checkpoint's: refused, naming each, before anything is changed on disk.
    with pytest.raises(ConfigError, match=r"resume: .*training\.early_stopping_patience: 2 -> 9; training\.max_steps: "
                                          r"80 -> 42\. .*resume\.allow_changes=true"):
        _run(tmp_path, changed)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-40", "checkpoint-44"]
    resumed = _run(tmp_path, [*changed, "resume.allow_changes=true"]).summary
    assert resumed["resumed_from"].endswith("checkpoint-40") and resumed["metrics"]["steps"] == 42
    assert resumed["resumed_with_changes"] == ["training.early_stopping_patience: 2 -> 9",
                                               "training.max_steps: 80 -> 42"]
    # checkpoint-44 came from the abandoned continuation: gone, so that resume=auto cannot take it later
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-40", "checkpoint-42"]

    fresh = _run(tmp_path, ["resume=never", "training.max_steps=5"]).summary
    assert fresh["resumed_from"] is None and fresh["metrics"]["steps"] == 5
    assert fresh["metrics"]["eval_history"][0]["step"] == 0  # evaluated at its start: a new run
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-5"]

    other = tmp_path.parent / f"{tmp_path.name}-elsewhere"

    (other / "broken").mkdir(parents=True)
    with pytest.raises(ConfigError, match="resume.checkpoint: .*not a complete checkpoint: no checkpoint_manifest"):
        _run(other, [f"resume.checkpoint={other / 'broken'}"])
    with pytest.raises(ConfigError, match="resume.checkpoint: .*is not a directory"):
        _run(other, ["resume.checkpoint=nowhere/checkpoint-3"])


def test_checkpoint_completeness_rules(tmp_path: Path):
    from gatetune.atomic_dirs import publish_directory as publish
    from gatetune.checkpoints import incomplete_reason, latest_complete, write_manifest

    def checkpoint(step: int) -> Path:
        staging = tmp_path / "checkpoints" / f".tmp-checkpoint-{step}"
        staging.mkdir(parents=True)
        (staging / "trainer_state.json").write_text("{}")
        (staging / "model.safetensors").write_bytes(b"x" * 100)
        write_manifest(staging, step)
        final = tmp_path / "checkpoints" / f"checkpoint-{step}"
        publish(staging, final)
        return final

    first, second = checkpoint(5), checkpoint(10)
    assert incomplete_reason(first) is None and latest_complete(tmp_path) == second
    (second / "model.safetensors").unlink()
    assert incomplete_reason(second) == "model.safetensors is missing"
    assert latest_complete(tmp_path) == first
    (first / "model.safetensors").write_bytes(b"x" * 99)
    assert incomplete_reason(first) == "model.safetensors has 99 bytes, 100 were written"
    assert latest_complete(tmp_path) is None
    (tmp_path / "checkpoints" / "checkpoint-20").mkdir()  # e.g. copied in by hand, without its manifest
    assert incomplete_reason(tmp_path / "checkpoints" / "checkpoint-20").startswith("no checkpoint_manifest.json")
    (first / "model.safetensors").write_bytes(b"y" * 100)  # the same size, other bytes
    assert incomplete_reason(first) == "model.safetensors is corrupted (CRC32 27deaa1a, 5e0e5d8f was written)"
    assert incomplete_reason(first, "sizes") is None  # resume.verify=sizes does not read the files
    manifest = json.loads((first / "checkpoint_manifest.json").read_text())
    del manifest["crc32"]  # a manifest written before checksums were recorded: sizes decide
    (first / "checkpoint_manifest.json").write_text(json.dumps(manifest))
    assert incomplete_reason(first) is None
    again = checkpoint(10)  # saving a step again replaces the old directory whole
    assert incomplete_reason(again) is None and latest_complete(tmp_path) == tmp_path / "checkpoints" / "checkpoint-10"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-10", "checkpoint-20",
                                                                           "checkpoint-5"]


@pytest.mark.slow
def test_deepspeed_zero3_full_fine_tune_resumes_to_the_same_model(tmp_path: Path, tiny_model_dir: Path):
    """The DeepSpeed checkpoint (sharded optimizer state in global_stepN/) goes through the same atomic save.
    (scripts/gpu_check.sh runs the same over NCCL: tests/gatetune/test_gpu.py.)"""
    difference = zero3_preempted_and_resumed(tmp_path, {**os.environ, "DS_ACCELERATOR": "cpu"})
    assert difference < 1e-6


def _signal_after(monkeypatch: pytest.MonkeyPatch, name: str, signum: int = signal.SIGUSR1) -> None:
    """Make gatetune.run's `name` send this process a real signal once it has done its work."""
    import gatetune.run as run_module

    original = getattr(run_module, name)

    def with_signal(*args, **kwargs):  # noqa: ANN002, ANN003
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signum)
        return result

    monkeypatch.setattr(run_module, name, with_signal)


def test_a_signal_during_the_gates_stops_cleanly_before_the_model_loads(tmp_path: Path, tiny_model_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    """SIGUSR1's default action kills the process; before training the run records it and stops where it is clean
    (here after the gates, one process: no rank waits for it), with the summary the SLURM job requeues on."""
    import gatetune.run as run_module

    previous = signal.getsignal(signal.SIGUSR1)
    _signal_after(monkeypatch, "_run_gates")
    monkeypatch.setattr(run_module, "load_model", lambda *a, **k: pytest.fail("the model loaded after the signal"))
    summary = _run(tmp_path).summary
    assert (summary["status"], summary["signal"], summary["stopped_before_training"]) == ("preempted", "SIGUSR1", True)
    assert summary["gates"]["passed"] and summary["checkpoint"] is None
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "preempted"
    assert not (tmp_path / "checkpoints").exists()
    assert signal.getsignal(signal.SIGUSR1) == previous  # the run's handler is gone once it returns


@pytest.mark.slow
def test_a_signal_while_the_model_loads_stops_before_the_first_step_and_the_next_start_trains(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from gatetune.cli import _print_summary

    with monkeypatch.context() as patch:
        _signal_after(patch, "load_model", signal.SIGTERM)  # after the rows check: caught once the trainer is built
        summary = _run(tmp_path, ["training.max_steps=3"]).summary
    assert (summary["status"], summary["signal"], summary.get("metrics")) == ("preempted", "SIGTERM", None)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
    _print_summary(summary)  # the CLI's lines for it (no step, no checkpoint) do not fail
    again = _run(tmp_path, ["training.max_steps=3"]).summary
    assert again["status"] == "completed" and again["metrics"]["steps"] == 3 and again["resumed_from"] is None


def test_a_resume_is_compared_with_the_training_settings_its_checkpoint_recorded(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    from gatetune.errors import ConfigError
    from gatetune.resume_check import check_resume, training_record, write_record
    from tests.conftest import chat, typed, write_jsonl

    data = write_jsonl(tmp_path / "chats.jsonl", [chat(f"Q{i}?", f"A{i}.") for i in range(20)])
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "chats.jsonl").write_bytes(data.read_bytes())
    checkpoint = tmp_path / "checkpoint-10"
    checkpoint.mkdir()
    write_record(checkpoint, training_record(typed([f"data.path={data}"])))

    def changes(*overrides: str) -> list[str]:
        return check_resume(checkpoint, training_record(typed([f"data.path={data}", *overrides])), True)

    # Moved data with the same bytes, logging, gates, evaluation, export and SLURM settings do not alter training.
    assert check_resume(checkpoint, training_record(typed([f"data.path={moved / 'chats.jsonl'}"])), False) == []
    assert changes("logger=none", "checks=off", "export.merge=true", "slurm=local", "data.tokenize_processes=1") == []
    assert changes("training.learning_rate=1e-3") == ["training.learning_rate: 0.0002 -> 0.001"]
    assert changes("lora.rank=4") == ["lora.rank: null -> 4"]
    assert {"recipe.adaptation", "recipe.name"} <= {c.split(":")[0] for c in changes("recipe=full")}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert changes() == ["processes: 1 -> 2"]  # the batch layout over the processes
    monkeypatch.delenv("WORLD_SIZE")
    with data.open("a") as f:
        f.write('{"messages": [{"role": "user", "content": "new"}, {"role": "assistant", "content": "row"}]}\n')
    with pytest.raises(ConfigError, match=r"^resume: .*data\.sha256: \"[0-9a-f]{10}.*Set them back, start over"):
        check_resume(checkpoint, training_record(typed([f"data.path={data}"])), False)
    (checkpoint / "gatetune_training.json").unlink()  # a checkpoint of an earlier version: not compared
    assert check_resume(checkpoint, training_record(typed([f"data.path={data}", "lora.rank=2"])), False) == []


@pytest.fixture()
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A 64 MB tmpfs mounted for the test (root only), unmounted after it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount (a small tmpfs to fill)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint_as_the_resume_point(
        small_disk: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from transformers import TrainerCallback

    import gatetune.trainer
    from gatetune.checkpoints import CheckpointWriteError, incomplete_reason

    filler = small_disk / "filler"

    class FillDiskAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            if state.global_step == 10:
                free = os.statvfs(small_disk)
                with filler.open("wb") as f:  # leave 32 KB: less than the next checkpoint needs
                    f.truncate(0)
                    f.write(b"\0" * (free.f_bavail * free.f_frsize - 32 * 1024))

    build = gatetune.trainer.build_trainer
    monkeypatch.setattr(gatetune.trainer, "build_trainer",
                        lambda *a, **k: (t := build(*a, **k), t.add_callback(FillDiskAfterFirstSave()))[0])
    run_dir = small_disk / "run"
    overrides = ["training.max_steps=25", "training.early_stopping_patience=9"]
    with pytest.raises(CheckpointWriteError, match=r"checkpoint-20 could not be written \(.*No space left on device"
                                                   r".*\): the partial checkpoint is discarded and checkpoint-10 "
                                                   r"stays"):
        _run(run_dir, overrides)
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-10"]  # no staging leftover
    assert incomplete_reason(checkpoints / "checkpoint-10") is None
    monkeypatch.undo()
    filler.unlink()  # space again: the same command resumes from checkpoint-10 and finishes
    summary = _run(run_dir, overrides).summary
    assert summary["resumed_from"].endswith("checkpoint-10") and summary["metrics"]["steps"] == 25


# Two epochs of 9 steps (144 training records, 16 a step): a resume at the epoch boundary or one step past it
# must start epoch 2 at the right batch, in the uninterrupted run's order; a skipped or repeated batch or epoch
# changes the weights.
EPOCHS = ["logger=none", "data.max_examples=160", "data.eval_fraction=0.1", "training.epochs=2",
          "training.eval_every_steps=9", "training.early_stopping_patience=9"]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    from gatetune.run import run

    run_dir = tmp_path_factory.mktemp("two-epochs")
    summary = run(compose(EPOCHS), run_dir).summary
    assert summary["status"] == "completed" and summary["metrics"]["steps"] == 18
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("step", [9, 10], ids=["at-the-epoch-boundary", "one-step-into-epoch-2"])
def test_a_resume_across_the_epoch_boundary_trains_each_epoch_once_in_order(step: int, two_epochs: Path,
                                                                              tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    from gatetune.run import run

    with monkeypatch.context() as patch:
        SignalAtStep(step - 1, signal.SIGUSR1).install(patch)  # seen at the end of the next step
        stopped = run(compose(EPOCHS), tmp_path).summary
    assert (stopped["status"], stopped["preempted_at_step"]) == ("preempted", step)
    resumed = run(compose(EPOCHS), tmp_path).summary
    assert resumed["status"] == "completed" and resumed["metrics"]["steps"] == 18
    want = json.loads((two_epochs / "summary.json").read_text())["metrics"]["eval_history"]
    assert [e["step"] for e in resumed["metrics"]["eval_history"]] == [e["step"] for e in want] == [0, 9, 18]
    assert max(abs(a["eval_loss"] - b["eval_loss"]) for a, b in
               zip(resumed["metrics"]["eval_history"], want, strict=True)) < 1e-6
    weights, reference = _adapter(tmp_path), _adapter(two_epochs)
    assert max((weights[k] - reference[k]).abs().max().item() for k in weights) < 1e-6
