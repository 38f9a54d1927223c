"""Real model families at tiny size: LoRA as the project applies it, adapters vLLM loads, the model presets.

Each architecture of gatetune/tiny_families.py is built with its family's real chat template and special
tokens (tests/chat_templates/), LoRA is applied by gatetune.modeling with the target modules of the
family's preset, and the exported adapter must pass our vLLM rules and, where the side environment exists
(`make vllm-env`), vLLM's own loader.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from gatetune.config import TrainConfig, typed_config
from gatetune.tiny_families import ARCHITECTURES, build_tiny_family
from gatetune.vllm_rules import VLLM_LORA_TARGETS, vllm_adapter_problems
from tests.conftest import ROOT, compose, run_cli, write_jsonl

TEMPLATES = ROOT / "tests" / "chat_templates"
FAMILY_CHATS = ROOT / "tests" / "data" / "family_chats.jsonl"
VLLM_PYTHON = Path(os.environ.get("VLLM_ENV", ROOT / ".venv-vllm")) / "bin" / "python"
# architecture -> (its family in tests/chat_templates/families.json, whether its tokenizer prepends BOS
# as the real one does: Llama 3's post-processor, Gemma's and Mistral's add_bos_token).
FAMILY = {"llama": ("llama3_1", True), "qwen2": ("qwen2_5", False), "qwen3": ("qwen3", False),
          "mistral": ("mistral_nemo", True), "gemma2": ("gemma2", True), "gemma3_text": ("gemma3", True),
          "phi3": ("phi4_mini", False), "gpt_oss": ("gpt_oss", False)}
# gatetune/conf/model preset -> the architecture of the real model (its config.json model_type).
PRESET_ARCHITECTURE = {"tiny": "llama", "llama3_1_8b": "llama", "llama3_2_3b": "llama", "qwen2_5_7b": "qwen2",
                       "deepseek_r1_distill_qwen_7b": "qwen2", "qwen3_8b": "qwen3", "mistral_7b": "mistral",
                       "mistral_nemo": "mistral", "gemma3_1b": "gemma3_text", "phi4_mini": "phi3",
                       "gpt_oss_20b": "gpt_oss"}
# architecture -> the preset whose LoRA targets its tiny model is trained with (gemma2 has none: the default).
PRESET = {"llama": "llama3_1_8b", "qwen2": "qwen2_5_7b", "qwen3": "qwen3_8b", "mistral": "mistral_nemo",
          "gemma2": None, "gemma3_text": "gemma3_1b", "phi3": "phi4_mini", "gpt_oss": "gpt_oss_20b"}
# What `all-linear` (gatetune.modeling.linear_layer_names) picks on each architecture.
PROJECTIONS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
ALL_LINEAR = {**dict.fromkeys(ARCHITECTURES, PROJECTIONS), "phi3": ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"],
              "gpt_oss": ["k_proj", "o_proj", "q_proj", "v_proj"]}  # the router and experts are not nn.Linear
# A target vLLM refuses on each architecture: the fused name where vLLM wants q/k/v (and the reverse for
# Phi-3), or the output head where vLLM's implementation declares no embedding modules.
WRONG_TARGET = {"llama": "qkv_proj", "qwen3": "qkv_proj", "phi3": "q_proj", "qwen2": "lm_head", "mistral": "lm_head",
                "gemma2": "lm_head", "gemma3_text": "lm_head", "gpt_oss": "lm_head"}
MODEL_PRESETS = sorted(p.stem for p in (ROOT / "gatetune" / "conf" / "model").glob("*.yaml"))


def _family(arch: str) -> dict[str, Any]:
    return json.loads((TEMPLATES / "families.json").read_text())[FAMILY[arch][0]]


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """architecture -> the directory of its tiny model, built once per module."""
    root = tmp_path_factory.mktemp("families")

    def build(arch: str) -> Path:
        family = _family(arch)
        end_of_turn = [t for t in _as_list(family.get("end_of_turn")) if t != family["eos_token"]]
        return build_tiny_family(arch, root / arch, (TEMPLATES / family["file"]).read_text(), family["bos_token"],
                                 family["eos_token"], family["pad_token"], family["special_tokens"],
                                 add_bos_token=FAMILY[arch][1], stop_tokens=end_of_turn)
    cache: dict[str, Path] = {}
    return lambda arch: cache.get(arch) or cache.setdefault(arch, build(arch))


def _overrides(arch: str, model_dir: Path) -> list[str]:
    preset = [f"model={PRESET[arch]}"] if PRESET[arch] else []
    return [*preset, f"model.path={model_dir}", "model.name=x", "model.build=null"]


@pytest.fixture(scope="module")
def exported(built: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """architecture -> its untrained LoRA adapter, exported as a run exports it (export_adapter checks it)."""
    root = tmp_path_factory.mktemp("adapters")

    def export(arch: str) -> Path:
        from gatetune.export import export_adapter
        from gatetune.modeling import load_model, load_tokenizer

        config = typed_config(compose(_overrides(arch, built(arch))))
        model = load_model(config, str(built(arch)))
        export_adapter(model, load_tokenizer(config.model, str(built(arch))), root / arch, "test")
        return root / arch
    cache: dict[str, Path] = {}
    return lambda arch: cache.get(arch) or cache.setdefault(arch, export(arch))


def _vllm_check(*adapters: Path) -> list[dict]:
    result = subprocess.run([str(VLLM_PYTHON), str(ROOT / "scripts/check_vllm_adapter.py"), *map(str, adapters)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_tiny_family_model_and_tokenizer(arch: str, built: Any):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    family, model_dir = _family(arch), built(arch)
    config, tokenizer = AutoConfig.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    assert config.model_type == arch and config.vocab_size == len(tokenizer)
    assert config.num_hidden_layers == 2 and config.max_position_embeddings == 512
    for token in {*family["special_tokens"], family["eos_token"]}:
        assert len(tokenizer(token, add_special_tokens=False).input_ids) == 1, token
    eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    assert tokenizer.eos_token_id == (eos[0] if isinstance(eos, list) else eos)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                                         tokenize=False)
    assert "Hello" in text
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids) == text  # byte-level round trip


def test_gpt4_style_tokenizer_merges_across_a_boundary(built: Any):
    """The cl100k split keeps a run of newlines, or of digits, in one pre-token: tokenising a prompt and its
    answer separately differs from tokenising their concatenation, which answer masks must survive."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built("llama"))

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    assert tokenizer.convert_ids_to_tokens(ids("\n\nHello")) == ["ĊĊ", "Hello"]
    assert ids("\n") + ids("\nHello") != ids("\n\nHello")
    assert ids("the answer is 1") + ids("23") != ids("the answer is 123")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_lora_adapter_passes_vllm_rules(arch: str, built: Any, exported: Any):
    adapter_config = json.loads((exported(arch) / "adapter_config.json").read_text())
    base_config = json.loads((built(arch) / "config.json").read_text())
    assert sorted(adapter_config["target_modules"]) == ALL_LINEAR[arch]
    assert vllm_adapter_problems(adapter_config, base_config) == []
    wrong = {**adapter_config, "target_modules": [*adapter_config["target_modules"], WRONG_TARGET[arch]]}
    problems = vllm_adapter_problems(wrong, base_config)
    assert len(problems) == 1 and problems[0].startswith("target_modules:") and WRONG_TARGET[arch] in problems[0]


