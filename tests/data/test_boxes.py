import math

import pytest

from clinkd.data.boxes import (
    STYLES,
    Box,
    convert_markup,
    detect_style,
    find_box_tags,
    format_grounding,
    parse_box_body,
    parse_boxes,
    parse_refs,
)
from clinkd.errors import BoxParseError

QWEN = (
    "<ref>left kidney</ref><box>(120,340),(260,512)</box> and <ref>spleen</ref><box>(700,200),(880,460)</box>"
)


def test_pixel_relative_round_trip():
    b = Box.from_pixels(32, 16, 96, 80, width=128, height=64)
    assert b.coords == (250.0, 250.0, 750.0, 1250.0)
    assert b.to_pixels(128, 64) == (32.0, 16.0, 96.0, 80.0)
    r = Box.from_relative(0.1, 0.2, 0.3, 0.4)
    assert r.to_relative() == pytest.approx((0.1, 0.2, 0.3, 0.4))
    assert r.rounded().to_text() == "(100,200),(300,400)"


def test_rounding_is_half_up_on_the_grid():
    assert Box(0.5, 1.5, 2.4999, 999.5).rounded().coords == (1.0, 2.0, 2.0, 1000.0)


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_round_trips_exactly(style):
    converted = convert_markup(QWEN, style)
    assert convert_markup(converted, "qwen") == QWEN
    # and from that style to every other style and back again
    for other in STYLES:
        assert convert_markup(convert_markup(converted, other), style) == converted
    assert parse_boxes(converted) == parse_boxes(QWEN)
    assert parse_refs(converted) == ["left kidney", "spleen"]


def test_qwen2_form_uses_the_special_tokens():
    text = convert_markup(QWEN, "qwen2")
    assert text.startswith(
        "<|object_ref_start|>left kidney<|object_ref_end|><|box_start|>(120,340),(260,512)<|box_end|>"
    )
    assert detect_style(text) == "qwen2"
    assert detect_style(convert_markup(QWEN, "clinkd")) == "clinkd"
    assert detect_style(QWEN) == "qwen"
    assert detect_style("no boxes here") is None


def test_format_then_parse_round_trip():
    boxes = [Box(1, 2, 3, 4), Box(10, 20, 900, 1000)]
    for style in STYLES:
        text = format_grounding("polyp", boxes, style)
        assert parse_boxes(text) == boxes
        assert parse_refs(text) == ["polyp"]
    assert (
        format_grounding("polyp", boxes)
        == "<ref>polyp</ref><box>(1,2),(3,4)</box><box>(10,20),(900,1000)</box>"
    )


def test_parse_scales():
    assert parse_box_body("(100,200),(300,400)") == (Box(100, 200, 300, 400), "norm1000")
    box, scale = parse_box_body("(0.1,0.2),(0.3,0.4)")
    assert scale == "relative" and box.coords == pytest.approx((100, 200, 300, 400))
    box, scale = parse_box_body("(10.5, 20.25), (300.0, 400)")
    assert scale == "norm1000" and box.coords == (10.5, 20.25, 300.0, 400.0)
    assert parse_box_body("(1,1),(1,1)", scale="relative")[0].coords == (1000, 1000, 1000, 1000)


@pytest.mark.parametrize("bad", ["", "(1,2)", "(1,2),(3)", "(a,b),(c,d)", "1,2,3,4", "(1,2),(3,4),(5,6)"])
def test_unparseable_bodies_raise(bad):
    with pytest.raises(BoxParseError):
        parse_box_body(bad)


def test_bad_box_tags_are_skipped_not_fatal():
    text = "<box>(1,2),(3,4)</box><box>garbage</box><box>(5,6),(7,8)</box>"
    assert find_box_tags(text) == ["(1,2),(3,4)", "garbage", "(5,6),(7,8)"]
    assert parse_boxes(text) == [Box(1, 2, 3, 4), Box(5, 6, 7, 8)]


def test_parse_is_fast_on_pathological_input():
    import time

    junk = "<box>(" + "1," * 200_000 + "</box>" + "(" * 100_000
    t0 = time.perf_counter()
    assert parse_boxes(junk) == []
    assert time.perf_counter() - t0 < 5


def test_iou_and_validity():
    a, b = Box(0, 0, 10, 10), Box(5, 5, 15, 15)
    assert a.iou(b) == pytest.approx(25 / 175)
    assert a.iou(a) == 1.0
    assert Box(0, 0, 0, 0).iou(Box(0, 0, 0, 0)) == 0.0
    assert Box(0, 0, 1000, 1000).problems() == []
    assert any("inverted" in p for p in Box(10, 0, 5, 5).problems())
    assert any("outside" in p for p in Box(0, 0, 1001, 5).problems())
    assert Box(math.nan, 0, 1, 1).problems() == ["coordinates are not finite numbers"]


def test_tag_patterns_have_one_home():
    """Every reader spells the box and ref tags from clinkd.data.boxes (issue 15), each keeping its own
    body rule: the sources match exactly the tags of STYLES, whole."""
    import re

    from clinkd.data import boxes
    from clinkd.eval.grounding import STRICT_TAGS

    assert boxes.BOX_TAGS == (
        ("<box>", "</box>"),
        ("<|box_start|>", "<|box_end|>"),
        ("<box_start>", "<box_end>"),
    )
    assert boxes.REF_TAGS == (("<ref>", "</ref>"), ("<|object_ref_start|>", "<|object_ref_end|>"))
    assert STRICT_TAGS == boxes.BOX_TAGS
    every = {d for s in STYLES.values() for d in s}
    for pattern, tags in [
        (boxes.BOX_OPEN, {o for o, _ in boxes.BOX_TAGS}),
        (boxes.BOX_CLOSE, {c for _, c in boxes.BOX_TAGS}),
        (boxes.REF_OPEN, {"<ref>", "<|object_ref_start|>"}),
        (boxes.REF_CLOSE, {"</ref>", "<|object_ref_end|>"}),
        (boxes.BOX_DELIMITERS, {t for pair in boxes.BOX_TAGS for t in pair}),
        (boxes.REF_DELIMITERS, {t for pair in boxes.REF_TAGS for t in pair}),
    ]:
        assert {t for t in every if re.fullmatch(pattern, t)} == tags, pattern
    text = "".join(sorted(every))
    assert sorted(boxes.DELIMITERS_RE.findall(text)) == sorted(every)  # whole, never cut by a shorter one
    # a paired box tag closes with its own closer; its tempered body never runs past the next opener
    assert re.findall(boxes.PAIRED_BOX_TAGS, "<box><box>(1,2),(3,4)</box> <box_start>x</box>", re.S) == [
        "<box>(1,2),(3,4)</box>"
    ]
    assert re.fullmatch(boxes.paired("<ref>", "</ref>", "name"), "<ref>liver</ref>").group("name") == "liver"
