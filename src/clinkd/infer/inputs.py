"""What a prediction run reads besides its test file: the images of each sample, found in the image folder
without ever leaving it, and the model, loaded from its folder with the image budget asked for.

Used by :func:`clinkd.infer.predict.predict_file` and :func:`clinkd.infer.ask.ask_image`.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from clinkd.data.images import image_path
from clinkd.data.sample import Sample
from clinkd.errors import ClinkdError, DataError

__all__ = ["default_image_dir", "load_for_inference", "resolve_image", "resolve_images"]


def resolve_image(
    sample: Sample, image_dir: Path, source: str | PathLike | None = None, record: int | str | None = None
) -> Path:
    """``image_dir / sample.image``, else ``image_dir / <file name>`` (paths inside ``<img>`` tags vary).

    A path leaving the image folder (absolute, ``..``, a link out) is never used
    (:func:`clinkd.data.images.image_path`): its file name is looked for in the folder instead, and when
    that is not a usable name either, :class:`~clinkd.errors.DataError` names ``source`` and ``record``.
    """
    return _resolve_name(sample.image, image_dir, source, record)


def resolve_images(
    sample: Sample, image_dir: Path, source: str | PathLike | None = None, record: int | str | None = None
) -> list[Path]:
    """Every image of ``sample`` (:attr:`~clinkd.data.sample.Sample.images`), each as :func:`resolve_image`."""
    return [_resolve_name(name, image_dir, source, record) for name in sample.images]


def _resolve_name(
    image: str, image_dir: Path, source: str | PathLike | None, record: int | str | None
) -> Path:
    candidates, refused = [], None
    for name in (image, Path(image).name):
        try:
            candidates.append(image_path(image_dir, name, source, record))
        except DataError as err:
            refused = err
    if refused is not None and not candidates:
        raise refused
    for cand in candidates:
        if cand.is_file():
            return cand
    return candidates[0]


def default_image_dir(test_file: Path) -> Path:
    images = test_file.parent / "images"
    return images if images.is_dir() else test_file.parent


def load_for_inference(
    model: Any,
    processor: Any,
    device: str | None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
):
    """A model folder loaded (with the image budget, :func:`clinkd.model.load`), or a loaded model with its
    processor (an explicit budget is applied to that processor)."""
    if isinstance(model, (str, PathLike)):
        from clinkd.model import load

        model, loaded = load(model, min_pixels=min_pixels, max_pixels=max_pixels)
        processor = processor or loaded
    elif processor is not None and (min_pixels is not None or max_pixels is not None):
        from clinkd.model.processor import resolve_pixel_budget, set_pixel_budget

        set_pixel_budget(processor, *resolve_pixel_budget(processor, min_pixels, max_pixels))
    if processor is None:
        raise ClinkdError("predict_file needs the processor when given a loaded model (pass processor=...)")
    if device is not None:
        model = model.to(device)
    return model, processor
