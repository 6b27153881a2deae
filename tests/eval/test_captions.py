"""Caption metrics: one-JVM scoring equals plain pycocoevalcap runs; Java edge cases; SPICE detection.

Needs Java (pycocoevalcap's tokenizer and METEOR jars); skipped without it.
"""

import random
import shutil

import pytest
from eval_helpers import make

from clinkd.eval import coco_java, evaluate
from clinkd.eval.captions import CaptionTask, score_caption_tasks
from clinkd.eval.naive import naive_caption_scores

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")

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
    ",",
    ".",
    "(",
    ")",
    "hypodense",
    "région",
]


def _caption(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


@pytest.fixture(scope="module")
def small_set():
    rng = random.Random(0)
    hyps = [_caption(rng, 0, 18) for _ in range(40)]
    refs = [_caption(rng, 3, 18) for _ in range(40)]
    hyps[4] = ""
    hyps[9] = "Ünïcode café — naïve"  # (cleaning leaves every response here unchanged)
    hyps[5], hyps[30] = refs[5], refs[30]  # perfect matches: METEOR aggregates their chunks apart
    groups = {"ct": list(range(0, 25)), "mr": list(range(25, 40)), "__pooled__": list(range(40))}
    result = score_caption_tasks({"GC": CaptionTask(hyps, refs, groups)})["GC"]
    return hyps, refs, groups, result


@pytest.mark.parametrize("group", ["mr", "__pooled__"])
def test_identical_to_a_plain_pycocoevalcap_run(small_set, group):
    hyps, refs, groups, result = small_set
    idx = groups[group]
    naive = naive_caption_scores([hyps[i] for i in idx], [refs[i] for i in idx])
    fast = result.scores[group]
    for metric, value in naive.items():
        assert fast[metric] == value, metric  # exact, not approximate
    assert fast["SPICE"] is None and result.spice_reason


def test_tokenizer_keeps_one_line_per_caption_whatever_the_characters():
    odd = [
        "",
        "   ",
        "a\rb",
        "c\u2028d",
        "e\x85f",
        "g\x0bh\x0ci",
        "j\nk",
        "lone \ud800 surrogate",
        "tab\there",
        "\x00nul",
        "emoji 🩻 scan",
        "x" * 200_000,
        "normal caption .",
    ]
    out = coco_java.ptb_tokenize(odd)
    assert len(out) == len(odd)
    assert out[0] == "" and out[1] == ""
    assert out[2] == "a b" and out[3] == "c d" and out[6] == "j k"
    assert out[-1] == "normal caption"
    assert len(out[11].split()) <= coco_java.MAX_TOKENS


@pytest.mark.slow  # (also covered by the equality with plain pycocoevalcap runs above)
def test_meteor_summed_statistics_equal_a_full_eval():
    rng = random.Random(1)
    hyps = [_caption(rng, 0, 20) for _ in range(60)]
    refs = [_caption(rng, 1, 20) for _ in range(60)]
    hyps[3], hyps[40] = refs[3], refs[40]
    with coco_java.MeteorProcess() as meteor:
        stats = meteor.stats(hyps, [[r] for r in refs])
        for group in (stats, stats[:7], stats[30:]):
            full, each = meteor.evaluate(group)
            assert len(each) == len(group)
            assert meteor.evaluate_summed(group) == full


def test_aggregate_stats_skips_chunks_of_perfect_matches():
    perfect = "3 3 1 1 2 2 1 1 0 0 0 0 0 0 0 0 0 0 0 0 1 3 3"  # all matched, one chunk
    partial = "4 5 1 2 2 2 1 1 0 0 0 0 0 0 0 0 0 0 0 0 2 3 3"
    summed = coco_java.aggregate_stats([perfect, partial]).split()
    assert [float(x) for x in summed] == [7, 8, 2, 3, 4, 4, 2, 2, *[0] * 12, 2, 6, 6]
    with pytest.raises(RuntimeError):
        coco_java.aggregate_stats(["1 2 3"])


def test_punctuation_list_is_pycocoevalcap_s():
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    assert frozenset(PUNCTUATIONS) == coco_java._PUNCTUATIONS


def test_spice_detection_never_downloads(tmp_path, monkeypatch):
    import pycocoevalcap.spice.get_stanford_models as gsm

    def boom(*a, **k):
        raise AssertionError("the CoreNLP downloader was called")

    monkeypatch.setattr(gsm, "get_stanford_models", boom)
    monkeypatch.setattr(gsm, "urlretrieve", boom)
    # a fake package folder without the CoreNLP jars: unavailable, reason names them
    (tmp_path / "spice" / "lib").mkdir(parents=True)
    (tmp_path / "spice" / "spice-1.0.jar").write_bytes(b"")
    monkeypatch.setattr(coco_java, "package_dir", lambda: tmp_path)
    reason = coco_java.spice_unavailable_reason()
    assert reason and "stanford-corenlp-3.6.0.jar" in reason
    # with the jars in place it would be attempted
    for jar in coco_java.SPICE_JARS:
        (tmp_path / "spice" / "lib" / jar).write_bytes(b"")
    assert coco_java.spice_unavailable_reason() is None
    monkeypatch.setattr(coco_java, "java_available", lambda: "no java")
    assert coco_java.spice_unavailable_reason() == "no java"


def test_spice_required_but_missing_fails_clearly(monkeypatch):
    monkeypatch.setattr(coco_java, "spice_unavailable_reason", lambda: "jars missing")
    with pytest.raises(RuntimeError, match="jars missing"):
        score_caption_tasks({"GC": CaptionTask(["a"], ["a"], {"ct": [0]})}, spice=True)


def test_absent_modality_counts_zero_in_the_standard_caption_mean(small_set):
    hyps, refs, _groups, result = small_set
    preds = [make(("ct" if i < 25 else "mr") + f"_{i}.png", refs[i], hyps[i], i) for i in range(40)]
    preds.append(make("us_1.png", "a b c", "a b", 99))
    rep = evaluate({"MII": preds}, bootstrap=100, spice=False)
    std, st = rep.standard["MII"], rep.strict["MII"]
    for metric in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr"):
        assert std["per_modality"]["ct"][metric] == result.scores["ct"][metric]
        assert std[metric] == pytest.approx((result.scores["ct"][metric] + result.scores["mr"][metric]) / 8)
        assert st[metric] == pytest.approx((result.scores["ct"][metric] + result.scores["mr"][metric]) / 2)
    assert std["per_modality"]["x"]["CIDEr"] is None and "x" in std["absent_modalities"]
    six = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L")
    assert std["mBMR"] == pytest.approx(sum(std[m] for m in six) / 6)
    assert std["SPICE"] is None and "SPICE" in std["unavailable"]
    assert st["pooled"]["n_samples"] == 40 and st["pooled"]["CIDEr"] == result.scores["__pooled__"]["CIDEr"]
    assert "us" in std["other_modalities"]
    lo, hi = st["ci95"]["ROUGE_L"]
    assert lo <= st["ROUGE_L"] <= hi
    assert "Bleu_4" not in st["ci95"] and "METEOR" not in st["ci95"]
