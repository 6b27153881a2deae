"""Pretrain the two tiny checkpoints clinkd ships (``src/clinkd/model/pretrained/``), reproducibly.

    python scripts/pretrain_tiny.py --out build/pretrain                 # both, the shipped budget
    python scripts/pretrain_tiny.py --out build/pretrain --only teacher  # one of them
    python scripts/pretrain_tiny.py --out build/pretrain --steps-scale 0.01 --no-ship   # a smoke run

What ``clinkd demo`` fine-tunes, built the way ClinKD is used (a pretrained instruct model, distilled from
a model that knows more than it):

- **student-base** (``tiny-student`` shape, stock M-RoPE, like a Qwen2-VL-Instruct checkpoint): pretrained
  on a *generic* domain, ``clinkd data synth --domain shapes`` (coloured shapes with boxes, descriptions,
  referring and counting questions, worded unlike the benchmark): it can write boxes and describe an image,
  but has never seen a medical image or the benchmark's four task forms.
- **teacher** (``tiny-teacher`` shape, 4x the student's parameters, MCG-RoPE): trained far longer on far more
  synthetic Med-GRIT data than the demo's training split, drawn with seeds the demo never uses.

Both share one tokenizer (trained on the synthetic Med-GRIT text, :func:`clinkd.model.tiny.default_corpus`),
so the teacher's logits line up with the student's vocabulary. Each is scored (greedy, the standard
Med-GRIT reading) on a validation set drawn with yet another seed — never the demo's test split — and
written with a model card (``README.md``) and ``card.json``: the command, seeds, steps, data, scores,
machine and the weights' SHA-256. Data seeds: see :data:`SEEDS`; the demo refuses to use them.

Training runs through ``clinkd train`` itself (:func:`clinkd.train.run.run_stage`), so the shipped weights
come from the code users run. Same machine, same command: the same bits (``clinkd.runtime`` pins the CPU
thread pools). Another CPU (other SIMD kernels, another thread count) gives other bits; there the
validation scores reproduce within their intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from clinkd.runtime import pin_cpu_threads

pin_cpu_threads()  # before torch is imported: the same bits under any load

from clinkd.model.pretrained import PRETRAINED_DIR, SEEDS  # noqa: E402
from clinkd.paths import file_sha256  # noqa: E402

#: the shipped budget: (steps, batch, learning rate, images) per checkpoint
BUDGET = {
    "student-base": {"steps": 800, "batch": 8, "learning_rate": 2e-3, "images": 2000},
    "teacher": {"steps": 1600, "batch": 8, "learning_rate": 2e-3, "images": 4000},
}
VALIDATION_IMAGES = 160  # 20 per modality: each task's validation file holds 160 questions


def _machine() -> dict:
    import torch

    return {
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def make_data(out: Path, scale: float, names: list[str]) -> dict[str, Path]:
    """The pretraining corpora of ``names`` and the validation set (each made once, reused when present)."""
    from clinkd.data.synth import generate

    folders = {
        "shapes": out / "data" / "shapes",
        "teacher": out / "data" / "teacher",
        "validation": out / "data" / "validation",
    }
    if "student-base" in names and not (folders["shapes"] / "train.json").is_file():
        from clinkd.data.synth import generate_shapes

        generate_shapes(
            folders["shapes"],
            seed=SEEDS["shapes"],
            n_images=max(8, int(BUDGET["student-base"]["images"] * scale)),
            progress=True,
        )
    if "teacher" in names and not (folders["teacher"] / "train.json").is_file():
        generate(
            folders["teacher"],
            seed=SEEDS["teacher_data"],
            n_images=max(16, int(BUDGET["teacher"]["images"] * scale)),
            test_fraction=0.0,
            progress=True,
        )
        for empty in folders["teacher"].glob("test_*.json"):  # all images train: the test files hold nothing
            empty.unlink()
    if not (folders["validation"] / "test_VG.json").is_file():
        generate(
            folders["validation"],
            seed=SEEDS["validation"],
            n_images=max(16, int(VALIDATION_IMAGES * min(1.0, scale * 10))),
            test_fraction=1.0,
            progress=True,
        )
    return folders


def train(name: str, out: Path, data: Path, processor, scale: float) -> tuple[Path, float]:
    """Initialise ``name`` from its seed and train it with ``clinkd train``; return its folder and seconds."""
    from clinkd.model import init_model_dir
    from clinkd.pipelines.stages import stage_config
    from clinkd.train.config import DataConfig, ModelConfig
    from clinkd.train.run import run_stage

    size, rope = ("tiny-student", "stock") if name == "student-base" else ("tiny-teacher", "mcg")
    init = out / "init" / name
    if not (init / "config.json").is_file():
        init_model_dir(init, size, rope=rope, seed=SEEDS[f"{name}_init"], processor=processor)
    b = BUDGET[name]
    steps = max(2, int(b["steps"] * scale))
    target = out / "models" / name
    cfg = stage_config(
        name,
        target,
        data=DataConfig(dir=str(data), synth_if_missing=False),
        model=ModelConfig(path=str(init), rope=rope),
        train={
            "max_steps": steps,
            "per_device_train_batch_size": b["batch"],
            "learning_rate": b["learning_rate"],
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.05,
            "weight_decay": 0.0,
            "seed": SEEDS["train"],
            "save_steps": max(1, steps // 4),
            "save_total_limit": 1,
            "logging_steps": 20,
        },
    )
    t0 = time.perf_counter()
    run_stage(cfg, resume=(target / "clinkd_run.yaml").is_file() or any(target.glob("checkpoint-*")))
    return target, time.perf_counter() - t0


HEADLINE = {
    "VG recall@0.5": ("VG", "recall@0.5"),
    "RO accuracy": ("RO", "accuracy"),
    "GC CIDEr": ("GC", "CIDEr"),
    "MII mBMR": ("MII", "mBMR"),
}


def answer(model_dir: Path, validation: Path, out: Path, limit: int | None) -> dict[str, list]:
    """Greedy answers of ``model_dir`` to the validation questions (``out/pred_<TASK>.jsonl``)."""
    from clinkd.eval.predictions import read_predictions
    from clinkd.infer.predict import predict_dataset

    done = predict_dataset(model_dir, validation, out, batch_size=32, limit=limit, seed=0)
    return {task: read_predictions(out / f"pred_{task}.jsonl") for task in done}


def score(preds_by_model: dict[str, dict[str, list[dict]]]) -> dict[str, dict]:
    """The standard Med-GRIT reading of each model's validation answers, with 95% bootstrap intervals
    (all models in one caption run)."""
    from clinkd.eval.paired import headline_intervals

    stats = headline_intervals(preds_by_model, seed=0)
    out = {}
    for name, rows in stats["rows"].items():
        entries = {label: rows.get(t, {}).get(k) for label, (t, k) in HEADLINE.items()}
        out[name] = {
            "validation": {lb: round(e["value"], 4) for lb, e in entries.items() if e},
            "validation_ci95": {lb: [round(v, 4) for v in e["ci95"]] for lb, e in entries.items() if e},
        }
    return out


def card(name: str, record: dict) -> str:
    """The model card (``README.md``) of a shipped checkpoint."""
    what = {
        "student-base": "The demo's stand-in for a pretrained instruct model (Qwen2-VL-Instruct): trained on the "
        "generic shapes domain (grounding, referring, description, counting), never on a "
        "medical image or the benchmark's task forms; stock M-RoPE.",
        "teacher": "The demo's stand-in for a stronger model: the tiny-teacher shape (about 4x the student's "
        "parameters) trained far longer, on far more synthetic Med-GRIT data than the demo's "
        "training split, from seeds the demo never uses; MCG-RoPE.",
    }[name]
    scores = record["validation"]
    lines = [
        "---",
        "license: apache-2.0",
        "library_name: transformers",
        "pipeline_tag: image-text-to-text",
        "tags: [clinkd, qwen2_vl, tiny, synthetic]",
        "---",
        "",
        f"# clinkd {name} (tiny, {record['parameters'] / 1e6:.2f} M parameters)",
        "",
        what,
        "",
        "## How it was made",
        "",
        f"- Command: `{record['command']}`",
        f"- Initialised from `clinkd model init --size {record['shape']}` with seed {record['init_seed']}; trained "
        f"with `clinkd train` for {record['steps']} steps at batch {record['batch']}, learning rate "
        f"{record['learning_rate']} (cosine, 5% warm-up), training seed {record['train_seed']}.",
        f"- Data: {record['data']}",
        f"- Machine: {record['machine']['cpus']} CPUs ({record['machine']['machine']}, "
        f"{record['machine']['cpu_capability']}), {record['machine']['threads']} threads, torch "
        f"{record['machine']['torch']}; {record['seconds'] / 60:.1f} minutes of training (wall time"
        + (f"; {record['machine_note']})." if record.get("machine_note") else ")."),
        f"- Weights: `model.safetensors` (float32, SHA-256 `{record['sha256']}`).",
        "",
        "## Validation (greedy, standard Med-GRIT reading)",
        "",
        f"On the synthetic Med-GRIT validation set (seed {SEEDS['validation']}, {record['validation_questions']} "
        "questions per task; never the demo's test split):",
        "",
        "| metric | value | 95% interval |",
        "|---|---:|---|",
        *[
            f"| {k} | {v:.3f} | "
            + (
                "[{:.3f}, {:.3f}]".format(*record["validation_ci95"][k])
                if k in record.get("validation_ci95", {})
                else "n/a"
            )
            + " |"
            for k, v in scores.items()
        ],
        "",
        "Intervals: stratified bootstrap over the questions (`clinkd.eval.paired`).",
        "",
        "## Reproducing",
        "",
        "The same command on the same kind of machine gives the same bits (the CPU thread pools are pinned). "
        "Another CPU (other SIMD kernels) or thread count gives other bits; the validation scores then agree "
        "within their sampling noise.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--out", type=Path, default=Path("build/pretrain"), help="work folder (data, runs, predictions)"
    )
    p.add_argument("--only", choices=sorted(BUDGET), help="make one checkpoint (default: both)")
    p.add_argument(
        "--steps-scale", type=float, default=1.0, help="fraction of the shipped steps and data (smoke runs)"
    )
    p.add_argument(
        "--ship",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"copy the results into the package ({PRETRAINED_DIR}); off: only into --out",
    )
    p.add_argument(
        "--validation-limit",
        type=int,
        default=None,
        help="answer at most this many validation questions a task",
    )
    args = p.parse_args(argv)
    if not 0 < args.steps_scale <= 1:
        p.error("--steps-scale must be in (0, 1]")

    from clinkd.model.tiny import build_tiny_processor, default_corpus

    args.out.mkdir(parents=True, exist_ok=True)
    names = [args.only] if args.only else sorted(BUDGET, reverse=True)  # the student base first: shorter
    folders = make_data(args.out, args.steps_scale, names)
    processor = build_tiny_processor(default_corpus())  # one tokenizer for both
    command = "python scripts/pretrain_tiny.py " + " ".join(argv if argv is not None else sys.argv[1:])
    trained = {}
    for name in names:
        data = folders["shapes"] if name == "student-base" else folders["teacher"]
        trained[name] = train(name, args.out, data, processor, args.steps_scale)
    scores = score(
        {
            name: answer(
                model_dir, folders["validation"], args.out / "validation" / name, args.validation_limit
            )
            for name, (model_dir, _) in trained.items()
        }
    )
    for name, (model_dir, seconds) in trained.items():
        print(f"{name}: validation {scores[name]['validation']}")
        b = BUDGET[name]
        import safetensors.torch

        n_params = sum(
            t.numel() for t in safetensors.torch.load_file(model_dir / "model.safetensors").values()
        )
        n_val = len(json.loads((folders["validation"] / "test_VG.json").read_text(encoding="utf-8")))
        record = {
            "name": name,
            "shape": "tiny-student" if name == "student-base" else "tiny-teacher",
            "parameters": n_params,
            "command": command,
            "init_seed": SEEDS[f"{name}_init"],
            "train_seed": SEEDS["train"],
            "steps": max(2, int(b["steps"] * args.steps_scale)),
            "batch": b["batch"],
            "learning_rate": b["learning_rate"],
            "data": (
                "the generic shapes domain, `clinkd data synth --domain shapes --seed "
                f"{SEEDS['shapes']} --images {max(8, int(b['images'] * args.steps_scale))}`"
            )
            if name == "student-base"
            else (
                f"synthetic Med-GRIT, `clinkd data synth --seed {SEEDS['teacher_data']} --images "
                f"{max(16, int(b['images'] * args.steps_scale))} --test-fraction 0` (all eight modalities, all four tasks)"
            ),
            "data_seed": SEEDS["shapes"] if name == "student-base" else SEEDS["teacher_data"],
            "validation_seed": SEEDS["validation"],
            "validation_questions": min(n_val, args.validation_limit or n_val),
            **scores[name],
            "machine": _machine(),
            "seconds": round(seconds, 1),
            "sha256": file_sha256(model_dir / "model.safetensors"),
        }
        write_card(model_dir, record)
        if args.ship:
            ship(model_dir, PRETRAINED_DIR / name, record)
            print(f"shipped {name} to {PRETRAINED_DIR / name}")
    return 0


#: the files of a model folder that are shipped (no optimizer state, no checkpoints, no logs)
SHIPPED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "processor_config.json",
)


def ship(model_dir: Path, target: Path, record: dict) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for f in SHIPPED_FILES:
        if (model_dir / f).is_file():
            shutil.copy2(model_dir / f, target / f)
    write_card(target, record)


def write_card(folder: Path, record: dict) -> None:
    (folder / "card.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(card(record["name"], record), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
