"""Export what was trained where vLLM can serve it: a PEFT adapter or a merged/full model.

Every export is written to a temporary folder and renamed into place only when complete, and is
checked first: an adapter against the rules vLLM enforces (`gatetune.vllm_rules`), every export for
its stop tokens (the chat template's end-of-turn token is in `generation_config.json`), a merge
against the base model the adapter was trained on. Standalone:

    python -m gatetune.export RUN_DIR_OR_CHECKPOINT [--merge] [--out DIR] [--base MODEL]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatetune.atomic_dirs import write_directory_atomically
from gatetune.errors import UserError
from gatetune.vllm_rules import adapter_rank, vllm_adapter_problems, vllm_max_lora_rank

log = logging.getLogger(__name__)
EXPORT_INFO = "gatetune_export.json"  # what the export was made from: base model fingerprint, recipe
FINGERPRINT_KEYS = ("model_type", "architectures", "hidden_size", "vocab_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads", "intermediate_size")


class ExportError(UserError):
    """The export would not load or would behave differently from what was trained."""


@dataclass
class TemplateUse:
    """How training used the chat template, recorded in the export so serving renders the same way."""

    kwargs: dict[str, Any] = field(default_factory=dict)  # data.chat_template_kwargs
    replaced: bool = False  # model.chat_template replaced the base tokenizer's template
    notes: dict[str, int] = field(default_factory=dict)  # what the template did to the data (records per note)

    def info(self) -> dict[str, Any]:
        return {"chat_template_kwargs": self.kwargs, "chat_template_replaced": self.replaced,
                "template_notes": self.notes}


def fingerprint(config: Any) -> dict[str, Any]:
    """The parts of a model config an adapter depends on."""
    values = config if isinstance(config, dict) else config.to_dict()
    return {k: values.get(k) for k in FINGERPRINT_KEYS if values.get(k) is not None}


def stop_token_ids(tokenizer: Any, template_kwargs: dict[str, Any] | None = None) -> list[int]:
    """EOS plus the token that ends an answer in the chat template: the last trained token of a one-turn
    conversation (`<|eot_id|>`, `<|im_end|>`, `<end_of_turn>`, `<|end|>`, GPT-OSS's `<|return|>`, `</s>`),
    found by the same encoding training uses."""
    from data_checks.chat_template import ChatTemplate, TemplateError

    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    if getattr(tokenizer, "chat_template", None):
        try:
            encoding = ChatTemplate(tokenizer, template_kwargs).encode(
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
        except TemplateError:
            return sorted(ids)
        example = encoding.examples[-1]
        trained = [t for t, m in zip(example.input_ids, example.mask, strict=True) if m]
        special = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
        special |= set(tokenizer.all_special_tokens)
        if trained and tokenizer.convert_ids_to_tokens(trained[-1]) in special:
            ids.add(trained[-1])
    return sorted(ids)


def _generation_config(model_config: Any, tokenizer: Any, base_model: str | None = None,
                       template_kwargs: dict[str, Any] | None = None) -> Any:
    """The base model's generation config (or one derived from its config) with every stop token in eos_token_id."""
    from transformers import GenerationConfig

    try:
        generation = GenerationConfig.from_pretrained(base_model) if base_model else None
    except OSError:
        generation = None
    if generation is None:
        generation = GenerationConfig.from_model_config(model_config)
        generation.use_cache = True  # a training-time use_cache=False must not reach serving
    generation.eos_token_id = stop_token_ids(tokenizer, template_kwargs) or generation.eos_token_id
    if generation.pad_token_id is None:
        generation.pad_token_id = tokenizer.pad_token_id
    return generation


def vllm_command(base_model: str, adapter_path: Path | None = None, name: str = "adapter",
                 rank: int | None = None, max_model_len: int | None = None,
                 chat_template: Path | None = None, template_kwargs: dict[str, Any] | None = None) -> str:
    """The exact serve command; `--max-model-len` when the run trained on shorter sequences than the base allows,
    `--chat-template` when training replaced the base tokenizer's template (vLLM renders adapters' prompts with
    the base's), `--default-chat-template-kwargs` when training rendered with template arguments."""
    extra = f" --max-model-len {max_model_len}" if max_model_len else ""
    if chat_template is not None:
        extra += f" --chat-template {chat_template}"
    if template_kwargs:
        extra += f" --default-chat-template-kwargs '{json.dumps(template_kwargs, sort_keys=True)}'"
    if adapter_path is None:
        return f"vllm serve {base_model}{extra}"
    return (f"vllm serve {base_model} --enable-lora --lora-modules {name}={adapter_path} "
            f"--max-lora-rank {vllm_max_lora_rank(rank or 1)}{extra}")


def save_tokenizer(tokenizer: Any, out: Path) -> Path | None:
    """Save the tokenizer, and its chat template also as `chat_template.jinja` (transformers 5 writes it there);
    returns that file's path."""
    tokenizer.save_pretrained(out)
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        path = out / "chat_template.jinja"
        if not path.is_file():
            path.write_text(template, encoding="utf-8")
        return path
    return None


def served_length(model_config: Any, trained_length: int | None) -> int | None:
    """The training length, when the base model's context is longer: vLLM then reserves memory for what was
    trained rather than for the base's full context (raise it to serve longer prompts)."""
    context = getattr(model_config, "max_position_embeddings", None)
    return trained_length if trained_length and context and context > trained_length else None


def _embedding_vocab(adapter_dir: Path) -> int | None:
    """Vocabulary size covered by an embedding LoRA in the saved weights, if there is one."""
    from safetensors import safe_open

    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    with safe_open(str(weights), framework="pt") as f:
        for key in f.keys():
            if "lora_embedding_A" in key:
                return int(f.get_slice(key).get_shape()[1])
    return None


def check_adapter(adapter_dir: Path, base_config: dict[str, Any] | None) -> list[str]:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    return vllm_adapter_problems(config, base_config, _embedding_vocab(adapter_dir))


def export_adapter(model: Any, tokenizer: Any, out_dir: Path, name: str,
                   card: Callable[[dict[str, Any]], str] | None = None,
                   trained_length: int | None = None, template: TemplateUse | None = None) -> dict[str, Any]:
    """Save the PEFT adapter, its tokenizer (the chat template trained with included), generation config and
    model card."""
    base_config = model.get_base_model().config
    base_model = model.peft_config["default"].base_model_name_or_path
    template = template or TemplateUse()

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)
        _generation_config(base_config, tokenizer, base_model, template.kwargs).save_pretrained(tmp)
        problems = check_adapter(tmp, base_config.to_dict())
        if problems:
            raise ExportError("the adapter would not load in vLLM: " + "; ".join(problems))
        rank = adapter_rank(json.loads((tmp / "adapter_config.json").read_text()))
        info = {"kind": "adapter", "base_model": base_model, "base_config": fingerprint(base_config),
                "rank": rank, "name": name, "stop_token_ids": stop_token_ids(tokenizer, template.kwargs),
                "max_model_len": served_length(base_config, trained_length),
                **template.info(),
                "vllm_command": vllm_command(base_model, out_dir.resolve(), name, rank,
                                             served_length(base_config, trained_length),
                                             out_dir.resolve() / "chat_template.jinja" if template.replaced else None,
                                             template.kwargs)}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
        if card is not None:
            (tmp / "README.md").write_text(card(info))

    path = write_directory_atomically(out_dir, write)
    info = json.loads((path / EXPORT_INFO).read_text())
    return {"path": str(path), "kind": "adapter", "base_model": base_model, "vllm_command": info["vllm_command"]}


