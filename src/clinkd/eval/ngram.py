"""BLEU, ROUGE-L and CIDEr with pycocoevalcap's exact arithmetic, without its repeated work.

pycocoevalcap recounts every caption's n-grams for each scorer and each run, and computes CIDEr with
NumPy *scalar* arithmetic (~1 µs per operation). Scoring eight modalities plus a pooled group that way
costs minutes on the Med-GRIT test split. Here:

* n-grams are counted once per caption (:func:`precook`, C-speed ``Counter``) and shared by BLEU
  (whose per-caption statistics do not depend on the group) and CIDEr (whose IDF does);
* ROUGE-L's LCS uses the bit-parallel algorithm of Allison & Dix (1986) / Hyyrö (2004) on Python
  integers — same integer LCS as ``pycocoevalcap.rouge.my_lcs``, the same float formula after it;
* CIDEr-D is :class:`pycocoevalcap.cider.cider_scorer.CiderScorer` re-expressed on Python floats,
  operation for operation in the same order, so every value is bit-identical: IEEE ``+ - * /`` and
  ``sqrt`` are correctly rounded in both, ``log`` is taken with ``np.log`` as there (memoised per
  document-frequency count), squares with ``pow(x, 2)`` (NumPy's scalar power calls the same C
  ``pow``, which is *not* always ``x * x``), and the 4-term means with ``np.mean`` (its reduction
  order differs from a left-to-right sum).

Equality with the pycocoevalcap scorers is asserted by ``tests/eval/test_ngram.py`` and
``benchmarks/bench_eval.py``. Only the single-reference case (Med-GRIT: one reference per sample)
is implemented.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer

N = 4
SIGMA = 6.0
BETA = 1.2


class Cooked:
    """A caption's word count and n-gram counts (n = 1..4, in pycocoevalcap's insertion order)."""

    __slots__ = ("counts", "length")

    def __init__(self, sentence: str) -> None:
        words = sentence.split()
        counts: Counter = Counter()
        for k in range(1, N + 1):
            counts.update(zip(*(words[i:] for i in range(k))))
        self.length = len(words)
        self.counts = counts


def precook(sentences: Sequence[str]) -> list[Cooked]:
    return [Cooked(s) for s in sentences]


# ----------------------------------------------------------------------------------------- BLEU


def bleu_stats(test: Cooked, ref: Cooked) -> dict:
    """``cook_test(test, cook_refs([ref]))`` of pycocoevalcap, from already counted n-grams."""
    correct = [0] * N
    ref_counts = ref.counts
    for ngram, count in test.counts.items():
        correct[len(ngram) - 1] += min(ref_counts.get(ngram, 0), count)
    return {
        "reflen": [ref.length],
        "testlen": test.length,
        "guess": [max(0, test.length - k + 1) for k in range(1, N + 1)],
        "correct": correct,
    }


def bleu(stats: Sequence[dict]) -> list[float]:
    """Corpus BLEU-1..4 of a group (``option="closest"``), by pycocoevalcap's own ``compute_score``."""
    scorer = BleuScorer(n=N)
    scorer.ctest = list(stats)
    scorer.crefs = [None] * len(stats)
    scores, _ = scorer.compute_score(option="closest", verbose=0)
    return [float(s) for s in scores]


def bleu_stats_matrix(stats: Sequence[dict]) -> np.ndarray:
    """Per-caption BLEU statistics as rows ``[testlen, reflen, guess_1..4, correct_1..4]``: ``(n, 10)``.

    Every field is a count that :meth:`BleuScorer.compute_score` sums over a corpus (``reflen`` is the one
    reference's length, what ``option="closest"`` picks), so a resampled corpus's totals are a weighted
    sum of these rows and :func:`bleu_from_totals` gives its BLEU.
    """
    rows = [[s["testlen"], s["reflen"][0], *s["guess"], *s["correct"]] for s in stats]
    return np.array(rows, dtype=np.float64).reshape(-1, 2 + 2 * N)


