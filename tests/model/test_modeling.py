"""The MCG model classes: stock equality, config round trips, stock checkpoints, cached decoding."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import Qwen2VLForConditionalGeneration

from clinkd.errors import ClinkdError
from clinkd.model import (
    McgQwen2VLForConditionalGeneration,
    ModelLoadError,
    RopeSettings,
    build_batch,
    build_tiny_model,
    build_tiny_processor,
    load,
    mcg_position_ids,
)


@pytest.fixture(scope="module")
def batch(processor, images):
    """Left-padded generation batch: one image, two images of other sizes, text only."""
    return build_batch(
        processor,
        [images[0], [images[1], images[2]], None],
        ["Where is the liver?", "Compare the two scans.", "What is CT?"],
    )


@pytest.fixture(scope="module")
def stock_model(processor):
    return build_tiny_model("tiny-student", processor.tokenizer, stock=True, seed=3)


@pytest.fixture(scope="module")
def mcg_model(processor, stock_model):
    model = build_tiny_model("tiny-student", processor.tokenizer, seed=3)
    model.load_state_dict(stock_model.state_dict())
    return model


def test_rope_settings_validation():
    assert RopeSettings.from_value("mrope").scheme == "stock"
    assert RopeSettings.from_value(None) == RopeSettings("mcg", 2, 2, 1, 1)
    with pytest.raises(ClinkdError):
        RopeSettings.from_value("rotary")
    with pytest.raises(ClinkdError):
        RopeSettings.from_value({"text_to_image_gap": 0})
    with pytest.raises(ClinkdError):
        RopeSettings.from_value({"gap": 2})


def test_stock_setting_equals_upstream_model(stock_model, mcg_model, batch):
    assert batch["image_grid_thw"].shape[0] == 3 and batch["attention_mask"][:, 0].eq(0).any()
    mcg_model.set_rope("stock")
    try:
        with torch.no_grad():
            expected, got = stock_model(**batch).logits, mcg_model(**batch).logits
        assert torch.equal(expected, got)
    finally:
        mcg_model.set_rope("mcg")


def test_mcg_forward_uses_mcg_positions(stock_model, mcg_model, batch):
    pos, _ = mcg_position_ids(
        batch["mm_token_type_ids"], batch["image_grid_thw"], batch["attention_mask"], spatial_merge_size=2
    )
    inner_pos, _ = mcg_model.model.get_rope_index(
        batch["input_ids"],
        batch["mm_token_type_ids"],
        batch["image_grid_thw"],
        attention_mask=batch["attention_mask"],
    )
    assert torch.equal(pos, inner_pos)
    with torch.no_grad():
        ours = mcg_model(**batch).logits
        upstream_with_our_ids = stock_model(**batch, position_ids=pos).logits
        upstream = stock_model(**batch).logits
    assert torch.allclose(ours, upstream_with_our_ids, atol=1e-5)
    assert not torch.allclose(ours, upstream, atol=1e-3)


def test_save_load_round_trip_keeps_scheme(tmp_path, processor, mcg_model):
    custom = {"scheme": "mcg", "text_to_image_gap": 3, "image_to_text_gap": 1, "stride_h": 2, "stride_w": 1}
    model = build_tiny_model("tiny-student", processor.tokenizer, rope=custom, seed=1)
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["clinkd_rope"] == custom
    back = McgQwen2VLForConditionalGeneration.from_pretrained(tmp_path / "m")
    assert back.rope_settings == RopeSettings(**custom)
    loaded, proc = load(tmp_path / "m")
    assert loaded.rope_settings == RopeSettings(**custom)
    assert type(loaded.model).__name__ == "McgQwen2VLModel"
    overridden, _ = load(tmp_path / "m", rope="stock", with_processor=False)
    assert overridden.rope_settings.scheme == "stock"
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert proc.tokenizer.get_vocab() == processor.tokenizer.get_vocab()


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_stock_checkpoint_loads_intact(tmp_path, corpus, images, family):
    """A checkpoint written by the upstream class loads with every tensor identical and no key lost."""
    from clinkd.model import MODEL_CLASSES

    proc = build_tiny_processor(
        corpus[:200],
        max_pixels=112 * 112 if family != "qwen3_vl" else 128 * 128,
        patch_size=16 if family == "qwen3_vl" else 14,
    )
    stock = build_tiny_model("tiny-student", proc.tokenizer, family=family, stock=True, seed=5)
    del stock.config.clinkd_rope  # a genuine stock config carries no clinkd key
    assert type(stock) is MODEL_CLASSES[family][1]
    stock.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    model, _ = load(tmp_path)
    assert type(model) is MODEL_CLASSES[family][0]
    assert model.rope_settings == RopeSettings()  # a stock checkpoint gets the release scheme
    expected, got = stock.state_dict(), model.state_dict()
    assert expected.keys() == got.keys()
    for key, tensor in expected.items():
        assert torch.equal(tensor, got[key]), key
    # and with rope="stock" it computes exactly what upstream computes
    model.set_rope("stock")
    b = build_batch(proc, [images[0], None], ["Where is the liver?", "What is CT?"])
    with torch.no_grad():
        assert torch.equal(stock(**b).logits, model(**b).logits)


def test_clinkd_checkpoint_loads_in_stock_class(tmp_path, mcg_model):
    mcg_model.save_pretrained(tmp_path)
    stock = Qwen2VLForConditionalGeneration.from_pretrained(tmp_path)
    expected, got = mcg_model.state_dict(), stock.state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_generate_with_and_without_cache_agree(mcg_model, batch, processor):
    kw = dict(
        max_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True, min_new_tokens=6
    )
    with torch.no_grad():
        cached = mcg_model.generate(**batch, use_cache=True, **kw)
        uncached = mcg_model.generate(**batch, use_cache=False, **kw)
    assert torch.equal(cached.sequences, uncached.sequences)
    for a, b in zip(cached.logits, uncached.logits):
        assert torch.allclose(a, b, atol=1e-4)
    # the last decode step equals one fresh forward over prompt + generated text, whose positions
    # are computed from scratch: the text positions continued correctly after the images
    seq = cached.sequences
    mask = torch.cat([batch["attention_mask"], torch.ones_like(seq[:, batch["input_ids"].shape[1] :])], dim=1)
    types = torch.cat(
        [batch["mm_token_type_ids"], torch.zeros_like(seq[:, batch["input_ids"].shape[1] :])], dim=1
    )
    full = {
        **batch,
        "input_ids": seq[:, :-1],
        "attention_mask": mask[:, :-1],
        "mm_token_type_ids": types[:, :-1],
    }
    with torch.no_grad():
        logits = mcg_model(**full).logits[:, -1]
    assert torch.allclose(logits, cached.logits[-1], atol=1e-4)


def test_manual_decode_with_rope_deltas(mcg_model, batch):
    """Forward with a cache and no position ids: the stored rope_deltas place the next token right."""
    nxt = torch.full((batch["input_ids"].shape[0], 1), 7)
    mask = torch.cat([batch["attention_mask"], torch.ones_like(nxt)], dim=1)
    with torch.no_grad():
        out = mcg_model(**batch, use_cache=True)
        step = mcg_model(
            input_ids=nxt,
            attention_mask=mask,
            past_key_values=out.past_key_values,
            mm_token_type_ids=torch.zeros_like(nxt),
            use_cache=True,
        ).logits[:, -1]
        whole = mcg_model(
            **{
                **batch,
                "input_ids": torch.cat([batch["input_ids"], nxt], 1),
                "attention_mask": mask,
                "mm_token_type_ids": torch.cat([batch["mm_token_type_ids"], torch.zeros_like(nxt)], 1),
            }
        )
    assert torch.allclose(step, whole.logits[:, -1], atol=1e-4)


def test_right_padded_training_forward_matches_per_sample(mcg_model, processor, images):
    """Right padding (as in training) does not change a sample's logits (positions skip padding).

    Labels only exercise the loss here; the training labels (answers only) are the collator's,
    tested in tests/train/test_dataset.py."""
    qs = ["Where is the liver? Answer with a box.", "What is CT?"]
    both = build_batch(processor, [[images[0], images[3]], None], qs, padding_side="right")
    alone = build_batch(processor, [[images[0], images[3]]], qs[:1], padding_side="right")
    assert (both["attention_mask"][:, 0] == 1).all() and both["attention_mask"][1, -1] == 0  # right padded
    n = alone["input_ids"].shape[1]
    labels = both["input_ids"].masked_fill(both["attention_mask"] == 0, -100)  # every real token
    with torch.no_grad():
        a = mcg_model(**both).logits[0, :n]
        b = mcg_model(**alone).logits[0]
        loss = mcg_model(**both, labels=labels).loss
    assert torch.allclose(a, b, atol=1e-4)
    assert torch.isfinite(loss)


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="local directory"):
        load("Qwen/Qwen2-VL-2B-Instruct")
    with pytest.raises(ModelLoadError, match="config.json"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelLoadError, match="qwen2_vl"):
        load(tmp_path)


def test_mcg_with_stock_gaps_equals_upstream_logits(stock_model, mcg_model, batch):
    mcg_model.set_rope({"scheme": "mcg", "text_to_image_gap": 1, "image_to_text_gap": 1})
    try:
        with torch.no_grad():
            assert torch.equal(stock_model(**batch).logits, mcg_model(**batch).logits)
    finally:
        mcg_model.set_rope("mcg")


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_video_positions_follow_upstream(processor, family):
    """Videos: Qwen2.5-VL spaces temporal ids by seconds, Qwen3-VL splits frames; gaps 1 equal upstream."""
    from clinkd.model import MODEL_CLASSES

    ours = build_tiny_model("tiny-student", processor.tokenizer, family=family).model
    stock_cls = MODEL_CLASSES[family][1]
    stock = stock_cls(ours.config).model
    if family == "qwen2_5_vl":  # text 2 | video t=3 of merged 1×2 | text 1 | image 2×2 | text 1
        types = [0, 0] + [2] * 6 + [0] + [1] * 4 + [0]
        extra = {"second_per_grid_ts": torch.tensor([0.5])}
    else:  # frames separated by timestamp text: text 2 | frame | text 3 | frame | text 1 | image | text 1
        types = [0, 0] + [2] * 2 + [0] * 3 + [2] * 2 + [0] + [1] * 4 + [0]
        extra = {}
    types = torch.tensor([types, [0] * (len(types) - 3) + [0, 0, 0]])
    mask = torch.ones_like(types)
    mask[1, :4] = 0  # a text-only, left-padded second sample
    ids = torch.zeros_like(types)
    frames = 3 if family == "qwen2_5_vl" else 2
    grids = dict(image_grid_thw=torch.tensor([[1, 4, 4]]), video_grid_thw=torch.tensor([[frames, 2, 4]]))
    ours.config.clinkd_rope = {"scheme": "mcg", "text_to_image_gap": 1, "image_to_text_gap": 1}
    got = ours.get_rope_index(ids, types, attention_mask=mask, **grids, **extra)
    expected = stock.get_rope_index(ids, types, attention_mask=mask, **grids, **extra)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    ours.config.clinkd_rope = {"scheme": "mcg"}
    released, _ = ours.get_rope_index(ids, types, attention_mask=mask, **grids, **extra)
    assert released[1, 0, 2] == 3  # the first video token sits two after the last text token (1)
    if family == "qwen2_5_vl":  # upstream's positional order: second_per_grid_ts fifth, attention_mask sixth
        positional = ours.get_rope_index(
            ids, types, grids["image_grid_thw"], grids["video_grid_thw"], extra["second_per_grid_ts"], mask
        )
        assert torch.equal(positional[0], released)
        ours.config.clinkd_rope = {"scheme": "stock"}
        stock_positional = ours.get_rope_index(
            ids, types, grids["image_grid_thw"], grids["video_grid_thw"], extra["second_per_grid_ts"], mask
        )
        assert torch.equal(stock_positional[0], expected[0])


def test_missing_weights_are_an_error(tmp_path, mcg_model, processor):
    from safetensors.torch import load_file, save_file

    mcg_model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = [k for k in weights if "layers.1." in k]
    assert dropped
    save_file(
        {k: v for k, v in weights.items() if k not in dropped},
        tmp_path / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(ModelLoadError, match="missing"):
        load(tmp_path)
