"""Radiology report generation (IU X-Ray, MIMIC-CXR): the R2Gen-family text cleaning and NLG metrics.

The report-generation papers (R2Gen, Chen et al. EMNLP 2020, and the models that reuse its code and
splits: CMN, PPKED, METransformer, ...) score *cleaned* reports, not PTB-tokenised ones: the gold report
goes through the dataset's ``clean_report`` (``modules/tokenizers.py`` of cuhksz-nlp/R2Gen, checked at
commit a938a6e) and the generated report is made of the same kind of tokens, and the metrics are
pycocoevalcap's scorers called directly on those texts (``modules/metrics.py``: ``Bleu(4)``,
``Meteor()``, ``Rouge()``; no ``PTBTokenizer``). CIDEr (pycocoevalcap's ``Cider``, CIDEr-D) is added
as the later papers report it.

The cleaning (:func:`clean_report_iu_xray`, :func:`clean_report_mimic_cxr`), in words:

1. a chain of literal replacements — MIMIC-CXR only: newlines to spaces, runs of ``_`` and of spaces
   shortened, more ``..`` → ``.`` passes; both: ``..`` → ``.``, list numbering ``1. ``… ``5. `` dropped
   (``". 2. "`` and ``" 2. "`` → ``". "``);
2. strip, lower-case, split into sentences on ``". "``;
3. in each sentence drop ``" / \\ '`` and every character of R2Gen's class
   ``[.,?;*!%^&_+():-\\[\\]{}]`` — where ``:-\\[`` is a *range* (``:`` … ``[``, i.e. ``: ; < = > ? @``
   and ``A``–``Z``), so the hyphen is kept (``x-ray``); digits, ``#``, ``$``, ``|``, ``~`` are kept too;
4. sentences joined by ``" . "``, a final ``" ."`` added. Empty sentences are kept (R2Gen's filter
   ``!= []`` compares a string with a list and never removes one).

Not reproduced: R2Gen maps gold tokens outside its training vocabulary (words seen fewer than 3 times in
IU X-Ray's training reports, 10 in MIMIC-CXR's) to ``<unk>`` before scoring; that needs the training
split, so clinkd scores the cleaned gold text itself (numbers can differ slightly on rare words).

Arithmetic: BLEU, ROUGE-L and CIDEr by :mod:`clinkd.eval.ngram` (pycocoevalcap's own arithmetic, one
reference per report), METEOR by one METEOR 1.5 JVM (:class:`clinkd.eval.coco_java.MeteorProcess`,
the jar and flags of ``pycocoevalcap.meteor.Meteor``; corpus score as its ``EVAL``). METEOR needs Java;
without it scoring stops with :class:`~clinkd.eval.coco_java.JavaToolError`, as for Med-GRIT captions.
Equality with direct pycocoevalcap scorer calls is asserted by ``tests/eval/test_reportgen.py``.

>>> clean_report_iu_xray("The heart is normal. No effusion, no pneumothorax.")
'the heart is normal . no effusion no pneumothorax .'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from clinkd.eval import coco_java, ngram

REPORT_METRICS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
"""Metric names as pycocoevalcap spells them."""

# step 1: R2Gen's replacement chains, in order (each a str.replace over the whole report)
_NUMBERING = (
    ("1. ", ""),
    (". 2. ", ". "),
    (". 3. ", ". "),
    (". 4. ", ". "),
    (". 5. ", ". "),
    (" 2. ", ". "),
    (" 3. ", ". "),
    (" 4. ", ". "),
    (" 5. ", ". "),
)
_IU_STEPS = (("..", "."),) * 3 + _NUMBERING
_MIMIC_STEPS = (("\n", " "),) + (("__", "_"),) * 7 + (("  ", " "),) * 6 + (("..", "."),) * 8 + _NUMBERING
# step 3: R2Gen's character class, whose ":-\[" is a range (see the module docstring)
_DROP = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")
_QUOTES = ('"', "/", "\\", "'")


def _clean(report: str, steps: Sequence[tuple[str, str]]) -> str:
    for old, new in steps:
        report = report.replace(old, new)
    sentences = report.strip().lower().split(". ")
    out = []
    for sent in sentences:
        for q in _QUOTES:
            sent = sent.replace(q, "")
        out.append(_DROP.sub("", sent.strip().lower()))
    return " . ".join(out) + " ."


def clean_report_iu_xray(report: str) -> str:
    """R2Gen's ``clean_report_iu_xray`` (see the module docstring).

    >>> clean_report_iu_xray("1. No acute disease. 2. Heart size normal..")
    'no acute disease . heart size normal .'
    """
    return _clean(report, _IU_STEPS)


def clean_report_mimic_cxr(report: str) -> str:
    """R2Gen's ``clean_report_mimic_cxr``: IU X-Ray's steps plus newlines, ``__`` runs and double spaces.

    >>> clean_report_mimic_cxr("FINDINGS:\\nThe lungs are clear.  No effusion___")
    'findings the lungs are clear . no effusion .'
    """
    return _clean(report, _MIMIC_STEPS)


CLEANERS: dict[str, Callable[[str], str]] = {
    "iu-xray": clean_report_iu_xray,
    "mimic-cxr": clean_report_mimic_cxr,
}
"""The cleaning of each report benchmark (R2Gen's ``dataset_name`` ``iu_xray`` / ``mimic_cxr``)."""


def score_reports(
    hyps: Sequence[str], refs: Sequence[str], *, bootstrap: int = 0, seed: int = 0
) -> dict[str, Any]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of cleaned generated reports against cleaned gold ones
    (one reference each), as pycocoevalcap's scorers give them on ``{i: [hyp]}`` / ``{i: [ref]}``.

    Returns ``{metric: value, ..., "ci95": {metric: [lo, hi]}}``; intervals (when ``bootstrap`` > 0)
    resample reports with replacement: BLEU and METEOR are recomputed from resampled corpus statistics
    (exact), ROUGE-L is a mean, CIDEr a mean of per-report scores with the full set's document
    frequencies held fixed (the usual conditional bootstrap, see :mod:`clinkd.eval.paired`).

    Raises :class:`~clinkd.eval.coco_java.JavaToolError` when Java is missing (METEOR).
    """
    if len(hyps) != len(refs) or not hyps:
        raise ValueError("score_reports needs as many generated as gold reports, at least one")
    with coco_java.MeteorProcess() as meteor:  # the JVM loads while the n-gram metrics are computed
        cooked_h = [ngram.Cooked(h) for h in hyps]
        cooked_r = [ngram.Cooked(r) for r in refs]
        stats = [ngram.bleu_stats(h, r) for h, r in zip(cooked_h, cooked_r)]
        out: dict[str, Any] = {f"Bleu_{k}": v for k, v in enumerate(ngram.bleu(stats), start=1)}
        rouge = np.array([ngram.rouge_l(h, r) for h, r in zip(hyps, refs)])
        cider, cider_each = ngram.cider(cooked_h, cooked_r)
        lines = meteor.stats(list(hyps), [[r] for r in refs])
        out["METEOR"] = float(meteor.evaluate_summed(lines))
    out["ROUGE_L"] = float(rouge.mean())
    out["CIDEr"] = float(cider)
    out = {m: out[m] for m in REPORT_METRICS}
    out["ci95"] = {}
    if bootstrap > 0:
        out["ci95"] = _bootstrap(stats, lines, rouge, cider_each, bootstrap, seed)
    return out


def _bootstrap(
    bleu_stats: list[dict],
    meteor_lines: list[str],
    rouge: np.ndarray,
    cider: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, list[float]]:
    from clinkd.eval.strict import percentile_ci, resample_counts

    n = len(rouge)
    counts = resample_counts([n], n_boot, np.random.default_rng([seed, 16]))[0]  # (B, n)
    bleu = ngram.bleu_from_totals(counts @ ngram.bleu_stats_matrix(bleu_stats))  # (B, 4)
    rows = np.array([coco_java.additive_stats(line) for line in meteor_lines])  # (n, 23)
    meteor = coco_java.meteor_from_stats(counts @ rows)  # (B,)
    values = np.column_stack([bleu, meteor, counts @ rouge / n, counts @ cider / n])  # (B, 7)
    ci = percentile_ci(values)
    return {m: [float(lo), float(hi)] for m, (lo, hi) in zip(REPORT_METRICS, ci)}
