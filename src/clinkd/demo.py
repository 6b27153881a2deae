"""The one-command demo: the README's main job.

At this stage of the project the demo runs the data pipeline end to end on the built-in synthetic
Med-GRIT benchmark: generate it, validate it, count it and draw a gallery, then write ``results.md``
and ``results.json`` describing what was built. Training, inference and evaluation stages join the
demo as they land (issue 6 makes it the full ClinKD ablation).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from clinkd.errors import DataError


def run_demo(out: str | os.PathLike, *, seed: int = 0, n_images: int | None = None) -> dict:
    """Run the demo into folder ``out``; returns what it writes to ``results.json``."""
    from rich.console import Console

    from clinkd.data import synth
    from clinkd.data.check import check_path
    from clinkd.data.formats import read_dataset_dir
    from clinkd.data.gallery import make_gallery
    from clinkd.data.stats import dataset_stats, stats_table

    console = Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    seconds: dict[str, float] = {}

    console.rule("[b]1/3 synthetic Med-GRIT benchmark")
    t0 = time.perf_counter()
    kwargs = {"seed": seed, "progress": True}
    if n_images is not None:
        kwargs["n_images"] = n_images
    synth.generate(data_dir, **kwargs)
    seconds["synth"] = time.perf_counter() - t0

    console.rule("[b]2/3 validation and statistics")
    t0 = time.perf_counter()
    report = check_path(data_dir)
    if not report.ok:
        for p in report.problems[:20]:
            console.print(str(p))
        raise DataError(f"the generated benchmark has {len(report.problems)} problem(s)", data_dir)
    stats = dataset_stats(read_dataset_dir(data_dir))
    console.print(stats_table(stats, title="synthetic Med-GRIT (QA turns)"))
    seconds["check"] = time.perf_counter() - t0

    console.rule("[b]3/3 gallery")
    t0 = time.perf_counter()
    gallery = make_gallery(data_dir, out / "gallery.png", n=16, seed=seed)
    seconds["gallery"] = time.perf_counter() - t0

    results = {
        "stage": "data pipeline (training, inference and evaluation stages are not part of the demo yet)",
        "data_dir": str(data_dir),
        "gallery": str(gallery),
        "check": {"files": len(report.files), "records": report.n_records, "images": report.n_images, "problems": 0},
        "stats": stats,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    lines = [
        "# clinkd demo",
        "",
        f"Synthetic Med-GRIT benchmark in `{data_dir}` (seed {seed}); gallery: `{gallery.name}`.",
        "",
        f"Validation: {report.n_records} records in {len(report.files)} files, {report.n_images} images, no problems.",
        "",
        "| split | task | QA turns | images |",
        "|---|---|---:|---:|",
    ]
    for split, s in stats.items():
        for task, per_mod in s["by_task"].items():
            lines.append(f"| {split} | {task} | {sum(per_mod.values())} | |")
        lines.append(f"| {split} | all | {s['turns']} | {s['images']} |")
    lines += ["", "Wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()), ""]
    (out / "results.md").write_text("\n".join(lines), encoding="utf-8")
    console.print(f"wrote {out / 'results.md'}, {out / 'results.json'} and {gallery}")
    return results
