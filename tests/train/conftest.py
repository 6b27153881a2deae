"""Fixtures for the training tests: a small synthetic benchmark. The tiny processor and teacher/student
folders (``tiny_processor``, ``tiny_student_dir``, ``tiny_teacher_dir``) come from tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from clinkd.data import synth

    out = tmp_path_factory.mktemp("synth") / "data"
    synth.generate(out, seed=0, n_images=24)
    return out
