"""Boxes and references in text: one box model, every markup syntax of the Qwen-VL family.

Med-GRIT (like Qwen-VL) writes a box as ``<box>(x1,y1),(x2,y2)</box>``: top-left then bottom-right,
integers normalised to 0–1000 of the image width and height. Qwen2-VL spells the same thing
``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` and the ClinKD release ``<box_start>…<box_end>``; referred
objects are ``<ref>name</ref>`` or ``<|object_ref_start|>name<|object_ref_end|>``
(see ``shared/docs/protocol.md``).

:class:`Box` keeps coordinates on the 0–1000 scale (floats allowed) and converts to pixels and to
relative 0–1 floats. :func:`convert_markup` rewrites only the delimiters, so converting a text to
another style and back gives the original string, byte for byte.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from clinkd.errors import BoxParseError

NORM = 1000  # Qwen-VL / Qwen2-VL box scale

Scale = Literal["norm1000", "relative"]
Style = Literal["qwen", "qwen2", "clinkd"]

# style -> (ref open, ref close, box open, box close)
STYLES: dict[str, tuple[str, str, str, str]] = {
    # Qwen-VL and Med-GRIT files.
    "qwen": ("<ref>", "</ref>", "<box>", "</box>"),
    # Qwen2-VL / Qwen2.5-VL special tokens.
    "qwen2": ("<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>"),
    # The ClinKD release writes boxes as <box_start>…<box_end> and keeps <ref>…</ref> for names.
    "clinkd": ("<ref>", "</ref>", "<box_start>", "<box_end>"),
}

_NUM = r"-?\d+(?:\.\d+)?"
# One box body: (x1,y1),(x2,y2) with optional blanks. Bounded quantifiers only: no catastrophic
# backtracking on long garbage strings.
BOX_BODY_RE = re.compile(
    rf"\(\s{{0,8}}({_NUM})\s{{0,8}},\s{{0,8}}({_NUM})\s{{0,8}}\)\s{{0,8}},\s{{0,8}}"
    rf"\(\s{{0,8}}({_NUM})\s{{0,8}},\s{{0,8}}({_NUM})\s{{0,8}}\)"
)

# -- tag patterns: the one home of every reader's box/ref regex (issue 15) ---------------------------
# The sources below are regex text, for readers that compose them with their own groups; each reader keeps
# its own rule for bodies (tempered, bounded or plain ``.*?``), these only spell the tags.

#: ``(open, close)`` of the box tags of every style, in :data:`STYLES` order: ``<box>``, ``<|box_start|>``,
#: ``<box_start>``.
BOX_TAGS: tuple[tuple[str, str], ...] = tuple((bo, bc) for _, _, bo, bc in STYLES.values())
#: ``(open, close)`` of the ref tags: ``<ref>``, ``<|object_ref_start|>``.
REF_TAGS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((ro, rc) for ro, rc, _, _ in STYLES.values()))


def _any_of(tags) -> str:
    return "(?:" + "|".join(re.escape(t) for t in tags) + ")"


#: regex: any box opening tag, e.g. ``(?:<box>|<\|box_start\|>|<box_start>)``
BOX_OPEN = _any_of(o for o, _ in BOX_TAGS)
#: regex: any box closing tag
BOX_CLOSE = _any_of(c for _, c in BOX_TAGS)
#: regex: any ref opening tag
REF_OPEN = _any_of(o for o, _ in REF_TAGS)
#: regex: any ref closing tag
REF_CLOSE = _any_of(c for _, c in REF_TAGS)
#: regex: any box delimiter, opening or closing
BOX_DELIMITERS = _any_of(t for pair in BOX_TAGS for t in pair)
#: regex: any ref delimiter, opening or closing
REF_DELIMITERS = _any_of(t for pair in REF_TAGS for t in pair)
#: regex: anything tag-like, ``<…>`` of 1 to 40 characters (markup dropped when counting words)
ANY_TAG = r"<[^<>]{1,40}>"


def tempered(open_: str) -> str:
    """Regex of a lazy tag body that never runs past the next ``open_`` (a regex): a "tempered" ``.*?``.

    On unclosed tags each match attempt stops at the next opener, so matching stays linear in the text (a
    plain ``.*?`` re-scans to the end from every opener: quadratic, minutes on a long hostile answer;
    issue 13). Compile with ``re.S`` for bodies that may span lines.
    """
    return rf"(?:(?!{open_}).)*?"


def paired(open_tag: str, close_tag: str, group: str | None = None) -> str:
    """Regex of one literal tag pair with a tempered body, captured as ``group`` when given.

    >>> re.fullmatch(paired("<ref>", "</ref>", "name"), "<ref>liver</ref>").group("name")
    'liver'
    """
    o, c = re.escape(open_tag), re.escape(close_tag)
    body = tempered(o)
    if group is not None:
        body = f"(?P<{group}>{body})"
    return f"{o}{body}{c}"


#: regex: a box tag closed by its own style's closer (``<box>…</box>``, …), no group
PAIRED_BOX_TAGS = "|".join(paired(o, c) for o, c in BOX_TAGS)

#: any box opener to any box closer, the body (group 1) tempered: what :func:`find_box_tags` reads
BOX_TAG_RE = re.compile(rf"{BOX_OPEN}({tempered(BOX_OPEN)}){BOX_CLOSE}", re.S)
#: any ref opener to any ref closer, the name (group 1) tempered: what :func:`parse_refs` reads
REF_TAG_RE = re.compile(rf"{REF_OPEN}({tempered(REF_OPEN)}){REF_CLOSE}", re.S)
#: every ref/box delimiter of every style, longest first (so that no delimiter is cut by a shorter one)
DELIMITERS_RE = re.compile(
    "|".join(
        re.escape(d) for d in sorted({d for s in STYLES.values() for d in s}, key=lambda d: (-len(d), d))
    )
)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box, top-left ``(x1, y1)`` and bottom-right ``(x2, y2)``, on the 0–1000 scale.

    >>> b = Box.from_pixels(50, 20, 150, 120, width=200, height=400)
    >>> b
    Box(x1=250.0, y1=50.0, x2=750.0, y2=300.0)
    >>> b.to_text()
    '(250,50),(750,300)'
    >>> b.to_pixels(200, 400)
    (50.0, 20.0, 150.0, 120.0)
    """

    x1: float
    y1: float
    x2: float
    y2: float

    # -- conversions ------------------------------------------------------------------------------
    @classmethod
    def from_pixels(cls, x1: float, y1: float, x2: float, y2: float, *, width: int, height: int) -> Box:
        """Pixel coordinates (x to the right, y down) of an image ``width`` × ``height``."""
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        sx, sy = NORM / width, NORM / height
        return cls(x1 * sx, y1 * sy, x2 * sx, y2 * sy)

    def to_pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        sx, sy = width / NORM, height / NORM
        return (self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    @classmethod
    def from_relative(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        """Relative floats in [0, 1]."""
        return cls(x1 * NORM, y1 * NORM, x2 * NORM, y2 * NORM)

    def to_relative(self) -> tuple[float, float, float, float]:
        return (self.x1 / NORM, self.y1 / NORM, self.x2 / NORM, self.y2 / NORM)

    def rounded(self) -> Box:
        """The box on the integer 0–1000 grid that text carries (round half away from zero)."""
        return Box(*(float(_round_half_up(v)) for v in self.coords))

    @property
    def coords(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def iou(self, other: Box) -> float:
        """Intersection over union on continuous coordinates (0 when both areas are 0)."""
        iw = min(self.x2, other.x2) - max(self.x1, other.x1)
        ih = min(self.y2, other.y2) - max(self.y1, other.y1)
        inter = max(0.0, iw) * max(0.0, ih)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def problems(self) -> list[str]:
        """What is wrong with this box as Med-GRIT data (empty when it is valid)."""
        out = []
        if any(not math.isfinite(v) for v in self.coords):
            return ["coordinates are not finite numbers"]
        if any(v < 0 or v > NORM for v in self.coords):
            out.append(f"coordinates outside 0-{NORM}: {self.to_text()}")
        if self.x1 > self.x2 or self.y1 > self.y2:
            out.append(f"inverted box (top-left must come first): {self.to_text()}")
        return out

    # -- text -------------------------------------------------------------------------------------
    def to_text(self) -> str:
        """The box body ``(x1,y1),(x2,y2)``: integers when the coordinates are whole numbers."""
        a, b, c, d = (_fmt_num(v) for v in self.coords)
        return f"({a},{b}),({c},{d})"

    def to_markup(self, style: Style = "qwen") -> str:
        _, _, open_, close = STYLES[style]
        return f"{open_}{self.to_text()}{close}"


def _round_half_up(v: float) -> int:
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def _fmt_num(v: float) -> str:
    if float(v).is_integer():
        return str(int(v))
    return repr(round(float(v), 6))


def parse_box_body(body: str, *, scale: Scale | None = None) -> tuple[Box, Scale]:
    """Parse ``(x1,y1),(x2,y2)`` and return the box on the 0–1000 scale and the scale assumed.

    Integers are read on the 0–1000 scale. Floats are read as relative (0–1) when every value is at
    most 1, else on the 0–1000 scale; pass ``scale`` to force one. Raises :class:`BoxParseError`.
    """
    m = BOX_BODY_RE.fullmatch(body.strip())
    if m is None:
        raise BoxParseError(f"cannot parse box {body[:80]!r}: expected (x1,y1),(x2,y2)")
    texts = m.groups()
    values = tuple(float(t) for t in texts)
    if scale is None:
        has_float = any("." in t for t in texts)
        scale = "relative" if has_float and all(abs(v) <= 1.0 for v in values) else "norm1000"
    box = Box.from_relative(*values) if scale == "relative" else Box(*values)
    return box, scale


def parse_boxes(text: str) -> list[Box]:
    """Every box in ``text`` written in any of the three markup styles, in order of appearance.

    A box tag whose body does not parse is skipped; use :func:`find_box_tags` to see them.
    """
    boxes = []
    for body in find_box_tags(text):
        try:
            boxes.append(parse_box_body(body)[0])
        except BoxParseError:
            continue
    return boxes


def find_box_tags(text: str) -> list[str]:
    """The raw bodies of every box tag in ``text`` (any style), parsed or not."""
    return BOX_TAG_RE.findall(text)


def parse_refs(text: str) -> list[str]:
    """Every referred-object name in ``text`` (any style), in order."""
    return [r.strip() for r in REF_TAG_RE.findall(text)]


def convert_markup(text: str, to: Style) -> str:
    """Rewrite every ref/box delimiter of ``text`` into style ``to``, leaving everything else as is.

    Only the delimiters change, so ``convert_markup(convert_markup(t, "qwen2"), "qwen") == t`` for any
    text written in the ``qwen`` style (and likewise between any two styles).
    """
    ref_open, ref_close, box_open, box_close = STYLES[to]
    mapping = {}
    for ro, rc, bo, bc in STYLES.values():
        mapping.update({ro: ref_open, rc: ref_close, bo: box_open, bc: box_close})
    return DELIMITERS_RE.sub(lambda m: mapping[m.group(0)], text)


def detect_style(text: str) -> Style | None:
    """The markup style of the boxes in ``text`` (``None`` when it holds no box)."""
    if "<|box_start|>" in text:
        return "qwen2"
    if "<box_start>" in text:
        return "clinkd"
    if "<box>" in text:
        return "qwen"
    return None


def format_grounding(name: str | None, boxes: list[Box], style: Style = "qwen") -> str:
    """``<ref>name</ref><box>…</box>…`` — a referred object followed by its boxes."""
    ref_open, ref_close, _, _ = STYLES[style]
    head = f"{ref_open}{name}{ref_close}" if name else ""
    return head + "".join(b.to_markup(style) for b in boxes)
