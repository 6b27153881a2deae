"""Two-process DDP on CPU (gloo, torchrun) ends where one process with the same global batch does."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.multiprocess


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out, synth_dir, student_dir, nproc, per_device, extra=()):
    args = [
        "-m",
        "clinkd.cli.main",
        "train",
        f"--data.dir={synth_dir}",
        f"--model.path={student_dir}",
        f"--train.output_dir={out}",
        "--train.max_steps=3",
        f"--train.per_device_train_batch_size={per_device}",
        "--train.save_steps=100",
        "--train.logging_steps=1",
        "--data.max_train_samples=8",
        "--train.disable_tqdm=true",
        *extra,
    ]
    if nproc > 1:
        args = [
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            f"--master_port={_free_port()}",
            *args,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_file(str(out / "model.safetensors")), proc.stdout + proc.stderr


def test_two_process_ddp_matches_one_process(tmp_path, synth_dir, tiny_student_dir):
    one, _ = _train(tmp_path / "one", synth_dir, tiny_student_dir, nproc=1, per_device=4)
    two, log = _train(tmp_path / "two", synth_dir, tiny_student_dir, nproc=2, per_device=2)
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log
    start = load_file(str(tiny_student_dir / "model.safetensors"))
    assert any(not torch.equal(start[k], one[k]) for k in one)
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=1e-5, msg=k)


def _distill(out, synth_dir, student_dir, teacher_dir, nproc):
    args = [
        "-m",
        "clinkd.cli.main",
        "train",
        "--stage=distill",
        f"--data.dir={synth_dir}",
        f"--model.path={student_dir}",
        f"--distill.teacher={teacher_dir}",
        f"--train.output_dir={out}",
        "--train.max_steps=1",
        "--train.per_device_train_batch_size=2",
        "--data.max_train_samples=6",
        "--distill.subset=0.5",
        "--distill.generation_batch_size=2",
        "--distill.max_new_tokens=8",
        "--distill.top_k=8",
        "--train.save_steps=100",
        "--train.disable_tqdm=true",
    ]
    if nproc > 1:
        args = [
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            f"--master_port={_free_port()}",
            *args,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_pseudo_labelling_is_shared_across_processes(tmp_path, synth_dir, tiny_student_dir, tiny_teacher_dir):
    import json

    _distill(tmp_path / "one", synth_dir, tiny_student_dir, tiny_teacher_dir, nproc=1)
    log = _distill(tmp_path / "two", synth_dir, tiny_student_dir, tiny_teacher_dir, nproc=2)
    one = json.loads((tmp_path / "one" / "pseudo_labels.json").read_text())
    two = json.loads((tmp_path / "two" / "pseudo_labels.json").read_text())
    n = one["stats"]["pseudo_labels"]
    assert n >= 6
    # each process labelled its share, and none waited on another to do the whole subset
    per = two["stats"].pop("labelled_per_process")
    assert len(per) == 2 and sum(per) == n and min(per) > 0
    assert one["stats"].pop("labelled_per_process") == [n]
    assert (
        f"process 0 of 2 labelled {per[0]} of {n}" in log
        and f"process 1 of 2 labelled {per[1]} of {n}" in log
    )
    # the gathered cache is the one-process cache, item for item and logit for logit
    assert two == one
    t1 = torch.load(tmp_path / "one" / "pseudo_labels.teacher.pt", weights_only=True)
    t2 = torch.load(tmp_path / "two" / "pseudo_labels.teacher.pt", weights_only=True)
    assert len(t1) == len(t2) == n
    for (v1, i1), (v2, i2) in zip(t1, t2):
        assert torch.equal(v1, v2) and torch.equal(i1, i2)
    assert not (tmp_path / "two" / "pseudo_shards").exists()


def test_two_process_ddp_with_workers_on_two_view_studies(tmp_path, tiny_student_dir):
    """Report studies (two images a sample, imported from the IU X-Ray stand-in) through DDP with data-loader
    workers end where one process does."""
    from clinkd.cli.main import main

    raw, data = tmp_path / "raw", tmp_path / "data"
    assert main(["data", "synth", "--format", "iu-xray", "--out", str(raw), "--images", "8"]) == 0
    assert main(["data", "import", "iu-xray", str(raw), "--out", str(data)]) == 0
    workers = ["--train.dataloader_num_workers=2", "--train.dataloader_prefetch_factor=1"]
    one, _ = _train(tmp_path / "one", data, tiny_student_dir, nproc=1, per_device=4, extra=workers)
    two, _ = _train(tmp_path / "two", data, tiny_student_dir, nproc=2, per_device=2, extra=workers)
    start = load_file(str(tiny_student_dir / "model.safetensors"))
    assert any(not torch.equal(start[k], one[k]) for k in one)
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=1e-5, msg=k)
