"""Outputs are plain checkpoints (issue 11, point 5): what `clinkd model init` and a training stage save
loads with stock AutoModelForImageTextToText and AutoProcessor (or, without torchvision, AutoProcessor
fails loudly instead of returning a bare tokenizer), keeps a hub checkpoint's processor files and its
dtype, and says in its config how its position ids are computed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer
from transformers.processing_utils import ProcessorMixin
from transformers.utils import is_torchvision_available

from clinkd.model import load
from clinkd.model.processor import ClinkdProcessor, pixel_budget


def _image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (84, 112, 3), dtype=np.uint8))


def check_stock_auto_processor(folder: Path) -> None:
    """Stock AutoProcessor gives a processor that handles images, or (no torchvision) raises saying why."""
    if is_torchvision_available():  # GPU machines
        proc = AutoProcessor.from_pretrained(folder)
        assert isinstance(proc, ProcessorMixin) and hasattr(proc, "image_processor")
        batch = proc(
            images=[_image()], text=["<|vision_start|><|image_pad|><|vision_end|>Where?"], return_tensors="pt"
        )
        assert "pixel_values" in batch and "image_grid_thw" in batch
    else:  # these CPU machines: the stock video processor needs torchvision
        with pytest.raises(ImportError, match="[Tt]orchvision"):
            AutoProcessor.from_pretrained(folder)


def check_stock_model(folder: Path) -> None:
    model, info = AutoModelForImageTextToText.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ours, _ = load(folder, with_processor=False)
    stock = dict(model.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.equal(p, stock[name]), name


def check_stock_processor_parts(folder: Path, budget: tuple[int, int]) -> None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        cls = json.loads((folder / name).read_text())["processor_class"]
        assert cls in ("Qwen2VLProcessor", "Qwen2_5_VLProcessor", "Qwen3VLProcessor"), (name, cls)
    flat = json.loads((folder / "preprocessor_config.json").read_text())
    assert (flat["min_pixels"], flat["max_pixels"]) == budget
    ip = AutoImageProcessor.from_pretrained(folder)
    assert (ip.size["shortest_edge"], ip.size["longest_edge"]) == budget
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.convert_tokens_to_ids("<|image_pad|>") == load(folder)[1].image_token_id
    assert isinstance(load(folder)[1], ClinkdProcessor)


def test_model_init_writes_a_plain_checkpoint(tmp_path):
    from clinkd.cli.main import main

    out = tmp_path / "tiny"
    assert main(["model", "init", "--size", "tiny-student", "--out", str(out)]) == 0
    check_stock_model(out)
    check_stock_processor_parts(out, (56 * 56, 224 * 224))
    check_stock_auto_processor(out)
    config = json.loads((out / "config.json").read_text())
    assert config["clinkd_rope"]["scheme"] == "mcg"
    assert (
        "MCG-RoPE" in config["clinkd_position_ids"] and "clinkd.model.load" in config["clinkd_position_ids"]
    )
    assert config["architectures"] == [
        "McgQwen2VLForConditionalGeneration"
    ]  # architecture-dispatching tools refuse


BUDGET = (128 * 128, 256 * 256)


def test_a_fine_tuned_hub_checkpoint_stays_a_hub_checkpoint(tmp_path, synth_dir, hub_standin):
    from clinkd.train.config import load_run_configs
    from clinkd.train.run import run_sft

    hub = Path(hub_standin("Qwen2-VL-2B-Instruct"))
    (cfg,) = load_run_configs(
        None,
        [
            "--train.per_device_train_batch_size=1",
            "--data.max_train_samples=1",
            "--train.disable_tqdm=true",
            f"--data.dir={synth_dir}",
            f"--model.path={hub}",
            "--train.max_steps=1",
            "--model.dtype=bfloat16",
            # a small budget keeps the step cheap (the release default for hub folders: tests/infer/test_pixel_budget.py)
            f"--model.min_pixels={BUDGET[0]}",
            f"--model.max_pixels={BUDGET[1]}",
            "--train.save_steps=1000",
            f"--train.output_dir={tmp_path / 'ft'}",
        ],
    )
    out = run_sft(cfg)
    # saved in the dtype it trained in (the hub's bf16)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 -- safe_open is not iterable
        assert dtypes == {"BF16"}
    # the hub's processor files are kept; the budget it trained with is recorded
    for name in (
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "generation_config.json",
    ):
        assert (out / name).is_file(), name
    for name in ("vocab.json", "merges.txt"):
        assert (out / name).read_bytes() == (hub / name).read_bytes(), name
    gen = [json.loads((d / "generation_config.json").read_text()) for d in (out, hub)]
    assert [{k: v for k, v in g.items() if k != "transformers_version"} for g in gen] == [
        {k: v for k, v in gen[1].items() if k != "transformers_version"}
    ] * 2
    hub_template = json.loads((hub / "chat_template.json").read_text())["chat_template"]
    assert (out / "chat_template.jinja").read_text() == hub_template
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(hub).get_vocab()
    check_stock_processor_parts(out, BUDGET)
    assert pixel_budget(load(out)[1]) == BUDGET
    check_stock_model(out)
    check_stock_auto_processor(out)
    assert "clinkd_position_ids" in json.loads((out / "config.json").read_text())
