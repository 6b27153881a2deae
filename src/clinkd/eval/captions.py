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
import threading
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
        # METEOR's per-caption statistics come from Java on one core while Python computes
        # ROUGE-L, BLEU and CIDEr on the other.
        log.info("METEOR statistics for %d captions (one JVM, in the background)", len(hyps_all))
        box: dict[str, object] = {}
        worker = threading.Thread(target=_collect_stats, args=(meteor, hyps_all, refs_all, box))
        worker.start()
        rouge = Rouge()
        results: dict[str, CaptionResult] = {}
        bar = _progress(sum(len(t.groups) for t in tasks.values()), progress)
        for name in names:
            hyps, refs = split[name]
            rouge_each = np.array([rouge.calc_score([h], [r]) for h, r in zip(hyps, refs)])
            res = CaptionResult()
            for group, idx in tasks[name].groups.items():
                idx = list(idx)
                res.scores[group], res.per_sample[group] = _ngram_scores(
                    [hyps[i] for i in idx], [refs[i] for i in idx], rouge_each[idx])
                bar.update(1)
            results[name] = res
        bar.close()
        worker.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        stats_all: list[str] = box["stats"]  # type: ignore[assignment]

        spice_all: list[float] | None = None
        if spice_reason is None:
            try:
                spice_all = coco_java.spice_scores(hyps_all, [[r] for r in refs_all])
            except Exception as err:  # noqa: BLE001 - any failure means "unavailable", with why
                spice_reason = f"SPICE failed to run: {type(err).__name__}: {err}"
                if spice is True:
                    raise

        start = 0
        for name in names:
            n = len(split[name][0])
            stats = stats_all[start : start + n]
            spice_each = None if spice_all is None else np.asarray(spice_all[start : start + n])
            start += n
            res = results[name]
            res.spice_reason = spice_reason
            for group, idx in tasks[name].groups.items():
                idx = list(idx)
                scores, per = res.scores[group], res.per_sample[group]
                if not idx:
                    continue
                meteor_score, meteor_each = meteor.evaluate([stats[i] for i in idx])
                scores["METEOR"] = float(meteor_score)
                per["METEOR"] = np.asarray(meteor_each, dtype=float)
                if spice_each is not None:
                    value = float(np.mean(spice_each[idx]))
                    scores["SPICE"] = value if np.isfinite(value) else None
                    per["SPICE"] = spice_each[idx]
    return results


def _collect_stats(meteor: coco_java.MeteorProcess, hyps: list[str], refs: list[str],
                   box: dict[str, object]) -> None:
    try:
        box["stats"] = meteor.stats(hyps, [[r] for r in refs])
    except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
        box["error"] = err


def _ngram_scores(hyps: list[str], refs: list[str], rouge_each: np.ndarray,
                  ) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    """BLEU-1..4 and CIDEr of one group (pycocoevalcap's scorers), ROUGE-L as the mean of the
    per-caption scores; METEOR and SPICE are filled in later (``None`` until then)."""
    scores: dict[str, float | None] = {m: None for m in CAPTION_METRICS}
    if not hyps:
        return scores, {}
    bleu = BleuScorer(n=4)
    for h, r in zip(hyps, refs):
        bleu += (h, [r])
    bleu_scores, _ = bleu.compute_score(option="closest", verbose=0)
    for k, v in enumerate(bleu_scores, start=1):
        scores[f"Bleu_{k}"] = float(v)
    scores["ROUGE_L"] = float(np.mean(rouge_each))
    cider = CiderScorer(n=4, sigma=6.0)
    for h, r in zip(hyps, refs):
        cider += (h, [r])
    cider_score, cider_each = cider.compute_score()
    scores["CIDEr"] = float(cider_score)
    return scores, {"ROUGE_L": rouge_each, "CIDEr": np.asarray(cider_each, dtype=float)}


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
