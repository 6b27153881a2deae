"""A dataset written in a model family's box convention, for another trainer (``clinkd data convert
--box-convention``, e.g. LLaMA-Factory): every box of every turn converted for the size the family's
processor resizes its image to, and a side file recording that resize (docs/guide.md, "Boxes in each
family's own coordinates"). The conventions themselves: :mod:`clinkd.data.conventions`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from clinkd.data.conventions import BoxCodec, convention_named, resized_size
from clinkd.data.images import image_size
from clinkd.data.sample import Turn
from clinkd.errors import DataError

__all__ = ["FACTORS", "HUB_PIXEL_BUDGETS", "write_in_convention"]

#: patch size × merge size of each family's processor (Qwen3-VL: 16-pixel patches)
FACTORS = {"medgrit": 28, "qwen2_vl": 28, "qwen2_5_vl": 28, "qwen3_vl": 32}
#: (min_pixels, max_pixels) of the hub checkpoints' processors: what another trainer (LLaMA-Factory) feeds
#: the model when it leaves the processor as shipped
HUB_PIXEL_BUDGETS = {
    "medgrit": (3136, 12845056),
    "qwen2_vl": (3136, 12845056),
    "qwen2_5_vl": (3136, 12845056),
    "qwen3_vl": (65536, 16777216),
}


def write_in_convention(samples, dst, convention: str, image_dir, *, min_pixels: int, max_pixels: int):
    """``samples`` with every box of every turn written in ``convention`` (for a dataset another tool
    trains on, e.g. LLaMA-Factory), and the side file ``<dst stem>.boxes.json`` recording the convention,
    the resize assumed and each image's original and resized size. Returns ``(samples, side file)``.

    ``min_pixels``/``max_pixels``: the budget of the processor that will read the output — absolute
    coordinates (``qwen2_5_vl``) are pixels of the image it resizes to.
    """
    lo, hi = min_pixels, max_pixels
    conv = convention_named(convention)
    codec = BoxCodec(conv, factor=FACTORS[conv.name], min_pixels=lo, max_pixels=hi)
    image_dir = Path(image_dir)
    sizes: dict[str, dict] = {}
    out = []
    for k, s in enumerate(samples):
        path = image_dir / s.image
        if s.image not in sizes:
            if not path.is_file():
                raise DataError(f"image {path} not found (pass --images DIR)", dst, k)
            size = image_size(path)
            sizes[s.image] = {
                "size": list(size),
                "resized": list(resized_size(*size, factor=codec.factor, min_pixels=lo, max_pixels=hi)),
            }
        size = tuple(sizes[s.image]["size"])
        turns = [Turn(codec.to_model(t.question, size), codec.to_model(t.answer, size)) for t in s.turns]
        out.append(dataclasses.replace(s, turns=turns))  # every view and the meta kept
    side = Path(dst).with_name(Path(dst).stem + ".boxes.json")
    side.parent.mkdir(parents=True, exist_ok=True)
    side.write_text(
        json.dumps(
            {
                "box_convention": conv.key,
                "frame": conv.frame,
                "form": conv.form,
                "factor": codec.factor,
                "min_pixels": lo,
                "max_pixels": hi,
                "note": "resized = (width, height) the HF image processor feeds the model (transformers smart_resize with "
                "min_pixels/max_pixels above); absolute coordinates are pixels of that image, so train with that "
                "processor budget and without any other rescaling (LLaMA-Factory: image_max_pixels at least the "
                "largest image area, image_min_pixels at most the smallest)",
                "images": sizes,
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return out, side
