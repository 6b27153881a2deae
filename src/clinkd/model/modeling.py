"""Qwen2-VL / Qwen2.5-VL / Qwen3-VL models whose position ids follow MCG-RoPE (docs/method.md §1).

Each family gets two small subclasses and nothing else is copied from upstream:

* ``Mcg<Family>Model`` overrides ``get_rope_index`` of the inner model. transformers calls that one
  method both in the training forward (``compute_3d_position_ids``) and when ``generate`` prepares the
  prompt's 3D positions, so one override covers training, cached and uncached decoding. (It also wraps
  ``compute_3d_position_ids`` to fix an upstream shape bug of manual decode steps; see there.)
* ``Mcg<Family>ForConditionalGeneration`` builds the stock model and swaps its inner model's class (the
  subclass adds no parameter), and registers the stock checkpoint-key mapping under its own class names:
  ``from_pretrained`` looks the mapping up by class name, and without it a checkpoint saved by the stock
  class (keys ``model.layers.*``, ``visual.*``) would load with the language model missing.

What these rely on in transformers' internals is in :mod:`clinkd.upstream` (the overridden methods are
listed in its ``OVERRIDES``), with a test per hook.

The scheme and its four parameters live in the model config as ``config.clinkd_rope`` (a plain dict, so
``save_pretrained``/``from_pretrained`` keep it and stock transformers ignores it)::

    {"scheme": "mcg", "text_to_image_gap": 2, "image_to_text_gap": 2, "stride_h": 1, "stride_w": 1}

``scheme="stock"`` (alias ``"mrope"``) runs the upstream ``get_rope_index`` unchanged, for ablations.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import (
    PreTrainedModel,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLModel,
    Qwen2VLForConditionalGeneration,
    Qwen2VLModel,
    Qwen3VLForConditionalGeneration,
    Qwen3VLModel,
)

from clinkd.data.boxes import STYLES
from clinkd.data.conventions import Convention, convention_named, native_convention
from clinkd.errors import ClinkdError
from clinkd.model.rope import mcg_position_ids
from clinkd.upstream import (
    share_checkpoint_conversion_mapping,
    swap_inner_model_class,
    trim_decode_step_positions,
)

__all__ = [
    "MODEL_CLASSES",
    "McgQwen2VLForConditionalGeneration",
    "McgQwen2_5_VLForConditionalGeneration",
    "McgQwen3VLForConditionalGeneration",
    "RopeSettings",
    "get_box_convention",
    "get_rope_settings",
    "set_box_convention",
    "set_rope_settings",
]

SCHEMES = ("mcg", "stock")
_ALIASES = {"mrope": "stock", "m-rope": "stock", "mcg-rope": "mcg"}
CONFIG_KEY = "clinkd_rope"
#: A plain-language field beside ``clinkd_rope`` for tools that load the folder without clinkd.
NOTE_KEY = "clinkd_position_ids"
_NOTES = {
    "mcg": "MCG-RoPE (clinkd_rope): position ids differ from stock M-RoPE (gaps around images, visual strides); "
    "stock transformers classes (AutoModelForImageTextToText) load these weights but compute stock M-RoPE "
    "positions, so answers differ: load with clinkd.model.load, or refuse.",
    "stock": "stock M-RoPE: the position ids of the stock Qwen-VL classes.",
}


@dataclass(frozen=True)
class RopeSettings:
    """The position-id scheme of a model, stored in ``config.clinkd_rope``."""

    scheme: str = "mcg"
    """``"mcg"`` (MCG-RoPE with the parameters below) or ``"stock"`` (upstream M-RoPE, exactly)."""
    text_to_image_gap: int = 2
    """First visual position − last text position; the ClinKD release uses 2, stock M-RoPE 1."""
    image_to_text_gap: int = 2
    """First text position after an image − its largest position; release 2, stock 1."""
    stride_h: int = 1
    """Step between neighbouring visual rows (release and stock 1)."""
    stride_w: int = 1
    """Step between neighbouring visual columns (release and stock 1)."""

    def __post_init__(self):
        scheme = _ALIASES.get(str(self.scheme).lower(), str(self.scheme).lower())
        if scheme not in SCHEMES:
            raise ClinkdError(f"unknown rope scheme {self.scheme!r}: use 'mcg' or 'stock' (alias 'mrope')")
        object.__setattr__(self, "scheme", scheme)
        for name in ("text_to_image_gap", "image_to_text_gap", "stride_h", "stride_w"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ClinkdError(f"rope setting {name} must be a positive integer, got {value!r}")

    @classmethod
    def from_value(cls, value: RopeSettings | dict | str | None) -> RopeSettings:
        """Build from a scheme name (``"mcg"``, ``"stock"``), a dict of fields, or ``None`` (release defaults)."""
        if value is None:
            return cls()
        if isinstance(value, RopeSettings):
            return value
        if isinstance(value, str):
            return cls(scheme=value)
        unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ClinkdError(f"unknown rope settings {sorted(unknown)}")
        return cls(**value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def get_rope_settings(config) -> RopeSettings:
    """The scheme recorded in a (top-level) model config; release MCG-RoPE when none is recorded."""
    return RopeSettings.from_value(getattr(config, CONFIG_KEY, None))


def set_rope_settings(config, rope: RopeSettings | dict | str | None) -> RopeSettings:
    """Record ``rope`` in ``config`` (in place) so that it is saved with the model; returns it."""
    settings = RopeSettings.from_value(rope)
    setattr(config, CONFIG_KEY, settings.to_dict())
    setattr(config, NOTE_KEY, _NOTES[settings.scheme])
    return settings


#: How the model writes boxes (:mod:`clinkd.data.conventions`), saved in its config like ``clinkd_rope``.
BOX_CONVENTION_KEY = "clinkd_box_convention"


def get_box_convention(config) -> Convention:
    """The box convention a model answers in: ``config.clinkd_box_convention`` when recorded (clinkd-trained
    and tiny models), else its family's own (a hub checkpoint). A folder trained by a clinkd from before
    the key existed has a ``clinkd_run.yaml`` instead: Med-GRIT text in its ``data.box_style``."""
    key = getattr(config, BOX_CONVENTION_KEY, None)
    if key:
        return convention_named(key)
    style = _run_box_style(getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None))
    if style is not None:
        return convention_named("medgrit" if style == "qwen" else f"medgrit:{style}")
    return native_convention(config.model_type)


def set_box_convention(config, convention: Convention) -> Convention:
    """Record ``convention`` in ``config`` (in place) so that it is saved with the model; returns it."""
    setattr(config, BOX_CONVENTION_KEY, convention.key)
    return convention


def _run_box_style(folder) -> str | None:
    """``data.box_style`` of the ``clinkd_run.yaml`` in ``folder`` (None when there is none)."""
    return _read_run_box_style(str(folder)) if folder else None


@functools.lru_cache(maxsize=64)
def _read_run_box_style(folder: str) -> str | None:
    """Read once per process: :func:`get_box_convention` runs on every generate call (a legacy folder's
    YAML is not re-read per batch)."""
    if not (Path(folder) / "clinkd_run.yaml").is_file():
        return None
    import yaml

    run = Path(folder) / "clinkd_run.yaml"
    try:
        style = ((yaml.safe_load(run.read_text(encoding="utf-8")) or {}).get("data") or {}).get(
            "box_style", "qwen"
        )
    except (OSError, yaml.YAMLError, AttributeError) as err:
        raise ClinkdError(f"{run}: cannot read data.box_style ({err})") from err
    if style not in STYLES:
        raise ClinkdError(f"{run}: unknown data.box_style {style!r}; choose from {', '.join(STYLES)}")
    return style


class _McgRopeMixin:
    """Overrides ``get_rope_index`` of a Qwen-VL inner model; the rest is the stock class."""

    if TYPE_CHECKING:  # set by the stock inner model this is mixed into
        config: Any

    def _video_time_interval(self, video_grid_thw, kwargs) -> torch.Tensor | None:
        return None  # Qwen2-VL: temporal ids step by 1

    def _video_grids(self, video_grid_thw):
        return video_grid_thw

    def get_rope_index(
        self,
        input_ids: torch.LongTensor,
        mm_token_type_ids: torch.IntTensor,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same contract as upstream: ``input_ids`` (B, L) → position ids (3, B, L), deltas (B, 1).

        Under ``scheme="stock"`` this is the upstream method itself; under ``"mcg"`` it is
        :func:`clinkd.model.rope.mcg_position_ids` with the config's gaps and strides.
        """
        settings = get_rope_settings(self.config)
        if settings.scheme == "stock":
            # the stock inner model after this mixin in the MRO defines it
            return super().get_rope_index(  # type: ignore[misc]
                input_ids,
                mm_token_type_ids,
                image_grid_thw=image_grid_thw,
                video_grid_thw=video_grid_thw,
                attention_mask=attention_mask,
                **kwargs,
            )
        time_interval = self._video_time_interval(video_grid_thw, kwargs)
        position_ids, rope_deltas = mcg_position_ids(
            mm_token_type_ids,
            image_grid_thw,
            attention_mask,
            spatial_merge_size=self.config.vision_config.spatial_merge_size,
            text_to_image_gap=settings.text_to_image_gap,
            image_to_text_gap=settings.image_to_text_gap,
            stride_h=settings.stride_h,
            stride_w=settings.stride_w,
            video_grid_thw=self._video_grids(video_grid_thw),
            video_time_interval=time_interval,
        )
        return position_ids.to(device=input_ids.device, dtype=input_ids.dtype), rope_deltas.to(
            input_ids.device
        )

    def compute_3d_position_ids(self, *args, **kwargs):
        """Upstream, plus a fix for decode steps given the whole attention mask: positions (3, B, new)
        where transformers 5.23 builds (3, B, past + new); see
        :func:`clinkd.upstream.trim_decode_step_positions`."""
        stock = super().compute_3d_position_ids
        return trim_decode_step_positions(stock(*args, **kwargs), stock, args, kwargs)