@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"no vLLM side environment at {VLLM_PYTHON.parent.parent} "
                    "(make vllm-env)")
@pytest.mark.slow  # vLLM's loader in its side environment, ~20 s
def test_vllm_loader_accepts_family_adapters(built: Any, exported: Any, tmp_path: Path):
    """vLLM's own loader takes every family's adapter, and refuses an output-head LoRA exactly where our
    rules do (the architectures whose vLLM implementation has no embedding modules)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    archs = sorted(ARCHITECTURES)
    accepted = _vllm_check(*(exported(arch) for arch in archs))
    assert [r["accepted"] for r in accepted] == [True] * len(archs), accepted

    with_head = {}
    for arch in archs:
        model = AutoModelForCausalLM.from_pretrained(built(arch))
        targets = [*ALL_LINEAR[arch], "lm_head"]
        peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=targets, task_type="CAUSAL_LM"))
        peft_model.save_pretrained(tmp_path / arch)
        with_head[arch] = tmp_path / arch
    vllm_says = {arch: r["accepted"] for arch, r in zip(archs, _vllm_check(*with_head.values()), strict=True)}
    ours = {arch: not vllm_adapter_problems(json.loads((with_head[arch] / "adapter_config.json").read_text()),
                                            json.loads((built(arch) / "config.json").read_text()))
            for arch in archs}
    assert vllm_says == ours
    assert {arch for arch, ok in ours.items() if not ok} == {a for a, t in WRONG_TARGET.items() if t == "lm_head"}


@pytest.mark.slow  # ~13 s
def test_gpt_oss_expert_lora_loads(built: Any, tmp_path: Path):
    """LoRA on GPT-OSS's experts (PEFT target_parameters on the 3-D expert weights): our rules and, where the
    side environment exists, vLLM's loader take it; the same parameters named on another model are refused."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    experts = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
    model = AutoModelForCausalLM.from_pretrained(built("gpt_oss"))
    get_peft_model(model, LoraConfig(r=8, target_modules=ALL_LINEAR["gpt_oss"], target_parameters=experts,
                                     task_type="CAUSAL_LM")).save_pretrained(tmp_path / "experts")
    adapter_config = json.loads((tmp_path / "experts" / "adapter_config.json").read_text())
    assert sorted(adapter_config["target_parameters"]) == sorted(experts)
    assert vllm_adapter_problems(adapter_config, {"model_type": "gpt_oss"}) == []
    assert vllm_adapter_problems(adapter_config, {"model_type": "qwen3"})[0].startswith("target_parameters:")
    if VLLM_PYTHON.exists():
        result = _vllm_check(tmp_path / "experts")[0]
        assert result["accepted"] and result["modules"] == 12, result  # 2 layers x (4 attention + 2 expert)


