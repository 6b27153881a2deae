"""scripts/pretrain_tiny.py at a few steps: both checkpoints trained through `clinkd train`, scored, carded."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pretrain_tiny.py"


@pytest.fixture(scope="module")
def pretrain():
    spec = importlib.util.spec_from_file_location("pretrain_tiny", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_smoke_run_makes_both_checkpoints_with_cards(pretrain, tmp_path):
    out = tmp_path / "work"
    assert (
        pretrain.main(["--out", str(out), "--steps-scale", "0.002", "--no-ship", "--validation-limit", "2"])
        == 0
    )
    for name, shape in (("student-base", "tiny-student"), ("teacher", "tiny-teacher")):
        folder = out / "models" / name
        card = json.loads((folder / "card.json").read_text())
        assert card["shape"] == shape and card["steps"] == 3 if name == "teacher" else card["steps"] == 2
        assert card["validation_questions"] == 2 and set(card["validation"]) >= {
            "VG recall@0.5",
            "RO accuracy",
        }
        for k, (lo, hi) in card["validation_ci95"].items():
            assert lo <= card["validation"][k] <= hi
        assert "--steps-scale 0.002" in card["command"] and card["machine"]["threads"] >= 1
        state = json.loads((folder / "trainer_state.json").read_text())
        assert state["global_step"] == card["steps"]
    # the student base learned the generic shapes domain, the teacher synthetic Med-GRIT
    assert (out / "data" / "shapes" / "train.json").is_file() and not list(
        (out / "data" / "teacher").glob("test_*")
    )
    # shipping copies the model files and the card, nothing else (no optimizer state, no checkpoints)
    target = tmp_path / "shipped"
    pretrain.ship(
        out / "models" / "teacher", target, json.loads((out / "models" / "teacher" / "card.json").read_text())
    )
    assert sorted(f.name for f in target.iterdir()) == sorted(
        [f for f in pretrain.SHIPPED_FILES if (out / "models" / "teacher" / f).is_file()]
        + ["card.json", "README.md"]
    )
