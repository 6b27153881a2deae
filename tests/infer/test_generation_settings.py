"""Greedy is greedy: a checkpoint's generation_config (repetition penalty, sampling fields) stays out of
our decoding, and the settings used are written beside the predictions (issue 11, point 4)."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from transformers import GenerationConfig

from clinkd.infer.generate import clean_generated, generate_answers
from clinkd.model import build_batch, load

QUESTION = "Where is the liver?"


def _image(seed: int = 0, size=(84, 112)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8))


@torch.no_grad()
def argmax_decode(model, processor, image, question: str, max_new_tokens: int) -> str:
    """Reference greedy decoding: full forward each step, argmax of the last logits, no generate()."""
    tok = processor.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    batch = build_batch(processor, [image], [question])
    ids, mm = batch["input_ids"], batch["mm_token_type_ids"]
    new = []
    for _ in range(max_new_tokens):
        out = model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            mm_token_type_ids=mm,
            pixel_values=batch["pixel_values"],
            image_grid_thw=batch["image_grid_thw"],
            use_cache=False,
        )
        nxt = int(out.logits[0, -1].argmax())
        new.append(nxt)
        if nxt == end:
            break
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
        mm = torch.cat([mm, torch.zeros((1, 1), dtype=mm.dtype)], 1)
    return clean_generated(
        tok.decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False), tok.pad_token
    )


def _leaky_config(model) -> GenerationConfig:
    """What a checkpoint may ship: penalties and sampling fields that would change 'greedy' answers."""
    g = model.generation_config
    return GenerationConfig(
        eos_token_id=g.eos_token_id,
        pad_token_id=g.pad_token_id,
        bos_token_id=g.bos_token_id,
        repetition_penalty=5.0,
        no_repeat_ngram_size=1,
        do_sample=True,
        temperature=1e-6,
        top_k=1,
        top_p=0.001,
    )


def test_greedy_ignores_the_checkpoints_generation_config(tiny_student_dir):
    model, processor = load(tiny_student_dir)
    image = _image()
    reference = argmax_decode(model, processor, image, QUESTION, 16)
    model.generation_config = _leaky_config(model)
    leaky = model.generation_config
    (answers,) = generate_answers(model, processor, [image], [QUESTION], max_new_tokens=16)
    assert answers == [reference]
    assert model.generation_config is leaky  # restored after the call
    assert model.generation_config.repetition_penalty == 5.0


def test_greedy_on_the_qwen2_5_vl_standin_is_an_argmax_decode(hub_standin, tmp_path):
    folder = hub_standin("Qwen2.5-VL-3B-Instruct")
    model, processor = load(folder, min_pixels=56 * 56, max_pixels=112 * 112)  # few image tokens: fast
    assert model.generation_config.repetition_penalty == 1.05  # the hub's file is loaded
    model.generation_config.repetition_penalty = 3.0  # amplified: a random model's answers repeat a lot
    model.generation_config.no_repeat_ngram_size = 2
    image = _image(1)
    reference = argmax_decode(model, processor, image, QUESTION, 10)
    # the stand-in's argmax ends the turn at once; the leaked penalty (on <|im_end|>, which the prompt holds)
    # would push that down and give a 10-token answer instead
    (answers,) = generate_answers(model, processor, [image], [QUESTION], max_new_tokens=10)
    assert answers == [reference]


def test_sampling_uses_only_the_given_settings(tiny_student_dir):
    model, processor = load(tiny_student_dir)
    image = _image(2)
    torch.manual_seed(0)
    plain = generate_answers(
        model,
        processor,
        [image],
        [QUESTION],
        max_new_tokens=12,
        do_sample=True,
        num_return_sequences=2,
        temperature=0.9,
        top_p=0.95,
    )
    model.generation_config = _leaky_config(model)
    torch.manual_seed(0)
    leaky = generate_answers(
        model,
        processor,
        [image],
        [QUESTION],
        max_new_tokens=12,
        do_sample=True,
        num_return_sequences=2,
        temperature=0.9,
        top_p=0.95,
    )
    assert leaky == plain


def test_predictions_get_a_settings_side_file(synth_dir, tiny_student_dir, tmp_path):
    from clinkd.infer.predict import predict_file, settings_path

    out = tmp_path / "pred_VG.jsonl"
    predict_file(
        tiny_student_dir,
        synth_dir / "test_VG.json",
        out,
        limit=2,
        batch_size=2,
        progress=False,
        max_new_tokens=6,
    )
    side = settings_path(out)
    assert side == tmp_path / "pred_VG.settings.json"
    s = json.loads(side.read_text())
    g = s["greedy"]
    assert g["do_sample"] is False and g["repetition_penalty"] == 1.0 and g["no_repeat_ngram_size"] == 0
    assert g["num_beams"] == 1 and g["max_new_tokens"] == 6
    assert s["select"] == "greedy" and "sampled" not in s
    assert s["max_pixels"] == 112 * 112  # the tiny model's own budget


def test_generate_alone_would_leak(tiny_student_dir):
    """The premise: stock generate() fills unset fields from model.generation_config (an untrained model
    repeats itself, so the penalties change its greedy answer)."""
    model, processor = load(tiny_student_dir)
    image = _image()
    batch = build_batch(processor, [image], [QUESTION])
    end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    plain = model.generate(**batch, max_new_tokens=16, do_sample=False, eos_token_id=end)
    model.generation_config = _leaky_config(model)
    leaked = model.generate(**batch, max_new_tokens=16, do_sample=False, eos_token_id=end)
    assert not torch.equal(plain, leaked)
