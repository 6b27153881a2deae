"""Pseudo-labels for distillation (method.md §2): the teacher answers, its confidence decides the order.

The teacher answers every question of the distillation subset greedily. Each pseudo-label's confidence
margin is the mean over its tokens of ``p_top1 - p_top2`` under the teacher. A pseudo-label is replaced
by the ground truth when its margin is below ``distill.margin_floor`` or when it contradicts the ground
truth (a reference box found with IoU < 0.5, or another object name). The curriculum
(:func:`clinkd.train.schedule.curriculum_order`) then admits samples from the most to the least
confident.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from clinkd.data.boxes import parse_boxes, parse_refs
from clinkd.data.images import load_image
from clinkd.infer.generate import generate_answers
from clinkd.infer.similarity import answer_text
from clinkd.train.config import DistillConfig
from clinkd.train.data import ConversationCollator, TrainItem
from clinkd.train.losses import confidence_margin, teacher_topk

log = logging.getLogger(__name__)


def turn_items(items: list[TrainItem], fraction: float, seed: int) -> list[TrainItem]:
    """One single-turn item per (record, turn), a seeded ``fraction`` of them, in their original order."""
    turns = [TrainItem(image=it.image, turns=[t], source=f"{it.source} turn {k}", meta=dict(it.meta))
             for it in items for k, t in enumerate(it.turns)]
    n = max(1, round(len(turns) * fraction))
    keep = np.sort(np.random.default_rng(seed).permutation(len(turns))[:n])
    return [turns[i] for i in keep]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def contradicts(pseudo: str, reference: str, iou_threshold: float = 0.5) -> bool:
    """Whether a pseudo-label disagrees with the ground truth on what can be checked.

    Boxes: a reference box that no pseudo box overlaps with IoU >= ``iou_threshold``. Names: a referred
    object of the reference (``<ref>``) absent from the pseudo-label, or, for a short answer (a name, as
    in RO), a reference word missing from it. Free text beyond that cannot contradict.
    """
    ref_boxes = parse_boxes(reference)
    if ref_boxes:
        got = parse_boxes(pseudo)
        if any(max((r.iou(g) for g in got), default=0.0) < iou_threshold for r in ref_boxes):
            return True
    pseudo_words = set(_words(answer_text(pseudo)))
    for name in parse_refs(reference):
        if not set(_words(name)) <= pseudo_words:
            return True
    ref_words = _words(answer_text(reference))
    if 0 < len(ref_words) <= 4 and not set(ref_words) <= pseudo_words:
        return True
    return False


@torch.no_grad()
def teacher_pass(
    teacher, collator: ConversationCollator, items: list[TrainItem], batch_size: int = 16, top_k: int | None = None
) -> tuple[list[float], list[tuple[torch.Tensor, torch.Tensor]] | None]:
    """One teacher forward over ``items``: each answer's confidence margin and, with ``top_k`` (0: the whole
    vocabulary; None: skip), the teacher's top-k logits on its answer tokens, for offline distillation."""
    device = next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    margins: list[float] = []
    cached: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        for start in range(0, len(items), batch_size):
            batch = collator(items[start : start + batch_size])
            labels = batch.pop("labels").to(device)
            batch.pop("item_kind", None)
            logits = teacher(**{k: v.to(device) for k, v in batch.items()}).logits
            margins += confidence_margin(logits, labels).tolist()
            if top_k is not None:
                cached += [(v.cpu(), i.cpu()) for v, i in teacher_topk(logits, labels, top_k)]
    finally:
        teacher.train(was_training)
    return margins, (cached if top_k is not None else None)


def pseudo_label(
    teacher, processor, items: list[TrainItem], cfg: DistillConfig, cache_dir: str | Path | None = None
) -> tuple[list[TrainItem], dict]:
    """Pseudo-label single-turn ``items`` with ``teacher``; returns the items to distil on and counts.

    With ``cache_dir``, the result is written to ``cache_dir/pseudo_labels.json`` and read back on a
    second call (a resumed run does not generate again).
    """
    cache = Path(cache_dir) / "pseudo_labels.json" if cache_dir else None
    top_k = cfg.top_k if cfg.teacher_logits == "cached" else None
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text(encoding="utf-8"))
        logits_file = cache.with_suffix(".teacher.pt")
        if len(data["items"]) == len(items) and (top_k is None or logits_file.is_file()):
            out = [TrainItem(**{**d, "image": Path(d["image"]), "turns": [tuple(t) for t in d["turns"]]}) for d in data["items"]]
            if top_k is not None:
                for it, t in zip(out, torch.load(logits_file)):
                    it.teacher_topk = t
            log.info("pseudo-labels read from %s", cache)
            return out, data["stats"]
    images = [load_image(it.image) for it in items]
    questions = [it.turns[0][0] for it in items]
    answers = [a[0] for a in generate_answers(
        teacher, processor, images, questions, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.generation_batch_size, progress="pseudo-labels")]
    labelled = [TrainItem(image=it.image, turns=[(q, a)], source=it.source, kind="pseudo", meta=dict(it.meta))
                for it, q, a in zip(items, questions, answers)]
    collator = ConversationCollator(processor)
    margins, topk = teacher_pass(teacher, collator, labelled, cfg.generation_batch_size, top_k)
    reasons: Counter[str] = Counter()
    out = []
    for it, pl, m in zip(items, labelled, margins):
        reference = it.turns[0][1]
        reason = None
        if m < cfg.margin_floor:
            reason = "low_margin"
        elif cfg.replace_contradicting and contradicts(pl.turns[0][1], reference):
            reason = "contradicts_ground_truth"
        if reason:
            reasons[reason] += 1
            out.append(TrainItem(image=it.image, turns=list(it.turns), source=it.source, kind="gt", margin=m,
                                 meta={**it.meta, "replaced": reason, "pseudo": pl.turns[0][1]}))
        else:
            out.append(TrainItem(image=it.image, turns=pl.turns, source=it.source, kind="pseudo", margin=m,
                                 meta=dict(it.meta)))
    if top_k is not None:
        # the teacher's logits on the answers actually trained on: its own pseudo-labels, or the ground
        # truth where that replaced them (a second pass over those only)
        for it, t in zip(out, topk):
            if it.kind == "pseudo":
                it.teacher_topk = t
        redo = [j for j, it in enumerate(out) if it.kind == "gt"]
        if redo:
            _, gt_topk = teacher_pass(teacher, collator, [out[j] for j in redo], cfg.generation_batch_size, top_k)
            for j, t in zip(redo, gt_topk):
                out[j].teacher_topk = t
    stats = {
        "pseudo_labels": len(items),
        "kept": len(items) - sum(reasons.values()),
        "replaced_low_margin": reasons["low_margin"],
        "replaced_contradicting": reasons["contradicts_ground_truth"],
        "mean_margin": float(np.mean(margins)) if margins else 0.0,
    }
    log.info("pseudo-labels: %(pseudo_labels)d generated, %(kept)d kept, %(replaced_low_margin)d replaced "
             "(low margin), %(replaced_contradicting)d replaced (contradict the ground truth)", stats)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"image": str(o.image), "turns": o.turns, "source": o.source, "kind": o.kind, "margin": o.margin,
                 "meta": o.meta} for o in out]
        if top_k is not None:
            torch.save([o.teacher_topk for o in out], cache.with_suffix(".teacher.pt"))
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stats": stats, "items": rows}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(cache)  # written last: its presence means the cache is complete
    return out, stats
