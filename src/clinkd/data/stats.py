"""Counts of a dataset per split, task and modality (``clinkd data stats``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from clinkd.data.formats import Dataset
from clinkd.data.sample import MODALITIES, TASKS, Sample, guess_task

if TYPE_CHECKING:
    import rich.table


def count_turns(samples: Iterable[Sample]) -> Counter[tuple[str, str]]:
    """``{(task, modality): number of QA turns}``; mixed-task samples are split by :func:`guess_task`."""
    counts: Counter[tuple[str, str]] = Counter()
    for s in samples:
        for t in s.turns:
            counts[(s.task or guess_task(t), s.modality)] += 1
    return counts


def dataset_stats(ds: Dataset) -> dict:
    """``{"train": {...}, "test": {...}}`` of per-task, per-modality turn counts plus image counts."""
    out: dict = {}
    splits = {"train": ds.train, "test": [s for v in ds.test.values() for s in v]}
    for split, samples in splits.items():
        counts = count_turns(samples)
        modalities = list(MODALITIES) + sorted({m for _, m in counts} - set(MODALITIES))
        out[split] = {
            "records": len(samples),
            "images": len({s.image for s in samples}),
            "turns": sum(counts.values()),
            "by_task": {
                t: {m: counts[(t, m)] for m in modalities if counts[(t, m)]}
                for t in TASKS
                if any(counts[(t, m)] for m in modalities)
            },
        }
    return out


def stats_table(stats: dict, title: str = "") -> rich.table.Table:
    """A rich table: rows = split/task, columns = modalities."""
    from rich.table import Table

    mods = list(MODALITIES)
    extra = sorted({m for s in stats.values() for t in s["by_task"].values() for m in t} - set(mods))
    table = Table(title=title or None)
    table.add_column("split")
    table.add_column("task")
    for m in mods + extra:
        table.add_column(m, justify="right")
    table.add_column("total", justify="right")
    for split, s in stats.items():
        for task, per_mod in s["by_task"].items():
            row = [str(per_mod.get(m, 0)) for m in mods + extra]
            table.add_row(split, task, *row, str(sum(per_mod.values())))
        table.add_row(split, "[b]images[/b]", *[""] * len(mods + extra), str(s["images"]), end_section=True)
    return table
