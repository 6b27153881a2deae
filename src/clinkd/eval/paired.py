"""Intervals and paired differences for the standard reading's numbers (an ablation table's rows).

Rows (models) that answer the *same* test questions are compared question by question: one stratified
bootstrap draws question indices within each modality, and every row is scored on the *same* draws, so
a difference row − reference is read from its own replicates (a paired bootstrap) — far tighter than two
independent intervals, because the questions' difficulty cancels out.

>>> out = headline_intervals(preds, reference="baseline")          # doctest: +SKIP
>>> out["rows"]["ClinKD"]["VG"]["recall@0.5"]                        # doctest: +SKIP
{'value': 0.41, 'ci95': [0.35, 0.47], 'se': 0.031}
>>> out["differences"]["ClinKD"]["VG"]["recall@0.5"]                 # doctest: +SKIP
{'difference': 0.06, 'ci95': [0.02, 0.1], 'se': 0.02, 'half_width': 0.04, 'beyond_noise': True}

What a replicate is, metric by metric (each one the standard reading's own aggregation, applied to a
resample's per-question quantities, so the point value is recovered at the full set):

* VG recall@0.5: per modality found / annotation boxes from the per-question counts (0 when a resample
  holds no box, as an absent modality counts), then the mean over the eight. Exact.
* RO accuracy: per modality the mean of per-question correctness, mean over the eight. Exact.
* BLEU-1..4: pycocoevalcap's corpus BLEU is a function of n-gram counts and lengths *summed* over the
  captions, so a resample's BLEU is recomputed from the resampled sums. Exact.
* METEOR: pycocoevalcap's METEOR is METEOR 1.5's corpus score (``EVAL``), which also *sums* per-caption
  statistics and scores the sum (:func:`clinkd.eval.coco_java.additive_stats`); a resample's METEOR is
  the same formula (:func:`clinkd.eval.coco_java.meteor_from_stats`, meteor-1.5.jar's
  ``computeMetrics``) on the resampled sum — no JVM per resample. Exact (equal to the JVM's number to
  ~1e-16, checked by the tests).
* ROUGE-L: the corpus score is the mean of per-caption scores. Exact.
* CIDEr: pycocoevalcap's corpus CIDEr-D is the mean of per-caption scores given the document
  frequencies (DF) of the group's references (:func:`clinkd.eval.ngram.cider`). The DF of each
  modality's *full* test set are held fixed and per-caption scores averaged — the usual way to bootstrap
  CIDEr; a pycocoevalcap run on a resample would recount DF over duplicated references and give another
  number. Listed under ``"conditional"`` in the result.
* mBMR: the mean of the six (BLEU-1..4, METEOR, ROUGE-L) eight-modality means. Exact given them.

Tokens are those of the full set for every resample too (the PTB tokenizer is run once; it can look
across line ends, see :func:`clinkd.eval.coco_java.ptb_tokenize_docs`). SPICE is left out (it needs
CoreNLP jars that cannot be fetched offline). Intervals are 95% percentile intervals, ``se`` the
bootstrap standard deviation; each task's draws come from :func:`clinkd.eval.strict.task_rng` (seed,
task), the strict reading's generator.

Cost: the caption metrics of every row are scored in one caption run (one tokenizer JVM, one METEOR JVM:
about what one ``evaluate`` call costs, ~10 s); the bootstrap itself is array arithmetic, ~0.15 s for
6 rows × 4 tasks × 150 questions × 1000 resamples on 2 cores (~1.5 s for 10,000).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clinkd.errors import ClinkdError, DataError
from clinkd.eval import coco_java, ngram
from clinkd.eval import standard as std
from clinkd.eval.captions import CaptionResult, CaptionScorer, CaptionTask
from clinkd.eval.classification import ro_correct_standard
from clinkd.eval.cleaning import clean_response
from clinkd.eval.evaluator import HEADLINE, MAX_BOOTSTRAP, check_settings
from clinkd.eval.predictions import MODALITIES, TASKS, Prediction, as_prediction, group_by_modality
from clinkd.eval.strict import percentile_ci, resample_counts, task_rng

DEFAULT_RESAMPLES = 1000
"""Enough for stable 95% percentile bounds; the bootstrap is cheap next to the caption scoring."""

CAPTION_COLUMNS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
METRICS: dict[str, tuple[str, ...]] = {
    "VG": ("recall@0.5",),
    "RO": ("accuracy",),
    "GC": CAPTION_COLUMNS,
    "MII": (*CAPTION_COLUMNS, "mBMR"),
}
"""Metrics given an interval, per task (the headline ones are :data:`clinkd.eval.evaluator.HEADLINE`)."""

# per-question columns of a caption task: BLEU statistics, METEOR statistics, ROUGE-L, CIDEr
_BLEU = slice(0, 10)
_METEOR = slice(10, 10 + coco_java.STATS_WIDTH)
_ROUGE, _CIDER = 10 + coco_java.STATS_WIDTH, 11 + coco_java.STATS_WIDTH
_CAPTION_WIDTH = 12 + coco_java.STATS_WIDTH


def headline_intervals(
    preds_by_row: Mapping[str, Mapping[str, Sequence[Prediction | Mapping[str, Any]]]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, Any]:
    """Standard-reading values with 95% intervals per row, and paired differences to ``reference``.

    Args:
        preds_by_row: ``{row: {task: [record, ...]}}``, each task's records as :func:`clinkd.eval.evaluate`
            takes them (dicts of a ``pred_<task>.jsonl`` or :class:`Prediction`). Every row must hold the
            same tasks and, per task, the same question ids, each once, with the same image and annotation.
        resamples: bootstrap resamples ``B`` (2 to 100,000).
        seed: bootstrap seed; the same seed gives the same numbers.
        reference: a row to compare every other row with (e.g. the baseline); ``None``: no differences.

    Returns a JSON-ready dict:

    * ``rows[row][task][metric]``: ``{"value", "ci95": [lo, hi], "se"}``; ``value`` is
      ``evaluate(row's records, strict=False, spice=False).standard[task][metric]``, bit for bit (``None``,
      with no interval, where the standard reading has none);
    * ``differences[row][task][metric]`` (rows other than ``reference``): ``{"difference", "ci95", "se",
      "half_width", "beyond_noise"}`` — ``beyond_noise`` when the paired interval excludes 0,
      ``half_width`` half its length;
    * ``resolution[task][metric]``: ``{"min_half_width", "max_half_width"}`` over the compared rows — a
      difference below about the half-width of its paired interval is not resolvable with these questions;
    * ``standard[row][task]``: the row's full standard-reading block, as ``evaluate`` gives it;
    * ``metrics`` (per task, in order), ``headline`` (per task), ``n_questions``, ``settings``, ``exact``,
      ``conditional`` and ``approximate`` (what each interval is, see the module docstring).

    Raises:
        ClinkdError: no rows, an unknown ``reference``, bad ``resamples``/``seed``, rows that do not hold
            the same tasks or question ids (naming the row and task), an id twice in a row's task.
        DataError: a malformed record (naming row, task and record).
        RuntimeError: Java missing or failing while captions must be scored (as ``evaluate``).
    """
    if not preds_by_row:
        raise ClinkdError("headline_intervals needs at least one row of predictions")
    if reference is not None and reference not in preds_by_row:
        raise ClinkdError(
            f"reference row {reference!r} is not among the rows ({', '.join(map(repr, preds_by_row))})"
        )
    check_settings(seed=seed)
    if (
        not isinstance(resamples, numbers.Integral)
        or isinstance(resamples, bool)
        or not 2 <= resamples <= MAX_BOOTSTRAP
    ):
        raise ClinkdError(f"resamples must be a whole number from 2 to {MAX_BOOTSTRAP}, got {resamples!r}")

    rows = {row: _records(row, tasks) for row, tasks in preds_by_row.items()}
    anchor = reference if reference is not None else next(iter(rows))
    tasks = [t for t in TASKS if t in rows[anchor]]
    for row in rows:
        for t in rows[row]:
            if t not in rows[anchor]:
                raise ClinkdError(
                    f"row {row!r} holds task {t} but row {anchor!r} does not; every row must answer "
                    "the same tasks"
                )
    order = {
        row: {t: _align(row, t, rows[row].get(t), rows[anchor][t], anchor) for t in tasks} for row in rows
    }

    standard, per_question = _score(rows, tasks)
    values: dict[str, dict[str, np.ndarray]] = {row: {} for row in rows}  # row → task → (B, n_metrics)
    n_questions: dict[str, Any] = {}
    for t in tasks:
        groups = group_by_modality(rows[anchor][t])  # positions in the anchor's (canonical) order
        present = [m for m in MODALITIES if groups.get(m)]
        counts = resample_counts([len(groups[m]) for m in present], resamples, task_rng(seed, t))
        for row in rows:
            x = per_question[row][t][order[row][t]]  # (n, k), in the anchor's order
            values[row][t] = _replicates(t, x, [groups[m] for m in present], counts, resamples)
        n_questions[t] = {
            "total": len(rows[anchor][t]),
            "per_modality": {m: len(groups.get(m, ())) for m in MODALITIES},
        }

    out: dict[str, Any] = {
        "settings": {
            "resamples": resamples,
            "seed": seed,
            "reference": reference,
            "level": 0.95,
            "interval": "percentile, stratified bootstrap of questions within each modality, the same "
            "draws for every row (paired)",
        },
        "metrics": {t: list(METRICS[t]) for t in tasks},
        "headline": {t: HEADLINE["standard"][t] for t in tasks},
        "n_questions": n_questions,
        "rows": {
            row: {t: _intervals(standard[row][t], METRICS[t], values[row][t]) for t in tasks} for row in rows
        },
        "exact": [
            "recall@0.5",
            "accuracy",
            "Bleu_1",
            "Bleu_2",
            "Bleu_3",
            "Bleu_4",
            "METEOR",
            "ROUGE_L",
            "mBMR",
        ],
        "conditional": {
            "CIDEr": "per-caption CIDEr-D averaged with each modality's document frequencies of the "
            "full test set held fixed (the usual CIDEr bootstrap)"
        },
        "approximate": [],
        "standard": standard,
    }
    if reference is not None:
        diffs = {
            row: {
                t: _differences(
                    standard[row][t],
                    standard[reference][t],
                    METRICS[t],
                    values[row][t] - values[reference][t],
                )
                for t in tasks
            }
            for row in rows
            if row != reference
        }
        out["differences"] = diffs
        out["resolution"] = {
            t: {m: _resolution([diffs[r][t][m] for r in diffs]) for m in METRICS[t]} for t in tasks
        }
    return out


# ------------------------------------------------------------------------------------- inputs


def _records(
    row: str, tasks: Mapping[str, Sequence[Prediction | Mapping[str, Any]]]
) -> dict[str, list[Prediction]]:
    out: dict[str, list[Prediction]] = {}
    for t, items in tasks.items():
        if t not in TASKS:
            raise DataError(f"row {row!r}: unknown task {t!r}; use one of {', '.join(TASKS)}")
        preds = []
        for k, item in enumerate(items):
            try:
                preds.append(as_prediction(item))
            except ValueError as err:
                raise DataError(
                    f"invalid prediction: {err}", f"<row {row!r}, {t} predictions>", record=k
                ) from err
        out[t] = preds
    return out


def _align(
    row: str,
    task: str,
    preds: list[Prediction] | None,
    anchor: list[Prediction],
    anchor_name: str,
) -> np.ndarray:
    """``order`` such that ``preds[order[j]]`` answers the question of ``anchor[j]``; refuses rows whose
    questions differ."""
    if preds is None:
        raise ClinkdError(
            f"row {row!r} has no {task} predictions but row {anchor_name!r} has; every row must "
            "answer the same tasks"
        )
    where: dict[int | str, int] = {}
    for i, p in enumerate(preds):
        if p.id in where:
            raise ClinkdError(
                f"row {row!r}, task {task}: id {p.id!r} is given twice (records {where[p.id]} and "
                f"{i}); a paired comparison needs each question once"
            )
        where[p.id] = i
    ids = [p.id for p in anchor]
    missing = [i for i in ids if i not in where]
    extra = sorted(set(where) - set(ids), key=str)
    if missing or extra:
        what = []
        if missing:
            what.append(f"{len(missing)} id(s) of row {anchor_name!r} missing (first {missing[0]!r})")
        if extra:
            what.append(f"{len(extra)} id(s) not in row {anchor_name!r} (first {extra[0]!r})")
        raise ClinkdError(
            f"row {row!r}, task {task}: not the same questions as row {anchor_name!r}: "
            + "; ".join(what)
            + ". Paired intervals need every row to answer the same test questions"
        )
    order = np.array([where[i] for i in ids], dtype=np.intp)
    for j, i in enumerate(order):
        a, p = anchor[j], preds[i]
        if (p.image, p.annotation) != (a.image, a.annotation):
            field = "image" if p.image != a.image else "annotation"
            raise ClinkdError(
                f"row {row!r}, task {task}: id {p.id!r} has another {field} than in row "
                f"{anchor_name!r}; paired intervals need every row to answer the same test questions"
            )
    return order


# ------------------------------------------------------------------------------------- scoring


def _score(
    rows: dict[str, dict[str, list[Prediction]]],
    tasks: list[str],
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, np.ndarray]]]:
    """Each row's standard blocks (``evaluate``'s own functions, on the row's records in the row's order)
    and per-question additive quantities ``(n, k)`` in the row's order. Captions of every row in one run."""
    standard: dict[str, dict[str, dict[str, Any]]] = {row: {} for row in rows}
    per_question: dict[str, dict[str, np.ndarray]] = {row: {} for row in rows}
    caption_tasks: dict[str, CaptionTask] = {}
    keys: dict[str, tuple[str, str]] = {}
    for r, (row, by_task) in enumerate(rows.items()):
        for t in tasks:
            preds = by_task[t]
            groups = group_by_modality(preds)
            if t == "VG":
                block = std.vg_standard(preds, groups)
                block.pop("_best_iou")
                samples = [std.vg_sample(p) for p in preds]
                x = [[s["n_found"], s["n_boxes"]] if s else [0, 0] for s in samples]
                per_question[row][t] = np.array(x, dtype=np.float64).reshape(-1, 2)
                standard[row][t] = block
            elif t == "RO":
                standard[row][t] = std.ro_standard(preds, groups)
                correct = [ro_correct_standard(p.annotation, clean_response(p.response)) for p in preds]
                per_question[row][t] = np.array(correct, dtype=np.float64).reshape(-1, 1)
            else:  # as evaluate(strict=False) builds it: the modality groups, no pooled group
                key = f"{r}:{t}"
                keys[key] = (row, t)
                caption_tasks[key] = CaptionTask(
                    hyps=[clean_response(p.response) for p in preds],
                    refs=[p.annotation for p in preds],
                    groups=groups,
                )
    if caption_tasks:
        scorer = CaptionScorer(caption_tasks, spice=False)
        scorer.start()
        results = scorer.finish()
        for key, (row, t) in keys.items():
            task = caption_tasks[key]
            standard[row][t] = std.captions_standard(t, results[key], task.groups)
            per_question[row][t] = _caption_rows(results[key], task.groups, len(task.hyps))
    return standard, per_question


