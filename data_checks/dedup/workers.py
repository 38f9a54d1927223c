"""Worker processes: each task is one forked child that inherits the texts and sends back its result.

A child is forked for a batch of texts already in memory (copy-on-write: nothing is pickled to it),
computes, writes its pickled result to a pipe and leaves with `os._exit` (no cleanup of the parent's
runs twice). Forking per batch, rather than keeping a pool fed through pipes, lets the gate sketch
records on the second core while the caller is still reading the records after them, at no cost to
the reading thread: a pool's feeder thread, pickling every text into a pipe, cost that thread a third
of its speed (GIL hand-offs), more than the overlap gained. Linux only (fork; `os._exit` needs no
`__main__` guard); elsewhere, and below MIN_CHARS_FOR_POOL, everything runs in this process. A child
that fails is run again here, so its error is raised with its traceback.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
import sys
import warnings
import weakref
from collections.abc import Callable
from typing import Any

MIN_CHARS_FOR_POOL = 2_000_000  # below this (~1,000 300-word texts) one process is as fast as a pool
PIPE_BYTES = 1 << 20  # a child's result up to this size is written without waiting for the parent to read


def can_fork() -> bool:
    """Linux, and not inside a daemon process (e.g. a multiprocessing pool worker)."""
    return sys.platform.startswith("linux") and not multiprocessing.current_process().daemon


class Forked:
    """`function(*args)` computed in a forked child; `result()` returns it (pickled back through a pipe)."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args, self.parts, self.finished, self.reaped = function, args, [], False, False
        read_end, write_end = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, AttributeError, OSError):
            pass  # the default pipe size: the child waits for `poll` or `result` to read
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads (e.g. tqdm's monitor);
            warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)  # the child
            self.pid = os.fork()  # runs NumPy code only and never touches the parent's locks or files
        if self.pid == 0:
            _child(read_end, write_end, function, args)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self.fd = read_end

    def poll(self) -> bool:
        """Read what the child has written so far, without waiting; True once it has written everything."""
        while not self.finished:
            try:
                data = os.read(self.fd, PIPE_BYTES)
            except BlockingIOError:
                return False
            if not data:
                self.finished = True
            self.parts.append(data)
        return True

    def result(self) -> Any:
        os.set_blocking(self.fd, True)
        self.poll()
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        data = b"".join(self.parts)
        self.parts = []
        if status != 0 or not data:
            return self.function(*self.args)  # the child failed: the same call here raises its error
        return pickle.loads(data)

    def kill(self) -> None:
        """Stop the child (if it has not been collected) and close the pipe."""
        if self.reaped:
            return
        self.reaped = True
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


class _Done:
    """A task computed in this process, with a child's interface."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def poll(self) -> bool:
        return True

    def result(self) -> Any:
        return self.value

    def kill(self) -> None:
        pass


def _child(read_end: int, write_end: int, function: Callable[..., Any], args: tuple) -> None:
    status = 1
    try:
        gc.disable()  # collecting would touch (and so copy) the parent's objects
        _keep_freed_memory()
        os.close(read_end)
        view = memoryview(pickle.dumps(function(*args), protocol=pickle.HIGHEST_PROTOCOL))
        while view:
            view = view[os.write(write_end, view):]
        status = 0
    except BaseException:  # noqa: B036 - whatever happens, the parent reruns the task and raises it
        pass
    finally:
        os._exit(status)


def _keep_freed_memory() -> None:
    """In a child: let glibc's malloc keep freed memory for the next NumPy array instead of returning it to
    the system (arrays over 128 kB are mapped and unmapped one by one otherwise: every page of every
    temporary faults, a fifth of a child's time). The child is short-lived, so nothing is held for long."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc


class Workers:
    """At most `count` forked children at a time, when forking is possible and `count` > 1; `enabled`
    says which. Children still running when the gate ends (an error in the caller) are killed."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.enabled = count > 1 and can_fork()
        self.running: list[Forked | _Done] = []
        weakref.finalize(self, _kill_all, self.running)

    def free(self) -> int:
        """How many more children may start now (finished ones are collected by their owners)."""
        return self.count - sum(1 for task in self.running if not task.poll())

    def fork(self, function: Callable[..., Any], *args: Any) -> Forked | _Done:
        try:
            task: Forked | _Done = Forked(function, *args)
        except OSError:  # no fork now (process limit, memory): compute it here
            task = _Done(function(*args))
        self.running.append(task)
        return task

    def collect(self, task: Forked | _Done) -> Any:
        try:
            return task.result()
        finally:
            self.running.remove(task)

    def run(self, function: Callable[..., Any], parts: list[tuple]) -> list[Any]:
        """`function(*part)` for each part, in order, each part in a child, side by side (all here when not
        enabled or for a single part)."""
        if not self.enabled or len(parts) < 2:
            return [function(*part) for part in parts]
        return [self.collect(task) for task in [self.fork(function, *part) for part in parts]]

    def close(self) -> None:
        _kill_all(self.running)


def _kill_all(tasks: list[Forked | _Done]) -> None:
    for task in tasks:
        task.kill()
    tasks.clear()