def export_full_model(model: Any, tokenizer: Any, out_dir: Path, base_model: str,
                      card: Callable[[dict[str, Any]], str] | None = None, kind: str = "full_model",
                      weights_in: Path | None = None, trained_length: int | None = None,
                      template: TemplateUse | None = None) -> dict[str, Any]:
    """Save a full (or merged) model in safetensors shards with config, generation config and tokenizer.

    `weights_in`: a folder the weights were already saved to (by `trainer.save_model`, which gathers
    ZeRO-3 shards across processes); it is completed and renamed into place instead of saving again.
    """
    def write(tmp: Path) -> None:
        if weights_in is not None:
            for item in weights_in.iterdir():
                if item.name != "training_args.bin":  # the Trainer's pickle: not part of a model
                    os.replace(item, tmp / item.name)
            shutil.rmtree(weights_in, ignore_errors=True)
        else:
            model.save_pretrained(tmp, max_shard_size="5GB")
        save_tokenizer(tokenizer, tmp)
        _generation_config(model.config, tokenizer, base_model, template.kwargs).save_pretrained(tmp)
        info = {"kind": kind, "base_model": base_model, "base_config": fingerprint(model.config),
                "stop_token_ids": stop_token_ids(tokenizer, template.kwargs),
                "max_model_len": served_length(model.config, trained_length), **template.info(),
                "vllm_command": command}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
        if card is not None:
            (tmp / "README.md").write_text(card(info))

    template = template or TemplateUse()
    # A full model carries the template it was trained with in its own tokenizer: no --chat-template needed.
    command = vllm_command(str(out_dir.resolve()), max_model_len=served_length(model.config, trained_length),
                           template_kwargs=template.kwargs)
    path = write_directory_atomically(out_dir, write)
    return {"path": str(path), "kind": kind, "base_model": base_model, "vllm_command": command}


