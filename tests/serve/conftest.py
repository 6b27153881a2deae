"""Fixtures of the web-app tests: a tiny untrained model (fast: 112x112 images, 512-token vocabulary), images."""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before anything imports gradio

import numpy as np
import pytest
from PIL import Image


def tiny_corpus() -> list[str]:
    """Med-GRIT-like questions and answers built from the synthetic templates: enough for a tokenizer."""
    from clinkd.data.synth.templates import CATALOGUE, GC_QUESTIONS, MII_QUESTIONS, RO_QUESTIONS, VG_QUESTIONS

    out = list(MII_QUESTIONS)
    for i, name in enumerate(CATALOGUE):
        box = f"<box>({i * 20},{i * 10}),({i * 20 + 300},{i * 10 + 400})</box>"
        out += [q.format(ref=f"<ref>{name}</ref>") for q in VG_QUESTIONS]
        out += [q.format(box=box) for q in RO_QUESTIONS + GC_QUESTIONS]
        out += [f"<ref>{name}</ref>{box}", f"The {name} is seen in {box}."]
    return out


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    from clinkd.model import build_tiny_processor, init_model_dir

    processor = build_tiny_processor(tiny_corpus(), vocab_size=512, max_pixels=112 * 112, min_pixels=28 * 28)
    return init_model_dir(tmp_path_factory.mktemp("serve-model"), "tiny-student", processor=processor, seed=0)


@pytest.fixture(scope="session")
def loaded(model_dir):
    from clinkd.model import load

    return load(model_dir)


@pytest.fixture()
def answerer(loaded):
    from clinkd.serve.answer import Answerer

    model, processor = loaded
    return Answerer(model, processor, max_new_tokens=12)


@pytest.fixture()
def png(tmp_path):
    """A 300x200 RGB PNG with a bright square, on disk."""
    arr = np.full((200, 300, 3), 40, np.uint8)
    arr[50:120, 90:200] = (220, 200, 180)
    path = tmp_path / "scan.png"
    Image.fromarray(arr).save(path)
    return path
