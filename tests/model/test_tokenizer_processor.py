"""The locally trained tokenizer and the image-only processor: digits, round trips, batches, labels."""

from __future__ import annotations

import pytest
import torch

from clinkd.model import (
    BOX_TOKENS,
    QWEN_SPECIAL_TOKENS,
    ClinkdProcessor,
    build_batch,
    build_tokenizer,
)

BOX = "<box>(123,456),(789,901)</box>"


def test_box_coordinates_tokenise_digit_by_digit(processor):
    tok = processor.tokenizer
    text = f"The <ref>liver</ref>{BOX} is enlarged."
    ids = tok(text)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    for tag in BOX_TOKENS:
        assert tag in pieces
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digits == list("123456789901")  # every digit its own token, in order
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=True) == text  # markup is not special: kept
    assert 300 < len(tok) <= 4096


def test_special_tokens(processor):
    tok = processor.tokenizer
    for i, name in enumerate(QWEN_SPECIAL_TOKENS):
        assert tok.convert_tokens_to_ids(name) == i
        assert tok(name)["input_ids"] == [i]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    chat = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>"
    assert tok.decode(tok(chat)["input_ids"]) == chat
    assert tok.decode(tok(chat)["input_ids"], skip_special_tokens=True) == "user\nhi"


def test_tokenizer_is_deterministic(corpus):
    a, b = build_tokenizer(corpus), build_tokenizer(list(corpus))
    assert a.get_vocab() == b.get_vocab()
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_processor_round_trip(tmp_path, processor, images):
    processor.save_pretrained(tmp_path)
    back = ClinkdProcessor.from_pretrained(tmp_path)
    assert back.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert back.chat_template == processor.chat_template
    size = {"shortest_edge": 28 * 28, "longest_edge": 112 * 112}
    assert back.image_processor.size == processor.image_processor.size == size
    a = build_batch(processor, [images[0], images[1]], ["q one", "q two"])
    b = build_batch(back, [images[0], images[1]], ["q one", "q two"])
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_batch_contents_and_image_tokens(processor, images):
    batch = build_batch(processor, [images[0], [images[1], images[3]], None], ["a", "b", "c"])
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "mm_token_type_ids",
        "pixel_values",
        "image_grid_thw",
    }
    grid = batch["image_grid_thw"]
    assert grid.tolist()[0] == [1, 8, 8]  # 112×112 at 14 px patches, merged 2×2 → 16 tokens
    per_image = (grid.prod(-1) // 4).tolist()
    assert batch["mm_token_type_ids"].sum(1).tolist() == [per_image[0], per_image[1] + per_image[2], 0]
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert torch.equal(batch["input_ids"] == image_id, batch["mm_token_type_ids"] == 1)
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding for generation
    text = processor.tokenizer.decode(batch["input_ids"][2], skip_special_tokens=False)
    assert text.endswith("<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n")
    assert "You are a helpful assistant." in text


def test_tokenizer_on_the_synthetic_med_grit_corpus():
    """The real training text of the tiny tokenizer (clinkd.data.synth), when that module is there."""
    synth = pytest.importorskip("clinkd.data.synth")
    if not hasattr(synth, "text_corpus"):
        pytest.skip("clinkd.data.synth.text_corpus not available")
    corpus = synth.text_corpus(seed=0, n_images=40)
    tok = build_tokenizer(corpus)
    boxed = [t for t in corpus if "<box>" in t][:50]
    assert boxed
    for text in boxed:
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == text
        assert all(len(p) == 1 for p in tok.convert_ids_to_tokens(ids) if any(c.isdigit() for c in p))
