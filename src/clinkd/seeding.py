"""Seeded randomness that stays local: library code never moves its caller's random state (issue 15).

A bare ``torch.manual_seed`` in library code reseeds the process: a caller who seeded its own run would
find its random stream changed by building a tiny model or by a reflective-correction round.
:func:`local_seed` seeds the same generators ``torch.manual_seed`` does, so what the block draws is what it
drew before, and puts every one of them back on leaving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["accelerator_devices", "local_seed"]


def accelerator_devices() -> list[int]:
    """Indices of the current accelerator's devices (CUDA, XPU, MPS, ...); none on a CPU-only machine."""
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator is not None:
        return list(range(accelerator.device_count())) if accelerator.is_available() else []
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@contextlib.contextmanager
def local_seed(seed: int) -> Iterator[None]:
    """Inside the block torch's generators are seeded with ``seed`` (``torch.manual_seed``: the CPU's and
    every accelerator device's); on leaving, each is back in the state it had before the block.

    Example::

        with local_seed(0):
            model = build()  # the same weights whatever the caller drew before
    """
    # fork_rng saves the CPU's generator and, for the current accelerator type, those of the devices named
    with torch.random.fork_rng(devices=accelerator_devices()):
        torch.manual_seed(seed)
        yield
