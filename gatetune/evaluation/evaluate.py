"""Evaluate an export (an adapter directory, or a full/merged model directory) by generation: the tuned
model and, for comparison, its base, on the same prompts, with the template settings and stop tokens the
export records. Writes `eval_results.jsonl` (one line per example) and `eval.png`; returns the summary's
`eval` node."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from data_checks.chat_template import ChatTemplate
from data_checks.report import write_text_atomic
from gatetune.errors import UserError
from gatetune.evaluation.backends import choose_backend, generate_vllm
from gatetune.evaluation.config import EvalConfig
from gatetune.evaluation.examples import EvalExample
from gatetune.evaluation.generate import Generation, generate
from gatetune.evaluation.metrics import delta, output_stats, score_examples
from gatetune.export import EXPORT_INFO

log = logging.getLogger(__name__)


def export_info(export_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((export_dir / EXPORT_INFO).read_text(encoding="utf-8"))
    except OSError:
        raise UserError(f"{export_dir}: not an export of this toolkit (no {EXPORT_INFO}); give an adapter/ or "
                        "model/ directory, or a run directory") from None


def _load(path: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from gatetune.config import Precision
    from gatetune.modeling import torch_dtype

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(Precision.auto))
    return model.to("cuda") if torch.cuda.is_available() else model


def _generate_transformers(export_dir: Path, info: dict[str, Any], run: Any, compare_base: bool) -> \
        tuple[list[list[Generation]], Optional[list[list[Generation]]]]:
    """Tuned generations and, with `compare_base`, the base's: an adapter's base is the adapter disabled; a
    full model's base is loaded once the tuned one is done."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    # Training under ZeRO-3 leaves its config set globally, and from_pretrained would then partition the
    # weights across a process group whose other ranks have finished: this process loads them whole.
    unset_hf_deepspeed_config()
    if info["kind"] == "adapter":
        from peft import PeftModel

        model = PeftModel.from_pretrained(_load(info["base_model"]), str(export_dir))
        tuned = run(model, "tuned")
        if not compare_base:
            return tuned, None
        with model.disable_adapter():
            return tuned, run(model, "base")
    tuned = run(_load(str(export_dir)), "tuned")
    return tuned, run(_load(info["base_model"]), "base") if compare_base else None


def load_tokenizer(export_dir: Path, info: dict[str, Any]) -> Any:
    """The export's own tokenizer (it carries the chat template trained with), else the base model's."""
    from transformers import AutoTokenizer

    for source in (export_dir, info["base_model"]):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source))
        except (OSError, ValueError):
            continue
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    raise UserError(f"{export_dir}: no tokenizer there nor at its base model {info['base_model']}")


def evaluate_export(export_dir: Path, examples: list[EvalExample], names: list[str], config: EvalConfig,
                    max_prompt_tokens: int, out_dir: Path, column: Optional[str] = None,
                    info: Optional[dict[str, Any]] = None, completion_length: Optional[int] = None) -> dict[str, Any]:
    """`info`: what the export records (gatetune_export.json: kind, base_model, stop tokens, template
    arguments); read from `export_dir` when not given. `completion_length`: the generation budget when
    `eval.max_new_tokens` is unset and the examples carry no answer (GRPO's max_completion_length)."""
    from gatetune.export import stop_token_ids

    info = info or export_info(export_dir)
    tokenizer = load_tokenizer(export_dir, info)
    chat = ChatTemplate(tokenizer, info.get("chat_template_kwargs") or {})
    stop_ids = list(info.get("stop_token_ids") or stop_token_ids(tokenizer, info.get("chat_template_kwargs")))
    limit = config.max_new_tokens or default_max_new_tokens(tokenizer, examples, completion_length)

    def run(model: Any, label: str) -> list[list[Generation]]:
        return generate(model, tokenizer, chat, examples, stop_ids, limit, config.batch_size, max_prompt_tokens,
                        desc=f"eval ({label})", samples=config.samples, temperature=config.temperature)

    backend = choose_backend(config)
    log.info("evaluating %s on %d examples with %s: %s", export_dir, len(examples), backend,
             ", ".join(names) or "stop rate only")
    if backend == "vllm":
        tuned, base = generate_vllm(export_dir, info, tokenizer, chat, examples, stop_ids, limit, max_prompt_tokens,
                                    config)
    else:
        tuned, base = _generate_transformers(export_dir, info, run, config.compare_base)
    tuned_scores, tuned_metrics = score_examples(names, examples, tuned, column)
    result: dict[str, Any] = {"examples": len(examples), "metrics": names, "backend": backend,
                              "max_new_tokens": limit, "samples": config.samples,
                              "tuned": tuned_metrics, **output_stats(tuned)}
    base_scores: dict[str, list] = {}
    if base is not None:
        base_scores, base_metrics = score_examples(names, examples, base, column)
        result.update(base=base_metrics, base_outputs=output_stats(base))
    result["unscored"] = {n: sum(s is None for s in tuned_scores[n]) for n in names}
    if config.judge.base_url:
        from gatetune.evaluation.judge import judge_generations

        judged = judge_generations(config.judge, [e.prompt for e in examples], [g[0].text for g in tuned],
                                   [g[0].text for g in base] if base is not None else None)
        result["judge"] = judged
        if judged["trusted"]:  # only a trusted judge's score joins the metrics (and the regression gate), 0-1
            for label in ("tuned", "base"):
                mean = judged.get(f"{label}_mean_score")
                if label in result and mean is not None:
                    result[label]["judge_score"] = (mean - 1) / 4
    if "base" in result:
        result["delta"] = delta(result["tuned"], result["base"])
    result["results_path"] = str(write_results(out_dir / "eval_results.jsonl", examples, tuned, base, tuned_scores,
                                               base_scores))
    if names:
        from gatetune.plots import plot_eval

        result["plot"] = str(plot_eval(tuned_metrics, result.get("base"), out_dir / "eval.png"))
    return result


def default_max_new_tokens(tokenizer: Any, examples: list[EvalExample], completion_length: Optional[int]) -> int:
    """Twice the longest answer the examples give (32 to 1024 tokens); without answers, `completion_length`
    (else 256). Long enough for a model that answers like the data, short enough not to wait on one that
    never stops."""
    answers = [e.answer for e in examples if e.answer]
    if not answers:
        return completion_length or 256
    longest = max(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
    return min(1024, max(32, 2 * longest))


def write_results(path: Path, examples: list[EvalExample], tuned: list[list[Generation]],
                  base: list[list[Generation]] | None, tuned_scores: dict[str, list], base_scores: dict[str, list]) \
        -> Path:
    """One line per example: its first (or only) output, and with several samples all of them."""
    lines = []
    for i, example in enumerate(examples):
        first = tuned[i][0]
        row = {"line": example.line, "prompt": example.prompt, "reference": example.answer, "output": first.text,
               "output_tokens": first.tokens, "stopped": first.stopped,
               "scores": {k: v[i] for k, v in tuned_scores.items()}}
        if len(tuned[i]) > 1:
            row["samples"] = [g.text for g in tuned[i]]
        if base is not None:
            row.update(base_output=base[i][0].text, base_stopped=base[i][0].stopped,
                       base_scores={k: v[i] for k, v in base_scores.items()})
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    return write_text_atomic(path, lines)
