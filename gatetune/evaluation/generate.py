"""Greedy generation for evaluation with transformers, in batches: prompts rendered with the chat template
and the run's template settings, left-padded, stopped at any of the export's stop tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from data_checks.chat_template import ChatTemplate
from gatetune.evaluation.examples import EvalExample


@dataclass
class Generation:
    text: str  # decoded without special tokens
    tokens: int  # generated tokens, the stop token included
    stopped: bool  # ended with a stop token before max_new_tokens


def prompt_ids(tokenizer: Any, chat: ChatTemplate, example: EvalExample) -> list[int]:
    """A message prompt as the server renders it (generation prompt added); a plain string as training read it."""
    if isinstance(example.prompt, list):
        return tokenizer(chat.prompt_text(example.prompt), add_special_tokens=False)["input_ids"]
    return tokenizer(example.prompt)["input_ids"]


def generate(model: Any, tokenizer: Any, chat: ChatTemplate, examples: list[EvalExample], stop_ids: list[int],
             max_new_tokens: int, batch_size: int, max_prompt_tokens: int, desc: str, samples: int = 1,
             temperature: float = 0.8, seed: int = 0) -> list[list[Generation]]:
    """Per example, one greedy generation (`samples` 1) or `samples` sampled ones at `temperature` (seeded).
    A prompt longer than `max_prompt_tokens` keeps its last tokens."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[list[Generation]] = []
    sampling = {"do_sample": True, "temperature": temperature, "num_return_sequences": samples} if samples > 1 \
        else {"do_sample": False}
    if samples > 1:
        torch.manual_seed(seed)
    try:
        for start in tqdm(range(0, len(examples), batch_size), desc=desc, unit="batch", leave=False):
            batch = [prompt_ids(tokenizer, chat, e)[-max_prompt_tokens:] for e in examples[start:start + batch_size]]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=device)
            attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
            with torch.no_grad():
                output = model.generate(input_ids=input_ids, attention_mask=attention, **sampling,
                                        max_new_tokens=max_new_tokens, eos_token_id=stop_ids, pad_token_id=pad)
            rows = output[:, width:].tolist()  # each prompt's `samples` rows are adjacent
            for start_row in range(0, len(rows), samples):
                results.append([_generation(tokenizer, row, stop_ids) for row in rows[start_row:start_row + samples]])
    finally:
        model.train(was_training)
    return results


def _generation(tokenizer: Any, row: list[int], stop_ids: list[int]) -> Generation:
    stop = next((i for i, t in enumerate(row) if t in stop_ids), None)
    kept = row if stop is None else row[:stop + 1]
    return Generation(tokenizer.decode(kept, skip_special_tokens=True), len(kept), stop is not None)
