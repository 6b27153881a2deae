"""Caption metrics for GC and MII (protocol.md §6): BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SPICE).

Each group (a modality, or all samples pooled) is scored as one pycocoevalcap run over that group,
every sample being its own image with one reference — the numbers are those of
``COCOEvalCap.evaluate`` on the group's samples. What is shared between groups is only what does not
depend on the group:

* tokenisation (line by line, so one run over everything gives the same tokens),
* METEOR's per-caption ``SCORE`` statistics (the group's ``EVAL`` then aggregates its own lines),
* ROUGE-L per caption (the group score is the plain mean),
* SPICE per caption (likewise a plain mean).

BLEU (corpus n-gram counts) and CIDEr (IDF over the group's references) are computed per group with
pycocoevalcap's own scorers, as a separate run would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider_scorer import CiderScorer
from pycocoevalcap.rouge.rouge import Rouge

from clinkd.eval import coco_java

log = logging.getLogger(__name__)

CAPTION_METRICS: tuple[str, ...] = (
    "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE",
)
"""Metric names as pycocoevalcap spells them."""

MBMR_METRICS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L")
"""mBMR = mean of these six (the ClinKD MII script; SPICE and CIDEr are not in it)."""

PER_SAMPLE_METRICS: tuple[str, ...] = ("METEOR", "ROUGE_L", "CIDEr", "SPICE")


@dataclass
class CaptionTask:
    """Input of one task: cleaned responses, references, and the groups (name → sample indices)."""

    hyps: Sequence[str]
    refs: Sequence[str]
    groups: Mapping[str, Sequence[int]]


@dataclass
class CaptionResult:
    """Per group: metric → score (``None`` where unavailable) and per-sample arrays for bootstraps."""

    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    per_sample: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    spice_reason: str | None = None


def score_caption_tasks(
    tasks: Mapping[str, CaptionTask], *, spice: bool | None = None, progress: bool = False
) -> dict[str, CaptionResult]:
    """Score every group of every task with one tokenizer run and one METEOR process.

    Args:
        tasks: task name → :class:`CaptionTask`.
        spice: ``True`` to require SPICE, ``False`` to skip it, ``None`` (default) to compute it when
            the CoreNLP jars are present and report it unavailable otherwise.
        progress: show a progress bar over groups.
    """
    names = list(tasks)
    if not names:
        return {}
    spice_reason = "not requested" if spice is False else coco_java.spice_unavailable_reason()
    if spice is True and spice_reason:
        raise RuntimeError(f"SPICE was required but cannot run: {spice_reason}")

    with coco_java.MeteorProcess() as meteor:  # the JVM loads while we tokenise
        texts: list[str] = []
        offsets: dict[str, int] = {}
        for name in names:
            offsets[name] = len(texts)
            texts.extend(tasks[name].hyps)
            texts.extend(tasks[name].refs)
        log.info("tokenising %d captions (one PTB tokenizer run)", len(texts))
        tokens = coco_java.ptb_tokenize(texts)
        hyps_all: list[str] = []
        refs_all: list[str] = []
        split: dict[str, tuple[list[str], list[str]]] = {}
        for name in names:
            n, o = len(tasks[name].hyps), offsets[name]
            hyps, refs = tokens[o : o + n], tokens[o + n : o + 2 * n]
            split[name] = (hyps, refs)
            hyps_all.extend(hyps)
            refs_all.extend(refs)
        log.info("METEOR statistics for %d captions (one JVM)", len(hyps_all))
        stats_all = meteor.stats(hyps_all, [[r] for r in refs_all])

        spice_all: list[float] | None = None
        if spice_reason is None:
            try:
                spice_all = coco_java.spice_scores(hyps_all, [[r] for r in refs_all])
            except Exception as err:  # noqa: BLE001 - any failure means "unavailable", with why
                spice_reason = f"SPICE failed to run: {type(err).__name__}: {err}"
                if spice is True:
                    raise

        results: dict[str, CaptionResult] = {}
        start = 0
        group_list = [(name, g) for name in names for g in tasks[name].groups]
        bar = _progress(len(group_list), progress)
        rouge = Rouge()
        for name in names:
            hyps, refs = split[name]
            n = len(hyps)
            stats = stats_all[start : start + n]
            rouge_each = np.array([rouge.calc_score([h], [r]) for h, r in zip(hyps, refs)])
            spice_each = None if spice_all is None else np.array(spice_all[start : start + n])
            start += n
            res = CaptionResult(spice_reason=spice_reason)
            for group, idx in tasks[name].groups.items():
                idx = list(idx)
                res.scores[group], res.per_sample[group] = _score_group(
                    [hyps[i] for i in idx], [refs[i] for i in idx], [stats[i] for i in idx],
                    rouge_each[idx], None if spice_each is None else spice_each[idx], meteor)
                bar.update(1)
            results[name] = res
        bar.close()
    return results


def _score_group(hyps: list[str], refs: list[str], stats: list[str], rouge_each: np.ndarray,
                 spice_each: np.ndarray | None, meteor: coco_java.MeteorProcess,
                 ) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    if not hyps:
        return {m: None for m in CAPTION_METRICS}, {}
    scores: dict[str, float | None] = {}
    bleu = BleuScorer(n=4)
    for h, r in zip(hyps, refs):
        bleu += (h, [r])
    bleu_scores, _ = bleu.compute_score(option="closest", verbose=0)
    for k, v in enumerate(bleu_scores, start=1):
        scores[f"Bleu_{k}"] = float(v)
    meteor_score, meteor_each = meteor.evaluate(stats)
    scores["METEOR"] = float(meteor_score)
    scores["ROUGE_L"] = float(np.mean(rouge_each))
    cider = CiderScorer(n=4, sigma=6.0)
    for h, r in zip(hyps, refs):
        cider += (h, [r])
    cider_score, cider_each = cider.compute_score()
    scores["CIDEr"] = float(cider_score)
    per = {"METEOR": np.asarray(meteor_each, dtype=float), "ROUGE_L": rouge_each,
           "CIDEr": np.asarray(cider_each, dtype=float)}
    if spice_each is None:
        scores["SPICE"] = None
    else:
        value = float(np.mean(spice_each))
        scores["SPICE"] = value if np.isfinite(value) else None
        per["SPICE"] = spice_each
    return scores, per


def mbmr(scores: Mapping[str, float | None]) -> float | None:
    """mBMR = mean(BLEU-1..4, METEOR, ROUGE-L); ``None`` if any of them is missing."""
    vals = [scores.get(m) for m in MBMR_METRICS]
    if any(v is None for v in vals):
        return None
    return float(sum(vals) / len(vals))  # type: ignore[arg-type]


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="caption groups", unit="group", leave=False)
