"""Fixtures of the web-app tests: an answerer over the shared tiny untrained model (tests/conftest.py), images."""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before anything imports gradio

import numpy as np
import pytest
from PIL import Image


@pytest.fixture()
def answerer(tiny_student):
    from clinkd.serve.answer import Answerer

    model, processor = tiny_student
    return Answerer(model, processor, max_new_tokens=12)


@pytest.fixture()
def png(tmp_path):
    """A 300x200 RGB PNG with a bright square, on disk."""
    arr = np.full((200, 300, 3), 40, np.uint8)
    arr[50:120, 90:200] = (220, 200, 180)
    path = tmp_path / "scan.png"
    Image.fromarray(arr).save(path)
    return path
