"""Synthetic CT, MR, X-ray and PET images (grey, mode ``L``), drawn as simple anatomy.

Conventions of the real modalities are kept where a reader would notice them: CT and X-ray use the
radiological orientation (the patient's right on the image's left, so the *right* kidney and the
*right* lung are on the left of the image), CT air is black and bone white, PET shows uptake as
brightness on a dark body. Every function takes a seeded generator and returns a
:class:`~clinkd.data.synth.scene.SynthImage`.
"""

from __future__ import annotations

import math

import numpy as np

from clinkd.data.synth.scene import Scene, SynthImage


def render_ct(rng: np.random.Generator) -> SynthImage:
    """Axial abdominal CT: fat, muscle wall, liver, spleen, kidneys, aorta, vertebra, lesions."""
    s = Scene(256, 256, rng)
    img = np.zeros((s.h, s.w), np.float32)
    cx, cy = s.w / 2 + s.u(-6, 6), s.h / 2 + s.u(-2, 8)
    rx, ry = s.u(100, 116), s.u(72, 86)
    body = s.blob(cx, cy, rx, ry, irregularity=0.03)
    img[body] = 0.30  # subcutaneous fat
    img[s.blob(cx, cy + 2, rx - s.u(6, 10), ry - s.u(6, 10), irregularity=0.02)] = 0.50  # muscle wall
    cavity = s.ellipse(cx, cy + 2, rx - 15, ry - 14)
    img[cavity] = 0.36  # intra-abdominal fat
    contrast = s.chance(0.6)
    front = cavity & (s.yy < cy + 10)
    for _ in range(int(rng.integers(6, 12))):  # bowel loops, some with gas
        p = s.free_point(front)
        if p is not None:
            r = s.u(5, 10)
            img[s.ellipse(*p, r, r * s.u(0.7, 1.0), s.u(0, 180)) & cavity] = 0.52
            if s.chance(0.4):
                img[s.ellipse(*p, r * 0.5, r * 0.4) & cavity] = 0.02
    spx, spy = cx + s.u(-3, 3), cy + ry * s.u(0.45, 0.55)
    organs = []
    if s.chance(0.6):
        gx, gy, gr = cx + rx * s.u(0.15, 0.35), cy - ry * s.u(0.35, 0.5), s.u(18, 26)
        m = s.blob(gx, gy, gr, gr * 0.8, s.u(-20, 20), 0.06) & cavity
        img[m] = 0.47
        img[m & (s.yy < gy - gr * 0.3)] = 0.02  # gas above the fluid level
        organs.append(("stomach", m))
    m = (
        s.blob(
            cx - rx * s.u(0.38, 0.48), cy - ry * s.u(0.05, 0.2), s.u(44, 58), s.u(40, 52), s.u(-20, 10), 0.06
        )
        & cavity
    )
    img[m] = 0.62 + 0.015 * s.smooth_noise(4)[m]
    liver = m
    organs.append(("liver", m))
    if s.chance(0.85):
        m = s.blob(cx + rx * s.u(0.55, 0.65), cy + s.u(-8, 12), s.u(13, 19), s.u(22, 30), s.u(15, 40), 0.05)
        m &= cavity
        img[m] = 0.58
        organs.append(("spleen", m))
    kidneys = []
    for side, name in ((-1, "right kidney"), (1, "left kidney")):
        if s.chance(0.85):
            kx, ky = spx + side * s.u(36, 46), spy - s.u(4, 14)
            m = s.blob(kx, ky, s.u(12, 16), s.u(18, 24), side * s.u(-30, -15), 0.04) & cavity
            img[m] = 0.76 if contrast else 0.58
            img[s.ellipse(kx - side * 6, ky, 4, 7) & m] = 0.38  # renal sinus fat
            organs.append((name, m))
            kidneys.append(m)
    ax, ay, ar = spx + s.u(4, 12), spy - s.u(18, 24), s.u(6, 9)
    m = s.ellipse(ax, ay, ar, ar)
    img[m] = 0.82 if contrast else 0.52
    organs.append(("aorta", m))
    vr = s.u(12, 15)
    vb = s.ellipse(spx, spy, vr, vr * 0.9)
    post = s.polygon(
        [(spx - 12, spy + vr), (spx + 12, spy + vr), (spx + 5, spy + vr + 24), (spx - 5, spy + vr + 24)]
    )
    vert = vb | post
    img[vert] = 0.93
    img[s.ellipse(spx, spy + vr + 5, 5, 4)] = 0.36  # spinal canal
    vert &= ~s.ellipse(spx, spy + vr + 5, 5, 4)
    organs.append(("vertebra", vert))
    for side in (-1, 1):  # paraspinal muscles
        img[s.ellipse(spx + side * 24, spy + vr + 10, 16, 12) & body & ~vert] = 0.50
    for name, m in organs:
        s.add(name, m)
    facts = ["ct_contrast" if contrast else "ct_plain"]
    # Lesions: hypodense (sometimes hyperdense) liver tumours, renal cysts.
    if s.chance(0.5):
        for _ in range(1 + int(s.chance(0.3))):
            r = s.u(5, 13)
            p = s.free_point(liver, margin=r + 2)
            if p is not None:
                m = s.blob(*p, r, r * s.u(0.75, 1.0), s.u(0, 180), 0.12)
                img[m] = 0.44 if s.chance(0.8) else 0.80
                s.add("liver tumor", m)
    if kidneys and s.chance(0.25):
        r = s.u(4, 7)
        p = s.free_point(kidneys[int(rng.integers(len(kidneys)))], margin=r)
        if p is not None:
            m = s.ellipse(*p, r, r)
            img[m] = 0.40
            s.add("kidney cyst", m)
    img = s.blur(img, 0.7) + body * (0.02 * rng.standard_normal(img.shape, dtype=np.float32))
    return s.finish(img, "ct", region="abdomen", view="axial", facts=facts, foreground=body)


