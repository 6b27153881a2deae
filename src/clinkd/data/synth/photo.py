"""Synthetic photographic modalities (RGB): endoscopy, dermoscopy and fundus photography.

Colours are painted as float RGB in 0–1 with shading masks; objects get a colour word for captions.
"""

from __future__ import annotations

import math

import numpy as np

from clinkd.data.synth.scene import Scene, SynthImage


def _paint(img: np.ndarray, mask: np.ndarray, rgb, alpha: np.ndarray | float = 1.0) -> None:
    """Blend colour ``rgb`` (3 floats or an (H, W, 3) array) into ``img`` where ``mask`` (in place).

    Only the masked pixels are touched, which keeps many small paints cheap.
    """
    rgb = np.asarray(rgb, np.float32)
    src = rgb[mask] if rgb.ndim == 3 else rgb
    a = alpha[mask][:, None] if isinstance(alpha, np.ndarray) else alpha
    img[mask] = img[mask] * (1 - a) + a * src


def render_endoscopy(rng: np.random.Generator) -> SynthImage:
    """Colonoscopy frame: pink mucosa in a circular field, folds around a dark lumen, polyps."""
    s = Scene(256, 256, rng)
    c = s.w / 2
    field = s.ellipse(c, c, 122, 122) & (np.abs(s.xx - c) + np.abs(s.yy - c) < 160)
    lx, ly = c + s.u(-55, 55), c + s.u(-55, 55)
    d = np.sqrt((s.xx - lx) ** 2 + (s.yy - ly) ** 2) + 7 * s.smooth_noise(60)
    base = np.asarray([s.u(0.80, 0.92), s.u(0.40, 0.52), s.u(0.36, 0.46)], dtype=np.float32)
    shade = 0.30 + 0.70 * np.clip(d / 120, 0, 1) ** 0.6
    period = s.u(40, 60)
    folds = 0.72 + 0.28 * np.mod(d / period, 1.0) ** 0.5  # bright ridge, shadow on the lumen side
    img = (shade * folds)[..., None] * base
    veins = np.abs(s.smooth_noise(7)) < 0.06
    img[veins] *= np.asarray([0.92, 0.75, 0.78], dtype=np.float32)
    lr = s.u(13, 26)
    lumen = s.blob(lx, ly, lr, lr * s.u(0.7, 1.0), s.u(0, 180), 0.15)
    _paint(img, lumen, (0.10, 0.03, 0.03))
    s.add("lumen", lumen, colour="dark red")
    n = int(rng.choice(3, p=[0.1, 0.7, 0.2]))
    free = field & (np.sqrt((s.xx - lx) ** 2 + (s.yy - ly) ** 2) > lr + 20)
    for _ in range(n):
        r = s.u(12, 34)
        p = s.free_point(free, margin=r * 0.8)
        if p is None:
            continue
        irr = 0.16 if s.chance(0.4) else 0.05
        m = s.blob(*p, r, r * s.u(0.75, 1.0), s.u(0, 180), irr)
        red = s.chance(0.5)
        rgb = np.asarray(
            [s.u(0.82, 0.95), s.u(0.25, 0.33), s.u(0.22, 0.3)]
            if red
            else [s.u(0.88, 0.98), s.u(0.52, 0.62), s.u(0.5, 0.58)],
            dtype=np.float32,
        )
        h = np.sqrt(np.clip(1 - ((s.xx - p[0]) ** 2 + (s.yy - p[1]) ** 2) / (r * r * 1.2), 0, 1))
        _paint(img, s.blob(p[0] + 2, p[1] + 4, r * 1.05, r, 0, 0.05) & ~m, (0.25, 0.08, 0.07), 0.6)  # shadow
        _paint(img, m, (0.5 + 0.55 * h)[..., None] * rgb)
        _paint(
            img, s.ellipse(p[0] - 0.35 * r, p[1] - 0.35 * r, 0.18 * r, 0.12 * r, 30) & m, (1, 0.97, 0.95), 0.8
        )
        s.add("polyp", m, shape="lobulated" if irr > 0.1 else None, colour="reddish" if red else "pale pink")
        free &= ~s.ellipse(*p, 2 * r, 2 * r)
    for _ in range(int(rng.integers(5, 14))):  # specular highlights
        p = s.free_point(field)
        if p is not None:
            _paint(img, s.ellipse(*p, s.u(1, 3), s.u(1, 2.5), s.u(0, 180)), (1, 1, 1), 0.85)
    img = s.blur(img, 0.8) + 0.006 * rng.standard_normal(img.shape, dtype=np.float32)
    img *= field[..., None]
    return s.finish(img, "endoscopy", field_mask=field, region="colon", view="")


