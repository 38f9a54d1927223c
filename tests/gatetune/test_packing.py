"""training.packing: padding-free and bin-packed batches train each example exactly as a padded batch does.

The proof that no example attends to another is numerical: the per-example loss of a packed row equals the loss
of the same example in a padded batch (fp32, the tiny model, TRL's own collators and dataset preparation), and
the tokens that carry the loss are the same.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest

from tests.conftest import typed


def naive_first_fit_decreasing(lengths: list[int], budget: int) -> list[list[int]]:
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for b, free in enumerate(room):
            if free >= lengths[i]:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(budget - lengths[i])
    return bins


def test_first_fit_decreasing_matches_the_textbook_packer_and_never_splits_or_overfills():
    from gatetune.packing import first_fit_decreasing

    rng = random.Random(0)
    for _ in range(30):
        budget = rng.choice([64, 100, 256])
        lengths = [min(budget, int(rng.paretovariate(1.2) * 8)) for _ in range(rng.randint(1, 300))]
        bins = first_fit_decreasing(lengths, budget)
        assert bins == naive_first_fit_decreasing(lengths, budget)
        assert sorted(i for b in bins for i in b) == list(range(len(lengths)))  # each example once, whole
        assert all(sum(lengths[i] for i in b) <= budget for b in bins)
    assert first_fit_decreasing([], 10) == []
    with pytest.raises(ValueError, match="does not fit"):
        first_fit_decreasing([3, 11], 10)


def test_bin_pack_sampler_reshuffles_bins_per_epoch_reproducibly_and_splits_them_over_ranks():
    from gatetune.packing import BinPackSampler

    lengths = [random.Random(1).randint(1, 50) for _ in range(200)]
    sampler = BinPackSampler(lengths, 100, seed=7)
    epoch0 = list(sampler)
    assert len(epoch0) == len(sampler) == len(sampler.bins)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0 and sorted(map(tuple, epoch1)) == sorted(map(tuple, epoch0))
    again = BinPackSampler(lengths, 100, seed=7)
    again.set_epoch(1)
    assert list(again) == epoch1  # a resumed run sees the same order
    ranks = [list(BinPackSampler(lengths, 100, seed=7, world_size=3, rank=r)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1
    covered = {i for r in ranks for b in r for i in b}
    assert covered == set(range(200))


@pytest.fixture(scope="module")
def sft_setup(tiny_model_dir: Path):
    from data_checks.chat_template import ChatTemplate
    from gatetune.data import load_splits, sft_rows
    from gatetune.modeling import load_tokenizer, model_source

    config = typed(["logger=none", "training.packing=none", "lora.dropout=0"])
    source = model_source(config.model)
    tokenizer = load_tokenizer(config.model, source)
    splits = load_splits(config.data, config.recipe, config.seed)
    train, evaluation, _, _ = sft_rows(config.data, splits, ChatTemplate(tokenizer, {}))
    return source, tokenizer, train, evaluation


def trainer_for(packing: str, sft_setup, rows: list[dict], extra: tuple[str, ...] = ()):
    from transformers import set_seed

    from gatetune.modeling import load_model
    from gatetune.trainer import build_trainer

    source, tokenizer, _, evaluation = sft_setup
    config = typed(["logger=none", f"training.packing={packing}", "lora.dropout=0", *extra])
    set_seed(config.seed)
    return build_trainer(config, load_model(config, source), tokenizer, rows, evaluation.select(range(8)),
                         Path(tempfile.mkdtemp(prefix=f"packing-{packing}-")))


def per_example_losses(model, batch) -> list[tuple[float, int]]:
    """(summed token loss, trained tokens) of each example in a collated batch, padded or packed."""
    import torch

    model.eval()
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    with torch.no_grad():
        logits = model(**inputs).logits.float()
    labels = batch["labels"]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none",
                                               ignore_index=-100)
    trained = labels[:, 1:] != -100
    if "position_ids" in batch and "attention_mask" not in batch:  # one packed row: split at each example start
        starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [labels.shape[1]]
        spans = zip(starts, starts[1:], strict=False)
        return [(float(losses[0, a:b - 1].sum()), int(trained[0, a:b - 1].sum())) for a, b in spans]
    return [(float(losses[i].sum()), int(trained[i].sum())) for i in range(labels.shape[0])]


@pytest.mark.parametrize("packing,attention", [("padding_free", "varlen_sdpa"), ("bin_pack", "varlen_sdpa"),
                                               ("padding_free", "eager")])
def test_a_packed_row_gives_every_example_its_padded_loss_and_its_trained_tokens(packing: str, attention: str,
                                                                                 sft_setup):
    """varlen_sdpa: SDPA per example (gatetune/kernels.py); eager: transformers' block-diagonal mask from
    position_ids, which needs the model to run without a KV cache."""
    _, _, train, _ = sft_setup
    rows = train.select(range(40))
    extra = ("model.attn_implementation=eager",) if attention == "eager" else ()
    padded = trainer_for("none", sft_setup, rows, extra)
    packed = trainer_for(packing, sft_setup, rows, extra)
    assert packed.model.config._attn_implementation == attention
    assert packed.model.config.use_cache is False  # else transformers drops the packed-sequence mask
    # The same LoRA weights in both (same seed): compare the model on the same examples, batched two ways.
    for name, value in padded.model.state_dict().items():
        assert (value == packed.model.state_dict()[name]).all()
    examples = [5, 0, 17, 33, 2, 11, 29, 8]
    padded_batch = padded.data_collator([padded.train_dataset[i] for i in examples])
    packed_batch = packed.data_collator([packed.train_dataset[i] for i in examples])
    assert packed_batch["input_ids"].shape[0] == 1 and "attention_mask" not in packed_batch
    assert packed_batch["input_ids"].shape[1] == sum(len(rows[i]["input_ids"]) for i in examples)  # no padding
    want = per_example_losses(padded.model, padded_batch)
    got = per_example_losses(packed.model, packed_batch)
    assert [n for _, n in got] == [n for _, n in want]
    assert [n for _, n in got] == [sum(rows[i]["assistant_masks"][1:]) for i in examples]
    for (loss, n), (ref, _) in zip(got, want, strict=True):
        assert n > 0 and abs(loss / n - ref / n) < 1e-5


def test_bin_pack_batches_are_the_bins_and_carry_the_sum_of_their_examples_answer_tokens(sft_setup):
    _, _, train, _ = sft_setup
    rows = train.select(range(60))
    trainer = trainer_for("bin_pack", sft_setup, rows, ("training.tokens_per_batch=300",))
    assert trainer.token_budget == 300
    loader = trainer.get_train_dataloader()
    sampler = trainer._get_train_sampler()
    bins = list(sampler)
    batches = list(loader)
    assert len(batches) == len(bins) == len(loader)
    assert sorted(i for b in bins for i in b) == list(range(len(rows)))
    for bin_, batch in zip(bins, batches, strict=True):
        assert batch["input_ids"].shape == (1, sum(len(rows[i]["input_ids"]) for i in bin_)) and \
            batch["input_ids"].shape[1] <= 300
        trained = int((batch["labels"][0, 1:] != -100).sum())
        assert trained == sum(sum(rows[i]["assistant_masks"][1:]) for i in bin_)
    # an optimiser step sees about training.effective_batch_size=16 examples
    assert trainer.args.per_device_train_batch_size == 1
    per_bin = len(rows) / len(bins)
    assert abs(trainer.args.gradient_accumulation_steps * per_bin - 16) <= per_bin


@pytest.mark.slow
def test_padding_free_trains_to_the_padded_adapter_with_the_same_batches(sft_setup):
    """Same seed, same sampler order, same effective batch: the same weights after a few optimiser steps."""
    _, _, train, _ = sft_setup
    rows = train.select(range(64))
    results, initial = {}, {}
    for packing in ("none", "padding_free"):
        trainer = trainer_for(packing, sft_setup, rows, ("training.max_steps=3", "training.eval_every_steps=100",
                                                         "training.learning_rate=1e-2"))
        initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items() if "lora_" in k}
        trainer.train()
        results[packing] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items() if "lora_" in k}
    for name, value in results["none"].items():
        moved = float((value - initial[name]).norm())
        assert moved > 1e-3, name  # every LoRA matrix trained
        # fp32 sums in another order (Adam magnifies them where a gradient is near its epsilon): a difference
        # far below what training moved the weights
        assert float((value - results["padding_free"][name]).norm()) < 1e-3 * moved, name


def test_packing_keys_resolve_and_refuse_impossible_combinations():
    from gatetune.config import resolved_packing
    from gatetune.errors import ConfigError

    assert resolved_packing(typed([])) == "padding_free"  # SFT's default (docs/benchmarks.md)
    assert resolved_packing(typed(["recipe=dpo", "data=preference_sample"])) == "none"
    assert resolved_packing(typed(["training.group_by_length=true"])) == "none"
    assert resolved_packing(typed(["training.tokens_per_batch=4096"])) == "bin_pack"
    refused = {
        ("recipe=dpo", "data=preference_sample", "training.packing=padding_free"): r"training\.packing: .*TRL 1\.16",
        ("recipe=grpo", "data=prompt_sample", "training.packing=bin_pack"): r"training\.packing: objective grpo",
        ("training.packing=padding_free", "training.group_by_length=true"): r"training\.group_by_length: .*no padding",
        ("training.packing=padding_free", "training.tokens_per_batch=4096"): r"training\.tokens_per_batch: .*budget",
        ("data.max_length=256", "training.tokens_per_batch=100"): r"training\.tokens_per_batch: 100 is below",
    }
    for overrides, message in refused.items():
        with pytest.raises(ConfigError, match=message):
            typed(list(overrides))


def test_attention_auto_takes_sdpa_without_flash_attention_and_varlen_sdpa_for_packed_rows(caplog):
    import logging

    import torch
    from transformers import LlamaForCausalLM

    from gatetune.kernels import VARLEN_SDPA, choose_attention

    with caplog.at_level(logging.INFO, logger="gatetune.kernels"):
        assert choose_attention("auto", LlamaForCausalLM, torch.float32, packed=False) == "sdpa"
    assert "flash-attention 2 not used" in caplog.text  # the reason is logged: no flash_attn / no GPU / fp32
    assert choose_attention("auto", LlamaForCausalLM, torch.float32, packed=True) == VARLEN_SDPA
    assert choose_attention(None, LlamaForCausalLM, torch.float32, packed=True) == VARLEN_SDPA
    assert choose_attention("eager", LlamaForCausalLM, torch.float32, packed=True) == "eager"
    assert choose_attention(None, LlamaForCausalLM, torch.float32, packed=False) is None


def test_liger_is_refused_before_any_model_loads_where_it_cannot_run():
    import torch

    from gatetune.errors import ConfigError
    from gatetune.modeling import check_kernels, model_source

    config = typed(["training.liger=true"])
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the GPU test below covers Liger")
    with pytest.raises(ConfigError, match="training.liger: .*CUDA"):
        check_kernels(config, model_source(config.model))


@pytest.mark.gpu
def test_liger_refuses_an_architecture_it_has_no_kernels_for():
    from gatetune.errors import ConfigError
    from gatetune.kernels import check_liger, liger_architectures

    assert "llama" in liger_architectures()
    check_liger("llama")
    with pytest.raises(ConfigError, match="no kernels for the 'gpt_neox_tiny' architecture"):
        check_liger("gpt_neox_tiny")


@pytest.mark.parametrize("family", ["llama", "qwen3", "gemma3_text", "mistral"])
def test_varlen_sdpa_gives_each_packed_example_its_own_logits_sliding_windows_included(family: str):
    """Per architecture, examples longer than Gemma 3's 64-token window (tiny_families.SLIDING) included:
    one packed row through varlen_sdpa equals each example alone through transformers' SDPA."""
    import torch
    import transformers

    from gatetune.kernels import VARLEN_SDPA, register_varlen_sdpa
    from gatetune.tiny_families import ARCHITECTURES, tiny_config

    register_varlen_sdpa()
    config = tiny_config(family, vocab_size=300, bos_token_id=None, eos_token_id=1, pad_token_id=0)
    config.use_cache = False
    torch.manual_seed(0)
    model = getattr(transformers, ARCHITECTURES[family].model_class)(config).eval()
    lengths = [90, 30, 130, 5]
    examples = [torch.randint(2, 300, (n,)) for n in lengths]
    model.set_attn_implementation("sdpa")
    with torch.no_grad():
        alone = torch.cat([model(input_ids=e[None]).logits[0] for e in examples])
    model.set_attn_implementation(VARLEN_SDPA)
    bounds = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    with torch.no_grad():
        packed = model(input_ids=torch.cat(examples)[None],
                       position_ids=torch.cat([torch.arange(n) for n in lengths])[None],
                       cu_seq_lens_q=bounds, cu_seq_lens_k=bounds, max_length_q=max(lengths),
                       max_length_k=max(lengths)).logits[0]
    assert (packed - alone).abs().max() < 1e-4
