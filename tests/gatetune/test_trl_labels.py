"""TRL turns our answer masks into the labels it trains on: the token id on answer tokens, -100 elsewhere.

TRL changed this contract recently (`assistant_masks` became labels in its dataset preparation, where a
collator flag used to do it); this test reads what TRL's own dataset and collator give the model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.conftest import typed


def test_trl_labels_are_the_answer_tokens_and_minus_100_everywhere_else(tiny_model_dir: Path):
    import torch

    from data_checks.chat_template import ChatTemplate
    from gatetune.data import load_splits, sft_rows
    from gatetune.modeling import load_model, load_tokenizer, model_source
    from gatetune.trainer import build_trainer

    config = typed(["training.max_steps=1", "logger=none", "training.packing=none"])
    source = model_source(config.model)
    tokenizer = load_tokenizer(config.model, source)
    splits = load_splits(config.data, config.recipe, config.seed)
    train, evaluation, _, _ = sft_rows(config.data, splits, ChatTemplate(tokenizer, {}))
    rows = train.select(range(6))
    trainer = build_trainer(config, load_model(config, source), tokenizer, rows, evaluation.select(range(2)),
                            Path(tempfile.mkdtemp(prefix="labels-")))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    assert len(batch["labels"]) == len(rows)
    for i, row in enumerate(rows):
        ids, mask = torch.tensor(row["input_ids"]), torch.tensor(row["assistant_masks"]).bool()
        n = len(ids)
        assert 0 < int(mask.sum()) < n  # the prompt is masked, the answer is not
        assert torch.equal(batch["input_ids"][i][:n], ids)
        assert torch.equal(batch["labels"][i][:n], torch.where(mask, ids, torch.tensor(-100)))
        assert bool((batch["labels"][i][n:] == -100).all())  # padding carries no loss
