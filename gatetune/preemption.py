"""Stop cleanly when the scheduler says so: SIGUSR1 (SLURM's warning before the time limit, sent by
`--signal=B:USR1@120` and forwarded by gatetune/slurm/train.sbatch) or SIGTERM (preemption, `scancel`, a
container stopping).

The signal handler only records the signal. At the next optimizer-step boundary every process
agrees to stop (one all-reduce of a flag, so all ranks stop at the same step even if the signal
reached only some of them), the trainer saves a complete checkpoint and the training loop ends. The
run then writes `status: "preempted"` into summary.json and train.py exits with status 3
(gatetune.cli.EXIT_PREEMPTED); run again
with the same run directory and it resumes from that checkpoint.

GRPO trains several steps on one generation batch when TRL's `steps_per_generation` (or `num_iterations`)
spans more than one optimizer step; a checkpoint does not keep those buffered completions, so the stop waits
for the end of the batch (`stop_every`, from gatetune.batching.steps_between_generations): the resumed run
generates afresh exactly where the uninterrupted one does.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from transformers import TrainerCallback

from gatetune.signals import SIGNALS, any_process_signalled, pending


class PreemptionCallback(TrainerCallback):
    """Installs the SIGUSR1/SIGTERM handlers for the length of `trainer.train()`."""

    def __init__(self, stop_every: int = 1) -> None:
        self.stop_every = stop_every  # stop only at a global step that is a multiple of this
        self.received: int | None = None  # the signal number, once one arrived in this process
        self.preempted_at_step: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def preempted(self) -> bool:
        return self.preempted_at_step is not None

    def _handle(self, signum: int, frame: Any) -> None:
        # Runs between two bytecodes of the main thread: record and return, no logging (it takes locks).
        self.received = signum
        os.write(2, f"[gatetune] got {signal.Signals(signum).name}: checkpointing at the next step, then "
                    f"stopping\n".encode())

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.received = self.received or pending()  # one that came after the run's last look (gatetune/signals.py)
        if threading.current_thread() is not threading.main_thread():
            return  # Python only delivers signals to the main thread
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._any_process_signalled(args) or state.global_step % self.stop_every:
            return
        self.preempted_at_step = state.global_step
        control.should_save = True
        control.should_training_stop = True
        # The best weights are loaded at the end of a finished run, not of an interrupted one.
        args.load_best_model_at_end = False

    def _any_process_signalled(self, args: Any) -> bool:
        return any_process_signalled(self.received is not None, args.device)

