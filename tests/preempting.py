"""A real signal to this process at a chosen optimizer step: preemption on cue, for the resume tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


class SignalAtStep:
    """Sends this process a real signal at the end of one optimizer step (what SLURM does, but on cue)."""

    def __init__(self, step: int, signum: int) -> None:
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
                if state.global_step == outer.step:
                    os.kill(os.getpid(), outer.signum)

        self.step, self.signum, self.callback = step, signum, Callback()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import gatetune.trainer

        build = gatetune.trainer.build_trainer

        def build_with_signal(*args, **kwargs):  # noqa: ANN002, ANN003
            trainer = build(*args, **kwargs)
            trainer.add_callback(self.callback)
            return trainer

        monkeypatch.setattr(gatetune.trainer, "build_trainer", build_with_signal)


def zero3_preempted_and_resumed(tmp_path: Path, env: dict[str, str], processes: int = 1,
                                overrides: tuple[str, ...] = ()) -> float:
    """`recipe=full_zero3` for 30 steps uninterrupted, then again with SIGUSR1 after its first checkpoint and the
    same command to resume; checks the preempted run and the eval losses, returns the largest weight difference.
    Subprocesses: DeepSpeed leaves a process group and environment variables behind in the process it ran in.
    With several processes, `accelerate launch` starts them and torchrun's agent passes the signal on."""
    from safetensors.torch import load_file

    launch = [sys.executable, str(ROOT / "train.py")] if processes == 1 else [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "train.py")]
    env = {**env, "PET_SIGNALS_TO_HANDLE": "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"}

    def command(run_dir: Path) -> list[str]:
        return [*launch, "recipe=full_zero3", "logger=none", "eval=off", "training.max_steps=30",
                "training.eval_every_steps=10", *overrides, f"hydra.run.dir={run_dir}"]

    baseline, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    done = subprocess.run(command(baseline), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    process = subprocess.Popen(command(interrupted), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (interrupted / "checkpoints" / "checkpoint-10").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGUSR1)
    assert process.wait(timeout=300) == 3
    summary = json.loads((interrupted / "summary.json").read_text())
    step = summary["preempted_at_step"]
    assert summary["status"] == "preempted" and 10 < step < 30
    checkpoint = Path(summary["checkpoint"])
    assert (checkpoint / "latest").read_text().strip() == f"global_step{step}"
    for rank in range(processes):  # every process's shard of the optimizer state
        assert (checkpoint / f"global_step{step}" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").is_file()

    resumed = subprocess.run(command(interrupted), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resuming from {checkpoint}" in resumed.stdout
    want, got = (json.loads((d / "summary.json").read_text())["metrics"]["eval_history"] for d in (baseline,
                                                                                                   interrupted))
    assert [e["eval_loss"] for e in got] == pytest.approx([e["eval_loss"] for e in want], abs=1e-5)
    weights, reference = (load_file(d / "model" / "model.safetensors") for d in (interrupted, baseline))
    return max((weights[k].float() - reference[k].float()).abs().max().item() for k in reference)
