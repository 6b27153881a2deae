"""``clinkd.model.load``: a local Qwen-VL checkpoint → its MCG-RoPE model and processor, in one call."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

from clinkd.errors import ClinkdError
from clinkd.model.modeling import MODEL_CLASSES, RopeSettings, get_rope_settings, set_rope_settings
from clinkd.model.processor import ClinkdProcessor, check_pixel_budget, resolve_pixel_budget, set_pixel_budget

__all__ = ["LoadedModel", "ModelLoadError", "load"]

log = logging.getLogger(__name__)


class ModelLoadError(ClinkdError):
    """A model directory that cannot be loaded; the message says why."""


class LoadedModel(NamedTuple):
    """What :func:`load` returns; unpacks as ``model, processor = load(path)``."""

    model: Any
    processor: ClinkdProcessor | None


def load(
    path: str | Path,
    rope: RopeSettings | dict | str | None = None,
    *,
    dtype: Any = None,
    device_map: Any = None,
    with_processor: bool = True,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    **kwargs,
) -> LoadedModel:
    """Load a Qwen2-VL / Qwen2.5-VL / Qwen3-VL directory as the matching MCG-RoPE model class.

    Args:
        path: a local model directory (``config.json`` + safetensors; a stock Qwen2-VL-2B/7B-Instruct,
            Qwen2.5-VL or Qwen3-VL download, or a directory saved by clinkd). Nothing is downloaded.
        rope: ``None`` keeps the scheme the checkpoint was saved with (``config.clinkd_rope``), and uses
            the ClinKD release setting (MCG-RoPE, gaps 2, strides 1) for a stock checkpoint; ``"mcg"`` or
            ``"stock"`` (alias ``"mrope"``), or a dict of :class:`RopeSettings` fields, overrides it.
        dtype: passed to ``from_pretrained`` (e.g. ``torch.bfloat16``, ``"auto"``); ``None``: its default.
        device_map: passed to ``from_pretrained`` (e.g. ``"auto"``); ``None``: no dispatch.
        with_processor: also load the tokenizer + image processor of ``path`` (image-only
            :class:`ClinkdProcessor`); ``None`` in the result when ``False``.
        min_pixels, max_pixels: the image budget (resized area in pixels) the processor applies. ``None``:
            a real checkpoint (saved ``max_pixels`` above 1024·1024, e.g. the hub's 12,845,056) gets the
            ClinKD release budget 512·512 .. 1024·1024; a folder within it (tiny models, clinkd-saved
            fine-tunes, which record the budget they trained with) keeps its own
            (:func:`~clinkd.model.processor.resolve_pixel_budget`).
        **kwargs: further ``from_pretrained`` arguments (e.g. ``attn_implementation``).

    Returns:
        :class:`LoadedModel` ``(model, processor)``.
    """
    check_pixel_budget(min_pixels, max_pixels)
    directory = Path(path)
    if not directory.is_dir():
        raise ModelLoadError(
            f"{str(path)!r} is not a local directory. clinkd loads models offline only (no hub access at run "
            "time): download the checkpoint elsewhere (e.g. `huggingface-cli download Qwen/Qwen2-VL-2B-Instruct "
            "--local-dir DIR`) or build a tiny one with `clinkd model init`, and pass the local directory"
        )
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{directory} has no config.json: not a transformers model directory")
    try:
        raw = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{config_file} is not readable JSON: {err}") from err
    model_type = raw.get("model_type")
    if model_type not in MODEL_CLASSES:
        raise ModelLoadError(
            f"{config_file} has model_type {model_type!r}; clinkd supports {sorted(MODEL_CLASSES)}"
        )
    cls, _ = MODEL_CLASSES[model_type]
    config = cls.config_class.from_pretrained(directory, local_files_only=True)
    settings = RopeSettings.from_value(rope) if rope is not None else get_rope_settings(config)
    set_rope_settings(config, settings)
    load_kwargs = dict(kwargs, config=config, local_files_only=True)
    if dtype is not None:
        load_kwargs["dtype"] = dtype
    if device_map is not None:
        load_kwargs["device_map"] = device_map
    try:
        model, info = cls.from_pretrained(directory, output_loading_info=True, **load_kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load the model weights of {directory}: {err}") from err
    missing = sorted(info.get("missing_keys") or [])
    if missing:  # from_pretrained only warns; a silently re-initialised tensor is a broken model
        raise ModelLoadError(
            f"{directory}: {len(missing)} weights are missing from the checkpoint (e.g. {missing[:3]}); it does "
            f"not match {cls.__name__}"
        )
    if info.get("unexpected_keys"):
        log.warning("%s: ignored %d unexpected weights (e.g. %s)", directory, len(info["unexpected_keys"]),
                    sorted(info["unexpected_keys"])[:3])
    processor = None
    if with_processor:
        try:
            processor = ClinkdProcessor.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, TypeError) as err:
            raise ModelLoadError(
                f"cannot load the tokenizer/image processor of {directory}: {err} (pass with_processor=False "
                "to load the model alone)"
            ) from err
        lo, hi = resolve_pixel_budget(processor, min_pixels, max_pixels)
        set_pixel_budget(processor, lo, hi)
        log.info("%s: images resized into %d..%d pixels (at most %d visual tokens each)", directory, lo, hi,
                 hi // (processor.image_processor.patch_size * processor.image_processor.merge_size) ** 2)
    return LoadedModel(model, processor)
