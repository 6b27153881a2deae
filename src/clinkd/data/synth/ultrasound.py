"""Synthetic B-mode ultrasound (grey, wider than tall): a speckled sector with a thyroid or breast scene.

Speckle is the magnitude of a spatially correlated complex Gaussian field (Rayleigh statistics),
multiplied into a reflectivity map and log-compressed, as a scanner displays it.
"""

from __future__ import annotations

import math

import numpy as np

from clinkd.data.synth.scene import Scene, SynthImage


def render_ultrasound(rng: np.random.Generator) -> SynthImage:
    s = Scene(320, 240, rng)
    ax, ay = s.w / 2, -30.0
    dist = np.sqrt((s.xx - ax) ** 2 + (s.yy - ay) ** 2)
    ang = np.degrees(np.arctan2(s.xx - ax, s.yy - ay))
    half = s.u(34, 40)
    fan = (dist > 42) & (dist < 262) & (np.abs(ang) < half)
    depth = np.clip((dist - 42) / 220, 0, 1)
    refl = np.full((s.h, s.w), 0.4, np.float32) * (1 + 0.3 * s.smooth_noise(18))
    refl[dist < 50] = 0.95  # skin line
    refl[(dist >= 50) & (dist < 50 + s.u(14, 26))] = 0.32  # subcutaneous fat
    thyroid = s.chance(0.5)
    organ = None
    if thyroid:
        refl[(dist > 76) & (dist < 96)] = 0.35  # strap muscles
        tx, ty = ax + s.u(-25, 25), s.u(120, 140)
        organ = s.blob(tx, ty, s.u(70, 90), s.u(32, 42), s.u(-8, 8), 0.04)
        refl[organ] = 0.8
        s.add("thyroid gland", organ)
        cside = 1 if s.chance(0.5) else -1
        cr = s.u(13, 18)
        car = s.ellipse(tx + cside * s.u(82, 96), ty + s.u(-6, 10), cr, cr * 0.9)
        refl[car] = 0.03
        s.add("carotid artery", car)
        host, cyst_p = organ & ~car, 0.3
    else:
        muscle = dist > s.u(190, 215)  # pectoralis muscle, striated
        refl[muscle] = (0.42 + 0.2 * (np.sin(s.yy * 1.3 + 0 * s.xx) > 0.6))[muscle]
        host, cyst_p = fan & (dist > 85) & (dist < 180), 0.35
    region = "thyroid" if thyroid else "breast"
    if not thyroid or s.chance(0.8):
        cyst = s.chance(cyst_p)
        r = s.u(12, 26) if not thyroid else s.u(10, 20)
        p = s.free_point(host & (np.abs(ang) < half - 10), margin=r * 0.7)
        if p is not None:
            irr = 0.03 if cyst else (0.18 if not thyroid else 0.07)
            m = s.blob(*p, r * s.u(1.1, 1.5), r, s.u(-15, 15), irr, 7 if irr > 0.1 else 4)
            below = (s.yy > p[1]) & (np.abs(s.xx - p[0]) < r * 0.9) & ~m
            note: str | None
            if cyst:
                refl[m] = 0.02
                refl[below] *= 1.6
                name, note, shape = "cyst", "posterior_enhancement", None
            else:
                refl[m] = 0.07 * (1 + 0.3 * s.smooth_noise(5)[m])
                refl[below] *= 0.45 if not thyroid else 0.8
                name = "nodule" if thyroid else "mass"
                note = "posterior_shadowing" if not thyroid else None
                shape = "irregular" if irr > 0.1 else None
            s.add(name, m, note=note, shape=shape)
    refl = s.blur(refl, 1.0)
    re_, im_ = (s.blur(rng.standard_normal((s.h, s.w), dtype=np.float32), (0.7, 1.8)) for _ in range(2))
    speckle = np.sqrt(re_**2 + im_**2) / 0.3
    gain = np.exp(-1.1 * depth) * (1 + 0.9 * depth)  # attenuation, partly compensated (TGC)
    x = np.clip(refl, 0, None) * speckle * gain
    img = np.log1p(4 * x) / math.log1p(4 * 1.8)
    img = np.clip(img, 0, 1) * fan
    return s.finish(img.astype(np.float32), "ultrasound", field_mask=fan, region=region, view="")
