"""A pixel budget everywhere (issue 11, point 3): real checkpoints default to the ClinKD release's
512*512 .. 1024*1024, tiny models keep their own, explicit values win, and saved models record it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from clinkd.errors import ClinkdError
from clinkd.model import build_batch, load
from clinkd.model.processor import RELEASE_MAX_PIXELS, RELEASE_MIN_PIXELS, ClinkdProcessor, pixel_budget

BIG = (1500, 2000)  # height, width: 3 MP, within the hub's 12.8 MP


def big_image() -> Image.Image:
    return Image.fromarray(np.zeros((*BIG, 3), dtype=np.uint8))


def resized_area(processor, image) -> tuple[int, int]:
    """(resized pixels, image tokens) the processor gives ``image``."""
    batch = build_batch(processor, [image], ["Where is the liver?"])
    t, h, w = (int(x) for x in batch["image_grid_thw"][0])
    patch = processor.image_processor.patch_size
    tokens = int((batch["input_ids"] == processor.image_token_id).sum())
    assert tokens == t * h * w // 4
    return h * w * patch * patch, tokens


@pytest.mark.parametrize("name", ["Qwen2-VL-2B-Instruct", "Qwen2.5-VL-3B-Instruct"])
def test_a_hub_checkpoint_gets_the_release_budget(hub_standin, name):
    _model, processor = load(hub_standin(name), with_processor=True)
    assert pixel_budget(processor) == (RELEASE_MIN_PIXELS, RELEASE_MAX_PIXELS)
    area, tokens = resized_area(processor, big_image())
    assert area <= RELEASE_MAX_PIXELS and tokens <= RELEASE_MAX_PIXELS // 28**2  # not 107x143 patches
    assert area >= 0.8 * RELEASE_MAX_PIXELS  # scaled down to the budget, not below it
    small = Image.fromarray(np.zeros((84, 56, 3), dtype=np.uint8))
    assert resized_area(processor, small)[0] >= RELEASE_MIN_PIXELS  # small images are scaled up


def test_explicit_budget_wins_and_is_validated(hub_standin):
    folder = hub_standin("Qwen2-VL-2B-Instruct")
    _, processor = load(folder, min_pixels=56 * 56, max_pixels=256 * 256)
    assert pixel_budget(processor) == (56 * 56, 256 * 256)
    area, tokens = resized_area(processor, big_image())
    assert area <= 256 * 256 and tokens <= 256 * 256 // 28**2
    _, processor = load(folder, max_pixels=128 * 128)  # min follows below it
    assert pixel_budget(processor) == (128 * 128, 128 * 128)
    for bad in (
        dict(min_pixels=0),
        dict(max_pixels=-5),
        dict(min_pixels=10**6, max_pixels=10**5),
        dict(max_pixels=1.5e6),
    ):
        with pytest.raises(ClinkdError):
            load(folder, **bad)


def test_a_tiny_model_keeps_its_own_budget(tiny_student_dir):
    saved = json.loads((tiny_student_dir / "processor_config.json").read_text())["image_processor"]["size"]
    _, processor = load(tiny_student_dir)
    assert pixel_budget(processor) == (saved["shortest_edge"], saved["longest_edge"]) == (56 * 56, 112 * 112)
    assert resized_area(processor, big_image())[0] <= 112 * 112


def test_the_saved_processor_records_its_budget(hub_standin, tmp_path):
    _, processor = load(hub_standin("Qwen2-VL-7B-Instruct"), max_pixels=640 * 640)
    processor.save_pretrained(tmp_path)
    flat = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert (flat["min_pixels"], flat["max_pixels"]) == (RELEASE_MIN_PIXELS, 640 * 640)
    nested = json.loads((tmp_path / "processor_config.json").read_text())["image_processor"]["size"]
    assert nested == {"shortest_edge": RELEASE_MIN_PIXELS, "longest_edge": 640 * 640}
    again = ClinkdProcessor.from_pretrained(tmp_path)
    assert pixel_budget(again) == (RELEASE_MIN_PIXELS, 640 * 640)


def test_training_config_carries_the_budget(hub_standin, tmp_path):
    from clinkd.config import ConfigError
    from clinkd.train.config import load_run_configs
    from clinkd.train.run import load_model

    folder = hub_standin("Qwen2-VL-2B-Instruct")
    (cfg,) = load_run_configs(
        None,
        [
            f"--model.path={folder}",
            f"--train.output_dir={tmp_path}",
            "--model.min_pixels=3136",
            "--model.max_pixels=200704",
        ],
    )
    assert (cfg.model.min_pixels, cfg.model.max_pixels) == (3136, 200704)
    _, processor = load_model(cfg)
    assert pixel_budget(processor) == (3136, 200704)
    (cfg,) = load_run_configs(None, [f"--model.path={folder}", f"--train.output_dir={tmp_path}"])
    assert cfg.model.min_pixels is None and cfg.model.max_pixels is None
    assert pixel_budget(load_model(cfg)[1]) == (RELEASE_MIN_PIXELS, RELEASE_MAX_PIXELS)
    for bad in (
        ["--model.min_pixels=0"],
        ["--model.max_pixels=-1"],
        ["--model.min_pixels=1000", "--model.max_pixels=999"],
        ["--model.max_pixels=big"],
    ):
        with pytest.raises(ConfigError):
            load_run_configs(None, [f"--model.path={folder}", *bad])


def test_cli_options(tiny_student_dir, synth_dir, tmp_path):
    from clinkd.cli.main import build_parser, main

    parser = build_parser()
    for cmd in (
        ["infer", "--model", "m", "--data", "d", "--out", "o"],
        ["ask", "q", "--model", "m", "--image", "i"],
        ["serve", "--model", "m"],
    ):
        args = parser.parse_args(cmd + ["--min-pixels", "3136", "--max-pixels", "50176"])
        assert (args.min_pixels, args.max_pixels) == (3136, 50176)
        assert parser.parse_args(cmd).max_pixels is None
    out = tmp_path / "pred_VG.jsonl"
    assert (
        main(
            [
                "infer",
                "--model",
                str(tiny_student_dir),
                "--data",
                str(synth_dir / "test_VG.json"),
                "--out",
                str(out),
                "--limit",
                "1",
                "--max-new-tokens",
                "4",
                "--device",
                "cpu",
                "--max-pixels",
                str(56 * 56 * 2),
            ]
        )
        == 0
    )
    settings = json.loads((tmp_path / "pred_VG.settings.json").read_text())
    assert (settings["min_pixels"], settings["max_pixels"]) == (56 * 56, 56 * 56 * 2)
    assert (
        main(
            [
                "infer",
                "--model",
                str(tiny_student_dir),
                "--data",
                str(synth_dir / "test_VG.json"),
                "--out",
                str(tmp_path / "x.jsonl"),
                "--min-pixels",
                "9000",
                "--max-pixels",
                "3000",
            ]
        )
        != 0
    )


def test_serve_and_ask_load_with_the_budget(tiny_student_dir, tmp_path):
    from clinkd.cli.main import build_parser
    from clinkd.cli.serve import build_from_args
    from clinkd.infer.ask import ask_image

    args = build_parser().parse_args(
        ["serve", "--model", str(tiny_student_dir), "--max-pixels", str(56 * 56 * 3), "--device", "cpu"]
    )
    _, answerer = build_from_args(args)
    assert pixel_budget(answerer.processor) == (56 * 56, 56 * 56 * 3)
    model, processor = load(tiny_student_dir)
    img = tmp_path / "scan.png"
    big_image().resize((200, 150)).save(img)
    ask_image(
        model,
        img,
        "Where is the liver?",
        processor=processor,
        max_new_tokens=2,
        draw=False,
        max_pixels=56 * 56 * 2,
    )
    assert pixel_budget(processor) == (56 * 56, 56 * 56 * 2)
