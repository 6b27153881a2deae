"""Training on samples of several images (report studies, issue 16): items, collation, a step, RCT, pseudo."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from clinkd.data.formats import read_dataset_dir
from clinkd.data.images import load_image
from clinkd.errors import DataError
from clinkd.train.dataset import ConversationCollator, items_from_dataset

REPORT = "The heart is normal in size. The lungs are clear."


@pytest.fixture
def study(synth_dir, tmp_path):
    """A dataset folder with one 2-image report record and one single-image record."""
    src = sorted((synth_dir / "images").glob("*.png"))[:3]
    root = tmp_path / "data"
    (root / "images" / "s1").mkdir(parents=True)
    shutil.copy(src[0], root / "images" / "s1" / "0.png")
    shutil.copy(src[1], root / "images" / "s1" / "1.png")
    shutil.copy(src[2], root / "images" / src[2].name)
    recs = [
        {
            "id": "s1",
            "conversations": [
                {"from": "user", "value": "<img>s1/0.png</img><img>s1/1.png</img>\nWrite the findings."},
                {"from": "assistant", "value": REPORT},
            ],
        },
        {
            "id": "one",
            "conversations": [
                {"from": "user", "value": f"<img>{src[2].name}</img>\nWhat is shown?"},
                {"from": "assistant", "value": "an image"},
            ],
        },
    ]
    (root / "train.json").write_text(json.dumps(recs), encoding="utf-8")
    return root


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of image tokens (type 1) in one row of mm_token_type_ids."""
    runs, n = [], 0
    for t in row.tolist() + [0]:
        if t == 1:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_items_carry_every_image(study):
    two, one = items_from_dataset(read_dataset_dir(study))
    assert two.images == [study / "images" / "s1" / "0.png", study / "images" / "s1" / "1.png"]
    assert two.image == two.images[0]
    assert two.turns == [("Write the findings.", REPORT)]  # both tags stripped
    assert one.images == [one.image]
    derived = two.derive(turns=[("q", "a")], kind="pseudo")
    assert derived.images == two.images and derived.kind == "pseudo" and derived.meta == two.meta


def test_every_image_is_checked_before_training(study):
    (study / "images" / "s1" / "1.png").unlink()
    with pytest.raises(DataError, match=r"train.json \[record 0\] \(id s1\).*not found"):
        items_from_dataset(read_dataset_dir(study))


