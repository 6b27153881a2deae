import random
import re
import time

import numpy as np
import pytest

from clinkd.eval.grounding import (
    find_tagged,
    iou,
    iou_matrix,
    many_to_one_found,
    one_to_one_match,
    parse_box_lenient,
    parse_box_standard,
    standard_box_strings,
    strict_box_strings,
)


def test_iou_hand_worked_continuous_area_no_plus_one():
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching: no overlap (+1 pixels: 11/231)
    assert iou((100, 100, 300, 200), (200, 150, 400, 250)) == pytest.approx(5000 / 35000)
    assert iou((0, 0, 1, 1), (0, 0, 2, 1)) == 0.5  # +1-pixel areas would give 4/6
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0  # degenerate union: 0 (the scripts' NaN never passes)


def test_iou_matrix_scalar_and_vector_paths_agree_bit_for_bit():
    rng = np.random.default_rng(0)
    a = [tuple(float(v) for v in np.sort(rng.integers(0, 1000, 4).reshape(2, 2), axis=0).T.ravel())
         for _ in range(9)]
    b = [tuple(float(v) for v in np.sort(rng.integers(0, 1000, 4).reshape(2, 2), axis=0).T.ravel())
         for _ in range(7)]
    big = iou_matrix(a, b)  # 63 pairs: NumPy path
    for i in range(len(a)):
        for j in range(len(b)):
            assert iou_matrix([a[i]], [b[j]])[0, 0] == big[i, j]  # 1 pair: scalar path


def test_find_tagged_equals_the_published_regex_on_random_strings():
    rng = random.Random(0)
    atoms = ["<box>", "</box>", "(1,2),(3,4)", "\n", "x", "<", "box>", "</", " "]
    for _ in range(5000):
        s = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 14)))
        assert find_tagged(s) == re.findall(r"<box>(.*?)</box>", s), repr(s)


def test_box_extraction_is_linear_on_pathological_input():
    s = "<box>" * 300_000 + "\n" + "(" * 200_000 + "1" * 100_000
    t = time.perf_counter()
    assert standard_box_strings(s) == []
    assert strict_box_strings(s) == []
    assert time.perf_counter() - t < 2.0


def test_fallback_pattern_only_when_no_tag():
    assert standard_box_strings("at (1,2),(3,4) and <box>(5,6),(7,8)</box>") == ["(5,6),(7,8)"]
    assert standard_box_strings("at (1,2),(3,4) or (5, 6),(7,8)") == ["(1,2),(3,4)"]  # no spaces allowed
    assert strict_box_strings("<|box_start|>(1,2),(3,4)<|box_end|><box_start>(5,6),(7,8)<box_end>") \
        == ["(1,2),(3,4)", "(5,6),(7,8)"]
    assert standard_box_strings("<|box_start|>(1,2),(3,4)<|box_end|>") == ["(1,2),(3,4)"]  # via fallback


@pytest.mark.parametrize("text, expected", [
    ("(1,2),(3,4)", (1.0, 2.0, 3.0, 4.0)),
    ("(1.5, 2),(3 ,4)", (1.5, 2.0, 3.0, 4.0)),
    ("(1,2),(3)", None),
    ("(1,2),(3,4),(5,6)", None),
    ("(a,b),(c,d)", None),
    ("(nan,2),(3,4)", None),
    ("", None),
])
def test_parse_box_standard(text, expected):
    assert parse_box_standard(text) == expected


def test_parse_box_lenient():
    assert parse_box_lenient("( 1 , 2 ) , ( 3.5 , 4 )") == (1.0, 2.0, 3.5, 4.0)
    assert parse_box_lenient("x1=1 y1=2 x2=3") is None


def test_many_to_one_is_strictly_greater_than_half():
    ious = np.array([[0.5, 0.2], [0.51, 0.0], [0.0, 0.0]])
    assert many_to_one_found(ious) == 1  # 0.5 is not > 0.5
    assert many_to_one_found(np.zeros((2, 0))) == 0


def test_one_prediction_matches_two_annotations_only_once_in_the_strict_reading():
    ious = np.array([[0.8], [0.7]])  # two annotation boxes, one predicted box
    assert many_to_one_found(ious) == 2
    tp, assigned = one_to_one_match(ious)
    assert tp == 1 and assigned.tolist() == [0.8, 0.0]


def test_hungarian_beats_greedy_and_counts_half_as_a_match():
    # greedy would pair row 0 with column 0 (0.9) and leave row 1 with 0.0
    ious = np.array([[0.9, 0.6], [0.5, 0.0]])
    tp, assigned = one_to_one_match(ious)
    assert assigned.tolist() == [0.6, 0.5]
    assert tp == 2  # 0.5 >= 0.5 counts in the strict reading
