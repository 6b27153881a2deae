"""Evaluation speed: ``clinkd.eval.evaluate`` against the naive, published-script way.

Writes a seeded 30,000-prediction set (the size of the Med-GRIT test split: 7,500 per task, spread
over the eight modalities, realistic caption lengths — GC ~10-25 words, MII ~30-70) as four JSONL
files, then times

* fast: ``evaluate(files, strict=True, bootstrap=1000)`` — standard + strict readings, one tokenizer
  run and one METEOR JVM for everything;
* naive: the standard reading as the published scripts compute it — for GC and MII one full
  pycocoevalcap run (tokenizer JVM ×2, a fresh METEOR JVM, BLEU, ROUGE-L, CIDEr) per modality per
  task; VG and RO with the same per-sample rules.

and checks that every standard number (per modality and mean) is identical, printing a table.
Run: ``python benchmarks/bench_eval.py [--n 30000] [--seed 0] [--skip-naive]`` (several minutes:
the naive way alone takes ~4). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from clinkd.eval import MODALITIES, evaluate, read_predictions
from clinkd.eval.captions import CAPTION_METRICS
from clinkd.eval.cleaning import clean_response
from clinkd.eval.naive import naive_caption_scores
from clinkd.eval.predictions import group_by_modality
from clinkd.eval.standard import mean_over_eight

# Share of each modality in the test split (roughly SA-Med2D-like: CT and MR dominate).
WEIGHTS = {
    "ct": 0.30,
    "mr": 0.25,
    "x": 0.10,
    "pet": 0.05,
    "endoscopy": 0.10,
    "dermoscopy": 0.06,
    "fundus": 0.06,
    "ultrasound": 0.08,
}
ORGANS = [
    "liver",
    "left kidney",
    "right kidney",
    "spleen",
    "pancreas",
    "gallbladder",
    "aorta",
    "stomach",
    "left lung",
    "right lung",
    "heart",
    "brain stem",
    "optic disc",
    "polyp",
    "melanoma",
    "nodule",
    "bladder",
    "prostate",
    "thyroid",
    "tumor",
]
FINDINGS = [
    "a hypodense lesion",
    "an enhancing mass",
    "a small cyst",
    "a well defined nodule",
    "an irregular region",
    "diffuse thickening",
    "a calcified focus",
    "mild dilatation",
    "a hyperintense area",
    "an ill defined opacity",
]
PLACES = [
    "in the upper part",
    "near the centre",
    "along the left border",
    "in the lower right",
    "close to the midline",
    "at the posterior wall",
    "in the anterior segment",
]
EXTRA = [
    "with no sign of invasion",
    "surrounded by normal tissue",
    "which appears benign",
    "suggesting inflammation",
    "with clear margins",
    "compared with the contralateral side",
    "and the adjacent vessels are preserved",
    "without significant mass effect",
]


def _caption(rng: random.Random, sentences: int) -> str:
    parts = []
    for _ in range(sentences):
        parts.append(
            f"The image shows {rng.choice(FINDINGS)} {rng.choice(PLACES)} of the "
            f"{rng.choice(ORGANS)} {rng.choice(EXTRA)}."
        )
    return " ".join(parts)


def _perturb(rng: random.Random, text: str, p: float) -> str:
    words = text.split()
    out = [
        w if rng.random() > p else rng.choice(["the", "a", "lesion", "region", "left", "mass"])
        for w in words
        if rng.random() > p / 2
    ]
    return " ".join(out)


def _box(rng: random.Random) -> tuple[int, int, int, int]:
    x1, y1 = rng.randint(0, 800), rng.randint(0, 800)
    return x1, y1, min(1000, x1 + rng.randint(20, 200)), min(1000, y1 + rng.randint(20, 200))


def _fmt_box(b: tuple[int, int, int, int]) -> str:
    return f"<box>({b[0]},{b[1]}),({b[2]},{b[3]})</box>"


def make_predictions(n: int, seed: int) -> dict[str, list[dict]]:
    """``n`` predictions, a quarter per task, modalities drawn with :data:`WEIGHTS`."""
    rng = random.Random(seed)
    mods, weights = list(WEIGHTS), list(WEIGHTS.values())
    out: dict[str, list[dict]] = {t: [] for t in ("VG", "RO", "GC", "MII")}
    for task in out:
        for i in range(n // 4):
            m = rng.choices(mods, weights)[0]
            rec = {"id": i, "image": f"{m}_{i:06d}.png", "question": f"<img>{m}_{i:06d}.png</img> ..."}
            if task == "VG":
                gts = [_box(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
                preds = [
                    (
                        b[0] + rng.randint(-30, 30),
                        b[1] + rng.randint(-30, 30),
                        b[2] + rng.randint(-30, 30),
                        b[3] + rng.randint(-30, 30),
                    )
                    for b in gts
                ]
                rec["annotation"] = "".join(f"<ref>{rng.choice(ORGANS)}</ref>{_fmt_box(b)}" for b in gts)
                rec["response"] = (
                    "".join(_fmt_box(b) for b in preds[: rng.randint(0, len(preds))]) + "<|im_end|>"
                )
            elif task == "RO":
                rec["annotation"] = rng.choice(ORGANS)
                rec["response"] = (
                    rng.choice([rec["annotation"], rng.choice(ORGANS), f"The {rec['annotation']}."])
                    + "<|im_end|>"
                )
            else:
                ref = _caption(rng, rng.randint(1, 2) if task == "GC" else rng.randint(3, 5))
                rec["annotation"] = ref
                rec["response"] = _perturb(rng, ref, 0.3) + ".<|im_end|>"
            out[task].append(rec)
    return out


def naive_standard(path: Path, task: str) -> dict[str, dict]:
    """Per-modality standard scores computed the published way (one pycocoevalcap run per group)."""
    from clinkd.eval.standard import ro_standard, vg_standard

    preds = read_predictions(path)
    groups = group_by_modality(preds)
    if task == "VG":
        return {
            m: {"recall@0.5": v["recall@0.5"]} for m, v in vg_standard(preds, groups)["per_modality"].items()
        }
    if task == "RO":
        return {m: {"accuracy": v["accuracy"]} for m, v in ro_standard(preds, groups)["per_modality"].items()}
    out = {}
    for m in MODALITIES:
        idx = groups.get(m, [])
        if idx:
            out[m] = naive_caption_scores(
                [clean_response(preds[i].response) for i in idx], [preds[i].annotation for i in idx]
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="clinkd-bench-eval-") as tmp:
        files = []
        for task, recs in make_predictions(args.n, args.seed).items():
            path = Path(tmp) / f"pred_{task}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
            files.append(path)
        print(
            f"{args.n} predictions in {len(files)} files; evaluating (standard + strict, bootstrap 1000)...",
            flush=True,
        )
        t0 = time.perf_counter()
        report = evaluate(files, strict=True, bootstrap=1000, seed=0)
        fast = time.perf_counter() - t0
        print(f"fast: {fast:.1f} s  stages: {report.timings}", flush=True)
        if args.skip_naive:
            return 0
        naive_t: dict[str, float] = {}
        mismatches = []
        for path in files:
            task = path.stem.split("_")[1]
            print(f"naive {task}...", flush=True)
            t1 = time.perf_counter()
            naive = naive_standard(path, task)
            naive_t[task] = time.perf_counter() - t1
            std = report.standard[task]
            metrics = [k for k in ("recall@0.5", "accuracy", *CAPTION_METRICS) if k in std and k != "SPICE"]
            for metric in metrics:
                per = {m: (naive.get(m) or {}).get(metric) for m in MODALITIES}
                for m in MODALITIES:
                    if per[m] != std["per_modality"][m][metric]:
                        mismatches.append((task, m, metric, per[m], std["per_modality"][m][metric]))
                if mean_over_eight(per) != std[metric]:
                    mismatches.append((task, "mean", metric, mean_over_eight(per), std[metric]))
    naive_total = sum(naive_t.values())
    rows = [
        (f"{t} scoring (standard + strict)", report.timings.get(t, 0.0), naive_t.get(t, 0.0))
        for t in ("VG", "RO")
    ]
    rows += [
        (f"{t} scoring, after shared caption work", report.timings.get(t, 0.0), naive_t.get(t, 0.0))
        for t in ("GC", "MII")
    ]
    rows += [
        ("shared caption work (tokenizer, METEOR, n-grams)", report.timings["captions"], None),
        ("TOTAL (wall clock)", fast, naive_total),
    ]
    print()
    print(f"| {'stage':50s} | {'fast (s)':>9s} | {'naive (s)':>9s} |")
    print(f"|{'-' * 52}|{'-' * 11}|{'-' * 11}|")
    for label, a, b in rows:
        print(f"| {label:50s} | {a:9.2f} | {'' if b is None else f'{b:9.2f}':>9s} |")
    print(
        f"\nspeed-up: {naive_total / fast:.1f}x (fast: standard + strict readings with 1000-sample "
        f"bootstraps; naive: the standard reading only, one pycocoevalcap run per modality per task)"
    )
    if mismatches:
        print(f"\nMISMATCHES ({len(mismatches)}):")
        for row in mismatches[:20]:
            print("  ", row)
        return 1
    print("all standard numbers identical (per modality and mean, every task and metric)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
