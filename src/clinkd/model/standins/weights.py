"""The stand-ins' weights: a seeded random init of the stock transformers class, bf16, sharded."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING

from clinkd.errors import ClinkdError
from clinkd.model.standins.configs import write_json

if TYPE_CHECKING:
    from clinkd.model.standins.spec import StandinSpec

#: weights are split into shards this small, so every stand-in has several (the embedding, ~19 MB,
#: goes into a shard of its own, as save_pretrained does with any tensor larger than the limit)
MAX_SHARD_SIZE = "128KB"


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


def write_weights(spec: StandinSpec, out: Path, seed: int) -> None:
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
    write_json(index_file, index)
