"""scripts/gpu_check.py at tiny dimensions on CPU: the GPU check must not rot where no GPU is at hand."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "scripts" / "gpu_check.py"


def test_gpu_check_runs_at_tiny_dims_on_cpu():
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--dims",
            "tiny",
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--image-side",
            "56",
            "--answer-tokens",
            "8",
            "--batch-size",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sft, distill = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sft["step"] == "sft" and distill["step"] == "distill" and distill["teacher"] == "tiny-teacher"
    assert (
        sft["tokens"] == distill["tokens"] == 48 + 2 + 4 + 8
    )  # prompt, vision markers, 2x2 image tokens, answer
    assert sft["tokens_per_s"] > 0 and distill["tokens_per_s"] > 0


def test_gpu_check_says_what_to_do_without_cuda():
    import torch

    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "Traceback" not in proc.stderr
