"""One entry point over the eight synthetic renderers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clinkd.data.sample import MODALITIES
from clinkd.data.synth.photo import render_dermoscopy, render_endoscopy, render_fundus
from clinkd.data.synth.radiology import render_ct, render_mr, render_pet, render_x
from clinkd.data.synth.scene import SynthImage
from clinkd.data.synth.ultrasound import render_ultrasound

RENDERERS: dict[str, Callable[[np.random.Generator], SynthImage]] = {
    "ct": render_ct,
    "mr": render_mr,
    "x": render_x,
    "pet": render_pet,
    "endoscopy": render_endoscopy,
    "dermoscopy": render_dermoscopy,
    "fundus": render_fundus,
    "ultrasound": render_ultrasound,
}
assert tuple(RENDERERS) == MODALITIES


def render(modality: str, rng: np.random.Generator) -> SynthImage:
    """Draw one synthetic image of ``modality`` (a name of :data:`~clinkd.data.sample.MODALITIES`).

    The result is a function of the generator's state only: the same state gives the same pixels,
    objects and boxes. Raises ``ValueError`` for an unknown modality.
    """
    try:
        fn = RENDERERS[modality]
    except KeyError:
        raise ValueError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}") from None
    return fn(rng)
