"""Paired intervals of the standard reading (clinkd.eval.paired): point values are evaluate's, resamples are
recomputed exactly, rows are paired by question id.

The caption tests share one module fixture: one ``headline_intervals`` run and one ``evaluate`` run, on one
METEOR JVM (its start is most of the cost); the rest needs no Java.
"""

import random
import shutil

import numpy as np
import pytest
from eval_helpers import box

from clinkd.errors import ClinkdError, DataError
from clinkd.eval import coco_java, evaluate, ngram, paired
from clinkd.eval.predictions import MODALITIES

WORDS = [
    "the",
    "a",
    "liver",
    "lesion",
    "left",
    "right",
    "kidney",
    "mass",
    "small",
    "large",
    "upper",
    "lobe",
    "of",
    "in",
    "with",
    "shows",
]
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")


def rec(pid, image, annotation, response):
    return {
        "id": pid,
        "image": image,
        "question": "<img>q</img>",
        "annotation": annotation,
        "response": response,
    }


def vg_ro_rows(n=24, seed=0):
    """base / better (right on every question base misses, and on all base gets) / same (base shuffled)."""
    rng = random.Random(seed)
    mods = ["ct", "mr", "x"]
    base = {"VG": [], "RO": []}
    better = {"VG": [], "RO": []}
    for i in range(n):
        m = mods[i % 3]
        x, y = rng.randint(0, 500), rng.randint(0, 500)
        gt = box(x, y, x + 200, y + 200)
        base["VG"].append(rec(i, f"{m}_{i}.png", gt, gt if i % 2 else box(900, 900, 950, 950)))
        better["VG"].append(rec(i, f"{m}_{i}.png", gt, gt))
        base["RO"].append(rec(i, f"{m}_{i}.png", "liver", "liver" if rng.random() < 0.5 else "kidney"))
        better["RO"].append(rec(i, f"{m}_{i}.png", "liver", "the liver"))
    same = {t: rng.sample(v, len(v)) for t, v in base.items()}  # another order: paired by id
    return {"base": base, "better": better, "same": same}


# ------------------------------------------------------------------------------ no Java


def test_row_against_itself_is_zero_and_better_rows_are_beyond_noise():
    out = paired.headline_intervals(vg_ro_rows(), resamples=400, reference="base")
    for t, m in (("VG", "recall@0.5"), ("RO", "accuracy")):
        same = out["differences"]["same"][t][m]
        assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0] and not same["beyond_noise"]
        assert out["rows"]["same"][t][m] == out["rows"]["base"][t][m]
        up = out["differences"]["better"][t][m]
        assert up["beyond_noise"] and 0 < up["ci95"][0] <= up["difference"] <= up["ci95"][1]
        assert up["half_width"] == pytest.approx((up["ci95"][1] - up["ci95"][0]) / 2)
        assert out["resolution"][t][m]["min_half_width"] == 0.0  # the identical row
    assert "base" not in out["differences"]


def test_point_values_are_evaluate_s_standard_reading():
    rows = vg_ro_rows()
    out = paired.headline_intervals(rows, resamples=50)
    for name, by_task in rows.items():
        rep = evaluate(by_task, strict=False, spice=False)
        assert out["standard"][name] == rep.standard
        for t in by_task:
            for m, v in out["rows"][name][t].items():
                assert v["value"] == rep.standard[t][m]
                lo, hi = v["ci95"]
                assert lo <= hi and v["se"] >= 0
    # three modalities of eight: the absent five count 0, in the point and in every replicate
    assert out["rows"]["better"]["RO"]["accuracy"] == {"value": 3 / 8, "ci95": [3 / 8, 3 / 8], "se": 0.0}


def test_seeded_and_paired_by_id_not_by_position():
    rows = vg_ro_rows()
    a = paired.headline_intervals(rows, resamples=300, seed=3, reference="base")
    b = paired.headline_intervals(rows, resamples=300, seed=3, reference="base")
    c = paired.headline_intervals(rows, resamples=300, seed=4, reference="base")
    assert a == b
    assert a["rows"]["base"]["RO"]["accuracy"]["ci95"] != c["rows"]["base"]["RO"]["accuracy"]["ci95"]
    # the anchor's order fixes the draws: listing the reference's questions in another order only permutes
    # which questions the same counts fall on, so the bootstrap differs — but a row's own order never matters
    rows2 = {
        "base": rows["base"],
        "better": {t: list(reversed(v)) for t, v in rows["better"].items()},
        "same": rows["same"],
    }
    assert paired.headline_intervals(rows2, resamples=300, seed=3, reference="base") == a


