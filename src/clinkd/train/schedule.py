"""The order in which training examples are seen: shuffled epochs, or a confidence-margin curriculum.

Training reads a :class:`ScheduledDataset`: position ``i`` of the run (``i = step * global_batch + k``)
holds the index of the item seen there. The whole order is fixed before training starts, from the
seed, so that a resumed run, a run on several processes (each takes its share of every global batch)
and an uninterrupted single-process run see exactly the same examples at the same steps.
Reflective correction rewrites positions that have not been read yet (:meth:`ScheduledDataset.replay`).
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


def shuffled_order(n_items: int, length: int, seed: int) -> list[int]:
    """``length`` positions filled by successive seeded permutations of ``range(n_items)`` (epochs)."""
    if n_items <= 0:
        raise ValueError("no training items")
    rng = np.random.default_rng(seed)
    reps = math.ceil(length / n_items)
    return np.concatenate([rng.permutation(n_items) for _ in range(reps)])[:length].tolist()


@dataclass
class Phase:
    """One phase of the curriculum: from ``start`` (a position) the pool holds the ``pool`` most confident."""

    index: int
    start: int
    pool: int
    entered: int
    threshold: float


def curriculum_order(
    margins: Sequence[float], length: int, phases: int, seed: int
) -> tuple[list[int], list[Phase]]:
    """Most confident first: phase ``k`` of ``phases`` admits the top ``(k+1)/phases`` of the items by margin.

    The threshold margin falls phase by phase (method.md §2). Within a phase the newly admitted items
    come first (each is seen at least once when the phase is long enough), then the pool is cycled in
    seeded random order.

    Returns:
        the order (``length`` item indices) and the phases (for the log).
    """
    n = len(margins)
    if n == 0:
        raise ValueError("no training items")
    phases = max(1, min(phases, n))
    rng = np.random.default_rng(seed)
    by_conf = sorted(range(n), key=lambda i: (-margins[i], i))  # stable: ties keep item order
    order: list[int] = []
    log: list[Phase] = []
    admitted = 0
    for k in range(phases):
        start, end = (k * length) // phases, ((k + 1) * length) // phases
        pool_size = math.ceil(n * (k + 1) / phases)
        new = by_conf[admitted:pool_size]
        log.append(Phase(k, start, pool_size, len(new), float(margins[by_conf[pool_size - 1]])))
        admitted = pool_size
        pool = by_conf[:pool_size]
        seq = list(rng.permutation(new)) if new else []
        while len(seq) < end - start:
            seq += [pool[i] for i in rng.permutation(len(pool))]
        order += [int(i) for i in seq[: end - start]]
    return order, log


class ScheduledDataset(Dataset):
    """Items read in a fixed order (see module docstring). ``dataset[i]`` is ``items[order[i]]``.

    The order lives in shared memory and items added by :meth:`replay` are spooled to a private folder,
    so that data-loader workers — separate processes holding their own copy of the dataset, forked when
    training starts — see every rewrite the training process makes later. Without that, a rewrite in the
    main process would never reach the batches that workers build (``dataloader_num_workers > 0``).
    """

    def __init__(self, items: list, order: list[int]):
        if not len(order):
            raise ValueError("empty training schedule")
        order_t = torch.as_tensor(list(order), dtype=torch.int64)
        bad = order_t[(order_t < 0) | (order_t >= len(items))]
        if bad.numel():
            raise ValueError(f"schedule refers to item {int(bad[0])} of {len(items)}")
        self.items = list(items)
        self._order = order_t.share_memory_()  # (length,) item index at each position
        self._spool = Path(tempfile.mkdtemp(prefix="clinkd-schedule-"))
        self._spooled = 0  # spool files this process has read or written
        owner = os.getpid()
        # only the creating process removes the spool (workers are forked copies of this object)
        self._cleanup = weakref.finalize(self, _remove_spool, self._spool, owner)

    @property
    def order(self) -> list[int]:
        return self._order.tolist()

    def __len__(self) -> int:
        return int(self._order.numel())

    def __getitem__(self, i: int):
        idx = int(self._order[i])
        if idx >= len(self.items):  # added by a replay after this worker was started: read the spool
            self._read_spool()
        return self.items[idx]

    def _read_spool(self) -> None:
        while True:
            f = self._spool / f"{self._spooled:05d}.pkl"
            if not f.is_file():
                return
            with open(f, "rb") as fh:
                # our own file, written by the training process a moment ago (not user input)
                first, new_items = pickle.load(fh)
            if first != len(self.items):
                raise RuntimeError(
                    f"schedule spool {f} starts at item {first}, this copy holds {len(self.items)}"
                )
            self.items += new_items
            self._spooled += 1

    def replay(self, new_items: list, times: int, from_position: int, seed: int) -> list[int]:
        """Add ``new_items`` and let each be seen ``times`` times at positions ``>= from_position``.

        They take the place of scheduled positions spread evenly over the rest of the run, so the step
        budget is unchanged. Returns the positions rewritten. The items reach the spool before any
        position refers to them, so a worker never reads an index it cannot resolve.
        """
        remaining = len(self) - from_position
        want = len(new_items) * times
        if not new_items or remaining <= 0:
            return []
        self._read_spool()
        first = len(self.items)
        tmp = self._spool / f"{self._spooled:05d}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump((first, list(new_items)), fh)
        tmp.replace(self._spool / f"{self._spooled:05d}.pkl")
        self._spooled += 1
        self.items += list(new_items)
        rng = np.random.default_rng(seed)
        slots = rng.choice(remaining, size=min(want, remaining), replace=False) + from_position
        slots.sort()
        replays = [first + (j % len(new_items)) for j in range(len(slots))]
        rng.shuffle(replays)
        self._order[torch.as_tensor(slots, dtype=torch.int64)] = torch.as_tensor(replays, dtype=torch.int64)
        return slots.tolist()


def _remove_spool(path: Path, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)
