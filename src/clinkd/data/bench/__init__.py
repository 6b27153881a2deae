"""The Med-VQA and report-generation benchmarks: readers, validation, stand-ins and conversion (issue 16).

Five sets, each read from the files its authors (or the widely used preprocessing) distribute:

==============  ======  =====================================================================
name            kind    read from (module)
==============  ======  =====================================================================
``vqa-rad``     vqa     ``VQA_RAD Dataset Public.json`` + ``VQA_RAD Image Folder/`` (:mod:`.vqa_rad`)
``slake``       vqa     ``train.json``/``validate.json``/``test.json`` + ``imgs/`` (:mod:`.slake`)
``pathvqa``     vqa     the Hugging Face parquet files, images embedded (:mod:`.pathvqa`)
``iu-xray``     report  R2Gen ``annotation.json`` + ``images/`` (:mod:`.reports`)
``mimic-cxr``   report  R2Gen ``annotation.json`` + ``images/`` (:mod:`.reports`)
==============  ======  =====================================================================

- :func:`read_benchmark` — records (:class:`~.records.BenchRecord`) and every problem found.
- :func:`check_benchmark` — every problem, images decoded too (``clinkd data check --benchmark``).
- :func:`~.convert.convert_benchmark` — a clinkd dataset folder (``clinkd data import``).
- :func:`~.synth.write_standin` — a small synthetic set in the real layout (``clinkd data synth --format``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from clinkd.benchmarks import SPECS, spec
from clinkd.data.bench.pathvqa import read_pathvqa
from clinkd.data.bench.records import BenchData, BenchRecord
from clinkd.data.bench.reports import read_iu_xray, read_mimic_cxr
from clinkd.data.bench.slake import read_slake
from clinkd.data.bench.vqa_rad import read_vqa_rad
from clinkd.data.formats import Problem


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name, kind (``"vqa"`` or ``"report"``), a title and its reader."""

    name: str
    kind: str
    title: str
    reader: Callable[..., BenchData]


_READERS: dict[str, Callable[..., BenchData]] = {
    "vqa-rad": read_vqa_rad,
    "slake": read_slake,
    "pathvqa": read_pathvqa,
    "iu-xray": read_iu_xray,
    "mimic-cxr": read_mimic_cxr,
}
#: every benchmark of :mod:`clinkd.benchmarks` with its reader
BENCHMARKS: dict[str, Benchmark] = {
    n: Benchmark(n, s.kind, f"{s.title} ({s.description})", _READERS[n]) for n, s in SPECS.items()
}


def get_benchmark(name: str) -> Benchmark:
    return BENCHMARKS[spec(name).name]


def read_benchmark(name: str, root: str | os.PathLike, *, check_images: bool = False, **options) -> BenchData:
    """Read benchmark ``name`` from its folder ``root``: records, image root and every problem found
    (bad JSON or parquet, missing or mistyped fields, unknown answer types, empty answers, repeated ids,
    chat special tokens, image paths leaving the image root, pickle files; with ``check_images`` also
    missing or undecodable images). Never raises on bad data. ``options`` go to the reader (SLAKE:
    ``lang``)."""
    return get_benchmark(name).reader(root, check_images=check_images, **options)


def check_benchmark(name: str, root: str | os.PathLike, **options) -> list[Problem]:
    """Every problem of benchmark ``name`` at ``root``, each with its file and record; images decoded."""
    return read_benchmark(name, root, check_images=True, **options).problems


def load_benchmark(name: str, root: str | os.PathLike, **options) -> BenchData:
    """Read benchmark ``name``; a :class:`~clinkd.errors.DataError` on its first problem (with a count)."""
    return read_benchmark(name, root, **options).raise_first()


__all__ = [
    "BENCHMARKS",
    "BenchData",
    "BenchRecord",
    "Benchmark",
    "check_benchmark",
    "get_benchmark",
    "load_benchmark",
    "read_benchmark",
]
