"""The strict reading: what a careful user also wants (protocol.md, last section).

Beside, never instead of, the standard reading:

* VG: boxes from ``<box>``, ``<|box_start|>…<|box_end|>`` or ``<box_start>…<box_end>`` (fallback
  pattern as in the standard reading), parsed leniently (spaces, decimals); **one-to-one** matching
  (:func:`~clinkd.eval.grounding.one_to_one_match`: the most pairs with IoU **>= 0.5**, then the
  largest total IoU), a pair counting when IoU >= 0.5. Per modality: precision = matched / predicted
  boxes, recall = matched / annotation boxes, F1, and mean IoU = mean over annotation boxes of the IoU of the assigned
  prediction (0 when none). A ratio with a zero denominator is 0. Samples without annotation box are
  skipped, as in the standard reading.
* RO: exact match after :func:`clinkd.eval.cleaning.normalize_name`.
* GC, MII: the same pycocoevalcap numbers per modality.
* Means over the *present* modalities only (of the eight), with sample counts, plus a pooled figure
  (all samples of the eight modalities as one group; for captions one pycocoevalcap run, so pooled
  CIDEr uses the IDF of all references).
* 95% bootstrap intervals (percentile, resampling samples within each modality, seeded) for the
  headline means. For captions only ROUGE-L, CIDEr and SPICE get one: their group score *is* the mean
  of per-sample scores (CIDEr with the group's IDF held fixed). BLEU is a corpus statistic and METEOR's
  group score aggregates statistics (it is not the mean of its per-caption scores), so resampling
  per-caption scores would give the interval of a different number: none is reported for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from clinkd.eval.captions import CAPTION_METRICS, POOLED, CaptionResult, mbmr
from clinkd.eval.classification import ro_correct_strict
from clinkd.eval.cleaning import clean_response
from clinkd.eval.grounding import (
    iou_matrix,
    one_to_one_match,
    parse_box_lenient,
    strict_box_strings,
)
from clinkd.eval.predictions import MODALITIES, TASKS, Prediction
from clinkd.eval.standard import split_modalities

IOU_THRESHOLD = 0.5
CI_CAPTION_METRICS = ("ROUGE_L", "CIDEr", "SPICE")


def task_rng(seed: int, task: str) -> np.random.Generator:
    """The bootstrap generator of one task: seeded by ``(seed, task)``, so each task's draws are the
    same whatever other tasks are scored (the strict reading and :mod:`clinkd.eval.paired` share it)."""
    return np.random.default_rng([seed, TASKS.index(task) if task in TASKS else 99])


def resample_counts(sizes: Sequence[int], n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Stratified bootstrap draws: per group of ``n_g`` samples, ``(B, n_g)`` counts of how often each
    sample is drawn when ``n_g`` are drawn with replacement (multinomial counts, so a resample's sum of a
    per-sample quantity is ``counts @ x``). Groups are drawn in order from ``rng``."""
    return [rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) for n in sizes]


def percentile_ci(values: np.ndarray) -> np.ndarray:
    """95% percentile interval of bootstrap replicates: ``(B, m) -> (m, 2)`` (2.5% and 97.5%)."""
    return np.percentile(values, [2.5, 97.5], axis=0).T


