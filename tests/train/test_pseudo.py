"""Pseudo-labelling: the cache is reused only when what produced it is the same."""

import dataclasses
import logging
import shutil

import pytest
from safetensors.torch import load_file, save_file

from clinkd.data.formats import read_dataset_dir
from clinkd.model import load
from clinkd.train.config import DistillConfig
from clinkd.train.dataset import items_from_dataset
from clinkd.train.pseudo import pseudo_label, turn_items


@pytest.fixture
def setup(tmp_path, synth_dir, tiny_teacher_dir):
    teacher_copy = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, teacher_copy)
    teacher, processor = load(teacher_copy)
    items = turn_items(items_from_dataset(read_dataset_dir(synth_dir), max_samples=3), 0.5, seed=0)
    cfg = DistillConfig(teacher=str(teacher_copy), max_new_tokens=4, generation_batch_size=4, top_k=8)
    return teacher, processor, items, cfg, tmp_path / "out", teacher_copy


def _label(setup, caplog, cfg=None, items=None, teacher=None, seed=0):
    t, processor, its, c, out, _ = setup
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="clinkd"):
        labelled, _ = pseudo_label(teacher or t, processor, items or its, cfg or c, cache_dir=out, seed=seed)
    return labelled, caplog.text


def test_cache_is_reused_only_with_the_same_inputs(setup, caplog):
    _teacher, _processor, items, cfg, out, teacher_dir = setup
    first, log = _label(setup, caplog)
    assert "read from" not in log and (out / "pseudo_labels.json").is_file()
    again, log = _label(setup, caplog)
    assert "pseudo-labels read from" in log
    assert [(i.turns, i.margin) for i in again] == [(i.turns, i.margin) for i in first]
    # each input of the key, changed alone, makes it label again and say why
    changes = {
        "margin_floor": dict(cfg=dataclasses.replace(cfg, margin_floor=0.9)),
        "top_k": dict(cfg=dataclasses.replace(cfg, top_k=4)),
        "generation": dict(cfg=dataclasses.replace(cfg, max_new_tokens=5)),
        "seed": dict(seed=1),
        "items": dict(items=items[:-1] + [dataclasses.replace(items[-1], turns=[("another question", "x")])]),
    }
    for field, kw in changes.items():
        _, log = _label(setup, caplog, **kw)
        assert f"not reused: its {field} differs" in log, (field, log)
        _label(setup, caplog)  # back to the original cache
    # the same teacher folder retrained in place: its weights changed
    for f in teacher_dir.glob("*.safetensors"):
        w = load_file(str(f))
        k = sorted(w)[0]
        w[k] = w[k] + 1.0
        save_file(w, str(f), metadata={"format": "pt"})
    retrained, _ = load(teacher_dir)
    _, log = _label(setup, caplog, teacher=retrained)
    assert "not reused: its teacher_weights differs" in log


def test_a_cache_without_a_key_is_not_trusted(setup, caplog):
    import json

    _label(setup, caplog)
    cache = setup[4] / "pseudo_labels.json"
    data = json.loads(cache.read_text())
    del data["key"]  # as written before keys existed: reused whenever the item count matched
    cache.write_text(json.dumps(data))
    _, log = _label(setup, caplog)
    assert "records no key" in log


def test_a_teacher_in_another_box_convention_is_read_into_medgrit(setup, monkeypatch):
    """A Qwen2.5-VL-convention teacher answers in JSON pixels of the resized image: its pseudo-labels are
    read back to Med-GRIT 0-1000 before the contradiction check and stored like the ground truth; the
    student's convention (medgrit here) is what the teacher pass scores, and both are in the cache key."""
    import torch

    from clinkd.data.boxes import parse_boxes
    from clinkd.data.conventions import CONVENTIONS, BoxCodec
    from clinkd.data.images import image_size
    from clinkd.model.processor import box_codec

    teacher, processor, items, cfg, out, _ = setup
    monkeypatch.setattr(teacher.config, "clinkd_box_convention", "qwen2_5_vl", raising=False)
    grounded = [it for it in items if len(parse_boxes(it.turns[0][1])) == 1 and "<ref>" in it.turns[0][1]][:1]
    assert grounded, "the fixture's subset has a grounding answer"
    (item,) = grounded
    ref = item.turns[0][1]
    codec = box_codec(teacher, processor)
    raw = codec.to_model(ref, image_size(item.image))  # what a teacher that knows the answer writes
    assert "bbox_2d" in raw
    tok = processor.tokenizer
    new = torch.tensor([tok(raw + "<|im_end|>", add_special_tokens=False)["input_ids"]])

    def generate(**kwargs):
        ids = kwargs["input_ids"]
        return torch.cat([ids, new.expand(ids.shape[0], -1)], dim=1)

    monkeypatch.setattr(teacher, "generate", generate)
    cfg = dataclasses.replace(cfg, margin_floor=0.0, max_new_tokens=new.shape[1] + 2)
    student = BoxCodec(CONVENTIONS["medgrit"])
    (labelled,), stats = pseudo_label(teacher, processor, [item], cfg, cache_dir=out, seed=0, boxes=student)
    assert labelled.kind == "pseudo" and stats["replaced_contradicting"] == 0
    (got,), (want,) = parse_boxes(labelled.turns[0][1]), parse_boxes(ref)
    assert got.iou(want) > 0.9 and "bbox_2d" not in labelled.turns[0][1]
    import json

    key = json.loads((out / "pseudo_labels.json").read_text())["key"]["boxes"]
    assert key["teacher"] == "qwen2_5_vl" and key["student"]["box_convention"] == "medgrit"
