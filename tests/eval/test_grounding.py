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
    a = [
        tuple(float(v) for v in np.sort(rng.integers(0, 1000, 4).reshape(2, 2), axis=0).T.ravel())
        for _ in range(9)
    ]
    b = [
        tuple(float(v) for v in np.sort(rng.integers(0, 1000, 4).reshape(2, 2), axis=0).T.ravel())
        for _ in range(7)
    ]
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
    assert strict_box_strings("<|box_start|>(1,2),(3,4)<|box_end|><box_start>(5,6),(7,8)<box_end>") == [
        "(1,2),(3,4)",
        "(5,6),(7,8)",
    ]
    assert standard_box_strings("<|box_start|>(1,2),(3,4)<|box_end|>") == ["(1,2),(3,4)"]  # via fallback


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(1,2),(3,4)", (1.0, 2.0, 3.0, 4.0)),
        ("(1.5, 2),(3 ,4)", (1.5, 2.0, 3.0, 4.0)),
        ("(1,2),(3)", None),
        ("(1,2),(3,4),(5,6)", None),
        ("(a,b),(c,d)", None),
        ("(nan,2),(3,4)", None),
        ("", None),
    ],
)
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


def test_strict_matching_maximises_matches_not_total_iou():
    """Issue 15: the diagonal has the larger total IoU (1.40) but one match; the anti-diagonal has two."""
    tp, assigned = one_to_one_match(np.array([[0.95, 0.50], [0.50, 0.45]]))
    assert tp == 2 and assigned.tolist() == [0.5, 0.5]
    # three annotation boxes, two predictions: total IoU alone picks 0.9 + 0.49 (one match)
    tp, assigned = one_to_one_match(np.array([[0.9, 0.52], [0.51, 0.0], [0.0, 0.49]]))
    assert tp == 2 and assigned.tolist() == [0.52, 0.51, 0.0]
    # the transpose: two annotation boxes, three predictions
    tp, assigned = one_to_one_match(np.array([[0.9, 0.51, 0.0], [0.52, 0.0, 0.49]]))
    assert tp == 2 and assigned.tolist() == [0.51, 0.52]


def test_strict_matching_prefers_the_larger_total_iou_among_maximal_matchings():
    # two matches either way; the crossed pairs have the larger total (0.9 + 0.9 + 0.3)
    tp, assigned = one_to_one_match(np.array([[0.6, 0.9, 0.0], [0.9, 0.6, 0.0], [0.0, 0.0, 0.3]]))
    assert tp == 2 and assigned.tolist() == [0.9, 0.9, 0.3]


def _naive_best_matching(ious: np.ndarray, threshold: float = 0.5) -> tuple[int, float]:
    """(matches, total IoU) of the best one-to-one assignment, by trying them all."""
    from itertools import permutations

    n, m = ious.shape
    if n <= m:
        pairs = ([(i, c) for i, c in enumerate(cols)] for cols in permutations(range(m), n))
    else:
        pairs = ([(r, j) for j, r in enumerate(rows)] for rows in permutations(range(n), m))
    best = (0, 0.0)
    for assignment in pairs:
        vals = [ious[i, j] for i, j in assignment]
        key = (sum(v >= threshold for v in vals), float(sum(vals)))
        if key[0] > best[0] or (key[0] == best[0] and key[1] > best[1] + 1e-12):
            best = key
    return best


def test_strict_matching_equals_the_exhaustive_search():
    rng = np.random.default_rng(15)
    levels = np.array([0.0, 0.3, 0.45, 0.49, 0.5, 0.51, 0.6, 0.8, 0.95])  # 0.5 itself counts
    for _ in range(400):
        n, m = rng.integers(1, 5, size=2)
        ious = rng.choice(levels, size=(n, m)) if rng.random() < 0.5 else rng.random((n, m))
        tp, assigned = one_to_one_match(ious)
        want_tp, want_total = _naive_best_matching(ious)
        assert tp == want_tp, ious
        assert assigned.sum() == pytest.approx(want_total, abs=1e-9), ious
        assert assigned.shape == (n,) and np.count_nonzero(assigned) <= min(n, m)
