"""A generator of synthetic data in exactly the Med-GRIT-270k format (issue 2).

The real Med-GRIT-270k cannot be shipped; this package draws images of the eight modalities with
named anatomical structures and lesions (each with an exact box) and writes questions and answers
for the four tasks, so that the whole pipeline runs and is tested anywhere.

- :func:`render` — one image and its annotated objects (:class:`SynthImage`, :class:`SynthObject`).
- :func:`generate` — a dataset folder: ``images/``, ``train.json``, ``test_{VG,RO,GC,MII}.json``.
- :func:`text_corpus` — the texts :func:`generate` would write plus the generator's vocabulary.
- :func:`generate_shapes` — generic (non-medical) pretraining data: coloured shapes to ground, refer to,
  describe and count (:mod:`clinkd.data.synth.shapes`).
"""

from clinkd.data.synth.dataset import DEFAULT_IMAGES, generate, text_corpus
from clinkd.data.synth.render import RENDERERS, render
from clinkd.data.synth.scene import SynthImage, SynthObject
from clinkd.data.synth.shapes import generate_shapes

__all__ = [
    "DEFAULT_IMAGES",
    "RENDERERS",
    "SynthImage",
    "SynthObject",
    "generate",
    "generate_shapes",
    "render",
    "text_corpus",
]
