"""`--engine ray`: the Ray cluster the stages' tasks run on. With `RAY_ADDRESS` set, the one it names (a
cluster the user started, e.g. `ray start --head` inside a SLURM allocation); otherwise a local one on this
machine with one CPU per worker, started for the run and stopped after it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager


class RayError(ValueError):
    """Ray is missing, or the cluster cannot be reached."""


@contextmanager
def ray_cluster(workers: int) -> Iterator[None]:
    try:
        import ray
    except ImportError:
        raise RayError("--engine ray needs Ray: pip install 'gatetune[ray]' (or 'ray>=2.40')") from None
    if ray.is_initialized():  # a caller's own cluster (a notebook, a test): used as it is
        yield
        return
    address = os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayError(f"--engine ray: cannot start or reach the Ray cluster"
                       f"{f' at RAY_ADDRESS={address}' if address else ''}: {exc}") from None
    try:
        yield
    finally:
        ray.shutdown()
