"""Draw boxes and their labels on an image (for the gallery, ``clinkd ask`` and the web app).

Boxes are :class:`~clinkd.data.boxes.Box` objects on the 0–1000 scale and are mapped to the pixels of
the image they are drawn on, so the same annotation draws correctly on a resized copy.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from clinkd.data.boxes import Box

# Distinct, saturated colours that read on grey, pink and orange images alike.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 255, 127),
    (255, 215, 0),
    (0, 191, 255),
    (255, 64, 160),
    (255, 128, 0),
    (160, 120, 255),
    (0, 255, 255),
    (255, 60, 60),
    (180, 255, 60),
    (255, 160, 200),
    (90, 140, 255),
    (255, 255, 255),
)


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's built-in font at ``size`` pixels (scalable since Pillow 10.1; bitmap fallback before)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def label_colours(labels: list[str | None]) -> dict[str | None, tuple[int, int, int]]:
    """One palette colour per distinct label, in order of first appearance (cycling past 12)."""
    out: dict[str | None, tuple[int, int, int]] = {}
    for lab in labels:
        if lab not in out:
            out[lab] = PALETTE[len(out) % len(PALETTE)]
    return out


def draw_annotations(
    image: Image.Image,
    items: list[tuple[str | None, Box]],
    *,
    line_width: int | None = None,
    font_size: int | None = None,
    colours: dict[str | None, tuple[int, int, int]] | None = None,
) -> Image.Image:
    """A copy of ``image`` (as RGB) with each ``(label, box)`` drawn: outline plus a label tag.

    Args:
        image: any PIL image; grey images are converted to RGB.
        items: ``(label or None, box on the 0–1000 scale)``; boxes are clipped to the image.
        line_width: outline width in pixels (default: about 1/150 of the image's larger side, >= 2).
        font_size: label height in pixels (default: about 1/22 of the larger side, >= 10).
        colours: label -> RGB; default :func:`label_colours` (the same label gets the same colour).

    Labels sit above their box when there is room, else just inside its top edge, on a filled tag
    of the box's colour with black text, so they read on any background.
    """
    out = image.convert("RGB")
    w, h = out.size
    side = max(w, h)
    lw = line_width or max(2, round(side / 150))
    fnt = font(font_size or max(10, round(side / 22)))
    colours = {**label_colours([lab for lab, _ in items]), **(colours or {})}
    draw = ImageDraw.Draw(out)
    for label, box in items:
        x1, y1, x2, y2 = box.to_pixels(w, h)
        x1, x2 = sorted((min(max(x1, 0), w - 1), min(max(x2, 0), w - 1)))
        y1, y2 = sorted((min(max(y1, 0), h - 1), min(max(y2, 0), h - 1)))
        col = colours[label]
        draw.rectangle([x1, y1, x2, y2], outline=col, width=lw)
        if not label:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), label, font=fnt)
        tw, th = right - left + 4, bottom - top + 4
        tx = min(max(0, x1), max(0, w - tw))
        ty = y1 - th if y1 - th >= 0 else y1 + lw
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=col)
        draw.text((tx + 2 - left, ty + 2 - top), label, fill=(0, 0, 0), font=fnt)
    return out
