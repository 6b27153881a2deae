"""Drawing primitives and the object model shared by the synthetic renderers.

A renderer paints a float image (values in 0–1, one channel or RGB) and registers the named objects
it draws with a :class:`Scene`. Each object keeps a boolean *visible* mask: registering an opaque
object removes its pixels from the masks of the objects registered before it (a lesion hides the
liver under it), and :meth:`Scene.finish` clips every mask to the imaged field (the endoscope's
circle, the ultrasound fan). The box of an object is the tight bounding box of its visible mask,

    ``(x_min, y_min, x_max + 1, y_max + 1)`` in pixels (half-open, like numpy slices),

so ``Box.from_pixels(*box, width=W, height=H)`` covers exactly the object's pixels on the 0–1000 scale.

Every random draw goes through the ``numpy.random.Generator`` handed in; nothing here touches global
random state, so the same generator state gives the same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from clinkd.data.boxes import Box

MIN_PIXELS = 12  # objects with fewer visible pixels are not annotated


@dataclass
class SynthObject:
    """A named structure or finding of a synthetic image.

    Attributes:
        name: the canonical name (a key of :data:`clinkd.data.synth.text.CATALOGUE`).
        mask: (H, W) bool, the object's visible pixels.
        shape: a shape word, or None to derive ``round``/``oval`` from the mask's second moments.
        colour: a colour word (photographic modalities), else None.
        note: a key of :data:`clinkd.data.synth.text.NOTES` (an extra descriptive clause), or None.
        box: tight pixel box ``(x_min, y_min, x_max + 1, y_max + 1)``, set by :meth:`Scene.finish`.
        location, size, intensity: caption words computed by :meth:`Scene.finish`.
        area_fraction: visible pixels / image pixels.
    """

    name: str
    mask: np.ndarray
    shape: str | None = None
    colour: str | None = None
    note: str | None = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    location: str = ""
    size: str = ""
    intensity: str = ""
    area_fraction: float = 0.0

    def norm_box(self, width: int, height: int) -> Box:
        """The box as Med-GRIT text carries it: integers on the 0–1000 scale."""
        return Box.from_pixels(*self.box, width=width, height=height).rounded()


@dataclass
class SynthImage:
    """A rendered image and what is in it.

    Attributes:
        modality: one of :data:`clinkd.data.sample.MODALITIES`.
        image: the PIL image (mode ``L`` for grey modalities, ``RGB`` for photographic ones).
        objects: the annotated objects, in drawing order.
        region: the body region shown (``abdomen``, ``chest``, ``colon``…).
        view: the acquisition (``axial``, ``frontal``…), or ``""``.
        facts: keys of :data:`clinkd.data.synth.text.FACTS` (image-dependent report sentences).
    """

    modality: str
    image: Image.Image
    objects: list[SynthObject]
    region: str
    view: str = ""
    facts: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x_min, y_min, x_max + 1, y_max + 1)`` of the True pixels of ``mask`` (None when empty)."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


class Scene:
    """Pixel grid, drawing helpers and the registry of annotated objects for one image."""

    def __init__(self, width: int, height: int, rng: np.random.Generator):
        self.w, self.h, self.rng = width, height, rng
        self.xx = np.arange(width, dtype=np.float32)[None, :] + 0.5  # (1, W) pixel centres
        self.yy = np.arange(height, dtype=np.float32)[:, None] + 0.5  # (H, 1)
        self.objects: list[SynthObject] = []

    # -- random helpers -----------------------------------------------------------------------
    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # -- masks --------------------------------------------------------------------------------
    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
        """(H, W) bool: an ellipse with semi-axes ``rx``, ``ry`` rotated by ``angle`` degrees."""
        return self.blob(cx, cy, rx, ry, angle, irregularity=0.0)

    def blob(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        angle: float = 0.0,
        irregularity: float = 0.1,
        harmonics: int = 5,
    ) -> np.ndarray:
        """(H, W) bool: an ellipse whose radius is modulated by random low harmonics of the angle."""
        amps = [irregularity * float(self.rng.normal()) / k for k in range(2, harmonics + 1)]
        phases = [self.u(0, 2 * math.pi) for _ in range(2, harmonics + 1)]
        reach = max(rx, ry) * (1 + 2.5 * irregularity) + 2
        x0, x1 = max(0, int(cx - reach)), min(self.w, int(cx + reach) + 1)
        y0, y1 = max(0, int(cy - reach)), min(self.h, int(cy + reach) + 1)
        out = np.zeros((self.h, self.w), dtype=bool)
        if x0 >= x1 or y0 >= y1:
            return out
        a = math.radians(angle)
        dx, dy = self.xx[:, x0:x1] - cx, self.yy[y0:y1] - cy
        u = (dx * math.cos(a) + dy * math.sin(a)) / rx
        v = (-dx * math.sin(a) + dy * math.cos(a)) / ry
        rho2 = u * u + v * v
        if irregularity == 0:
            out[y0:y1, x0:x1] = rho2 <= 1
            return out
        theta = np.arctan2(v, u)
        r = np.ones_like(theta)
        for k, (amp, ph) in enumerate(zip(amps, phases), start=2):
            r += amp * np.cos(k * theta + ph)
        out[y0:y1, x0:x1] = rho2 <= r * r
        return out

    def polygon(self, points: list[tuple[float, float]]) -> np.ndarray:
        img = Image.new("L", (self.w, self.h), 0)
        ImageDraw.Draw(img).polygon([(float(x), float(y)) for x, y in points], fill=1)
        return np.asarray(img, dtype=bool)

    def lines(self, polylines: Sequence[tuple[Sequence[tuple[float, float]], float]]) -> np.ndarray:
        """(H, W) bool: each ``(points, width)`` polyline drawn with round joints."""
        img = Image.new("L", (self.w, self.h), 0)
        draw = ImageDraw.Draw(img)
        for pts, width in polylines:
            draw.line(
                [(float(x), float(y)) for x, y in pts], fill=1, width=max(1, round(width)), joint="curve"
            )
        return np.asarray(img, dtype=bool)

    # -- textures -----------------------------------------------------------------------------
    def smooth_noise(self, cell: float, aspect: float = 1.0) -> np.ndarray:
        """(H, W) float32, zero mean and unit-ish variance, correlated over ``cell`` pixels.

        Drawn on a coarse grid and upsampled bicubically: far cheaper than a wide Gaussian filter.
        """
        gw = max(2, math.ceil(self.w / (cell * aspect)) + 1)
        gh = max(2, math.ceil(self.h / cell) + 1)
        coarse = self.rng.standard_normal((gh, gw), dtype=np.float32)
        img = Image.fromarray(coarse, mode="F").resize((self.w, self.h), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.float32)

    @staticmethod
    def blur(img: np.ndarray, sigma: float | tuple[float, float]) -> np.ndarray:
        """Gaussian blur of an (H, W) or (H, W, 3) float image (channels kept apart)."""
        s = (sigma, sigma) if np.isscalar(sigma) else tuple(cast("tuple[float, float]", sigma))
        if img.ndim == 3:
            s = (*s, 0)
        return ndimage.gaussian_filter(img, s, mode="nearest", truncate=3.0)

    # -- registry -----------------------------------------------------------------------------
    def add(self, name: str, mask: np.ndarray, *, opaque: bool = True, **attrs) -> SynthObject:
        """Register an object; an opaque one hides what was registered under it."""
        mask = mask.copy()
        if opaque:
            for obj in self.objects:
                obj.mask &= ~mask
        obj = SynthObject(name=name, mask=mask, **attrs)
        self.objects.append(obj)
        return obj

    def free_point(self, region: np.ndarray, margin: float = 0.0) -> tuple[float, float] | None:
        """A random pixel centre of ``region`` (eroded by ``margin`` px), or None when empty."""
        if margin >= 1:
            region = ndimage.binary_erosion(region, iterations=int(margin))
        for _ in range(64):  # rejection sampling first: cheap when the region is not tiny
            x, y = int(self.rng.integers(self.w)), int(self.rng.integers(self.h))
            if region[y, x]:
                return x + 0.5, y + 0.5
        ys, xs = np.nonzero(region)
        if ys.size == 0:
            return None
        i = int(self.rng.integers(ys.size))
        return float(xs[i]) + 0.5, float(ys[i]) + 0.5

    def finish(
        self,
        pixels: np.ndarray,
        modality: str,
        *,
        field_mask: np.ndarray | None = None,
        region: str,
        view: str = "",
        facts: list[str] | None = None,
        foreground: np.ndarray | None = None,
    ) -> SynthImage:
        """Quantise ``pixels`` to 8 bits, clip masks to the field, compute boxes and caption words.

        ``foreground`` (default: the field, else every pixel) limits the ring of surroundings an
        object's intensity is compared with, so the black outside of a body does not count.
        """
        arr = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr, mode="RGB" if arr.ndim == 3 else "L")
        lum = (
            arr.astype(np.float32)
            if arr.ndim == 2
            else arr.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
        )
        if foreground is None:
            foreground = field_mask if field_mask is not None else np.ones((self.h, self.w), bool)
        kept = []
        for obj in self.objects:
            if field_mask is not None:
                obj.mask &= field_mask
            box = tight_box(obj.mask)
            if box is None or int(obj.mask.sum()) < MIN_PIXELS or box[2] - box[0] < 3 or box[3] - box[1] < 3:
                continue
            obj.box = box
            _describe(obj, lum, foreground, self.w, self.h)
            kept.append(obj)
        return SynthImage(modality, image, kept, region, view, list(facts or []))


def _describe(obj: SynthObject, lum: np.ndarray, foreground: np.ndarray, w: int, h: int) -> None:
    x0, y0, x1, y1 = obj.box
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    vert = "upper" if cy < 0.38 else "lower" if cy > 0.62 else ""
    horiz = "left" if cx < 0.38 else "right" if cx > 0.62 else ""
    obj.location = (
        f"{vert} {horiz}"
        if vert and horiz
        else f"{vert} central"
        if vert
        else f"middle {horiz}"
        if horiz
        else "centre"
    )
    area = int(obj.mask.sum())
    obj.area_fraction = area / (w * h)
    f = obj.area_fraction
    obj.size = "tiny" if f < 0.004 else "small" if f < 0.02 else "medium-sized" if f < 0.08 else "large"
    if obj.shape is None:
        ys, xs = np.nonzero(obj.mask)
        cov = np.cov(np.stack([xs, ys]).astype(np.float64)) if xs.size > 2 else np.eye(2)
        ev = np.linalg.eigvalsh(cov)
        obj.shape = "round" if ev[1] <= 1.6 * max(ev[0], 1e-6) else "oval"
    # Mean brightness inside versus a 4-px ring outside (computed on a crop: cheap).
    p = 6
    sx0, sy0, sx1, sy1 = max(0, x0 - p), max(0, y0 - p), min(w, x1 + p), min(h, y1 + p)
    m = obj.mask[sy0:sy1, sx0:sx1]
    ring = ndimage.binary_dilation(m, iterations=4) & ~m & foreground[sy0:sy1, sx0:sx1]
    inside = float(lum[sy0:sy1, sx0:sx1][m].mean())
    around = float(lum[sy0:sy1, sx0:sx1][ring].mean()) if ring.any() else inside
    d = inside - around
    obj.intensity = "very dark" if inside < 22 else "bright" if d > 14 else "dark" if d < -14 else "similar"
