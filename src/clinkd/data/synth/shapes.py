"""A generic (non-medical) synthetic domain: coloured geometric shapes for pretraining a tiny student base.

The demo fine-tunes a tiny student that stands in for a general instruction-tuned VLM (Qwen2-VL-Instruct):
one that can already ground, refer to and describe things in a picture, but has never seen the Med-GRIT
task mix. :func:`generate_shapes` writes that general pretraining data, beside the medical benchmark::

    images/shapes_<nnnnn>.png      RGB, 160–320 px sides, 2–5 shapes on a plain, gradient or textured ground
    train.json                     ClinKD training form, 3–6 turns per image

The turns mix four generic skills, in wordings the Med-GRIT templates (:mod:`.templates`) do not use:
grounding ("Where's the red circle?", "Find every triangle." → one ``<ref>name</ref><box>…</box>…``
group per object name, a box per instance), referring (a box → "a blue square"), description (objects,
colours, rough positions, overlaps) and counting. Boxes are the tight boxes of the *visible* pixels
(a later shape hides the earlier one under it: :meth:`Scene.add`), on the 0–1000 scale.

Image ``k`` draws from its own ``SeedSequence([seed, k])``: its bytes and its record do not depend on
how many images are generated, nor on the number of worker processes.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import re
import sys
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image
from scipy import ndimage

from clinkd.data import formats
from clinkd.data.boxes import NORM, Box, format_grounding
from clinkd.data.sample import Sample, Turn, image_tag
from clinkd.data.synth.dataset import PNG_OPTIONS
from clinkd.data.synth.scene import MIN_PIXELS, Scene, SynthObject, tight_box
from clinkd.data.synth.shapes_text import (  # the words, re-exported: shapes.GROUND_NAME, ...
    ABSENT_COLOUR,
    ABSENT_NAME,
    ABSENT_SHAPE,
    COUNT_ALL,
    COUNT_COLOUR,
    COUNT_SHAPE,
    COVERS,
    DESCRIBE,
    GROUND_COLOUR,
    GROUND_NAME,
    GROUND_SHAPE,
    GROUNDS,
    NO_COVER,
    NUMBERS,
    REFER,
    REFER_ANSWERS,
    SCENE,
    SCENE_ONE,
    SIDES,
    article,
    join_words,
    pick,
    plural,
)

log = logging.getLogger(__name__)

MODALITY = "shapes"  # image-name prefix; listed in clinkd.data.sample.PRETRAINING_MODALITIES
DEFAULT_SHAPES_IMAGES = 2000
IMAGE_SIZES = (
    (160, 160),
    (224, 224),
    (256, 256),
    (320, 320),
    (256, 192),
    (192, 256),
    (320, 240),
    (240, 320),
    (288, 192),
    (192, 288),
    (320, 200),
)  # (W, H)
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12),
    "green": (0.13, 0.62, 0.22),
    "blue": (0.13, 0.30, 0.85),
    "yellow": (0.96, 0.86, 0.12),
    "orange": (0.98, 0.55, 0.08),
    "purple": (0.55, 0.20, 0.72),
    "white": (0.97, 0.97, 0.97),
    "black": (0.07, 0.07, 0.07),
    "grey": (0.52, 0.52, 0.52),
}
BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "light grey": (0.80, 0.80, 0.80),
    "cream": (0.95, 0.92, 0.80),
    "pale blue": (0.76, 0.86, 0.95),
    "pale green": (0.80, 0.92, 0.78),
    "beige": (0.85, 0.78, 0.65),
    "dark grey": (0.22, 0.22, 0.24),
    "navy": (0.08, 0.11, 0.30),
}
SHAPES = ("circle", "square", "rectangle", "triangle", "star", "ring", "cross", "diamond", "hexagon")
MIN_CONTRAST = 0.4  # RGB distance: a shape against the ground, and two shapes that touch
MIN_VISIBLE = 0.6  # a shape keeps at least this share of its area visible under later ones
OVERLAP_P = 0.35  # chance that a shape is placed to overlap an earlier one
SKILL_WEIGHTS = {"ground": 0.4, "refer": 0.25, "describe": 0.15, "count": 0.2}
ABSENT_P = 0.1  # grounding / counting questions about something not in the picture


def _distance(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


# -- rendering ---------------------------------------------------------------------------------------------
@dataclass
class ShapesImage:
    """A rendered shapes picture.

    Attributes:
        image: the RGB PIL image.
        objects: the shapes in drawing order (:class:`SynthObject`: ``name`` is ``"<colour> <shape>"``,
            ``mask`` the visible pixels, ``box`` their tight pixel box).
        full_masks: each shape's whole (H, W) bool mask before later shapes hid part of it.
        ground: the background as a phrase ("a plain cream background").
    """

    image: Image.Image
    objects: list[SynthObject]
    full_masks: list[np.ndarray]
    ground: str

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    def norm_box(self, i: int) -> Box:
        return self.objects[i].norm_box(self.width, self.height)

    def covers(self) -> list[tuple[int, int]]:
        """``(top, under)`` index pairs: shape ``top``, drawn later, hides some of shape ``under``."""
        n = len(self.objects)
        return [(j, i) for j in range(n) for i in range(j) if (self.full_masks[j] & self.full_masks[i]).any()]

    def position(self, i: int) -> str:
        """Rough position of shape ``i`` from its box centre, in thirds: ``top left`` … ``centre`` …"""
        x0, y0, x1, y1 = self.objects[i].box
        cx, cy = (x0 + x1) / 2 / self.width, (y0 + y1) / 2 / self.height
        vert = "top" if cy < 0.36 else "bottom" if cy > 0.64 else ""
        horiz = "left" if cx < 0.36 else "right" if cx > 0.64 else ""
        return f"{vert} {horiz}".strip() or "centre"


def at(position: str) -> str:
    """``"top left"`` → ``"at the top left"``, ``"left"`` → ``"on the left"``, ``"centre"`` → ``"in the centre"``."""
    special = {"centre": "in the centre", "left": "on the left", "right": "on the right"}
    return special.get(position, f"at the {position}")


def _rect(s: Scene, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    m = np.zeros((s.h, s.w), bool)
    m[max(0, round(y0)) : max(0, round(y1)), max(0, round(x0)) : max(0, round(x1))] = True
    return m


def _regular(s: Scene, cx: float, cy: float, radii: list[float], rot: float) -> np.ndarray:
    """A polygon whose vertices lie at ``radii`` (cycled) around ``(cx, cy)``, evenly spaced from ``rot``."""
    n = len(radii)
    return s.polygon(
        [
            (cx + r * np.cos(rot + 2 * np.pi * k / n), cy + r * np.sin(rot + 2 * np.pi * k / n))
            for k, r in enumerate(radii)
        ]
    )


def shape_mask(s: Scene, shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """(H, W) bool mask of ``shape`` centred on ``(cx, cy)``, inside the square of half-side ``r``."""
    if shape == "circle":
        return s.ellipse(cx, cy, r, r)
    if shape == "square":
        return _rect(s, cx - r, cy - r, cx + r, cy + r)
    if shape == "rectangle":  # long side at least 1.6 × the short one: never mistaken for a square
        a, b = r, r / s.u(1.6, 2.2)
        a, b = (a, b) if s.chance(0.5) else (b, a)
        return _rect(s, cx - a, cy - b, cx + a, cy + b)
    if shape == "triangle":
        return _regular(s, cx, cy, [r] * 3, s.u(0, 2 * np.pi))
    if shape == "star":
        return _regular(s, cx, cy, [r, r * s.u(0.4, 0.5)] * 5, s.u(0, 2 * np.pi))
    if shape == "hexagon":
        return _regular(s, cx, cy, [r] * 6, s.u(0, np.pi / 3))
    if shape == "diamond":  # a rhombus standing on a corner, taller than wide
        q = s.u(0.6, 0.85)
        return s.polygon([(cx, cy - r), (cx + q * r, cy), (cx, cy + r), (cx - q * r, cy)])
    if shape == "ring":
        inner = r * s.u(0.5, 0.65)
        return s.ellipse(cx, cy, r, r) & ~s.ellipse(cx, cy, inner, inner)
    if shape == "cross":
        t = r * s.u(0.3, 0.42)
        return _rect(s, cx - r, cy - t, cx + r, cy + t) | _rect(s, cx - t, cy - r, cx + t, cy + r)
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def _background(s: Scene) -> tuple[np.ndarray, str, list[tuple[float, float, float]]]:
    """(H, W, 3) float background, its phrase, and the colours a shape must stand out from."""
    names = list(BACKGROUNDS)
    c1 = pick(s.rng, names)
    kind = int(s.rng.choice(3, p=[0.4, 0.35, 0.25]))
    rgb1 = np.asarray(BACKGROUNDS[c1], dtype=np.float32)
    if kind == 1:
        c2 = pick(s.rng, [n for n in names if n != c1])
        side1 = pick(s.rng, list(SIDES))
        side2 = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[side1]
        t = s.xx / s.w if side1 in ("left", "right") else s.yy / s.h  # (1, W) or (H, 1), 0 → 1
        t = 1 - t if side1 in ("right", "bottom") else t
        t = np.broadcast_to(t, (s.h, s.w))[..., None]
        img = (1 - t) * rgb1 + t * np.asarray(BACKGROUNDS[c2], dtype=np.float32)
        phrase = GROUNDS[1].format(c1=c1, c2=c2, side1=SIDES[side1], side2=SIDES[side2])
        return img.astype(np.float32), phrase, [BACKGROUNDS[c1], BACKGROUNDS[c2]]
    img = np.broadcast_to(rgb1, (s.h, s.w, 3)).astype(np.float32)
    if kind == 2:
        grain = 0.035 * s.smooth_noise(s.u(4, 16)) + 0.015 * s.rng.standard_normal(
            (s.h, s.w), dtype=np.float32
        )
        img = img + grain[..., None]
    return img, GROUNDS[kind].format(c1=c1), [BACKGROUNDS[c1]]


@dataclass
class _Placed:
    obj: SynthObject
    area: int  # whole area, pixels
    visible: int  # pixels not hidden by later shapes (kept equal to obj.mask.sum())


def _fits(mask: np.ndarray, colour: str, placed: list[_Placed]) -> list[int] | None:
    """The pixels a new shape would hide of each earlier one, or None when it may not go there: it may
    hide at most ``1 - MIN_VISIBLE`` of any earlier shape, and may not touch one of a colour too close to
    its own (two touching reds would read as one shape). Works on the new shape's box only (cheap)."""
    box = tight_box(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    win = (slice(max(0, y0 - 2), y1 + 2), slice(max(0, x0 - 2), x1 + 2))
    m, grown, hidden = mask[win], None, []
    for p in placed:
        under = p.obj.mask[win]
        hidden.append(int((under & m).sum()))
        if p.visible - hidden[-1] < max(MIN_VISIBLE * p.area, 4 * MIN_PIXELS):
            return None
        # every shape is added with its colour (see render_shapes)
        if _distance(COLOURS[colour], COLOURS[cast(str, p.obj.colour)]) < MIN_CONTRAST:
            grown = ndimage.binary_dilation(m, iterations=2) if grown is None else grown
            if (grown & under).any():
                return None
    return hidden


def render_shapes(rng: np.random.Generator) -> ShapesImage:
    """One picture of 2–5 coloured shapes. A function of the generator's state only."""
    w, h = IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
    s = Scene(w, h, rng)
    pixels, ground, against = _background(s)
    palette = [c for c in COLOURS if all(_distance(COLOURS[c], g) >= MIN_CONTRAST for g in against)]
    side = min(w, h)
    placed: list[_Placed] = []
    full: list[np.ndarray] = []
    centres: list[tuple[float, float, float]] = []
    n_shapes, rounds = int(rng.integers(2, 6)), 0
    while len(placed) < n_shapes and rounds < n_shapes + 8:  # a shape with no room: try another
        rounds += 1
        # Repeats on purpose now and then: "find every triangle" should often have several answers.
        shape = pick(rng, [p.obj.shape for p in placed]) if placed and s.chance(0.3) else pick(rng, SHAPES)
        colour = (
            pick(rng, [p.obj.colour for p in placed]) if placed and s.chance(0.25) else pick(rng, palette)
        )
        for _try in range(40):
            r = s.u(0.08, 0.2) * side
            if centres and s.chance(OVERLAP_P):
                px, py, pr = centres[int(rng.integers(len(centres)))]
                angle, dist = s.u(0, 2 * np.pi), (pr + r) * s.u(0.45, 0.85)
                cx, cy = px + dist * np.cos(angle), py + dist * np.sin(angle)
                if not (r + 2 <= cx <= w - r - 2 and r + 2 <= cy <= h - r - 2):
                    continue
            else:
                cx, cy = s.u(r + 2, w - r - 2), s.u(r + 2, h - r - 2)
            mask = shape_mask(s, shape, cx, cy, r)
            hidden = _fits(mask, colour, placed)
            if hidden is not None:
                break
        else:
            continue  # no room for it: the next round draws another shape
        shade = np.clip(np.asarray(COLOURS[colour], dtype=np.float32) * s.u(0.92, 1.04), 0, 1)
        pixels[mask] = shade
        obj = s.add(f"{colour} {shape}", mask, shape=shape, colour=colour)
        for p, n in zip(placed, hidden):
            p.visible -= n
        placed.append(_Placed(obj, int(mask.sum()), int(mask.sum())))
        full.append(mask)
        centres.append((cx, cy, r))
    si = s.finish(pixels, MODALITY, region=MODALITY)
    # _fits keeps every shape big and visible enough for Scene.finish to annotate it: none is dropped,
    # so what is drawn is what the answers count.
    assert len(si.objects) == len(placed), "a drawn shape was left unannotated"
    return ShapesImage(si.image, si.objects, full, ground)


# -- questions and answers ---------------------------------------------------------------------------------
def grounding(si: ShapesImage, indices: list[int]) -> str:
    """``<ref>name</ref><box>…</box>…`` for the shapes ``indices``: one group per name (in reading order of
    its first box), each instance's box in it, top to bottom then left to right."""

    def reading(i: int) -> tuple[float, ...]:
        b = si.norm_box(i)
        return (b.y1, b.x1, b.y2, b.x2)

    order = sorted(indices, key=reading)
    groups: dict[str, list[Box]] = {}
    for i in order:
        groups.setdefault(si.objects[i].name, []).append(si.norm_box(i))
    return "".join(format_grounding(name, boxes) for name, boxes in groups.items())


def _count(n: int, noun: str) -> str:
    return f"There is one {noun}." if n == 1 else f"There are {NUMBERS[n]} {plural(noun)}."


def _ground(si: ShapesImage, rng: np.random.Generator) -> tuple[tuple, str, str]:
    objs, present = si.objects, rng.random() >= ABSENT_P
    kind = ("name", "shape", "colour")[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    have = sorted({getattr(o, kind) for o in objs})
    if kind == "name":
        absent = [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in have]
    else:
        absent = [x for x in (SHAPES if kind == "shape" else COLOURS) if x not in have]
    target = pick(rng, have if present else absent)
    slots = {"name": target, "shape": target, "shapes": plural(target), "colour": target}
    if kind == "name" and rng.random() < 0.25:
        slots["name"] = f"<ref>{target}</ref>"
    q = pick(rng, {"name": GROUND_NAME, "shape": GROUND_SHAPE, "colour": GROUND_COLOUR}[kind]).format(**slots)
    hits = [i for i, o in enumerate(objs) if getattr(o, kind) == target]
    if hits:
        return ("ground", kind, target), q, grounding(si, hits)
    none = {"name": ABSENT_NAME, "shape": ABSENT_SHAPE, "colour": ABSENT_COLOUR}[kind]
    return (
        ("ground", kind, target),
        q,
        pick(rng, none).format(name=target, shapes=plural(target), colour=target),
    )


def _refer(si: ShapesImage, rng: np.random.Generator) -> tuple[tuple, str, str]:
    i = int(rng.integers(len(si.objects)))
    q = pick(rng, REFER).format(box=si.norm_box(i).to_markup())
    return ("refer", i), q, pick(rng, REFER_ANSWERS).format(a=article(si.objects[i].name))


def _the(si: ShapesImage, i: int) -> str:
    """``the blue square``, with its position when another shape has the same name."""
    name = si.objects[i].name
    twin = sum(o.name == name for o in si.objects) > 1
    return f"the {name} {at(si.position(i))}" if twin else f"the {name}"


def describe(si: ShapesImage, rng: np.random.Generator) -> str:
    """One sentence listing the shapes (reading order) with positions, then one per overlap."""
    order = sorted(range(len(si.objects)), key=lambda i: (si.objects[i].box[1], si.objects[i].box[0]))
    listed = [f"{article(si.objects[i].name)} {at(si.position(i))}" for i in order]
    n = len(si.objects)
    scene = SCENE_ONE if n == 1 else pick(rng, SCENE)
    parts = [scene.format(count=NUMBERS[n], ground=si.ground, list=join_words(listed))]
    for top, under in si.covers():
        t = _the(si, top)
        parts.append(pick(rng, COVERS).format(Top=t[:1].upper() + t[1:], under=_the(si, under)))
    if len(parts) == 1 and rng.random() < 0.5:
        parts.append(pick(rng, NO_COVER))
    return " ".join(parts)


def _counting(si: ShapesImage, rng: np.random.Generator) -> tuple[tuple, str, str]:
    objs = si.objects
    kind = ("all", "shape", "colour")[int(rng.choice(3, p=[0.4, 0.35, 0.25]))]
    if kind == "all":
        return ("count", "all"), pick(rng, COUNT_ALL), _count(len(objs), "shape")
    pool = SHAPES if kind == "shape" else tuple(COLOURS)
    have = sorted({getattr(o, kind) for o in objs})
    target = pick(rng, have) if rng.random() >= ABSENT_P else pick(rng, [x for x in pool if x not in have])
    n = sum(getattr(o, kind) == target for o in objs)
    noun = target if kind == "shape" else f"{target} shape"
    q = pick(rng, COUNT_SHAPE if kind == "shape" else COUNT_COLOUR).format(
        shapes=plural(target), colour=target
    )
    return ("count", kind, target), q, _count(n, noun) if n else f"There are no {plural(noun)}."


def shapes_sample(si: ShapesImage, image: str, rng: np.random.Generator) -> Sample:
    """A 3–6 turn training sample mixing grounding, referring, description and counting (no question
    asked twice); the first question starts with the image tag, as in the Med-GRIT ``train.json``."""
    n_turns = int(rng.integers(3, 7))
    skills, weights = list(SKILL_WEIGHTS), np.array(list(SKILL_WEIGHTS.values()))
    turns: list[Turn] = []
    seen = set()
    for _ in range(60):
        if len(turns) == n_turns:
            break
        skill = skills[int(rng.choice(len(skills), p=weights / weights.sum()))]
        if skill == "describe":
            key, q, a = ("describe",), pick(rng, DESCRIBE), describe(si, rng)
        else:
            key, q, a = {"ground": _ground, "refer": _refer, "count": _counting}[skill](si, rng)
        if key in seen:
            continue
        seen.add(key)
        turns.append(Turn(q, a))
    turns[0].question = image_tag(image) + "\n" + turns[0].question
    return Sample(id=Path(image).stem, image=image, turns=turns)


# -- the dataset -------------------------------------------------------------------------------------------
def shapes_rngs(seed: int, k: int) -> tuple[np.random.Generator, np.random.Generator]:
    """``(image generator, text generator)`` of image ``k``: from ``SeedSequence([seed, k])`` alone."""
    image_ss, text_ss = np.random.SeedSequence([seed, k]).spawn(2)
    return np.random.default_rng(image_ss), np.random.default_rng(text_ss)


def image_name(k: int) -> str:
    return f"{MODALITY}_{k:05d}.png"


def make_shapes(seed: int, k: int, image_dir: Path | None = None) -> tuple[ShapesImage, Sample]:
    """Render image ``k``, save it into ``image_dir`` when given, and write its training sample."""
    image_rng, text_rng = shapes_rngs(seed, k)
    si = render_shapes(image_rng)
    if image_dir is not None:
        si.image.save(image_dir / image_name(k), **PNG_OPTIONS)
    return si, shapes_sample(si, image_name(k), text_rng)


def _sample_only(args) -> Sample:
    return make_shapes(*args)[1]  # the image is written by the worker; only the sample travels back


def generate_shapes(
    out_dir: str | PathLike,
    *,
    seed: int,
    n_images: int = DEFAULT_SHAPES_IMAGES,
    progress: bool = False,
    workers: int | None = None,
) -> Path:
    """Write ``out_dir/images/shapes_<nnnnn>.png`` and ``out_dir/train.json``; return ``out_dir``.

    Same arguments, same bytes; ``workers`` processes (default: up to two) do not change a byte.
    Existing files of the same names are overwritten, other files left alone.
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}")
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    jobs = [(seed, k, image_dir) for k in range(n_images)]
    if workers > 1 and n_images >= 64:
        # as in dataset.py: fork keeps start-up cheap; imap gives results back in job order
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(workers) as pool:
            samples = list(_logged(pool.imap(_sample_only, jobs, chunksize=16), n_images, progress))
    else:
        samples = list(_logged(map(_sample_only, jobs), n_images, progress))
    formats.write_train_file(samples, out / "train.json")
    if progress:
        log.info("wrote %d shapes images to %s", n_images, out)
    return out


def _logged(results, total: int, progress: bool):
    for i, r in enumerate(results):
        if progress and (i + 1) % 200 == 0:
            log.info("rendered %d/%d shapes images", i + 1, total)
        yield r


def shapes_vocabulary() -> list[str]:
    """Every word :func:`generate_shapes` can write, as short strings (templates with their slots emptied):
    what a tokenizer must cover besides the medical corpus."""
    hole = re.compile(r"\{\w+\}")
    tables = (
        GROUND_NAME,
        GROUND_SHAPE,
        GROUND_COLOUR,
        ABSENT_NAME,
        ABSENT_SHAPE,
        ABSENT_COLOUR,
        REFER,
        REFER_ANSWERS,
        DESCRIBE,
        SCENE,
        (SCENE_ONE,),
        COVERS,
        NO_COVER,
        COUNT_ALL,
        COUNT_SHAPE,
        COUNT_COLOUR,
        GROUNDS,
    )
    out = [hole.sub(" ", t) for table in tables for t in table]
    out += [
        *COLOURS,
        *BACKGROUNDS,
        *SIDES.values(),
        *NUMBERS,
        "There is one There are shape shapes It That The",
    ]
    out += [f"{article(c)} {s} {plural(s)}" for c in COLOURS for s in SHAPES]
    out += [
        at(p)
        for p in (
            "top left",
            "top",
            "top right",
            "left",
            "centre",
            "right",
            "bottom left",
            "bottom",
            "bottom right",
        )
    ]
    out += [
        "0 1 2 3 4 5 6 7 8 9",
        f"<ref>x</ref><box>(0,0),({NORM},{NORM})</box>",
        image_tag(image_name(0)) + "\n",
    ]
    return out
