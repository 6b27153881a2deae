"""The standard reading: the Med-GRIT protocol exactly as the published scripts compute it.

Every score is per modality, then averaged with equal weight over the eight modalities
(protocol.md §3). What an absent modality does:

* VG, RO: it contributes 0 to the mean (protocol.md §3). For VG "absent" means no annotation box to
  score (the scripts divide 0 found by 0 boxes + 1e-8).
* GC, MII: the scripts divide the sum of per-modality scores by 8, always, so an absent modality
  contributes 0 there too (they would actually crash on it — every Med-GRIT test task has all
  eight). We use that rule and list the modality under ``absent_modalities``; the strict reading
  gives the mean over present modalities.

Two deliberate, documented deviations of at most 1e-6: the scripts divide by ``boxes + 1e-8`` (VG)
and ``samples + 1e-8`` (RO), and round per-modality caption scores to 6 decimals before averaging;
we report exact ratios and unrounded scores.

Modalities outside the eight (e.g. ``us_…`` or ``CT_…`` — the name is taken as is) are scored on their
own under ``other_modalities`` and left out of every mean (the scripts raise ``KeyError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clinkd.eval.captions import CAPTION_METRICS, CaptionResult, mbmr
from clinkd.eval.classification import ro_correct_standard
from clinkd.eval.cleaning import clean_response
from clinkd.eval.grounding import (
    find_tagged,
    iou_matrix,
    many_to_one_found,
    parse_box_standard,
    standard_box_strings,
)
from clinkd.eval.predictions import MODALITIES, Prediction

IOU_THRESHOLD = 0.5


def mean_over_eight(per_modality: Mapping[str, float | None]) -> float | None:
    """Equal-weight mean over the eight modalities, an absent one (``None``/missing) counting 0.

    >>> mean_over_eight({"ct": 1.0, "mr": 0.5})
    0.1875
    """
    return sum((per_modality.get(m) or 0.0) for m in MODALITIES) / len(MODALITIES)


def split_modalities(groups: Mapping[str, Sequence[int]]) -> tuple[list[str], list[str], list[str]]:
    """(present of the eight, absent of the eight, other modalities)."""
    present = [m for m in MODALITIES if groups.get(m)]
    absent = [m for m in MODALITIES if not groups.get(m)]
    other = sorted(m for m in groups if m not in MODALITIES)
    return present, absent, other


def vg_sample(pred: Prediction) -> dict[str, Any] | None:
    """Standard VG counts of one sample, or ``None`` when its annotation has no box (skipped).

    Returns ``{"n_boxes", "n_found", "best_iou": [...], "n_malformed_ann"}``; ``best_iou[i]`` is the
    highest IoU any predicted box reaches with annotation box ``i`` (for the histogram).
    """
    targets = standard_box_strings_annotation(pred.annotation)
    if not targets:
        return None
    gt = [parse_box_standard(b) for b in targets]
    pr = [parse_box_standard(b) for b in standard_box_strings(clean_response(pred.response))]
    ious = iou_matrix(gt, pr)  # (n_gt, n_pred)
    best = ious.max(axis=1) if ious.shape[1] else np.zeros(len(gt))
    return {
        "n_boxes": len(gt),
        "n_found": many_to_one_found(ious, IOU_THRESHOLD),
        "best_iou": best.tolist(),
        "n_malformed_ann": sum(b is None for b in gt),
    }


def standard_box_strings_annotation(annotation: str) -> list[str]:
    """Annotation boxes: only the ``<box>(.*?)</box>`` pattern (the fallback applies to responses)."""
    return find_tagged(annotation)


def vg_standard(preds: Sequence[Prediction], groups: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """recall@0.5 per modality (found / annotation boxes) and its mean over the eight."""
    samples = [vg_sample(p) for p in preds]
    _present, _absent, other = split_modalities(groups)
    per: dict[str, dict[str, Any]] = {}
    for m in [*MODALITIES, *other]:
        scored = [s for s in (samples[i] for i in groups.get(m, ())) if s is not None]
        boxes = sum(s["n_boxes"] for s in scored)
        found = sum(s["n_found"] for s in scored)
        per[m] = {
            "recall@0.5": found / boxes if boxes else None,
            "n_samples": len(groups.get(m, ())),
            "n_scored": len(scored),
            "n_boxes": boxes,
            "n_found": found,
        }
    out: dict[str, Any] = {
        "recall@0.5": mean_over_eight({m: per[m]["recall@0.5"] for m in MODALITIES}),
        "per_modality": {m: per[m] for m in MODALITIES},
        "n_samples": len(preds),
        "n_skipped_no_box": sum(s is None for s in samples),
        "n_malformed_annotation_boxes": sum(s["n_malformed_ann"] for s in samples if s),
        "absent_modalities": [m for m in MODALITIES if per[m]["recall@0.5"] is None],
    }
    if other:
        out["other_modalities"] = {m: per[m] for m in other}
    out["_best_iou"] = [v for s in samples if s for v in s["best_iou"]]  # plots only; not in JSON
    return out


def ro_standard(preds: Sequence[Prediction], groups: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """Substring-rule accuracy per modality and its mean over the eight."""
    correct = [ro_correct_standard(p.annotation, clean_response(p.response)) for p in preds]
    _, absent, other = split_modalities(groups)
    per: dict[str, dict[str, Any]] = {}
    for m in [*MODALITIES, *other]:
        idx = groups.get(m, ())
        n_ok = sum(correct[i] for i in idx)
        per[m] = {"accuracy": n_ok / len(idx) if idx else None, "n_samples": len(idx), "n_correct": n_ok}
    out: dict[str, Any] = {
        "accuracy": mean_over_eight({m: per[m]["accuracy"] for m in MODALITIES}),
        "per_modality": {m: per[m] for m in MODALITIES},
        "n_samples": len(preds),
        "absent_modalities": absent,
    }
    if other:
        out["other_modalities"] = {m: per[m] for m in other}
    return out


def captions_standard(
    task: str,
    result: CaptionResult,
    groups: Mapping[str, Sequence[int]],
) -> dict[str, Any]:
    """Caption metrics per modality, then the sum over the eight divided by 8.

    A metric that could not be computed is ``None`` and explained under ``unavailable``. For MII,
    ``mBMR`` is added (mean of BLEU-1..4, METEOR, ROUGE-L of the eight-modality means).
    """
    _, absent, other = split_modalities(groups)
    per: dict[str, dict[str, Any]] = {}
    for m in [*MODALITIES, *other]:
        scores = dict(result.scores.get(m) or dict.fromkeys(CAPTION_METRICS))
        if task == "MII":
            scores["mBMR"] = mbmr(scores)
        scores["n_samples"] = len(groups.get(m, ()))
        per[m] = scores
    out: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for metric in CAPTION_METRICS:
        if metric == "SPICE" and result.spice_reason:
            out[metric] = None
            unavailable[metric] = result.spice_reason
            continue
        vals = [per[m][metric] for m in MODALITIES if per[m]["n_samples"]]
        if any(v is None for v in vals):
            out[metric] = None
            unavailable[metric] = "not computable on some modality (e.g. NaN per-sample scores)"
            continue
        out[metric] = mean_over_eight({m: per[m][metric] for m in MODALITIES})
    if task == "MII":
        out["mBMR"] = mbmr(out)
    out["per_modality"] = {m: per[m] for m in MODALITIES}
    out["n_samples"] = sum(len(v) for v in groups.values())
    out["absent_modalities"] = absent
    if unavailable:
        out["unavailable"] = unavailable
    if other:
        out["other_modalities"] = {m: per[m] for m in other}
    return out