def render_mr(rng: np.random.Generator) -> SynthImage:
    """Axial brain MR (T1 or T2): scalp, skull, cortex, white matter, lateral ventricles, tumour."""
    s = Scene(256, 256, rng)
    t2 = s.chance(0.5)
    csf, gm, wm = (0.92, 0.55, 0.40) if t2 else (0.12, 0.45, 0.66)
    img = np.zeros((s.h, s.w), np.float32)
    cx, cy = s.w / 2 + s.u(-5, 5), s.h / 2 + s.u(-4, 4)
    rx, ry = s.u(84, 94), s.u(102, 114)
    head = s.ellipse(cx, cy, rx, ry)
    img[head] = 0.78
    img[s.ellipse(cx, cy, rx - 5, ry - 5)] = 0.06  # skull
    img[s.ellipse(cx, cy, rx - 10, ry - 10)] = csf
    brain = s.blob(cx, cy, rx - 13, ry - 13, irregularity=0.015)
    img[brain] = gm
    white = s.blob(cx, cy, rx - 25, ry - 27, irregularity=0.07)
    img[white] = wm
    sulci = brain & ~white & (np.abs(s.smooth_noise(7)) < 0.1)
    img[sulci] = csf
    img[
        s.lines(
            [([(cx, cy - ry + 12), (cx, cy - ry * 0.35)], 2), ([(cx, cy + ry * 0.45), (cx, cy + ry - 12)], 2)]
        )
        & brain
    ] = csf  # falx
    s.add("brain", brain)
    vents = []
    for side, name in ((-1, "right lateral ventricle"), (1, "left lateral ventricle")):
        vx, vy, vry = cx + side * s.u(7, 11), cy - s.u(0, 10), s.u(18, 30)
        m = s.ellipse(vx, vy, s.u(4, 8), vry, side * s.u(6, 16))
        m |= s.ellipse(vx + side * 3, vy - vry * 0.85, s.u(5, 8), s.u(7, 10), -side * 25)
        m &= white
        img[m] = csf
        vents.append(s.add(name, m))
    vent_area = sum(int(v.mask.sum()) for v in vents) / brain.sum()
    facts = ["mr_t2" if t2 else "mr_t1", "ventriculomegaly" if vent_area > 0.06 else "ventricles_normal"]
    if s.chance(0.6):
        r = s.u(7, 20)
        avoid = vents[0].mask | vents[1].mask
        p = s.free_point(brain & ~avoid & (np.abs(s.xx - cx) > r * 0.6), margin=r + 3)
        if p is not None:
            edema = s.blob(*p, r * s.u(1.5, 2.0), r * s.u(1.4, 1.9), s.u(0, 180), 0.2) & brain
            img[edema] = 0.76 if t2 else 0.34
            m = s.blob(*p, r, r * s.u(0.7, 1.0), s.u(0, 180), 0.12) & brain
            ring = not t2 and s.chance(0.6)
            img[m] = 0.88 if (t2 or ring) else 0.28
            if ring:
                img[s.blob(*p, r * 0.6, r * 0.5, s.u(0, 180), 0.1) & m] = 0.25
            s.add("tumor", m, note="ring_enhancement" if ring else "edema")
    bias = 1 + 0.08 * s.smooth_noise(80)
    img = s.blur(img * bias, 0.6) + head * (0.025 * rng.standard_normal(img.shape, dtype=np.float32))
    return s.finish(img, "mr", region="head", view="axial", facts=facts, foreground=head)


