"""Box conventions: Med-GRIT text ↔ each family's coordinates and answer form, and the one answer reader."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinkd.data.boxes import Box, parse_boxes
from clinkd.data.conventions import (
    CONVENTIONS,
    BoxCodec,
    convention_named,
    native_convention,
    read_answer,
    resized_size,
    to_model,
)
from clinkd.errors import ClinkdError

MEDGRIT, Q2, Q25, Q3 = (CONVENTIONS[k] for k in ("medgrit", "qwen2_vl", "qwen2_5_vl", "qwen3_vl"))
RELEASE = dict(min_pixels=512 * 512, max_pixels=1024 * 1024)


def test_the_table_of_conventions():
    assert (Q2.frame, Q2.form, Q2.style) == ("norm1000", "markup", "qwen2")
    assert (Q25.frame, Q25.form) == ("resized", "json")
    assert (Q3.frame, Q3.form) == ("norm1000", "json")
    assert native_convention("qwen2_5_vl") is Q25
    assert convention_named("medgrit:qwen2").key == "medgrit:qwen2" and convention_named("qwen3_vl") is Q3
    for bad in ("qwen4_vl", "medgrit:xml", "qwen2_vl:qwen"):
        with pytest.raises(ClinkdError, match="unknown box convention"):
            convention_named(bad)
    with pytest.raises(ClinkdError, match="no native"):
        native_convention("llava")


def test_each_form_as_the_family_writes_it():
    vg = "<ref>liver tumor</ref><box>(250,477),(316,527)</box><box>(215,504),(313,590)</box>"
    assert to_model(vg, Q2) == (
        "<|object_ref_start|>liver tumor<|object_ref_end|><|box_start|>(250,477),(316,527)"
        "<|box_end|><|box_start|>(215,504),(313,590)<|box_end|>"
    )
    assert to_model(vg, Q3) == (
        '```json\n[\n\t{"bbox_2d": [250, 477, 316, 527], "label": "liver tumor"},\n'
        '\t{"bbox_2d": [215, 504, 313, 590], "label": "liver tumor"}\n]\n```'
    )
    # absolute pixels of a 1000x500 resized image: x * 1000/1000, y * 500/1000
    assert json.loads(to_model(vg, Q25, (1000, 500)).strip("`json\n"))[0]["bbox_2d"] == [250, 239, 316, 264]
    question = "What is in <box>(320,195),(398,270)</box>? Then locate the <ref>tumor</ref>."
    assert to_model(question, Q3) == 'What is in {"bbox_2d": [320, 195, 398, 270]}? Then locate the tumor.'
    caption = "A cyst <ref>kidney cyst</ref><box>(301,602),(352,652)</box>, tiny."
    assert to_model(caption, Q3) == 'A cyst {"bbox_2d": [301, 602, 352, 652], "label": "kidney cyst"}, tiny.'
    with pytest.raises(ClinkdError, match="size is needed"):
        to_model(vg, Q25)
    assert to_model("no boxes here", Q25) == "no boxes here"


# -- round trips over image sizes --------------------------------------------------------------------
sizes = st.tuples(st.integers(8, 6000), st.integers(8, 6000)).filter(lambda s: max(s) / min(s) < 150)
coords = st.tuples(*[st.integers(0, 1000)] * 4).map(
    lambda c: Box(min(c[0], c[2]), min(c[1], c[3]), max(c[0], c[2]), max(c[1], c[3]))
)
budgets = st.sampled_from(
    [(56 * 56, 224 * 224), (512 * 512, 1024 * 1024), (3136, 12845056), (65536, 16777216)]
)


@settings(max_examples=400, deadline=None)
@given(
    size=sizes,
    boxes=st.lists(coords, min_size=1, max_size=3),
    budget=budgets,
    family=st.sampled_from(["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]),
)
def test_medgrit_to_native_and_back_stays_within_one_unit_of_rounding(size, boxes, budget, family):
    codec = BoxCodec(
        CONVENTIONS[family],
        factor=32 if family == "qwen3_vl" else 28,
        min_pixels=budget[0],
        max_pixels=budget[1],
    )
    text = "Found <ref>mass</ref>" + "".join(b.to_markup() for b in boxes) + " here."
    native = codec.to_model(text, size)
    back = codec.read(native, size)
    assert back.problems == []
    got = back.boxes
    assert len(got) == len(boxes)
    if codec.convention.frame == "norm1000":
        assert back.text == text  # exact: the integers do not move
        return
    w, h = codec.model_size(size)
    for a, b in zip(boxes, got):
        for v, u, side in zip(a.coords, b.coords, (w, h, w, h)):
            # half a resized pixel, then half a 0-1000 unit: within one unit of the coarser grid
            assert abs(v - u) <= 500 / side + 0.5 + 1e-9
            assert abs(v - u) <= max(1.0, 1000 / side)


@pytest.mark.parametrize("name", ["Qwen2-VL-2B-Instruct", "Qwen2.5-VL-3B-Instruct", "Qwen3-VL-2B-Instruct"])
def test_resized_size_is_what_each_family_processor_feeds_the_model(hub_standin, name):
    """The sizes the conversion assumes against the real processors (hub preprocessor configs, release
    budget): image_grid_thw × patch size, for sizes below min, inside and above max pixels, odd aspects."""
    import numpy as np
    from PIL import Image

    from clinkd.model.processor import ClinkdProcessor, box_codec, set_pixel_budget

    processor = ClinkdProcessor.from_pretrained(hub_standin(name))
    set_pixel_budget(processor, 128 * 128, 384 * 384)  # small budget: fast, and every regime is reached
    ip = processor.image_processor

    class Cfg:  # box_codec reads the convention from a model config
        model_type = {"Qwen2-VL": "qwen2_vl", "Qwen2.5-VL": "qwen2_5_vl", "Qwen3-VL": "qwen3_vl"}[
            name.rsplit("-", 2)[0]
        ]

    codec = box_codec(type("M", (), {"config": Cfg})(), processor)
    assert codec.factor == ip.patch_size * ip.merge_size and codec.convention is native_convention(
        Cfg.model_type
    )
    for w, h in [
        (40, 30),
        (97, 1203),
        (256, 256),
        (300, 500),
        (383, 384),
        (640, 480),
        (1203, 97),
        (2000, 1500),
    ]:
        image = Image.fromarray(np.zeros((h, w, 3), dtype=np.uint8))
        grid = ip(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
        expected = (grid[2] * ip.patch_size, grid[1] * ip.patch_size)
        assert resized_size(w, h, factor=codec.factor, min_pixels=128 * 128, max_pixels=384 * 384) == expected


def test_absolute_coordinates_follow_the_pixel_budget():
    small = BoxCodec(Q25, min_pixels=56 * 56, max_pixels=224 * 224)
    large = BoxCodec(Q25, **RELEASE)
    text = "<ref>a</ref><box>(500,500),(1000,1000)</box>"
    assert small.model_size((1024, 1024)) == (224, 224) and large.model_size((1024, 1024)) == (1008, 1008)
    assert '"bbox_2d": [112, 112, 224, 224]' in small.to_model(text, (1024, 1024))
    assert '"bbox_2d": [504, 504, 1008, 1008]' in large.to_model(text, (1024, 1024))
    assert small.read(small.to_model(text, (1024, 1024)), (1024, 1024)).text == text


# -- the reader on answers in every form --------------------------------------------------------------
BOX = Box(100, 200, 300, 400)
CORPUS = [
    # (answer, convention, resized size, Med-GRIT text expected)
    (
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
        MEDGRIT,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        "<|object_ref_start|>lung<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>",
        Q2,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        "<ref>lung</ref><box_start>(100,200),(300,400)<box_end>",
        MEDGRIT,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    ("<|box_start|>( 100 , 200 ) , ( 300 , 400 )<|box_end|>", Q2, None, "<box>(100,200),(300,400)</box>"),
    ("<|box_start|>[100, 200, 300, 400]<|box_end|>", Q2, None, "<box>(100,200),(300,400)</box>"),
    ("<box>(0.1,0.2),(0.3,0.4)</box>", MEDGRIT, None, "<box>(100,200),(300,400)</box>"),  # relative floats
    (
        '```json\n[\n\t{"bbox_2d": [100, 200, 300, 400], "label": "lung"}\n]\n```',
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        '[{"bbox_2d": [100, 200, 300, 400], "label": "lung"}]',
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        '{"bbox_2d": [100, 200, 300, 400], "label": "lung"}',
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    ('```\n{"bbox_2d": [100, 200, 300, 400]}\n```', Q3, None, "<box>(100,200),(300,400)</box>"),
    (
        '{"bbox": [100, 200, 300, 400], "name": "lung"}',
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        '[{"bbox_2d": [[100, 200], [300, 400]], "label": "lung"}]',
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        '{"bbox_2d": [0.1, 0.2, 0.3, 0.4]}',
        Q25,
        (500, 500),
        "<box>(100,200),(300,400)</box>",
    ),  # relative in JSON
    ("[100, 200, 300, 400]", Q3, None, "<box>(100,200),(300,400)</box>"),
    (
        "[[100, 200, 300, 400], [0, 0, 10, 10]]",
        Q3,
        None,
        "<box>(100,200),(300,400)</box><box>(0,0),(10,10)</box>",
    ),
    # absolute pixels of a 500x250 resized image: x * 2, y * 4
    (
        '```json\n[{"bbox_2d": [50, 50, 150, 100], "label": "lung"}]\n```',
        Q25,
        (500, 250),
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    ("<|box_start|>(50,50),(150,100)<|box_end|>", Q25, (500, 250), "<box>(100,200),(300,400)</box>"),
    # several objects, two of one label: merged under one ref as Med-GRIT writes them
    (
        '[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "a"}, '
        '{"bbox_2d": [9, 9, 9, 9], "label": "b"}]',
        Q3,
        None,
        "<ref>a</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box><ref>b</ref><box>(9,9),(9,9)</box>",
    ),
    # prose around inline objects
    (
        'The mass {"bbox_2d": [100, 200, 300, 400], "label": "mass"} is large.',
        Q3,
        None,
        "The mass <ref>mass</ref><box>(100,200),(300,400)</box> is large.",
    ),
    (
        'A point {"point_2d": [150, 250], "label": "dot"}.',
        Q3,
        None,
        "A point <ref>dot</ref><box>(150,250),(150,250)</box>.",
    ),
    # JSON that does not decode: the box is still recovered
    (
        '{"bbox_2d": [100, 200, 300, 400], "label": "lung",}',
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
    (
        "{'bbox_2d': [100, 200, 300, 400], 'label': 'lung'}",
        Q3,
        None,
        "<ref>lung</ref><box>(100,200),(300,400)</box>",
    ),
]


@pytest.mark.parametrize("answer, conv, size, expected", CORPUS)
def test_the_reader_understands_every_form(answer, conv, size, expected):
    r = read_answer(answer, conv, size)
    assert r.text == expected
    assert r.boxes == parse_boxes(expected)


MALFORMED = [
    "",
    "no box at all",
    "<box>(1,2)(3</box>",
    "<|box_start|>garbage<|box_end|>",
    "<box>",
    "</box><box>",
    '```json\n[{"bbox_2d": [1, 2, 3',
    '{"bbox_2d": "x"}',
    '{"bbox_2d": [1, 2, 3]}',
    '{"bbox_2d": [1, 2, NaN, 4]}',
    '[{"label": "a"}]',
    "[" * 5000,
    "{" * 5000,
    '{"bbox_2d": [' * 3000,
    "<ref>" * 3000,
    "```" * 1000,
    '{"bbox_2d": [1e999, 0, 1, 1]}',
    "[1, 2, 3]",
    "[true, false, 1, 2]",
    '"bbox_2d": []',
    "\x00\ud800",
]


@pytest.mark.parametrize("answer", MALFORMED)
@pytest.mark.parametrize("conv", [MEDGRIT, Q2, Q25, Q3], ids=lambda c: c.name)
def test_malformed_answers_give_no_box_never_a_crash(answer, conv):
    r = read_answer(answer, conv, (448, 448))
    assert r.boxes == [] and parse_boxes(r.text) == []
    assert isinstance(r.text, str)


def test_problems_say_what_could_not_be_read():
    assert "unreadable box" in read_answer("<box>(1,2)(3</box>", MEDGRIT).problems[0]
    assert read_answer('```json\n[{"bbox_2d": [1, 2, 3', Q3).problems == ["a JSON block that does not decode"]
    assert "zero-area" in read_answer('{"point_2d": [1, 2]}', Q3).problems[0]
    assert "no image size" in read_answer('{"bbox_2d": [1, 2, 3, 4]}', Q25).problems[0]
    assert read_answer(None, Q3).problems  # type: ignore[arg-type]


def test_a_codec_leaves_medgrit_text_alone():
    codec = BoxCodec(MEDGRIT)
    text = "<ref>a</ref><box>(1,2),(3,4)</box>"
    assert codec.identity and codec.to_model(text, (10, 10)) == text
    assert BoxCodec(convention_named("medgrit:qwen2")).to_model(text, None).startswith("<|object_ref_start|>")


def test_resized_size_refuses_extreme_aspect_ratios():
    with pytest.raises(ClinkdError, match="aspect ratio"):
        resized_size(10, 5000, factor=28, **RELEASE)
    assert math.prod(resized_size(256, 256, factor=28, **RELEASE)) >= 512 * 512