class McgQwen2VLModel(_McgRopeMixin, Qwen2VLModel):
    """Qwen2-VL inner model with MCG-RoPE position ids."""


class McgQwen2_5_VLModel(_McgRopeMixin, Qwen2_5_VLModel):
    """Qwen2.5-VL inner model with MCG-RoPE position ids (videos: temporal ids in seconds, as upstream)."""

    # ignore[override]: this is upstream Qwen2_5_VLModel's signature, which differs from the mixin's (and
    # Qwen2-VL's) in its fifth parameter; matching upstream is the point
    def get_rope_index(  # type: ignore[override]
        self,
        input_ids: torch.LongTensor,
        mm_token_type_ids: torch.IntTensor,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Upstream Qwen2.5-VL's signature (``second_per_grid_ts`` fifth, before ``attention_mask``), so that a
        positional caller is read as upstream reads it; the mixin's method does the work."""
        return super().get_rope_index(
            input_ids,
            mm_token_type_ids,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            attention_mask=attention_mask,
            second_per_grid_ts=second_per_grid_ts,
            **kwargs,
        )

    def _video_time_interval(self, video_grid_thw, kwargs):
        if video_grid_thw is None:
            return None
        seconds = kwargs.get("second_per_grid_ts")
        if seconds is None:
            seconds = torch.ones(video_grid_thw.shape[0])
        seconds = torch.as_tensor(seconds, device=video_grid_thw.device).reshape(-1)
        return self.config.vision_config.tokens_per_second * seconds


class McgQwen3VLModel(_McgRopeMixin, Qwen3VLModel):
    """Qwen3-VL inner model with MCG-RoPE position ids (videos split into frames, as upstream)."""

    def _video_grids(self, video_grid_thw):
        if video_grid_thw is None:
            return None
        # Qwen3-VL separates video frames with timestamp text: each frame is its own t=1 block
        frames = torch.repeat_interleave(video_grid_thw, video_grid_thw[:, 0], dim=0)
        frames[:, 0] = 1
        return frames


class _McgConditionalGenerationMixin:
    """Builds the stock model, then gives its inner model the MCG class and the config a scheme."""

    _inner_class: type

    if TYPE_CHECKING:  # set by the stock model class this is mixed into
        config: Any
        model: Any

    def __init__(self, config, *args, **kwargs):
        # the config is the scheme's only home: write the default into it so a save records it
        set_rope_settings(config, getattr(config, CONFIG_KEY, None))
        super().__init__(config, *args, **kwargs)
        swap_inner_model_class(self, self._inner_class)  # no new parameters: a class swap, not a rebuild

    @property
    def rope_settings(self) -> RopeSettings:
        return get_rope_settings(self.config)

    def set_rope(self, rope: RopeSettings | dict | str | None) -> RopeSettings:
        """Switch the scheme in place (recorded in the config, so it is saved)."""
        settings = set_rope_settings(self.config, rope)
        self.model.rope_deltas = None
        return settings


class McgQwen2VLForConditionalGeneration(_McgConditionalGenerationMixin, Qwen2VLForConditionalGeneration):
    """``Qwen2VLForConditionalGeneration`` with MCG-RoPE (or stock M-RoPE, per ``config.clinkd_rope``)."""

    _inner_class = McgQwen2VLModel


class McgQwen2_5_VLForConditionalGeneration(
    _McgConditionalGenerationMixin, Qwen2_5_VLForConditionalGeneration
):
    """``Qwen2_5_VLForConditionalGeneration`` with MCG-RoPE (or stock M-RoPE, per ``config.clinkd_rope``)."""

    _inner_class = McgQwen2_5_VLModel


class McgQwen3VLForConditionalGeneration(_McgConditionalGenerationMixin, Qwen3VLForConditionalGeneration):
    """``Qwen3VLForConditionalGeneration`` with MCG-RoPE (or stock M-RoPE, per ``config.clinkd_rope``)."""

    _inner_class = McgQwen3VLModel


#: config ``model_type`` → (our class, the stock class it extends)
MODEL_CLASSES: dict[str, tuple[type[PreTrainedModel], type[PreTrainedModel]]] = {
    "qwen2_vl": (McgQwen2VLForConditionalGeneration, Qwen2VLForConditionalGeneration),
    "qwen2_5_vl": (McgQwen2_5_VLForConditionalGeneration, Qwen2_5_VLForConditionalGeneration),
    "qwen3_vl": (McgQwen3VLForConditionalGeneration, Qwen3VLForConditionalGeneration),
}


def _register_key_mappings() -> None:
    """Give our classes the stock classes' checkpoint-key mappings (looked up by class name; see
    :func:`clinkd.upstream.share_checkpoint_conversion_mapping`)."""
    pairs = [(ours, stock) for ours, stock in MODEL_CLASSES.values()]
    pairs += [
        (McgQwen2VLModel, Qwen2VLModel),
        (McgQwen2_5_VLModel, Qwen2_5_VLModel),
        (McgQwen3VLModel, Qwen3VLModel),
    ]
    for ours, stock in pairs:
        share_checkpoint_conversion_mapping(ours, stock)


_register_key_mappings()
