"""Served parity: greedy answers through the running server against transformers + PEFT greedy generation on
the run's eval prompts (float32 on both sides), recorded in summary.json as `served_check`, which the
deployment decision reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from gatetune.serving.plan import ServeError, ServePlan


def eval_prompts(run_dir: Path, limit: int) -> list[list[dict[str, Any]]]:
    """The first `limit` chat prompts of the run's evaluation (eval_results.jsonl)."""
    results = run_dir / "eval_results.jsonl"
    if not results.is_file():
        raise ServeError(f"{results} is missing: the run's evaluation did not run (eval=off), so there are no eval "
                         "prompts to compare on; run `gatetune eval RUN_DIR` first")
    prompts = []
    for line in results.read_text(encoding="utf-8").splitlines():
        prompt = json.loads(line).get("prompt")
        if isinstance(prompt, list) and prompt:
            prompts.append(prompt)
        if len(prompts) == limit:
            break
    if not prompts:
        raise ServeError(f"{results}: no chat prompts to compare on")
    return prompts


def reference_generations(plan: ServePlan, prompts: list[list[dict[str, Any]]], max_new_tokens: int) -> list[Any]:
    """transformers (+ PEFT for an adapter) greedy generations in float32, as evaluation generates."""
    import torch
    from transformers import AutoModelForCausalLM

    from data_checks.chat_template import ChatTemplate
    from gatetune.evaluation.evaluate import export_info, load_tokenizer
    from gatetune.evaluation.examples import EvalExample
    from gatetune.evaluation.generate import generate

    assert plan.export_dir is not None
    info = export_info(plan.export_dir)
    tokenizer = load_tokenizer(plan.export_dir, info)
    chat = ChatTemplate(tokenizer, plan.template_kwargs)
    model = AutoModelForCausalLM.from_pretrained(plan.model, dtype=torch.float32)
    if plan.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(plan.adapter))
    examples = [EvalExample(i, p, None, {}) for i, p in enumerate(prompts)]
    stop_ids = plan.stop_token_ids or [tokenizer.eos_token_id]
    return [g[0] for g in generate(model, tokenizer, chat, examples, stop_ids, max_new_tokens, batch_size=1,
                                   max_prompt_tokens=plan.max_model_len or 4096, desc="reference (transformers)")]


def served_generations(base_url: str, model: str, prompts: list[list[dict[str, Any]]],
                       max_new_tokens: int) -> list[dict[str, Any]]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="EMPTY", timeout=300, max_retries=0)
    answers = []
    for messages in prompts:
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=max_new_tokens,
                                               temperature=0)
        choice = reply.choices[0]
        answers.append({"text": choice.message.content or "", "tokens": reply.usage.completion_tokens,
                        "stopped": choice.finish_reason == "stop"})
    return answers


def compare(reference: list[Any], served: list[dict[str, Any]]) -> dict[str, Any]:
    """Per prompt: same text, same number of tokens, and both stopped (or both ran to the limit)."""
    mismatches = []
    for i, (ref, got) in enumerate(zip(reference, served, strict=True)):
        same = ref.text == got["text"] and ref.tokens == got["tokens"] and ref.stopped == got["stopped"]
        if not same:
            mismatches.append({"prompt": i, "transformers": ref.text, "transformers_tokens": ref.tokens,
                               "served": got["text"], "served_tokens": got["tokens"],
                               "transformers_stopped": ref.stopped, "served_stopped": got["stopped"]})
    matching = len(reference) - len(mismatches)
    detail = (f"{matching} of {len(reference)} greedy answers through the server equal transformers'"
              + ("" if not mismatches else f"; first difference at prompt {mismatches[0]['prompt']}"))
    return {"passed": not mismatches, "examples": len(reference), "matching": matching,
            "stop_rate_served": sum(g["stopped"] for g in served) / len(served) if served else None,
            "mismatches": mismatches[:5], "detail": detail}


def record_served_check(run_dir: Path, check: dict[str, Any]) -> Optional[dict[str, Any]]:
    """Write `served_check` into the run's summary.json and refresh `deploy_ready` with it."""
    from omegaconf import OmegaConf

    from data_checks import write_json_atomic
    from gatetune.evaluation.config import EvalConfig
    from gatetune.evaluation.decision import deploy_decision

    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["served_check"] = check
    config = EvalConfig()
    saved = run_dir / "config.yaml"
    if saved.is_file():
        node = OmegaConf.load(saved).get("eval")
        if node is not None:
            config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(EvalConfig), node))
    decision = deploy_decision(summary, config)
    summary["deploy_ready"], summary["deploy_reasons"] = decision["deploy_ready"], decision["reasons"]
    write_json_atomic(path, summary)
    return summary
