"""Resuming a run: from sharded checkpoints after a SIGKILL, and past torn or optimizer-less checkpoints."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from clinkd.errors import ClinkdError
from clinkd.train.checkpoints import checkpoint_problem
from clinkd.train.config import load_run_configs
from clinkd.train.run import resume_checkpoint

FAST = [
    "--train.per_device_train_batch_size=2",
    "--train.logging_steps=1",
    "--train.learning_rate=5e-3",
    "--data.max_train_samples=8",
    "--train.disable_tqdm=true",
    "--model.dtype=float32",
    "--train.max_steps=4",
    "--train.save_steps=2",
    "--model.min_pixels=3136",
    "--model.max_pixels=12544",
]

# `clinkd train` with every save sharded (a hub-size model's layout: model.safetensors.index.json + shards;
# save_pretrained's own default, 50GB, would write this small stand-in whole), and, when asked, a step that
# hangs from global step CLINKD_TEST_HANG_AT on (after touching CLINKD_TEST_MARK), to be killed there.
RUNNER = r"""
import os, sys, time
from pathlib import Path
from transformers import PreTrainedModel
_save = PreTrainedModel.save_pretrained
def save_pretrained(self, *args, **kwargs):
    kwargs["max_shard_size"] = "4MB"
    return _save(self, *args, **kwargs)
PreTrainedModel.save_pretrained = save_pretrained
hang = os.environ.get("CLINKD_TEST_HANG_AT")
if hang:
    import clinkd.train.trainer as trainer_mod
    _step = trainer_mod.ClinKDTrainer.training_step
    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step >= int(hang):
            Path(os.environ["CLINKD_TEST_MARK"]).touch()
            time.sleep(600)
        return _step(self, model, inputs, num_items_in_batch)
    trainer_mod.ClinKDTrainer.training_step = training_step
from clinkd.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _train(args, env_extra=None, wait=True):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env_extra or {}),
    }
    cmd = [sys.executable, "-c", RUNNER, "train", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _weights(folder):
    """Every tensor of the folder's top-level safetensors files (whole or sharded)."""
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_sigkill_then_resume_from_sharded_checkpoints(tmp_path, synth_dir, hub_standin):
    base = FAST + [f"--data.dir={synth_dir}", f"--model.path={hub_standin('Qwen2-VL-2B-Instruct')}"]
    a, b = tmp_path / "a", tmp_path / "b"
    t0 = time.perf_counter()
    _train(base + [f"--train.output_dir={a}"])
    t_run = time.perf_counter() - t0
    assert (a / "model.safetensors.index.json").is_file()
    assert (a / "checkpoint-2" / "model.safetensors.index.json").is_file()

    mark = tmp_path / "hanging"
    proc = _train(
        base + [f"--train.output_dir={b}"],
        {"CLINKD_TEST_HANG_AT": "2", "CLINKD_TEST_MARK": str(mark)},
        wait=False,
    )
    try:
        deadline = time.monotonic() + 300
        while not mark.exists():  # step 3 began: checkpoint-2 is saved whole
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the run never reached step 3"
            time.sleep(0.1)
        assert (b / "checkpoint-2" / "trainer_state.json").is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert (b / "checkpoint-2" / "model.safetensors.index.json").is_file()
    assert not (b / "checkpoint-2" / "model.safetensors").exists()  # sharded, as a hub-size model saves
    assert not (b / "checkpoint-4").exists() and not (b / "config.json").exists()

    done = _train(base + [f"--train.output_dir={b}", "--resume"])
    assert "resuming from" in done.stdout + done.stderr and "checkpoint-2" in done.stdout + done.stderr
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6, msg=k)
    w0 = _weights(hub_standin("Qwen2-VL-2B-Instruct"))
    assert any(
        not torch.equal(w0[k].float(), wa[k].float()) for k in w0.keys() & wa.keys()
    )  # training moved them
    print(f"one uninterrupted run: {t_run:.1f}s")


