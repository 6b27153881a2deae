"""The fast n-gram scorers against pycocoevalcap's own, bit for bit (no Java needed)."""

import random

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge, my_lcs

from clinkd.eval import ngram

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
]


def _corpus(seed: int, n: int, lo: int = 0, hi: int = 30) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleu_cider_rouge_identical_to_pycocoevalcap(seed):
    hyps, refs = _corpus(seed, 300, 0, 25), _corpus(seed + 100, 300, 1, 40)
    hyps[7] = ""  # empty responses happen
    gts = {i: [r] for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    ch, cr = ngram.precook(hyps), ngram.precook(refs)

    bleu_ref, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert ngram.bleu([ngram.bleu_stats(h, r) for h, r in zip(ch, cr)]) == bleu_ref

    cider_ref, cider_each_ref = Cider().compute_score(gts, res)
    cider, cider_each = ngram.cider(ch, cr)
    assert cider == cider_ref
    assert np.array_equal(cider_each, cider_each_ref)

    rouge_ref, rouge_each_ref = Rouge().compute_score(gts, res)
    rouge_each = np.array([ngram.rouge_l(h, r) for h, r in zip(hyps, refs)])
    assert np.array_equal(rouge_each, rouge_each_ref)
    assert np.mean(rouge_each) == rouge_ref


def test_cider_idf_is_per_group():
    hyps, refs = _corpus(5, 60), _corpus(6, 60, 1)
    ch, cr = ngram.precook(hyps), ngram.precook(refs)
    first, _ = ngram.cider(ch[:30], cr[:30])
    ref, _ = Cider().compute_score({i: [refs[i]] for i in range(30)}, {i: [hyps[i]] for i in range(30)})
    assert first == ref
    pooled, _ = ngram.cider(ch, cr)
    assert pooled != first


def test_lcs_equals_the_dynamic_programme():
    rng = random.Random(3)
    for _ in range(500):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 20))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 20))]
        expected = my_lcs(a, b) if a and b else 0
        assert ngram.lcs_length(a, b) == expected


def test_rouge_on_a_long_response_is_fast():
    import time

    long = " ".join(["liver"] * 20000)
    t = time.perf_counter()
    ngram.rouge_l(long, "the liver has a lesion")
    assert time.perf_counter() - t < 1.0
