"""``evaluate``: the one entry point the CLI, training and the demo call.

>>> report = evaluate({"RO": [{"id": 0, "image": "ct_1.png", "question": "?",
...                            "annotation": "liver", "response": "The liver."}]}, bootstrap=0)
>>> report.standard["RO"]["accuracy"]  # 1.0 on ct, 0 on the seven absent modalities
0.125
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from clinkd import __version__
from clinkd.errors import DataError
from clinkd.eval import standard as std
from clinkd.eval import strict as st
from clinkd.eval.captions import CaptionResult, CaptionScorer, CaptionTask
from clinkd.eval.cleaning import clean_response
from clinkd.eval.predictions import (
    MODALITIES,
    TASKS,
    Prediction,
    as_prediction,
    group_by_modality,
    read_predictions,
    task_from_filename,
)

log = logging.getLogger(__name__)

PredictionsArg = (
    Mapping[str, Sequence[Prediction | Mapping[str, Any]]]
    | str | PathLike | Sequence[str | PathLike]
)


@dataclass
class Report:
    """Both readings, side by side. ``standard[task]`` / ``strict[task]`` are JSON-ready dicts (see
    :mod:`clinkd.eval.report` for the layout); ``plot_data`` holds what the plots need."""

    standard: dict[str, dict[str, Any]]
    strict: dict[str, dict[str, Any]] | None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    plot_data: dict[str, Any] = field(default_factory=dict)

    def headline(self, task: str, reading: str = "standard") -> float | None:
        """The task's headline number (recall@0.5, accuracy, CIDEr, mBMR; strict: F1 for VG)."""
        block = (self.standard if reading == "standard" else self.strict or {}).get(task)
        if block is None:
            return None
        key = HEADLINE[reading][task]
        return block.get(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clinkd_version": __version__,
            "protocol": "Med-GRIT-270k (BiRD / ClinKD published scripts); see docs in clinkd.eval",
            "conventions": CONVENTIONS,
            "inputs": self.inputs,
            "settings": self.settings,
            "standard": self.standard,
            "strict": self.strict,
            "timings_s": self.timings,
        }


HEADLINE = {
    "standard": {"VG": "recall@0.5", "RO": "accuracy", "GC": "CIDEr", "MII": "mBMR"},
    "strict": {"VG": "f1", "RO": "accuracy", "GC": "CIDEr", "MII": "mBMR"},
}

CONVENTIONS = {
    "modalities": list(MODALITIES),
    "standard_mean": "equal weight over the eight modalities; an absent modality contributes 0 "
                     "(VG, RO per protocol; GC/MII: the scripts' fixed division by 8); it is listed "
                     "under absent_modalities",
    "strict_mean": "equal weight over present modalities only; pooled = all samples as one group",
    "unavailable": "a metric that could not be computed is null and its reason is given in the "
                   "task block's 'unavailable' map, e.g. {'SPICE': 'reason'}; never 0",
    "iou": "continuous area (x2-x1)*(y2-y1) on the 0-1000 grid, no +1; standard hit: IoU > 0.5; "
           "strict match: IoU >= 0.5 after one-to-one Hungarian assignment",
    "other_modalities": "image prefixes outside the eight are scored under other_modalities and "
                        "left out of every mean",
}