def test_rows_must_answer_the_same_questions():
    rows = vg_ro_rows()
    other = {t: [dict(r) for r in v] for t, v in rows["better"].items()}
    other["RO"][5]["id"] = 999
    with pytest.raises(ClinkdError, match=r"row 'x', task RO: not the same questions.*first 5.*first 999"):
        paired.headline_intervals({"base": rows["base"], "x": other}, resamples=10)
    twice = {t: [dict(r) for r in v] for t, v in rows["better"].items()}
    twice["VG"][3]["id"] = twice["VG"][4]["id"]
    with pytest.raises(ClinkdError, match=r"row 'x', task VG: id 4 is given twice"):
        paired.headline_intervals({"base": rows["base"], "x": twice}, resamples=10)
    moved = {t: [dict(r) for r in v] for t, v in rows["better"].items()}
    moved["VG"][0]["image"] = "mr_0.png"
    with pytest.raises(ClinkdError, match=r"row 'x', task VG: id 0 has another image"):
        paired.headline_intervals({"base": rows["base"], "x": moved}, resamples=10)
    with pytest.raises(ClinkdError, match=r"row 'x' has no RO predictions"):
        paired.headline_intervals({"base": rows["base"], "x": {"VG": rows["better"]["VG"]}}, resamples=10)
    with pytest.raises(ClinkdError, match=r"row 'x' holds task RO but row 'base' does not"):
        paired.headline_intervals({"base": {"VG": rows["base"]["VG"]}, "x": rows["better"]}, resamples=10)
    with pytest.raises(ClinkdError, match="reference row 'nope'"):
        paired.headline_intervals(rows, reference="nope")
    with pytest.raises(ClinkdError, match="resamples"):
        paired.headline_intervals(rows, resamples=1)
    bad = {"VG": [{"id": 0, "image": "ct_0.png"}], "RO": rows["base"]["RO"]}
    with pytest.raises(DataError, match=r"row 'x'.*record 0: invalid prediction: missing field"):
        paired.headline_intervals({"x": bad})


def test_bleu_from_summed_counts_hand_worked():
    hyp, ref = ngram.Cooked("a b c d"), ngram.Cooked("a b c e f")
    s1 = ngram.bleu_stats(hyp, ref)  # testlen 4, reflen 5, guess 4 3 2 1, correct 3 2 1 0
    s2 = ngram.bleu_stats(ngram.Cooked("x y"), ngram.Cooked("x y"))  # testlen 2, reflen 2, correct 2 1 0 0
    rows = ngram.bleu_stats_matrix([s1, s2])
    assert rows.tolist() == [[4, 5, 4, 3, 2, 1, 3, 2, 1, 0], [2, 2, 2, 1, 0, 0, 2, 1, 0, 0]]
    # the resample {s1, s1, s2}: counts (2, 1); its corpus BLEU is pycocoevalcap's on those three captions
    totals = np.array([2, 1]) @ rows  # testlen 10, reflen 12, guess 10 7 4 2, correct 8 5 2 0
    got = ngram.bleu_from_totals(totals)
    want = ngram.bleu([s1, s1, s2])
    assert got == pytest.approx(want, rel=1e-15, abs=1e-300)
    bp = np.exp(1 - 12 / 10)
    assert got[0] == pytest.approx(8 / 10 * bp) and got[1] == pytest.approx((8 / 10 * 5 / 7) ** 0.5 * bp)


def test_meteor_formula_hand_worked():
    perfect = coco_java.additive_stats("3 3 1 1 2 2 1 1 0 0 0 0 0 0 0 0 0 0 0 0 1 3 3")
    assert perfect[20] == 0.0  # a perfect segment adds no chunk
    assert (
        coco_java.meteor_from_stats(np.array([1, 1, 0, 0, 1, 1, *[0] * 14, 1, 1, 1])) == 1.0
    )  # one word, matched
    assert coco_java.meteor_from_stats(np.zeros(23)) == 0.0  # nothing at all: NaN read as 0, as METEOR does
    # 2 content words each side, one exact content match, one chunk: P = R = 0.5, frag = 1 / 1
    row = np.array([2, 2, 0, 0, 1, 1, *[0] * 14, 1, 1, 1], dtype=float)
    assert coco_java.meteor_from_stats(row) == pytest.approx(0.5 * (1 - 0.6 * 1.0**0.2))


# ------------------------------------------------------------------------------ with Java


