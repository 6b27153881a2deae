"""The order in which training examples are seen: shuffled epochs, or a confidence-margin curriculum.

Training reads a :class:`ScheduledDataset`: position ``i`` of the run (``i = step * global_batch + k``)
holds the index of the item seen there. The whole order is fixed before training starts, from the
seed, so that a resumed run, a run on several processes (each takes its share of every global batch)
and an uninterrupted single-process run see exactly the same examples at the same steps.
Reflective correction rewrites positions that have not been read yet (:meth:`ScheduledDataset.replay`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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


def curriculum_order(margins: Sequence[float], length: int, phases: int, seed: int) -> tuple[list[int], list[Phase]]:
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
    """Items read in a fixed order (see module docstring). ``dataset[i]`` is ``items[order[i]]``."""

    def __init__(self, items: list, order: list[int]):
        if not order:
            raise ValueError("empty training schedule")
        bad = [i for i in order if not 0 <= i < len(items)]
        if bad:
            raise ValueError(f"schedule refers to item {bad[0]} of {len(items)}")
        self.items = list(items)
        self.order = list(order)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        return self.items[self.order[i]]

    def replay(self, new_items: list, times: int, from_position: int, seed: int) -> list[int]:
        """Add ``new_items`` and let each be seen ``times`` times at positions ``>= from_position``.

        They take the place of scheduled positions spread evenly over the rest of the run, so the step
        budget is unchanged. Returns the positions rewritten.
        """
        remaining = len(self.order) - from_position
        want = len(new_items) * times
        if not new_items or remaining <= 0:
            return []
        first = len(self.items)
        self.items += list(new_items)
        rng = np.random.default_rng(seed)
        slots = rng.choice(remaining, size=min(want, remaining), replace=False) + from_position
        slots.sort()
        replays = [first + (j % len(new_items)) for j in range(len(slots))]
        rng.shuffle(replays)
        for pos, idx in zip(slots.tolist(), replays):
            self.order[pos] = idx
        return slots.tolist()
