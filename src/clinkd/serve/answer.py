"""What the web app does, as plain functions: no Gradio here, so every refusal and answer is unit-testable.

One request is ``(uploaded file, task, free question, object name, region)``:

1. :func:`read_upload` refuses a file over the size limit, of a kind the app does not take, or that
   does not decode (:class:`~clinkd.errors.ImageLoadError`'s reason, the decoded-size budget of
   :func:`~clinkd.data.images.load_image` included), and returns an RGB image. It is the one place
   the app decodes an upload, once: the app keeps the image and deletes the file.
2. :func:`build_question` turns a task preset (the first phrasing of each Med-GRIT task in
   :mod:`clinkd.data.synth.templates`) or the free question into the text sent to the model, after
   :func:`check_text` refused a field that is too long or holds a chat special token (``<|im_end|>``
   ... with which typed text could fake a turn of the conversation).
3. :class:`Answerer` answers it: greedy, or SASG (the semantic medoid of the greedy answer and N sampled
   candidates, docs/method.md §4, via :func:`clinkd.infer.similarity.select_medoid`).
4. :func:`grounded_items` / :func:`readable` / :func:`box_rows` turn the markup into what is shown: the
   boxes drawn on the image, the text with boxes in pixels, a table.

Everything the user did wrong raises :class:`ServeError`, whose message the app shows as is.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from clinkd.data.boxes import BOX_DELIMITERS, Box, parse_box_body
from clinkd.data.draw import draw_annotations
from clinkd.data.images import load_image
from clinkd.data.sample import special_tokens_in
from clinkd.data.synth.templates import GC_QUESTIONS, MII_QUESTIONS, RO_QUESTIONS, VG_QUESTIONS
from clinkd.errors import BoxParseError, ClinkdError, ImageLoadError
from clinkd.infer.ask import labelled_boxes, scan_markup
from clinkd.infer.defaults import DEFAULTS
from clinkd.serve.limits import MAX_QUESTION_CHARS

__all__ = [
    "ACCEPTED_SUFFIXES",
    "ASKED_LABEL",
    "FREE",
    "MAX_QUESTION_CHARS",
    "TASKS",
    "Answerer",
    "Result",
    "ServeError",
    "TaskSpec",
    "ask",
    "box_rows",
    "build_question",
    "check_text",
    "grounded_items",
    "parse_region",
    "read_upload",
    "readable",
]

ACCEPTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".nii", ".nii.gz")
ASKED_LABEL = "asked region"  # label of the boxes the question itself points at


class ServeError(ClinkdError):
    """A request the app refuses; the message tells the user what to change."""


@dataclass(frozen=True)
class TaskSpec:
    """A task preset: which fields it needs and the question phrasing it fills in."""

    key: str  # Med-GRIT task name, or "free"
    label: str  # shown in the dropdown
    template: str | None = None  # with {ref} (VG) or {box} (RO, GC); None: the free question
    needs_object: bool = False
    needs_region: bool = False


FREE = "Free question"
TASKS: dict[str, TaskSpec] = {
    t.label: t
    for t in (
        TaskSpec("free", FREE),
        TaskSpec("VG", "VG: locate an object", VG_QUESTIONS[0], needs_object=True),
        TaskSpec("RO", "RO: identify the object in a region", RO_QUESTIONS[0], needs_region=True),
        TaskSpec("GC", "GC: describe a region", GC_QUESTIONS[0], needs_region=True),
        TaskSpec("MII", "MII: analyse the image", MII_QUESTIONS[0]),
    )
}


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MB"


def read_upload(path: str | Path | None, max_bytes: int) -> Image.Image:
    """The uploaded file as an RGB image, or :class:`ServeError` saying why not."""
    if path is None or str(path) == "":
        raise ServeError("upload an image first (PNG, JPEG, DICOM or NIfTI)")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ServeError(f"{name}: the uploaded file is gone; upload it again")
    size = path.stat().st_size
    if size > max_bytes:
        raise ServeError(f"{name} is {_mb(size)}; the limit is {_mb(max_bytes)}. Upload a smaller image")
    if not name.lower().endswith(ACCEPTED_SUFFIXES):
        raise ServeError(f"{name}: not an accepted image file; upload one of {', '.join(ACCEPTED_SUFFIXES)}")
    try:
        return load_image(path)
    except ImageLoadError as err:  # the reason without the server-side temporary path
        raise ServeError(f"{name} is not a readable image: {err.reason}") from None


def check_text(what: str, text: str | None, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """``text`` (a typed field, named ``what`` in messages) unchanged, or :class:`ServeError` when it is
    longer than ``max_chars`` or holds a chat special token (:func:`clinkd.data.sample.special_tokens_in`)."""
    text = text or ""
    if len(text) > max_chars:
        raise ServeError(
            f"the {what} is {len(text):,} characters long; the limit is {max_chars:,}. Shorten it"
        )
    tokens = special_tokens_in(text)
    if tokens:
        raise ServeError(
            f"the {what} contains the special token{'s' * (len(tokens) > 1)} {', '.join(tokens)}, "
            "which only the app may write; remove it"
        )
    return text


def parse_region(text: str) -> Box:
    """``(x1,y1),(x2,y2)`` on the 0–1000 scale (``<box>`` tags allowed) → a valid :class:`Box`."""
    body = re.sub(BOX_DELIMITERS, "", text or "").strip()
    if not body:
        raise ServeError("this task needs a region: type a box as (x1,y1),(x2,y2) on the 0-1000 scale")
    try:
        box, _ = parse_box_body(body, scale="norm1000")
    except BoxParseError:
        raise ServeError(
            f"cannot read the region {body[:60]!r}: write it as (x1,y1),(x2,y2), e.g. (120,340),(260,512)"
        ) from None
    problems = box.problems() or (["the box is empty"] if box.area == 0 else [])
    if problems:
        raise ServeError(f"bad region: {'; '.join(problems)}")
    return box


def build_question(
    task: str,
    question: str = "",
    object_name: str = "",
    region: str = "",
    *,
    max_chars: int = MAX_QUESTION_CHARS,
) -> str:
    """The text sent to the model for a task preset (by dropdown label or key) or a free question.

    Only the field the task uses is read and checked (:func:`check_text`, at most ``max_chars``): the
    hidden ones may still hold what was typed for another task.
    """
    spec = TASKS.get(task) or next((t for t in TASKS.values() if t.key == task), None)
    if spec is None:
        raise ServeError(f"unknown task {str(task)[:60]!r}; choose one of {list(TASKS)}")
    if spec.template is None:
        question = check_text("question", question, max_chars)
        if not question.strip():
            raise ServeError("type a question, or choose a task")
        return question.strip()
    if spec.needs_object:
        name = " ".join(check_text("object name", object_name, max_chars).split())
        if not name:
            raise ServeError(f"{spec.key} needs the name of the object to locate (e.g. liver)")
        return spec.template.format(ref=f"<ref>{name}</ref>")
    if spec.needs_region:
        region = check_text("region", region, max_chars)
        return spec.template.format(box=parse_region(region).rounded().to_markup("qwen"))
    return spec.template


def grounded_items(text: str, default_label: str | None = None) -> list[tuple[str | None, Box]]:
    """Every parseable box of ``text`` with its label (last ``<ref>`` before it, else ``default_label``)."""
    return [(label or default_label, box) for label, box in labelled_boxes(text)]


def readable(text: str, width: int, height: int) -> str:
    """``text`` with its markup spelled out: refs as «name», boxes as 0–1000 coordinates and pixels."""
    out, last = [], 0
    for m, _, box in scan_markup(text):
        out.append(text[last : m.start()])
        last = m.end()
        if box is None and m.group("ref") is not None:
            out.append(f"«{m.group('ref').strip()}»")
        elif box is None:
            out.append(f"[unreadable box {m.group('box')[:40]!r}]")
        else:
            x1, y1, x2, y2 = (round(v) for v in box.to_pixels(width, height))
            out.append(f" [box {box.to_text()} = pixels ({x1},{y1})-({x2},{y2})]")
    out.append(text[last:])
    # control characters and U+FFFD (undecodable byte tokens, typical of an untrained model) only garble the box
    kept = (ch for ch in "".join(out) if (ch.isprintable() or ch.isspace()) and ch != "\ufffd")
    return " ".join("".join(kept).split())


def box_rows(items: list[tuple[str | None, Box]], width: int, height: int) -> list[list[str]]:
    """Table rows ``[label, box on 0–1000, box in pixels]`` for the boxes shown on the image."""
    rows = []
    for label, box in items:
        x1, y1, x2, y2 = (round(v) for v in box.to_pixels(width, height))
        rows.append([label or "(no label)", box.to_text(), f"({x1},{y1}),({x2},{y2})"])
    return rows


@dataclass
class Answerer:
    """One question about one image → one answer, with the loaded model.

    Args:
        model, processor: as :func:`clinkd.model.load` returns them.
        select: ``"greedy"`` or ``"sasg"`` (greedy answer + ``candidates`` sampled ones, medoid returned).
        candidates: sampled candidates for SASG.
        max_new_tokens: answer length limit.
        temperature, top_p: sampling settings of the SASG candidates.
        embedder: a :class:`clinkd.infer.similarity.Embedder` (SASG only; built on first use when None).
    """

    model: Any
    processor: Any
    select: str = DEFAULTS.select
    candidates: int = DEFAULTS.candidates
    max_new_tokens: int = DEFAULTS.max_new_tokens
    temperature: float = DEFAULTS.temperature
    top_p: float = DEFAULTS.top_p
    embedder: Any = field(default=None, repr=False)

    def __post_init__(self):
        if self.select not in ("greedy", "sasg"):
            raise ClinkdError(f"select must be 'greedy' or 'sasg', got {self.select!r}")
        if self.select == "sasg" and self.candidates < 1:
            raise ClinkdError("SASG needs at least one sampled candidate")

    @property
    def rope_scheme(self) -> str:
        settings = getattr(self.model, "rope_settings", None)
        return getattr(settings, "scheme", "unknown")

    def __call__(self, image: Image.Image, question: str) -> str:
        if self.select == "greedy":
            from clinkd.infer.generate import generate_answers

            return generate_answers(
                self.model, self.processor, [image], [question], max_new_tokens=self.max_new_tokens
            )[0][0]
        # the same SASG as `clinkd infer --select sasg`: one generate call, greedy first, medoid chosen
        from clinkd.infer.sasg import generate_candidates, select_answers
        from clinkd.infer.similarity import Embedder

        cands = generate_candidates(
            self.model,
            self.processor,
            [image],
            [question],
            n=self.candidates,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
        )
        if self.embedder is None:
            self.embedder = Embedder()
        return select_answers(cands, self.embedder, DEFAULTS.box_weight)[0].answer


@dataclass
class Result:
    """What the app shows for one answered request."""

    question: str  # as sent to the model
    answer: str  # what the model wrote, in its own box convention
    text: str  # :func:`readable` answer
    image: Image.Image  # upload with the asked region and the answer's boxes drawn
    rows: list[list[str]]  # :func:`box_rows`
    seconds: float


def ask(
    answerer,
    upload: Image.Image | str | Path | None,
    task: str,
    question: str = "",
    object_name: str = "",
    region: str = "",
    *,
    max_bytes: int = 20 * 2**20,
    max_question_chars: int = MAX_QUESTION_CHARS,
) -> Result:
    """The whole request: build the question, read the upload, answer, draw. Raises ServeError.

    ``upload`` is the image :func:`read_upload` returned (the app's way: decoded once, when uploaded),
    or the path of an uploaded file, read here; None when nothing was uploaded.
    """
    question_text = build_question(
        task, question, object_name, region, max_chars=max_question_chars
    )  # cheap first
    image = upload if isinstance(upload, Image.Image) else read_upload(upload, max_bytes)
    start = time.perf_counter()
    answer = answerer(image, question_text)
    seconds = time.perf_counter() - start
    items = grounded_items(question_text, ASKED_LABEL) + grounded_items(answer)
    w, h = image.size
    text = readable(answer, w, h) or (
        "(no readable text: see Details, raw answer)"
        if answer.strip()
        else "(the model gave an empty answer)"
    )
    return Result(
        question_text,
        getattr(answer, "raw", answer),
        text,
        draw_annotations(image, items),
        box_rows(items, w, h),
        seconds,
    )
