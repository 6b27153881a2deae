"""Answer a Med-GRIT test file and write the published prediction format, resumably.

One JSON object per line (protocol.md §1)::

    {"id": 3, "image": "ct_00012.png", "question": "<img>ct_00012.png</img>...", "annotation": "...",
     "response": "..."}

``id`` is the sample's index in the test file, ``image`` the name of its (first) image, ``question``
and ``annotation`` are the test file's strings, ``response`` the model's answer read back into Med-GRIT form from the model's box convention
(0–1000 ``<box>(x1,y1),(x2,y2)</box>``, which the published regex looks for) and ``raw_response`` the
model's own text when it differs (JSON ``bbox_2d`` in resized-image pixels for Qwen2.5-VL, say). With
``save_candidates`` a record also carries ``"sasg": {"chosen", "candidates", "scores"}``; a sample of
several images (a report study, issue 16), answered with all of them, adds ``"images"`` (every name, in
order), and a converted benchmark's record copies the test record's ``answer_type`` and ``benchmark``.
Readers of the format ignore extra keys.

Resuming. Records are appended batch by batch, each batch flushed and ``fsync``-ed, so a crash loses
at most the batch in flight. Batches are always the same slices ``[k·B, (k+1)·B)`` of the (limited)
test file, and sampling is seeded per batch, so a resumed run writes exactly the records an
uninterrupted run would have written.

Nothing a user made is lost (issue 13). Before anything is written or cut, an existing ``out`` must be
a clinkd prediction file of this test file (:func:`~clinkd.infer.resume.inspect_prediction_file`: every
complete line a record with the published fields, matching its test sample, no id twice; only a torn
last line — a crash mid-write — may be cut), and neither it nor its side file may be the test file.
The side file ``<stem>.settings.json`` (:func:`settings_path`) records what produced the records
(:func:`~clinkd.infer.resume.run_identity`: model folder and weights, test file content, task, samples,
selection and decoding settings) beside the complete decoding settings; a resume whose run differs is
refused, saying what differs and how to go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from clinkd.benchmarks import spec
from clinkd.data.boxes import STYLES, convert_markup
from clinkd.data.formats import BENCHMARK_MARKER, find_dataset_files, read_json, read_samples
from clinkd.data.images import load_image
from clinkd.data.sample import TASKS, Sample, check_question, task_from_name
from clinkd.errors import ClinkdError, DataError
from clinkd.infer.defaults import DEFAULTS, TASK_MAX_NEW_TOKENS, max_new_tokens_for
from clinkd.infer.inputs import default_image_dir, load_for_inference, resolve_image, resolve_images
from clinkd.infer.options import check_decoding_args
from clinkd.infer.records import append_records, decoding_record, prediction_record
from clinkd.infer.resume import (
    PUBLISHED_FIELDS,
    FileState,
    cut_to,
    decoding_differences,
    inspect_prediction_file,
    read_done_ids,
    read_settings,
    repair_tail,
    run_differences,
    run_identity,
    settings_path,
    write_settings,
)
from clinkd.infer.sasg import generate_candidates, select_answers
from clinkd.infer.similarity import Embedder
from clinkd.paths import output_file, same_file

__all__ = [
    "BOX_STYLES",
    "MAX_NEW_TOKENS",
    "PUBLISHED_FIELDS",
    "PredictSummary",
    "check_decoding_args",
    "inspect_prediction_file",
    "predict_benchmark",
    "predict_dataset",
    "predict_file",
    "read_done_ids",
    "repair_tail",
    "resolve_image",
    "resolve_images",
    "run_identity",
    "settings_path",
]

log = logging.getLogger(__name__)

#: Release settings (method.md, end): 80 new tokens, 100 for image analysis (MII); the one home of these
#: numbers is :mod:`clinkd.infer.defaults`.
MAX_NEW_TOKENS: dict[str | None, int] = dict(
    [*TASK_MAX_NEW_TOKENS.items(), (None, DEFAULTS.max_new_tokens_default_task)]
)
#: ``raw`` keeps the model's markup; the others rewrite box/ref delimiters (``qwen``: ``<box>…</box>``).
BOX_STYLES: tuple[str, ...] = (*STYLES, "raw")


@dataclass
class PredictSummary:
    """What one :func:`predict_file` call did."""

    path: Path
    task: str | None
    total: int  # samples to answer (after ``limit``)
    done_before: int  # already in the file when the call started
    written: int  # records written by this call
    repaired: int  # bytes cut from a torn last line


# -- inputs -----------------------------------------------------------------------------------------
def _question_codec(question_box_style: str | None, model: Any, processor: Any) -> Any:
    """The model's box codec (:func:`~clinkd.model.processor.box_codec`), told to leave the prompts alone
    when ``question_box_style`` is ``raw``/None or a markup the caller converts them to itself."""
    import dataclasses

    from clinkd.model.processor import box_codec

    codec = box_codec(model, processor)
    if question_box_style != "auto":
        codec = dataclasses.replace(codec, convert_questions=False)
    return codec


def _one_or_list(images: list) -> Any:
    """A single image as itself (what generation took before multi-image samples), several as a list."""
    return images[0] if len(images) == 1 else images


def _benchmark_of(samples: list[Sample]) -> str | None:
    """The converted benchmark every sample names (its test record's ``benchmark`` key), if one known one."""
    names = {s.meta.get("benchmark") for s in samples}
    name = names.pop() if len(names) == 1 else None
    return name if name in DEFAULTS.benchmark_max_new_tokens else None


# -- the run ----------------------------------------------------------------------------------------
@dataclass
class _Options:
    """The settings of a run (:func:`predict_file`'s arguments of the same names)."""

    select: str = DEFAULTS.select
    candidates: int = DEFAULTS.candidates
    temperature: float = DEFAULTS.temperature
    top_p: float = DEFAULTS.top_p
    box_weight: float = DEFAULTS.box_weight
    length_factor: float | None = DEFAULTS.length_factor
    batch_size: int = DEFAULTS.batch_size
    max_new_tokens: int | None = None
    benchmark: str | None = None
    box_style: str = "qwen"
    question_box_style: str | None = "auto"
    seed: int = DEFAULTS.seed
    limit: int | None = None
    save_candidates: bool = False
    min_pixels: int | None = None
    max_pixels: int | None = None

    @property
    def n(self) -> int:
        """Sampled candidates per question (0: greedy)."""
        return self.candidates if self.select == "sasg" else 0


@dataclass
class _Plan:
    """One prediction file's run, checked and ready: nothing has been written yet."""

    test_file: Path
    out: Path
    task: str | None
    samples: list[Sample]
    image_dir: Path
    state: FileState
    previous: dict[str, Any] | None  # the side file, when it speaks for records in ``out``
    run: dict[str, Any]
    todo: list[int]
    starts: list[int]
    tokens: int
    settings: dict[str, Any] = field(default_factory=dict)  # the decoding record, once the model is loaded
    summary: PredictSummary | None = None


def _prepare(
    model: Any,
    test_file: str | PathLike,
    out: str | PathLike,
    task: str | None,
    image_dir: str | PathLike | None,
    o: _Options,
) -> _Plan:
    """Every check of a run that needs no model, in an order that touches nothing."""
    check_decoding_args(
        select=o.select,
        candidates=o.candidates,
        temperature=o.temperature,
        top_p=o.top_p,
        box_weight=o.box_weight,
        length_factor=o.length_factor,
        batch_size=o.batch_size,
        max_new_tokens=o.max_new_tokens,
        limit=o.limit,
        seed=o.seed,
    )
    if o.benchmark is not None:
        spec(o.benchmark)  # a ClinkdError naming the known ones
    if o.box_style not in BOX_STYLES:
        raise ClinkdError(f"unknown box style {o.box_style!r}; choose from {', '.join(BOX_STYLES)}")
    if o.question_box_style not in ("auto", None, *BOX_STYLES):
        raise ClinkdError(
            f"unknown question box style {o.question_box_style!r}; choose from auto, {', '.join(BOX_STYLES)}"
        )
    test_file, out = Path(test_file), Path(out)
    if not test_file.is_file():
        raise DataError("test file not found", test_file)
    side = settings_path(out)
    output_file(out, what="prediction file", create_parent=False)
    output_file(side, what="settings side file", create_parent=False)
    for path, what in ((out, "the prediction file (--out)"), (side, f"the settings side file of {out.name}")):
        if same_file(path, test_file):
            raise ClinkdError(
                f"{what} {path} is the test file {test_file}; writing there would destroy it — give "
                "another --out"
            )
    task = task or task_from_name(test_file.name)
    samples = read_samples(test_file, fmt="test", task=task)[: o.limit]
    for i, s in enumerate(samples):
        check_question(s.prompts()[0], test_file, i)
        named = s.meta.get("benchmark")
        if o.benchmark is not None and named is not None and named != o.benchmark:
            raise DataError(
                f"the record names the benchmark {named!r}, not {o.benchmark!r}; pass --benchmark {named}",
                test_file,
                i,
            )
    image_dir = Path(image_dir) if image_dir is not None else default_image_dir(test_file)
    state = inspect_prediction_file(out, samples)
    previous = read_settings(side, in_use=bool(state.done))
    tokens = o.max_new_tokens or max_new_tokens_for(task, o.benchmark or _benchmark_of(samples))
    run = run_identity(
        model,
        test_file,
        samples,
        task=task,
        image_dir=image_dir,
        select=o.select,
        candidates=o.candidates,
        temperature=o.temperature,
        top_p=o.top_p,
        box_weight=o.box_weight,
        length_factor=o.length_factor,
        max_new_tokens=tokens,
        seed=o.seed,
        batch_size=o.batch_size,
        box_style=o.box_style,
        question_box_style=o.question_box_style,
        min_pixels=o.min_pixels,
        max_pixels=o.max_pixels,
    )
    # fixed batch grid: a resumed run recomputes a half-written batch whole, as the first run computed it
    b = o.batch_size
    grid = [range(s, min(s + b, len(samples))) for s in range(0, len(samples), b)]
    todo = [i for ids in grid for i in ids if i not in state.done]
    starts = [ids.start for ids in grid if any(i not in state.done for i in ids)]
    if not state.done:
        previous = None  # nothing in the file: an old side file speaks for nothing
    elif previous is None or "run" not in previous:
        log.warning(
            "%s: no record of the run that wrote its %d record(s) (no %s, or one from an older clinkd); "
            "they are checked against the test file only",
            out,
            len(state.done),
            side.name,
        )
    else:
        diffs = run_differences(previous["run"], run)
        if diffs and todo:
            raise ClinkdError(
                f"{out} was written by another run; what differs: {'; '.join(diffs)}. Rerun with "
                f"the settings recorded in {side.name}, give a new --out, or delete {out.name} and "
                f"{side.name} to start over"
            )
        if diffs:
            log.warning(
                "%s is complete, written by another run (what differs: %s); nothing to do",
                out,
                "; ".join(diffs),
            )
    missing = [
        (i, p) for i in todo for p in resolve_images(samples[i], image_dir, test_file, i) if not p.is_file()
    ]
    if missing:
        i, p = missing[0]
        raise DataError(
            f"image {p} not found ({len(missing)} image(s) missing; pass --images DIR?)", test_file, i
        )
    summary = PredictSummary(out, task, len(samples), len(state.done), 0, 0)
    return _Plan(
        test_file, out, task, samples, image_dir, state, previous, run, todo, starts, tokens, summary=summary
    )


def _settle(plan: _Plan, model: Any, processor: Any, o: _Options) -> Any:
    """With the model loaded: the decoding record, checked against the one that wrote the file's records
    (the pixel budget and box convention are known only now). Returns the box codec."""
    codec = _question_codec(o.question_box_style, model, processor)
    plan.settings = decoding_record(
        model,
        processor,
        select=o.select,
        n=o.n,
        tokens=plan.tokens,
        temperature=o.temperature,
        top_p=o.top_p,
        length_factor=o.length_factor,
        box_weight=o.box_weight,
        seed=o.seed,
        batch_size=o.batch_size,
        box_style=o.box_style,
        boxes=codec,
    )
    diffs = decoding_differences(plan.previous, plan.settings) if plan.previous is not None else []
    if diffs:
        side = settings_path(plan.out)
        raise ClinkdError(
            f"{plan.out} was written by another run; what differs: {'; '.join(diffs)}. Rerun with "
            f"the settings recorded in {side.name}, give a new --out, or delete {plan.out.name} and "
            f"{side.name} to start over"
        )
    return codec


def _execute(
    plan: _Plan,
    model: Any,
    processor: Any,
    codec: Any,
    o: _Options,
    embedder: Embedder | None,
    progress: bool | str,
) -> None:
    """Cut a torn last line, write the side file, then answer and append batch by batch."""
    samples, out, n, summary = plan.samples, plan.out, o.n, plan.summary
    assert summary is not None
    output_file(out, what="prediction file")  # its folder, created now
    summary.repaired = cut_to(out, plan.state.keep) if plan.state.torn else 0
    write_settings(out, {**plan.settings, "run": plan.run})
    qstyle = None if o.question_box_style in ("auto", "raw", None) else o.question_box_style
    if n and embedder is None:
        embedder = Embedder()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        label = progress if isinstance(progress, str) else f"{plan.task or plan.test_file.stem} ({o.select})"
        bar = tqdm(total=len(samples), initial=summary.done_before, desc=label, unit="q")
    try:
        with torch.random.fork_rng(), open(out, "a", encoding="utf-8") as f:  # seeds below stay local
            if plan.state.newline:  # a last record written whole but for its newline
                f.write("\n")
            for start in plan.starts:
                ids = range(start, min(start + o.batch_size, len(samples)))
                batch = [samples[i] for i in ids]
                images = [  # one image a question, or the list of a multi-image sample's views
                    _one_or_list(
                        [load_image(p) for p in resolve_images(s, plan.image_dir, plan.test_file, i)]
                    )
                    for i, s in zip(ids, batch)
                ]
                prompts = [s.prompts()[0] for s in batch]
                if qstyle is not None:  # a markup asked for (the record keeps the test file's question)
                    prompts = [convert_markup(q, qstyle) for q in prompts]  # type: ignore[arg-type]
                torch.manual_seed(o.seed + start // o.batch_size)
                cands = generate_candidates(
                    model,
                    processor,
                    images,
                    prompts,
                    n=n,
                    max_new_tokens=plan.tokens,
                    temperature=o.temperature,
                    top_p=o.top_p,
                    length_factor=o.length_factor,
                    boxes=codec,
                )
                if n:
                    chosen = select_answers(cands, embedder, o.box_weight)  # type: ignore[arg-type]
                    answers = [c.answer for c in chosen]
                else:
                    answers = [c[0] for c in cands]
                records = []
                for k, (i, s, a) in enumerate(zip(ids, batch, answers)):
                    if i in plan.state.done:
                        continue
                    rec = prediction_record(i, s, a, o.box_style)
                    if n and o.save_candidates:
                        rec["sasg"] = chosen[k].to_dict()
                    records.append(rec)
                append_records(f, records)
                summary.written += len(records)
                if bar is not None:
                    bar.update(len(records))
    finally:
        if bar is not None:
            bar.close()


def _predict(
    model: Any,
    processor: Any,
    jobs: list[tuple[Path, Path, str | None]],
    image_dir: Any,
    o: _Options,
    device: str | None,
    embedder: Embedder | None,
    progress: bool | str,
) -> list[PredictSummary]:
    """Check every job (test file, prediction file, task), then load the model once and run them."""
    plans = [_prepare(model, test, out, task, image_dir, o) for test, out, task in jobs]
    busy = [p for p in plans if p.todo]
    for p in plans:
        if not p.todo:
            log.info("%s: all %d records already written", p.out, len(p.samples))
            if p.state.torn:  # a torn copy of a record also written whole
                p.summary.repaired = cut_to(p.out, p.state.keep)  # type: ignore[union-attr]
    if busy:
        model, processor = load_for_inference(model, processor, device, o.min_pixels, o.max_pixels)
        codecs = [_settle(p, model, processor, o) for p in busy]  # every file checked before any is written
        if o.n and embedder is None:
            embedder = Embedder()  # one cache for all files
        for p, codec in zip(busy, codecs):
            _execute(p, model, processor, codec, o, embedder, progress)
    return [p.summary for p in plans]  # type: ignore[misc]


def predict_file(
    model: Any,
    test_file: str | PathLike,
    out: str | PathLike,
    *,
    processor: Any = None,
    task: str | None = None,
    image_dir: str | PathLike | None = None,
    select: str = DEFAULTS.select,
    candidates: int = DEFAULTS.candidates,
    temperature: float = DEFAULTS.temperature,
    top_p: float = DEFAULTS.top_p,
    box_weight: float = DEFAULTS.box_weight,
    length_factor: float | None = DEFAULTS.length_factor,
    batch_size: int = DEFAULTS.batch_size,
    max_new_tokens: int | None = None,
    benchmark: str | None = None,
    box_style: str = "qwen",
    question_box_style: str | None = "auto",
    seed: int = DEFAULTS.seed,
    limit: int | None = None,
    save_candidates: bool = False,
    embedder: Embedder | None = None,
    device: str | None = None,
    progress: bool | str = True,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> PredictSummary:
    """Answer every sample of ``test_file`` and append its record to ``out`` (JSONL), resuming ``out``.

    Args:
        model: a model directory (loaded with :func:`clinkd.model.load`) or a loaded model (then pass
            ``processor``).
        test_file: a Med-GRIT test file (``[{"id", "conversations": [[question, answer]]}]``).
        out: the prediction file; created, or resumed when it exists (it must then be a prediction
            file of this test file written by the same run, see the module docstring).
        task: VG/RO/GC/MII; default from the file name. Chooses the default ``max_new_tokens``
            (:data:`MAX_NEW_TOKENS`: 80, 100 for MII).
        benchmark: a converted benchmark (``vqa-rad``, ``iu-xray`` ...,
            :data:`clinkd.infer.defaults.BENCHMARKS`): its ``max_new_tokens`` default (32 for VQA sets,
            256 for reports). Default: the one every test record names under ``benchmark``, if any.
        image_dir: where the images are; default ``images/`` beside the test file (else its folder).
        select: ``"greedy"`` or ``"sasg"`` (greedy + ``candidates`` samples, semantic medoid).
        temperature, top_p, box_weight: SASG sampling and agreement settings.
        length_factor: SASG: cut (and drop) samples longer than this × the greedy answer + 8 tokens
            (:class:`~clinkd.infer.sasg.AnchoredLength`); ``None``: keep all.
        batch_size: questions per ``generate`` call (SASG decodes ``batch_size·(candidates+1)`` rows).
        box_style: markup of boxes in ``response``, the answer read back from the model's box convention
            into Med-GRIT 0–1000 (:mod:`clinkd.data.conventions`): ``qwen`` (``<box>``, what the published
            scripts read), ``qwen2``, ``clinkd``; or ``raw``: the model's own text. The model's own text is
            kept as ``raw_response`` whenever it differs from ``response``.
        question_box_style: boxes in the prompts. ``"auto"`` (default): written in the model's box
            convention (``config.clinkd_box_convention``; a hub checkpoint's family's own, see
            :func:`~clinkd.model.modeling.get_box_convention`), as training wrote them; ``qwen``,
            ``qwen2``, ``clinkd``: that markup, 0–1000; ``raw``/None: the test file's text unchanged.
            Only the prompt changes: the records' ``question`` stays the test file's string.
        seed: sampling seed; batch ``k`` samples under ``seed + k``.
        limit: answer only the first ``limit`` samples (smoke tests).
        save_candidates: add ``"sasg": {"chosen", "candidates", "scores"}`` to SASG records.
        device: move the model there (default: leave it where it is).
        progress: show a progress bar (a string is its label).
        min_pixels, max_pixels: image budget (:func:`clinkd.model.load`; default: the release's
            512·512 .. 1024·1024 for a real checkpoint, a tiny model's own).

    The complete decoding settings (every ``generate`` field, greedy and sampled), the seed, the image
    budget and the run's identity (:func:`run_identity`, under ``"run"``) are written beside ``out`` as
    ``<stem>.settings.json`` (:func:`settings_path`). Every check that needs no model (the arguments,
    the files, the questions, the images, the recorded run) is made before the model is loaded, and
    nothing is written or cut before every check has passed. Bad input raises
    :class:`~clinkd.errors.ClinkdError` (:class:`~clinkd.errors.DataError` naming file and record).
    """
    o = _Options(
        select=select,
        candidates=candidates,
        temperature=temperature,
        top_p=top_p,
        box_weight=box_weight,
        length_factor=length_factor,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        benchmark=benchmark,
        box_style=box_style,
        question_box_style=question_box_style,
        seed=seed,
        limit=limit,
        save_candidates=save_candidates,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )
    (summary,) = _predict(
        model, processor, [(Path(test_file), Path(out), task)], image_dir, o, device, embedder, progress
    )
    return summary


def _check_out_folder(out_dir: Path, data_dir: Path, image_dir: Path | None = None) -> None:
    """Refuse an ``--out`` folder that is the dataset folder, the image folder or a file."""
    for folder, what in ((data_dir, "the dataset folder (--data)"), (image_dir, "the image folder")):
        if folder is not None and same_file(out_dir, folder):
            raise ClinkdError(f"the output folder {out_dir} is {what}; give another --out folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ClinkdError(f"output folder {out_dir} is a file; give a folder")


def predict_dataset(
    model: Any,
    data_dir: str | PathLike,
    out_dir: str | PathLike,
    *,
    tasks: str | list[str] = "all",
    processor: Any = None,
    image_dir: str | PathLike | None = None,
    embedder: Embedder | None = None,
    device: str | None = None,
    progress: bool | str = True,
    **kwargs: Any,
) -> dict[str, PredictSummary]:
    """Answer the test files of a dataset folder: ``out_dir/pred_<TASK>.jsonl`` for each task.

    ``tasks``: ``"all"`` (every test file present) or task codes. ``kwargs`` are :func:`predict_file`'s
    settings (``image_dir`` defaults to the folder's images). Every task's files are checked as
    :func:`predict_file` checks one before the model is loaded (once) and anything is written;
    ``out_dir`` may not be the dataset or the image folder.
    """
    files = find_dataset_files(data_dir)
    if tasks == "all":
        wanted = [t for t in TASKS if t in files.test]
    else:
        wanted = [tasks] if isinstance(tasks, str) else list(tasks)
    if not wanted:
        raise DataError("no test files (test_VG.json, ... naming a task) in this folder", data_dir)
    absent = [t for t in wanted if t not in files.test]
    if absent:
        found = ", ".join(sorted(files.test)) or "none"
        raise DataError(f"no test file for task(s) {', '.join(absent)} (found: {found})", data_dir)
    out_dir, image_dir = Path(out_dir), Path(image_dir or files.image_dir)
    _check_out_folder(out_dir, Path(data_dir), image_dir)
    o = _Options(**kwargs)
    summaries = _predict(
        model,
        processor,
        [(files.test[t], out_dir / f"pred_{t}.jsonl", t) for t in wanted],
        image_dir,
        o,
        device,
        embedder,
        progress,
    )
    return dict(zip(wanted, summaries))


def predict_benchmark(
    model: Any,
    data_dir: str | PathLike,
    out_dir: str | PathLike,
    benchmark: str,
    *,
    image_dir: str | PathLike | None = None,
    **kwargs: Any,
) -> PredictSummary:
    """Answer a converted benchmark folder's ``test.json``: ``out_dir/pred_<benchmark>.jsonl``.

    ``benchmark`` (:data:`clinkd.infer.defaults.BENCHMARKS`) sets the default ``max_new_tokens``;
    ``kwargs`` are :func:`predict_file`'s settings; images default to ``images/`` beside ``test.json``.
    """
    benchmark = spec(benchmark).name
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    test_file = data_dir / "test.json"
    marker = data_dir / BENCHMARK_MARKER
    if not marker.is_file():
        raise DataError(
            f"not a folder written by `clinkd data import` (no {BENCHMARK_MARKER}); import the release "
            f"first: clinkd data import {benchmark} {data_dir} --out NEW_FOLDER, then pass --data NEW_FOLDER",
            data_dir,
        )
    imported = read_json(marker)
    named = imported.get("benchmark") if isinstance(imported, dict) else None
    if named != benchmark:
        raise DataError(
            f"this folder holds the imported {named!r} benchmark; pass --benchmark {named}", marker
        )
    if not test_file.is_file():
        raise DataError("no test.json in this folder (a converted benchmark folder holds one)", data_dir)
    _check_out_folder(out_dir, data_dir)
    return predict_file(
        model,
        test_file,
        out_dir / f"pred_{benchmark}.jsonl",
        image_dir=image_dir,
        benchmark=benchmark,
        **kwargs,
    )