def evaluate(
    predictions: PredictionsArg,
    *,
    task: str | None = None,
    strict: bool = True,
    bootstrap: int = 1000,
    seed: int = 0,
    skip_invalid: bool = False,
    spice: bool | None = None,
    progress: bool = False,
) -> Report:
    """Score predictions under the standard reading (and the strict one unless ``strict=False``).

    Args:
        predictions: ``{task: [Prediction | dict, ...]}``, or one or more JSONL file paths (one per
            task; the task from ``task`` or from the file name, see
            :func:`clinkd.eval.predictions.task_from_filename`; several files of one task are
            scored as one set).
        task: the task of every file (only with paths).
        strict: also compute the strict reading.
        bootstrap: bootstrap resamples for the strict reading's 95% intervals (0: none).
        seed: bootstrap seed.
        skip_invalid: skip malformed JSONL lines (counted in ``inputs``) instead of raising.
        spice: ``None`` SPICE when available, ``True`` require it, ``False`` skip it.
        progress: progress bars on stderr.

    Raises:
        DataError: unreadable or malformed file (naming file and line), unknown task, a file name
            naming no task or several.
        RuntimeError: Java missing or failing while GC/MII captions must be scored.
    """
    t0 = time.perf_counter()
    by_task, inputs = _load(predictions, task, skip_invalid)
    timings: dict[str, float] = {"load": time.perf_counter() - t0}
    report = Report(standard={}, strict={} if strict else None, inputs=inputs,
                    settings={"strict": strict, "bootstrap": bootstrap, "seed": seed})
    groups = {t: group_by_modality(p) for t, p in by_task.items()}

    caption_tasks = {}
    for t in ("GC", "MII"):
        if t in by_task:
            g: dict[str, list[int]] = dict(groups[t])
            known = [i for m in MODALITIES for i in g.get(m, ())]
            if strict and known:
                g[st.POOLED] = known
            preds = by_task[t]
            caption_tasks[t] = CaptionTask(hyps=[clean_response(p.response) for p in preds],
                                           refs=[p.annotation for p in preds], groups=g)
    # The caption work is Java-bound (tokenizer, METEOR) and runs in a background thread from here;
    # VG and RO are scored meanwhile, then BLEU/ROUGE-L/CIDEr in this thread.
    t1 = time.perf_counter()
    scorer = CaptionScorer(caption_tasks, spice=spice, progress=progress)
    scorer.start()
    try:
        for t in ("VG", "RO"):
            if t in by_task:
                _score_task(report, t, by_task[t], groups[t], None, bootstrap, seed, timings)
    except BaseException:
        scorer.close()
        raise
    captions = scorer.finish()
    timings["captions"] = time.perf_counter() - t1 - sum(timings.get(t, 0.0) for t in ("VG", "RO"))
    for t in ("GC", "MII"):
        if t in by_task:
            _score_task(report, t, by_task[t], groups[t], captions[t], bootstrap, seed, timings)
    timings["total"] = time.perf_counter() - t0
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    return report


def _score_task(report: Report, t: str, preds: list[Prediction], g: dict[str, list[int]],
                caption: CaptionResult | None, bootstrap: int, seed: int,
                timings: dict[str, float]) -> None:
    t1 = time.perf_counter()
    if t == "VG":
        block = std.vg_standard(preds, g)
        report.plot_data["VG_best_iou"] = block.pop("_best_iou")
    elif t == "RO":
        block = std.ro_standard(preds, g)
    else:
        assert caption is not None
        block = std.captions_standard(t, caption, g)
    report.standard[t] = block
    if report.strict is not None:
        if t == "VG":
            report.strict[t] = st.vg_strict(preds, g, bootstrap=bootstrap, seed=seed)
        elif t == "RO":
            report.strict[t] = st.ro_strict(preds, g, bootstrap=bootstrap, seed=seed)
        else:
            assert caption is not None
            report.strict[t] = st.captions_strict(t, caption, g, bootstrap=bootstrap, seed=seed)
    timings[t] = time.perf_counter() - t1


def _load(predictions: PredictionsArg, task: str | None, skip_invalid: bool,
          ) -> tuple[dict[str, list[Prediction]], list[dict[str, Any]]]:
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if isinstance(predictions, Mapping):
        by_task: dict[str, list[Prediction]] = {}
        inputs = []
        for name, items in predictions.items():
            if name not in TASKS:
                raise DataError(f"unknown task {name!r}; use one of {', '.join(TASKS)}")
            preds = []
            for k, item in enumerate(items):
                try:
                    preds.append(as_prediction(item))
                except ValueError as err:
                    if not skip_invalid:
                        raise DataError(f"invalid prediction: {err}", f"<{name} predictions>",
                                        record=k) from err
            by_task[name] = preds
            inputs.append({"source": f"<{name} in memory>", "task": name, "n_predictions": len(preds),
                           "n_skipped": len(items) - len(preds)})
        return by_task, inputs
    paths = [predictions] if isinstance(predictions, (str, PathLike)) else list(predictions)
    by_task, inputs = {}, []
    for path in paths:
        name = task or task_from_filename(path)
        skipped: list[tuple[int, str]] = []
        preds = read_predictions(path, skip_invalid, skipped=skipped)
        if name in by_task:  # several files of one task (e.g. shards) are scored as one set
            log.info("%s: appended to the %s predictions read before", path, name)
        by_task.setdefault(name, []).extend(preds)
        if skipped:
            log.warning("%s: skipped %d invalid line(s), first at line %d", path, len(skipped),
                        skipped[0][0])
        inputs.append({"source": str(path), "file": Path(path).name, "task": name,
                       "n_predictions": len(preds), "n_skipped": len(skipped),
                       "skipped_lines": [n for n, _ in skipped[:100]]})
    return by_task, inputs