def _base_config(base: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(base)
    except OSError as exc:
        raise ExportError(f"cannot load the base model {base!r}: {exc}") from None


def merge_adapter(adapter_dir: Path, out_dir: Path, base: str | None = None,
                  card: Callable[[dict[str, Any]], str] | None = None,
                  trained_length: int | None = None) -> dict[str, Any]:
    """Merge an exported adapter into its base model and save the result as a full model.

    Refuses a base whose architecture, hidden size or vocabulary differs from the one the adapter
    was trained on. (A QLoRA adapter merges into the un-quantised base: the base is loaded in full
    precision here, which is the dequantised form of what was trained.)
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    base = base or adapter_config.get("base_model_name_or_path")
    if not base:
        raise ExportError(f"{adapter_dir}: the adapter does not name its base model; pass --base")
    config = _base_config(base)
    info_path = adapter_dir / EXPORT_INFO
    template = TemplateUse()
    if info_path.is_file():
        adapter_info = json.loads(info_path.read_text())
        template = TemplateUse(adapter_info.get("chat_template_kwargs") or {}, False,
                               adapter_info.get("template_notes") or {})
        trained_on = adapter_info["base_config"]
        actual = fingerprint(config)
        differences = [f"{k} {trained_on[k]} (trained) vs {actual.get(k)} (given)" for k in trained_on
                       if trained_on[k] != actual.get(k)]
        if differences:
            raise ExportError(f"the base model {base!r} is not the one the adapter was trained on: "
                              + "; ".join(differences))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    try:
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except (RuntimeError, ValueError) as exc:
        raise ExportError(f"the adapter does not fit the base model {base!r}: {str(exc).splitlines()[0]}") from None
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if (adapter_dir / "tokenizer_config.json").is_file()
                                              else base)
    return export_full_model(merged, tokenizer, out_dir, base, card, kind="merged_model",
                             trained_length=trained_length, template=template)


def resolve_adapter_dir(path: Path) -> Path:
    """An adapter folder, a checkpoint folder, or a run directory (whose adapter/ is taken)."""
    if (path / "adapter_config.json").is_file():
        return path
    if (path / "adapter" / "adapter_config.json").is_file():
        return path / "adapter"
    raise ExportError(f"{path}: neither an adapter (no adapter_config.json) nor a run directory with adapter/")


def main(argv: list[str] | None = None) -> int:
    from gatetune.quiet import quiet_library_noise

    quiet_library_noise()
    parser = argparse.ArgumentParser(prog="gatetune-export", description="Export a trained adapter for vLLM: "
                                     "check it, or merge it into its base model.")
    parser.add_argument("path", type=Path, help="a run directory, a checkpoint folder or an adapter folder")
    parser.add_argument("--merge", action="store_true", help="merge into the base model and save a full model")
    parser.add_argument("--out", type=Path, help="where to write (default: RUN_DIR/merged, or RUN_DIR/adapter "
                        "for a checkpoint of a run)")
    parser.add_argument("--base", help="the base model to merge into (default: the adapter's base_model_name_or_path)")
    parser.add_argument("--name", default="adapter", help="the LoRA name in the printed vllm serve command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        adapter_dir = resolve_adapter_dir(args.path)
        run_dir = adapter_dir.parent.parent if adapter_dir.parent.name == "checkpoints" else adapter_dir.parent
        if args.merge:
            result = merge_adapter(adapter_dir, args.out or run_dir / "merged", args.base)
        else:
            out = args.out or (run_dir / "adapter" if adapter_dir.parent.name == "checkpoints" else None)
            if out is None:
                raise ExportError("--out is needed to re-export an adapter folder (or use --merge)")
            result = reexport_adapter(adapter_dir, out, args.name)
    except UserError as exc:
        print(f"gatetune-export: error: {exc}", file=sys.stderr)
        return 2
    print(f"export ({result['kind']}): {result['path']}\nserve it: {result['vllm_command']}")
    return 0


def reexport_adapter(adapter_dir: Path, out_dir: Path, name: str) -> dict[str, Any]:
    """Check an adapter folder (e.g. a checkpoint's) and copy it as a complete, vLLM-checked export."""
    from transformers import AutoConfig, AutoTokenizer

    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    base = adapter_config.get("base_model_name_or_path")
    if not base:
        raise ExportError(f"{adapter_dir}: the adapter does not name its base model (base_model_name_or_path)")
    base_config = AutoConfig.from_pretrained(base)
    problems = check_adapter(adapter_dir, base_config.to_dict())
    if problems:
        raise ExportError("the adapter would not load in vLLM: " + "; ".join(problems))
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    rank = adapter_rank(adapter_config)
    info_path = adapter_dir / EXPORT_INFO
    kwargs = (json.loads(info_path.read_text()).get("chat_template_kwargs") or {}) if info_path.is_file() else {}

    def write(tmp: Path) -> None:
        for name_ in ("adapter_config.json", "adapter_model.safetensors", "README.md", EXPORT_INFO):
            if (adapter_dir / name_).is_file():
                shutil.copy2(adapter_dir / name_, tmp / name_)
        save_tokenizer(tokenizer, tmp)
        _generation_config(base_config, tokenizer, base, kwargs).save_pretrained(tmp)

    path = write_directory_atomically(out_dir, write)
    return {"path": str(path), "kind": "adapter", "base_model": base,
            "vllm_command": vllm_command(base, path, name, rank, template_kwargs=kwargs)}


if __name__ == "__main__":
    sys.exit(main())
