"""Boxes cross the model's boundary in one place (``generate_batch``): every user of generation — greedy
answers, SASG candidates, pseudo-labels, ``ask``, the web app — gets Med-GRIT text back, boxes on the
original image, whatever convention the model writes in (here Qwen2.5-VL's: JSON in pixels of the
resized image, the one that moves when converted)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from clinkd.data.boxes import Box, parse_boxes
from clinkd.data.conventions import resized_size
from clinkd.model.processor import pixel_budget

RAW = '```json\n[{"bbox_2d": [%d, %d, %d, %d], "label": "liver"}]\n```'


@pytest.fixture
def qwen25(tiny_student, monkeypatch):
    """The tiny student told to answer in Qwen2.5-VL's convention; ``writes(texts)`` makes its
    ``generate`` append those texts' tokens to the prompts (row r gets ``texts[r % len(texts)]``)."""
    model, processor = tiny_student
    monkeypatch.setattr(model.config, "clinkd_box_convention", "qwen2_5_vl", raising=False)
    tok = processor.tokenizer
    seen: list[list[str]] = []

    def writes(*texts):
        rows = [tok(t + "<|im_end|>", add_special_tokens=False)["input_ids"] for t in texts]
        width = max(map(len, rows))
        pad = tok.convert_tokens_to_ids("<|im_end|>")
        rows = torch.tensor([r + [pad] * (width - len(r)) for r in rows])

        def generate(**kwargs):
            ids = kwargs["input_ids"]
            seen.append(tok.batch_decode(ids))
            new = rows[torch.arange(ids.shape[0]) % len(rows)]
            return torch.cat([ids, new], dim=1)

        monkeypatch.setattr(model, "generate", generate)

    return model, processor, writes, seen


def _pixels_of(box: Box, image_size, processor):
    lo, hi = pixel_budget(processor)
    w, h = resized_size(*image_size, factor=28, min_pixels=lo, max_pixels=hi)
    return [round(v * s / 1000) for v, s in zip(box.coords, (w, h, w, h))], (w, h)


def test_generate_batch_writes_questions_and_reads_answers(qwen25):
    from clinkd.infer.generate import generate_answers

    model, processor, writes, seen = qwen25
    image = Image.fromarray(np.zeros((90, 150, 3), dtype=np.uint8))  # not square: x and y scale apart
    px, (w, h) = _pixels_of(Box(200, 300, 600, 900), image.size, processor)
    writes(RAW % tuple(px))
    (answers,) = generate_answers(
        model, processor, [image], ["What is in <box>(200,300),(600,900)</box>?"], max_new_tokens=40
    )
    assert '{"bbox_2d": [%d, %d, %d, %d]}' % tuple(px) in seen[-1][0]  # the question, in the model's form
    (answer,) = answers
    assert answer.raw == RAW % tuple(px) and answer.reading.problems == []
    (box,) = parse_boxes(answer)
    assert all(
        abs(a - b) <= max(1, 1000 / s) for a, b, s in zip(box.coords, (200, 300, 600, 900), (w, h, w, h))
    )
    assert str(answer).startswith("<ref>liver</ref><box>(")


def test_sasg_candidates_are_compared_as_medgrit_boxes(qwen25, embedder):
    from clinkd.infer.sasg import generate_candidates, select_answers

    model, processor, writes, _ = qwen25
    image = Image.fromarray(np.zeros((112, 112, 3), dtype=np.uint8))
    near, _ = _pixels_of(Box(100, 100, 500, 500), image.size, processor)
    far, _ = _pixels_of(Box(700, 700, 900, 900), image.size, processor)
    writes(RAW % tuple(far), RAW % tuple(near), RAW % tuple(near), RAW % tuple(near))
    (cands,) = generate_candidates(
        model, processor, [image], ["Where is the liver?"], n=3, max_new_tokens=40, length_factor=None
    )
    assert all(c.startswith("<ref>liver</ref><box>") for c in cands) and "bbox_2d" in cands[0].raw
    (choice,) = select_answers([cands], embedder)
    assert choice.index != 0 and parse_boxes(choice.answer)[0].iou(Box(100, 100, 500, 500)) > 0.8


def _scan_answered(tmp_path, processor, writes):
    """A black 320x200 scan, and the model made to answer with the liver at (250,100),(500,400) in its pixels."""
    path = tmp_path / "scan.png"
    Image.fromarray(np.zeros((200, 320, 3), dtype=np.uint8)).save(path)
    px, _ = _pixels_of(Box(250, 100, 500, 400), (320, 200), processor)
    writes(RAW % tuple(px))
    return path, px


def test_ask_draws_the_boxes_where_the_model_meant_them(qwen25, tmp_path):
    from clinkd.infer.ask import ask_image

    model, processor, writes, _ = qwen25
    path, px = _scan_answered(tmp_path, processor, writes)
    ans = ask_image(model, path, "Where is the liver?", processor=processor, max_new_tokens=40)
    ((label, box),) = ans.boxes
    assert label == "liver" and ans.raw == RAW % tuple(px)
    assert box.iou(Box(250, 100, 500, 400)) > 0.9  # on the original image, not the resized one
    drawn = np.asarray(Image.open(ans.image_out).convert("RGB"))
    x1, y1, _x2, y2 = (round(v) for v in box.to_pixels(320, 200))
    assert drawn[y1 : y2 + 1, x1].any() and not drawn[150:, 250:].any()  # the outline, nothing elsewhere


def test_the_web_app_shows_original_pixels_and_the_raw_answer(qwen25, tmp_path):
    from clinkd.serve.answer import Answerer, ask

    model, processor, writes, _ = qwen25
    path, px = _scan_answered(tmp_path, processor, writes)
    result = ask(Answerer(model, processor, max_new_tokens=40), path, "VG", object_name="liver")
    assert result.answer == RAW % tuple(px)  # Details: what the model wrote
    ((label, _box_text, pixels),) = result.rows
    # the original image's pixels (80,20),(160,80), to the rounding of the 84-pixel-high resized image
    got = [int(v) for v in re.findall(r"-?\d+", pixels)]
    assert label == "liver" and max(abs(a - b) for a, b in zip(got, (80, 20, 160, 80))) <= 200 / 84
