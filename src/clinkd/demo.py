"""``clinkd demo``: the whole ClinKD story on the built-in synthetic benchmark, in one command.

It builds the synthetic Med-GRIT benchmark and fine-tunes the shipped, pretrained tiny student base (the
stand-in for Qwen2-VL-Instruct, :mod:`clinkd.model.pretrained`) the ClinKD way: distillation from the
shipped teacher (trained far longer on far more data), SFT with reflective correction, SASG at answer
time — as an ablation on the same data and the same student step budget, every row from the same weights:

| row | student rope | distillation | reflective correction | selection |
|---|---|---|---|---|
| baseline | stock M-RoPE | – | – | greedy |
| + MCG-RoPE | MCG | – | – | greedy |
| + pseudo-KD | MCG | yes | – | greedy |
| + RCT | MCG | yes | yes | greedy |
| ClinKD | MCG | yes | yes | SASG |

Every student takes ``distill_steps + sft_steps`` optimizer steps (rows without distillation spend them
all on SFT). The numbers are measured, never adjusted; each comes with a 95% bootstrap interval, and
``results.md`` gives each row's paired difference from the baseline with its interval (rows answer the
same questions). Finished stages are reused when the demo is run again into the same folder (``--fresh``
starts over).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from clinkd.data.sample import TASKS
from clinkd.errors import ClinkdError

METRICS = {  # the columns of results.md: task -> metric names of report.json's standard reading
    "VG": ["recall@0.5"],
    "RO": ["accuracy"],
    "GC": ["Bleu_4", "METEOR", "ROUGE_L", "CIDEr"],
    "MII": ["Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "mBMR"],
}


@dataclass(frozen=True)
class DemoSize:
    """The demo's budget. ``full`` fits 20 minutes on 2 cores; ``tiny`` runs in seconds (tests)."""

    images: int = 1600
    # 480 test images: 480 questions per task (60 per modality), so that paired differences of ~0.05 between
    # rows are resolvable; 1120 training images, each seen < 2 times in a student's 1920 conversations
    test_fraction: float = 0.3
    distill_steps: int = 60
    sft_steps: int = 180
    batch: int = 8
    learning_rate: float = 2e-3
    distill_subset: float = 0.1
    pseudo_max_new_tokens: int = 96
    rct_rounds: int = 1
    rct_sample: int = 48
    rct_candidates: int = 4
    sasg_candidates: int = 4
    infer_batch: int = 32
    test_limit: int | None = None  # answer at most this many questions per task (None: all)
    max_new_tokens: int | None = None  # None: the release's 80 (100 for MII)


SIZES = {
    "full": DemoSize(),
    "tiny": DemoSize(
        images=16,
        test_fraction=0.2,
        distill_steps=1,
        sft_steps=2,
        batch=2,
        distill_subset=0.1,
        pseudo_max_new_tokens=8,
        rct_sample=2,
        rct_candidates=2,
        sasg_candidates=2,
        infer_batch=8,
        test_limit=4,
        max_new_tokens=8,
    ),
}

#: not a row of the ablation: the teacher's own answers (greedy), to read the KD rows against
TEACHER = {
    "name": "teacher (reference)",
    "settings": {"rope": "mcg", "distillation": False, "rct": False, "selection": "greedy"},
}

ROWS = [
    {
        "name": "baseline",
        "settings": {"rope": "stock", "distillation": False, "rct": False, "selection": "greedy"},
    },
    {
        "name": "+ MCG-RoPE",
        "settings": {"rope": "mcg", "distillation": False, "rct": False, "selection": "greedy"},
    },
    {
        "name": "+ pseudo-KD",
        "settings": {"rope": "mcg", "distillation": True, "rct": False, "selection": "greedy"},
    },
    {"name": "+ RCT", "settings": {"rope": "mcg", "distillation": True, "rct": True, "selection": "greedy"}},
    {"name": "ClinKD", "settings": {"rope": "mcg", "distillation": True, "rct": True, "selection": "sasg"}},
]