@pytest.mark.parametrize("preset", MODEL_PRESETS)
def test_model_preset_composes_and_targets_what_vllm_loads(preset: str, built: Any):
    from transformers import AutoModelForCausalLM

    from gatetune.modeling import lora_config

    cfg = compose([f"model={preset}"])
    assert isinstance(OmegaConf.to_object(cfg), TrainConfig)
    config = typed_config(cfg)
    assert cfg.model.name and cfg.model.path
    assert preset == "tiny" or cfg.model.context_length, f"model={preset} sets no context_length"
    assert preset in PRESET_ARCHITECTURE, f"add model={preset} to PRESET_ARCHITECTURE with its architecture"
    arch = PRESET_ARCHITECTURE[preset]
    model = AutoModelForCausalLM.from_pretrained(built(arch))
    targets = sorted(lora_config(config.lora, config.data.task_type, model).target_modules)
    assert set(targets) <= VLLM_LORA_TARGETS[arch], (preset, targets)
    assert not vllm_adapter_problems({"target_modules": targets, "r": 64}, {"model_type": arch})


def _chats_for(arch: str, tmp_path: Path) -> Path:
    """tests/data/family_chats.jsonl, without its system messages for templates that refuse them (Gemma 2)."""
    if not _family(arch)["raises_on_system_role"]:
        return FAMILY_CHATS
    records = [json.loads(line) for line in FAMILY_CHATS.read_text().splitlines()]
    return write_jsonl(tmp_path / "chats.jsonl", [{"messages": [m for m in r["messages"] if m["role"] != "system"]}
                                                  for r in records])