def _caption_rows(result: CaptionResult, groups: Mapping[str, Sequence[int]], n: int) -> np.ndarray:
    """``(n, 35)``: per question its BLEU statistics, METEOR statistics, ROUGE-L and CIDEr (the latter with
    its modality's DF) — of the eight modalities; other modalities' rows stay 0 (they are in no mean)."""
    x = np.zeros((n, _CAPTION_WIDTH))
    for m in MODALITIES:
        idx = list(groups.get(m, ()))
        if not idx:
            continue
        each = result.per_sample[m]
        x[idx, _BLEU] = each["BLEU_stats"]
        x[idx, _METEOR] = each["METEOR_stats"]
        x[idx, _ROUGE] = each["ROUGE_L"]
        x[idx, _CIDER] = each["CIDEr"]
    return x


# ------------------------------------------------------------------------------------- bootstrap


def _replicates(
    task: str, x: np.ndarray, positions: list[list[int]], counts: list[np.ndarray], n_boot: int
) -> np.ndarray:
    """``(B, len(METRICS[task]))`` replicate values: per present modality the metric of the resampled sums
    ``counts_m @ x[positions_m]``, then the sum over modalities / 8 (absent ones count 0)."""
    total = np.zeros((n_boot, len(CAPTION_COLUMNS) if task in ("GC", "MII") else 1))
    for pos, c in zip(positions, counts):
        sums = c @ x[pos]  # (B, k)
        if task == "VG":
            found, boxes = sums[:, 0], sums[:, 1]
            total[:, 0] += np.where(boxes > 0, found / np.maximum(boxes, 1), 0.0)
        elif task == "RO":
            total[:, 0] += sums[:, 0] / len(pos)
        else:
            total[:, :4] += ngram.bleu_from_totals(sums[:, _BLEU])
            total[:, 4] += coco_java.meteor_from_stats(sums[:, _METEOR])
            total[:, 5] += sums[:, _ROUGE] / len(pos)
            total[:, 6] += sums[:, _CIDER] / len(pos)
    total /= len(MODALITIES)
    if task == "MII":
        total = np.column_stack([total, total[:, :6].mean(axis=1)])  # mBMR of the eight-modality means
    return total


