"""Box conventions: how each model family writes a box, and the one reader of every form back to Med-GRIT.

The three families clinkd fine-tunes were pretrained to ground in different coordinates and answer forms
(verified against their own documentation; sources in ``docs/platform.md`` and the README):

============  =====================================================  ==========================================
convention    coordinates                                            answer form
============  =====================================================  ==========================================
``medgrit``   integers 0–1000 of the image (the Med-GRIT files)       ``<ref>name</ref><box>(x1,y1),(x2,y2)</box>``
``qwen2_vl``  integers 0–1000 of the image                            ``<|object_ref_start|>name<|object_ref_end|>``
                                                                     ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``
``qwen2_5_vl`` absolute pixels of the image *after* ``smart_resize``  JSON ``[{"bbox_2d": [x1, y1, x2, y2],``
              (what the model is fed: depends on min/max pixels)      ``"label": "name"}]`` in a ```json fence
``qwen3_vl``  integers 0–1000 of the image                            the same JSON
============  =====================================================  ==========================================

clinkd keeps every text in the Med-GRIT form inside (datasets, pseudo-labels, corrections, prediction
files) and converts only at the model's boundary: :func:`to_model` writes a Med-GRIT text in a
convention (training targets and prompts), :func:`read_answer` reads whatever a model wrote back into
Med-GRIT 0–1000 ``<box>`` markup. The reader accepts every form of every family whatever the model's
convention: markup in any of the three syntaxes, JSON with ``bbox_2d`` (or ``bbox``/``box_2d``) with or
without a code fence, single objects or lists, the ``point_2d`` variant (a point becomes a zero-area box:
visible in the file, never a hit), a bare ``[x1, y1, x2, y2]`` answer, and relative 0–1 floats. The numbers
are read in the convention's coordinates. Malformed answers never raise: what cannot be read stays as text
and :attr:`Reading.problems` says why, so the score sees "no box".

Round trip. A 0–1000 convention keeps the integers, so Med-GRIT → model → Med-GRIT is exact. Through the
absolute pixels of a ``W'``×``H'`` resized image a coordinate moves by at most ``500/W' + 0.5`` units
(rounding to a pixel, then to 0–1000): within one unit of the coarser of the two grids.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from clinkd.data.boxes import (
    BOX_CLOSE,
    BOX_OPEN,
    NORM,
    REF_CLOSE,
    REF_OPEN,
    STYLES,
    Box,
    Style,
    format_grounding,
)
from clinkd.errors import ClinkdError

__all__ = [
    "CONVENTIONS",
    "NATIVE",
    "BoxCodec",
    "Convention",
    "Reading",
    "convention_named",
    "native_convention",
    "read_answer",
    "resized_size",
    "to_model",
]

Frame = Literal["norm1000", "resized"]
Form = Literal["markup", "json"]


@dataclass(frozen=True)
class Convention:
    """How a model writes boxes: its coordinate ``frame`` and answer ``form`` (markup in ``style``, or JSON)."""

    name: str
    frame: Frame
    form: Form
    style: Style = "qwen"

    @property
    def key(self) -> str:
        """The name stored in a model's config (``medgrit:qwen2`` for Med-GRIT text in Qwen2 markup)."""
        return f"{self.name}:{self.style}" if self.name == "medgrit" and self.style != "qwen" else self.name


