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


def pin_cpu_threads() -> dict[str, str]:
    """Turn off OpenMP's and MKL's dynamic pool sizing for this process and its children (settings already
    in the environment win); return the thread settings in force."""
    for key in ("OMP_DYNAMIC", "MKL_DYNAMIC"):
        os.environ.setdefault(key, "FALSE")
    return pinned_settings()


def pinned_settings() -> dict[str, str]:
    """The thread settings of this process (what results files record): the environment's, and the
    intra-op pool size when torch is loaded."""
    out = {k: os.environ.get(k, "unset") for k in _KEYS}
    if "torch" in sys.modules:
        out["torch_threads"] = str(sys.modules["torch"].get_num_threads())
    return out
