"""A bounded load test of an OpenAI-compatible endpoint: time to first token, end-to-end latency, output
tokens/s, error rate and cost per 1k tokens, in the progress-tracking shape the brief asks for
(`inference_latency_p95_ms`, `throughput_tokens_per_sec`, `cost_per_1k_tokens_usd`).

Closed loop by default (`concurrency` requests in flight until `requests` are done); with `peak_rps` an open
loop at twice that peak (the brief: load test at 2x expected peak), still capped at `concurrency` in flight.
Bounded in requests and in seconds. Only loopback addresses unless `allow_remote`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from gatetune.serving.plan import ServeError

DEFAULT_PROMPTS = ["Say hello.", "Write frog in capital letters.", "Translate house into French.",
                   "Name a colour.", "Count from one to five.", "What is two plus two?",
                   "Spell cat backwards.", "Give me a word that rhymes with tree."]


def require_loopback(url: str, allow_remote: bool) -> None:
    """Refuse an endpoint that is not this machine, unless `allow_remote`."""
    host = urlparse(url).hostname
    if not host:
        raise ServeError(f"--url {url!r}: no host in it (e.g. http://127.0.0.1:8000)")
    if allow_remote:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise ServeError(f"--url {url!r}: cannot resolve {host}: {exc}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ServeError(f"--url {url!r} is not on this machine ({', '.join(sorted(addresses))}); a load test sends "
                         f"real traffic: pass --allow-remote to test a remote server")


def read_prompts(path: Optional[Path]) -> list[list[dict[str, str]]]:
    """Chat prompts from a JSONL file (`messages` without the last answer, `prompt`, `instruction`, or a
    plain line of text per prompt), or a small built-in set."""
    if path is None:
        return [[{"role": "user", "content": p}] for p in DEFAULT_PROMPTS]
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = line
        if isinstance(record, str):
            prompts.append([{"role": "user", "content": record}])
        elif isinstance(record, dict) and isinstance(record.get("messages"), list):
            messages = list(record["messages"])
            while messages and messages[-1].get("role") == "assistant":
                messages.pop()
            prompts.append(messages)
        elif isinstance(record, dict) and isinstance(record.get("prompt") or record.get("instruction"), str):
            prompts.append([{"role": "user", "content": record.get("prompt") or record["instruction"]}])
        else:
            raise ServeError(f"{path}:{number}: no prompt in it (messages, prompt, instruction, or plain text)")
    if not prompts:
        raise ServeError(f"{path}: no prompts")
    return prompts


@dataclass
class Outcome:
    ok: bool
    ttft: Optional[float]  # seconds to the first content token
    latency: float  # seconds, request to last token
    tokens: int  # output tokens (the server's usage count when it sends one)
    error: str = ""


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def _one(client: Any, model: str, messages: list[dict[str, str]], max_tokens: int) -> Outcome:
    start = time.perf_counter()
    first: Optional[float] = None
    chunks = tokens = 0
    try:
        stream = await client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                      temperature=0, stream=True,
                                                      stream_options={"include_usage": True})
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                chunks += 1
                if first is None:
                    first = time.perf_counter() - start
            if getattr(chunk, "usage", None) is not None:
                tokens = chunk.usage.completion_tokens
        return Outcome(True, first, time.perf_counter() - start, tokens or chunks)
    except Exception as exc:  # an error reply or a broken connection is a measured outcome
        return Outcome(False, None, time.perf_counter() - start, 0, f"{type(exc).__name__}: {exc}"[:300])


async def _run(url: str, model: str, prompts: list[list[dict[str, str]]], concurrency: int, requests: int,
               max_tokens: int, rate: Optional[float], max_seconds: float) -> tuple[list[Outcome], float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url.rstrip('/')}/v1", api_key="EMPTY", timeout=max_seconds, max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()

    async def one(i: int) -> Optional[Outcome]:
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        if time.perf_counter() - start > max_seconds:
            return None  # past the time bound: not sent
        async with gate:
            return await _one(client, model, prompts[i % len(prompts)], max_tokens)

    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(requests))), max_seconds + 60)
    finally:
        await client.close()
    return [o for o in outcomes if o is not None], time.perf_counter() - start


def load_test(url: str, model: str, concurrency: int = 4, requests: int = 32, prompts: Optional[Path] = None,
              max_tokens: int = 64, peak_rps: Optional[float] = None, gpu_hour_usd: Optional[float] = None,
              max_seconds: float = 300, allow_remote: bool = False) -> dict[str, Any]:
    """Run the load test; its figures (see the module docstring)."""
    require_loopback(url, allow_remote)
    if concurrency < 1 or requests < 1:
        raise ServeError("--concurrency and --requests must be at least 1")
    rate = 2 * peak_rps if peak_rps else None
    outcomes, wall = asyncio.run(_run(url, model, read_prompts(prompts), concurrency, requests, max_tokens, rate,
                                      max_seconds))
    done = [o for o in outcomes if o.ok]
    latencies = [o.latency * 1000 for o in done]
    ttfts = [o.ttft * 1000 for o in done if o.ttft is not None]
    tokens = sum(o.tokens for o in done)
    throughput = tokens / wall if wall > 0 else 0.0
    cost = gpu_hour_usd / 3600 * wall / (tokens / 1000) if gpu_hour_usd is not None and tokens else None

    def spread(values: list[float]) -> dict[str, Optional[float]]:
        return {f"p{q}": percentile(values, q) for q in (50, 95, 99)} | {
            "mean": sum(values) / len(values) if values else None, "max": max(values) if values else None}

    return {
        "url": url, "model": model, "concurrency": concurrency, "requests": requests, "sent": len(outcomes),
        "completed": len(done), "errors": len(outcomes) - len(done),
        "error_rate": (len(outcomes) - len(done)) / len(outcomes) if outcomes else 0.0,
        "first_errors": [o.error for o in outcomes if not o.ok][:5],
        "target_rps": rate, "achieved_rps": len(outcomes) / wall if wall else 0.0, "wall_seconds": wall,
        "max_tokens": max_tokens, "output_tokens": tokens, "ttft_ms": spread(ttfts), "latency_ms": spread(latencies),
        "inference_latency_p95_ms": percentile(latencies, 95), "throughput_tokens_per_sec": throughput,
        "cost_per_1k_tokens_usd": cost, "gpu_hour_usd": gpu_hour_usd,
        "latencies_ms": latencies, "ttfts_ms": ttfts,
    }


def plot_latencies(result: dict[str, Any], out: Path) -> Path:
    """Histogram of end-to-end latency and time to first token."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = max(5, min(40, len(result["latencies_ms"]) // 2))
    if result["latencies_ms"]:
        ax.hist(result["latencies_ms"], bins=bins, alpha=0.7, label="end-to-end latency")
    if result["ttfts_ms"]:
        ax.hist(result["ttfts_ms"], bins=bins, alpha=0.7, label="time to first token")
    p95 = result["inference_latency_p95_ms"]
    if p95 is not None:
        ax.axvline(p95, color="black", linestyle="--", linewidth=1, label=f"latency p95 {p95:.0f} ms")
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("requests")
    ax.set_title(f"{result['completed']} requests, concurrency {result['concurrency']}"
                 + (f", {result['target_rps']:g} rps target" if result["target_rps"] else ""))
    ax.legend()
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
