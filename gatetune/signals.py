"""SIGUSR1/SIGTERM before training starts: while the data is read, gated and tokenised and the model loads.

`EarlySignals` records such a signal instead of letting it kill the process (SIGUSR1's default action), for the
length of `gatetune.run.run`. The run looks at it where stopping is clean: after the gates and the rows (one
process only: no other rank can be waiting for it) and once the trainer is built (all ranks agree, one
all-reduce), and then ends with `status: "preempted"`, a summary and exit status 3, which the SLURM job reads
to requeue on SIGUSR1. A signal that comes later is the trainer's (`gatetune.preemption.PreemptionCallback`
installs its own handlers for `trainer.train()` and takes over one that arrived in between, `pending()`).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
_received: list[int] = []  # signals recorded by EarlySignals' handler in this process, oldest first


def pending() -> int | None:
    """The first signal recorded before training started, if one was."""
    return _received[0] if _received else None


def _record(signum: int, frame: Any) -> None:
    # Runs between two bytecodes of the main thread: record and return, no logging (it takes locks).
    _received.append(signum)
    os.write(2, f"[gatetune] got {signal.Signals(signum).name} before training started: stopping before it "
                "does\n".encode())


class EarlySignals:
    """Record SIGUSR1/SIGTERM (main thread only: elsewhere Python delivers no signals) and restore the previous
    handlers on exit."""

    def __enter__(self) -> EarlySignals:
        _received.clear()
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, _record) for sig in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        _received.clear()


def single_process() -> bool:
    """No other rank of a launch waits for this one (WORLD_SIZE unset or 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) <= 1


def any_process_signalled(flag: bool, device: Any = "cpu") -> bool:
    """`flag` of every process of the launch, OR-ed (one all-reduce when a process group of several is up)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    import torch

    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
