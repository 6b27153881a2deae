"""Two renderers the benchmark stand-ins need beyond :mod:`clinkd.data.synth`: a lateral chest X-ray
matching a frontal one's findings, and an H&E-like pathology tile. All randomness comes from the
generator passed in (same state, same pixels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from clinkd.data.synth.scene import Scene


def render_lateral(rng: np.random.Generator, *, cardiomegaly: bool, effusion: bool) -> Image.Image:
    """A lateral chest radiograph (patient facing left): soft tissue, lung field, spine behind, heart in
    front and low; a larger heart when ``cardiomegaly``, fluid filling the posterior costophrenic angle
    when ``effusion``. Mode ``L``, 240 × 288."""
    s = Scene(240, 288, rng)
    img = np.full((s.h, s.w), 0.06, np.float32)
    body = s.blob(s.w / 2 + s.u(-4, 4), s.h / 2 + 20, s.u(100, 108), s.u(150, 160), 0, 0.03)
    img[body] = 0.55
    lung = s.blob(s.w / 2 + s.u(-3, 3), s.h / 2 - 4, s.u(76, 84), s.u(100, 110), s.u(-5, 5), 0.05)
    lung &= s.yy < s.u(226, 236)
    img[lung] = (0.15 + 0.03 * np.abs(s.smooth_noise(5)))[lung]
    spine_x = s.w / 2 + s.u(62, 70)
    for k in range(9):  # vertebral bodies, behind the lungs
        y = 30 + k * s.u(27, 29)
        img[s.ellipse(spine_x, y, 11, 11.5) & body] = 0.72
    r = s.u(52, 60) if cardiomegaly else s.u(36, 42)
    heart = s.blob(s.w / 2 - s.u(18, 26), s.u(178, 188), r, r * 0.85, s.u(-30, -15), 0.04) & lung
    img[heart] = 0.56
    if effusion:  # a meniscus in the posterior costophrenic angle
        level = s.u(196, 208)
        fluid = lung & (s.yy > level - 0.25 * np.clip(s.xx - s.w / 2, 0, None)) & (s.xx > s.w / 2 - 10)
        img[fluid] = 0.54
    img = s.blur(img, 1.2) + 0.015 * rng.standard_normal(img.shape, dtype=np.float32)
    return Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), mode="L")


@dataclass
class Tile:
    """A pathology tile and what was drawn: ``nuclei`` ``"dense"``/``"sparse"``, and whether necrosis and
    a blood vessel are present."""

    image: Image.Image
    nuclei: str
    necrosis: bool
    vessel: bool


_EOSIN = np.array([0.93, 0.62, 0.78], np.float32)
_HAEMATOXYLIN = np.array([0.32, 0.20, 0.55], np.float32)
_RED_CELL = np.array([0.86, 0.22, 0.25], np.float32)
_PALE = np.array([0.97, 0.86, 0.90], np.float32)


def render_tile(rng: np.random.Generator) -> Tile:
    """An H&E-like tile, 192 × 192 RGB: pink stroma with texture, purple nuclei (densely packed or
    sparse), sometimes a pale necrotic area without nuclei and a vessel holding red cells."""
    s = Scene(192, 192, rng)
    dense, necrosis, vessel = s.chance(0.5), s.chance(0.4), s.chance(0.5)
    tex = 0.06 * s.smooth_noise(10)[..., None] + 0.03 * s.smooth_noise(3)[..., None]
    img = np.broadcast_to(_EOSIN, (s.h, s.w, 3)) + tex
    empty = np.zeros((s.h, s.w), bool)
    if necrosis:
        empty |= s.blob(s.u(50, 140), s.u(50, 140), s.u(28, 40), s.u(24, 36), s.u(0, 180), 0.2)
        img = np.where(empty[..., None], _PALE + 0.5 * tex, img)
    if vessel:
        cx, cy, r = s.u(30, 160), s.u(30, 160), s.u(14, 20)
        wall = s.ellipse(cx, cy, r + 4, r * 0.8 + 4) & ~s.ellipse(cx, cy, r, r * 0.8)
        lumen = s.ellipse(cx, cy, r, r * 0.8)
        img = np.where(wall[..., None], _EOSIN * 0.8, img)
        img = np.where(lumen[..., None], np.float32(0.97), img)
        cells = np.zeros((s.h, s.w), bool)
        for _ in range(int(r)):
            p = s.free_point(lumen, margin=2)
            if p is not None:
                cells |= s.ellipse(*p, 2.5, 2.5)
        img = np.where(cells[..., None], _RED_CELL, img)
        empty |= wall | lumen
    n = int(s.u(260, 340) if dense else s.u(40, 70))
    nuclei = np.zeros((s.h, s.w), bool)
    for _ in range(n):
        x, y = int(rng.integers(s.w)), int(rng.integers(s.h))
        if not empty[y, x]:
            nuclei |= s.ellipse(x + 0.5, y + 0.5, s.u(2.2, 3.8), s.u(1.8, 3.0), s.u(0, 180))
    img = np.where(nuclei[..., None], _HAEMATOXYLIN + 0.5 * tex, img)
    img = s.blur(np.asarray(img, np.float32), 0.6) + 0.01 * rng.standard_normal(img.shape, dtype=np.float32)
    pil = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    return Tile(pil, "dense" if dense else "sparse", necrosis, vessel)
