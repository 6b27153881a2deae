"""Caption metrics for GC and MII (protocol.md §6): BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SPICE).

Each group (a modality, or all samples pooled) is scored as one pycocoevalcap run over that group,
every sample being its own image with one reference — the numbers are those of
``COCOEvalCap.evaluate`` on the group's samples. What is shared between groups is only what does not
depend on the group:

* tokenisation (line by line, so one run over everything gives the same tokens),
* METEOR's per-caption ``SCORE`` statistics (the group's ``EVAL`` then aggregates its own lines),
* n-gram counts and BLEU's per-caption statistics (the group's corpus BLEU sums its own),
* ROUGE-L per caption (the group score is the plain mean),
* SPICE per caption (likewise a plain mean).

CIDEr's IDF is computed over each group's own references, as a separate run would. The arithmetic
is pycocoevalcap's, bit for bit (see :mod:`clinkd.eval.ngram`); SPICE, BLEU's final step and METEOR
run pycocoevalcap's own code or jar.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from clinkd.eval import coco_java, ngram

log = logging.getLogger(__name__)

CAPTION_METRICS: tuple[str, ...] = (
    "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE",
)
"""Metric names as pycocoevalcap spells them."""

MBMR_METRICS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L")
"""mBMR = mean of these six (the ClinKD MII script; SPICE and CIDEr are not in it)."""

SUMMED_METEOR_GROUP = "__pooled__"
"""The group whose corpus METEOR comes from summed statistics (see ``MeteorProcess.evaluate_summed``)."""


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

    The METEOR JVM scores on one core (statistics, then one ``EVAL`` per group) while this thread
    computes BLEU, ROUGE-L and CIDEr on the other.
    """
    names = [n for n in tasks if len(tasks[n].hyps)]
    results: dict[str, CaptionResult] = {n: CaptionResult() for n in tasks}
    if not names:
        return results
    spice_reason = "not requested" if spice is False else coco_java.spice_unavailable_reason()
    if spice is True and spice_reason:
        raise RuntimeError(f"SPICE was required but cannot run: {spice_reason}")

    with coco_java.MeteorProcess() as meteor:  # the JVM loads while we tokenise
        texts: list[str] = []
        for name in names:
            texts.extend(tasks[name].hyps)
            texts.extend(tasks[name].refs)
        log.info("tokenising %d captions (one PTB tokenizer run)", len(texts))
        t0 = time.perf_counter()
        tokens = coco_java.ptb_tokenize(texts)
        log.debug("captions: tokenised in %.1f s", time.perf_counter() - t0)
        split: dict[str, tuple[list[str], list[str]]] = {}
        pos = 0
        for name in names:
            n = len(tasks[name].hyps)
            split[name] = (tokens[pos : pos + n], tokens[pos + n : pos + 2 * n])
            pos += 2 * n
        hyps_all = [h for name in names for h in split[name][0]]
        refs_all = [r for name in names for r in split[name][1]]

        # (task, group, global indices) of every non-empty group, in a fixed order
        jobs: list[tuple[str, str, list[int]]] = []
        offset = 0
        for name in names:
            for group, idx in tasks[name].groups.items():
                if idx:
                    jobs.append((name, group, [offset + i for i in idx]))
            offset += len(split[name][0])
        log.info("METEOR over %d captions, %d groups (one JVM, in the background)",
                 len(hyps_all), len(jobs))
        box: dict[str, object] = {}
        summed = [group == SUMMED_METEOR_GROUP for _, group, _ in jobs]
        worker = threading.Thread(target=_meteor_worker, args=(
            meteor, hyps_all, refs_all, [j[2] for j in jobs], summed, box))
        worker.start()

        cooked_h, cooked_r = ngram.precook(hyps_all), ngram.precook(refs_all)
        rouge_all = np.array([ngram.rouge_l(h, r) for h, r in zip(hyps_all, refs_all)])
        bleu_all = [ngram.bleu_stats(h, r) for h, r in zip(cooked_h, cooked_r)]
        bar = _progress(len(jobs), progress)
        for name, group, idx in jobs:
            scores: dict[str, float | None] = {m: None for m in CAPTION_METRICS}
            for k, v in enumerate(ngram.bleu([bleu_all[i] for i in idx]), start=1):
                scores[f"Bleu_{k}"] = v
            rouge_each = rouge_all[idx]
            scores["ROUGE_L"] = float(np.mean(rouge_each))
            cider_score, cider_each = ngram.cider([cooked_h[i] for i in idx], [cooked_r[i] for i in idx])
            scores["CIDEr"] = cider_score
            results[name].scores[group] = scores
            results[name].per_sample[group] = {"ROUGE_L": rouge_each, "CIDEr": cider_each}
            bar.update(1)
        bar.close()
        log.debug("captions: BLEU/ROUGE-L/CIDEr done after %.1f s", time.perf_counter() - t0)
        worker.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        for (name, group, _), (score, each) in zip(jobs, box["meteor"]):  # type: ignore[arg-type]
            results[name].scores[group]["METEOR"] = float(score)
            if each is not None:
                results[name].per_sample[group]["METEOR"] = np.asarray(each, dtype=float)
        log.debug("captions: METEOR joined after %.1f s", time.perf_counter() - t0)

    if spice_reason is None:
        try:
            spice_all = np.asarray(coco_java.spice_scores(hyps_all, [[r] for r in refs_all]))
            for name, group, idx in jobs:
                value = float(np.mean(spice_all[idx]))
                results[name].scores[group]["SPICE"] = value if np.isfinite(value) else None
                results[name].per_sample[group]["SPICE"] = spice_all[idx]
        except Exception as err:  # noqa: BLE001 - any failure means "unavailable", with why
            if spice is True:
                raise
            spice_reason = f"SPICE failed to run: {type(err).__name__}: {err}"
    for res in results.values():
        res.spice_reason = spice_reason
    return results


def _meteor_worker(meteor: coco_java.MeteorProcess, hyps: list[str], refs: list[str],
                   groups: list[list[int]], summed: list[bool], box: dict[str, object]) -> None:
    """METEOR thread: statistics of every caption, then each group's ``EVAL`` (per-caption and
    corpus scores), or for ``summed`` groups the corpus score from the summed statistics."""
    try:
        t0 = time.perf_counter()
        stats = meteor.stats(hyps, [[r] for r in refs])
        log.debug("METEOR statistics done in %.1f s", time.perf_counter() - t0)
        full = [g for g, s in zip(groups, summed) if not s]
        evals = iter(meteor.evaluate_many([[stats[i] for i in g] for g in full]))
        out: list[tuple[float, list[float] | None]] = []
        for g, s in zip(groups, summed):
            out.append((meteor.evaluate_summed([stats[i] for i in g]), None) if s else next(evals))
        box["meteor"] = out
        log.debug("METEOR EVALs done in %.1f s", time.perf_counter() - t0)
    except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
        box["error"] = err


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