def bleu_from_totals(totals: np.ndarray) -> np.ndarray:
    """Corpus BLEU-1..4 from summed :func:`bleu_stats_matrix` rows, vectorised: ``(..., 10) -> (..., 4)``.

    :meth:`BleuScorer.compute_score`'s corpus formula, in its order: the running product of
    ``(correct_k + 1e-15) / (guess_k + 1e-9)``, its ``1/k``-th power, times the brevity penalty
    ``exp(1 - 1/ratio)`` when ``ratio = (testlen + 1e-15) / (reflen + 1e-9) < 1``. Equal to :func:`bleu`
    on the same captions (NumPy's ``exp``/``pow`` may differ from ``math``'s in the last bit).
    """
    t = np.asarray(totals, dtype=np.float64)
    small, tiny = 1e-9, 1e-15
    out = []
    prod = np.ones(t.shape[:-1])
    for k in range(N):
        prod = prod * ((t[..., 2 + N + k] + tiny) / (t[..., 2 + k] + small))
        out.append(prod ** (1.0 / (k + 1)))
    scores = np.stack(out, axis=-1)
    ratio = (t[..., 0] + tiny) / (t[..., 1] + small)
    with np.errstate(divide="ignore", over="ignore"):
        penalty = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return scores * penalty[..., None]


# -------------------------------------------------------------------------------------- ROUGE-L


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists, bit-parallel: O(len(b)) big-int
    operations on ``len(a)``-bit integers.

    >>> lcs_length("a b c d".split(), "a c d e".split())
    3
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(candidate: str, reference: str) -> float:
    """``Rouge().calc_score([candidate], [reference])`` of pycocoevalcap, same float expression."""
    token_c = candidate.split(" ")
    token_r = reference.split(" ")
    lcs = lcs_length(token_r, token_c)
    prec = lcs / float(len(token_c))
    rec = lcs / float(len(token_r))
    if prec != 0 and rec != 0:
        return ((1 + BETA**2) * prec * rec) / float(rec + BETA**2 * prec)
    return 0.0


# ---------------------------------------------------------------------------------------- CIDEr


def cider(tests: Sequence[Cooked], refs: Sequence[Cooked]) -> tuple[float, np.ndarray]:
    """CIDEr-D of a group, one reference per caption: ``CiderScorer(n=4, sigma=6).compute_score()``.

    Returns ``(mean score, per-caption scores)``, both bit-identical to pycocoevalcap's.
    """
    df: dict[tuple[str, ...], float] = {}
    for ref in refs:
        for ngram in ref.counts:
            df[ngram] = df.get(ngram, 0.0) + 1
    ref_len = float(np.log(float(len(refs))))
    log_cache: dict[float, float] = {}

    def log_df(ngram: tuple[str, ...]) -> float:
        count = max(1.0, df.get(ngram, 0.0))
        value = log_cache.get(count)
        if value is None:
            value = log_cache[count] = float(np.log(count))
        return value

    def vec(c: Cooked) -> tuple[list[dict], list[float], int]:
        v: list[dict] = [{} for _ in range(N)]
        norm = [0.0] * N
        length = 0
        for ngram, tf in c.counts.items():
            n = len(ngram) - 1
            w = float(tf) * (ref_len - log_df(ngram))
            v[n][ngram] = w
            norm[n] += pow(w, 2)
            if n == 1:
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    penalty_den = 2 * SIGMA**2
    scores = []
    for test, ref in zip(tests, refs, strict=True):
        vh, nh, lh = vec(test)
        vr, nr, lr = vec(ref)
        delta = float(lh - lr)
        factor = np.e ** (-(delta**2) / penalty_den)
        val = [0.0] * N
        for n in range(N):
            ref_n = vr[n]
            acc = 0.0
            for ngram, w in vh[n].items():
                wr = ref_n.get(ngram, 0.0)
                acc += min(w, wr) * wr
            if nh[n] != 0 and nr[n] != 0:
                acc /= nh[n] * nr[n]
            val[n] = acc * factor
        score = float(np.mean(np.array(val)))
        score /= 1
        score *= 10.0
        scores.append(score)
    arr = np.array(scores)
    return float(np.mean(arr)), arr
