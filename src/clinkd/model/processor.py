"""An image-only Qwen2-VL processor, its chat template, and batch building for training / generation.

``Qwen2VLProcessor`` insists on a torchvision video processor, which these CPU machines lack (see
docs/platform.md). :class:`ClinkdProcessor` subclasses it without the video part: it turns chat-formatted
text plus images into ``input_ids``, ``attention_mask``, ``mm_token_type_ids``, ``pixel_values`` and
``image_grid_thw``, saves and loads like any processor, and serves real Qwen2-VL checkpoints as well as
the tiny models.

Pixel budget. The image processor's ``size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}``
bounds the resized image area (``smart_resize``), hence the visual tokens of an image (area / 28²).
:func:`resolve_pixel_budget` decides it for a loaded checkpoint: explicit values win; otherwise a
*real* checkpoint gets the ClinKD release budget 512·512 .. 1024·1024 (:data:`RELEASE_MIN_PIXELS`,
:data:`RELEASE_MAX_PIXELS`), and a folder whose saved ``max_pixels`` is already within the release
maximum keeps its own (tiny models of ``clinkd model init``: 224², and clinkd-saved fine-tunes, which
record the budget they trained with). A real checkpoint is recognised by its saved ``max_pixels`` being
above the release maximum: the hub's Qwen2/2.5-VL processors ship 12,845,056 (up to 16k visual tokens
an image), Qwen3-VL's 16,777,216.

Saved folders are plain checkpoints (:meth:`ClinkdProcessor.save_pretrained`): ``processor_class`` names
the stock class (``Qwen2VLProcessor``, or the hub's own class of the folder it was loaded from), and the
hub's flat ``preprocessor_config.json`` (with ``min_pixels``/``max_pixels``) is written beside the
unified ``processor_config.json``. Stock ``AutoProcessor`` then builds the stock processor — which needs
torchvision for its video part: on a machine without torchvision it raises an ImportError saying so
instead of silently returning the bare tokenizer, and :class:`ClinkdProcessor` (``clinkd.model.load``)
loads the folder everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2VLProcessor
from transformers.image_utils import SizeDict

from clinkd.data.conventions import BoxCodec
from clinkd.upstream import Qwen2VLImageProcessorPil, init_processor_without_video

__all__ = [
    "CHAT_TEMPLATE",
    "RELEASE_MAX_PIXELS",
    "RELEASE_MIN_PIXELS",
    "STOCK_PROCESSOR_CLASSES",
    "ClinkdProcessor",
    "box_codec",
    "build_batch",
    "check_pixel_budget",
    "make_image_processor",
    "pixel_budget",
    "resolve_pixel_budget",
    "set_pixel_budget",
]


#: The ClinKD release's image budget (its training/inference scripts: min_pixels 512*512, max_pixels 1024*1024).
RELEASE_MIN_PIXELS = 512 * 512
RELEASE_MAX_PIXELS = 1024 * 1024
#: Stock processor classes a saved folder may name; anything else is saved as ``Qwen2VLProcessor``.
STOCK_PROCESSOR_CLASSES = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor", "Qwen3VLProcessor")

#: Qwen2-VL's chat format (image-only): default system prompt, ``<|vision_start|><|image_pad|><|vision_end|>``
#: for each ``{"type": "image"}`` item, ``<|im_start|>assistant\n`` as the generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}{{ raise_exception('clinkd processors are image-only') }}"
    "{% elif 'text' in item %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_image_processor(
    min_pixels: int = 56 * 56, max_pixels: int = 224 * 224, patch_size: int = 14, merge_size: int = 2
) -> Qwen2VLImageProcessorPil:
    """Qwen2-VL image processor (PIL backend); the defaults turn a 224×224 image into 8×8 = 64 tokens.

    ``min_pixels``/``max_pixels`` bound the resized image area; a side is resized to a multiple of
    ``patch_size * merge_size``.
    """
    return Qwen2VLImageProcessorPil(
        patch_size=patch_size,
        merge_size=merge_size,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
    )


def pixel_budget(processor) -> tuple[int, int]:
    """``(min_pixels, max_pixels)`` the processor resizes images to (its image processor's ``size``)."""
    ip = getattr(processor, "image_processor", processor)
    size = ip.size
    get = size.get if isinstance(size, dict) else lambda k: getattr(size, k, None)
    lo = get("shortest_edge") or get("min_pixels") or getattr(ip, "min_pixels", None)
    hi = get("longest_edge") or get("max_pixels") or getattr(ip, "max_pixels", None)
    if lo is None or hi is None:  # what int(None) would raise, saying why
        raise TypeError(f"the image processor has no pixel budget (size {size!r})")
    return int(lo), int(hi)


def box_codec(model, processor) -> BoxCodec:
    """The model's box convention bound to the processor's resize (patch × merge factor, pixel budget):
    what converts boxes at the model's boundary (:mod:`clinkd.data.conventions`)."""
    from clinkd.model.modeling import get_box_convention

    ip = getattr(processor, "image_processor", processor)
    lo, hi = pixel_budget(processor)
    factor = int(getattr(ip, "patch_size", 14)) * int(getattr(ip, "merge_size", 2))
    return BoxCodec(get_box_convention(model.config), factor=factor, min_pixels=lo, max_pixels=hi)


def check_pixel_budget(
    min_pixels,
    max_pixels,
    names: tuple[str, str] = ("min_pixels", "max_pixels"),
    error: type[Exception] | None = None,
) -> None:
    """Refuse a budget that is not two positive integers with ``min <= max`` (``None`` = not given).

    The one check of a budget wherever it comes from: ``names`` are what the user wrote (``--min-pixels``,
    ``model.min_pixels``) and ``error`` the error class raised (default :class:`~clinkd.errors.ClinkdError`).
    """
    from clinkd.errors import ClinkdError

    error = error or ClinkdError
    for name, v in zip(names, (min_pixels, max_pixels)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise error(f"{name} must be a positive integer number of pixels, got {v!r}")
    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise error(f"{names[0]} ({min_pixels}) is larger than {names[1]} ({max_pixels})")


def resolve_pixel_budget(
    processor, min_pixels: int | None = None, max_pixels: int | None = None
) -> tuple[int, int]:
    """The budget to use for ``processor``: explicit values win; else the release budget for a real
    checkpoint (saved ``max_pixels`` above :data:`RELEASE_MAX_PIXELS`), else the processor's own."""
    check_pixel_budget(min_pixels, max_pixels)
    lo, hi = pixel_budget(processor)
    if hi > RELEASE_MAX_PIXELS:  # a hub processor (12.8 MP): the ClinKD release budget
        lo, hi = RELEASE_MIN_PIXELS, RELEASE_MAX_PIXELS
    lo = min_pixels if min_pixels is not None else lo
    hi = max_pixels if max_pixels is not None else hi
    if min_pixels is not None and max_pixels is None:
        hi = max(hi, lo)
    if max_pixels is not None and min_pixels is None:
        lo = min(lo, hi)
    check_pixel_budget(lo, hi)
    return lo, hi


def set_pixel_budget(processor, min_pixels: int, max_pixels: int):
    """Make the processor resize images into ``[min_pixels, max_pixels]`` (in place; returns it)."""
    check_pixel_budget(min_pixels, max_pixels)
    ip = getattr(processor, "image_processor", processor)
    ip.size = SizeDict(shortest_edge=int(min_pixels), longest_edge=int(max_pixels))
    for attr in ("min_pixels", "max_pixels"):  # older/fast processors may keep these too
        if getattr(ip, attr, None) is not None:
            setattr(ip, attr, int(min_pixels if attr == "min_pixels" else max_pixels))
    return processor


def _read_processor_class(folder: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        try:
            cls = json.loads((folder / name).read_text(encoding="utf-8")).get("processor_class")
        except (OSError, ValueError, AttributeError):
            continue
        if cls in STOCK_PROCESSOR_CLASSES:
            return cls
    return None


class ClinkdProcessor(Qwen2VLProcessor):
    """Image-only ``Qwen2VLProcessor``: ``processor(images=..., text=..., padding=True, return_tensors="pt")``.

    Each ``<|image_pad|>`` in the text is expanded to the image's number of merged tokens, and
    ``mm_token_type_ids`` (B, L) marks them with 1 — what the model's position ids are computed from.
    """

    # the parameter names are the processor's parts (ProcessorMixin.get_attributes): no video_processor
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # the parent's __init__ wants a video processor: set what it would set, then skip it (clinkd.upstream)
        init_processor_without_video(self, image_processor, tokenizer, chat_template)
        #: the stock class written as ``processor_class`` on save (the hub folder's own when loaded from one)
        patch = getattr(image_processor, "patch_size", 14)
        self.stock_processor_class = "Qwen3VLProcessor" if patch == 16 else "Qwen2VLProcessor"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        processor = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        folder = Path(pretrained_model_name_or_path)
        if folder.is_dir():
            processor.stock_processor_class = _read_processor_class(folder) or processor.stock_processor_class
        return processor

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Save as a plain checkpoint: stock ``processor_class`` everywhere (not ``ClinkdProcessor``, which
        stock ``AutoProcessor`` cannot resolve and answers with a bare tokenizer), plus the hub's flat
        ``preprocessor_config.json`` recording the pixel budget as ``min_pixels``/``max_pixels``."""
        files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        out = Path(save_directory)
        stock = self.stock_processor_class
        for name in ("processor_config.json", "tokenizer_config.json"):
            path = out / name
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("processor_class") == type(self).__name__:
                    data["processor_class"] = stock
                    _write_json(path, data)
        flat = self.image_processor.to_dict()
        lo, hi = pixel_budget(self)
        flat.update(min_pixels=lo, max_pixels=hi, processor_class=stock)
        _write_json(out / "preprocessor_config.json", flat)
        return files


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def build_batch(
    processor: ClinkdProcessor,
    images: Sequence,
    questions: Sequence[str],
    *,
    padding_side: str = "left",
    system: str | None = None,
) -> dict[str, torch.Tensor]:
    """Tokenise image + question pairs with the chat template, ready for ``model.generate``.

    Labelled training batches come from :class:`clinkd.train.dataset.ConversationCollator` (the one home of
    label masking).

    Args:
        processor: a :class:`ClinkdProcessor` (or any Qwen2-VL processor).
        images: one image per sample (PIL image or array), or a list of images per sample (each gets its
            own image slot, ``<|vision_start|><|image_pad|><|vision_end|>``, before the question), or
            ``None`` for a text-only sample.
        questions: the user turn of each sample; the prompt ends with ``<|im_start|>assistant\\n``.
        padding_side: ``"left"`` (generation) unless told otherwise.
        system: optional system prompt (the template's default is Qwen's "You are a helpful assistant.").

    Returns:
        dict with ``input_ids``, ``attention_mask``, ``mm_token_type_ids`` (B, L), ``pixel_values``
        (patches, C·T·P·P) and ``image_grid_thw`` (N, 3) when there are images. Pass it as ``model(**batch)``
        or ``model.generate(**batch, ...)``.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(images)} image entries")
    tok = processor.tokenizer
    prompts, flat_images = [], []
    for sample_images, question in zip(images, questions):
        if sample_images is None:
            sample_images = []
        elif not isinstance(sample_images, (list, tuple)):
            sample_images = [sample_images]
        flat_images.extend(sample_images)
        content = [{"type": "image"} for _ in sample_images] + [{"type": "text", "text": question}]
        # a turn's content is text or a list of parts (transformers' annotation admits text only)
        messages: list[dict[str, Any]] = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": content}
        ]
        prompts.append(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    old_side = tok.padding_side
    tok.padding_side = padding_side
    try:
        batch = processor(images=flat_images or None, text=prompts, padding=True, return_tensors="pt")
    finally:
        tok.padding_side = old_side
    return dict(batch)
