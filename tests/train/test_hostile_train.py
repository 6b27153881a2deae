"""Hostile input to ``clinkd train`` (issue 13): exit status 2, one error line naming the key, file or
record, no traceback, and the user's files unchanged. Every check fires before the first training step,
except the diverging run, which stops within three steps of the tiny model without saving NaN weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from clinkd.cli.main import main

FAST = [
    "--train.per_device_train_batch_size=2",
    "--data.max_train_samples=4",
    "--train.disable_tqdm=true",
    "--train.max_steps=2",
    "--train.save_steps=100",
    "--train.logging_steps=1",
]


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (a file: of itself)."""
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def train(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(["train", *argv])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def refused(rc: int, out: str, *named: str) -> str:
    """The one error line, after checking the exit status, that no traceback was shown, and the names."""
    assert rc == 2, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("clinkd train: error:")]
    assert len(errors) == 1, out
    for name in named:
        assert name in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def args(tmp_path, synth_dir, tiny_student_dir):
    """A fast tiny SFT run on the shared synthetic benchmark, writing under tmp_path."""
    return FAST + [
        f"--data.dir={synth_dir}",
        f"--model.path={tiny_student_dir}",
        f"--train.output_dir={tmp_path / 'out'}",
    ]


@pytest.fixture
def data_copy(tmp_path, synth_dir):
    copy = tmp_path / "data"
    shutil.copytree(synth_dir, copy)
    return copy


