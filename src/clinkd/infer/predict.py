"""Answer a Med-GRIT test file and write the published prediction format, resumably.

One JSON object per line (protocol.md §1)::

    {"id": 3, "image": "ct_00012.png", "question": "<img>ct_00012.png</img>...", "annotation": "...",
     "response": "..."}

``id`` is the sample's index in the test file, ``question`` and ``annotation`` are the test file's
strings, ``response`` the model's answer read back into Med-GRIT form from the model's box convention
(0–1000 ``<box>(x1,y1),(x2,y2)</box>``, which the published regex looks for) and ``raw_response`` the
model's own text when it differs (JSON ``bbox_2d`` in resized-image pixels for Qwen2.5-VL, say). With ``save_candidates`` a record also carries
``"sasg": {"chosen", "candidates", "scores"}``; readers of the format ignore extra keys.

Resuming. Records are appended batch by batch, each batch flushed and ``fsync``-ed, so a crash loses
at most the batch in flight. On start an existing file is repaired (a last line without newline or
that is not valid JSON is cut off) and the ids it holds are skipped. Batches are always the same
slices ``[k·B, (k+1)·B)`` of the (limited) test file, and sampling is seeded per batch, so a resumed run
writes exactly the records an uninterrupted run would have written.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from clinkd.data.boxes import STYLES, convert_markup
from clinkd.data.formats import find_dataset_files, read_samples
from clinkd.data.images import load_image
from clinkd.data.sample import TASKS, Sample, task_from_name
from clinkd.errors import ClinkdError, DataError
from clinkd.infer.sasg import generate_candidates, select_answers
from clinkd.infer.similarity import Embedder

__all__ = ["BOX_STYLES", "MAX_NEW_TOKENS", "PredictSummary", "predict_dataset", "predict_file",
           "read_done_ids", "repair_tail", "resolve_image", "settings_path"]

log = logging.getLogger(__name__)

#: Release settings (method.md, end): 80 new tokens, 100 for image analysis (MII).
MAX_NEW_TOKENS: dict[str | None, int] = {"VG": 80, "RO": 80, "GC": 80, "MII": 100, None: 80}
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


# -- resume -----------------------------------------------------------------------------------------
def repair_tail(path: str | PathLike) -> int:
    """Cut a torn last record off a JSONL file; returns the number of bytes removed (0 when intact).

    A last line is torn when it lacks its newline or is not valid JSON (a crash mid-write). Lines
    before it are left alone (they were fsync-ed whole).
    """
    path = Path(path)
    if not path.is_file():
        return 0
    data = path.read_bytes()
    keep = len(data)
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1  # 0 when the only line is torn
    else:
        body = data[:-1]
        start = body.rfind(b"\n") + 1
        last = body[start:]
        if last.strip():
            try:
                json.loads(last.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                keep = start
    removed = len(data) - keep
    if removed:
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        log.warning("%s: removed a torn last record (%d bytes) before resuming", path, removed)
    return removed


def read_done_ids(path: str | PathLike, samples: list[Sample] | None = None) -> set[int]:
    """The ids already in a prediction file (call :func:`repair_tail` first).

    With ``samples`` (the test file's samples), every record must match its sample's image: a file
    written for another test file raises :class:`DataError` rather than being silently extended.
    """
    path = Path(path)
    done: set[int] = set()
    if not path.is_file():
        return done
    for line_no, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
            rid = rec["id"]
            if isinstance(rid, bool) or not isinstance(rid, int):
                raise ValueError(f"'id' must be an integer, got {rid!r}")
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataError(f"not a prediction record ({err}); cannot resume into this file — move it away or fix "
                            "the line", path, record=f"line {line_no}") from None
        if samples is not None:
            if not 0 <= rid < len(samples) or rec.get("image") != Path(samples[rid].image).name:
                raise DataError(f"record id {rid} (image {rec.get('image')!r}) does not match the test file; was "
                                "this file written for another test file? Use another --out", path,
                                record=f"line {line_no}")
        done.add(rid)
    return done


# -- inputs -----------------------------------------------------------------------------------------
def resolve_image(sample: Sample, image_dir: Path) -> Path:
    """``image_dir / sample.image``, else ``image_dir / <file name>`` (paths inside ``<img>`` tags vary)."""
    for cand in (image_dir / sample.image, image_dir / Path(sample.image).name):
        if cand.is_file():
            return cand
    return image_dir / sample.image


def _default_image_dir(test_file: Path) -> Path:
    images = test_file.parent / "images"
    return images if images.is_dir() else test_file.parent


def _load_model(model: Any, processor: Any, device: str | None, min_pixels: int | None = None,
                max_pixels: int | None = None):
    """A model folder loaded (with the image budget, :func:`clinkd.model.load`), or a loaded model with its
    processor (an explicit budget is applied to that processor)."""
    if isinstance(model, (str, PathLike)):
        from clinkd.model import load

        model, loaded = load(model, min_pixels=min_pixels, max_pixels=max_pixels)
        processor = processor or loaded
    elif processor is not None and (min_pixels is not None or max_pixels is not None):
        from clinkd.model.processor import resolve_pixel_budget, set_pixel_budget

        set_pixel_budget(processor, *resolve_pixel_budget(processor, min_pixels, max_pixels))
    if processor is None:
        raise ClinkdError("predict_file needs the processor when given a loaded model (pass processor=...)")
    if device is not None:
        model = model.to(device)
    return model, processor


def _question_codec(question_box_style: str | None, model: Any, processor: Any) -> Any:
    """The model's box codec (:func:`~clinkd.model.processor.box_codec`), told to leave the prompts alone
    when ``question_box_style`` is ``raw``/None or a markup the caller converts them to itself."""
    import dataclasses

    from clinkd.model.processor import box_codec

    codec = box_codec(model, processor)
    if question_box_style != "auto":
        codec = dataclasses.replace(codec, convert_questions=False)
    return codec


def settings_path(out: str | PathLike) -> Path:
    """The settings side file of a prediction file: ``pred_VG.jsonl`` → ``pred_VG.settings.json``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.settings.json")


def _write_settings(out: Path, settings: dict[str, Any]) -> None:
    """Write the decoding settings beside the predictions; a resumed file whose earlier settings differ
    keeps their list under ``"previous"`` (its records then mix settings) and a warning says so."""
    path = settings_path(out)
    previous: list = []
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            previous = old.pop("previous", [])
            if old != settings:
                log.warning("%s: earlier records of %s were written with other settings (kept under 'previous')",
                            path, out.name)
                previous = [*previous, old]
        except (OSError, ValueError, AttributeError):
            log.warning("%s: unreadable settings file replaced", path)
    data = dict(settings, previous=previous) if previous else settings
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _decoding_record(model: Any, processor: Any, *, select: str, n: int, tokens: int, temperature: float,
                     top_p: float, length_factor: float | None, box_weight: float, seed: int, batch_size: int,
                     box_style: str, boxes: Any) -> dict[str, Any]:
    """What decided the answers: the complete ``generate`` settings (greedy, and the SASG samples), the
    selection, seed, batch grid and the image budget."""
    from clinkd.infer.generate import decoding_settings
    from clinkd.model.processor import pixel_budget

    lo, hi = pixel_budget(processor)
    rec: dict[str, Any] = {
        "model": str(getattr(model, "name_or_path", "") or ""),
        "select": select,
        "greedy": decoding_settings(max_new_tokens=tokens),
        "seed": seed, "batch_size": batch_size, "box_style": box_style,
        "min_pixels": lo, "max_pixels": hi,
        "box_convention": boxes.convention.key, "questions_converted": boxes.convert_questions,
        "model_generation_config": "not used: every generate call runs with the settings above",
    }
    if n:
        rec["sampled"] = decoding_settings(max_new_tokens=tokens, do_sample=True, temperature=temperature,
                                           top_p=top_p, top_k=0, num_return_sequences=n)
        rec.update(candidates=n, length_factor=length_factor, box_weight=box_weight)
    return rec


def _record(i: int, sample: Sample, answer: str, box_style: str) -> dict[str, Any]:
    """One prediction record: ``response`` in Med-GRIT form (the answer as read back from the model's box
    convention, in ``box_style`` markup), ``raw_response`` the model's own text when that differs."""
    raw = getattr(answer, "raw", answer)
    response = raw if box_style == "raw" else convert_markup(str(answer), box_style)  # type: ignore[arg-type]
    turn = sample.turns[0]
    rec = {"id": i, "image": Path(sample.image).name, "question": turn.question, "annotation": turn.answer,
           "response": response}
    if raw != response:
        rec["raw_response"] = raw
    return rec


def _append(f, records: list[dict]) -> None:
    """Write whole lines, then flush and fsync: after a crash the file ends at a batch boundary or
    with one torn line, which :func:`repair_tail` removes."""
    f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    f.flush()
    os.fsync(f.fileno())


# -- the run ----------------------------------------------------------------------------------------
def predict_file(
    model: Any,
    test_file: str | PathLike,
    out: str | PathLike,
    *,
    processor: Any = None,
    task: str | None = None,
    image_dir: str | PathLike | None = None,
    select: str = "greedy",
    candidates: int = 5,
    temperature: float = 0.7,
    top_p: float = 0.9,
    box_weight: float = 0.5,
    length_factor: float | None = 2.0,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    box_style: str = "qwen",
    question_box_style: str | None = "auto",
    seed: int = 0,
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
        out: the prediction file; created, or repaired and resumed when it exists.
        task: VG/RO/GC/MII; default from the file name. Chooses the default ``max_new_tokens``
            (:data:`MAX_NEW_TOKENS`: 80, 100 for MII).
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

    The complete decoding settings (every ``generate`` field, greedy and sampled), the seed and the
    image budget are written beside ``out`` as ``<stem>.settings.json`` (:func:`settings_path`).
    """
    if select not in ("greedy", "sasg"):
        raise ClinkdError(f"unknown selection {select!r}; choose greedy or sasg")
    if box_style not in BOX_STYLES:
        raise ClinkdError(f"unknown box style {box_style!r}; choose from {', '.join(BOX_STYLES)}")
    if batch_size < 1 or (select == "sasg" and candidates < 1):
        raise ClinkdError("batch_size and (for sasg) candidates must be at least 1")
    if question_box_style not in ("auto", None, *BOX_STYLES):
        raise ClinkdError(f"unknown question box style {question_box_style!r}; choose from auto, "
                          f"{', '.join(BOX_STYLES)}")
    test_file, out = Path(test_file), Path(out)
    if not test_file.is_file():
        raise DataError("test file not found", test_file)
    task = task or task_from_name(test_file.name)
    samples = read_samples(test_file, fmt="test", task=task)
    if limit is not None:
        samples = samples[:limit]
    image_dir = Path(image_dir) if image_dir is not None else _default_image_dir(test_file)
    if out.is_dir():
        raise ClinkdError(f"{out} is a folder; give a .jsonl file to write the predictions to")
    repaired = repair_tail(out)
    done = read_done_ids(out, samples)
    # fixed batch grid: a resumed run recomputes a half-written batch whole, as the first run computed it
    grid = [range(s, min(s + batch_size, len(samples))) for s in range(0, len(samples), batch_size)]
    todo = [i for ids in grid for i in ids if i not in done]
    starts = [ids.start for ids in grid if any(i not in done for i in ids)]
    missing = [(i, p) for i in todo if not (p := resolve_image(samples[i], image_dir)).is_file()]
    if missing:
        i, p = missing[0]
        raise DataError(f"image {p} not found ({len(missing)} image(s) missing; pass --images DIR?)", test_file, i)
    summary = PredictSummary(out, task, len(samples), len(done & set(range(len(samples)))), 0, repaired)
    if not todo:
        log.info("%s: all %d records already written", out, len(samples))
        return summary
    model, processor = _load_model(model, processor, device, min_pixels, max_pixels)
    qstyle = None if question_box_style in ("auto", "raw", None) else question_box_style
    codec = _question_codec(question_box_style, model, processor)
    tokens = max_new_tokens or MAX_NEW_TOKENS.get(task, 80)
    n = candidates if select == "sasg" else 0
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_settings(out, _decoding_record(model, processor, select=select, n=n, tokens=tokens,
                                          temperature=temperature, top_p=top_p, length_factor=length_factor,
                                          box_weight=box_weight, seed=seed, batch_size=batch_size,
                                          box_style=box_style, boxes=codec))
    if select == "sasg" and embedder is None:
        embedder = Embedder()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        label = progress if isinstance(progress, str) else f"{task or test_file.stem} ({select})"
        bar = tqdm(total=len(samples), initial=summary.done_before, desc=label, unit="q")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch.random.fork_rng(), open(out, "a", encoding="utf-8") as f:  # seeds below stay local
            for start in starts:
                ids = range(start, min(start + batch_size, len(samples)))
                batch = [samples[i] for i in ids]
                images = [load_image(resolve_image(s, image_dir)) for s in batch]
                prompts = [s.prompts()[0] for s in batch]
                if qstyle is not None:  # a markup asked for (the record keeps the test file's question)
                    prompts = [convert_markup(q, qstyle) for q in prompts]  # type: ignore[arg-type]
                torch.manual_seed(seed + start // batch_size)
                cands = generate_candidates(model, processor, images, prompts, n=n, max_new_tokens=tokens,
                                            temperature=temperature, top_p=top_p, length_factor=length_factor,
                                            boxes=codec)
                if n:
                    chosen = select_answers(cands, embedder, box_weight)  # type: ignore[arg-type]
                    answers = [c.answer for c in chosen]
                else:
                    answers = [c[0] for c in cands]
                records = []
                for k, (i, s, a) in enumerate(zip(ids, batch, answers)):
                    if i in done:
                        continue
                    rec = _record(i, s, a, box_style)
                    if n and save_candidates:
                        rec["sasg"] = chosen[k].to_dict()
                    records.append(rec)
                _append(f, records)
                summary.written += len(records)
                if bar is not None:
                    bar.update(len(records))
    finally:
        if bar is not None:
            bar.close()
    return summary


def predict_dataset(
    model: Any,
    data_dir: str | PathLike,
    out_dir: str | PathLike,
    *,
    tasks: str | list[str] = "all",
    processor: Any = None,
    **kwargs: Any,
) -> dict[str, PredictSummary]:
    """Answer the test files of a dataset folder: ``out_dir/pred_<TASK>.jsonl`` for each task.

    ``tasks``: ``"all"`` (every test file present) or task codes. ``kwargs`` go to :func:`predict_file`
    (``image_dir`` defaults to the folder's images). The model is loaded once.
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
    kwargs.setdefault("image_dir", files.image_dir)
    if kwargs.get("select") == "sasg" and kwargs.get("embedder") is None:
        kwargs["embedder"] = Embedder()  # one cache for all tasks
    model, processor = _load_model(model, processor, kwargs.pop("device", None), kwargs.pop("min_pixels", None),
                                   kwargs.pop("max_pixels", None))
    out_dir = Path(out_dir)
    return {t: predict_file(model, files.test[t], out_dir / f"pred_{t}.jsonl", processor=processor, task=t, **kwargs)
            for t in wanted}
