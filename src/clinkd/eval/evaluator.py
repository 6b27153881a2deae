"""``evaluate``: the one entry point the CLI, training and the demo call.

>>> report = evaluate({"RO": [{"id": 0, "image": "ct_1.png", "question": "?",
...                            "annotation": "liver", "response": "The liver."}]}, bootstrap=0)
>>> report.standard["RO"]["accuracy"]  # 1.0 on ct, 0 on the seven absent modalities
0.125
"""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from clinkd import __version__
from clinkd.errors import ClinkdError, DataError
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
    Mapping[str, Sequence[Prediction | Mapping[str, Any]]] | str | PathLike | Sequence[str | PathLike]
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
    #: :data:`CONVENTIONS` and what this input made of them (caption length, the published pipeline's
    #: failures and the records they touch), see :func:`evaluate`
    conventions: dict[str, Any] = field(default_factory=lambda: dict(CONVENTIONS))

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
            "conventions": self.conventions,
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

CONVENTIONS: dict[str, str | list[str]] = {
    "modalities": list(MODALITIES),
    "standard_mean": "equal weight over the eight modalities; an absent modality contributes 0 "
    "(VG, RO per protocol; GC/MII: the scripts' fixed division by 8); it is listed "
    "under absent_modalities",
    "strict_mean": "equal weight over present modalities only; pooled = all samples as one group",
    "unavailable": "a metric that could not be computed is null and its reason is given in the "
    "task block's 'unavailable' map, e.g. {'SPICE': 'reason'}; never 0",
    "iou": "continuous area (x2-x1)*(y2-y1) on the 0-1000 grid, no +1; standard hit: IoU > 0.5; "
    "strict match: IoU >= 0.5 after the one-to-one assignment with the most such pairs (then the largest "
    "total IoU)",
    "other_modalities": "image prefixes outside the eight are scored under other_modalities and "
    "left out of every mean",
    "duplicate_ids": "a prediction file holding one id twice is refused (each test sample is scored once); "
    "records given in memory are taken as given",
}

#: Most bootstrap resamples accepted: more would take gigabytes for a large modality and add nothing.
MAX_BOOTSTRAP = 100_000

# Characters pycocoevalcap's PTB tokenizer (-preserveLines) reads as line ends; "\n" itself it replaces.
_LINE_BREAKS = frozenset("\r\x0b\x0c\x85\u2028\u2029")
_LONG = 100_000  # characters: the published pipeline hangs or crashes on an answer this long

