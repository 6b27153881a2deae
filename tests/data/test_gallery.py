"""Contact sheets and box drawing."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from clinkd.data.boxes import Box
from clinkd.data.draw import PALETTE, draw_annotations, label_colours
from clinkd.data.formats import write_test_file
from clinkd.data.gallery import (
    CAPTION,
    TILE,
    annotations,
    answer_label,
    grounded_boxes,
    make_gallery,
    short_label,
)
from clinkd.data.sample import MODALITIES, Sample, Turn
from clinkd.data.synth import generate
from clinkd.errors import DataError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery") / "ds"
    generate(out, seed=2, n_images=24, workers=1)
    return out


@pytest.mark.parametrize("n", [16, 5])
def test_gallery_writes_a_grid_png(dataset, tmp_path, n):
    path = make_gallery(dataset, tmp_path / "sheet.png", n=n)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (cols * TILE, rows * (TILE + CAPTION))
        # Tiles hold images, not a blank sheet.
        assert len(im.convert("RGB").getcolors(1 << 20)) > 100


def test_gallery_is_deterministic(dataset, tmp_path):
    a = make_gallery(dataset, tmp_path / "a.png", n=8, seed=1).read_bytes()
    b = make_gallery(dataset, tmp_path / "b.png", n=8, seed=1).read_bytes()
    assert a == b


def test_per_modality_selection_covers_every_modality(dataset):
    from clinkd.data.formats import read_dataset_dir
    from clinkd.data.gallery import _select

    ds = read_dataset_dir(dataset)
    entries = [(s, t) for t, ss in ds.test.items() for s in ss] + [(s, "train") for s in ds.train]
    chosen = _select(entries, 8, 0, per_modality=True)
    assert sorted(s.modality for s, _ in chosen) == sorted(MODALITIES)
    chosen = _select(entries, 16, 0, per_modality=True)
    for m in MODALITIES:  # two tiles per modality, two different tasks
        assert len({t for s, t in chosen if s.modality == m}) == 2


def test_gallery_reads_real_style_files(tmp_path):
    # Qwen2 markup, a Med-GRIT-like file name, images beside the JSON.
    Image.new("L", (300, 200), 80).save(tmp_path / "ct_abc_1.png")
    q = "<img>ct_abc_1.png</img>\nWhat is in <|box_start|>(100,100),(500,600)<|box_end|>?"
    write_test_file(
        [Sample("ct_abc_1", "ct_abc_1.png", [Turn(q, "liver")], task="RO")], tmp_path / "MedGRIT_test_RO.json"
    )
    path = make_gallery(tmp_path, tmp_path / "out" / "g.png", n=4)
    with Image.open(path) as im:
        assert im.size == (TILE, TILE + CAPTION)
    with pytest.raises(DataError):
        make_gallery(tmp_path / "out", tmp_path / "g2.png")


def test_annotations_pair_refs_with_boxes():
    text = "<ref>lesion</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box> and <ref>bladder</ref><box>(10,10),(20,20)</box>"
    got = grounded_boxes(text)
    assert [(r, b.to_text()) for r, b in got] == [
        ("lesion", "(1,2),(3,4)"),
        ("lesion", "(5,6),(7,8)"),
        ("bladder", "(10,10),(20,20)"),
    ]
    assert (
        grounded_boxes("<|object_ref_start|>x<|object_ref_end|><|box_start|>(1,1),(2,2)<|box_end|>")[0][0]
        == "x"
    )
    s = Sample(
        "ct_1",
        "ct_1.png",
        [
            Turn("<img>ct_1.png</img>\nWhat is in <box>(10,20),(30,40)</box>?", "left kidney"),
            Turn("Where is the <ref>left kidney</ref>?", "<ref>left kidney</ref><box>(10,20),(30,40)</box>"),
            Turn(
                "Describe <box>(50,50),(90,90)</box>.",
                "The liver is seen in the upper left of the image, large.",
            ),
        ],
    )
    items = annotations(s)
    assert [lab for lab, _ in items] == ["left kidney", "liver"]
    assert answer_label("The fovea is seen in the centre of the image.") == "macula"  # a synonym
    assert answer_label("Some long caption about nothing we know at all.") == "Some long caption about…"
    assert len(short_label("word " * 40)) <= 29


def test_draw_annotations_draws_in_label_colours():
    img = Image.new("L", (200, 100), 0)
    items = [("a", Box(100, 200, 500, 800)), ("b", Box(600, 100, 900, 900)), ("a", Box(0, 0, 50, 50))]
    out = draw_annotations(img, items, line_width=2, font_size=10)
    assert out.mode == "RGB" and out.size == (200, 100)
    assert img.getextrema() == (0, 0), "the input image is not modified"
    cols = label_colours([lab for lab, _ in items])
    assert cols["a"] != cols["b"] and cols["a"] == PALETTE[0]
    # Box (100,200)-(500,800) on 200x100 px is x 20..100, y 20..80: its left edge at x=20, y=50.
    assert out.getpixel((20, 50)) == cols["a"]
    assert out.getpixel((60, 50)) == (0, 0, 0)  # inside stays untouched
    assert out.getpixel((120, 50)) == cols["b"]