def test_two_image_batch_has_two_blocks_and_labels_on_the_answer_only(study, tiny_processor):
    items = items_from_dataset(read_dataset_dir(study))
    batch = ConversationCollator(tiny_processor)(items)
    ip = tiny_processor.image_processor
    # one grid per image, in order: the study's two, then the single image
    paths = [*items[0].images, items[1].image]
    expected = torch.cat([ip(images=[load_image(p)], return_tensors="pt")["image_grid_thw"] for p in paths])
    assert torch.equal(batch["image_grid_thw"], expected)
    merge = ip.merge_size**2
    sizes = [int(g.prod()) // merge for g in expected]
    assert _runs(batch["mm_token_type_ids"][0]) == sizes[:2]  # two separate image blocks
    assert _runs(batch["mm_token_type_ids"][1]) == sizes[2:]
    tok = tiny_processor.tokenizer
    vs = tok.convert_tokens_to_ids("<|vision_start|>")
    assert (batch["input_ids"][0] == vs).sum() == 2 and (batch["input_ids"][1] == vs).sum() == 1
    for row, it in enumerate(items):
        labels = batch["labels"][row]
        assert tok.decode(labels[labels != -100], skip_special_tokens=False) == it.turns[0][1] + "<|im_end|>"


def test_a_tiny_model_trains_a_step_on_a_two_image_batch(study, tiny_processor, tiny_student_dir):
    from clinkd.model import load

    model, _ = load(tiny_student_dir)
    model.train()
    items = items_from_dataset(read_dataset_dir(study))
    batch = ConversationCollator(tiny_processor)(items)
    batch.pop("item_kind")
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_reflective_correction_answers_and_replays_with_every_image(
    study, tmp_path, monkeypatch, bag_of_words
):
    import clinkd.train.rct as rct_mod
    from clinkd.train.config import RCTConfig
    from clinkd.train.rct import ReflectiveCorrection
    from clinkd.train.schedule import ScheduledDataset

    items = items_from_dataset(read_dataset_dir(study))[:1]  # the study
    seen = []

    def fake_generate(model, processor, images, questions, *, num_return_sequences=1, **kw):
        seen.append(images)
        if num_return_sequences == 1:
            return [["nothing"] for _ in questions]  # wrong: text too far from the report
        return [[REPORT] * num_return_sequences for _ in questions]

    monkeypatch.setattr(rct_mod, "generate_answers", fake_generate)
    dataset = ScheduledDataset(items, [0] * 8)
    cfg = RCTConfig(
        enabled=True, rounds=1, sample_size=1, num_candidates=2, replay=2, similarity_threshold=0.75
    )
    out = tmp_path / "out"
    cb = ReflectiveCorrection(cfg, dataset, None, out, max_steps=4, global_batch=1, embedder=bag_of_words)
    entry = cb.run_round(model=None, k=1, step=1)
    assert entry["found"] == 1 and entry["corrected"] == 1
    assert all(isinstance(ims[0], list) and len(ims[0]) == 2 for ims in seen)  # both views, each time
    (written,) = json.loads((out / "rct" / "round_1.json").read_text())
    assert written["conversations"][0]["value"].startswith(
        "<img>s1/0.png</img><img>s1/1.png</img>\n"
    )  # as the data file named them
    fresh = ScheduledDataset(items, [0] * 8)
    cb2 = ReflectiveCorrection(cfg, fresh, None, out, max_steps=4, global_batch=1, embedder=bag_of_words)
    assert cb2.restore(up_to_step=1) == 1
    replayed = [it for it in fresh.items if it.kind == "correction"]
    assert replayed and all(it.images == items[0].images for it in replayed)


def test_pseudo_labels_keep_every_image(study, monkeypatch):
    import clinkd.train.pseudo as pseudo_mod
    from clinkd.train.dataset import TrainItem
    from clinkd.train.pseudo import _item_key, turn_items

    _item, _row = TrainItem.from_row, TrainItem.to_row  # the cache rows

    items = items_from_dataset(read_dataset_dir(study))
    turns = turn_items(items, fraction=1.0, seed=0)
    assert [t.images for t in turns] == [it.images for it in items]
    two, one = turns
    assert _item(json.loads(json.dumps(_row(two)))).images == two.images
    assert "images" not in _row(one)  # single-image cache rows as before
    assert _item_key(one) == [str(one.image), [list(t) for t in one.turns], one.source]
    seen = []

    def fake_generate(model, processor, images, questions, **kw):
        seen.extend(images)
        return [["pseudo"] for _ in questions]

    monkeypatch.setattr(pseudo_mod, "generate_answers", fake_generate)
    monkeypatch.setattr(pseudo_mod, "teacher_pass", lambda *a, **k: ([1.0] * len(a[2]), None))
    from clinkd.train.config import DistillConfig

    out, _ = pseudo_mod._label_chunk(None, None, None, turns, DistillConfig(), None, None)
    assert isinstance(seen[0], list) and len(seen[0]) == 2 and not isinstance(seen[1], list)
    assert out[0].images == two.images and out[1].images == one.images  # pseudo-label or ground truth


@pytest.mark.parametrize("name", ["Qwen2-VL-2B-Instruct", "Qwen2.5-VL-3B-Instruct", "Qwen3-VL-2B-Instruct"])
def test_a_study_trains_on_hub_layout_stand_ins(study, hub_standin, name):
    """The two views of a study through each family's hub-layout checkpoint (the real Qwen vocabulary, the hub
    processor files, sharded weights) loaded with MCG-RoPE: two image blocks, a finite loss and gradients."""
    from clinkd.model import load

    model, processor = load(hub_standin(name), min_pixels=28 * 28, max_pixels=112 * 112)
    items = items_from_dataset(read_dataset_dir(study))
    batch = ConversationCollator(processor)(items)
    batch.pop("item_kind")
    assert batch["image_grid_thw"].shape[0] == 3  # the study's two views, then the single image
    assert len(_runs(batch["mm_token_type_ids"][0])) == 2 and len(_runs(batch["mm_token_type_ids"][1])) == 1
    model.train()
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
