"""Report generation (clinkd.eval.reportgen): R2Gen cleaning, hand-worked metrics, pycocoevalcap equality."""

import math
import shutil

import pytest

from clinkd.eval.reportgen import REPORT_METRICS, clean_report_iu_xray, clean_report_mimic_cxr, score_reports

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The heart is normal. The lungs are clear.", "the heart is normal . the lungs are clear ."),
        ("1. No acute disease. 2. Heart size normal..", "no acute disease . heart size normal ."),
        ("No effusion, no pneumothorax!", "no effusion no pneumothorax ."),
        # the hyphen survives (R2Gen's ":-\[" is a range), so do digits; quotes, slashes, ':' do not
        ('X-ray: "stable" 3/4 (prior)', "x-ray stable 34 prior ."),
        ("", " ."),  # an empty report still ends in " ."
        ("Clear. ", "clear ."),
    ],
)
def test_clean_iu_xray(raw, expected):
    assert clean_report_iu_xray(raw) == expected


def test_clean_mimic_cxr_extra_steps():
    raw = "FINDINGS:\nThe lungs are clear.  No effusion___ seen....\nIMPRESSION: normal."
    assert (
        clean_report_mimic_cxr(raw) == "findings the lungs are clear . no effusion seen . impression normal ."
    )
    # IU X-Ray's cleaning keeps newlines (inside a sentence) and the underscores' spaces
    assert "\n" in clean_report_iu_xray("a\nb")
    assert clean_report_mimic_cxr("a\nb") == "a b ."


def test_empty_sentences_are_kept_as_r2gen_does():
    # "a. . b" splits into "a", "", "b": the empty one stays (R2Gen's filter never removes one)
    assert clean_report_iu_xray("a. . b") == "a .  . b ."


HYPS = [
    "the heart is large .",
    "lungs are clear . no effusion .",
    "no pneumothorax .",
    "mild cardiomegaly . small left pleural effusion .",
]
REFS = [
    "the heart is normal .",
    "the lungs are clear . no pleural effusion .",
    "no pneumothorax or effusion .",
    "moderate cardiomegaly . small left pleural effusion . no pneumothorax .",
]


@pytest.fixture(scope="module")
def scored():
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    return score_reports(HYPS, REFS, bootstrap=200, seed=0)


def test_hand_worked_single_report():
    # BLEU and ROUGE-L of one pair, by hand: 4 of 5 unigrams, 2 of 4 bigrams; LCS 4 of 5 each side.
    from clinkd.eval import ngram

    h, r = ngram.Cooked("the heart is large ."), ngram.Cooked("the heart is normal .")
    b1, b2, _, _ = ngram.bleu([ngram.bleu_stats(h, r)])
    assert b1 == pytest.approx(0.8, abs=1e-6)
    assert b2 == pytest.approx(math.sqrt(0.8 * 0.5), abs=1e-6)
    assert ngram.rouge_l("the heart is large .", "the heart is normal .") == pytest.approx(0.8)
    # CIDEr-D: a perfect answer has cosine 1 for every n that it has; 3-word reports have no 4-gram,
    # so (1 + 1 + 1 + 0) / 4 × 10 = 7.5; answers sharing no weighted n-gram score 0
    refs = [ngram.Cooked("heart normal ."), ngram.Cooked("lungs clear .")]
    assert ngram.cider(refs, refs)[0] == pytest.approx(7.5)
    four = [ngram.Cooked("heart size normal ."), ngram.Cooked("lungs are clear .")]
    assert ngram.cider(four, four)[0] == pytest.approx(10.0)
    assert ngram.cider([ngram.Cooked("spleen ."), ngram.Cooked("liver .")], refs)[0] == pytest.approx(0.0)


def test_equal_to_direct_pycocoevalcap_calls(scored):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: [r] for i, r in enumerate(REFS)}
    res = {i: [h] for i, h in enumerate(HYPS)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
        assert scored[f"Bleu_{k + 1}"] == pytest.approx(bleu[k], rel=1e-12)
    assert scored["ROUGE_L"] == pytest.approx(Rouge().compute_score(gts, res)[0], rel=1e-12)
    assert scored["CIDEr"] == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-12)


@pytest.mark.slow  # a second METEOR JVM (~10 s under load): run with -m slow
def test_meteor_equal_to_pycocoevalcap(scored):
    from pycocoevalcap.meteor.meteor import Meteor

    gts = {i: [r] for i, r in enumerate(REFS)}
    res = {i: [h] for i, h in enumerate(HYPS)}
    meteor = Meteor()
    assert scored["METEOR"] == pytest.approx(meteor.compute_score(gts, res)[0], abs=1e-9)


def test_intervals_bracket_the_values(scored):
    assert set(scored["ci95"]) == set(REPORT_METRICS)
    for m in REPORT_METRICS:
        lo, hi = scored["ci95"][m]
        assert lo <= hi
    lo, hi = scored["ci95"]["ROUGE_L"]
    assert lo <= scored["ROUGE_L"] <= hi


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        score_reports(["a ."], [])