CONVENTIONS: dict[str, Convention] = {
    "medgrit": Convention("medgrit", "norm1000", "markup", "qwen"),
    "qwen2_vl": Convention("qwen2_vl", "norm1000", "markup", "qwen2"),
    "qwen2_5_vl": Convention("qwen2_5_vl", "resized", "json"),
    "qwen3_vl": Convention("qwen3_vl", "norm1000", "json"),
}
#: model_type → the family's pretrained convention
NATIVE: dict[str, Convention] = {k: CONVENTIONS[k] for k in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")}


def convention_named(key: str) -> Convention:
    """The convention of a stored key: ``medgrit``, ``medgrit:<style>``, ``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl``."""
    name, _, style = str(key).partition(":")
    if name not in CONVENTIONS or (style and (name != "medgrit" or style not in STYLES)):
        choices = ", ".join([*CONVENTIONS, *(f"medgrit:{s}" for s in STYLES if s != "qwen")])
        raise ClinkdError(f"unknown box convention {key!r}; choose from {choices}")
    conv = CONVENTIONS[name]
    return Convention(conv.name, conv.frame, conv.form, style) if style else conv  # type: ignore[arg-type]


def native_convention(model_type: str) -> Convention:
    """The convention a family was pretrained in (``model_type`` of its config)."""
    if model_type not in NATIVE:
        raise ClinkdError(
            f"no native box convention for model_type {model_type!r}; clinkd knows {sorted(NATIVE)}"
        )
    return NATIVE[model_type]


def resized_size(
    width: int, height: int, *, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """``(width, height)`` of the image a Qwen-VL processor feeds the model: transformers' own ``smart_resize``
    (sides multiples of ``factor`` = patch size × merge size, area within the pixel budget; upstream hook:
    :data:`clinkd.upstream.smart_resize`)."""
    from clinkd.upstream import smart_resize  # here, not at the top: clinkd.data imports without transformers

    try:
        h, w = smart_resize(
            int(height), int(width), factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
        )
    except ValueError as err:  # aspect ratio above 200: the processor refuses the image too
        raise ClinkdError(f"image of {width}x{height} pixels: {err}") from err
    return int(w), int(h)


# -- numbers ----------------------------------------------------------------------------------------
def _round(v: float) -> int:
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def _to_frame(box: Box, conv: Convention, size: tuple[int, int] | None) -> list[int]:
    """A 0–1000 box as the convention's integers."""
    if conv.frame == "norm1000":
        return [_round(v) for v in box.coords]
    w, h = _need_size(size, conv)
    return [_round(v * s / NORM) for v, s in zip(box.coords, (w, h, w, h))]


def _from_frame(values: list[float], conv: Convention, size: tuple[int, int] | None, floats: bool) -> Box:
    """Four numbers as the convention writes them → a 0–1000 box (relative 0–1 floats read as such)."""
    if floats and all(abs(v) <= 1.0 for v in values):
        return Box.from_relative(*values)
    if conv.frame == "norm1000":
        return Box(*values)
    w, h = _need_size(size, conv)
    return Box.from_pixels(*values, width=w, height=h)


def _need_size(size: tuple[int, int] | None, conv: Convention) -> tuple[int, int]:
    if not size or size[0] <= 0 or size[1] <= 0:
        raise ClinkdError(
            f"the {conv.name} box convention counts pixels of the resized image: its size is needed"
        )
    return int(size[0]), int(size[1])


_NUM_RE = re.compile(r"-?\d{1,9}(?:\.\d{1,12})?")


def _numbers(body: str) -> tuple[list[float], bool] | None:
    """The four numbers of a box body in any spelling (``(x1,y1),(x2,y2)``, ``[x1, y1, x2, y2]``), or two for a
    point; with whether any is written as a float. None when the body is not that."""
    if len(body) > 200 or re.search(r"[^\d\s.,()\[\]\-]", body):
        return None
    texts = _NUM_RE.findall(body)
    if len(texts) not in (2, 4):
        return None
    values = [float(t) for t in texts]
    if len(values) == 2:  # a point
        values = values * 2
    return values, any("." in t for t in texts)


# -- segments: text, refs and groundings in markup ----------------------------------------------------
_TAG_RE = re.compile(
    rf"(?P<ref>{REF_OPEN}(?P<name>.{{0,500}}?){REF_CLOSE})|(?P<box>{BOX_OPEN}(?P<body>.{{0,500}}?){BOX_CLOSE})",
    re.S,
)


@dataclass
class _Ground:
    label: str | None
    boxes: list[Box]


def _markup_segments(text: str, conv: Convention, size, problems: list[str]) -> list[str | _Ground]:
    """``text`` cut into plain strings and groundings (a ref followed directly by its boxes, or boxes alone);
    a ref with no box is kept as a one-item grounding with no boxes."""
    out: list[str | _Ground] = []
    pos = 0
    for m in _TAG_RE.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        pos = m.end()
        if m.group("ref") is not None:
            out.append(_Ground(m.group("name").strip(), []))
            continue
        parsed = _numbers(m.group("body"))
        if parsed is None:
            problems.append(f"unreadable box {m.group(0)[:80]!r}")
            out.append(m.group(0))
            continue
        box = _from_frame(parsed[0], conv, size, parsed[1])
        last = out[-1] if out else None
        if isinstance(last, _Ground):  # adjacent to a ref or a box: the same grounding
            last.boxes.append(box)
        else:
            out.append(_Ground(None, [box]))
    if pos < len(text):
        out.append(text[pos:])
    return out


# -- writing: Med-GRIT → a convention -----------------------------------------------------------------
def _json_item(g: _Ground, box: Box, conv: Convention, size) -> dict:
    item: dict[str, Any] = {"bbox_2d": _to_frame(box, conv, size)}
    if g.label:
        item["label"] = g.label
    return item


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def to_model(text: str, conv: Convention, size: tuple[int, int] | None = None) -> str:
    """A Med-GRIT text (box/ref markup in any style, 0–1000) written in ``conv``.

    ``size``: ``(width, height)`` of the resized image the model sees (:func:`resized_size`); needed for a
    convention in absolute pixels (``qwen2_5_vl``), unused otherwise. Markup conventions in 0–1000 change
    only the delimiters (the numbers keep their spelling). JSON conventions write a text made only of
    groundings as the fenced list the family answers with, and a grounding inside prose as an inline
    object (``{"bbox_2d": [...], "label": "name"}``, a list when it has several boxes); a referred name
    without a box becomes the plain name.
    """
    if conv.form == "markup" and conv.frame == "norm1000":
        from clinkd.data.boxes import convert_markup

        return convert_markup(text, conv.style)
    segments = _markup_segments(text, CONVENTIONS["medgrit"], None, [])
    if conv.form == "markup":  # markup in absolute pixels (not a family's form; kept general)
        ref_open, ref_close, box_open, box_close = STYLES[conv.style]
        parts = []
        for s in segments:
            if isinstance(s, str):
                parts.append(s)
                continue
            head = f"{ref_open}{s.label}{ref_close}" if s.label is not None else ""
            bodies = "".join(
                f"{box_open}({a},{b}),({c},{d}){box_close}"
                for a, b, c, d in (_to_frame(x, conv, size) for x in s.boxes)
            )
            parts.append(head + bodies)
        return "".join(parts)
    grounds = [s for s in segments if isinstance(s, _Ground) and s.boxes]
    only_groundings = grounds and all(
        (isinstance(s, str) and not s.strip()) or (isinstance(s, _Ground) and s.boxes) for s in segments
    )
    if only_groundings:
        items = [_json_item(g, b, conv, size) for g in grounds for b in g.boxes]
        return "```json\n[\n" + ",\n".join("\t" + _dumps(i) for i in items) + "\n]\n```"
    parts = []
    for s in segments:
        if isinstance(s, str):
            parts.append(s)
        elif not s.boxes:
            parts.append(s.label or "")
        else:
            items = [_json_item(s, b, conv, size) for b in s.boxes]
            parts.append(_dumps(items[0] if len(items) == 1 else items))
    return "".join(parts)


# -- reading: any form → Med-GRIT ------------------------------------------------------------------------
@dataclass
class Reading:
    """A model answer read back: ``text`` in Med-GRIT form (``<ref>name</ref><box>(x1,y1),(x2,y2)</box>``,
    integers 0–1000), its groundings, and what could not be read."""

    text: str
    groundings: list[tuple[str | None, list[Box]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def boxes(self) -> list[Box]:
        return [b for _, bs in self.groundings for b in bs]


_BOX_KEYS = ("bbox_2d", "bbox", "box_2d", "box")
_POINT_KEYS = ("point_2d", "point")
_LABEL_KEYS = ("label", "name", "text", "category", "object")
_KEY_RE = re.compile(r'["\'](?:bbox_2d|bbox|box_2d|box|point_2d|point)["\']\s*:')
_FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)(?:```|\Z)", re.S)
# a bbox_2d array (or point) whose object did not decode as JSON (truncated, single quotes, trailing comma)
_LOOSE_RE = re.compile(
    r"""["']?(bbox_2d|bbox|box_2d|point_2d|point)["']?\s*:\s*\[([^\[\]{}]{0,120})\]"""
    r"""(?:[^{}\[\]]{0,40}?["']?(?:label|name)["']?\s*:\s*["']([^"'\n]{0,200})["'])?"""
)


_BAD = object()


def _decode(text: str) -> Any:
    """``json.loads`` that answers :data:`_BAD` for anything that is not JSON (deep nesting included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _BAD


def _grounding_of(obj: Any, conv: Convention, size, problems: list[str]) -> list[_Ground] | None:
    """The groundings of a decoded JSON value: an object with a box/point key, a list of them, a bare
    ``[x1, y1, x2, y2]`` or a list of those. None when the value is not a grounding."""
    if isinstance(obj, dict):
        label = next(
            (str(obj[k]).strip() for k in _LABEL_KEYS if isinstance(obj.get(k), (str, int, float))), None
        )
        for k in (*_BOX_KEYS, *_POINT_KEYS):
            if k in obj:
                box = _box_value(obj[k], conv, size, point=k in _POINT_KEYS)
                if box is None:
                    problems.append(f"unreadable {k} {_dumps(obj[k])[:60]}")
                    return None
                if k in _POINT_KEYS:
                    problems.append("a point, not a box: read as a zero-area box")
                return [_Ground(label, [box])]
        return None
    if isinstance(obj, list) and obj:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            box = _box_value(obj, conv, size, point=False)
            return None if box is None else [_Ground(None, [box])]
        out: list[_Ground] = []
        for v in obj:
            got = _grounding_of(v, conv, size, problems)
            if got is None:
                return None
            out += got
        return out
    return None


def _box_value(v: Any, conv: Convention, size, point: bool) -> Box | None:
    if isinstance(v, list) and len(v) == 2 and all(isinstance(p, list) for p in v):
        v = [*v[0], *v[1]]  # [[x1, y1], [x2, y2]]
    n = 2 if point else 4
    if not (
        isinstance(v, list)
        and len(v) == n
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    ):
        return None
    values = [float(x) for x in v] * (2 if point else 1)
    return _from_frame(values, conv, size, any(isinstance(x, float) and not float(x).is_integer() for x in v))


def _json_spans(
    text: str, conv: Convention, size, problems: list[str]
) -> list[tuple[int, int, list[_Ground]]]:
    """Where ``text`` holds JSON groundings: fenced blocks, objects/lists around a box key, then loose
    ``"bbox_2d": [...]`` fragments of JSON that does not decode."""
    spans: list[tuple[int, int, list[_Ground]]] = []
    decoder = json.JSONDecoder()

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e, _ in spans)

    for m in _FENCE_RE.finditer(text):
        body = m.group(1).strip()
        obj = _decode(body)
        if obj is _BAD:
            if _KEY_RE.search(body):
                problems.append("a JSON block that does not decode")
            continue  # its fragments are read below
        got = _grounding_of(obj, conv, size, problems)
        if got is not None:
            spans.append((m.start(), m.end(), got))
    if not spans and text.strip()[:1] == "[":  # a bare answer: [x1, y1, x2, y2] or a list of them
        obj = _decode(text.strip())
        got = None if obj is _BAD else _grounding_of(obj, conv, size, problems)
        if got is not None:
            start = text.index("[")
            spans.append((start, len(text.rstrip()), got))
    for m in _KEY_RE.finditer(text):
        if not free(m.start(), m.end()):
            continue
        obj_start = text.rfind("{", 0, m.start())
        if obj_start < 0:
            continue
        starts = [obj_start]
        before = text[:obj_start].rstrip()
        if before.endswith("["):
            starts.insert(0, len(before) - 1)  # the list the object opens
        for st in starts:
            try:
                obj, end = decoder.raw_decode(text, st)
            except (ValueError, RecursionError):
                continue
            got = _grounding_of(obj, conv, size, problems)
            if got is not None and free(st, end):
                spans.append((st, end, got))
                break
    for m in _LOOSE_RE.finditer(text):
        if not free(m.start(), m.end()):
            continue
        key, body, label = m.group(1), m.group(2), m.group(3)
        parsed = _numbers(body)
        if parsed is None or len(_NUM_RE.findall(body)) != (2 if key in _POINT_KEYS else 4):
            problems.append(f"unreadable {key} [{body[:60]}]")
            continue
        problems.append(f"{key} read from JSON that does not decode")
        start, end = m.start(), m.end()
        opened = re.search(r"\{\s*$", text[max(0, start - 20) : start])
        closed = re.match(r"\s*,?\s*\}", text[end : end + 20])
        if opened and closed:  # the whole broken object goes
            start, end = start - (len(text[max(0, start - 20) : start]) - opened.start()), end + closed.end()
        spans.append(
            (
                start,
                end,
                [_Ground(label.strip() if label else None, [_from_frame(parsed[0], conv, size, parsed[1])])],
            )
        )
    spans.sort(key=lambda s: s[0])
    return spans


def _merge(grounds: list[_Ground]) -> list[_Ground]:
    """Consecutive groundings of one label become one (``<ref>a</ref><box>..</box><box>..</box>``)."""
    out: list[_Ground] = []
    for g in grounds:
        if out and out[-1].label == g.label and g.label is not None and out[-1].boxes and g.boxes:
            out[-1].boxes.extend(g.boxes)
        else:
            out.append(_Ground(g.label, list(g.boxes)))
    return out


def _medgrit(grounds: list[_Ground]) -> str:
    return "".join(
        format_grounding(g.label, [b.rounded() for b in g.boxes]) if g.boxes else f"<ref>{g.label}</ref>"
        for g in grounds
    )


def read_answer(text: str, conv: Convention, size: tuple[int, int] | None = None) -> Reading:
    """Read a model's answer written in any form (see the module docstring) into Med-GRIT form.

    ``conv`` decides how the numbers are read (0–1000, or absolute pixels of the resized image of
    ``size`` = ``(width, height)``); the syntax is recognised whatever ``conv`` says. Never raises on
    the answer's content: what cannot be read is kept as text and listed in ``problems``.
    """
    if not isinstance(text, str):
        return Reading("", problems=[f"not a text: {type(text).__name__}"])
    problems: list[str] = []
    if conv.frame == "resized" and not size:
        return Reading(text, problems=["no image size: absolute coordinates cannot be read"])
    grounds_all: list[tuple[str | None, list[Box]]] = []
    parts: list[str] = []
    pos = 0
    for start, end, grounds in _json_spans(text, conv, size, problems):
        if start < pos:
            continue
        parts.append(_read_markup(text[pos:start], conv, size, problems, grounds_all))
        merged = _merge(grounds)
        grounds_all += [(g.label, [b.rounded() for b in g.boxes]) for g in merged if g.boxes]
        parts.append(_medgrit(merged))
        pos = end
    parts.append(_read_markup(text[pos:], conv, size, problems, grounds_all))
    return Reading("".join(parts), grounds_all, _counted(problems))


def _counted(problems: list[str]) -> list[str]:
    """Each problem once, in order, with how many times it occurred."""
    counts: dict[str, int] = {}
    for p in problems:
        counts[p] = counts.get(p, 0) + 1
    return [p if n == 1 else f"{p} (x{n})" for p, n in counts.items()]


def _read_markup(text: str, conv: Convention, size, problems: list[str], grounds_all: list) -> str:
    out = []
    for s in _markup_segments(text, conv, size, problems):
        if isinstance(s, str):
            out.append(s)
        else:
            out.append(_medgrit([s]))
            if s.boxes:
                grounds_all.append((s.label, [b.rounded() for b in s.boxes]))
    return "".join(out)


# -- a model's codec: its convention and its resize --------------------------------------------------------
@dataclass(frozen=True)
class BoxCodec:
    """A model's convention bound to its processor's resize: converts at the model's boundary.

    ``factor`` (patch × merge size) and the pixel budget are the processor's, so ``model_size`` is the size
    the processor really resizes an image to."""

    convention: Convention
    factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    #: False: prompts reach the model as given (answers are still read back)
    convert_questions: bool = True

    @property
    def identity(self) -> bool:
        """Whether the model writes Med-GRIT text as is (nothing to convert)."""
        return self.convention == CONVENTIONS["medgrit"]

    def model_size(self, image_size: tuple[int, int] | None) -> tuple[int, int] | None:
        if self.convention.frame != "resized" or image_size is None:
            return None
        return resized_size(
            *image_size, factor=self.factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels
        )

    def to_model(self, text: str, image_size: tuple[int, int] | None) -> str:
        """A Med-GRIT text (question or answer) as the model writes it, for an image of ``image_size``."""
        return text if self.identity else to_model(text, self.convention, self.model_size(image_size))

    def read(self, text: str, image_size: tuple[int, int] | None) -> Reading:
        """A model answer about an image of ``image_size`` (original pixels) read into Med-GRIT form."""
        return read_answer(text, self.convention, self.model_size(image_size))

    def describe(self) -> dict:
        return {
            "box_convention": self.convention.key,
            "factor": self.factor,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "convert_questions": self.convert_questions,
        }
