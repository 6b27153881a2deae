"""Why the demo's numbers are what they are: diagnostics on data the demo's test split never sees.

    python scripts/diagnose_demo.py --demo runs/demo [--extra-steps 600] [--questions 96]

Run it after ``clinkd demo`` (it reads the demo's models and training data, and writes
``DEMO/diagnosis/diagnosis.md`` and ``diagnosis.json``). Nothing here looks at the test split, so nothing
here can tune the demo on it:

1. **A validation set**: the synthetic benchmark drawn again with another seed (new images, the same
   distribution; never one of the shipped checkpoints' pretraining seeds).
2. **Seen against unseen.** The shipped student base (before any fine-tuning), every ablation row's
   student and the shipped teacher answer (greedy) ``--questions`` validation questions per task and as many
   questions taken from the *training* turns (the task guessed from each turn's shape,
   ``clinkd.data.sample.guess_task``), scored with the standard reading. Good on training turns and poor on
   validation means memorising; poor on both means under-fitting.
3. **Can it write a box, and where does it put it?** For visual grounding: the share of answers holding a
   parseable box, the share naming the asked-for structure, and the median IoU of the first box with
   the reference. It separates "cannot write coordinates" from "writes them in the wrong place".
4. **Steps**: a baseline student fine-tuned ``budget + --extra-steps`` steps from the same student base
   (same recipe, data and seed; ``--extra-steps 0`` skips it): how far the demo's budget is from where SFT
   alone would go, against what distillation from the teacher bought in the budget.
5. **Pseudo-labels**: how many of the teacher's answers were kept, replaced as contradicting the ground
   truth, or replaced as unsure (from the demo's ``distill_stats.json``).

About 10 minutes on 2 CPU cores with the defaults (the extra training is most of it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from clinkd.data import synth
from clinkd.data.boxes import parse_boxes, parse_refs
from clinkd.data.formats import read_dataset_dir, write_test_file
from clinkd.data.sample import TASKS, Sample, guess_task
from clinkd.pipelines.stages import slug

KEYS = {"VG": "recall@0.5", "RO": "accuracy", "GC": "CIDEr", "MII": "mBMR"}


def training_questions(data_dir: Path, out_dir: Path, per_task: int) -> dict[str, Path]:
    """Test-format files of ``per_task`` single-turn questions per task, taken from the training split."""
    ds = read_dataset_dir(data_dir)
    picked: dict[str, list[Sample]] = {t: [] for t in TASKS}
    records = list(ds.train)
    random.Random(0).shuffle(records)  # every modality: the standard reading counts an absent one as 0
    for s in records:
        seen = set()  # one turn per task and image: test files name a record by its image
        for turn in s.turns:
            task = guess_task(turn)
            if task not in seen and len(picked[task]) < per_task:
                seen.add(task)
                picked[task].append(Sample(id=s.id, image=s.image, turns=[turn], task=task))
    out_dir.mkdir(parents=True, exist_ok=True)
    return {t: write_test_file(v, out_dir / f"test_{t}.json") for t, v in picked.items() if v}


def grounding(records: list[dict]) -> dict:
    """VG answers: parseable box share, right-structure share, median IoU of the first box."""
    has_box = named = 0
    ious = []
    for r in records:
        ref_boxes, boxes = parse_boxes(r["annotation"]), parse_boxes(r["response"])
        has_box += bool(boxes)
        named += bool(set(parse_refs(r["response"])) & set(parse_refs(r["annotation"])))
        if boxes and ref_boxes:
            ious.append(max(boxes[0].iou(b) for b in ref_boxes))
        else:
            ious.append(0.0)
    n = max(1, len(records))
    return {
        "n": len(records),
        "has_box": has_box / n,
        "names_structure": named / n,
        "median_iou": statistics.median(ious) if ious else 0.0,
        "iou>=0.3": sum(i >= 0.3 for i in ious) / n,
    }


def answer_and_score(
    model_dir: Path, files: dict[str, Path], image_dir: Path, out_dir: Path, limit: int
) -> dict:
    from clinkd.eval import evaluate
    from clinkd.infer.predict import predict_file
    from clinkd.model import load

    model, processor = load(model_dir)
    preds = {}
    for task, path in files.items():
        pred = out_dir / f"pred_{task}.jsonl"
        predict_file(
            model,
            path,
            pred,
            processor=processor,
            task=task,
            image_dir=image_dir,
            limit=limit,
            batch_size=32,
            progress=f"{model_dir.name} {task}",
        )
        preds[task] = [json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines() if line]
    report = evaluate(preds, strict=False, spice=False).standard
    scores = {t: (report.get(t) or {}).get(k) for t, k in KEYS.items()}
    return {"scores": scores, "grounding": grounding(preds.get("VG", []))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Writes DEMO/diagnosis/diagnosis.md and diagnosis.json."
    )
    ap.add_argument("--demo", type=Path, default=Path("runs/demo"), help="the folder `clinkd demo` wrote")
    ap.add_argument("--questions", type=int, default=96, help="questions per task and split")
    ap.add_argument(
        "--extra-steps", type=int, default=600, help="extra SFT steps for the longer baseline (0: skip)"
    )
    ap.add_argument("--seed", type=int, default=1000, help="seed of the validation set (the demo used 0)")
    args = ap.parse_args(argv)
    demo = args.demo
    results_path = demo / "results.json"
    if not results_path.is_file():
        ap.error(f"{results_path} not found: run `clinkd demo --out {demo}` first")
    budget = json.loads(results_path.read_text(encoding="utf-8"))["budget"]
    out = demo / "diagnosis"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    val_dir = out / "validation"
    if not (val_dir / "test_VG.json").is_file():
        synth.generate(val_dir, seed=args.seed, n_images=max(80, 2 * args.questions), test_fraction=0.5)
    splits = {
        "validation": ({t: val_dir / f"test_{t}.json" for t in TASKS}, val_dir / "images"),
        "training": (
            training_questions(demo / "data", out / "training_questions", args.questions),
            demo / "data" / "images",
        ),
    }
    from clinkd.model.pretrained import RESERVED_DATA_SEEDS, pretrained_path

    if args.seed in RESERVED_DATA_SEEDS:
        ap.error(
            f"--seed {args.seed} is a pretraining or validation seed of the shipped checkpoints; choose another"
        )
    base = pretrained_path("student-base")
    models = {
        "student base (no fine-tuning)": base,
        "baseline": demo / "models" / "baseline",
        "+ MCG-RoPE": demo / "models" / "mcg",
        "+ pseudo-KD": demo / "models" / "kd-sft",
        "+ RCT": demo / "models" / "kd-sft-rct",
        "teacher (shipped)": pretrained_path("teacher"),
    }
    student_steps = budget["distill_steps"] + budget["sft_steps"]
    stats = {"demo teacher": demo / "models" / "distill" / "distill_stats.json"}
    if args.extra_steps > 0:
        from rich.console import Console

        from clinkd.pipelines.demo import DemoSize, student_config
        from clinkd.pipelines.stages import train_stage

        long_steps = student_steps + args.extra_steps
        cfg = student_config(
            f"baseline-{long_steps}-steps",
            out,
            demo / "data",
            DemoSize(**budget),
            seed=0,
            start=base,
            rope="stock",
            steps=long_steps,
        )
        models[f"baseline, {long_steps} steps"] = train_stage(Console(), cfg)
    pseudo = {k: json.loads(v.read_text()) for k, v in stats.items() if v.is_file()}
    table = {}
    for label, model_dir in models.items():
        if not (model_dir / "config.json").is_file():
            print(f"skipping {label}: {model_dir} has no model", file=sys.stderr)
            continue
        for split, (files, images) in splits.items():
            table[(label, split)] = answer_and_score(
                model_dir, files, images, out / "predictions" / slug(label) / split, args.questions
            )
    rows = [{"model": m, "split": s, **v} for (m, s), v in table.items()]
    (out / "diagnosis.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "budget": budget,
                "pseudo_labels": pseudo,
                "seconds": round(time.perf_counter() - t0, 1),
            },
            indent=1,
        )
        + "\n"
    )
    head = (
        ["model", "split"]
        + [f"{t} {k}" for t, k in KEYS.items()]
        + ["VG has box", "VG names structure", "VG median IoU", "VG IoU≥0.3"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        g = r["grounding"]
        cells = [r["model"], r["split"]] + ["n/a" if v is None else f"{v:.3f}" for v in r["scores"].values()]
        cells += [
            f"{g['has_box']:.2f}",
            f"{g['names_structure']:.2f}",
            f"{g['median_iou']:.3f}",
            f"{g['iou>=0.3']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    md = "\n".join(
        [
            f"# Diagnosis of {demo}",
            "",
            f"{args.questions} questions per task and split; validation: "
            f"synthetic seed {args.seed} (never the demo's test split). Standard reading.",
            "",
            *lines,
            "",
            *[
                f"- pseudo-labels of the {k}: {v['pseudo_labels']} made, {v['kept']} kept, "
                f"{v['replaced_contradicting']} contradicting the ground truth, {v['replaced_low_margin']} unsure"
                for k, v in pseudo.items()
            ],
            "",
        ]
    )
    (out / "diagnosis.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"wrote {out / 'diagnosis.md'} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
