"""Ask one question about one image (PNG/JPEG/DICOM/NIfTI) and draw the answer's boxes on it.

``clinkd ask`` is the smallest end-to-end use of a model: :func:`ask_image` loads the image with
:func:`clinkd.data.load_image` (DICOM windowed, NIfTI middle slice), answers greedily or with SASG, and
writes a copy of the image with every box of the answer drawn and labelled by the object it refers to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from clinkd.data.boxes import (
    BOX_CLOSE,
    BOX_OPEN,
    REF_CLOSE,
    REF_OPEN,
    Box,
    BoxParseError,
    convert_markup,
    parse_box_body,
)
from clinkd.data.draw import draw_annotations
from clinkd.data.images import NIFTI_SUFFIXES, load_image
from clinkd.data.sample import check_question
from clinkd.errors import ClinkdError
from clinkd.infer.defaults import DEFAULTS
from clinkd.infer.sasg import generate_candidates, select_answers
from clinkd.infer.similarity import Embedder
from clinkd.paths import output_file

__all__ = [
    "DRAW_SUFFIXES",
    "Answer",
    "ask_image",
    "check_question",
    "default_output",
    "labelled_boxes",
    "scan_markup",
]

#: File types the annotated copy can be written as (chosen by the --out suffix).
DRAW_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# a referred name or a box, in any of the markup styles, in order of appearance
_ITEM_RE = re.compile(rf"{REF_OPEN}(?P<ref>.*?){REF_CLOSE}|{BOX_OPEN}(?P<box>.*?){BOX_CLOSE}", re.S)


@dataclass
class Answer:
    """The answer to one question: its text (read back from the model's box convention into Med-GRIT
    ``<box>`` markup, 0–1000 of the image), its labelled boxes, where the annotated image went, with SASG
    the candidates and their agreement scores, and ``raw``: what the model wrote, in its own convention."""

    text: str
    boxes: list[tuple[str | None, Box]]
    image_out: Path | None
    candidates: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    raw: str = ""


def scan_markup(text: str) -> Iterator[tuple[re.Match, str | None, Box | None]]:
    """``(match, label, box)`` for each ``<ref>`` or box tag of ``text``, in order of appearance.

    ``label`` is the latest ``<ref>`` name so far (blanks collapsed; None before the first); ``box`` is
    None for a ref tag and for a box the model wrote malformed.
    """
    label = None
    for m in _ITEM_RE.finditer(text):
        if m.group("ref") is not None:
            label = " ".join(m.group("ref").split()) or None
            yield m, label, None
            continue
        try:
            box = parse_box_body(m.group("box"))[0]
        except BoxParseError:
            box = None  # a malformed box from the model: nothing to draw
        yield m, label, box


def labelled_boxes(text: str) -> list[tuple[str | None, Box]]:
    """``(label, box)`` for every box of ``text``; a box is labelled by the latest ``<ref>`` before it.

    >>> labelled_boxes("<ref>liver</ref><box>(10,20),(300,400)</box> and <box>(1,2),(3,4)</box>")[1][0]
    'liver'
    """
    return [(label, box) for _, label, box in scan_markup(text) if box is not None]


def default_output(image: str | PathLike) -> Path:
    """``<stem>_answer.png`` beside the image (``scan.nii.gz`` → ``scan_answer.png``)."""
    p = Path(image)
    name = p.name
    for suffix in NIFTI_SUFFIXES[::-1]:  # .nii.gz before .nii
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = p.stem
    return p.with_name(f"{name}_answer.png")


def ask_image(
    model: Any,
    image: str | PathLike,
    question: str,
    *,
    processor: Any = None,
    out: str | PathLike | None = None,
    draw: bool = True,
    select: str = DEFAULTS.select,
    candidates: int = DEFAULTS.candidates,
    temperature: float = DEFAULTS.temperature,
    top_p: float = DEFAULTS.top_p,
    max_new_tokens: int = DEFAULTS.max_new_tokens,
    seed: int = DEFAULTS.seed,
    embedder: Embedder | None = None,
    device: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> Answer:
    """Answer ``question`` about ``image`` and (``draw``) write the annotated copy to ``out``.

    Args:
        model: a model directory or a loaded model (then pass ``processor``).
        image: PNG/JPEG/DICOM/NIfTI file.
        question: the question, without an ``<img>`` tag (one is stripped if present).
        out: annotated PNG; default :func:`default_output` (``<stem>_answer.png`` beside the image).
        select: ``greedy`` or ``sasg`` (greedy + ``candidates`` samples, semantic medoid).
        max_new_tokens: default :attr:`DEFAULTS.max_new_tokens <clinkd.infer.defaults.InferenceDefaults.max_new_tokens>`
            (100, the release's setting for image analysis, the longest answers).
        min_pixels, max_pixels: image budget (:func:`clinkd.model.load`; default: the release's
            512·512 .. 1024·1024 for a real checkpoint, a tiny model's own).
    """
    from clinkd.data.sample import strip_image_tag
    from clinkd.infer.inputs import load_for_inference
    from clinkd.infer.options import check_decoding_args
    from clinkd.paths import same_file

    check_decoding_args(
        select=select,
        candidates=candidates,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    if not question.strip():
        raise ClinkdError("the question is empty")
    check_question(question)
    target = None
    if draw:  # checked before any work: never after a minute of generation, never over the input image
        target = output_file(
            out if out is not None else default_output(image),
            what="annotated image (--out)",
            create_parent=False,
        )
        if target.suffix.lower() not in DRAW_SUFFIXES:
            raise ClinkdError(
                f"annotated image (--out) {target}: cannot write a {target.suffix or 'suffix-less'} "
                f"file; end the name with one of {', '.join(DRAW_SUFFIXES)}"
            )
        if same_file(target, Path(image)):
            raise ClinkdError(
                f"annotated image (--out) {target} is the input image; writing there would destroy it — "
                "give another --out"
            )
    pil = load_image(image)  # raises ImageLoadError naming the file
    model, processor = load_for_inference(model, processor, device, min_pixels, max_pixels)
    n = candidates if select == "sasg" else 0
    with torch.random.fork_rng():  # the seed stays local to this call
        torch.manual_seed(seed)
        (cands,) = generate_candidates(
            model,
            processor,
            [pil],
            [strip_image_tag(question)[0]],
            n=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
        )
    scores: list[float] = []
    text: str = cands[0]  # a generate.Answer, a str with .raw (Selection.answer is typed str)
    if n:
        (choice,) = select_answers([cands], embedder or Embedder())
        text, scores = choice.answer, choice.scores
    raw = getattr(text, "raw", text)
    text = convert_markup(text, "qwen")
    boxes = labelled_boxes(text)
    if target is not None:
        output_file(target, what="annotated image (--out)")  # its folder, created now
        draw_annotations(pil, boxes).save(target)
    return Answer(text, boxes, target, list(cands) if n else [], scores, raw)