def _intervals(
    block: Mapping[str, Any], metrics: Sequence[str], values: np.ndarray
) -> dict[str, dict[str, Any]]:
    ci = percentile_ci(values)
    se = values.std(axis=0, ddof=1)
    out: dict[str, dict[str, Any]] = {}
    for k, m in enumerate(metrics):
        value = block.get(m)
        if value is None:
            out[m] = {"value": None, "ci95": None, "se": None}
        else:
            out[m] = {"value": value, "ci95": [float(ci[k, 0]), float(ci[k, 1])], "se": float(se[k])}
    return out


def _differences(
    block: Mapping[str, Any], ref_block: Mapping[str, Any], metrics: Sequence[str], diff: np.ndarray
) -> dict[str, dict[str, Any]]:
    ci = percentile_ci(diff)
    se = diff.std(axis=0, ddof=1)
    out: dict[str, dict[str, Any]] = {}
    for k, m in enumerate(metrics):
        a, b = block.get(m), ref_block.get(m)
        if a is None or b is None:
            out[m] = {"difference": None, "ci95": None, "se": None, "half_width": None, "beyond_noise": None}
            continue
        lo, hi = float(ci[k, 0]), float(ci[k, 1])
        out[m] = {
            "difference": a - b,
            "ci95": [lo, hi],
            "se": float(se[k]),
            "half_width": (hi - lo) / 2,
            "beyond_noise": bool(lo > 0 or hi < 0),
        }
    return out


def _resolution(entries: list[dict[str, Any]]) -> dict[str, float | None]:
    widths = [e["half_width"] for e in entries if e["half_width"] is not None]
    return {
        "min_half_width": min(widths) if widths else None,
        "max_half_width": max(widths) if widths else None,
    }