def render_x(rng: np.random.Generator) -> SynthImage:
    """Frontal chest X-ray: lungs, heart, ribs, clavicles, spine, nodules or an effusion."""
    s = Scene(240, 288, rng)
    cx = s.w / 2 + s.u(-5, 5)
    img = np.full((s.h, s.w), 0.06, np.float32)
    j = lambda v: v + s.u(-4, 4)  # noqa: E731  jitter a coordinate
    body = s.polygon(
        [
            (j(cx - 28), 0),
            (j(cx + 28), 0),
            (j(cx + 34), 28),
            (j(cx + 104), 44),
            (j(cx + 116), 90),
            (j(cx + 112), s.h),
            (j(cx - 112), s.h),
            (j(cx - 116), 90),
            (j(cx - 104), 44),
            (j(cx - 34), 28),
        ]
    )
    img[body] = 0.55
    top, lungs, extent = s.u(44, 56), {}, []
    for side, name in ((-1, "right lung"), (1, "left lung")):
        m_, L = s.u(14, 20), s.u(86, 98)
        base = s.u(206, 226) + (6 if side > 0 else 0)
        hgt = base - top
        X = lambda f, m_=m_, L=L, side=side: cx + side * (m_ + f * (L - m_))  # noqa: E731
        pts = [
            (X(0.42), top),
            (X(0.78), top + 0.1 * hgt),
            (X(0.97), top + 0.4 * hgt),
            (X(1.0), base),
            (X(0.75), base - 0.07 * hgt),
            (X(0.4), base - 0.12 * hgt),
            (X(0.0), base - 0.1 * hgt),
            (X(0.0), top + 0.25 * hgt),
            (X(0.15), top + 0.06 * hgt),
        ]
        lungs[name] = (s.polygon(pts), base, X)
        extent.append(X(1.0))
    for m, _, X in lungs.values():
        tex = 0.14 + 0.035 * np.abs(s.smooth_noise(4))
        img[m] = tex[m]
        hx = X(0.1)
        img += m * 0.10 * np.exp(-(((s.xx - hx) / 18) ** 2 + ((s.yy - 140) / 30) ** 2))  # hilum
    img[s.polygon([(cx - 12, 0), (cx + 12, 0), (cx + 14, s.h), (cx - 14, s.h)])] = 0.6  # mediastinum, spine
    hrx, hry = s.u(38, 56), s.u(32, 42)
    heart = s.blob(cx + s.u(14, 26), lungs["left lung"][1] - s.u(34, 44), hrx, hry, s.u(-25, -10), 0.04)
    heart &= s.yy < lungs["left lung"][1] - s.u(6, 12)  # the heart sits on the diaphragm
    img[heart] = 0.58
    for name, (m, _, _) in lungs.items():
        s.add(name, m)
    s.add("heart", heart)
    for side, name in ((-1, "right clavicle"), (1, "left clavicle")):
        a, b = (cx + side * 16, top + s.u(0, 6)), (cx + side * s.u(82, 94), top - s.u(10, 18))
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + s.u(2, 6))
        m = s.lines([([a, mid, b], 6)])
        img += m * 0.2
        s.add(name, m, opaque=False, shape="elongated")
    ribs = []
    for side in (-1, 1):
        for i in range(9):
            y0 = top + 6 + i * s.u(17, 19)
            ribs.append(
                (
                    [
                        (cx + side * (14 + t * 96), y0 - 16 * math.sin(math.pi * t * 0.8) + 52 * t**2.5)
                        for t in np.linspace(0, 1, 14)
                    ],
                    5,
                )
            )
    near_lungs = (
        s.blur(((lungs["right lung"][0] | lungs["left lung"][0]) & ~heart).astype(np.float32), 4) > 0.1
    )
    img += s.lines(ribs) * near_lungs * 0.09
    if s.chance(0.6):  # gastric bubble under the left hemidiaphragm
        img[s.ellipse(cx + s.u(40, 60), lungs["left lung"][1] + s.u(14, 20), s.u(10, 16), s.u(6, 9))] = 0.25
    open_lung = (lungs["right lung"][0] | lungs["left lung"][0]) & ~heart
    ctr = (heart.any(axis=0).sum()) / (extent[1] - extent[0])
    facts = ["cardiomegaly" if ctr > 0.5 else "heart_normal"]
    if s.chance(0.45):
        for _ in range(1 + int(s.chance(0.3))):
            r = s.u(4, 11)
            p = s.free_point(open_lung, margin=r + 2)
            if p is not None:
                m = s.blob(*p, r, r * s.u(0.8, 1.0), 0, 0.08)
                img[m] += 0.28
                s.add("nodule", m)
    elif s.chance(0.3):
        name = "right lung" if s.chance(0.5) else "left lung"
        m0, base, X = lungs[name]
        side = -1 if name == "right lung" else 1
        level = base - s.u(24, 48)
        rise = np.clip((s.xx - X(0.0)) * side / abs(X(1.0) - X(0.0)), 0, 1) * 18
        m = m0 & (s.yy > level - rise) & ~heart
        img[m] = 0.56
        s.add("pleural effusion", m, shape="crescent-shaped")
    img = s.blur(img, 1.2) + 0.015 * rng.standard_normal(img.shape, dtype=np.float32)
    return s.finish(img, "x", region="chest", view="frontal", facts=facts, foreground=body)


