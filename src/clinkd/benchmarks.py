"""The benchmarks beyond Med-GRIT-270k that clinkd reads, trains on and scores (issue 16): their names,
kinds and titles, in one place.

Every layer takes its names from here: the readers (:mod:`clinkd.data.bench`), the inference token limits
(:data:`clinkd.infer.defaults.BENCHMARK_MAX_NEW_TOKENS`), the protocols (:mod:`clinkd.eval.benchmark`) and
the ``--benchmark``/``--format`` choices of ``clinkd data``, ``infer`` and ``eval``. It imports nothing
but the standard library, so the command's ``--help`` stays fast. Formats and protocols:
``docs/benchmarks.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from clinkd.errors import ClinkdError

__all__ = ["KINDS", "NAMES", "REPORT_NAMES", "SPECS", "VQA_NAMES", "BenchmarkSpec", "canonical", "spec"]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: its name as clinkd spells it, its kind and the title reports print."""

    name: str
    kind: Literal["vqa", "report"]  # vqa: Med-VQA (question, short answer); report: report generation
    title: str
    description: str  # what it is, for --help and the data reader's docstring


SPECS: Mapping[str, BenchmarkSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            BenchmarkSpec("vqa-rad", "vqa", "VQA-RAD", "radiology VQA"),
            BenchmarkSpec("slake", "vqa", "SLAKE", "radiology VQA, English subset"),
            BenchmarkSpec("pathvqa", "vqa", "PathVQA", "pathology VQA"),
            BenchmarkSpec("iu-xray", "report", "IU X-Ray", "chest X-ray reports"),
            BenchmarkSpec("mimic-cxr", "report", "MIMIC-CXR", "chest X-ray reports"),
        )
    }
)
NAMES: tuple[str, ...] = tuple(SPECS)
KINDS: Mapping[str, str] = MappingProxyType({n: s.kind for n, s in SPECS.items()})
VQA_NAMES: tuple[str, ...] = tuple(n for n in NAMES if KINDS[n] == "vqa")
REPORT_NAMES: tuple[str, ...] = tuple(n for n in NAMES if KINDS[n] == "report")


def canonical(name: str) -> str:
    """A benchmark name as clinkd spells it: lower-case, ``_`` and spaces as ``-`` (``VQA_RAD`` →
    ``vqa-rad``)."""
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def spec(name: str) -> BenchmarkSpec:
    """The benchmark ``name`` (any spelling :func:`canonical` accepts); a :class:`ClinkdError` listing the
    known ones otherwise."""
    try:
        return SPECS[canonical(name)]
    except KeyError:
        raise ClinkdError(f"unknown benchmark {name!r}; choose one of {', '.join(NAMES)}") from None
