"""The stand-ins' tokenizer files: the real Qwen2 vocabulary plus each family's added tokens.

:func:`write_tokenizer` copies a prebuilt :func:`clinkd.model.qwen_vocab.qwen_tokenizer_json` file with the
family's added tokens at their real ids (151643, …) and writes the hub's ``tokenizer_config.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from clinkd.errors import ClinkdError
from clinkd.model.qwen_vocab import QWEN2_VOCAB_SIZE
from clinkd.model.standins.configs import write_json

if TYPE_CHECKING:
    from clinkd.model.standins.spec import StandinSpec


#: (content, special) at ids 151643, 151644, … — Qwen2-VL's added tokens.
QWEN2_VL_ADDED = (
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
QWEN2_5_ADDED = QWEN2_VL_ADDED + (
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
QWEN3_ADDED = QWEN2_5_ADDED + (
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)


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


def write_tokenizer(spec: StandinSpec, out: Path, tokenizer_json: Path) -> None:
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
    write_json(out / "tokenizer_config.json", dict(sorted(config.items())))
