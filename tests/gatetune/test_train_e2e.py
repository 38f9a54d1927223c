"""End-to-end runs of `python train.py` on the embedded tiny model, on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, chat, compose, run_cli, write_jsonl

FAST = ["logger=none", "training.max_steps=4", "training.eval_every_steps=2"]
PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, object]:
    """The README's demo exactly (`python train.py`), with the logger off to keep the test offline-quiet."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    result = run_cli(["logger=none", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir, result


@pytest.mark.slow
def test_demo_learns_and_reports(demo_run: tuple[Path, object]):
    run_dir, _ = demo_run
    summary = _summary(run_dir)
    assert summary["status"] == "completed"
    assert (summary["recipe"], summary["model"]) == ("lora", "tiny-llama")
    m = summary["metrics"]
    for key in ("eval_loss_initial", "eval_loss_best", "train_tokens_per_second", "peak_memory_mb", "steps",
                "wall_seconds"):
        assert isinstance(m[key], (int, float)) and m[key] > 0, key
    # The tiny model visibly learns the sample: the README states this margin.
    assert m["eval_loss_best"] < m["eval_loss_initial"] - 2.0
    history = [e["eval_loss"] for e in m["eval_history"]]
    assert m["eval_loss_initial"] == history[0] and m["eval_loss_best"] == min(history)
    assert m["eval_history"][0]["step"] == 0  # measured before the first optimizer step
    assert m["steps"] == 225  # 720 train examples / 16 per step x 5 epochs
    assert summary["data"]["train_examples"] == 720 and summary["data"]["eval_examples"] == 80
    assert summary["gates"]["passed"] and Path(summary["gates"]["report_path"]).is_file()


