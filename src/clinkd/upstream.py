"""The transformers internals clinkd relies on, in one place (docs/platform.md, "transformers hooks").

Checked against **transformers 5.23.0** (:data:`CHECKED_TRANSFORMERS_VERSION`). ``tests/test_upstream.py``
has one test per hook, asserting the upstream shape the hook relies on (a signature, an attribute, a
behaviour), and warns when another transformers version is installed: an upgrade is this file, the
overrides listed in :data:`OVERRIDES` and whichever of those tests fails, not a hunt.

This module imports nothing from clinkd (every layer may use it).

Hooks whose code is here (callers delegate):

* :func:`trim_decode_step_positions` — the decode-step patch of ``compute_3d_position_ids``, which
  finds its ``inputs_embeds`` argument by keyword or by its place in the upstream signature (called by
  ``clinkd.model.modeling._McgRopeMixin.compute_3d_position_ids``).
* :func:`swap_inner_model_class` — the ``__class__`` swap of a Qwen-VL model's inner model (called by
  ``_McgConditionalGenerationMixin.__init__``).
* :func:`share_checkpoint_conversion_mapping` — the checkpoint-key registry, looked up by class name
  (called by ``clinkd.model.modeling`` at import for its six classes).
* :func:`init_processor_without_video` — ``Qwen2VLProcessor.__init__`` without its video processor: sets
  what it sets, then calls the grandparent ``ProcessorMixin.__init__`` (called by ``ClinkdProcessor.__init__``).
* :data:`Qwen2VLImageProcessorPil`, :data:`smart_resize` — the torchvision-free image processor and its
  resize, from a module path transformers does not export at the top level.

Upstream methods overridden in a subclass (:data:`OVERRIDES`): an override has to stay a method of its
class, so it stays where it is and is listed here with the upstream parameters it is written against;
the tests check each upstream method still exists with those parameters and is still called on the
path clinkd relies on. One attribute is set rather than overridden: ``Trainer.model_accepts_loss_kwargs``
(``ClinKDTrainer.__init__`` sets it to ``True``; the Trainer then passes ``num_items_in_batch`` to
``compute_loss`` and does not divide the loss by the gradient-accumulation steps). That count is of
``labels[..., 1:]``, the tokens clinkd's shifted losses sum over, because the Trainer recognises a causal-LM
loss from the model's ``loss_type``, which ``PreTrainedModel`` derives from the class name: clinkd's classes
keep the ``…ForConditionalGeneration`` suffix.

Hooks whose code still lives with its caller (tests here check the upstream names they use):
``clinkd.train.distributed`` (transformers' global DeepSpeed config and its private weak reference,
``TrainingArguments._setup_devices``, accelerate's ``_shared_state``, ``_weight_conversions`` and
``was_used()``), ``clinkd.infer.generate`` (``GenerationMixin._prepare_generation_config``, the Qwen-VL
``_prepare_position_ids_for_generation`` and ``rope_deltas``, ``DynamicCache.batch_repeat_interleave``),
``clinkd.infer.sasg`` (the order of logits processors; pinned by ``tests/infer/test_sasg.py``) and
``clinkd.data.conventions`` (``smart_resize``, imported from the same module path as here).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

from transformers import Qwen2VLProcessor
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

__all__ = [
    "CHECKED_TRANSFORMERS_VERSION",
    "OVERRIDES",
    "Override",
    "Qwen2VLImageProcessorPil",
    "init_processor_without_video",
    "share_checkpoint_conversion_mapping",
    "smart_resize",
    "swap_inner_model_class",
    "trim_decode_step_positions",
    "version_note",
]

#: The transformers release every hook below was read against (``transformers.__version__``).
CHECKED_TRANSFORMERS_VERSION = "5.23.0"


def version_note(installed: str | None = None) -> str | None:
    """``None`` when ``installed`` (default: the installed transformers) is the version the hooks were
    checked against; otherwise a sentence saying so and what to re-check."""
    if installed is None:
        import transformers

        installed = transformers.__version__
    if installed == CHECKED_TRANSFORMERS_VERSION:
        return None
    return (
        f"transformers {installed} is installed; clinkd's upstream hooks (clinkd/upstream.py) were checked "
        f"against {CHECKED_TRANSFORMERS_VERSION}: run tests/test_upstream.py and re-read the hooks it names"
    )


# --------------------------------------------------------------------------------------------------------
# Overrides: methods of upstream classes that a clinkd subclass replaces
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """An upstream method that a clinkd class overrides (the override stays a method of that class)."""

    upstream: str
    """Dotted name of the upstream method, importable from its module (``transformers.Trainer._get_train_sampler``)."""
    parameters: tuple[str, ...]
    """The leading parameters of the upstream method that the override is written against, in order."""
    override: str
    """Dotted name of clinkd's override."""
    why: str
    """What clinkd gets from overriding it."""


_QWEN_INNER = (
    ("Qwen2VLModel", "McgQwen2VLModel"),
    ("Qwen2_5_VLModel", "McgQwen2_5_VLModel"),
    ("Qwen3VLModel", "McgQwen3VLModel"),
)

#: Every upstream method clinkd overrides, with the parameters it relies on.
OVERRIDES: tuple[Override, ...] = (
    # upstream passes everything after input_ids by keyword (Qwen2.5-VL has second_per_grid_ts before
    # attention_mask; the override takes it through **kwargs)
    *(
        Override(
            f"transformers.{stock}.get_rope_index",
            ("self", "input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw"),
            f"clinkd.model.modeling.{ours}.get_rope_index",
            "the one place 3D positions are computed, by the forward (compute_3d_position_ids) and by generate "
            "(_prepare_position_ids_for_generation): one override gives MCG-RoPE everywhere",
        )
        for stock, ours in _QWEN_INNER
    ),
    # inputs_embeds is 2nd in Qwen2-VL and Qwen3-VL, 4th in Qwen2.5-VL: found by name
    *(
        Override(
            f"transformers.{stock}.compute_3d_position_ids",
            ("self", "input_ids"),
            f"clinkd.model.modeling.{ours}.compute_3d_position_ids",
            "keeps the last `new` columns of a manual decode step's positions (trim_decode_step_positions)",
        )
        for stock, ours in _QWEN_INNER
    ),
    Override(
        "transformers.Trainer._get_train_sampler",
        ("self", "train_dataset"),
        "clinkd.train.trainer.ClinKDTrainer._get_train_sampler",
        "a SequentialSampler: the order is fixed in advance by ScheduledDataset and must not be reshuffled",
    ),
    Override(
        "transformers.Trainer._load_from_checkpoint",
        ("self", "resume_from_checkpoint", "model"),
        "clinkd.train.trainer.ClinKDTrainer._load_from_checkpoint",
        "resume through from_pretrained so the checkpoint-key mapping applies (the stock path does not)",
    ),
    Override(
        "transformers.Trainer._save_checkpoint",
        ("self", "model", "trial"),
        "clinkd.train.trainer.ClinKDTrainer._save_checkpoint",
        "refuse to write a checkpoint of non-finite weights",
    ),
)


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