def render_pet(rng: np.random.Generator) -> SynthImage:
    """Coronal whole-body PET (maximum intensity projection): physiological uptake and hot spots."""
    s = Scene(208, 320, rng)
    cx = s.w / 2 + s.u(-4, 4)
    img: np.ndarray = np.zeros((s.h, s.w), np.float32)
    head = s.ellipse(cx, 36, s.u(22, 26), s.u(28, 32))
    torso = s.blob(cx, 150, s.u(58, 66), s.u(86, 94), irregularity=0.02)
    pelvis = s.ellipse(cx, 232, s.u(54, 60), 32)
    legs = s.polygon([(cx - 52, 236), (cx - 4, 236), (cx - 8, 320), (cx - 40, 320)])
    legs |= s.polygon([(cx + 4, 236), (cx + 52, 236), (cx + 40, 320), (cx + 8, 320)])
    body = (
        head | torso | pelvis | legs | s.polygon([(cx - 11, 50), (cx + 11, 50), (cx + 13, 80), (cx - 13, 80)])
    )
    if s.chance(0.5):
        body |= s.ellipse(cx - 80, 150, 11, 82, 4) | s.ellipse(cx + 80, 150, 11, 82, -4)
    img[body] = 0.10 + 0.03 * s.smooth_noise(12)[body]
    organs = [
        ("brain", s.ellipse(cx, 34, s.u(17, 20), s.u(21, 24)), s.u(0.75, 0.95)),
        (
            "heart",
            s.blob(cx + s.u(6, 16), s.u(110, 122), s.u(14, 20), s.u(12, 16), s.u(-30, 0), 0.05),
            s.u(0.3, 0.85),
        ),
        ("liver", s.blob(cx - s.u(18, 28), s.u(148, 158), s.u(26, 34), s.u(18, 24), s.u(-15, 5), 0.05), 0.26),
        ("right kidney", s.ellipse(cx - s.u(20, 26), s.u(168, 176), 8, 14, 10), s.u(0.4, 0.6)),
        ("left kidney", s.ellipse(cx + s.u(20, 26), s.u(170, 178), 8, 14, -10), s.u(0.4, 0.6)),
        ("bladder", s.ellipse(cx + s.u(-3, 3), s.u(236, 246), s.u(11, 17), s.u(9, 13)), s.u(0.85, 1.0)),
    ]
    busy = np.zeros_like(body)
    for name, m, v in organs:
        img[m] = v
        s.add(name, m)
        busy |= m
    n = int(rng.choice(5, p=[0.2, 0.3, 0.25, 0.15, 0.1]))
    trunk = (torso | s.polygon([(cx - 13, 60), (cx + 13, 60), (cx + 13, 80), (cx - 13, 80)])) & ~busy
    for _ in range(n):
        r = s.u(3, 7)
        p = s.free_point(trunk, margin=r + 3)
        if p is None:
            continue
        m = s.blob(*p, r, r * s.u(0.8, 1.0), 0, 0.08)
        img[m] = s.u(0.7, 1.0)
        s.add("lesion", m)
        trunk &= ~s.ellipse(*p, 2 * r + 4, 2 * r + 4)
    img = s.blur(img, 1.4)
    img = (
        np.clip(
            img + 0.04 * np.sqrt(np.clip(img, 0, 1)) * rng.standard_normal(img.shape, dtype=np.float32), 0, 1
        )
        ** 0.85
    )
    return s.finish(
        img.astype(np.float32),
        "pet",
        region="whole body",
        view="coronal",
        facts=["pet_physiologic"],
        foreground=body,
    )
