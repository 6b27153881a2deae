"""``clinkd model init`` end to end: a complete directory that clinkd.model.load reads back."""

from __future__ import annotations

import sys
import types

import pytest
import torch

import clinkd.model.tiny as tiny
from clinkd.cli.main import main
from clinkd.model import build_batch, load


@pytest.fixture
def tiny_corpus(monkeypatch, corpus):
    monkeypatch.setattr(tiny, "default_corpus", lambda: list(corpus))


def test_model_init_and_load_back(tmp_path, tiny_corpus, images, capsys):
    out = tmp_path / "student"
    assert main(["model", "init", "--size", "tiny-student", "--out", str(out), "--seed", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "processor_config.json",
        "chat_template.jinja",
        "generation_config.json",
    } <= names
    model, processor = load(out)
    assert type(model).__name__ == "McgQwen2VLForConditionalGeneration"
    assert model.rope_settings.scheme == "mcg" and model.config.text_config.hidden_size == 128
    batch = build_batch(
        processor, [images[0].resize((224, 224)), None], ["Where is the liver?", "What is CT?"]
    )
    assert batch["image_grid_thw"].tolist() == [[1, 16, 16]]  # 224×224 → 8×8 = 64 tokens by default
    with torch.no_grad():
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert generated.shape[0] == 2
    # same seed, same weights; the stock scheme is recorded when asked for
    again = tmp_path / "again"
    assert (
        main(
            ["model", "init", "--size", "tiny-student", "--out", str(again), "--seed", "1", "--rope", "stock"]
        )
        == 0
    )
    model2, _ = load(again)
    assert model2.rope_settings.scheme == "stock"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    capsys.readouterr()
    assert main(["model", "info", str(again)]) == 0
    assert '"scheme": "stock"' in capsys.readouterr().out


def test_teacher_is_larger(tmp_path, tiny_corpus):
    assert main(["model", "init", "--size", "tiny-teacher", "--out", str(tmp_path)]) == 0
    model, processor = load(tmp_path)
    assert model.config.text_config.hidden_size == 256 and model.config.text_config.num_hidden_layers == 6
    assert model.config.text_config.vocab_size == len(processor.tokenizer)


def test_init_without_synth_corpus_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "clinkd.data.synth", types.ModuleType("clinkd.data.synth"))
    assert main(["model", "init", "--size", "tiny-student", "--out", str(tmp_path / "x")]) == 2
    assert "text_corpus" in capsys.readouterr().err


def test_teacher_and_student_share_one_tokenizer(tmp_path, corpus):
    from clinkd.model import build_tiny_processor, init_model_dir

    processor = build_tiny_processor(corpus)
    init_model_dir(tmp_path / "teacher", "tiny-teacher", processor=processor)
    init_model_dir(tmp_path / "student", "tiny-student", processor=processor, seed=1)
    teacher, tp = load(tmp_path / "teacher")
    student, sp = load(tmp_path / "student")
    assert tp.tokenizer.get_vocab() == sp.tokenizer.get_vocab()
    assert teacher.config.text_config.vocab_size == student.config.text_config.vocab_size == len(sp.tokenizer)
    assert sum(p.numel() for p in teacher.parameters()) > 3 * sum(p.numel() for p in student.parameters())