class _Clock:
    """Wall seconds per stage, kept in ``path`` after every stage: a rerun that reuses finished stages
    (or resumes an interrupted one) adds its own time to theirs, so the totals stay those of the work."""

    def __init__(self, path: Path):
        self.path = path
        self.seconds: dict[str, float] = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )

    def run(self, key: str, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        self.seconds[key] = round(self.seconds.get(key, 0.0) + time.perf_counter() - t0, 1)
        self.path.write_text(json.dumps(self.seconds, indent=1) + "\n", encoding="utf-8")
        return out


def slug(name: str) -> str:
    """A row name as a folder name: ``"+ MCG-RoPE"`` → ``mcg-rope``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def common_overrides(data: Path, spec: DemoSize, seed: int) -> list[str]:
    """The ``clinkd train`` overrides every demo training shares (data, batch, learning rate, seed, logging)."""
    return [
        f"--data.dir={data}",
        f"--train.per_device_train_batch_size={spec.batch}",
        f"--train.learning_rate={spec.learning_rate}",
        f"--train.seed={seed}",
        "--train.save_steps=100000",
        "--train.logging_steps=10",
    ]


def distill_overrides(spec: DemoSize, student: Path, teacher: Path) -> list[str]:
    """The overrides of the demo's distillation stage: ``student`` (MCG-RoPE) learns from ``teacher``."""
    return [
        "--stage=distill",
        f"--model.path={student}",
        "--model.rope=mcg",
        f"--distill.teacher={teacher}",
        f"--distill.subset={spec.distill_subset}",
        f"--distill.max_new_tokens={spec.pseudo_max_new_tokens}",
        f"--train.max_steps={spec.distill_steps}",
    ]


def fresh_stage(console, folder: Path, key_file: Path, key: dict) -> None:
    """Remove ``folder`` (data or initial models the demo made) when it was made with another ``key``, saying
    so, and record the key it is (re)made with."""
    from clinkd.train.keys import describe_change

    old = json.loads(key_file.read_text(encoding="utf-8")) if key_file.is_file() else None
    if folder.exists() and old != key:
        console.print(
            f"[yellow]{folder} was made otherwise ({describe_change(old, key)}): making it again[/yellow]"
        )
        shutil.rmtree(folder)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key) + "\n", encoding="utf-8")


def stage_key(cfg, data: Path) -> dict:
    """What a demo training stage depends on: its whole run config (output folder aside), the weights of the
    models it starts from or distils from, and the training data."""
    from clinkd.train.keys import digest, weights_digest

    config = cfg.to_dict()
    config["train"].pop("output_dir", None)
    inputs = {"model": weights_digest(cfg.model.path) if cfg.model.path else None}
    if cfg.stage == "distill":
        inputs["teacher"] = weights_digest(cfg.distill.teacher)
    train = data / "train.json"
    return {
        "config": digest(config),
        "inputs": inputs,
        "data": digest(train.read_text(encoding="utf-8")) if train.is_file() else None,
    }


def train_stage(console, name: str, out: Path, overrides: list[str]) -> Path:
    """Train ``out/models/<name>`` with ``clinkd train`` overrides, or reuse it when it was trained with the
    same config, from the same weights, on the same data (``clinkd_stage_key.json``); otherwise it is trained
    again, with a line saying what changed. An interrupted stage with the same key resumes."""
    from clinkd.train.config import load_run_configs
    from clinkd.train.keys import describe_change
    from clinkd.train.run import run_stage

    target = out / "models" / name
    (cfg,) = load_run_configs(None, overrides + [f"--train.output_dir={target}", f"--name={name}"])
    key = stage_key(cfg, Path(cfg.data.dir))
    key_file = target / "clinkd_stage_key.json"
    old = json.loads(key_file.read_text(encoding="utf-8")) if key_file.is_file() else None
    if target.exists() and old != key:
        console.print(
            f"[yellow]{name}: {target} was made otherwise ({describe_change(old, key)}): training "
            "again[/yellow]"
        )
        shutil.rmtree(target)
    elif (target / "clinkd_run.yaml").is_file():
        console.print(f"[dim]{name}: already trained with these settings ({target})[/dim]")
        return target
    target.mkdir(parents=True, exist_ok=True)
    key_file.write_text(
        json.dumps(key, indent=1) + "\n", encoding="utf-8"
    )  # before training: a resume checks it
    console.print(
        f"[b]{name}[/b]: {cfg.stage}, {cfg.train.max_steps} steps, rope {cfg.model.rope}"
        + (", reflective correction" if cfg.rct.enabled else "")
    )
    run_stage(cfg, resume=True)
    return target


