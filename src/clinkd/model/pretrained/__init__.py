"""The pretrained tiny checkpoints shipped with clinkd, made by ``scripts/pretrain_tiny.py``.

- ``student-base``: the ``tiny-student`` shape pretrained on the generic shapes domain (stock M-RoPE) — the
  demo's stand-in for a pretrained instruct checkpoint such as Qwen2-VL-Instruct.
- ``teacher``: the ``tiny-teacher`` shape trained far longer on far more synthetic Med-GRIT data — the
  demo's stand-in for a stronger model to distil from.

Each folder is a complete model folder (:func:`clinkd.model.load` reads it) with its model card
(``README.md``) and ``card.json`` (command, seeds, steps, data, validation scores, machine, SHA-256).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from clinkd.errors import ClinkdError

__all__ = ["NAMES", "PRETRAINED_DIR", "SEEDS", "copy_pretrained", "pretrained_card", "pretrained_path"]

PRETRAINED_DIR = Path(__file__).resolve().parent

#: names offered by ``clinkd model init --size``
NAMES = ("student-base", "teacher")

#: every seed the shipped checkpoints were made with. The synthetic data seeds are reserved: the demo
#: refuses them for its own benchmark, so its training and test images are never pretraining images.
SEEDS = {"shapes": 303, "teacher_data": 101, "validation": 202, "student-base_init": 0, "teacher_init": 1,
         "train": 0}
RESERVED_DATA_SEEDS = (SEEDS["shapes"], SEEDS["teacher_data"], SEEDS["validation"])


def pretrained_path(name: str) -> Path:
    """The shipped folder of ``name``, checked to be complete."""
    if name not in NAMES:
        raise ClinkdError(f"unknown pretrained checkpoint {name!r}; choose from {', '.join(NAMES)}")
    path = PRETRAINED_DIR / name
    if not (path / "model.safetensors").is_file() or not (path / "card.json").is_file():
        raise ClinkdError(f"the pretrained checkpoint {name!r} is missing from this installation ({path}); "
                          "reinstall clinkd, or make it with `python scripts/pretrain_tiny.py`")
    return path


def pretrained_card(name: str) -> dict:
    """``card.json`` of a shipped checkpoint: how it was made and its validation scores."""
    return json.loads((pretrained_path(name) / "card.json").read_text(encoding="utf-8"))


def copy_pretrained(name: str, out: str | Path) -> Path:
    """Copy the shipped checkpoint ``name`` into the model folder ``out`` (its card included)."""
    from clinkd.paths import output_dir

    src = pretrained_path(name)
    out = output_dir(out, force=True, what="model folder")
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    return out