# -- configuration values ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override,key",
    [
        ("--train.learning_rate=.inf", "train.learning_rate"),
        ("--train.learning_rate=nan", "train.learning_rate"),
        ("--train.learning_rate=1e999", "train.learning_rate"),
        ("--train.learning_rate=-1e-4", "train.learning_rate"),
        ("--train.weight_decay=.nan", "train.weight_decay"),
        ("--train.warmup_steps=-.inf", "train.warmup_steps"),
        ("--distill.temperature=.nan", "distill.temperature"),
        ("--model.lora_dropout=1.5", "model.lora_dropout"),
    ],
)
def test_impossible_numbers_are_refused(tmp_path, args, capsys, override, key):
    refused(*train(args + [override], capsys), key)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_non_finite_number_in_a_recipe_file(tmp_path, args, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  learning_rate: .inf\n")
    before = digest(recipe)
    refused(*train([str(recipe), *args], capsys), "train.learning_rate", "finite")
    assert digest(recipe) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs on this machine's GPU")
@pytest.mark.parametrize("override", ["--train.fp16=true", "--train.bf16=true"])
def test_mixed_precision_without_a_gpu_is_refused(args, capsys, override):
    if override.endswith("bf16=true"):
        from transformers.utils import is_torch_bf16_gpu_available

        if is_torch_bf16_gpu_available():
            pytest.skip("bf16 runs on this machine's accelerator")
    key = override[2:].split("=")[0]
    message = refused(*train(args + [override], capsys), key)
    assert "GPU" in message and "use_cpu" in message


def test_no_and_off_keep_their_spelling(args, capsys):
    rc, out = train(args + ["--train.save_strategy=no", "--rct.enabled=off", "--print-config"], capsys)
    assert rc == 0, out
    (cfg,) = yaml.safe_load(out).values()
    assert cfg["train"]["save_strategy"] == "no" and cfg["rct"]["enabled"] is False


def test_unknown_lora_module_names_the_available_ones(args, capsys):
    message = refused(
        *train(args + ["--model.lora_r=4", "--model.lora_target_modules=[q_proj, nope]"], capsys),
        "model.lora_target_modules",
        "'nope'",
    )
    assert "v_proj" in message  # the names the model has


@pytest.mark.parametrize("kind", ["folder", "not_utf8", "deep", "aliases", "self_reference"])
def test_unreadable_recipe_file_is_named(tmp_path, args, capsys, kind):
    recipe = tmp_path / "recipe.yaml"
    if kind == "folder":
        recipe.mkdir()
    elif kind == "not_utf8":
        recipe.write_bytes("train:\n  run_name: caf\u00e9\n".encode("latin-1"))
    elif kind == "deep":
        recipe.write_text("train:\n  deepspeed: " + "[" * 5000 + "]" * 5000 + "\n")
    elif kind == "aliases":  # a "billion laughs": ten levels of ten aliases each
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
        recipe.write_text("\n".join(lines) + "\n")
    else:
        recipe.write_text("train: &t {deepspeed: *t}\n")
    before = digest(recipe)
    refused(*train([str(recipe), *args], capsys), str(recipe))
    assert digest(recipe) == before


# -- output folder -------------------------------------------------------------------------------------
def test_output_dir_under_a_file(tmp_path, args, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    refused(*train(args + [f"--train.output_dir={f / 'run'}"], capsys), "train.output_dir", str(f))
    assert f.read_text() == "mine"


def test_output_dir_is_the_starting_model(args, tiny_student_dir, capsys):
    before = digest(tiny_student_dir)
    refused(
        *train(args + [f"--train.output_dir={tiny_student_dir}"], capsys), "train.output_dir", "model.path"
    )
    assert digest(tiny_student_dir) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_output_dir_in_an_unwritable_place(tmp_path, args, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused(*train(args + [f"--train.output_dir={locked / 'run'}"], capsys), "permission denied")
    finally:
        locked.chmod(0o700)


# -- data -----------------------------------------------------------------------------------------------
def test_every_bad_image_is_reported_before_training(tmp_path, args, data_copy, capsys):
    records = json.loads((data_copy / "train.json").read_text())

    def image_of(i):  # the image a record's first question names (synthetic: <img>NAME</img>)
        return records[i]["conversations"][0]["value"].split("<img>")[1].split("</img>")[0]

    (data_copy / "images" / image_of(0)).write_bytes(b"")  # zero bytes
    (data_copy / "images" / image_of(1)).write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for i, prefix in ((2, "../../"), (3, str(tmp_path) + "/")):  # leaves the image folder; absolute
        q = records[i]["conversations"][0]
        q["value"] = q["value"].replace("<img>", f"<img>{prefix}")
    (data_copy / "train.json").write_text(json.dumps(records))
    before = digest(data_copy)
    message = refused(
        *train(args + [f"--data.dir={data_copy}", "--data.max_train_samples=null"], capsys),
        "4 training record(s)",
        "train.json [record 0]",
        "train.json [record 1]",
        "[record 2]",
        "[record 3]",
        image_of(0),
        image_of(1),
        "leaves the image folder",
    )
    assert "step" not in message
    assert digest(data_copy) == before
    assert not any((tmp_path / "out").glob("checkpoint-*"))


# -- model folders given to train -----------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["chat_template", "pickle"])
def test_hostile_model_folder_is_refused(tmp_path, args, tiny_student_dir, capsys, damage):
    d = tmp_path / "model"
    shutil.copytree(tiny_student_dir, d)
    if damage == "chat_template":
        (d / "chat_template.jinja").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
        named = "chat_template.jinja"
    else:
        (d / "model.safetensors").unlink()
        (d / "pytorch_model.bin").write_bytes(b"cos\nsystem\n(S'echo unpickled'\ntR.")
        named = "pytorch_model.bin"
    before = digest(d)
    refused(*train(args + [f"--model.path={d}"], capsys), named)
    assert digest(d) == before


# -- divergence -----------------------------------------------------------------------------------------
def test_diverging_run_stops_and_saves_no_nan_weights(tmp_path, args, capsys):
    out = tmp_path / "out"
    message = refused(
        *train(
            args
            + [
                "--train.learning_rate=1e30",
                "--train.warmup_steps=0",
                "--train.max_steps=3",
                "--train.lr_scheduler_type=constant",
                "--train.save_steps=1",
            ],
            capsys,
        ),
        "step",
        "train.learning_rate",
    )
    assert "loss is nan" in message or "not finite" in message or "no longer finite" in message
    assert not (out / "model.safetensors").exists()
    for checkpoint in out.glob("checkpoint-*"):  # saved before the run diverged: finite
        from safetensors.torch import load_file

        assert all(torch.isfinite(t).all() for t in load_file(str(checkpoint / "model.safetensors")).values())


def test_non_finite_weights_are_never_saved(tmp_path, args, capsys, monkeypatch):
    import clinkd.train.run as run_mod

    class Overflowing(run_mod.ClinKDTrainer):  # the last update overflows a weight; the loss never saw it
        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            with torch.no_grad():
                next(p for p in model.parameters() if p.requires_grad).view(-1)[0] = float("inf")
            return loss

    monkeypatch.setattr(run_mod, "ClinKDTrainer", Overflowing)
    out = tmp_path / "out"
    refused(*train(args + ["--train.max_steps=1"], capsys), "no longer finite", "not saved")
    assert not (out / "model.safetensors").exists() and not any(out.glob("checkpoint-*"))
