"""Training in a model family's own box convention (data.box_convention): the collator, the resolution of
``auto``, and a tiny Qwen2.5-VL trained ``native`` end to end, its predictions scored like a Med-GRIT run's."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from clinkd.config import ConfigError
from clinkd.data.conventions import CONVENTIONS, BoxCodec, convention_named
from clinkd.train.config import load_run_configs
from clinkd.train.dataset import ConversationCollator, TrainItem
from clinkd.train.run import training_box_convention

VG = "<ref>right kidney</ref><box>(305,543),(422,688)</box>"


def _cfg(*overrides):
    (cfg,) = load_run_configs(None, ["--model.init=tiny-student", *overrides])
    return cfg


class _Config:
    def __init__(self, model_type, key=None, name_or_path=""):
        self.model_type, self._name_or_path = model_type, name_or_path
        if key is not None:
            self.clinkd_box_convention = key


def test_auto_native_and_medgrit_resolve_per_model():
    hub = _Config("qwen2_5_vl")  # no key: a hub checkpoint answers in its family's convention
    tiny = _Config("qwen2_5_vl", "medgrit")
    tuned = _Config("qwen2_vl", "qwen2_vl")
    assert training_box_convention(_cfg(), hub) is CONVENTIONS["qwen2_5_vl"]
    assert training_box_convention(_cfg(), tiny) is CONVENTIONS["medgrit"]
    assert training_box_convention(_cfg(), tuned) is CONVENTIONS["qwen2_vl"]
    assert training_box_convention(_cfg("--data.box_convention=native"), tiny) is CONVENTIONS["qwen2_5_vl"]
    assert training_box_convention(_cfg("--data.box_convention=medgrit"), hub) is CONVENTIONS["medgrit"]
    assert training_box_convention(_cfg("--data.box_style=qwen2"), hub).key == "medgrit:qwen2"
    with pytest.raises(ConfigError, match="box_style: applies to data.box_convention medgrit"):
        _cfg("--data.box_convention=native", "--data.box_style=qwen2")
    with pytest.raises(ConfigError):
        _cfg("--data.box_convention=pixels")


def test_collator_writes_each_item_in_the_models_convention(synth_dir, tiny_processor):
    """Items stay Med-GRIT; the collator writes questions and answers for each image's resized size, and
    the labels cover exactly the converted answer."""
    from clinkd.data.images import image_size
    from clinkd.model.processor import pixel_budget

    image = next((synth_dir / "images").glob("ct_*.png"))
    item = TrainItem(
        image=image,
        turns=[
            ("Where is the <ref>right kidney</ref>?", VG),
            ("What is in <box>(305,543),(422,688)</box>?", "right kidney"),
        ],
    )
    lo, hi = pixel_budget(tiny_processor)
    codec = BoxCodec(CONVENTIONS["qwen2_5_vl"], factor=28, min_pixels=lo, max_pixels=hi)
    w, h = codec.model_size(image_size(image))
    px = [round(305 * w / 1000), round(543 * h / 1000), round(422 * w / 1000), round(688 * h / 1000)]
    (text,) = ConversationCollator(tiny_processor, boxes=codec).texts([item], [image_size(image)])
    assert f'"bbox_2d": [{px[0]}, {px[1]}, {px[2]}, {px[3]}], "label": "right kidney"' in text
    assert (
        "Where is the right kidney?" in text
        and f'{{"bbox_2d": [{px[0]}, {px[1]}, {px[2]}, {px[3]}]}}' in text
    )
    assert "<box>" not in text and "<ref>" not in text and item.turns[0][1] == VG  # the item is untouched
    batch = ConversationCollator(tiny_processor, boxes=codec)([item])
    tok = tiny_processor.tokenizer
    labelled = tok.decode(batch["labels"][0][batch["labels"][0] >= 0])
    assert labelled.replace(" ", "") == (
        codec.to_model(VG, image_size(image)) + "<|im_end|>right kidney<|im_end|>"
    ).replace(" ", "")
    medgrit = ConversationCollator(tiny_processor, boxes=BoxCodec(CONVENTIONS["medgrit"]))
    assert VG in medgrit.texts([item], [image_size(image)])[0]
    style = ConversationCollator(tiny_processor, boxes=BoxCodec(convention_named("medgrit:qwen2")))
    assert "<|box_start|>(305,543),(422,688)<|box_end|>" in style.texts([item], [image_size(image)])[0]


def _vg_only_dataset(src, dst, n=2):
    """A dataset whose training records are the first ``n`` VG test questions, and the same test file."""
    dst.mkdir()
    (dst / "images").symlink_to(src / "images")
    test = json.loads((src / "test_VG.json").read_text())[:n]
    (dst / "test_VG.json").write_text(json.dumps(test))
    train = [
        {
            "id": r["id"],
            "conversations": [
                {"from": "user", "value": r["conversations"][0][0]},
                {"from": "assistant", "value": r["conversations"][0][1]},
            ],
        }
        for r in test
    ]
    (dst / "train.json").write_text(json.dumps(train))
    return dst


def test_a_tiny_qwen2_5_vl_trained_native_is_scored_like_a_medgrit_run(tmp_path, synth_dir, tiny_processor):
    """Trained on two VG records in Qwen2.5-VL's convention until it knows them, the model answers in JSON
    with pixels of the resized image; the prediction file holds the boxes converted back to Med-GRIT
    0-1000, which the evaluator scores exactly as it scores the same boxes written by a Med-GRIT run."""
    from clinkd.eval.evaluator import evaluate
    from clinkd.infer.predict import predict_file
    from clinkd.model import init_model_dir, load
    from clinkd.train.run import run_sft

    data = _vg_only_dataset(synth_dir, tmp_path / "data")
    base = init_model_dir(
        tmp_path / "base", "tiny-student", family="qwen2_5_vl", processor=tiny_processor, seed=0
    )
    (cfg,) = load_run_configs(
        None,
        [
            f"--data.dir={data}",
            f"--model.path={base}",
            "--data.box_convention=native",
            "--train.max_steps=120",
            "--train.per_device_train_batch_size=2",
            "--train.learning_rate=3e-3",
            "--train.warmup_steps=0",
            "--train.disable_tqdm=true",
            "--train.save_steps=100000",
            f"--train.output_dir={tmp_path / 'native'}",
        ],
    )
    out = run_sft(cfg)
    assert json.loads((out / "config.json").read_text())["clinkd_box_convention"] == "qwen2_5_vl"
    model, processor = load(out)
    pred = tmp_path / "pred_VG.jsonl"
    predict_file(model, data / "test_VG.json", pred, processor=processor, max_new_tokens=96, progress=False)
    records = [json.loads(line) for line in pred.read_text().splitlines()]
    assert all('"bbox_2d"' in r["raw_response"] for r in records), [r.get("raw_response") for r in records]
    # the same boxes as a Med-GRIT run writes them, converted here independently of clinkd's reader:
    # pixel / (grid side x 14) of the image the processor really made
    from PIL import Image

    medgrit = []
    for r in records:
        image = Image.open(data / "images" / r["image"]).convert("RGB")
        grid = processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
        w, h = grid[2] * 14, grid[1] * 14
        parts = []
        for m in re.finditer(
            r'\{"bbox_2d": \[(\d+), (\d+), (\d+), (\d+)\](?:, "label": "([^"]*)")?\}', r["raw_response"]
        ):
            x1, y1, x2, y2 = (int(v) for v in m.groups()[:4])
            box = "<box>({},{}),({},{})</box>".format(
                *(int(v * 1000 / s + 0.5) for v, s in zip((x1, y1, x2, y2), (w, h, w, h)))
            )
            parts.append((f"<ref>{m.group(5)}</ref>" if m.group(5) else "") + box)
        medgrit.append(dict(r, response="".join(parts)))
    from clinkd.data.boxes import parse_boxes

    assert [parse_boxes(m["response"]) for m in medgrit] == [parse_boxes(r["response"]) for r in records]
    native_report = evaluate({"VG": records}, bootstrap=0)
    medgrit_report = evaluate(
        {"VG": [{k: v for k, v in m.items() if k != "raw_response"} for m in medgrit]}, bootstrap=0
    )
    assert native_report.standard["VG"] == medgrit_report.standard["VG"]
    assert native_report.strict["VG"] == medgrit_report.strict["VG"]
    # it learnt the two boxes, and they are read back where they belong (each modality's recall is 1;
    # the headline averages over Med-GRIT's eight modalities, two of which are here)
    per_modality = native_report.standard["VG"]["per_modality"]
    assert [v["recall@0.5"] for v in per_modality.values() if v["n_samples"]] == [1.0, 1.0]
    shutil.rmtree(tmp_path / "native" / "init", ignore_errors=True)
