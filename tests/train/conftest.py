"""Fixtures for the training tests: a small synthetic benchmark and tiny teacher/student directories."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from clinkd.data import synth

    out = tmp_path_factory.mktemp("synth") / "data"
    synth.generate(out, seed=0, n_images=24)
    return out


@pytest.fixture(scope="session")
def tiny_processor(synth_dir):
    from clinkd.data.synth import text_corpus
    from clinkd.model import build_tiny_processor

    # 112x112 at most: 4x4 merged image tokens, fast on CPU
    return build_tiny_processor(text_corpus(seed=0, n_images=48), vocab_size=1024, max_pixels=112 * 112)


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory, tiny_processor):
    from clinkd.model import init_model_dir

    return init_model_dir(
        tmp_path_factory.mktemp("student"), "tiny-student", processor=tiny_processor, seed=0
    )


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory, tiny_processor):
    from clinkd.model import init_model_dir

    return init_model_dir(
        tmp_path_factory.mktemp("teacher"), "tiny-teacher", processor=tiny_processor, seed=1
    )
