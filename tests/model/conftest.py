"""Shared fixtures: a small corpus, one processor (tokenizer trained in-process) and seeded images."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in these tests may reach a hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

ORGANS = ["liver", "kidney", "spleen", "lung", "heart", "brain", "tumor", "lesion", "nodule", "bladder"]
MODALITIES = ["CT", "MRI", "X-ray", "ultrasound", "fundus", "dermoscopy", "endoscopy", "PET"]


def small_corpus(n: int = 300, seed: int = 0) -> list[str]:
    """Med-GRIT-like questions and answers with box markup, <ref> tags and medical words."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        organ, mod = rng.choice(ORGANS), rng.choice(MODALITIES)
        x0, y0 = rng.integers(0, 500, 2)
        x1, y1 = x0 + rng.integers(1, 499), y0 + rng.integers(1, 499)
        box = f"<box>({x0},{y0}),({x1},{y1})</box>"
        out += [
            f"Please locate the <ref>{organ}</ref> in this {mod} image.",
            f"The <ref>{organ}</ref>{box} is visible in the {mod} scan.",
            f"What is the object at {box}? It is the {organ}.",
            f"Describe the {mod} image in detail. The image shows the {organ} with a hypodense {ORGANS[7]}.",
        ]
    return out


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return small_corpus()


@pytest.fixture(scope="session")
def processor(corpus):
    from clinkd.model import build_tiny_processor

    # 112×112 images → 8×8 patches → 4×4 = 16 merged tokens: quick models
    return build_tiny_processor(corpus, max_pixels=112 * 112, min_pixels=28 * 28)


@pytest.fixture(scope="session")
def images():
    rng = np.random.default_rng(0)
    sizes = [(112, 112), (84, 112), (56, 84), (112, 56)]
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
