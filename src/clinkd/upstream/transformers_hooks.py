"""transformers hooks of the model, the processor and the Trainer's arguments (``clinkd.model``, ``clinkd.train``).

Checked against transformers 5.23.0; each function's docstring says what upstream shape it relies on, and
``tests/test_upstream.py`` checks it.
"""

from __future__ import annotations

import functools
import inspect

from transformers import Qwen2VLProcessor
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

__all__ = [
    "Qwen2VLImageProcessorPil",
    "init_processor_without_video",
    "keep_used_weight_conversions",
    "set_up_devices_again",
    "share_checkpoint_conversion_mapping",
    "smart_resize",
    "swap_inner_model_class",
    "trim_decode_step_positions",
]


# --------------------------------------------------------------------------------------------------------
# Model hooks (clinkd.model.modeling)
# --------------------------------------------------------------------------------------------------------


def trim_decode_step_positions(position_ids, compute_3d_position_ids, args: tuple, kwargs: dict):
    """``position_ids = compute_3d_position_ids(*args, **kwargs)`` (the upstream method), cut to the new tokens.

    In transformers 5.23 a forward with ``past_key_values``, the full (B, past + new) attention mask and no
    ``position_ids`` builds positions for the whole mask, ``(3, B, past + new)``, and the attention then
    fails on the shape. The last ``new`` columns are the right ones (``cumsum(mask) − 1 + rope_deltas``,
    text continuing after the largest prompt position, padding skipped): keep those. ``generate`` never
    takes this path (it passes ``position_ids``), so its values are unchanged.

    Relies on ``compute_3d_position_ids`` having an ``inputs_embeds`` (B, new, D) parameter; upstream's own
    forward passes it by keyword. Given positionally, it is found by its place in the upstream signature
    (second in Qwen2-VL and Qwen3-VL, fourth in Qwen2.5-VL).

    Args:
        position_ids: (3, B, T) from upstream, or ``None`` (upstream lets the model infer them).
        compute_3d_position_ids: the upstream method (bound or not) that was called.
        args, kwargs: the arguments it was called with (``self`` excluded).

    Returns:
        (3, B, new), or ``position_ids`` unchanged when it already has ``new`` columns or is ``None``.
    """
    if "inputs_embeds" in kwargs:
        embeds = kwargs["inputs_embeds"]  # (B, new, D)
    else:
        index = _parameter_index(
            getattr(compute_3d_position_ids, "__func__", compute_3d_position_ids), "inputs_embeds"
        )  # counting self
        embeds = args[index - 1] if index is not None and 0 < index <= len(args) else None
    if position_ids is not None and embeds is not None and position_ids.shape[-1] > embeds.shape[1]:
        position_ids = position_ids[..., -embeds.shape[1] :]  # (3, B, new)
    return position_ids


@functools.cache
def _parameter_index(function, name: str) -> int | None:
    params = list(inspect.signature(function).parameters)
    return params.index(name) if name in params else None


def swap_inner_model_class(model, inner_class: type) -> None:
    """Make ``model.model`` (the inner model the stock ``__init__`` built) an instance of ``inner_class``.

    The subclass adds no parameter and no ``__init__``, so building the stock model and swapping keeps
    every weight and module name. Relies on the stock ``Qwen*VLForConditionalGeneration.__init__``
    building its inner model as ``self.model``, of the stock class ``inner_class`` extends.
    """
    model.model.__class__ = inner_class  # no new parameters: a class swap, not a rebuild


def share_checkpoint_conversion_mapping(ours: type, stock: type) -> bool:
    """Register the stock class's checkpoint-key mapping under ``ours``'s class name; ``False`` when the
    stock class has none (Qwen3-VL checkpoints already use the live names).

    ``from_pretrained`` (``get_model_conversion_mapping``) looks mappings up **by class name** and skips
    those of a class defined outside transformers unless registered by the user, so a renamed subclass
    would load a stock checkpoint (``model.layers.*``, ``visual.*``) with the language model missing
    (docs/platform.md, "The key-mapping trap").
    """
    mapping = get_checkpoint_conversion_mapping(stock.__name__)
    if mapping is None:
        return False
    register_checkpoint_conversion_mapping(ours.__name__, mapping, overwrite=True)
    return True


# --------------------------------------------------------------------------------------------------------
# Processor hook (clinkd.model.processor)
# --------------------------------------------------------------------------------------------------------


def init_processor_without_video(processor, image_processor, tokenizer, chat_template=None) -> None:
    """``Qwen2VLProcessor.__init__`` for an image-only subclass: no video processor (which needs torchvision).

    Sets what the stock ``__init__`` sets before calling its parent (``image_token``, ``video_token`` and
    their ids), then calls that parent, ``ProcessorMixin.__init__``, directly. ``ProcessorMixin`` takes
    the processor's parts from the *parameter names* of ``type(processor).__init__`` (``get_attributes``):
    the subclass's ``__init__`` must name ``image_processor`` and ``tokenizer`` and no ``video_processor``.
    """
    processor.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
    processor.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
    processor.image_token_id = tokenizer.convert_tokens_to_ids(processor.image_token)
    processor.video_token_id = tokenizer.convert_tokens_to_ids(processor.video_token)
    # the grandparent: ProcessorMixin.__init__, skipping Qwen2VLProcessor.__init__
    super(Qwen2VLProcessor, processor).__init__(image_processor, tokenizer, chat_template=chat_template)


# --------------------------------------------------------------------------------------------------------
# Training hooks (clinkd.train.distributed)
# --------------------------------------------------------------------------------------------------------


def set_up_devices_again(args):
    """Set ``args``' devices up again (``args.device``, returned) although they were set up before.

    Relies on ``TrainingArguments._setup_devices`` being a ``functools.cached_property`` (its value kept in
    the instance ``__dict__``, dropped here) that ``args.device`` reads, and that sets accelerate's state up
    for the arguments (DeepSpeed plugin, ``use_cpu``, process group) when computed (transformers 5.23.0).
    """
    args.__dict__.pop("_setup_devices", None)  # a cached_property: computed again by args.device
    return args.device


def keep_used_weight_conversions(model) -> None:
    """Keep only the key conversions that matched the checkpoint on every ``PreTrainedModel`` in ``model``.

    Relies on ``from_pretrained`` recording the checkpoint-key conversions it applied as a list in the
    private attribute ``_weight_conversions`` (read back by ``save_pretrained`` to write the checkpoint's
    own names), each with a ``was_used()`` saying whether it matched a checkpoint key
    (``transformers.core_model_loading.WeightTransform``). Outside ZeRO-3 5.23.0 keeps only the used ones;
    its ``zero.Init`` loading path keeps them all. Idempotent; a no-op for models loaded the ordinary way.
    """
    for module in model.modules():
        conversions = getattr(module, "_weight_conversions", None)
        if conversions:
            module._weight_conversions = [c for c in conversions if getattr(c, "was_used", lambda: True)()]