def _caption(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


RESAMPLE = [2, 0, 1, 3, 0, 1]  # how often each ct GC question is drawn in the hand-made resample ("pet")


@pytest.fixture(scope="module")
def caption_run():
    rng = random.Random(5)
    base, better = {"GC": [], "MII": []}, {"GC": [], "MII": []}
    pid = 0
    ct = []
    for t, mods, n in (("GC", ["ct", "mr", "x"], 18), ("MII", ["ct", "fundus"], 12)):
        for i in range(n):
            m = mods[i % len(mods)]
            ann = _caption(rng, 4, 12)
            resp = " ".join(w if rng.random() < 0.6 else rng.choice(WORDS) for w in ann.split()) + " shows"
            base[t].append(rec(pid, f"{m}_{pid}.png", ann, resp))
            better[t].append(rec(pid, f"{m}_{pid}.png", ann, ann))  # every caption perfect
            if t == "GC" and m == "ct":
                ct.append((ann, resp))
            pid += 1
    # a resample of the ct GC questions built by hand: duplicates, scored as its own modality ("pet")
    for (ann, resp), k in zip(ct, RESAMPLE):
        for _ in range(k):
            base["GC"].append(rec(pid, f"pet_{pid}.png", ann, resp))
            better["GC"].append(rec(pid, f"pet_{pid}.png", ann, ann))
            pid += 1
    rows = {"base": base, "same": {t: [dict(r) for r in v] for t, v in base.items()}, "better": better}
    seen = {}
    real = paired._score

    def spy(*a, **k):
        seen["score"] = real(*a, **k)
        return seen["score"]

    with coco_java.MeteorProcess() as meteor, pytest.MonkeyPatch.context() as mp:
        # one METEOR JVM (~10 s to load its tables) for both runs: each run's close() leaves it open
        mp.setattr(coco_java, "MeteorProcess", lambda: _Shared(meteor))
        mp.setattr(paired, "_score", spy)
        out = paired.headline_intervals(rows, resamples=500, reference="base")
        rep = evaluate(rows["base"], strict=False, spice=False)
    return rows, out, seen["score"][1], rep


class _Shared:
    """A METEOR process whose ``close`` does nothing (the fixture closes it)."""

    def __init__(self, proc):
        self._proc = proc

    def __getattr__(self, name):
        return getattr(self._proc, name)

    def close(self):
        pass


@needs_java
def test_caption_points_are_evaluate_s_and_replicates_recover_them(caption_run):
    rows, out, per_question, rep = caption_run
    assert out["standard"]["base"] == rep.standard  # evaluate's blocks, bit for bit
    for t in ("GC", "MII"):
        groups = {
            m: [i for i, r in enumerate(rows["base"][t]) if r["image"].startswith(m + "_")]
            for m in MODALITIES
        }
        present = [groups[m] for m in MODALITIES if groups[m]]
        identity = [np.ones((1, len(p)), dtype=np.int64) for p in present]  # the full set as one "resample"
        full = paired._replicates(t, per_question["base"][t], present, identity, 1)[0]
        for k, m in enumerate(paired.METRICS[t]):
            v = out["rows"]["base"][t][m]
            assert v["value"] == rep.standard[t][m]
            assert full[k] == pytest.approx(v["value"], rel=1e-12)  # METEOR: the Python formula = the JVM's
            assert v["ci95"][0] <= v["value"] <= v["ci95"][1]
    assert out["approximate"] == [] and "CIDEr" in out["conditional"]


@needs_java
def test_a_resample_built_by_hand_is_recomputed_exactly(caption_run):
    rows, _out, per_question, rep = caption_run
    gc = rows["base"]["GC"]
    x = per_question["base"]["GC"]
    ct = [i for i, r in enumerate(gc) if r["image"].startswith("ct_")]
    counts = np.array([RESAMPLE])  # (1, n_ct)
    sums = (counts @ x[ct])[0]
    pet = rep.standard["GC"]["per_modality"]["pet"]  # evaluate on the duplicated questions
    bleu = ngram.bleu_from_totals(sums[paired._BLEU])
    for k in range(4):
        assert bleu[k] == pytest.approx(pet[f"Bleu_{k + 1}"], rel=1e-14)
    assert coco_java.meteor_from_stats(sums[paired._METEOR]) == pytest.approx(pet["METEOR"], rel=1e-14)
    assert sums[paired._ROUGE] / sum(RESAMPLE) == pytest.approx(pet["ROUGE_L"], rel=1e-14)
    # CIDEr keeps the full set's document frequencies: the resample's value is the mean of the ct captions'
    # scores, not what a run on the duplicated references (other DF) gives
    fixed_df = sums[paired._CIDER] / sum(RESAMPLE)
    ct_cider = x[ct, paired._CIDER]
    assert fixed_df == pytest.approx(np.dot(RESAMPLE, ct_cider) / sum(RESAMPLE))
    assert fixed_df != pytest.approx(pet["CIDEr"], rel=1e-6)


@needs_java
def test_caption_rows_paired(caption_run):
    _, out, _, _ = caption_run
    for t in ("GC", "MII"):
        for m in paired.METRICS[t]:
            same = out["differences"]["same"][t][m]
            assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0] and not same["beyond_noise"]
        head = out["headline"][t]
        up = out["differences"]["better"][t][head]
        assert up["beyond_noise"] and up["ci95"][0] > 0