def render_dermoscopy(rng: np.random.Generator) -> SynthImage:
    """Dermoscopy: skin with a pigmented lesion (a regular nevus or an irregular, variegated melanoma)."""
    s = Scene(288, 224, rng)
    t = s.u(0, 1)
    skin = (
        np.asarray([0.93, 0.77, 0.67], dtype=np.float32) * (1 - t)
        + np.asarray([0.74, 0.52, 0.40], dtype=np.float32) * t
    )
    img = (1 + 0.03 * s.smooth_noise(24) + 0.015 * s.smooth_noise(2))[..., None] * skin
    lx, ly = s.w / 2 + s.u(-40, 40), s.h / 2 + s.u(-28, 28)
    rx = s.u(28, 62)
    melanoma = s.chance(0.45)
    m = s.blob(lx, ly, rx, rx * s.u(0.65, 1.0), s.u(0, 180), 0.2 if melanoma else 0.035, 7 if melanoma else 4)
    rho = np.sqrt(((s.xx - lx) / rx) ** 2 + ((s.yy - ly) / rx) ** 2)
    alpha = s.blur(m.astype(np.float32), 1.5)
    net = (np.sin(s.xx * 0.9 + 0.3 * s.smooth_noise(10)) * np.sin(s.yy * 0.9)) > 0.55
    if melanoma:
        w = (1 / (1 + np.exp(-2 * s.smooth_noise(14))))[..., None]
        col = (1 - w) * np.asarray([0.58, 0.38, 0.26], dtype=np.float32) + w * np.asarray(
            [0.22, 0.12, 0.09], dtype=np.float32
        )
        col[s.smooth_noise(12) > 0.9] = (0.42, 0.42, 0.5)  # blue-white veil
        col[s.smooth_noise(12) > 1.1] = (0.7, 0.52, 0.48)  # regression
        col = s.blur(col, 1.5)  # colour zones fade into each other
        col[(np.abs(s.smooth_noise(3)) > 1.9) & (rho > 0.5)] = (0.1, 0.06, 0.05)  # globules
        colour, note = "variegated", "irregular_border"
    else:
        brown = np.asarray([s.u(0.45, 0.6), s.u(0.28, 0.36), s.u(0.18, 0.24)], dtype=np.float32)
        col = (0.75 + 0.25 * np.clip(rho, 0, 1))[..., None] * brown
        col = np.broadcast_to(col, img.shape).copy()
        colour, note = ("light brown" if brown[0] > 0.53 else "brown"), "regular_network"
    col[net & m] *= 0.82
    _paint(img, alpha > 0.002, col, alpha)
    s.add(
        "melanoma" if melanoma else "nevus",
        m,
        shape="irregular" if melanoma else None,
        colour=colour,
        note=note,
    )
    facts = ["derm_asymmetric" if melanoma else "derm_symmetric"]
    if s.chance(0.5):  # hairs
        hairs = []
        for _ in range(int(rng.integers(2, 7))):
            x0, y0, a = s.u(0, s.w), s.u(0, s.h), s.u(0, math.pi)
            bend = s.u(-0.01, 0.01)
            pts = [
                (x0 + k * 6 * math.cos(a + bend * k * k), y0 + k * 6 * math.sin(a + bend * k * k))
                for k in range(-20, 21)
            ]
            hairs.append((pts, 1.5))
        _paint(img, s.lines(hairs), (0.18, 0.12, 0.1), 0.85)
    img = s.blur(img, 0.6) + 0.006 * rng.standard_normal(img.shape, dtype=np.float32)
    field = None
    if s.chance(0.5):  # the dermatoscope's round field
        field = s.ellipse(s.w / 2, s.h / 2, s.w * 0.6, s.w * 0.6)
        img *= field[..., None]
    return s.finish(img, "dermoscopy", field_mask=field, region="skin", view="", facts=facts)