def bootstrap_ci(
    per_group: Sequence[np.ndarray],
    statistic: Callable[[list[np.ndarray], list[int]], np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Stratified percentile bootstrap.

    Args:
        per_group: per group, a per-sample matrix ``(n_g, k)`` of additive quantities.
        statistic: maps the per-group column sums ``[(B, k)]`` and sizes ``[n_g]`` to ``(B, m)``
            headline values.
        n_boot: resamples ``B``; ``0`` disables (returns ``None``).
        rng: the seeded generator.

    Returns ``(m, 2)`` lower/upper 2.5%/97.5% percentiles. Each resample draws ``n_g`` samples with
    replacement within each group (:func:`resample_counts`, so the cost is ``B × n_g`` per group).
    """
    if n_boot <= 0 or not per_group:
        return None
    sizes = [x.shape[0] for x in per_group]
    counts = resample_counts(sizes, n_boot, rng)  # [(B, n_g)]
    sums = [c @ x for c, x in zip(counts, per_group)]  # [(B, k)]
    return percentile_ci(statistic(sums, sizes))  # statistic: (B, m)


def _ci_dict(names: Sequence[str], ci: np.ndarray | None) -> dict[str, list[float]]:
    if ci is None:
        return {}
    return {n: [float(lo), float(hi)] for n, (lo, hi) in zip(names, ci)}


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def vg_sample_strict(pred: Prediction) -> np.ndarray | None:
    """``[matched, n_pred, n_gt, sum_assigned_iou]`` of one sample, ``None`` without annotation box."""
    targets = strict_box_strings(pred.annotation)
    if not targets:
        return None
    gt = [parse_box_lenient(b) for b in targets]
    pr = [parse_box_lenient(b) for b in strict_box_strings(clean_response(pred.response))]
    tp, assigned = one_to_one_match(iou_matrix(gt, pr), IOU_THRESHOLD)
    return np.array([tp, len(pr), len(gt), assigned.sum()], dtype=np.float64)


def _vg_metrics(s: np.ndarray) -> dict[str, float]:
    tp, n_pred, n_gt, iou_sum = s
    p, r = _ratio(tp, n_pred), _ratio(tp, n_gt)
    return {"precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r), "mean_iou": _ratio(iou_sum, n_gt)}


VG_HEADLINE = ("precision", "recall", "f1", "mean_iou")


def _vg_stat(sums: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    per = []
    for s in sums:  # (B, 4): tp, n_pred, n_gt, iou_sum
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(s[:, 1] > 0, s[:, 0] / np.maximum(s[:, 1], 1e-300), 0.0)
            r = np.where(s[:, 2] > 0, s[:, 0] / np.maximum(s[:, 2], 1e-300), 0.0)
            f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)
            miou = np.where(s[:, 2] > 0, s[:, 3] / np.maximum(s[:, 2], 1e-300), 0.0)
        per.append(np.stack([p, r, f, miou], axis=1))
    return np.mean(per, axis=0)


def vg_strict(
    preds: Sequence[Prediction], groups: Mapping[str, Sequence[int]], *, bootstrap: int, seed: int
) -> dict[str, Any]:
    rows = [vg_sample_strict(p) for p in preds]
    present, _, other = split_modalities(groups)
    per: dict[str, dict[str, Any]] = {}
    mats: dict[str, np.ndarray] = {}
    for m in [*MODALITIES, *other]:
        scored = [rows[i] for i in groups.get(m, ()) if rows[i] is not None]
        mats[m] = np.array(scored).reshape(-1, 4)
        s = mats[m].sum(axis=0)
        entry: dict[str, Any] = _vg_metrics(s) if scored else dict.fromkeys(VG_HEADLINE)
        entry.update(
            n_samples=len(groups.get(m, ())),
            n_scored=len(scored),
            n_gt_boxes=int(s[2]),
            n_pred_boxes=int(s[1]),
            n_matched=int(s[0]),
        )
        per[m] = entry
    in_mean = [m for m in present if per[m]["n_scored"]]
    out: dict[str, Any] = {
        k: (float(np.mean([per[m][k] for m in in_mean])) if in_mean else None) for k in VG_HEADLINE
    }
    ci = bootstrap_ci([mats[m] for m in in_mean], _vg_stat, bootstrap, task_rng(seed, "VG"))
    pooled = np.concatenate([mats[m] for m in MODALITIES]).sum(axis=0)
    out.update(
        ci95=_ci_dict(VG_HEADLINE, ci),
        per_modality={m: per[m] for m in MODALITIES},
        pooled={**_vg_metrics(pooled), "n_scored": int(sum(per[m]["n_scored"] for m in MODALITIES))},
        modalities_in_mean=in_mean,
        n_samples=len(preds),
        n_skipped_no_box=sum(r is None for r in rows),
        iou_threshold=IOU_THRESHOLD,
        matching="one-to-one (most pairs with IoU >= 0.5, then largest total IoU), match when IoU >= 0.5",
    )
    if other:
        out["other_modalities"] = {m: per[m] for m in other}
    return out


def ro_strict(
    preds: Sequence[Prediction], groups: Mapping[str, Sequence[int]], *, bootstrap: int, seed: int
) -> dict[str, Any]:
    correct = np.array(
        [ro_correct_strict(p.annotation, clean_response(p.response)) for p in preds], dtype=np.float64
    )
    present, _, other = split_modalities(groups)
    per: dict[str, dict[str, Any]] = {}
    for m in [*MODALITIES, *other]:
        idx = list(groups.get(m, ()))
        n_ok = int(correct[idx].sum()) if idx else 0
        per[m] = {"accuracy": n_ok / len(idx) if idx else None, "n_samples": len(idx), "n_correct": n_ok}
    acc = float(np.mean([per[m]["accuracy"] for m in present])) if present else None
    ci = bootstrap_ci(
        [correct[list(groups[m])][:, None] for m in present],
        lambda s, n: np.mean([x / k for x, k in zip(s, n)], axis=0),
        bootstrap,
        task_rng(seed, "RO"),
    )
    known = [i for m in MODALITIES for i in groups.get(m, ())]
    out: dict[str, Any] = {
        "accuracy": acc,
        "ci95": _ci_dict(["accuracy"], ci),
        "per_modality": {m: per[m] for m in MODALITIES},
        "pooled": {"accuracy": float(correct[known].mean()) if known else None, "n_samples": len(known)},
        "modalities_in_mean": present,
        "n_samples": len(preds),
        "match": "exact after normalisation (case, punctuation, articles, spacing)",
    }
    if other:
        out["other_modalities"] = {m: per[m] for m in other}
    return out


def captions_strict(
    task: str, result: CaptionResult, groups: Mapping[str, Sequence[int]], *, bootstrap: int, seed: int
) -> dict[str, Any]:
    """Mean over present modalities of the per-modality pycocoevalcap scores, pooled scores, CIs."""
    present, _, other = split_modalities(groups)

    def entry(group: str) -> dict[str, Any]:
        scores: dict[str, Any] = dict(result.scores.get(group) or dict.fromkeys(CAPTION_METRICS))
        if task == "MII":
            scores["mBMR"] = mbmr(scores)
        return scores

    per = {m: {**entry(m), "n_samples": len(groups.get(m, ()))} for m in [*MODALITIES, *other]}
    names = [*CAPTION_METRICS, *(["mBMR"] if task == "MII" else [])]
    out: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for metric in names:
        vals = [per[m][metric] for m in present]
        if not present or any(v is None for v in vals):
            out[metric] = None
            if metric == "SPICE" and result.spice_reason:
                unavailable[metric] = result.spice_reason
            elif present:
                unavailable[metric] = "not computable on some modality"
            continue
        out[metric] = float(np.mean(vals))
    ci_metrics = [k for k in CI_CAPTION_METRICS if out.get(k) is not None]
    mats = [np.stack([result.per_sample[m][k] for k in ci_metrics], axis=1) for m in present]
    ci = (
        bootstrap_ci(
            mats, lambda s, n: np.mean([x / k for x, k in zip(s, n)], axis=0), bootstrap, task_rng(seed, task)
        )
        if ci_metrics
        else None
    )
    out.update(
        ci95=_ci_dict(ci_metrics, ci),
        ci_note="CIs only for metrics whose score is a mean of per-sample scores (ROUGE_L, CIDEr "
        "with IDF fixed, SPICE); none for corpus-level BLEU or aggregate METEOR",
        per_modality={m: per[m] for m in MODALITIES},
        pooled={**entry(POOLED), "n_samples": sum(len(groups.get(m, ())) for m in MODALITIES)},
        modalities_in_mean=present,
        n_samples=sum(len(v) for k, v in groups.items() if k != POOLED),
    )
    if unavailable:
        out["unavailable"] = unavailable
    if other:
        out["other_modalities"] = {m: per[m] for m in other}
    return out
