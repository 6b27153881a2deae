"""clinkd.benchmarks: the one list of benchmark names every layer reads."""

import subprocess
import sys

import pytest

from clinkd.benchmarks import KINDS, NAMES, REPORT_NAMES, VQA_NAMES, canonical, spec
from clinkd.errors import ClinkdError


def test_names_kinds_and_spellings():
    assert NAMES == ("vqa-rad", "slake", "pathvqa", "iu-xray", "mimic-cxr")
    assert VQA_NAMES == ("vqa-rad", "slake", "pathvqa") and REPORT_NAMES == ("iu-xray", "mimic-cxr")
    assert canonical(" VQA_RAD ") == "vqa-rad" and spec("MIMIC_CXR").title == "MIMIC-CXR"
    with pytest.raises(ClinkdError, match="unknown benchmark 'vqa-med'; choose one of vqa-rad, slake"):
        spec("vqa-med")


def test_every_layer_reads_the_same_names():
    from clinkd.data.bench import BENCHMARKS as readers
    from clinkd.eval.benchmark import BENCHMARKS as protocols
    from clinkd.infer.defaults import BENCHMARK_MAX_NEW_TOKENS

    assert tuple(readers) == NAMES and {n: b.kind for n, b in readers.items()} == dict(KINDS)
    assert dict(protocols) == dict(KINDS)
    assert tuple(BENCHMARK_MAX_NEW_TOKENS) == NAMES


def test_importing_it_loads_nothing_heavy():
    code = "import sys, clinkd.benchmarks; print(sorted(m for m in ('numpy', 'torch', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
