"""DeepSpeed ZeRO-2/ZeRO-3 on CPU (DeepSpeed's CPU accelerator, gloo) under ``torchrun --nproc_per_node 2``.

SFT under ZeRO-2 and ZeRO-3 ends where one process without DeepSpeed and the same global batch does;
distillation runs under ZeRO-3 with cached teacher logits and with the online teacher partitioned by
DeepSpeed, which ends where one process with the whole teacher does. Every run writes a final model that
``clinkd.model.load`` reads.

The first DeepSpeed run on a machine JIT-compiles DeepSpeed's shared-memory comm op with g++ (~2 min on
2 cores, cached in ~/.cache/torch_extensions afterwards); the runs themselves take 15-35 s each.
"""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(
        importlib.util.find_spec("deepspeed") is None,
        reason="deepspeed is not installed (pip install -e '.[deepspeed]')",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
ZERO = {2: ROOT / "configs" / "deepspeed" / "zero2.json", 3: ROOT / "configs" / "deepspeed" / "zero3.json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out, synth_dir, student_dir, *, nproc=2, per_device=2, zero=None, extra=(), config=None):
    args = [
        "-m",
        "clinkd.cli.main",
        "train",
        *([str(config)] if config else []),
        f"--data.dir={synth_dir}",
        f"--model.path={student_dir}",
        f"--train.output_dir={out}",
        "--train.max_steps=2",
        f"--train.per_device_train_batch_size={per_device}",
        "--train.save_steps=100",
        "--train.logging_steps=1",
        "--data.max_train_samples=8",
        "--train.disable_tqdm=true",
        *extra,
    ]
    if zero is not None:
        args.append(f"--train.deepspeed={ZERO[zero]}")
    if nproc > 1 or zero is not None:  # DeepSpeed needs a launcher even for one process
        args = [
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            f"--master_port={_free_port()}",
            *args,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # generous: a cold machine first compiles DeepSpeed's comm op
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    log = proc.stdout + proc.stderr
    errors = [line for line in log.splitlines() if "error" in line.lower()][:20]
    assert proc.returncode == 0, "\n".join(errors) + "\n...\n" + log[-3000:]
    return _weights(out), log


def _weights(out):
    final = out / "model.safetensors"
    return load_file(str(final)) if final.is_file() else None


def _assert_loadable_and_moved(out, weights, start_dir):
    from clinkd.model import load

    model, processor = load(out)
    assert processor is not None
    live = set(model.state_dict())
    assert len(live) == len(weights)  # every saved tensor maps onto the model (ZeRO-3 keeps stock names)
    start = load_file(str(start_dir / "model.safetensors"))
    assert set(weights) == set(start)
    assert any(not torch.equal(start[k], weights[k]) for k in weights)


def _assert_deepspeed_checkpoint(out, zero):
    """The run trained under DeepSpeed ZeRO with 2 ranks: its last checkpoint is DeepSpeed's, one optimizer
    shard per rank (and, under ZeRO-3, one parameter shard per rank)."""
    shards = out / "checkpoint-2" / "global_step2"
    for rank in (0, 1):
        assert (shards / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").is_file()
        if zero == 3:
            assert (shards / f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt").is_file()


def _assert_same(a, b):
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_zero2_and_zero3_sft_match_one_process(tmp_path, synth_dir, tiny_student_dir):
    one, _ = _train(tmp_path / "one", synth_dir, tiny_student_dir, nproc=1, per_device=4)
    for zero in (2, 3):
        out = tmp_path / f"zero{zero}"
        weights, _ = _train(out, synth_dir, tiny_student_dir, zero=zero)
        _assert_deepspeed_checkpoint(out, zero)
        _assert_loadable_and_moved(out, weights, tiny_student_dir)
        _assert_same(weights, one)


@pytest.mark.parametrize("zero", [2, 3])
def test_lora_under_zero_saves_a_merged_model(tmp_path, synth_dir, tiny_student_dir, zero):
    """The merge needs the whole weights (ZeRO-3 holds stubs) and the saved names must be the plain model's
    (DeepSpeed's engine wraps the peft model). Not compared with one process: the LoRA init draws from an
    unseeded generator state and LoRA dropout draws per process."""
    out = tmp_path / f"zero{zero}"
    weights, _ = _train(out, synth_dir, tiny_student_dir, zero=zero, extra=["--model.lora_r=4"])
    _assert_loadable_and_moved(out, weights, tiny_student_dir)


@pytest.fixture()
def distill_yaml(tmp_path, tiny_teacher_dir):
    path = tmp_path / "distill.yaml"
    path.write_text(
        f"stage: distill\ndistill:\n  teacher: {tiny_teacher_dir}\n  max_new_tokens: 16\n", encoding="utf-8"
    )
    return path


@pytest.mark.parametrize("mode", ["cached", "online"])
def test_zero3_distillation(tmp_path, synth_dir, tiny_student_dir, distill_yaml, mode):
    extra = [f"--distill.teacher_logits={mode}"]
    out = tmp_path / "zero3"
    weights, log = _train(out, synth_dir, tiny_student_dir, zero=3, extra=extra, config=distill_yaml)
    _assert_deepspeed_checkpoint(out, 3)
    _assert_loadable_and_moved(out, weights, tiny_student_dir)
    assert (out / "distill_stats.json").is_file()
    if mode == "online":
        # the teacher was partitioned by DeepSpeed, and its logits are a whole teacher's
        assert "teacher partitioned with DeepSpeed ZeRO-3 across 2 processes" in log
        one, _ = _train(
            tmp_path / "one",
            synth_dir,
            tiny_student_dir,
            nproc=1,
            per_device=4,
            extra=extra,
            config=distill_yaml,
        )
        _assert_same(weights, one)


def test_pipeline_moves_from_zero3_to_ddp(tmp_path, synth_dir, tiny_student_dir, tiny_teacher_dir):
    """A ZeRO-3 stage, then a DDP stage distilling online from its output: each stage gets its own set-up
    (accelerate otherwise keeps the first stage's DeepSpeed state), and the ZeRO-3 model loads as a teacher."""
    recipe = tmp_path / "pipeline.yaml"
    recipe.write_text(
        "stages:\n"
        f"  teacher: {{stage: sft, model: {{path: {tiny_teacher_dir}}}}}\n"
        f"  distill: {{stage: distill, model: {{path: {tiny_student_dir}}}, "
        "distill: {teacher: '@teacher', teacher_logits: online, max_new_tokens: 16}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    _, log = _train(
        out, synth_dir, tiny_student_dir, config=recipe, extra=[f"--teacher.train.deepspeed={ZERO[3]}"]
    )
    weights = _weights(out / "distill")
    _assert_deepspeed_checkpoint(out / "teacher", 3)
    assert (out / "distill" / "checkpoint-2").is_dir() and not (
        out / "distill" / "checkpoint-2" / "global_step2"
    ).exists()
    _assert_loadable_and_moved(out / "distill", weights, tiny_student_dir)
    assert "teacher partitioned" not in log  # DDP: every process holds the whole teacher


# -- the pieces, in this process ---------------------------------------------------------------------
def test_teacher_config_keeps_zero3_and_sizes_auto_buckets():
    from types import SimpleNamespace

    from clinkd.train.distributed import teacher_deepspeed_config

    train = {
        "train_batch_size": 4,
        "optimizer": {"type": "AdamW"},
        "scheduler": {"type": "WarmupLR"},
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": True,
            "reduce_bucket_size": "auto",
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "sub_group_size": "auto",
        },
    }
    cfg = teacher_deepspeed_config(train, SimpleNamespace(text_config=SimpleNamespace(hidden_size=128)))
    assert cfg == {
        "train_batch_size": 4,
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": True,
            "reduce_bucket_size": 128 * 128,
            "stage3_prefetch_bucket_size": 14745,
            "stage3_param_persistence_threshold": 1280,
        },
    }
    assert train["optimizer"] and train["zero_optimization"]["reduce_bucket_size"] == "auto"  # a copy


def test_outside_zero3_restores_the_active_config():
    from transformers.integrations.deepspeed import (
        HfDeepSpeedConfig,
        is_deepspeed_zero3_enabled,
        unset_hf_deepspeed_config,
    )

    from clinkd.train.distributed import outside_zero3

    active = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1})
    try:
        assert is_deepspeed_zero3_enabled()
        with outside_zero3():
            assert (
                not is_deepspeed_zero3_enabled()
            )  # from_pretrained builds whole models, generate does not sync
        assert is_deepspeed_zero3_enabled()
    finally:
        unset_hf_deepspeed_config()
    del active


@pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is not None, reason="with mpi4py DeepSpeed can find its peers"
)
def test_deepspeed_without_a_launcher_is_refused_before_work(monkeypatch):
    from clinkd.config import ConfigError
    from clinkd.train.config import load_run_configs

    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node N"):
        load_run_configs(None, [f"--train.deepspeed={ZERO[3]}"])
