"""How examples share a batch: padded (`none`), concatenated without padding (`padding_free`), or packed into
bins of a fixed token budget (`bin_pack`). The `training.packing` key.

- `none`: TRL's padded batches of `per_device` examples (`training.group_by_length` orders them by length,
  transformers' LengthGroupedSampler).
- `padding_free`: the same batches, each concatenated into one row with `position_ids` restarting at every
  example and no padding token (TRL's `padding_free` collator). No example attends to another: flash-attention
  reads the boundaries from the collator's `cu_seq_lens`, SDPA and eager get a block-diagonal mask that
  transformers derives from `position_ids`.
- `bin_pack`: batches of at most `training.tokens_per_batch` tokens, filled first-fit-decreasing (an example is
  never split), each concatenated as above. Gradient accumulation is set so that an optimiser step still sees
  about `training.effective_batch_size` examples.

Isolation needs the model to run without a KV cache while training: with `use_cache=True` transformers skips
the packed-sequence mask (it looks for packing only when there is no cache), and every example would attend to
the ones before it in the row (`prepare_model`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from transformers.trainer_pt_utils import BatchRebalanceSampler

from gatetune.batching import batch_layout
from gatetune.config import resolved_packing

if TYPE_CHECKING:
    from gatetune.config import TrainConfig

log = logging.getLogger(__name__)


def token_budget(config: TrainConfig, lengths: Sequence[int], world_size: int) -> int:
    """bin_pack's budget: `training.tokens_per_batch`, or by default the real tokens of an average per-device
    batch (per-device batch x mean length, at least data.max_length so every example fits): the same
    examples per optimiser step as the padded layout, without its padding."""
    if config.training.tokens_per_batch:
        return config.training.tokens_per_batch
    per_device, _ = batch_layout(config.training, world_size)
    mean = sum(lengths) / max(1, len(lengths))
    return max(config.data.max_length, round(per_device * mean))


def first_fit_decreasing(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of `lengths` in bins whose lengths sum to at most `budget`: longest first, each into the first bin
    with room (a max segment tree over the bins' free space finds it in O(log n)). Every length must fit."""
    n = len(lengths)
    if n == 0:
        return []
    if max(lengths) > budget:
        raise ValueError(f"an example of {max(lengths)} tokens does not fit a budget of {budget}")
    size = 1
    while size < n:
        size *= 2
    free = [0] * (2 * size)  # free[size + b]: room left in bin b (budget once it is opened)
    for b in range(n):  # at most n bins, all unopened (full budget) at first
        free[size + b] = budget
    for node in range(size - 1, 0, -1):
        free[node] = max(free[2 * node], free[2 * node + 1])
    bins: list[list[int]] = []
    for index in sorted(range(n), key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        node = 1
        while node < size:  # descend to the leftmost bin with room
            node = 2 * node if free[2 * node] >= length else 2 * node + 1
        b = node - size
        if b == len(bins):
            bins.append([])
        bins[b].append(index)
        free[node] -= length
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return bins


class BinPackSampler(BatchRebalanceSampler):
    """Yields each bin of `first_fit_decreasing` as one batch of example indices, the bins in a fresh random
    order every epoch (seeded: the same order after a resume). Rank-aware: with several processes each takes
    every `world_size`-th bin, the list first extended by repeating bins so that every rank gets as many.

    A BatchRebalanceSampler subclass because transformers' Trainer hands that type to the DataLoader as its
    `batch_sampler` (and leaves the sharding to it); no other state of the parent is used."""

    def __init__(self, lengths: Sequence[int], budget: int, seed: int, world_size: int = 1, rank: int = 0,
                 shuffle: bool = True) -> None:
        self.bins = first_fit_decreasing(lengths, budget)
        self.budget, self.seed, self.world_size, self.rank, self.shuffle = budget, seed, world_size, rank, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _ordered(self) -> list[list[int]]:
        import torch

        if not self.shuffle:
            order = list(range(len(self.bins)))
        else:
            order = torch.randperm(len(self.bins), generator=torch.Generator().manual_seed(self.seed + self.epoch))
            order = order.tolist()
        total = len(self) * self.world_size
        order += order[:total - len(order)]
        return [self.bins[i] for i in order]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._ordered()[self.rank::self.world_size]

    def __len__(self) -> int:
        return math.ceil(len(self.bins) / self.world_size)


def packing_args(config: TrainConfig, train_lengths: Sequence[int], world_size: int) -> dict[str, Any]:
    """The TRL config keys the packing mode sets, over `common_args`: padding-free collation (the rows are
    truncated already, so TRL's own `max_length` is off), bin_pack's batch layout, group_by_length's sampler."""
    mode = resolved_packing(config)
    if mode == "none":
        return {"train_sampling_strategy": "group_by_length"} if config.training.group_by_length else {}
    args: dict[str, Any] = {"padding_free": True, "max_length": None}
    if mode == "bin_pack":
        budget = token_budget(config, train_lengths, world_size)
        bins = first_fit_decreasing(train_lengths, budget)
        per_bin = len(train_lengths) / max(1, len(bins))
        accumulation = max(1, round(config.training.effective_batch_size / (per_bin * world_size)))
        fill = sum(train_lengths) / (len(bins) * budget) if bins else 0.0
        log.info("bin_pack: %d examples in %d bins of at most %d tokens (%.1f examples, %.0f%% full on average); "
                 "%d bins per optimiser step x %d processes = about %.0f examples (training.effective_batch_size=%d)",
                 len(train_lengths), len(bins), budget, per_bin, 100 * fill, accumulation, world_size,
                 accumulation * world_size * per_bin, config.training.effective_batch_size)
        if accumulation * world_size * per_bin > 1.5 * config.training.effective_batch_size:
            log.warning("bin_pack: a bin of %d tokens holds %.0f examples, so an optimiser step sees more than "
                        "training.effective_batch_size=%d; lower training.tokens_per_batch or raise the batch",
                        budget, per_bin, config.training.effective_batch_size)
        args.update(per_device_train_batch_size=1, gradient_accumulation_steps=accumulation)
    return args


def prepare_model(model: Any, mode: str) -> None:
    """Padding-free rows are isolated by `position_ids` only when training runs without a KV cache."""
    if mode != "none":
        model.config.use_cache = False


class BinPackMixin:
    """Mixed into the TRL trainer: with `token_budget` set (bin_pack, by `build_trainer`), the training batches
    are BinPackSampler bins."""

    token_budget: int | None = None

    def _get_train_sampler(self: Any, train_dataset: Any = None) -> Any:
        if self.token_budget is None:
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        lengths = dataset["length"] if "length" in dataset.column_names else [len(i) for i in dataset["input_ids"]]
        return BinPackSampler(lengths, self.token_budget, self.args.seed, self.args.world_size,
                              self.args.process_index)
