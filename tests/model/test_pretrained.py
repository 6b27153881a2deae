"""The pretrained tiny checkpoints shipped in the package: complete, as their cards say, within budget."""

import hashlib
import json

import pytest
import safetensors.torch

from clinkd.cli.main import main
from clinkd.errors import ClinkdError
from clinkd.model import load
from clinkd.model.pretrained import (
    NAMES,
    PRETRAINED_DIR,
    RESERVED_DATA_SEEDS,
    SEEDS,
    pretrained_card,
    pretrained_path,
)

CARD_KEYS = {
    "name",
    "shape",
    "parameters",
    "command",
    "init_seed",
    "train_seed",
    "steps",
    "batch",
    "learning_rate",
    "data",
    "data_seed",
    "validation_seed",
    "validation_questions",
    "validation",
    "machine",
    "seconds",
    "sha256",
    "validation_ci95",
}


@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_checkpoint_loads_and_matches_its_card(name):
    path = pretrained_path(name)
    card = pretrained_card(name)
    assert set(card) >= CARD_KEYS and card["name"] == name
    weights = path / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["sha256"]
    assert sum(t.numel() for t in safetensors.torch.load_file(weights).values()) == card["parameters"]
    assert card["data_seed"] in RESERVED_DATA_SEEDS and card["validation_seed"] == SEEDS["validation"]
    assert set(card["validation"]) == {"VG recall@0.5", "RO accuracy", "GC CIDEr", "MII mBMR"}
    model, _processor = load(path)
    assert model.rope_settings.scheme == ("stock" if name == "student-base" else "mcg")
    assert sum(p.numel() for p in model.parameters()) <= card["parameters"]  # tied weights count once
    readme = (path / "README.md").read_text(encoding="utf-8")
    for fact in (card["command"], f"seed {card['init_seed']}", f"{card['steps']} steps", card["sha256"]):
        assert fact in readme


def test_the_shipped_checkpoints_share_one_tokenizer_and_fit_the_budget():
    a, b = (pretrained_path(n) / "tokenizer.json" for n in NAMES)
    assert a.read_bytes() == b.read_bytes()  # the teacher's logits line up with the student's vocabulary
    total = sum(f.stat().st_size for f in PRETRAINED_DIR.rglob("*") if f.is_file())
    assert total <= 50 * 2**20, f"{total / 2**20:.1f} MB shipped"
    teacher, student = (pretrained_card(n)["parameters"] for n in ("teacher", "student-base"))
    assert teacher > 2 * student


def test_model_init_offers_them_by_name(tmp_path, capsys):
    out = tmp_path / "teacher"
    assert main(["model", "init", "--size", "teacher", "--out", str(out)]) == 0
    assert "pretrained teacher" in capsys.readouterr().out
    shipped = pretrained_path("teacher")
    for f in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "card.json"):
        assert (out / f).read_bytes() == (shipped / f).read_bytes()
    assert main(["model", "init", "--size", "student-base", "--out", str(out)]) == 2  # not empty: refused
    assert (out / "model.safetensors").read_bytes() == (shipped / "model.safetensors").read_bytes()


def test_an_unknown_or_missing_checkpoint_says_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(ClinkdError, match="choose from student-base, teacher"):
        pretrained_path("giant")
    import clinkd.model.pretrained as pre

    monkeypatch.setattr(pre, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ClinkdError, match="pretrain_tiny.py"):
        pre.pretrained_path("teacher")


def test_the_demo_refuses_the_pretraining_data_seeds(tmp_path, capsys):
    assert (
        main(["demo", "--size", "tiny", "--seed", str(SEEDS["teacher_data"]), "--out", str(tmp_path / "d")])
        != 0
    )
    assert "pretraining or validation data" in capsys.readouterr().err
    assert json.dumps(SEEDS)  # the seeds are plain data, written into every card
