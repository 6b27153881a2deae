"""Per-family hub files other than the tokenizer's: ``config.json`` (dimensions shrunk),
``preprocessor_config.json`` / ``video_preprocessor_config.json`` and ``generation_config.json``.

Sources and assumptions for every value are listed in the package docstring (:mod:`clinkd.model.standins`).
"""

from __future__ import annotations

import json
from pathlib import Path

_VISION_IDS = {
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
}

# ---- stand-in dimensions (the only fields changed from the hub's files) ------------------------------
_HIDDEN, _INTERMEDIATE, _HEADS, _KV_HEADS, _HEAD_DIM = 64, 128, 4, 2, 16
_VISION_WIDTH, _VISION_HEADS, _VISION_DEPTH = 32, 2, 2


def qwen2_vl_config(*, layers: int, vocab_size: int, tied: bool) -> dict:
    """Qwen2-VL-Instruct's flat legacy config.json, dimensions shrunk."""
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        **_VISION_IDS,
        "hidden_act": "silu",
        "hidden_size": _HIDDEN,  # hub: 1536 (2B) / 3584 (7B)
        "initializer_range": 0.02,
        "intermediate_size": _INTERMEDIATE,  # hub: 8960 / 18944
        "max_position_embeddings": 32768,
        "max_window_layers": 28,
        "model_type": "qwen2_vl",
        "num_attention_heads": _HEADS,  # hub: 12 / 28
        "num_hidden_layers": layers,  # hub: 28
        "num_key_value_heads": _KV_HEADS,  # hub: 2 / 4
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": tied,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": _VISION_DEPTH,  # hub: 32
            "embed_dim": _VISION_WIDTH,  # hub: 1280
            "mlp_ratio": 4,
            "num_heads": _VISION_HEADS,  # hub: 16
            "in_chans": 3,
            "hidden_size": _HIDDEN,  # the text width the merger projects to
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},  # hub: [16, 24, 24] of head dim 128
        "vocab_size": vocab_size,
    }


def qwen2_5_vl_config() -> dict:
    """Qwen2.5-VL-3B-Instruct's flat legacy config.json, dimensions shrunk."""
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        **_VISION_IDS,
        "hidden_act": "silu",
        "hidden_size": _HIDDEN,  # hub: 2048
        "initializer_range": 0.02,
        "intermediate_size": _INTERMEDIATE,  # hub: 11008
        "max_position_embeddings": 128000,
        "max_window_layers": 70,
        "model_type": "qwen2_5_vl",
        "num_attention_heads": _HEADS,  # hub: 16
        "num_hidden_layers": 2,  # hub: 36
        "num_key_value_heads": _KV_HEADS,  # hub: 2
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": _VISION_DEPTH,  # hub: 32
            "hidden_act": "silu",
            "hidden_size": _VISION_WIDTH,  # hub: 1280
            "intermediate_size": 2 * _VISION_WIDTH,  # hub: 3420
            "num_heads": _VISION_HEADS,  # hub: 16
            "in_chans": 3,
            "out_hidden_size": _HIDDEN,  # hub: 2048
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "fullatt_block_indexes": [_VISION_DEPTH - 1],  # hub: [7, 15, 23, 31] of 32 blocks
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},  # hub: [16, 24, 24]
        "vocab_size": 151936,
    }


def qwen3_vl_config() -> dict:
    """Qwen3-VL-2B-Instruct's nested config.json, dimensions shrunk."""
    return {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "image_token_id": 151655,
        "model_type": "qwen3_vl",
        "text_config": {
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "dtype": "bfloat16",
            "eos_token_id": 151645,
            "head_dim": _HEAD_DIM,  # hub: 128
            "hidden_act": "silu",
            "hidden_size": _HIDDEN,  # hub: 2048
            "initializer_range": 0.02,
            "intermediate_size": _INTERMEDIATE,  # hub: 6144
            "max_position_embeddings": 262144,
            "model_type": "qwen3_vl_text",
            "num_attention_heads": _HEADS,  # hub: 16
            "num_hidden_layers": 2,  # hub: 28
            "num_key_value_heads": _KV_HEADS,  # hub: 8
            "rms_norm_eps": 1e-06,
            # hub: [24, 20, 20] of 64 interleaved frequencies; here 8 (h == w as on the hub)
            "rope_scaling": {"mrope_interleaved": True, "mrope_section": [4, 2, 2], "rope_type": "default"},
            "rope_theta": 5000000,
            "tie_word_embeddings": True,
            "use_cache": True,
            "vocab_size": 151936,
        },
        "tie_word_embeddings": True,
        "transformers_version": "4.57.0.dev0",
        "video_token_id": 151656,
        "vision_config": {
            "deepstack_visual_indexes": [0, 1],  # hub: [5, 11, 17] of 24 blocks
            "depth": _VISION_DEPTH,  # hub: 24
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": _VISION_WIDTH,  # hub: 1024
            "in_channels": 3,
            "initializer_range": 0.02,
            "intermediate_size": 2 * _VISION_WIDTH,  # hub: 4096
            "model_type": "qwen3_vl",
            "num_heads": _VISION_HEADS,  # hub: 16
            "num_position_embeddings": 2304,
            "out_hidden_size": _HIDDEN,  # hub: 2048
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        "vision_end_token_id": 151653,
        "vision_start_token_id": 151652,
    }


_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def qwen2_preprocessor(processor_class: str) -> dict:
    return {
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": list(_CLIP_MEAN),
        "image_std": list(_CLIP_STD),
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": processor_class,
    }


QWEN3_PREPROCESSOR = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
QWEN3_VIDEO_PREPROCESSOR = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "video_processor_type": "Qwen3VLVideoProcessor",
}

QWEN2_VL_GENERATION = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.0,
    "temperature": 0.01,
    "top_p": 0.001,
    "top_k": 1,
    "transformers_version": "4.37.0",
}
QWEN2_5_VL_GENERATION = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.05,
    "temperature": 1e-06,
    "transformers_version": "4.49.0",  # assumed
}
QWEN3_VL_GENERATION = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "top_k": 20,
    "top_p": 0.8,
    "repetition_penalty": 1.0,
    "temperature": 0.7,
    "transformers_version": "4.56.0",  # assumed
}


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as the stand-ins' JSON files are written: 2-space indent, UTF-8, trailing newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
