"""transformers' global DeepSpeed config (``transformers.integrations.deepspeed``), read and set.

transformers keeps *one* DeepSpeed config per process: a module-level weak reference to an
``HfDeepSpeedConfig``, set by every ``TrainingArguments`` that has ``deepspeed`` (``set_hf_deepspeed_config``)
and read by ``is_deepspeed_zero3_enabled``, by ``from_pretrained`` (ZeRO-3: build under ``zero.Init``) and by
``generate`` (ZeRO-3: ``synced_gpus=True``). Checked against transformers 5.23.0.

Used by :mod:`clinkd.train.distributed` (``activate_deepspeed``, ``zero3_active``, ``outside_zero3``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["active_hf_deepspeed_config", "hf_zero3_enabled", "set_active_hf_deepspeed_config"]


def active_hf_deepspeed_config() -> Any | None:
    """The ``HfDeepSpeedConfig`` transformers treats as active, or ``None``.

    Relies on the private module global ``transformers.integrations.deepspeed._hf_deepspeed_config_weak_ref``:
    ``None`` or a ``weakref.ref`` to the object last given to ``set_hf_deepspeed_config`` (transformers 5.23.0
    has no public getter for the object itself; ``deepspeed_config()`` returns its ``.config`` dict).
    """
    from transformers.integrations import deepspeed as hf_ds

    ref = getattr(hf_ds, "_hf_deepspeed_config_weak_ref", None)
    return ref() if ref is not None else None


def set_active_hf_deepspeed_config(config: Any | None) -> None:
    """Make ``config`` (an ``HfDeepSpeedConfig``, e.g. ``TrainingArguments.hf_deepspeed_config``) the active
    DeepSpeed config of transformers, or none with ``None``.

    Relies on ``set_hf_deepspeed_config(obj)`` keeping only a weak reference to ``obj`` (the caller keeps it
    alive) and ``unset_hf_deepspeed_config()`` clearing it (transformers 5.23.0).
    """
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    if config is None:
        unset_hf_deepspeed_config()
    else:
        set_hf_deepspeed_config(config)


def hf_zero3_enabled() -> bool:
    """Whether transformers' active DeepSpeed config is ZeRO-3 (``is_deepspeed_zero3_enabled()``: the
    active object's ``is_zero3()``, ``False`` when none is active; transformers 5.23.0)."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return bool(is_deepspeed_zero3_enabled())