# -- which checkpoint: torn and optimizer-less folders are skipped -----------------------------------
def _fake_checkpoint(folder, step, sharded=False):
    """A complete checkpoint folder as the Trainer lays it out (tiny tensors)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    if sharded:
        save_file({"a": torch.zeros(4)}, str(folder / "model-00001-of-00002.safetensors"))
        save_file({"b": torch.ones(8)}, str(folder / "model-00002-of-00002.safetensors"))
        (folder / "model.safetensors.index.json").write_text(
            json.dumps(
                {
                    "metadata": {},
                    "weight_map": {
                        "a": "model-00001-of-00002.safetensors",
                        "b": "model-00002-of-00002.safetensors",
                    },
                }
            )
        )
    else:
        save_file({"a": torch.zeros(4)}, str(folder / "model.safetensors"))
    torch.save({}, folder / "optimizer.pt")
    torch.save({}, folder / "scheduler.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return folder


def _cfg(out):
    (cfg,) = load_run_configs(None, [f"--train.output_dir={out}"])
    return cfg


def test_resume_skips_torn_checkpoints_and_says_why(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="clinkd")
    good = _fake_checkpoint(tmp_path / "checkpoint-2", 2, sharded=True)
    assert checkpoint_problem(good) is None
    (tmp_path / "checkpoint-4").mkdir()  # killed right after creating the folder
    assert resume_checkpoint(_cfg(tmp_path), resume=True) == str(good)
    assert "checkpoint-4" in caplog.text and "empty" in caplog.text
    assert resume_checkpoint(_cfg(tmp_path), resume=False) is None

    # half written: each way a kill can leave a newer folder, each skipped for its own reason
    torn = {
        "trainer_state.json is missing": lambda f: (f / "trainer_state.json").unlink(),
        "trainer_state.json is unreadable": lambda f: (f / "trainer_state.json").write_text('{"global_st'),
        "model-00002-of-00002.safetensors is missing": lambda f: (
            f / "model-00002-of-00002.safetensors"
        ).unlink(),
        "model-00001-of-00002.safetensors is cut short": lambda f: f.joinpath(
            "model-00001-of-00002.safetensors"
        ).write_bytes(f.joinpath("model-00001-of-00002.safetensors").read_bytes()[:-3]),
        "model.safetensors.index.json is unreadable": lambda f: (
            f / "model.safetensors.index.json"
        ).write_text("{"),
        "optimizer.pt is missing": lambda f: (f / "optimizer.pt").unlink(),
        "scheduler.pt is missing": lambda f: (f / "scheduler.pt").unlink(),
    }
    for reason, tear in torn.items():
        shutil.rmtree(tmp_path / "checkpoint-4")
        tear(_fake_checkpoint(tmp_path / "checkpoint-4", 4, sharded=True))
        assert reason in (checkpoint_problem(tmp_path / "checkpoint-4") or ""), reason
        caplog.clear()
        assert resume_checkpoint(_cfg(tmp_path), resume=True) == str(good), reason
        assert f"{tmp_path / 'checkpoint-4'}: {reason}" in caplog.text, reason
    shutil.rmtree(tmp_path / "checkpoint-4")
    _fake_checkpoint(tmp_path / "checkpoint-10", 10)  # whole model.safetensors: numerically newest wins
    assert resume_checkpoint(_cfg(tmp_path), resume=True) == str(tmp_path / "checkpoint-10")


def test_resume_never_continues_with_a_fresh_optimizer(tmp_path):
    (_fake_checkpoint(tmp_path / "checkpoint-2", 2) / "optimizer.pt").unlink()
    with pytest.raises(ClinkdError, match="checkpoint-2: optimizer.pt is missing.*without --resume"):
        resume_checkpoint(_cfg(tmp_path), resume=True)
    assert resume_checkpoint(_cfg(tmp_path / "nothing-yet"), resume=True) is None  # a first run: fresh start


def test_resume_past_a_torn_checkpoint_gives_the_same_weights(tmp_path, synth_dir, tiny_student_dir, caplog):
    """A real run: its last checkpoint torn (optimizer.pt gone, then emptied) → it resumes from the one before."""
    from clinkd.train.run import run_sft

    caplog.set_level(logging.WARNING, logger="clinkd")
    base = [a for a in FAST if "pixels" not in a] + [
        f"--data.dir={synth_dir}",
        f"--model.path={tiny_student_dir}",
        "--train.max_steps=6",
        "--train.save_steps=2",
        "--train.save_total_limit=3",
    ]
    (a,) = load_run_configs(None, base + [f"--train.output_dir={tmp_path / 'a'}"])
    run_sft(a)
    b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b)
    for f in list(b.iterdir()):  # as if killed while saving checkpoint-6: no final model either
        if f.is_file():
            f.unlink()
    shutil.rmtree(b / "checkpoint-6")
    (b / "checkpoint-6").mkdir()
    (b / "checkpoint-4" / "optimizer.pt").unlink()
    (cfg,) = load_run_configs(None, base + [f"--train.output_dir={b}"])
    assert resume_checkpoint(cfg, resume=True) == str(b / "checkpoint-2")
    run_sft(cfg, resume=True)
    assert (
        "checkpoint-6: it is empty" in caplog.text and "checkpoint-4: optimizer.pt is missing" in caplog.text
    )
    wa, wb = _weights(tmp_path / "a"), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6, msg=k)
