"""clinkd: the Cross-Modal Clinical Knowledge Distiller for multi-task medical images.

Architecture (one subpackage per stage):

- :mod:`clinkd.data`  — the Med-GRIT data model, readers/writers, validation, image loading and the
  built-in synthetic Med-GRIT benchmark.
- :mod:`clinkd.model` — Med-CLIP Guided RoPE on the Qwen2-VL family, tiny offline models.
- :mod:`clinkd.train` — SFT, pseudo-label distillation, reflective correction.
- :mod:`clinkd.infer` — batched generation and semantic-aware selective generation.
- :mod:`clinkd.eval`  — the Med-GRIT-270k evaluation protocol (standard and strict readings).
- :mod:`clinkd.cli`   — the ``clinkd`` command.
"""

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]), statically,
# so keep it a plain string literal.
__version__ = "0.1.0"
