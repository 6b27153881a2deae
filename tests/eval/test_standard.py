"""Standard and strict readings of VG and RO on hand-worked cases (no Java needed)."""

import pytest
from eval_helpers import box, make

from clinkd.eval import evaluate
from clinkd.eval.standard import mean_over_eight


def test_mean_over_eight_counts_absent_modalities_as_zero():
    assert mean_over_eight({"ct": 1.0, "mr": 0.5}) == pytest.approx(1.5 / 8)
    assert mean_over_eight({}) == 0.0
    assert mean_over_eight({"ct": 1.0, "other": 1.0}) == pytest.approx(1 / 8)  # others ignored


def _vg():
    a = box(0, 0, 100, 100)
    return [
        # ct: two annotation boxes, one found (IoU 1), one missed → 1/2
        make("ct_1.png", a + box(500, 500, 600, 600), a + "<|im_end|>"),
        # ct: IoU exactly 0.5 → not found in the standard reading (strictly greater), a strict match
        make("ct_2.png", box(0, 0, 100, 100), box(0, 0, 100, 50)),
        # mr: fallback pattern (no <box> in the response) → found
        make("mr_1.png", a, "the box is (0,0),(100,100) here"),
        # mr: annotation without a box → skipped
        make("mr_2.png", "no box here", a),
        # x: garbage response → scored 0, never crashes
        make("x_1.png", a, "<box>(1,2),(3)</box><box>nan</box>\x00\ud800" + "<box>" * 1000),
    ]


def test_vg_standard_hand_worked():
    rep = evaluate({"VG": _vg()}, strict=False)
    vg = rep.standard["VG"]
    per = vg["per_modality"]
    assert per["ct"]["recall@0.5"] == pytest.approx(1 / 3)  # 1 found of 3 boxes
    assert per["mr"]["recall@0.5"] == 1.0
    assert per["x"]["recall@0.5"] == 0.0
    assert per["pet"]["recall@0.5"] is None and per["pet"]["n_samples"] == 0
    assert vg["recall@0.5"] == pytest.approx((1 / 3 + 1 + 0) / 8)
    assert vg["n_skipped_no_box"] == 1
    assert set(vg["absent_modalities"]) == {"pet", "endoscopy", "dermoscopy", "fundus", "ultrasound"}
    assert rep.strict is None


def test_vg_strict_differs_where_it_must():
    a1, a2 = box(0, 0, 100, 100), box(0, 0, 100, 90)  # two overlapping annotation boxes
    preds = [make("ct_1.png", a1 + a2, box(0, 0, 100, 95))]  # one prediction covers both
    rep = evaluate({"VG": preds}, bootstrap=0)
    assert rep.standard["VG"]["per_modality"]["ct"]["recall@0.5"] == 1.0  # many-to-one: 2 of 2
    s = rep.strict["VG"]
    ct = s["per_modality"]["ct"]
    assert (ct["n_matched"], ct["n_gt_boxes"], ct["n_pred_boxes"]) == (1, 2, 1)
    assert ct["recall"] == 0.5 and ct["precision"] == 1.0
    assert ct["f1"] == pytest.approx(2 / 3)
    assert ct["mean_iou"] == pytest.approx(0.95 / 2)  # best assignment 0.95 (to a1), a2 unassigned
    # strict means over present modalities only: ct is the only one
    assert s["recall"] == 0.5 and s["modalities_in_mean"] == ["ct"]
    assert rep.standard["VG"]["recall@0.5"] == pytest.approx(1 / 8)


def test_vg_strict_threshold_and_qwen2_tags():
    preds = [
        make("ct_1.png", box(0, 0, 100, 100), box(0, 0, 100, 50)),  # IoU 0.5
        make("ct_2.png", box(0, 0, 100, 100), "<|box_start|>(0, 0),(100, 100)<|box_end|>"),
    ]
    rep = evaluate({"VG": preds}, bootstrap=0)
    assert rep.standard["VG"]["per_modality"]["ct"]["n_found"] == 0  # IoU 0.5 fails "> 0.5"; spaces
    assert rep.strict["VG"]["per_modality"]["ct"]["n_matched"] == 2  # defeat the fallback pattern


def test_ro_standard_and_strict():
    preds = [
        make("ct_1.png", "left kidney", "The left kidney.<|im_end|>"),
        make("ct_2.png", "liver", "It is not the liver, it is the spleen"),
        make("mr_1.png", "spleen", "kidney"),
        make("fundus_1.png", "optic disc", "optic disc"),
    ]
    rep = evaluate({"RO": preds}, bootstrap=200, seed=1)
    std, st = rep.standard["RO"], rep.strict["RO"]
    assert std["per_modality"]["ct"]["accuracy"] == 1.0
    assert std["per_modality"]["mr"]["accuracy"] == 0.0
    assert std["accuracy"] == pytest.approx((1 + 0 + 1) / 8)
    assert st["per_modality"]["ct"]["accuracy"] == 0.5
    assert st["accuracy"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert st["pooled"] == {"accuracy": 0.5, "n_samples": 4}
    lo, hi = st["ci95"]["accuracy"]
    assert lo <= st["accuracy"] <= hi


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    preds = [
        make(f"{m}_{i}.png", "liver", "liver" if (i + len(m)) % 3 else "spleen", i)
        for m in ("ct", "mr", "x")
        for i in range(40)
    ]
    a = evaluate({"RO": preds}, bootstrap=300, seed=7).strict["RO"]["ci95"]["accuracy"]
    b = evaluate({"RO": preds}, bootstrap=300, seed=7).strict["RO"]["ci95"]["accuracy"]
    c = evaluate({"RO": preds}, bootstrap=300, seed=8).strict["RO"]["ci95"]["accuracy"]
    assert a == b and a != c
    assert 0 < a[0] < a[1] < 1


def test_unknown_modality_is_reported_not_a_keyerror():
    preds = [
        make("ct_1.png", "liver", "liver"),
        make("us_1.png", "liver", "liver"),
        make("us_2.png", "liver", "no"),
    ]
    rep = evaluate({"RO": preds})
    other = rep.standard["RO"]["other_modalities"]
    assert other == {"us": {"accuracy": 0.5, "n_samples": 2, "n_correct": 1}}
    assert rep.standard["RO"]["accuracy"] == pytest.approx(1 / 8)  # not in the mean
    assert rep.strict["RO"]["other_modalities"]["us"]["n_samples"] == 2


def test_plain_dicts_and_bad_records(records):
    rep = evaluate({"RO": [records("ct_1.png", "a", "a")]}, bootstrap=0)
    assert rep.standard["RO"]["per_modality"]["ct"]["accuracy"] == 1.0
    from clinkd.errors import DataError

    with pytest.raises(DataError, match="record 1"):
        evaluate({"RO": [records("ct_1.png", "a", "a"), {"id": 1}]})
    with pytest.raises(DataError, match="unknown task"):
        evaluate({"XX": []})
