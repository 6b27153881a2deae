"""``ClinKDTrainer`` itself (clinkd.train.trainer): its loss, what it counts, its divergence guards, its order.

The stage runners that build it are tested in test_run.py; here the trainer is built directly on a tiny
student and a batch of the synthetic benchmark, so that each method is checked against the pure function
it must agree with (clinkd.train.losses).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import SequentialSampler
from transformers import TrainingArguments

from clinkd.data.formats import read_dataset_dir
from clinkd.errors import ClinkdError
from clinkd.model import load
from clinkd.train.dataset import ITEM_KINDS, ConversationCollator, items_from_dataset
from clinkd.train.losses import causal_lm_loss, distillation_loss
from clinkd.train.trainer import ClinKDTrainer


@pytest.fixture(scope="module")
def parts(synth_dir, tiny_student_dir):
    model, processor = load(tiny_student_dir)
    items = items_from_dataset(read_dataset_dir(synth_dir), max_samples=4)
    return model, processor, items


def _trainer(tmp_path, model, processor, items, **kw) -> ClinKDTrainer:
    args = TrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to=[],
        per_device_train_batch_size=2,
        learning_rate=1e-3,
    )
    return ClinKDTrainer(
        model=model, args=args, train_dataset=items, data_collator=ConversationCollator(processor), **kw
    )


def test_sft_loss_is_the_causal_lm_loss_and_counts_items_by_kind(tmp_path, parts):
    model, processor, items = parts
    items = [items[0], items[1]]
    items[1].kind = "correction"
    try:
        trainer = _trainer(tmp_path, model, processor, items)
        batch = trainer.data_collator(items)
        model.train()
        loss = trainer.compute_loss(model, batch)
        with torch.no_grad():
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "item_kind")}
            expected = causal_lm_loss(model(**inputs).logits, batch["labels"])
        # dropout is 0 in the tiny models: the two forwards agree
        assert torch.allclose(loss.detach(), expected, atol=1e-6)
        seen = dict(zip(ITEM_KINDS, trainer._seen.tolist()))
        assert seen == {"gt": 1, "pseudo": 0, "correction": 1}
    finally:
        items[1].kind = "gt"
        model.eval()


def test_cached_teacher_logits_give_the_distillation_loss(tmp_path, parts):
    model, processor, items = parts
    trainer = _trainer(tmp_path, model, processor, items[:2], alpha=0.5, temperature=0.5)
    batch = trainer.data_collator(items[:2])
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "item_kind")}
    with torch.no_grad():
        logits = model(**inputs).logits
    # a "teacher" that agrees with the student on its own top-4 rows
    values, indices = logits.topk(4, dim=-1)
    batch["teacher_topk_values"], batch["teacher_topk_indices"] = values, indices
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
    expected = distillation_loss(logits, (values, indices), batch["labels"], alpha=0.5, temperature=0.5)
    assert torch.allclose(loss, expected.loss, atol=1e-6)
    assert trainer._parts["kd"] > 0 and trainer._parts["ce"] > 0


def test_a_loss_that_is_not_finite_stops_the_run_with_what_to_change(tmp_path, parts):
    model, processor, items = parts
    trainer = _trainer(tmp_path, model, processor, items[:2])
    trainer._check_loss(torch.tensor(1.5))  # finite: nothing happens
    with pytest.raises(ClinkdError, match=r"the loss is nan.*Lower train.learning_rate \(now 0.001\)"):
        trainer._check_loss(torch.tensor(math.nan))


def test_weights_that_are_not_finite_are_named_and_never_saved(tmp_path, parts):
    model, processor, items = parts
    trainer = _trainer(tmp_path, model, processor, items[:2])
    assert trainer.nonfinite_weights() == []
    name, param = next((n, p) for n, p in model.named_parameters() if p.requires_grad)
    kept = param.detach().clone()
    try:
        with torch.no_grad():
            param.view(-1)[0] = math.inf
        assert trainer.nonfinite_weights() == [name]
        with pytest.raises(ClinkdError, match=f"checkpoint-0 was not saved.*{name}|{name}.*checkpoint-0"):
            trainer._save_checkpoint(model, None)
        assert not list(tmp_path.glob("checkpoint-*"))
    finally:
        with torch.no_grad():
            param.copy_(kept)


def test_the_dataset_order_is_never_reshuffled(tmp_path, parts):
    model, processor, items = parts
    trainer = _trainer(tmp_path, model, processor, items)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, SequentialSampler)
    assert list(sampler) == list(range(len(items)))
