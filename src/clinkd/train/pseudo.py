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
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from clinkd.data.boxes import parse_boxes, parse_refs
from clinkd.data.conventions import BoxCodec
from clinkd.infer.generate import generate_answers
from clinkd.infer.similarity import answer_text
from clinkd.model.modeling import get_box_convention
from clinkd.train.config import DistillConfig
from clinkd.train.dataset import ConversationCollator, TrainItem, load_item_images
from clinkd.train.keys import describe_change, digest, weights_digest
from clinkd.train.losses import confidence_margin, teacher_topk

log = logging.getLogger(__name__)


def turn_items(items: list[TrainItem], fraction: float, seed: int) -> list[TrainItem]:
    """One single-turn item per (record, turn), a seeded ``fraction`` of them, in their original order."""
    turns = [
        it.derive(turns=[t], source=f"{it.source} turn {k}") for it in items for k, t in enumerate(it.turns)
    ]
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
    return bool(0 < len(ref_words) <= 4 and not set(ref_words) <= pseudo_words)


@torch.no_grad()
def teacher_pass(
    teacher,
    collator: ConversationCollator,
    items: list[TrainItem],
    batch_size: int = 16,
    top_k: int | None = None,
    vocab_size: int | None = None,
) -> tuple[list[float], list[tuple[torch.Tensor, torch.Tensor]] | None]:
    """One teacher forward over ``items``: each answer's confidence margin and, with ``top_k`` (0: the whole
    vocabulary; None: skip), the teacher's top-k logits on its answer tokens, for offline distillation.

    ``vocab_size`` cuts the teacher's logits to the vocabulary it shares with the student first: a 7B
    teacher has 152,064 embedding rows, a 2B student 151,936, and a top-k index past the student's rows
    would crash the loss."""
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
            if vocab_size is not None:
                logits = logits[..., :vocab_size]  # (B, L, V_shared)
            margins += confidence_margin(logits, labels).tolist()
            if top_k is not None:
                cached += [(v.cpu(), i.cpu()) for v, i in teacher_topk(logits, labels, top_k)]
    finally:
        teacher.train(was_training)
    return margins, (cached if top_k is not None else None)


