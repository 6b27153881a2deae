"""configs/qwen2vl-7b-medgrit.yaml itself, under torchrun, on hub-layout stand-ins.

The release recipe — pseudo-label distillation from a bigger teacher, then SFT with reflective
correction; DeepSpeed ZeRO-3, 4 data-loader workers, gradient checkpointing — with only paths, sizes,
steps and precision overridden: a Qwen2-VL-2B-Instruct stand-in (151,936 embedding rows, tied head) as the
student, a Qwen2-VL-7B-Instruct stand-in (152,064 rows, untied) as the teacher, both with the real Qwen2
vocabulary and sharded weights. Two processes must end where one process with the same global batch does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# slow: two launches of the whole recipe (about 3 minutes on 2 cores); its parts run in the default suite
# (tests/train/test_ddp.py, test_deepspeed.py, test_plain_checkpoint.py): `pytest -m slow` runs it
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
pytest.importorskip("deepspeed", reason="the recipe runs DeepSpeed ZeRO-3: pip install -e '.[test]'")

RECIPE = Path(__file__).parents[2] / "configs" / "qwen2vl-7b-medgrit.yaml"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe(out, nproc, accumulation, data, student, teacher):
    args = [
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        f"--master_port={_free_port()}",
        "-m",
        "clinkd.cli.main",
        "train",
        str(RECIPE),
        # paths
        f"--data.dir={data}",
        f"--train.output_dir={out}",
        f"--distill.model.path={student}",
        f"--distill.distill.teacher={teacher}",
        # precision: fp32 on CPU (bf16 runs too, about 4x slower)
        "--train.bf16=false",
        "--distill.model.dtype=float32",
        "--student.model.dtype=float32",
        # sizes and steps; the global batch is 4 in both runs; the 256-px synthetic images stay at their size
        # (the release pixel budget, 512²–1024², would upscale them to 4x the image tokens)
        "--model.min_pixels=3136",
        "--model.max_pixels=65536",
        "--train.max_steps=2",
        "--train.per_device_train_batch_size=1",
        f"--train.gradient_accumulation_steps={accumulation}",
        "--data.max_train_samples=8",
        "--distill.distill.max_new_tokens=8",
        "--distill.distill.generation_batch_size=2",
        "--distill.distill.subset=0.5",
        "--student.rct.sample_size=4",
        "--student.rct.max_new_tokens=8",
        "--student.rct.generation_batch_size=4",
        "--train.logging_steps=1",
        "--train.disable_tqdm=true",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def _state(path):
    from clinkd.model import load

    return load(path, dtype=torch.float32)[0].state_dict()


def test_release_recipe_under_torchrun_ends_where_one_process_does(tmp_path, synth_dir, hub_standin):
    import yaml

    student, teacher = hub_standin("Qwen2-VL-2B-Instruct"), hub_standin("Qwen2-VL-7B-Instruct")
    one = tmp_path / "one"
    two = tmp_path / "two"
    _recipe(one, 1, 4, synth_dir, student, teacher)
    log = _recipe(two, 2, 2, synth_dir, student, teacher)

    # the recipe's own settings were in force (nothing but paths, sizes, steps, precision overridden)
    run = yaml.safe_load((two / "student" / "clinkd_run.yaml").read_text())
    assert run["train"]["deepspeed"].endswith("zero3.json") and run["train"]["dataloader_num_workers"] == 4
    assert run["train"]["gradient_checkpointing"] is True and run["rct"]["enabled"] is True
    assert "teacher (152064 logits) and student (151936 logits)" in log
    assert "process 1 of 2 labelled" in log

    # pseudo-labels: shared between the processes, equal to the one-process run's
    p1 = json.loads((one / "distill" / "pseudo_labels.json").read_text())
    p2 = json.loads((two / "distill" / "pseudo_labels.json").read_text())
    assert p1["items"] == p2["items"] and p2["stats"]["labelled_per_process"] == [8, 8]
    t1 = torch.load(one / "distill" / "pseudo_labels.teacher.pt", weights_only=True)
    t2 = torch.load(two / "distill" / "pseudo_labels.teacher.pt", weights_only=True)
    assert all(torch.equal(a[1], b[1]) and int(a[1].max()) < 151936 for a, b in zip(t1, t2))

    # reflective correction ran the same round in both
    r1 = [json.loads(x) for x in (one / "student" / "rct" / "log.jsonl").read_text().splitlines()]
    r2 = [json.loads(x) for x in (two / "student" / "rct" / "log.jsonl").read_text().splitlines()]
    drop = ("from_position",)  # depends on the number of data-loader workers in flight, hence on processes
    assert [{k: v for k, v in e.items() if k not in drop} for e in r1] == [
        {k: v for k, v in e.items() if k not in drop} for e in r2
    ]

    # both stages' final models: loadable, trained, and the same weights
    start = _state(student)
    for stage in ("distill", "student"):
        a, b = _state(one / stage), _state(two / stage)
        assert a.keys() == b.keys() == start.keys()
        assert any(not torch.equal(a[k], start[k]) for k in a), stage
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=f"{stage}: {k}")
