"""Tiny Qwen-VL models built from configs, with no download: a teacher and a smaller student.

Both sizes share one locally trained tokenizer (:mod:`clinkd.model.tokenizer`) and the image-only
processor (:mod:`clinkd.model.processor`), so the teacher's logits line up with the student's
vocabulary for distillation (docs/method.md §2). :func:`init_model_dir` writes a complete model
directory (config, safetensors weights, tokenizer, processor, chat template) that
:func:`clinkd.model.load` reads back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import GenerationConfig, PreTrainedConfig, Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

from clinkd.data.conventions import CONVENTIONS
from clinkd.errors import ClinkdError
from clinkd.model.modeling import MODEL_CLASSES, RopeSettings, set_box_convention, set_rope_settings
from clinkd.model.processor import CHAT_TEMPLATE, ClinkdProcessor, make_image_processor
from clinkd.model.tokenizer import build_tokenizer
from clinkd.paths import output_dir
from clinkd.seeding import local_seed

__all__ = ["SIZES", "TinySpec", "build_tiny_model", "build_tiny_processor", "init_model_dir", "tiny_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TinySpec:
    """Shape of a tiny model. ``hidden_size / num_heads`` is the head dim; its half is split by M-RoPE."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vision_depth: int
    vision_embed: int
    vision_heads: int


SIZES: dict[str, TinySpec] = {
    "tiny-student": TinySpec(128, 4, 4, 2, 256, vision_depth=2, vision_embed=64, vision_heads=4),
    "tiny-teacher": TinySpec(256, 6, 8, 4, 512, vision_depth=3, vision_embed=128, vision_heads=4),
}

FAMILIES = tuple(MODEL_CLASSES)


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim / 2`` rotary frequencies over (t, h, w) like Qwen2-VL's [16, 24, 24] of 64."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def tiny_config(
    size: str, tokenizer, family: str = "qwen2_vl", rope: RopeSettings | dict | str | None = "mcg"
):
    """Config of a tiny ``family`` model (``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl``) for ``tokenizer``."""
    if size not in SIZES:
        raise ClinkdError(f"unknown tiny size {size!r}; choose from {sorted(SIZES)}")
    if family not in FAMILIES:
        raise ClinkdError(f"unknown model family {family!r}; choose from {list(FAMILIES)}")
    s = SIZES[size]
    ids = {
        name: tokenizer.convert_tokens_to_ids(tok)
        for name, tok in [
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        ]
    }
    head_dim = s.hidden_size // s.num_heads
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_layers,
        num_attention_heads=s.num_heads,
        num_key_value_heads=s.num_kv_heads,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": _mrope_section(head_dim),
        },
    )
    vision: dict[str, Any] = dict(
        depth=s.vision_depth, num_heads=s.vision_heads, spatial_merge_size=2, temporal_patch_size=2
    )
    config: PreTrainedConfig
    if family == "qwen2_vl":
        vision.update(embed_dim=s.vision_embed, hidden_size=s.hidden_size, mlp_ratio=2, patch_size=14)
        config = Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    elif family == "qwen2_5_vl":
        vision.update(
            hidden_size=s.vision_embed,
            out_hidden_size=s.hidden_size,
            intermediate_size=2 * s.vision_embed,
            patch_size=14,
            window_size=56,
            fullatt_block_indexes=[s.vision_depth - 1],
        )
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    else:
        text.update(head_dim=head_dim)
        text["rope_parameters"]["mrope_interleaved"] = True
        vision.update(
            hidden_size=s.vision_embed,
            out_hidden_size=s.hidden_size,
            intermediate_size=2 * s.vision_embed,
            patch_size=16,
            num_position_embeddings=256,
            deepstack_visual_indexes=[0],
        )
        config = Qwen3VLConfig(text_config=text, vision_config=vision, **ids)
    set_rope_settings(config, rope)
    set_box_convention(config, CONVENTIONS["medgrit"])  # tiny models learn the Med-GRIT text as it is
    return config


def build_tiny_model(
    size: str, tokenizer, *, family: str = "qwen2_vl", rope="mcg", seed: int = 0, stock: bool = False
):
    """A randomly initialised tiny model, the same for the same ``seed`` whatever the caller's random state,
    which is left unchanged. ``stock=True`` gives the upstream transformers class."""
    config = tiny_config(size, tokenizer, family, rope)
    ours, upstream = MODEL_CLASSES[family]
    with local_seed(seed):  # seeded weights; the caller's random state is left as it was
        model = (upstream if stock else ours)(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model.eval()


def build_tiny_processor(
    corpus: Iterable[str],
    *,
    vocab_size: int = 4096,
    min_pixels: int = 56 * 56,
    max_pixels: int = 224 * 224,
    patch_size: int = 14,
) -> ClinkdProcessor:
    """Train the shared tokenizer on ``corpus`` and wrap it with the image-only processor.

    With the defaults a 224×224 image becomes 8×8 = 64 merged tokens (16×16 patches of 14 px, merged 2×2).
    Qwen3-VL models need ``patch_size=16``.
    """
    tokenizer = build_tokenizer(corpus, vocab_size=vocab_size)
    image_processor = make_image_processor(min_pixels, max_pixels, patch_size=patch_size)
    return ClinkdProcessor(image_processor, tokenizer, chat_template=CHAT_TEMPLATE)


def default_corpus() -> list[str]:
    """The synthetic Med-GRIT text of :mod:`clinkd.data.synth`, the tokenizer's training text."""
    try:
        from clinkd.data.synth import text_corpus
    except ImportError as err:
        raise ClinkdError(
            "clinkd.data.synth.text_corpus is not available, so there is no text to train the tiny "
            f"tokenizer on ({err}); install the complete clinkd package"
        ) from err
    return list(text_corpus(seed=0))


def init_model_dir(
    out: str | Path,
    size: str,
    *,
    rope="mcg",
    seed: int = 0,
    family: str = "qwen2_vl",
    corpus: Iterable[str] | None = None,
    processor: ClinkdProcessor | None = None,
    min_pixels: int = 56 * 56,
    max_pixels: int = 224 * 224,
) -> Path:
    """Write a complete tiny model directory to ``out`` and return its path (files of the same names in an
    existing ``out`` are overwritten: the CLI refuses a non-empty folder without ``--force``).

    The tokenizer is trained on ``corpus`` (default: :func:`default_corpus`) unless a ``processor`` is
    given — pass the same processor to build a teacher and a student that share one vocabulary.
    """
    out = output_dir(out, force=True, what="model folder")  # a file, or a path under one: refused before work
    if processor is None:
        processor = build_tiny_processor(
            default_corpus() if corpus is None else corpus,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            patch_size=16 if family == "qwen3_vl" else 14,
        )
    model = build_tiny_model(size, processor.tokenizer, family=family, rope=rope, seed=seed)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "wrote %s (%s, %s, %.2fM parameters, rope %s) to %s",
        size,
        family,
        type(model).__name__,
        n_params / 1e6,
        model.rope_settings.scheme,
        out,
    )
    return out