def _label_chunk(
    teacher,
    processor,
    collator,
    chunk: list[TrainItem],
    cfg: DistillConfig,
    top_k: int | None,
    vocab_size: int | None,
) -> tuple[list[TrainItem], list[float]]:
    """Pseudo-label one generation batch: answers, margins, replacement by the ground truth, cached logits.

    Everything is computed batch by batch within the chunk, so a chunk gives the same result whichever
    process labels it (the batches, hence the padding and the arithmetic, do not depend on the rank).
    """
    images = [load_item_images(it) for it in chunk]  # a list for a multi-image item
    questions = [it.turns[0][0] for it in chunk]
    answers = [
        str(a[0])
        for a in generate_answers(
            teacher,
            processor,
            images,
            questions,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.generation_batch_size,
        )
    ]
    labelled = [it.derive(turns=[(q, a)], kind="pseudo") for it, q, a in zip(chunk, questions, answers)]
    margins, topk = teacher_pass(teacher, collator, labelled, cfg.generation_batch_size, top_k, vocab_size)
    out = []
    for it, pl, m in zip(chunk, labelled, margins):
        reference = it.turns[0][1]
        reason = None
        if m < cfg.margin_floor:
            reason = "low_margin"
        elif cfg.replace_contradicting and contradicts(pl.turns[0][1], reference):
            reason = "contradicts_ground_truth"
        if reason:
            out.append(
                it.derive(kind="gt", margin=m, meta={**it.meta, "replaced": reason, "pseudo": pl.turns[0][1]})
            )
        else:
            out.append(it.derive(turns=pl.turns, kind="pseudo", margin=m))
    if topk is not None:  # top_k was given
        # the teacher's logits on the answers actually trained on: its own pseudo-labels, or the ground
        # truth where that replaced them (a second pass over those only)
        for it, t in zip(out, topk):
            if it.kind == "pseudo":
                it.teacher_topk = t
        redo = [j for j, it in enumerate(out) if it.kind == "gt"]
        if redo:
            _, gt_topk = teacher_pass(
                teacher, collator, [out[j] for j in redo], cfg.generation_batch_size, top_k, vocab_size
            )
            assert gt_topk is not None  # top_k is set
            for j, t in zip(redo, gt_topk):
                out[j].teacher_topk = t
    return out, margins


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _main_process_value(fn):
    """``fn()`` computed on the main process and shared with the others (one read of a teacher's weights,
    not one per process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return fn()
    box = [fn() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _item_key(it: TrainItem) -> list:
    """What a cache depends on of one item (single-image keys as before multi-image items existed)."""
    key = [str(it.image), [list(t) for t in it.turns], it.source]
    return key + [[str(p) for p in it.images]] if len(it.images) > 1 else key


def cache_key(
    teacher, items: list[TrainItem], cfg: DistillConfig, vocab_size: int | None, seed: int | None
) -> dict:
    """Everything a pseudo-label cache depends on: the teacher (folder and weights digest), the items
    (the subset, hence the seed that drew it), top-k, margin floor, replacement rule and generation
    settings. A cache is reused only when its stored key equals this one."""
    folder = getattr(teacher, "name_or_path", None) or ""
    return {
        "teacher": str(Path(folder).resolve()) if folder else None,
        "teacher_weights": _main_process_value(
            lambda: weights_digest(folder) if folder and Path(folder).is_dir() else None
        ),
        "items": digest([_item_key(it) for it in items]),
        "seed": seed,
        "teacher_logits": cfg.teacher_logits,
        "top_k": cfg.top_k if cfg.teacher_logits == "cached" else None,
        "vocab_size": vocab_size,
        "margin_floor": cfg.margin_floor,
        "replace_contradicting": cfg.replace_contradicting,
        "generation": {
            "decoding": "greedy",
            "max_new_tokens": cfg.max_new_tokens,
            "batch_size": cfg.generation_batch_size,
        },
    }


def _read_cache(cache: Path, key: dict, top_k: int | None, say_why: bool = False):
    """The cached result when ``cache`` holds one made with ``key``; None otherwise (with a log line saying
    why when ``say_why``)."""
    if not cache.is_file():
        return None
    data = json.loads(cache.read_text(encoding="utf-8"))
    logits_file = cache.with_suffix(".teacher.pt")
    if data.get("key") != key:
        if say_why:
            log.info(
                "pseudo-label cache %s not reused: %s; labelling again",
                cache,
                describe_change(data.get("key"), key),
            )
        return None
    if top_k is not None and not logits_file.is_file():
        if say_why:
            log.info(
                "pseudo-label cache %s not reused: its teacher logits %s are missing; labelling again",
                cache,
                logits_file,
            )
        return None
    out = [TrainItem.from_row(d) for d in data["items"]]
    if top_k is not None:
        for it, t in zip(out, torch.load(logits_file, weights_only=True)):
            it.teacher_topk = tuple(t)
    return out, data["stats"]


def pseudo_label(
    teacher,
    processor,
    items: list[TrainItem],
    cfg: DistillConfig,
    cache_dir: str | Path | None = None,
    *,
    vocab_size: int | None = None,
    seed: int | None = None,
    boxes: BoxCodec | None = None,
) -> tuple[list[TrainItem], dict]:
    """Pseudo-label single-turn ``items`` with ``teacher``; returns the items to distil on and counts.

    Under ``torch.distributed`` (torchrun, accelerate) the work is shared: the items are cut into
    generation batches and process ``r`` of ``W`` labels batches ``r, r + W, ...`` with its own copy of the
    teacher; the main process gathers the shards (through ``cache_dir``) into one cache that every process
    then reads. The result equals a one-process run's, batch for batch. ``vocab_size``: the vocabulary
    teacher and student share (cached top-k logits are taken within it).

    With ``cache_dir``, the result is written to ``cache_dir/pseudo_labels.json`` (and the cached teacher
    logits to ``pseudo_labels.teacher.pt``) and read back on a later call made with the same
    :func:`cache_key` (a resumed run does not generate again); a cache made otherwise is recomputed, with a
    line saying what changed. ``seed`` (the one that drew the subset) is part of the key.

    Boxes: the teacher is asked and answers in its own box convention (``generate_answers`` converts at
    its boundary); pseudo-labels are kept in Med-GRIT form like the ground truth, and ``boxes`` (the
    student's codec) writes them in the student's convention for the teacher pass, as training will.
    """
    rank, world = _rank_world()
    cache = Path(cache_dir) / "pseudo_labels.json" if cache_dir else None
    if cache is None and world > 1:
        raise ValueError("pseudo_label under several processes needs a cache_dir to gather the shards in")
    top_k = cfg.top_k if cfg.teacher_logits == "cached" else None
    key = cache_key(teacher, items, cfg, vocab_size, seed)
    key["boxes"] = {
        "teacher": get_box_convention(teacher.config).key,
        "student": boxes.describe() if boxes is not None else None,
    }
    if cache is not None:
        found = _read_cache(cache, key, top_k, say_why=rank == 0)
        if found is not None:
            log.info("pseudo-labels read from %s", cache)
            return found
    bs = cfg.generation_batch_size
    chunks = [items[i : i + bs] for i in range(0, len(items), bs)]
    mine = list(range(rank, len(chunks), world))
    collator = ConversationCollator(processor, boxes=boxes)
    done: dict[int, tuple[list[TrainItem], list[float]]] = {}
    from tqdm.auto import tqdm

    for c in tqdm(mine, desc="pseudo-labels", unit="batch", disable=rank != 0, leave=False):
        done[c] = _label_chunk(teacher, processor, collator, chunks[c], cfg, top_k, vocab_size)
    log.info(
        "pseudo-labels: process %d of %d labelled %d of %d items",
        rank,
        world,
        sum(len(chunks[c]) for c in mine),
        len(items),
    )
    per_rank = [sum(len(chunks[c]) for c in range(r, len(chunks), world)) for r in range(world)]
    if world > 1:
        assert cache is not None  # several processes without a cache_dir were refused above
        done = _gather_shards(done, cache.parent / "pseudo_shards", rank, world)  # cache.parent: cache_dir
        if rank != 0:  # the main process writes the merged cache; read it back when it is there
            _barrier()
            found = _read_cache(cache, key, top_k)
            if found is None:
                raise RuntimeError(f"the main process did not write the pseudo-label cache {cache}")
            return found
    out = [it for c in range(len(chunks)) for it in done[c][0]]
    margins = [m for c in range(len(chunks)) for m in done[c][1]]
    reasons = Counter(it.meta.get("replaced") for it in out if it.kind == "gt")
    stats = {
        "pseudo_labels": len(items),
        "kept": len(items) - sum(reasons.values()),
        "replaced_low_margin": reasons["low_margin"],
        "replaced_contradicting": reasons["contradicts_ground_truth"],
        "mean_margin": float(np.mean(margins)) if margins else 0.0,
        "labelled_per_process": per_rank,
    }
    log.info(
        "pseudo-labels: %(pseudo_labels)d generated, %(kept)d kept, %(replaced_low_margin)d replaced "
        "(low margin), %(replaced_contradicting)d replaced (contradict the ground truth)",
        stats,
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        if top_k is not None:
            torch.save([o.teacher_topk for o in out], cache.with_suffix(".teacher.pt"))
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"key": key, "stats": stats, "items": [o.to_row() for o in out]}, ensure_ascii=False),
            encoding="utf-8",
        )
        tmp.replace(cache)  # written last: its presence means the cache is complete
    if world > 1:
        _barrier()  # the others wait for the merged cache
    return out, stats


def _gather_shards(done: dict, shard_dir: Path, rank: int, world: int) -> dict:
    """Write this process's labelled chunks to ``shard_dir``; on the main process, read every shard back.

    Shards are plain tensors, strings and numbers (``torch.load(weights_only=True)``), and removed once
    merged. Returns all chunks on the main process, this process's own elsewhere.
    """
    shard_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        c: {
            "rows": [o.to_row() for o in out],
            "margins": margins,
            "topk": [list(o.teacher_topk) if o.teacher_topk is not None else None for o in out],
        }
        for c, (out, margins) in done.items()
    }
    mine = shard_dir / f"rank{rank}.pt"
    torch.save(payload, mine.with_suffix(".tmp"))
    mine.with_suffix(".tmp").replace(mine)
    _barrier()  # every shard is on disk
    if rank != 0:
        return done
    merged: dict = {}
    for r in range(world):
        for c, p in torch.load(shard_dir / f"rank{r}.pt", weights_only=True).items():
            out = [TrainItem.from_row(d) for d in p["rows"]]
            for it, t in zip(out, p["topk"]):
                it.teacher_topk = tuple(t) if t is not None else None
            merged[int(c)] = (out, p["margins"])
    shutil.rmtree(shard_dir, ignore_errors=True)
    return merged
