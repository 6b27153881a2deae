"""Models of :mod:`clinkd`: Med-CLIP Guided RoPE on the Qwen2-VL family, loading, tiny offline models.

- :func:`mcg_position_ids` — the position-id scheme as a pure function (docs/method.md §1).
- ``McgQwen2VLForConditionalGeneration`` and its Qwen2.5-VL / Qwen3-VL siblings — the stock models with
  that scheme, configured by ``config.clinkd_rope`` (:class:`RopeSettings`).
- :func:`load` — a local checkpoint directory → ``(model, processor)`` of the right class.
- :class:`ClinkdProcessor`, :func:`build_batch` — image-only processor and chat-formatted batches.
- :func:`build_tokenizer`, :func:`build_tiny_model`, :func:`init_model_dir` — tiny models, no download.
- :func:`build_standin`, :data:`STANDINS` — hub-layout stand-ins of real checkpoints (real vocabulary).
"""

from clinkd.model.loading import LoadedModel, ModelLoadError, load
from clinkd.model.modeling import (
    MODEL_CLASSES,
    McgQwen2_5_VLForConditionalGeneration,
    McgQwen2VLForConditionalGeneration,
    McgQwen3VLForConditionalGeneration,
    RopeSettings,
    get_rope_settings,
    set_rope_settings,
)
from clinkd.model.processor import CHAT_TEMPLATE, ClinkdProcessor, build_batch, make_image_processor
from clinkd.model.rope import RopeError, mcg_position_ids
from clinkd.model.standins import STANDINS, build_standin
from clinkd.model.tiny import SIZES, build_tiny_model, build_tiny_processor, init_model_dir, tiny_config
from clinkd.model.tokenizer import BOX_TOKENS, QWEN_SPECIAL_TOKENS, build_tokenizer

__all__ = [
    "BOX_TOKENS",
    "CHAT_TEMPLATE",
    "MODEL_CLASSES",
    "QWEN_SPECIAL_TOKENS",
    "SIZES",
    "STANDINS",
    "ClinkdProcessor",
    "LoadedModel",
    "McgQwen2VLForConditionalGeneration",
    "McgQwen2_5_VLForConditionalGeneration",
    "McgQwen3VLForConditionalGeneration",
    "ModelLoadError",
    "RopeError",
    "RopeSettings",
    "build_batch",
    "build_standin",
    "build_tiny_model",
    "build_tiny_processor",
    "build_tokenizer",
    "get_rope_settings",
    "init_model_dir",
    "load",
    "make_image_processor",
    "mcg_position_ids",
    "set_rope_settings",
    "tiny_config",
]