@pytest.mark.slow
def test_demo_writes_run_directory(demo_run: tuple[Path, object]):
    run_dir, result = demo_run
    for name in (".hydra/config.yaml", "train.log", "loss.png", "summary.json", "data_checks.json",
                 "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/tokenizer.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((run_dir / "checkpoints").glob("checkpoint-*"))
    log_text = (run_dir / "train.log").read_text()
    assert "status: completed" in log_text and "LoRA rank 64, alpha 128" in log_text
    tokenizer_config = json.loads((run_dir / "adapter/tokenizer_config.json").read_text())
    has_template = (run_dir / "adapter/chat_template.jinja").is_file() or "chat_template" in tokenizer_config
    assert has_template, "the exported tokenizer lost its chat template"
    adapter_config = json.loads((run_dir / "adapter/adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (64, 128)
    assert set(adapter_config["target_modules"]) == PROJECTIONS
    assert adapter_config["bias"] == "none"
    summary = _summary(run_dir)
    assert adapter_config["base_model_name_or_path"] == summary["base_model"]
    command = summary["export"]["vllm_command"]
    assert command == (f"vllm serve {summary['base_model']} --enable-lora --lora-modules "
                       f"lora={run_dir.resolve() / 'adapter'} --max-lora-rank 64 --max-model-len 256")
    assert command in result.stdout  # the human summary prints it


@pytest.mark.slow
def test_greedy_generation_stops_at_end_of_turn(demo_run: tuple[Path, object]):
    """The exported generation_config makes generation stop at the chat template's end-of-turn token."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    run_dir, _ = demo_run
    adapter = run_dir / "adapter"
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    generation = GenerationConfig.from_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(_summary(run_dir)["base_model"])
    model = PeftModel.from_pretrained(base, adapter).eval()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What colour is grass?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    max_new = 40
    with torch.no_grad():
        out = model.generate(**prompt, generation_config=generation, max_new_tokens=max_new, do_sample=False)
    new_tokens = out[0, prompt["input_ids"].shape[1]:].tolist()
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn in generation.eos_token_id
    assert new_tokens[-1] == end_of_turn and len(new_tokens) < max_new, tokenizer.decode(new_tokens)


@pytest.mark.slow
def test_adapter_reloads_and_reproduces_logits(tmp_path: Path, tiny_model_dir: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from gatetune.run import run

    cfg = compose(["logger=none", "training.max_steps=12", "training.eval_every_steps=4"])
    result = run(cfg, tmp_path)
    assert result.summary["status"] == "completed"
    batch = result.tokenizer(["<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\n",
                              "Spell the word cat backwards."], return_tensors="pt", padding=True)
    with torch.no_grad():
        in_memory = result.model.eval()(**batch).logits
        base = AutoModelForCausalLM.from_pretrained(result.summary["base_model"]).eval()
        base_logits = base(**batch).logits
        reloaded = PeftModel.from_pretrained(base, result.summary["export"]["path"]).eval()
        reloaded_logits = reloaded(**batch).logits
    assert torch.allclose(reloaded_logits, in_memory, atol=1e-5)
    assert not torch.allclose(base_logits, in_memory, atol=1e-3)  # the adapter changed the model


@pytest.mark.slow
def test_early_stopping_when_eval_loss_cannot_improve(tmp_path: Path, tiny_model_dir: Path):
    result = run_cli(["logger=none", "training.learning_rate=0", "training.eval_every_steps=3",
                      "training.early_stopping_patience=2", f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 0, result.stdout + result.stderr
    summary = _summary(tmp_path)
    assert summary["status"] == "stopped_early"
    evals = summary["metrics"]["eval_history"]
    # initial eval, the first (best) eval, then `patience` evaluations without improvement
    assert [e["step"] for e in evals] == [0, 3, 6, 9]
    assert summary["metrics"]["steps"] == 9
    assert "status: stopped_early" in result.stdout


@pytest.mark.slow
def test_failed_gate_stops_before_training(tmp_path: Path, tiny_model_dir: Path):
    records = [chat(f"What is {i} plus 1?", f"{i} plus 1 is {i + 1}.") for i in range(30)]
    records[7]["messages"].append({"role": "user", "content": "and then?"})  # ends on a user turn
    data = write_jsonl(tmp_path / "data.jsonl", records)
    run_dir = tmp_path / "run"
    result = run_cli([*FAST, f"data.path={data}", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _summary(run_dir)
    assert summary["status"] == "failed_gates"
    report = json.loads(Path(summary["gates"]["report_path"]).read_text())
    assert report["checks"]["template"]["violations"] == [
        {"record": 7, "line": 8, "problem": "conversation ends with 'user'; the last turn is not trained on"}]
    assert not (run_dir / "adapter").exists() and not (run_dir / "checkpoints").exists()
    assert "data gates: FAILED" in result.stdout

    # The same data trains when the gate only reports (checks.fail_on=[]) or is off.
    for n, extra in enumerate((["checks.fail_on=[]"], ["checks=off"])):
        run_dir = tmp_path / f"run-{n}"
        result = run_cli([*FAST, f"data.path={data}", f"hydra.run.dir={run_dir}", *extra])
        assert result.returncode == 0, result.stdout + result.stderr
        summary = _summary(run_dir)
        assert summary["status"] == "completed"
        assert (summary["gates"] is None) == (extra == ["checks=off"])


@pytest.mark.slow
def test_sweep_runs_each_job(tmp_path: Path, tiny_model_dir: Path):
    result = run_cli(["-m", "training.learning_rate=1e-4,2e-4", *FAST, f"hydra.sweep.dir={tmp_path}"])
    assert result.returncode == 0, result.stdout + result.stderr
    for job, lr in (("0", "0.0001"), ("1", "0.0002")):
        assert _summary(tmp_path / job)["status"] == "completed"
        assert f"learning_rate: {lr}" in (tmp_path / job / ".hydra/config.yaml").read_text()


@pytest.mark.parametrize("logger", ["wandb", "tensorboard"])
@pytest.mark.slow
def test_logger_writes_into_run_dir_without_secrets(tmp_path: Path, tiny_model_dir: Path, logger: str,
                                                    monkeypatch: pytest.MonkeyPatch):
    secret = "test-secret-key-0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("HF_TOKEN", secret)
    result = run_cli(["training.max_steps=3", "training.eval_every_steps=3", f"logger={logger}",
                      f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 0, result.stdout + result.stderr
    if logger == "wandb":
        assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run"
    else:
        assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*")), "no tensorboard events"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"secret written to {path}"


def test_help_lists_groups_and_cfg_job_prints_config():
    help_text = run_cli(["--help"]).stdout
    for line in ("recipe: dpo, full, full_zero3, grpo, lora, qlora", "logger: none, tensorboard, wandb",
                 "checks: default, off", "data: preference_sample, prompt_sample, sample"):
        assert line in help_text
    models = sorted(p.stem for p in (ROOT / "gatetune" / "conf" / "model").glob("*.yaml"))
    assert f"model: {', '.join(models)}" in help_text
    job = run_cli(["--cfg", "job", "recipe=full"])
    assert job.returncode == 0
    assert "name: full" in job.stdout and "learning_rate: 2.0e-05" in job.stdout


def test_several_processes_must_share_a_named_run_dir(monkeypatch: pytest.MonkeyPatch):
    """Each process would resolve the timestamped default on its own clock: a launch must name the dir."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = run_cli(["logger=none"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "hydra.run.dir: a launch of several processes needs hydra.run.dir=DIR" in result.stderr


@pytest.mark.slow
def test_a_replaced_template_and_its_arguments_travel_with_the_export(tmp_path: Path, tiny_model_dir: Path):
    """model.chat_template=chatml (generation markers) trains, and the export carries the template, the
    template arguments (in gatetune_export.json and the serve command) and what the template did."""
    from gatetune.run import run
    from gatetune.templates import read_chat_template

    cfg = compose([*FAST, "checks.run=[template]", "checks.fail_on=[template]", "model.chat_template=chatml",
                   "+data.chat_template_kwargs.flavour=plain"])
    result = run(cfg, tmp_path)
    assert result.summary["status"] == "completed"
    assert result.summary["data"]["template_notes"] == {"generation_markers": result.summary["data"]["train_records"]}
    adapter = Path(result.summary["export"]["path"])
    assert (adapter / "chat_template.jinja").read_text() == read_chat_template("chatml")
    info = json.loads((adapter / "gatetune_export.json").read_text())
    assert info["chat_template_kwargs"] == {"flavour": "plain"} and info["chat_template_replaced"] is True
    command = result.summary["export"]["vllm_command"]
    assert f"--chat-template {adapter}/chat_template.jinja" in command
    assert """--default-chat-template-kwargs '{"flavour": "plain"}'""" in command
    assert "## Chat template" in (adapter / "README.md").read_text()
