"""Med-VQA scoring (clinkd.eval.medvqa): normalisation, both conventions, hand-worked values."""

import pytest

from clinkd.eval.medvqa import (
    VQAItem,
    closed_hit_llava_med,
    exact_match,
    infer_answer_type,
    normalize_answer,
    score_vqa,
    token_recall,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Left Lung.", "left lung"),
        ("x-ray", "x ray"),  # '-' not beside a space: replaced by a space
        ("a - b", "b"),  # beside a space: removed; 'a' is an article
        ("3.5 cm", "3.5 cm"),  # a period before a digit stays
        ("Yes, it is.", "yes it is"),
        ("1,000 cells (approx)", "1000 cells approx"),  # digit,digit: punctuation removed, not spaced
        ("Two nodules", "2 nodules"),
        ("none", "0"),
        ("  right   kidney  ", "right kidney"),
        ("T2: weighted", "t2: weighted"),  # ':' is not in the list
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_period_rule_stops_after_32_as_the_script():
    assert normalize_answer("." * 40) == "." * 8


def test_token_recall_hand_worked():
    assert token_recall("There is a mass in the left lung.", "left lung") == 1.0
    assert token_recall("right lung", "left lung") == 0.5
    assert token_recall("", "left lung") == 0.0
    assert token_recall("anything", "") == 0.0
    # the script counts matched words with their count in the prediction: tp 2, fn 1
    assert token_recall("left left", "left lung") == pytest.approx(2 / 3)
    assert token_recall("Two nodules", "2 nodules") == 1.0


def test_closed_llava_med_rule():
    assert closed_hit_llava_med("Yes.", "yes") is True
    assert closed_hit_llava_med("yes", "no") is None  # run_eval.py appends nothing here
    assert closed_hit_llava_med("Absolutely", "yes") is False  # no yes/no at all
    assert closed_hit_llava_med("CT", "ct") is False  # the yes/no gate on a non-yes/no closed answer
    assert closed_hit_llava_med("Not an MRI, it is a CT", "ct") is True  # 'no' in 'not' opens the gate
    assert closed_hit_llava_med("no", "no") is True


def test_exact_match():
    assert exact_match("The left lung.", "left lung")
    assert not exact_match("left lung, upper lobe", "left lung")
    assert exact_match("Yes", "yes")


def test_infer_answer_type():
    assert infer_answer_type("Yes") == "closed"
    assert infer_answer_type("no.") == "closed"
    assert infer_answer_type("left lung") == "open"


def test_the_two_open_conventions_differ():
    items = [VQAItem("There is a mass in the left lung", "left lung", "open")]
    block = score_vqa(items, bootstrap=0)
    assert block["llava_med"]["open_recall"] == 1.0
    assert block["exact_match"]["open_accuracy"] == 0.0


def test_score_vqa_hand_worked():
    items = [
        VQAItem("Yes.", "yes", "closed"),  # llava hit, exact hit
        VQAItem("Yes, there is a lesion.", "yes", "closed"),  # llava hit, exact miss
        VQAItem("yes", "no", "closed"),  # llava: dropped by the script, a miss here
        VQAItem("MRI", "mri", "closed"),  # llava: gate closed, miss; exact hit
        VQAItem("left lung", "left lung", "open"),  # recall 1, exact hit
        VQAItem("the right lung", "left lung", "open"),  # recall 1/2, exact miss
        VQAItem("liver", "spleen", "open"),  # 0, 0
    ]
    b = score_vqa(items, bootstrap=0)
    assert b["counts"] == {"closed": 4, "open": 3, "total": 7}
    assert b["llava_med"]["closed_accuracy"] == 2 / 4
    assert b["llava_med"]["closed_accuracy_script"] == 2 / 3
    assert b["llava_med"]["n_closed_dropped_by_script"] == 1
    assert b["llava_med"]["open_recall"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert b["exact_match"]["closed_accuracy"] == 2 / 4
    assert b["exact_match"]["open_accuracy"] == 1 / 3
    assert b["exact_match"]["overall_accuracy"] == 3 / 7
    assert b["ci95"] == {}


def test_score_vqa_empty_type_is_none_and_intervals_bracket_the_value():
    items = [VQAItem("yes", "yes", "closed"), VQAItem("no", "yes", "closed"), VQAItem("yes", "yes", "closed")]
    b = score_vqa(items, bootstrap=500, seed=3)
    assert b["llava_med"]["open_recall"] is None and b["exact_match"]["open_accuracy"] is None
    lo, hi = b["ci95"]["exact_match.overall_accuracy"]
    assert 0 <= lo <= 2 / 3 <= hi <= 1
    assert "llava_med.open_recall" not in b["ci95"]
    assert score_vqa(items, bootstrap=500, seed=3)["ci95"] == b["ci95"]  # seeded