#: written first into a demo's folder: what marks a folder as the demo's own (reused, or deleted by --fresh)
DEMO_MARKER = ".clinkd-demo"


def demo_folder(out: str | os.PathLike, fresh: bool) -> Path:
    """The demo's output folder, checked before any work: a new or empty folder, or one an earlier demo
    wrote (its marker, or the stage keys of a demo from before the marker). Any other folder is refused —
    ``--fresh`` deletes only a demo's own folder, never something a user made."""
    from clinkd.errors import ClinkdError
    from clinkd.paths import output_dir

    out = Path(out)
    ours = (out / DEMO_MARKER).is_file() or (
        (out / "keys").is_dir() and (out / "stage_seconds.json").is_file()
    )
    if out.is_dir() and any(out.iterdir()) and not ours:
        raise ClinkdError(f"{out} holds files that the demo did not write; give a new or empty --out folder")
    if fresh and ours:
        shutil.rmtree(out)
    out = output_dir(out, force=True, what="demo folder")
    (out / DEMO_MARKER).write_text(
        "written by clinkd demo; `clinkd demo --fresh` may delete this folder\n", encoding="utf-8"
    )
    return out


def run_demo(
    out: str | os.PathLike, *, size: str | DemoSize = "full", seed: int = 0, fresh: bool = False
) -> dict:
    """Run the demo into ``out`` and return what it writes to ``results.json``."""
    from rich.console import Console

    from clinkd.data import synth
    from clinkd.data.formats import find_dataset_files, read_dataset_dir
    from clinkd.data.gallery import make_gallery
    from clinkd.eval.paired import headline_intervals
    from clinkd.infer.predict import predict_file
    from clinkd.infer.similarity import Embedder
    from clinkd.model import load
    from clinkd.model.pretrained import RESERVED_DATA_SEEDS, pretrained_card, pretrained_path
    from clinkd.runtime import pinned_settings
    from clinkd.train.keys import weights_digest

    spec = SIZES[size] if isinstance(size, str) else size
    if seed in RESERVED_DATA_SEEDS:
        raise ClinkdError(
            f"--seed {seed} drew the shipped checkpoints' pretraining or validation data "
            f"(seeds {', '.join(map(str, RESERVED_DATA_SEEDS))}); choose another seed"
        )
    console = Console()
    out = demo_folder(out, fresh)
    clock = _Clock(out / "stage_seconds.json")
    t_start = time.perf_counter()

    console.rule("[b]1/5 synthetic Med-GRIT benchmark")
    data = out / "data"
    fresh_stage(
        console,
        data,
        out / "keys" / "data.json",
        {"images": spec.images, "seed": seed, "test_fraction": spec.test_fraction},
    )
    if not (data / "train.json").is_file():
        clock.run(
            "data",
            synth.generate,
            data,
            seed=seed,
            n_images=spec.images,
            test_fraction=spec.test_fraction,
            progress=True,
        )
    ds = read_dataset_dir(data)
    make_gallery(data, out / "gallery.png", n=16, seed=seed)
    console.print(
        f"{len(ds.train)} training records, test files: {', '.join(sorted(ds.test))}; gallery: {out / 'gallery.png'}"
    )

    console.rule("[b]2/5 the shipped pretrained models")
    student_base, teacher = pretrained_path("student-base"), pretrained_path("teacher")
    for name, path in (("student base", student_base), ("teacher", teacher)):
        c = pretrained_card(path.name)
        console.print(
            f"{name}: {path} ({c['parameters'] / 1e6:.2f} M parameters, {c['steps']} pretraining "
            f"steps; validation {', '.join(f'{k} {v:.3f}' for k, v in c['validation'].items())})"
        )

    console.rule("[b]3/5 training")
    common = common_overrides(data, spec, seed)
    student_budget = spec.distill_steps + spec.sft_steps
    models = {}
    models["baseline"] = clock.run(
        "baseline",
        train_stage,
        console,
        "baseline",
        out,
        common
        + [f"--model.path={student_base}", "--model.rope=stock", f"--train.max_steps={student_budget}"],
    )
    models["+ MCG-RoPE"] = clock.run(
        "+ MCG-RoPE",
        train_stage,
        console,
        "mcg",
        out,
        common + [f"--model.path={student_base}", "--model.rope=mcg", f"--train.max_steps={student_budget}"],
    )
    distilled = clock.run(
        "distill",
        train_stage,
        console,
        "distill",
        out,
        common + distill_overrides(spec, student_base, teacher),
    )
    models["+ pseudo-KD"] = clock.run(
        "+ pseudo-KD",
        train_stage,
        console,
        "kd-sft",
        out,
        common + [f"--model.path={distilled}", "--model.rope=mcg", f"--train.max_steps={spec.sft_steps}"],
    )
    models["+ RCT"] = clock.run(
        "+ RCT",
        train_stage,
        console,
        "kd-sft-rct",
        out,
        common
        + [
            f"--model.path={distilled}",
            "--model.rope=mcg",
            f"--train.max_steps={spec.sft_steps}",
            "--rct.enabled=true",
            f"--rct.rounds={spec.rct_rounds}",
            f"--rct.sample_size={spec.rct_sample}",
            f"--rct.num_candidates={spec.rct_candidates}",
            f"--rct.max_new_tokens={spec.pseudo_max_new_tokens}",
        ],
    )
    models["ClinKD"] = models["+ RCT"]

    console.rule("[b]4/5 answering the test split")
    files = find_dataset_files(data)
    preds: dict[str, dict[str, list[dict]]] = {}
    models[TEACHER["name"]] = teacher
    embedder = Embedder()  # loaded on first use, shared by every SASG file
    for row in ROWS + [TEACHER]:
        name, select = row["name"], row["settings"]["selection"]
        # predictions of a model that was trained again are stale: made again (a prediction file refuses
        # to be resumed by another run)
        fresh_stage(
            console,
            out / "predictions" / slug(name),
            out / "keys" / f"predictions-{slug(name)}.json",
            {"model": weights_digest(models[name]), "selection": select},
        )
        model, processor = clock.run(f"infer {name}", load, models[name])  # once per row, not per task
        preds[name] = {}
        for task in TASKS:
            path = out / "predictions" / slug(name) / f"pred_{task}.jsonl"
            clock.run(
                f"infer {name}",
                predict_file,
                model,
                files.test[task],
                path,
                processor=processor,
                select=select,
                candidates=spec.sasg_candidates,
                batch_size=spec.infer_batch,
                limit=spec.test_limit,
                max_new_tokens=spec.max_new_tokens,
                seed=seed,
                embedder=embedder,
                progress=f"{name} {task}",
            )
            preds[name][task] = [
                json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line
            ]

    console.rule("[b]5/5 evaluation (standard Med-GRIT protocol, paired bootstrap intervals)")
    # every row in one caption run; the values equal clinkd.eval.evaluate's standard reading
    stats = clock.run("evaluation", headline_intervals, preds, reference="baseline", seed=seed)
    rows = []
    for row in ROWS + [TEACHER]:
        name = row["name"]
        rows.append(
            {
                "name": name,
                "settings": row["settings"],
                "metrics": stats["standard"][name],
                "intervals": stats["rows"][name],
                "vs_baseline": stats.get("differences", {}).get(name),
                "seconds": {},
            }
        )
    reference = rows.pop()
    reference["seconds"] = {"inference": clock.seconds.get(f"infer {reference['name']}", 0.0)}
    stage_of = {
        "baseline": ["baseline"],
        "+ MCG-RoPE": ["+ MCG-RoPE"],
        "+ pseudo-KD": ["distill", "+ pseudo-KD"],
        "+ RCT": ["distill", "+ RCT"],
        "ClinKD": ["distill", "+ RCT"],
    }
    for r in rows:
        secs = {k: clock.seconds.get(k, 0.0) for k in stage_of[r["name"]]}
        secs["inference"] = clock.seconds.get(f"infer {r['name']}", 0.0)
        r["seconds"] = secs
    results = {
        "rows": rows,
        "teacher": reference,
        "budget": asdict(spec),
        "wall_seconds": round(time.perf_counter() - t_start, 1),  # this run's (reused stages cost ~0)
        "total_seconds": round(sum(clock.seconds.values()), 1),  # every stage's work, over reruns too
        "stage_seconds": clock.seconds,
        "machine": _machine(),
        "threads": pinned_settings(),
        "pretrained": {
            n: {k: c[k] for k in ("parameters", "steps", "data_seed", "validation", "sha256")}
            for n, c in (
                ("student-base", pretrained_card("student-base")),
                ("teacher", pretrained_card("teacher")),
            )
        },
        "seed": seed,
        "distill_stats": _read_json(distilled / "distill_stats.json"),
        "resolution": stats.get("resolution"),
        "n_questions": stats.get("n_questions"),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    (out / "results.md").write_text(render_results(results), encoding="utf-8")
    console.print(render_results(results, brief=True))
    console.print(f"wrote {out / 'results.md'} and {out / 'results.json'} ({results['wall_seconds']:.0f} s)")
    return results


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _machine() -> str:
    import platform

    import torch

    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _value(metrics: dict, task: str, key: str):
    block = metrics.get(task) or {}
    return block.get(key)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def compare(rows: list[dict]) -> list[str]:
    """Plain sentences: for each row after the baseline, which numbers rose and which did not."""
    lines = []
    base = rows[0]["metrics"]
    for prev, row in itertools.pairwise(rows):
        up, down, same = [], [], []
        for task, keys in METRICS.items():
            for k in keys:
                a, b = _value(prev["metrics"], task, k), _value(row["metrics"], task, k)
                if a is None or b is None:
                    continue
                label = f"{task} {k}"
                (up if b > a + 1e-9 else down if b < a - 1e-9 else same).append(label)
        vs_base = []
        for task, keys in METRICS.items():
            a, b = _value(base, task, keys[-1]), _value(row["metrics"], task, keys[-1])
            if a is not None and b is not None:
                vs_base.append(f"{task} {keys[-1]} {'+' if b >= a else ''}{b - a:.3f}")
        lines.append(
            f"- **{row['name']}** vs **{prev['name']}**: improved {', '.join(up) or 'nothing'}; "
            f"worse {', '.join(down) or 'nothing'}"
            + (f"; unchanged {', '.join(same)}" if same else "")
            + f". Against the baseline: {', '.join(vs_base)}."
        )
    return lines


HEADLINE = [("VG", "recall@0.5"), ("RO", "accuracy"), ("GC", "CIDEr"), ("MII", "mBMR")]


def _ci(entry: dict | None) -> str:
    if not entry or entry.get("ci95") is None:
        return "n/a"
    lo, hi = entry["ci95"]
    return f"[{lo:.3f}, {hi:.3f}]"


def intervals_table(results: dict) -> list[str]:
    """Each row's headline numbers with their 95% intervals (stratified bootstrap over the questions)."""
    head = ["row"] + [f"{t} {k}" for t, k in HEADLINE]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"] + [results["teacher"]]:
        cells = [r["name"]]
        for t, k in HEADLINE:
            e = (r.get("intervals") or {}).get(t, {}).get(k)
            cells.append("n/a" if not e else f"{e['value']:.3f} {_ci(e)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def differences_table(results: dict) -> list[str]:
    """Each row minus the baseline, question by question (paired bootstrap): the difference, its 95%
    interval, and **bold** where the interval excludes 0 (beyond noise)."""
    head = ["row − baseline"] + [f"{t} {k}" for t, k in HEADLINE]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"][1:] + [results["teacher"]]:
        cells = [r["name"]]
        for t, k in HEADLINE:
            e = (r.get("vs_baseline") or {}).get(t, {}).get(k)
            if not e:
                cells.append("n/a")
                continue
            text = f"{e['difference']:+.3f} {_ci(e)}"
            cells.append(f"**{text}**" if e["beyond_noise"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def noise(results: dict) -> str:
    """One sentence on what the test split can resolve: the half-widths of the paired intervals."""
    res = results.get("resolution") or {}
    parts = []
    for t, k in HEADLINE:
        e = (res.get(t) or {}).get(k) or {}
        if e.get("min_half_width") is not None:
            parts.append(f"{t} {k} ±{e['min_half_width']:.3f}–{e['max_half_width']:.3f}")
    n = results.get("n_questions") or {}
    sizes = ", ".join(f"{t} {(n.get(t) or {}).get('total', '?')}" for t, _ in HEADLINE if t in n)
    return (
        (
            "Questions per task: "
            + sizes
            + ". Half-widths of the paired 95% intervals against the baseline: "
            + "; ".join(parts)
            + ". A difference inside its interval's reach is not evidence either way; "
            "bold differences are beyond noise."
        )
        if parts
        else ""
    )


def _pretrained_lines(pretrained: dict | None) -> list[str]:
    if not pretrained:
        return []
    out = []
    for name, c in pretrained.items():
        out.append(
            f"- **{name}**: {c['parameters'] / 1e6:.2f} M parameters, {c['steps']} pretraining steps on "
            f"data seed {c['data_seed']} (`clinkd model init --size {name}` writes it; its model card says how "
            "it was made); validation " + ", ".join(f"{k} {v:.3f}" for k, v in c["validation"].items()) + "."
        )
    return ["The shipped pretrained checkpoints (scripts/pretrain_tiny.py):", "", *out, ""]


def _pseudo_label_line(stats: dict | None) -> list[str]:
    if not stats or not stats.get("pseudo_labels"):
        return []
    n = stats["pseudo_labels"]
    return [
        f"Pseudo-labels: the teacher answered {n} training questions; {stats['kept']} ({stats['kept'] / n:.0%}) "
        f"were kept, {stats['replaced_contradicting']} replaced by the ground truth because they contradicted "
        f"it and {stats['replaced_low_margin']} because the teacher was unsure (mean confidence margin "
        f"{stats['mean_margin']:.2f}).",
        "",
    ]


def render_results(results: dict, brief: bool = False) -> str:
    rows = results["rows"]
    head = ["student", "rope", "KD", "RCT", "selection"] + [
        f"{t} {k}" for t, ks in METRICS.items() for k in ks
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows + ([results["teacher"]] if results.get("teacher") else []):
        s = r["settings"]
        name = r["name"] if r in rows else f"*{r['name']}*"  # the teacher's reference line in italics
        cells = [
            name,
            s["rope"],
            "yes" if s["distillation"] else "–",
            "yes" if s["rct"] else "–",
            s["selection"],
        ]
        cells += [_fmt(_value(r["metrics"], t, k)) for t, ks in METRICS.items() for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    if brief:
        return "\n".join(lines)
    b = results["budget"]
    doc = [
        "# clinkd demo: the ClinKD ablation on the synthetic Med-GRIT benchmark",
        "",
        f"Measured on {results['machine']}; {results.get('total_seconds', results['wall_seconds']):.0f} s of work in "
        f"all ({results['wall_seconds']:.0f} s in the last run). Standard Med-GRIT "
        "reading (equal-weight mean over the eight modalities; VG recall@0.5, RO accuracy, pycocoevalcap "
        "metrics for GC and MII; SPICE left out, it cannot run offline).",
        "",
        f"Budget: {b['images']} images ({b.get('test_fraction', 0.2):.0%} held out for the test split); "
        f"data seed {results.get('seed', 0)}; every student starts from the shipped student base and takes "
        f"{b['distill_steps'] + b['sft_steps']} steps at batch {b['batch']} (rows with KD: {b['distill_steps']} "
        f"distillation + {b['sft_steps']} SFT); SASG with {b['sasg_candidates']} sampled candidates besides the greedy answer.",
        "",
        *lines,
        "",
        "The last line, in italics, is the shipped teacher's own greedy answers: not a row of the ablation, "
        "but the ceiling the pseudo-labels come from.",
        "",
        *_pretrained_lines(results.get("pretrained")),
        *_pseudo_label_line(results.get("distill_stats")),
        "## Headline numbers with 95% intervals",
        "",
        "Stratified bootstrap over the test questions (resampled within each modality, 1000 times).",
        "",
        *intervals_table(results),
        "",
        "## Differences from the baseline (paired: the same questions)",
        "",
        *differences_table(results),
        "",
        noise(results),
        "",
        "## What changed, row by row (measured, not adjusted)",
        "",
        *compare(rows),
        "",
        "## Wall time per stage (s)",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in results["stage_seconds"].items()],
        "",
    ]
    return "\n".join(doc)
