"""The CPU runtime settings that make a run give the same bits whatever else the machine is doing.

PyTorch's CPU kernels split work over an OpenMP thread pool and call MKL, whose own pool may shrink when
the runtime decides so (``MKL_DYNAMIC``, on by default; ``OMP_DYNAMIC`` lets GNU OpenMP size parallel
regions by the load average). A reduction split over fewer threads adds in another order and gives other
bits, so a run beside a busy process could end with other weights. :func:`pin_cpu_threads` fixes both pools
at the machine's CPU count before the libraries start; it must run before ``torch`` is imported (the
``clinkd`` command does it first). A user's own ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` are kept.
"""

from __future__ import annotations

import os
import sys

__all__ = ["pin_cpu_threads", "pinned_settings"]

_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_DYNAMIC", "MKL_DYNAMIC")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def pin_cpu_threads() -> dict[str, str]:
    """Fix the OpenMP and MKL thread pools (sizes and no dynamic adjustment) for this process and its
    children; return the settings in force. Settings already in the environment win. When torch is
    already imported its pool is sized too, but MKL's and OpenMP's dynamic modes may then be set already."""
    n = str(_cpus())
    for key, value in (("OMP_NUM_THREADS", n), ("MKL_NUM_THREADS", n), ("OMP_DYNAMIC", "FALSE"),
                       ("MKL_DYNAMIC", "FALSE")):
        os.environ.setdefault(key, value)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return pinned_settings()


def pinned_settings() -> dict[str, str]:
    """The thread settings of this process's environment (what results files record)."""
    return {k: os.environ.get(k, "unset") for k in _KEYS}