def _vessel_tree(
    s: Scene,
    x: float,
    y: float,
    heading: float,
    width: float,
    steps: int,
    bend: float,
    out: list[tuple[list[tuple[float, float]], float]],
    depth: int = 0,
) -> None:
    pts = [(x, y)]
    for k in range(steps):
        heading += bend + s.u(-0.08, 0.08)
        x, y = x + 4 * math.cos(heading), y + 4 * math.sin(heading)
        pts.append((x, y))
        if len(pts) == 5:
            out.append((pts, width))
            pts, width = [(x, y)], max(1.0, width * 0.93)
        if depth < 2 and k > 4 and s.chance(0.07):
            _vessel_tree(
                s,
                x,
                y,
                heading + s.u(0.4, 0.9) * (1 if s.chance(0.5) else -1),
                width * 0.7,
                int(steps * 0.5),
                -bend * 0.5,
                out,
                depth + 1,
            )
    if len(pts) > 1:
        out.append((pts, width))


def render_fundus(rng: np.random.Generator) -> SynthImage:
    """Colour fundus photograph: orange disc, optic disc, macula, vessel arcades, haemorrhages, exudates."""
    s = Scene(256, 256, rng)
    c, R = s.w / 2, 120.0
    field = s.ellipse(c, c, R, R)
    d2 = ((s.xx - c) ** 2 + (s.yy - c) ** 2) / R**2
    base = np.asarray([s.u(0.78, 0.92), s.u(0.30, 0.42), s.u(0.08, 0.16)], dtype=np.float32)
    img = ((1 - 0.45 * d2) * (1 + 0.05 * s.smooth_noise(10)))[..., None] * base
    side = 1 if s.chance(0.5) else -1  # right eye: optic disc on the image's right (nasal side)
    dr = s.u(14, 18)
    dx, dy = c + side * s.u(52, 66), c + s.u(-10, 10)
    mx, my = dx - side * dr * s.u(4.6, 5.4), dy + s.u(2, 10)
    mr = s.u(17, 23)
    mac = s.ellipse(mx, my, mr, mr)
    fall = np.clip(1 - ((s.xx - mx) ** 2 + (s.yy - my) ** 2) / mr**2, 0, 1)
    img *= (1 - 0.35 * fall)[..., None]
    _paint(img, s.ellipse(mx, my, 1.5, 1.5), (0.95, 0.8, 0.6), 0.7)  # foveal reflex
    disc = s.blob(dx, dy, dr, dr * s.u(1.0, 1.15), 0, 0.03)
    _paint(img, disc, (1.0, 0.82, 0.55))
    _paint(img, s.ellipse(dx, dy, dr * 0.45, dr * 0.5), (1.0, 0.95, 0.8), 0.8)
    s.add("macula", mac, colour="dark red")
    s.add("optic disc", disc, colour="yellowish")
    tree: list[tuple[list[tuple[float, float]], float]] = []
    temporal = math.pi if side > 0 else 0.0
    for up in (-1, 1):
        _vessel_tree(s, dx, dy, temporal + up * s.u(0.5, 0.8) * side, 4.0, 34, -up * side * 0.045, tree)
        _vessel_tree(
            s, dx, dy, temporal + math.pi + up * s.u(0.4, 0.9) * side, 3.0, 18, up * side * 0.02, tree
        )
    vessels = s.lines(tree)
    _paint(img, vessels, (0.55, 0.1, 0.05), 0.75)
    avoid = disc | mac
    for _ in range(int(rng.choice(4, p=[0.4, 0.25, 0.2, 0.15]))):
        r = s.u(3, 7)
        p = s.free_point(field & ~avoid & (d2 < 0.8), margin=r + 2)
        if p is not None:
            m = s.blob(*p, r, r * s.u(0.7, 1.0), s.u(0, 180), 0.2)
            _paint(img, m, (0.42, 0.06, 0.03))
            s.add("hemorrhage", m, colour="dark red")
            avoid = avoid | s.ellipse(*p, 2 * r, 2 * r)
    if s.chance(0.35):
        p = s.free_point(field & ~avoid & (d2 < 0.7), margin=14)
        if p is not None:
            m = np.zeros_like(field)
            for _ in range(int(rng.integers(5, 14))):
                m |= s.ellipse(
                    p[0] + s.u(-12, 12), p[1] + s.u(-9, 9), s.u(1.5, 3), s.u(1.5, 2.5), s.u(0, 180)
                )
            _paint(img, m, (0.96, 0.86, 0.36))
            s.add("hard exudate", m, shape="clustered", colour="yellow")
    img = s.blur(img, 0.8) + 0.006 * rng.standard_normal(img.shape, dtype=np.float32)
    img *= field[..., None]
    facts = ["right_eye" if side > 0 else "left_eye"]
    return s.finish(img, "fundus", field_mask=field, region="retina", view="", facts=facts)