def _three_steps(arch: str, built: Any, tmp_path: Path, run_dir: Path) -> dict[str, Any]:
    """Three LoRA steps through train.py on multi-turn chats with the family's template, the template gate on."""
    result = run_cli([*_overrides(arch, built(arch)), f"data.path={_chats_for(arch, tmp_path)}", "data.max_length=512",
                      "training.max_steps=3", "training.eval_every_steps=3", "checks.run=[template]",
                      "checks.fail_on=[template]", "logger=none", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["data"]["train_examples"] >= summary["data"]["train_records"]
    return summary


@pytest.mark.gpu
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_a_bf16_lora_step_per_family_on_cuda(arch: str, built: Any, tmp_path: Path):
    """scripts/gpu_check.sh: each architecture's LoRA steps in bf16 on CUDA (precision=auto picks bf16)."""
    summary = _three_steps(arch, built, tmp_path, tmp_path / "run")
    assert all(math.isfinite(e["eval_loss"]) for e in summary["metrics"]["eval_history"])
    assert summary["metrics"]["peak_memory_mb"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_three_lora_steps_with_the_family_template(arch: str, built: Any, tmp_path: Path):
    from gatetune.export import check_adapter

    run_dir = tmp_path / "run"
    summary = _three_steps(arch, built, tmp_path, run_dir)
    assert summary["gates"]["checks"]["template"]["violation_rate"] == 0.0
    metrics = summary["metrics"]
    assert metrics["steps"] == 3
    assert all(math.isfinite(e["eval_loss"]) for e in metrics["eval_history"]), metrics["eval_history"]
    assert check_adapter(run_dir / "adapter", json.loads((built(arch) / "config.json").read_text())) == []
    if VLLM_PYTHON.exists():  # vLLM's own loader takes the trained adapter as `vllm serve --enable-lora` would
        [verdict] = _vllm_check(run_dir / "adapter")
        assert verdict["accepted"], verdict


def test_an_mxfp4_checkpoint_is_dequantised_for_lora_and_refused_for_qlora(tmp_path: Path):
    """GPT-OSS ships MXFP4 experts: LoRA loads them dequantised; QLoRA's 4-bit base does not apply."""
    from gatetune.errors import ConfigError
    from gatetune.modeling import _is_mxfp4, load_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt_oss", "architectures": ["GptOssForCausalLM"],
                                                      "quantization_config": {"quant_method": "mxfp4"}}))
    config = typed_config(compose(["recipe=qlora", f"model.path={tmp_path}", "model.build=null"]))
    assert _is_mxfp4(config.model, str(tmp_path))
    with pytest.raises(ConfigError, match="MXFP4 checkpoint"):
        load_model(config, str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    assert not _is_mxfp4(config.model, str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("arch,family,notes", [
    ("qwen3", "qwen3", {"reasoning_dropped_from_history"}),
    ("qwen2", "deepseek_r1_distill", {"reasoning_dropped_from_history", "reasoning_reinserted"})])
def test_a_reasoning_family_trains_its_reasoning(arch: str, family: str, notes: set[str], tmp_path: Path):
    """Qwen3 and a DeepSeek-R1 distill (a Qwen2 model) on two-turn chats whose answers carry reasoning: each
    turn trains as its own example with its reasoning in the answer mask, and the export passes vLLM's rules."""
    from gatetune.data import tokenize_split
    from gatetune.export import check_adapter
    from gatetune.modeling import load_tokenizer

    info = json.loads((TEMPLATES / "families.json").read_text())[family]
    model_dir = build_tiny_family(arch, tmp_path / "model", (TEMPLATES / info["file"]).read_text(), info["bos_token"],
                                  info["eos_token"], info["pad_token"], info["special_tokens"])
    records = [{"messages": [{"role": "system", "content": "Answer briefly."},
                             {"role": "user", "content": f"What is {i} plus {i}?"},
                             {"role": "assistant", "content": f"It is {2 * i}.",
                              "reasoning_content": f"Add {i} twice."},
                             {"role": "user", "content": "And doubled?"},
                             {"role": "assistant", "content": f"<think>\n{2 * i} times two.\n</think>\n\n{4 * i}."}]}
               for i in range(20)]
    data = write_jsonl(tmp_path / "reasoning.jsonl", records)
    overrides = [f"model.path={model_dir}", "model.name=x", "model.build=null", f"data.path={data}"]

    # The answer mask holds each turn's reasoning: decoded masked tokens of the first record's examples.
    from data_checks import read_records

    tokenizer = load_tokenizer(typed_config(compose(overrides)).model, str(model_dir))
    rows, stats, _ = tokenize_split(read_records(str(data)), "chat", tokenizer, 512, "answers", "train")
    assert stats.examples == 2 * stats.records and set(stats.template_notes) >= notes
    trained = [tokenizer.decode([t for t, m in zip(r["input_ids"], r["assistant_masks"], strict=True) if m])
               for r in rows.select(range(2))]
    assert "Add 0 twice." in trained[0] and "0 times two." in trained[1]

    run_dir = tmp_path / "run"
    result = run_cli([*overrides, "data.max_length=512", "training.max_steps=3", "training.eval_every_steps=3",
                      "checks.run=[template]", "checks.fail_on=[template]", "logger=none", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and set(summary["data"]["template_notes"]) >= notes
    assert set(summary["gates"]["checks"]["template"]["template_notes"]) >= notes
    assert check_adapter(run_dir / "adapter", json.loads((model_dir / "config.json").read_text())) == []
    card = (run_dir / "adapter" / "README.md").read_text()
    assert "drops reasoning from earlier turns" in card
