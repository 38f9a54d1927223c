"""Exports vLLM accepts: the rules, stop tokens, merge parity, base-mismatch refusal, model card, CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gatetune.export import EXPORT_INFO, ExportError, merge_adapter, stop_token_ids
from gatetune.vllm_rules import vllm_adapter_problems, vllm_max_lora_rank
from tests.conftest import ROOT, compose

LLAMA = {"model_type": "llama", "vocab_size": 776}
GOOD = {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "bias": "none", "target_modules": ["q_proj", "v_proj"]}


@pytest.mark.parametrize(("rank", "allowed"), [(1, 1), (2, 8), (8, 8), (16, 16), (24, 32), (64, 64), (300, 320),
                                               (512, 512)])
def test_max_lora_rank_rounds_up_to_an_allowed_value(rank: int, allowed: int):
    assert vllm_max_lora_rank(rank) == allowed


def test_rank_above_vllm_limit():
    with pytest.raises(ValueError, match="512"):
        vllm_max_lora_rank(513)


@pytest.mark.parametrize(("change", "key"), [
    ({"r": 1024}, "r:"),
    ({"rank_pattern": {"q_proj": 600}}, "r:"),
    ({"bias": "all"}, "bias:"),
    ({"lora_bias": True}, "lora_bias:"),
    ({"use_dora": True}, "use_dora:"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save:"),
    ({"init_lora_weights": "pissa_niter_4"}, "init_lora_weights:"),
    ({"init_lora_weights": "loftq"}, "init_lora_weights:"),
    ({"target_modules": ["q_proj", "mlp"]}, "target_modules:"),
    ({"target_modules": ".*proj"}, "target_modules:"),
    ({"trainable_token_indices": [5, 6]}, "trainable_token_indices:"),
    ({"target_parameters": ["mlp.experts.gate_up_proj"]}, "target_parameters:"),
    ({"peft_type": "IA3"}, "peft_type:"),
])
def test_each_vllm_rule_names_its_key(change: dict[str, Any], key: str):
    assert vllm_adapter_problems(GOOD, LLAMA) == []
    problems = vllm_adapter_problems({**GOOD, **change}, LLAMA)
    assert len(problems) == 1 and problems[0].startswith(key), problems


def test_accepted_variants():
    for change in ({"r": 24, "rank_pattern": {"q_proj": 32}}, {"use_rslora": True},
                   {"modules_to_save": ["score"]}, {"target_modules": ["embed_tokens", "lm_head", "gate_proj"]},
                   {"init_lora_weights": "gaussian"}):
        assert vllm_adapter_problems({**GOOD, **change}, LLAMA) == [], change
    assert vllm_adapter_problems(GOOD, LLAMA, embedding_vocab=776) == []
    assert vllm_adapter_problems(GOOD, LLAMA, embedding_vocab=800)[0].startswith("target_modules:")


def test_stop_tokens_include_the_chat_templates_end_of_turn(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert stop_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    # A template whose end-of-turn token differs from EOS (as Llama 3's <|eot_id|> does).
    tokenizer.chat_template = tokenizer.chat_template.replace("<|im_end|>", "<|endoftext|>")
    assert stop_token_ids(tokenizer) == sorted({tokenizer.eos_token_id,
                                                tokenizer.convert_tokens_to_ids("<|endoftext|>")})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Any:
    from gatetune.run import run

    run_dir = tmp_path_factory.mktemp("export") / "run"
    result = run(compose(["logger=none", "training.max_steps=12", "training.eval_every_steps=4",
                          "export.merge=true", "export.adapter_name=tiny-demo"]), run_dir)
    assert result.summary["status"] == "completed"
    return run_dir, result


def _logits(model: Any, tokenizer: Any) -> Any:
    import torch

    batch = tokenizer(["<|im_start|>user\nWhat colour is snow?<|im_end|>\n<|im_start|>assistant\n"],
                      return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**batch).logits


@pytest.mark.slow
def test_merged_model_reproduces_base_plus_adapter(trained: Any):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir, result = trained
    export = result.summary["export"]
    merged_dir = Path(export["merged"]["path"])
    assert merged_dir == (run_dir / "merged").resolve() and export["merged"]["kind"] == "merged_model"
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (merged_dir / name).is_file(), name
    base = AutoModelForCausalLM.from_pretrained(export["base_model"])
    with_adapter = _logits(PeftModel.from_pretrained(base, export["path"]), result.tokenizer)
    merged = _logits(AutoModelForCausalLM.from_pretrained(merged_dir), result.tokenizer)
    assert torch.max(torch.abs(merged - with_adapter)).item() <= 1e-5
    assert torch.max(torch.abs(with_adapter - _logits(result.model, result.tokenizer))).item() <= 1e-5
    generation = json.loads((merged_dir / "generation_config.json").read_text())
    assert generation["eos_token_id"] == stop_token_ids(result.tokenizer)
    assert export["merged"]["vllm_command"] == f"vllm serve {merged_dir} --max-model-len 256"


@pytest.mark.slow
def test_adapter_export_records_its_base_and_serve_command(trained: Any):
    run_dir, result = trained
    adapter = run_dir / "adapter"
    info = json.loads((adapter / EXPORT_INFO).read_text())
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == result.summary["base_model"] == info["base_model"]
    assert info["base_config"]["hidden_size"] == 128 and info["base_config"]["model_type"] == "llama"
    assert result.summary["export"]["vllm_command"] == (
        f"vllm serve {result.summary['base_model']} --enable-lora --lora-modules tiny-demo={adapter.resolve()} "
        "--max-lora-rank 64 --max-model-len 256")  # trained on 256 tokens; the base allows 512
    assert json.loads((adapter / "generation_config.json").read_text())["eos_token_id"] == [3]
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary folders left


@pytest.mark.slow
def test_model_card_records_the_run(trained: Any):
    run_dir, result = trained
    card = (run_dir / "adapter" / "README.md").read_text()
    data_path = Path(compose().data.path)
    for expected in (f"base_model: {result.summary['base_model']}", "recipe `lora`",
                     hashlib.sha256(data_path.read_bytes()).hexdigest(), result.summary["export"]["vllm_command"],
                     "learning_rate: 0.0002", "- `template`: passed", "| eval_loss_best |", "- transformers ",
                     "- peft ", "project commit: `"):
        assert expected in card, expected
    commit = card.split("project commit: `", 1)[1].split("`", 1)[0]
    assert commit == "unknown" or len(commit.split("+")[0]) == 40


@pytest.mark.slow
def test_merge_refuses_a_different_base(trained: Any, tmp_path: Path):
    from transformers import LlamaConfig, LlamaForCausalLM

    run_dir, _ = trained
    other = tmp_path / "other-base"
    LlamaForCausalLM(LlamaConfig(vocab_size=776, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(other)
    with pytest.raises(ExportError, match=r"hidden_size 128 \(trained\) vs 64 \(given\)"):
        merge_adapter(run_dir / "adapter", tmp_path / "merged", base=str(other))
    assert not (tmp_path / "merged").exists()


def _export_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gatetune.export", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_export_cli_merges_a_run_and_reexports_a_checkpoint(trained: Any, tmp_path: Path):
    run_dir, _ = trained
    merged = _export_cli(str(run_dir), "--merge", "--out", str(tmp_path / "m"))
    assert merged.returncode == 0, merged.stderr
    assert f"serve it: vllm serve {(tmp_path / 'm').resolve()}" in merged.stdout
    assert (tmp_path / "m" / "model.safetensors").is_file()
    checkpoint = sorted((run_dir / "checkpoints").glob("checkpoint-*"))[-1]
    again = _export_cli(str(checkpoint), "--out", str(tmp_path / "a"), "--name", "ckpt")
    assert again.returncode == 0, again.stderr
    assert "--enable-lora --lora-modules ckpt=" in again.stdout and "--max-lora-rank 64" in again.stdout
    assert (tmp_path / "a" / "generation_config.json").is_file() and (tmp_path / "a" / "tokenizer.json").is_file()


@pytest.mark.slow
def test_export_cli_errors(tmp_path: Path, tiny_model_dir: Path):
    missing = _export_cli(str(tmp_path))
    assert missing.returncode == 2 and "neither an adapter" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text(json.dumps({**GOOD, "bias": "all"}))
    refused = _export_cli(str(broken), "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "does not name its base model" in refused.stderr
    (broken / "adapter_config.json").write_text(json.dumps({**GOOD, "bias": "all",
                                                            "base_model_name_or_path": str(tiny_model_dir)}))
    refused = _export_cli(str(broken), "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "would not load in vLLM: bias: 'all'" in refused.stderr
    assert not (tmp_path / "out").exists()
