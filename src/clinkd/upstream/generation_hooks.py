"""transformers ``generate`` hooks of :mod:`clinkd.infer.generate` (neutral settings, shared prefill).

Checked against transformers 5.23.0; each function's docstring says what upstream shape it relies on, and
``tests/test_upstream.py`` checks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "clear_rope_deltas",
    "generation_config_owner",
    "generation_defaults",
    "has_stored_rope_deltas",
    "repeat_cache_rows",
    "repeat_rope_deltas",
]


def generation_config_owner(model):
    """The module whose ``generation_config`` ``model.generate`` reads: the base model under a peft wrapper
    (``get_base_model()``; peft's ``generate`` forwards to it), ``model`` itself otherwise."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@contextmanager
def generation_defaults(model, config) -> Iterator[Any]:
    """Make ``config`` the defaults ``model.generate`` fills unset settings from while the block runs.

    Relies on ``GenerationMixin._prepare_generation_config(generation_config, **kwargs)``: given no
    ``generation_config``, it starts from a fresh ``GenerationConfig``, fills every field left ``None``
    from ``self.generation_config`` and then applies ``generate``'s keyword arguments (transformers 5.23.0).
    So what ``model.generation_config`` holds (a checkpoint's ``generation_config.json``) reaches every
    setting not passed. The previous value is put back after the block, even on an error.
    """
    owner = generation_config_owner(model)
    old = getattr(owner, "generation_config", None)
    owner.generation_config = config
    try:
        yield owner.generation_config
    finally:
        owner.generation_config = old


def has_stored_rope_deltas(model) -> bool:
    """Whether ``model`` is a Qwen-VL model whose inner model (``model.model``) keeps ``rope_deltas``
    (not so, e.g., for a peft wrapper, whose ``model`` is the tuner)."""
    return hasattr(getattr(model, "model", None), "rope_deltas")


def clear_rope_deltas(model) -> None:
    """Forget the inner model's stored ``rope_deltas``, so that the next forward computes them afresh.

    Relies on the Qwen-VL inner model's ``rope_deltas`` attribute, ``None`` or (B, 1): the stock forward
    (``compute_3d_position_ids``) calls ``get_rope_index`` and stores its deltas when they are ``None`` or
    the cache is empty (transformers 5.23.0).
    """
    model.model.rope_deltas = None


def repeat_rope_deltas(model, n: int) -> None:
    """Repeat the inner model's stored ``rope_deltas`` (B, 1) ``n`` times per row: (n·B, 1), row-major.

    Relies on ``_prepare_position_ids_for_generation`` of the Qwen-VL ``…ForConditionalGeneration`` classes:
    given a ``past_key_values`` of length > 0 and no new vision tokens, ``generate`` takes the 3D position of
    each new token as its text position + ``self.model.rope_deltas`` (transformers 5.23.0), so the repeated
    rows continue each prompt where its prefill left it.
    """
    inner = model.model
    inner.rope_deltas = inner.rope_deltas.repeat_interleave(n, dim=0)  # (n·B, 1)


def repeat_cache_rows(cache, n: int) -> None:
    """Repeat every row of a ``DynamicCache`` ``n`` times, in place: (B, H, T, D) → (n·B, H, T, D) per layer,
    each row's copies next to each other (the order of ``num_return_sequences``).

    Relies on ``DynamicCache.batch_repeat_interleave(repeats)`` (transformers 5.23.0; upstream uses it for
    contrastive search and assisted decoding).
    """
    cache.batch_repeat_interleave(n)
