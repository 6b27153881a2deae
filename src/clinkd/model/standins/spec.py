"""What one stand-in folder holds (:class:`StandinSpec`) and the four stand-ins (:data:`STANDINS`)."""

from __future__ import annotations

from dataclasses import dataclass

from clinkd.model.standins.chat_templates import QWEN2_VL_CHAT_TEMPLATE, QWEN3_VL_CHAT_TEMPLATE
from clinkd.model.standins.configs import (
    QWEN2_5_VL_GENERATION,
    QWEN2_VL_GENERATION,
    QWEN3_PREPROCESSOR,
    QWEN3_VIDEO_PREPROCESSOR,
    QWEN3_VL_GENERATION,
    qwen2_5_vl_config,
    qwen2_preprocessor,
    qwen2_vl_config,
    qwen3_vl_config,
)
from clinkd.model.standins.tokenizer import QWEN2_5_ADDED, QWEN2_VL_ADDED, QWEN3_ADDED


@dataclass(frozen=True)
class StandinSpec:
    """What one stand-in folder holds: the hub's JSON files (dimensions shrunk) and its added tokens."""

    name: str
    """Hub name, e.g. ``"Qwen2-VL-2B-Instruct"``."""
    config: dict
    """``config.json`` in the hub's own layout."""
    generation_config: dict
    preprocessor_config: dict
    chat_template: str
    added_tokens: tuple[tuple[str, bool], ...]
    """``(content, special)`` at ids 151643, 151644, …"""
    model_max_length: int
    video_preprocessor_config: dict | None = None
    tokenizer_processor_class: str | None = None
    """``processor_class`` in tokenizer_config.json (Qwen2.5-VL / Qwen3-VL ship one)."""
    chat_template_in_tokenizer_config: bool = False
    """Qwen2-VL also ships its (multimodal) chat template inside tokenizer_config.json."""
    notes: str = ""

    @property
    def model_type(self) -> str:
        return self.config["model_type"]

    @property
    def vocab_size(self) -> int:
        """Embedding rows (151936, or 152064 for the 7B)."""
        return (self.config.get("text_config") or self.config)["vocab_size"]

    @property
    def tie_word_embeddings(self) -> bool:
        return bool(self.config.get("tie_word_embeddings", False))


#: Stand-in name → spec. The names are the hub repositories' (``Qwen/`` dropped).
STANDINS: dict[str, StandinSpec] = {
    "Qwen2-VL-2B-Instruct": StandinSpec(
        name="Qwen2-VL-2B-Instruct",
        config=qwen2_vl_config(layers=2, vocab_size=151936, tied=True),
        generation_config=QWEN2_VL_GENERATION,
        preprocessor_config=qwen2_preprocessor("Qwen2VLProcessor"),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        added_tokens=QWEN2_VL_ADDED,
        model_max_length=32768,
        chat_template_in_tokenizer_config=True,
    ),
    "Qwen2-VL-7B-Instruct": StandinSpec(
        name="Qwen2-VL-7B-Instruct",
        config=qwen2_vl_config(layers=3, vocab_size=152064, tied=False),
        generation_config=QWEN2_VL_GENERATION,
        preprocessor_config=qwen2_preprocessor("Qwen2VLProcessor"),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        added_tokens=QWEN2_VL_ADDED,
        model_max_length=32768,
        chat_template_in_tokenizer_config=True,
        notes="3 text layers (the other stand-ins have 2): it plays the bigger teacher",
    ),
    "Qwen2.5-VL-3B-Instruct": StandinSpec(
        name="Qwen2.5-VL-3B-Instruct",
        config=qwen2_5_vl_config(),
        generation_config=QWEN2_5_VL_GENERATION,
        preprocessor_config=qwen2_preprocessor("Qwen2_5_VLProcessor"),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        added_tokens=QWEN2_5_ADDED,
        model_max_length=131072,
        tokenizer_processor_class="Qwen2_5_VLProcessor",
    ),
    "Qwen3-VL-2B-Instruct": StandinSpec(
        name="Qwen3-VL-2B-Instruct",
        config=qwen3_vl_config(),
        generation_config=QWEN3_VL_GENERATION,
        preprocessor_config=QWEN3_PREPROCESSOR,
        video_preprocessor_config=QWEN3_VIDEO_PREPROCESSOR,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
        added_tokens=QWEN3_ADDED,
        model_max_length=262144,
        tokenizer_processor_class="Qwen3VLProcessor",
    ),
}
