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

The training stages are typed run configs (:func:`demo_stages`, issue 15), trained or reused by
:mod:`clinkd.pipelines.stages`; ``results.md`` is written by :mod:`clinkd.pipelines.demo_report`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from clinkd.data.sample import TASKS
from clinkd.errors import ClinkdError
from clinkd.pipelines.demo_report import render_results
from clinkd.pipelines.stages import fresh_stage, slug, stage_config, train_stage

if TYPE_CHECKING:  # imported where used: transformers is slow to import
    from clinkd.train.config import RunConfig


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
    # SASG samples 4 here, not the release's 5 (clinkd.infer.defaults.DEFAULTS.candidates): the demo's time budget
    sasg_candidates: int = 4
    infer_batch: int = 32
    test_limit: int | None = None  # answer at most this many questions per task (None: all)
    # None: the release's limit per task (clinkd.infer.defaults.TASK_MAX_NEW_TOKENS)
    max_new_tokens: int | None = None


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
TEACHER: dict[str, Any] = {
    "name": "teacher (reference)",
    "settings": {"rope": "mcg", "distillation": False, "rct": False, "selection": "greedy"},
}

ROWS: list[dict[str, Any]] = [
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


def train_settings(spec: DemoSize, seed: int, steps: int) -> dict:
    """The ``train`` keys of a demo stage: ``steps`` optimizer steps at the budget's batch and learning rate,
    no intermediate checkpoint (``save_steps`` beyond any budget), a log line every 10 steps."""
    return {
        "per_device_train_batch_size": spec.batch,
        "learning_rate": spec.learning_rate,
        "seed": seed,
        "save_steps": 100000,
        "logging_steps": 10,
        "max_steps": steps,
    }


def student_config(
    name: str,
    out: Path,
    data: Path,
    spec: DemoSize,
    seed: int,
    *,
    start: Path,
    rope: Literal["mcg", "stock"],
    steps: int,
    rct: bool = False,
) -> RunConfig:
    """An SFT stage of the demo, trained into ``out/models/<name>``: the model folder ``start`` fine-tuned
    ``steps`` steps on the dataset folder ``data`` with position ids ``rope`` (``"mcg"`` or ``"stock"``);
    with ``rct``, reflective correction at the budget's rounds, sample and candidates."""
    from clinkd.train.config import DataConfig, ModelConfig, RCTConfig

    return stage_config(
        name,
        out / "models" / name,
        data=DataConfig(dir=str(data)),
        model=ModelConfig(path=str(start), rope=rope),
        train=train_settings(spec, seed, steps),
        rct=RCTConfig(
            enabled=True,
            rounds=spec.rct_rounds,
            sample_size=spec.rct_sample,
            num_candidates=spec.rct_candidates,
            max_new_tokens=spec.pseudo_max_new_tokens,
        )
        if rct
        else None,
    )


def distill_config(
    name: str, out: Path, data: Path, spec: DemoSize, seed: int, *, student: Path, teacher: Path
) -> RunConfig:
    """The demo's distillation stage, trained into ``out/models/<name>``: ``student`` (MCG-RoPE) learns from
    ``teacher``'s pseudo-labels on ``distill_subset`` of the training records, ``distill_steps`` steps."""
    from clinkd.train.config import DataConfig, DistillConfig, ModelConfig

    return stage_config(
        name,
        out / "models" / name,
        stage="distill",
        data=DataConfig(dir=str(data)),
        model=ModelConfig(path=str(student), rope="mcg"),
        distill=DistillConfig(
            teacher=str(teacher), subset=spec.distill_subset, max_new_tokens=spec.pseudo_max_new_tokens
        ),
        train=train_settings(spec, seed, spec.distill_steps),
    )


def demo_stages(
    out: Path, data: Path, spec: DemoSize, seed: int, *, student: Path, teacher: Path
) -> dict[str, RunConfig]:
    """The demo's training stages in the order they run, by the name their time is kept under: every
    student takes ``distill_steps + sft_steps`` steps from ``student`` (the rows with distillation spend
    ``distill_steps`` of them learning from ``teacher``). All are built, and so checked, before any trains."""
    budget = spec.distill_steps + spec.sft_steps
    distill = distill_config("distill", out, data, spec, seed, student=student, teacher=teacher)
    # the KD rows start from the distilled folder, named here: a recipe's ``@distill`` reference is only
    # load_run_configs' way of naming an earlier stage before its folder is known
    distilled = out / "models" / distill.name
    return {
        "baseline": student_config(
            "baseline", out, data, spec, seed, start=student, rope="stock", steps=budget
        ),
        "+ MCG-RoPE": student_config("mcg", out, data, spec, seed, start=student, rope="mcg", steps=budget),
        "distill": distill,
        "+ pseudo-KD": student_config(
            "kd-sft", out, data, spec, seed, start=distilled, rope="mcg", steps=spec.sft_steps
        ),
        "+ RCT": student_config(
            "kd-sft-rct", out, data, spec, seed, start=distilled, rope="mcg", steps=spec.sft_steps, rct=True
        ),
    }


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
    stages = demo_stages(out, data, spec, seed, student=student_base, teacher=teacher)
    trained = {key: clock.run(key, train_stage, console, cfg) for key, cfg in stages.items()}
    distilled = trained["distill"]
    models = {row["name"]: trained[row["name"]] for row in ROWS if row["name"] in trained}
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
