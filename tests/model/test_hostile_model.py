"""Hostile model folders and output folders (issue 13): a one-line error naming the file, exit status 2,
no traceback, and nothing the user made is changed.

Every damaged folder is made here from a tiny model built in-process: no binary is committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import clinkd.model.tiny as tiny
from clinkd.cli.main import main
from clinkd.model import ModelLoadError, init_model_dir, load


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, processor):
    return init_model_dir(
        tmp_path_factory.mktemp("hostile-model") / "student", "tiny-student", processor=processor
    )


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``: the inputs must come out byte for byte as they went in."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def cli(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def _weights(d: Path) -> dict:
    return load_file(str(d / "model.safetensors"))


# each mutation damages a copy of a whole model folder; the message must name the file given
def garbage(d):
    (d / "model.safetensors").write_bytes(b"not a safetensors file" * 64)
    return "model.safetensors"


def truncated(d):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    return "model.safetensors"


def empty(d):
    (d / "model.safetensors").write_bytes(b"")
    return "model.safetensors"


def bad_header(d):
    (d / "model.safetensors").write_bytes(struct.pack("<Q", 10) + b"{notjson}!")
    return "model.safetensors"


def wrong_shape(d):
    w = _weights(d)
    key = next(k for k in w if "embed_tokens" in k)
    w[key] = torch.zeros(3, 5)
    save_file(w, str(d / "model.safetensors"), metadata={"format": "pt"})
    return "model.safetensors"


def _shard(d):
    w = _weights(d)
    (d / "model.safetensors").unlink()
    keys = sorted(w)
    half = len(keys) // 2
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    save_file({k: w[k] for k in keys[:half]}, str(d / names[0]), metadata={"format": "pt"})
    save_file({k: w[k] for k in keys[half:]}, str(d / names[1]), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: names[i >= half] for i, k in enumerate(keys)}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return names


def missing_shard(d):
    (d / _shard(d)[1]).unlink()
    return "model.safetensors.index.json"


def truncated_shard(d):
    name = _shard(d)[0]
    data = (d / name).read_bytes()
    (d / name).write_bytes(data[:-100])
    return name


def shard_outside(d):
    _shard(d)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    index["weight_map"] = dict.fromkeys(index["weight_map"], "../../escape.safetensors")
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return "model.safetensors.index.json"


def bad_index(d):
    (d / "model.safetensors").unlink()
    (d / "model.safetensors.index.json").write_text("{nope")
    return "model.safetensors.index.json"


def weights_are_a_folder(d):
    (d / "model.safetensors").unlink()
    (d / "model.safetensors").mkdir()
    return "model.safetensors"


def config_not_an_object(d):
    (d / "config.json").write_text("[]")
    return "config.json"


def config_not_utf8(d):
    (d / "config.json").write_bytes(b'{"model_type": "qwen2_vl", "x": "\xff"}')
    return "config.json"


def config_wrong_type(d):
    config = json.loads((d / "config.json").read_text())
    config["text_config"]["hidden_size"] = "wide"
    (d / "config.json").write_text(json.dumps(config))
    return "config.json"


@pytest.mark.parametrize(
    "damage",
    [
        garbage,
        truncated,
        empty,
        bad_header,
        wrong_shape,
        missing_shard,
        truncated_shard,
        shard_outside,
        bad_index,
        weights_are_a_folder,
        config_not_an_object,
        config_not_utf8,
        config_wrong_type,
    ],
)
def test_damaged_model_folder_is_named(tmp_path, model_dir, capsys, damage):
    d = tmp_path / "model"
    shutil.copytree(model_dir, d)
    named = damage(d)
    before = digest(d)
    rc, out = cli(["model", "info", str(d)], capsys)
    assert rc == 2, out
    assert "Traceback" not in out
    error = [line for line in out.splitlines() if line.startswith("clinkd model: error:")]
    assert len(error) == 1 and named in error[0], out
    assert digest(d) == before


def test_pickle_weights_are_never_unpickled(tmp_path, model_dir, capsys):
    d = tmp_path / "model"
    shutil.copytree(model_dir, d)
    (d / "model.safetensors").unlink()
    sentinel = tmp_path / "unpickled"
    # a pickle that creates `sentinel` when loaded: builtins.open(sentinel, "w")
    payload = b"cbuiltins\nopen\n(" + f"S'{sentinel}'\nS'w'\n".encode() + b"tR."
    (d / "pytorch_model.bin").write_bytes(payload)
    before = digest(d)
    rc, out = cli(["model", "info", str(d)], capsys)
    assert rc == 2 and "Traceback" not in out
    assert "pytorch_model.bin" in out and "pickle" in out
    with pytest.raises(ModelLoadError, match="pytorch_model.bin"):
        load(d)
    assert not sentinel.exists()
    assert digest(d) == before


@pytest.mark.parametrize(
    "template,kind",
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "blocked by transformers' template sandbox"),
        ("{% for x in %}", "TemplateSyntaxError"),
        ("{{ raise_exception('refused') }}", "refused"),
    ],
)
def test_bad_chat_template_is_named_at_load(tmp_path, model_dir, template, kind):
    d = tmp_path / "model"
    shutil.copytree(model_dir, d)
    (d / "chat_template.jinja").write_text(template)
    with pytest.raises(ModelLoadError) as err:
        load(d)
    message = str(err.value)
    assert "chat_template.jinja" in message and kind in message and "\n" not in message


@pytest.fixture
def small_corpus(monkeypatch, corpus):
    monkeypatch.setattr(tiny, "default_corpus", lambda: list(corpus))


def test_init_refuses_a_folder_holding_a_model(tmp_path, model_dir, capsys, small_corpus):
    trained = tmp_path / "trained"
    shutil.copytree(model_dir, trained)
    before = digest(trained)
    rc, out = cli(["model", "init", "--size", "tiny-student", "--out", str(trained)], capsys)
    assert rc == 2 and "Traceback" not in out
    assert str(trained) in out and "not empty" in out and "--force" in out
    assert digest(trained) == before
    # --force writes into it, as asked
    rc, out = cli(
        ["model", "init", "--size", "tiny-student", "--out", str(trained), "--force", "--seed", "3"], capsys
    )
    assert rc == 0, out
    assert digest(trained)["model.safetensors"] != before["model.safetensors"]


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_init_refuses_a_file_for_out(tmp_path, capsys, where):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    out_path = f if where == "file" else f / "model"
    rc, out = cli(["model", "init", "--size", "tiny-student", "--out", str(out_path)], capsys)
    assert rc == 2 and "Traceback" not in out and str(f) in out
    assert f.read_text() == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_init_refuses_an_unwritable_place(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, out = cli(["model", "init", "--size", "tiny-student", "--out", str(locked / "m")], capsys)
    finally:
        locked.chmod(0o700)
    assert rc == 2 and "Traceback" not in out and "permission denied" in out
