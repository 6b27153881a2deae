"""The upstream internals clinkd relies on, in one place (docs/platform.md, "transformers hooks").

Checked against **transformers 5.23.0** (:data:`CHECKED_TRANSFORMERS_VERSION`), accelerate 1.16.0 and DeepSpeed
0.19.8. ``tests/test_upstream.py`` has one test per hook, asserting the upstream shape the hook relies on (a
signature, an attribute, a behaviour), and warns when another transformers version is installed: an upgrade
is this package, the overrides listed in :data:`OVERRIDES` and whichever of those tests fails, not a hunt.

This package imports nothing from clinkd (every layer may use it); everything is re-exported here. Each
function's docstring says what upstream shape it relies on.

:mod:`~clinkd.upstream.transformers_hooks` — the model, the processor, the Trainer's arguments:

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
  resize, from a module path transformers does not export at the top level (used by ``clinkd.model.processor``
  and ``clinkd.data.conventions.resized_size``).
* :func:`set_up_devices_again` — drops the cached ``TrainingArguments._setup_devices`` and reads
  ``args.device`` again (called by ``clinkd.train.distributed.activate_deepspeed``).
* :func:`keep_used_weight_conversions` — filters the private ``_weight_conversions`` of loaded models by
  ``was_used()`` (called by ``clinkd.train.distributed.repair_weight_conversions``).

:mod:`~clinkd.upstream.generation_hooks` — ``generate`` (called by ``clinkd.infer.generate``):

* :func:`generation_config_owner`, :func:`generation_defaults` — the ``generation_config`` that
  ``GenerationMixin._prepare_generation_config`` fills unset settings from, swapped for the call
  (``neutral_generation_config``).
* :func:`has_stored_rope_deltas`, :func:`clear_rope_deltas`, :func:`repeat_rope_deltas` — the Qwen-VL inner
  model's ``rope_deltas``, from which ``_prepare_position_ids_for_generation`` positions tokens after a
  cache (``prefill_shared_cache``).
* :func:`repeat_cache_rows` — ``DynamicCache.batch_repeat_interleave`` (``prefill_shared_cache``).

:mod:`~clinkd.upstream.deepspeed_hooks` — transformers' one global DeepSpeed config (called by
``clinkd.train.distributed``): :func:`active_hf_deepspeed_config` (its private weak reference),
:func:`set_active_hf_deepspeed_config`, :func:`hf_zero3_enabled`.

:mod:`~clinkd.upstream.accelerate_hooks` — accelerate's process-wide state (called by
``clinkd.train.distributed.activate_deepspeed``): :func:`accelerate_state_set_up`,
:func:`accelerate_state_uses_deepspeed` (``PartialState._shared_state`` / ``AcceleratorState._shared_state``),
:func:`clear_accelerate_deepspeed_flag` (``ACCELERATE_USE_DEEPSPEED``).

Upstream methods overridden in a subclass (:data:`OVERRIDES`): an override has to stay a method of its
class, so it stays where it is and is listed here with the upstream parameters it is written against;
the tests check each upstream method still exists with those parameters and is still called on the
path clinkd relies on. One attribute is set rather than overridden: ``Trainer.model_accepts_loss_kwargs``
(``ClinKDTrainer.__init__`` sets it to ``True``; the Trainer then passes ``num_items_in_batch`` to
``compute_loss`` and does not divide the loss by the gradient-accumulation steps). That count is of
``labels[..., 1:]``, the tokens clinkd's shifted losses sum over, because the Trainer recognises a causal-LM
loss from the model's ``loss_type``, which ``PreTrainedModel`` derives from the class name: clinkd's classes
keep the ``…ForConditionalGeneration`` suffix.

An order relied on with no upstream name in clinkd's code, so nothing to move here:
``clinkd.infer.sasg.GreedyRows``, a public ``LogitsProcessor`` passed as ``generate(logits_processor=…)``,
relies on ``generate`` running custom processors **before** its temperature and top-p warpers (5.23.0 builds
the list in ``GenerationMixin._get_logits_processor`` and appends the warpers after the custom ones), which
keep the row's argmax. ``tests/test_upstream.py`` checks that order; ``tests/infer/test_sasg.py`` the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinkd.upstream.accelerate_hooks import (
    accelerate_state_set_up,
    accelerate_state_uses_deepspeed,
    clear_accelerate_deepspeed_flag,
)
from clinkd.upstream.deepspeed_hooks import (
    active_hf_deepspeed_config,
    hf_zero3_enabled,
    set_active_hf_deepspeed_config,
)
from clinkd.upstream.generation_hooks import (
    clear_rope_deltas,
    generation_config_owner,
    generation_defaults,
    has_stored_rope_deltas,
    repeat_cache_rows,
    repeat_rope_deltas,
)
from clinkd.upstream.transformers_hooks import (
    Qwen2VLImageProcessorPil,
    init_processor_without_video,
    keep_used_weight_conversions,
    set_up_devices_again,
    share_checkpoint_conversion_mapping,
    smart_resize,
    swap_inner_model_class,
    trim_decode_step_positions,
)

__all__ = [
    "CHECKED_TRANSFORMERS_VERSION",
    "OVERRIDES",
    "Override",
    "Qwen2VLImageProcessorPil",
    "accelerate_state_set_up",
    "accelerate_state_uses_deepspeed",
    "active_hf_deepspeed_config",
    "clear_accelerate_deepspeed_flag",
    "clear_rope_deltas",
    "generation_config_owner",
    "generation_defaults",
    "has_stored_rope_deltas",
    "hf_zero3_enabled",
    "init_processor_without_video",
    "keep_used_weight_conversions",
    "repeat_cache_rows",
    "repeat_rope_deltas",
    "set_active_hf_deepspeed_config",
    "set_up_devices_again",
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
        f"transformers {installed} is installed; clinkd's upstream hooks (clinkd/upstream/) were checked "
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
