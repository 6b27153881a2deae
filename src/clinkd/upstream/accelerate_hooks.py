"""accelerate's process-wide state (``accelerate.state``), read and reset between pipeline stages.

accelerate's ``PartialState`` and ``AcceleratorState`` are borgs: every instance shares one class-level
dict, ``_shared_state``, filled by the first ``Accelerator`` of the process. A pipeline's later stages
make new ``Accelerator`` objects that find the first stage's set-up there (its DeepSpeed plugin included).
Checked against accelerate 1.16.0.

Used by :func:`clinkd.train.distributed.activate_deepspeed`.
"""

from __future__ import annotations

import os

__all__ = ["accelerate_state_set_up", "accelerate_state_uses_deepspeed", "clear_accelerate_deepspeed_flag"]

#: The environment flag by which ``TrainingArguments`` (``_setup_devices``) tells accelerate to use DeepSpeed,
#: read by ``PartialState`` / ``AcceleratorState`` / ``Accelerator``.
ACCELERATE_USE_DEEPSPEED = "ACCELERATE_USE_DEEPSPEED"


def accelerate_state_set_up() -> bool:
    """Whether an earlier ``Accelerator`` of this process left its state (``AcceleratorState._shared_state``
    is a class-level dict, empty until the first ``AcceleratorState`` is made; accelerate 1.16.0)."""
    from accelerate.state import AcceleratorState

    return bool(AcceleratorState._shared_state)


def accelerate_state_uses_deepspeed() -> bool:
    """Whether accelerate's shared state was set up for DeepSpeed: ``"distributed_type"`` of
    ``PartialState._shared_state`` or ``AcceleratorState._shared_state`` is ``DistributedType.DEEPSPEED``
    (the key holds the ``DistributedType`` once a state is made; accelerate 1.16.0)."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    return DistributedType.DEEPSPEED in (
        PartialState._shared_state.get("distributed_type"),
        AcceleratorState._shared_state.get("distributed_type"),
    )


def clear_accelerate_deepspeed_flag() -> None:
    """Drop the ``ACCELERATE_USE_DEEPSPEED`` environment flag an earlier stage's ``TrainingArguments`` set
    (accelerate reads it to choose DeepSpeed when a state is made; transformers 5.23.0 sets it in
    ``TrainingArguments._setup_devices`` for arguments with ``deepspeed``)."""
    os.environ.pop(ACCELERATE_USE_DEEPSPEED, None)