PIPELINE = {
    "line_breaks": "a \\r, \\x0b, \\x0c, \\x85, U+2028 or U+2029 in a caption: pycocoevalcap's tokenizer reads it as a "
    "line end, so every later caption of that modality is scored against the wrong reference; "
    "clinkd reads it as a space",
    "lone_surrogates": "a lone surrogate in a caption: pycocoevalcap cannot write its tokenizer input and stops; "
    "clinkd reads it as U+FFFD",
    "over_100k_characters": "a caption of over 100,000 characters: the published pipeline hangs or crashes on it; "
    "clinkd scores it whole",
    "absent_modalities": "a modality with no sample: the published caption scripts crash on it; clinkd counts it 0 "
    "in the standard mean (sum over the eight / 8) and leaves it out of the strict mean",
    "duplicate_ids": "an id given twice: the published caption pipeline fails on it and the VG/RO scripts count "
    "the record twice; clinkd refuses such files and scores records given in memory as given",
    "other_modalities": "an image name whose prefix is not one of the eight modalities: the published scripts "
    "raise KeyError; clinkd scores it apart (other_modalities), outside every mean",
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
    max_caption_tokens: int | None = None,
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
        max_caption_tokens: cut GC/MII captions to this many tokens after tokenising. ``None`` (the
            default, the standard reading): whole captions, as pycocoevalcap scores them. A bound is for
            files whose runaway answers METEOR cannot align; ``conventions.caption_length`` in the
            report counts the responses and references it cut.

    The report's ``conventions`` also count, per caption task, the records on which the published
    pipeline itself misbehaves while clinkd does not (:data:`PIPELINE`): line-break characters, lone
    surrogates, answers over 100,000 characters, absent modalities, ids given twice.

    Raises:
        DataError: unreadable, empty or malformed file, or an id given twice in files (naming file
            and line), unknown task, a file name naming no task or several.
        ClinkdError: a negative ``bootstrap`` or ``seed``, a ``max_caption_tokens`` below 1.
        RuntimeError: Java missing or failing while GC/MII captions must be scored.
    """
    check_settings(bootstrap=bootstrap, seed=seed, max_caption_tokens=max_caption_tokens)
    t0 = time.perf_counter()
    by_task, inputs, labels = _load(predictions, task, skip_invalid)
    timings: dict[str, float] = {"load": time.perf_counter() - t0}
    report = Report(
        standard={},
        strict={} if strict else None,
        inputs=inputs,
        settings={
            "strict": strict,
            "bootstrap": bootstrap,
            "seed": seed,
            "max_caption_tokens": max_caption_tokens,
        },
    )
    groups = {t: group_by_modality(p) for t, p in by_task.items()}

    caption_tasks: dict[str, CaptionTask] = {}
    for t in ("GC", "MII"):
        if t in by_task:
            g: dict[str, list[int]] = dict(groups[t])
            known = [i for m in MODALITIES for i in g.get(m, ())]
            if strict and known:
                g[st.POOLED] = known
            preds = by_task[t]
            caption_tasks[t] = CaptionTask(
                hyps=[clean_response(p.response) for p in preds],
                refs=[p.annotation for p in preds],
                groups=g,
                labels=labels[t],
            )
    # The caption work is Java-bound (tokenizer, METEOR) and runs in a background thread from here;
    # VG and RO are scored meanwhile, then BLEU/ROUGE-L/CIDEr in this thread.
    t1 = time.perf_counter()
    scorer = CaptionScorer(caption_tasks, spice=spice, progress=progress, max_tokens=max_caption_tokens)
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
    report.conventions = _conventions(report, by_task, scorer, max_caption_tokens)
    timings["total"] = time.perf_counter() - t0
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    return report


def check_settings(
    *, bootstrap: int = 0, seed: int = 0, max_caption_tokens: int | None = None, cli: bool = False
) -> None:
    """Refuse impossible evaluation settings before any work (``cli``: name the options as the command
    line spells them). Raises :class:`~clinkd.errors.ClinkdError`."""

    def name(arg: str) -> str:
        return "--" + arg.replace("_", "-") if cli else arg

    def whole(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if not whole(bootstrap) or not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise ClinkdError(
            f"{name('bootstrap')} must be a whole number from 0 (no intervals) to {MAX_BOOTSTRAP}, "
            f"got {bootstrap!r}"
        )
    if not whole(seed) or not 0 <= seed < 2**63:
        raise ClinkdError(f"{name('seed')} must be a whole number of at least 0, got {seed!r}")
    if max_caption_tokens is not None and (not whole(max_caption_tokens) or max_caption_tokens < 1):
        raise ClinkdError(
            f"{name('max_caption_tokens')} must be a whole number of at least 1 (leave it out to "
            f"score whole captions), got {max_caption_tokens!r}"
        )


def _conventions(
    report: Report, by_task: dict[str, list[Prediction]], scorer: CaptionScorer, max_tokens: int | None
) -> dict[str, Any]:
    """:data:`CONVENTIONS` with what this input made of them: the caption length bound and what it cut,
    and per task the records on which the published pipeline misbehaves (:data:`PIPELINE`)."""
    out: dict[str, Any] = dict(CONVENTIONS)
    caption_tasks = [t for t in ("GC", "MII") if t in by_task]
    if max_tokens is None:
        out["caption_length"] = {
            "max_tokens": None,
            "note": "GC/MII captions are scored whole, as pycocoevalcap scores them",
        }
    else:
        out["caption_length"] = {
            "max_tokens": max_tokens,
            "note": f"GC/MII captions cut to {max_tokens} tokens after tokenising (--max-caption-tokens): NOT the "
            "standard reading, which scores them whole",
            "responses_cut": {t: len(scorer.cut.get(t, {}).get("responses", ())) for t in caption_tasks},
            "references_cut": {t: len(scorer.cut.get(t, {}).get("references", ())) for t in caption_tasks},
        }
    found: dict[str, dict[str, int]] = {}
    for t, preds in by_task.items():
        counts: dict[str, int] = {}
        ids = [p.id for p in preds]
        counts["duplicate_ids"] = len(ids) - len(set(ids))
        counts["other_modalities"] = sum(p.modality not in MODALITIES for p in preds)
        if t in caption_tasks:
            texts = [(clean_response(p.response), p.annotation) for p in preds]  # what is tokenised
            counts["line_breaks"] = sum(any(c in _LINE_BREAKS for c in r + a) for r, a in texts)
            counts["lone_surrogates"] = sum(_has_surrogate(r + a) for r, a in texts)
            counts["over_100k_characters"] = sum(max(len(r), len(a)) > _LONG for r, a in texts)
            counts["absent_modalities"] = len(report.standard[t].get("absent_modalities") or ())
        counts = {k: v for k, v in counts.items() if v}
        if counts:
            found[t] = counts
    out["published_pipeline"] = {
        "note": "where the published scripts (pycocoevalcap included) themselves fail or misalign, clinkd keeps "
        "the sound behaviour described here; the counts say how many records of each task (modalities "
        "for absent_modalities) are concerned — the published numbers would differ on them",
        "what": PIPELINE,
        "counts": found,
    }
    return out


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _score_task(
    report: Report,
    t: str,
    preds: list[Prediction],
    g: dict[str, list[int]],
    caption: CaptionResult | None,
    bootstrap: int,
    seed: int,
    timings: dict[str, float],
) -> None:
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


def _load(
    predictions: PredictionsArg,
    task: str | None,
    skip_invalid: bool,
) -> tuple[dict[str, list[Prediction]], list[dict[str, Any]], dict[str, list[str]]]:
    """The predictions by task, the ``inputs`` rows of the report, and a label per prediction (file and
    line) for error messages."""
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    labels: dict[str, list[str]] = {}
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
                    labels.setdefault(name, []).append(f"<{name} predictions> record {k}")
                except ValueError as err:
                    if not skip_invalid:
                        raise DataError(
                            f"invalid prediction: {err}", f"<{name} predictions>", record=k
                        ) from err
            by_task[name] = preds
            labels.setdefault(name, [])
            inputs.append(
                {
                    "source": f"<{name} in memory>",
                    "task": name,
                    "n_predictions": len(preds),
                    "n_skipped": len(items) - len(preds),
                }
            )
        return by_task, inputs, labels
    paths = [predictions] if isinstance(predictions, (str, PathLike)) else list(predictions)
    by_task, inputs = {}, []
    seen: dict[str, dict[int | str, tuple[str, int]]] = {}  # task → id → (file, line) of its first record
    for path in paths:
        name = task or task_from_filename(path)
        skipped: list[tuple[int, str]] = []
        lines: list[int] = []
        preds = read_predictions(path, skip_invalid, skipped=skipped, lines=lines)
        if not preds:
            more = f" ({len(skipped)} invalid line(s) skipped)" if skipped else ""
            raise DataError(
                f"holds no prediction records{more}; was the inference run cut short, or is this the "
                "wrong file?",
                path,
            )
        first = seen.setdefault(name, {})
        for p, line_no in zip(preds, lines):
            if p.id in first:
                where, at = first[p.id]
                other = "" if where == str(path) else f" of {where}"
                raise DataError(
                    f"line {line_no} repeats id {p.id!r}, already given at line {at}{other}; each test "
                    "sample is scored once (three copies of one record would count three times) — remove "
                    "the duplicate line(s)",
                    path,
                    record=line_no,
                )
            first[p.id] = (str(path), line_no)
        if name in by_task:  # several files of one task (e.g. shards) are scored as one set
            log.info("%s: appended to the %s predictions read before", path, name)
        by_task.setdefault(name, []).extend(preds)
        labels.setdefault(name, []).extend(
            f"{Path(path).name} line {n} (id {p.id!r})" for p, n in zip(preds, lines)
        )
        if skipped:
            log.warning("%s: skipped %d invalid line(s), first at line %d", path, len(skipped), skipped[0][0])
        inputs.append(
            {
                "source": str(path),
                "file": Path(path).name,
                "task": name,
                "n_predictions": len(preds),
                "n_skipped": len(skipped),
                "skipped_lines": [n for n, _ in skipped[:100]],
            }
        )
    return by_task, inputs, labels
