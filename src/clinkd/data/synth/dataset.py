"""Write a synthetic dataset in the Med-GRIT format (issue 2), or just its texts.

Layout of ``out_dir``::

    images/<modality>_<nnnnn>.png      one image per index, numbered per modality
    train.json                         training form, 3–6 mixed-task turns per image
    test_VG.json test_RO.json          test form, one record per test image in each file
    test_GC.json test_MII.json

Images are split per modality into train and test (disjoint), so both splits cover all eight
modalities once there are at least two images of each. Every image ``k`` of modality number ``m``
draws from its own ``SeedSequence([seed, m, k])``: the bytes of an image and of its records do not
depend on how many other images are generated or in which order.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from clinkd.data import formats
from clinkd.data.sample import MODALITIES, TASKS, Sample, Turn, image_tag
from clinkd.data.synth import text
from clinkd.data.synth.render import render
from clinkd.data.synth.scene import SynthImage

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 480  # 60 per modality: a few seconds on two cores
TRAIN_TASK_WEIGHTS = {"VG": 0.3, "RO": 0.25, "GC": 0.25, "MII": 0.2}
PNG_OPTIONS: dict[str, Any] = {
    "format": "PNG",
    "compress_level": 3,
    "optimize": False,
}  # fixed: same input, same bytes


def plan(seed: int, n_images: int, test_fraction: float) -> list[tuple[str, int, str]]:
    """``(modality, index, split)`` for every image, modalities in :data:`MODALITIES` order.

    Images are shared out evenly over the modalities (the first ones get the remainder). Per modality,
    ``round(count * test_fraction)`` images go to test, at least one when the modality has two or more
    and ``test_fraction > 0``, and at least one stays in train when ``test_fraction < 1``.
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    out = []
    n_mod = len(MODALITIES)
    for mi, mod in enumerate(MODALITIES):
        count = n_images // n_mod + (1 if mi < n_images % n_mod else 0)
        n_test = round(count * test_fraction)
        if count >= 2 and test_fraction > 0:
            n_test = max(n_test, 1)
        if test_fraction < 1 and count >= 1:
            n_test = min(n_test, count - 1)
        order = np.random.default_rng([seed, mi, 7919]).permutation(count)
        test = set(order[:n_test].tolist())
        out += [(mod, k, "test" if k in test else "train") for k in range(count)]
    return out


def _rngs(seed: int, modality: str, k: int) -> tuple[np.random.Generator, np.random.Generator]:
    ss = np.random.SeedSequence([seed, MODALITIES.index(modality), k])
    image_ss, text_ss = ss.spawn(2)
    return np.random.default_rng(image_ss), np.random.default_rng(text_ss)


def _turn(si: SynthImage, task: str, target, rng: np.random.Generator) -> tuple[str, str]:
    if task == "VG":
        return text.vg(si, target, rng)
    if task == "RO":
        return text.ro(si, target, rng)
    if task == "GC":
        return text.gc(si, target, rng)
    return text.mii(si, rng)


def _targets(si: SynthImage, task: str) -> list:
    if task == "VG":
        return list(dict.fromkeys(o.name for o in si.objects))
    if task in ("RO", "GC"):
        return list(si.objects)
    return [None]


def _choose(si: SynthImage, task: str, rng: np.random.Generator):
    """A target for ``task``; findings are favoured (half the time when the image has one)."""
    options = _targets(si, task)
    lesions = [
        t for t in options if t is not None and text.kind_of(t if isinstance(t, str) else t.name) == "lesion"
    ]
    if lesions and rng.random() < 0.5:
        options = lesions
    return options[int(rng.integers(len(options)))]


def test_samples(si: SynthImage, image: str, rng: np.random.Generator) -> dict[str, Sample]:
    """One single-turn sample per task for a test image."""
    out = {}
    for task in TASKS:
        q, a = _turn(si, task, _choose(si, task, rng), rng)
        out[task] = Sample(
            id=Path(image).stem, image=image, turns=[Turn(image_tag(image) + "\n" + q, a)], task=task
        )
    return out


def train_sample(
    si: SynthImage, image: str, rng: np.random.Generator, tasks_out: list | None = None
) -> Sample:
    """A 3–6 turn sample mixing the tasks (no repeated question target, so at most one MII turn).

    The task of each turn is appended to ``tasks_out`` when given.
    """
    n_turns = int(rng.integers(3, 7))
    tasks, weights = list(TRAIN_TASK_WEIGHTS), np.array(list(TRAIN_TASK_WEIGHTS.values()))
    turns: list[Turn] = []
    seen = set()
    for _ in range(40):  # enough draws to find n_turns distinct targets (every image has >= 4)
        if len(turns) == n_turns:
            break
        task = tasks[int(rng.choice(len(tasks), p=weights / weights.sum()))]
        target = _choose(si, task, rng)
        key = (task, id(target) if task in ("RO", "GC") else target)
        if key in seen:
            continue
        seen.add(key)
        turns.append(Turn(*_turn(si, task, target, rng)))
        if tasks_out is not None:
            tasks_out.append(task)
    turns[0].question = image_tag(image) + "\n" + turns[0].question
    return Sample(id=Path(image).stem, image=image, turns=turns)


def _make(seed: int, mod: str, k: int, split: str, image_dir: Path | None):
    """Render image ``k`` of ``mod``, save it when ``image_dir`` is given, and write its records."""
    image_rng, text_rng = _rngs(seed, mod, k)
    si = render(mod, image_rng)
    name = f"{mod}_{k:05d}.png"
    if image_dir is not None:
        si.image.save(image_dir / name, **PNG_OPTIONS)
    if split == "train":
        tasks: list[str] = []
        return split, train_sample(si, name, text_rng, tasks), tasks
    return split, test_samples(si, name, text_rng), None


def _make_star(args):
    return _make(*args)


def _build(
    seed: int, n_images: int, test_fraction: float, image_dir: Path | None, progress: bool, workers: int = 1
):
    items = plan(seed, n_images, test_fraction)
    jobs = [(seed, mod, k, split, image_dir) for mod, k, split in items]
    if workers > 1 and len(jobs) >= 64:
        # Every image draws from its own seed, so the order of work does not change a byte; map()
        # gives results back in job order. Fork keeps start-up cheap (no re-import of numpy/scipy).
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(workers) as pool:
            results = list(_logged(pool.imap(_make_star, jobs, chunksize=8), len(jobs), progress))
    else:
        results = list(_logged(map(_make_star, jobs), len(jobs), progress))
    train: list[Sample] = []
    train_tasks: Counter = Counter()
    test: dict[str, list[Sample]] = {t: [] for t in TASKS}
    for split, samples, tasks in results:
        if split == "train":
            train.append(samples)
            train_tasks.update(tasks)
        else:
            for task, sample in samples.items():
                test[task].append(sample)
    return items, train, test, train_tasks


def _logged(results, total: int, progress: bool):
    for i, r in enumerate(results):
        if progress and (i + 1) % 100 == 0:
            log.info("rendered %d/%d images", i + 1, total)
        yield r


def generate(
    out_dir: str | PathLike,
    *,
    seed: int = 0,
    n_images: int = DEFAULT_IMAGES,
    test_fraction: float = 0.2,
    progress: bool = False,
    workers: int | None = None,
) -> dict:
    """Write a synthetic Med-GRIT dataset to ``out_dir`` and return a summary.

    The same arguments give the same bytes in every file. Existing files of the same names are
    overwritten; other files in ``out_dir`` are left alone.

    ``workers`` processes render the images (default: up to two, the CPUs there are); the output
    does not depend on it.

    Returns a dict with ``out_dir``, ``seed``, ``images`` (total), ``files`` (name -> path),
    ``splits`` (per split: images, records, turns, images per modality), ``tasks`` (per split:
    questions per task) and ``seconds`` (wall time).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    items, train, test, train_tasks = _build(seed, n_images, test_fraction, image_dir, progress, workers)
    files = {"train": formats.write_train_file(train, out / "train.json")}
    for task in TASKS:
        files[f"test_{task}"] = formats.write_test_file(test[task], out / f"test_{task}.json")
    summary = {
        "out_dir": str(out),
        "seed": seed,
        "images": len(items),
        "files": {k: str(v) for k, v in files.items()},
        "splits": {
            split: {
                "images": sum(1 for it in items if it[2] == split),
                "records": len(train) if split == "train" else sum(len(v) for v in test.values()),
                "turns": sum(len(s.turns) for s in train)
                if split == "train"
                else sum(len(v) for v in test.values()),
                "modalities": dict(Counter(it[0] for it in items if it[2] == split)),
            }
            for split in ("train", "test")
        },
        "tasks": {
            "train": {t: train_tasks.get(t, 0) for t in TASKS},
            "test": {t: len(test[t]) for t in TASKS},
        },
    }
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    if progress:
        log.info("wrote %d images to %s in %.1f s", len(items), out, summary["seconds"])
    return summary


def text_corpus(seed: int = 0, n_images: int = 400) -> list[str]:
    """Every question and answer string :func:`generate` would write for these arguments, in file
    order (train turns, then test records), followed by :func:`text.vocabulary` — all without writing
    a file. Meant for training the tokenizer of the tiny models on the generator's whole vocabulary.
    """
    _, train, test, _ = _build(seed, n_images, 0.2, None, False, min(2, os.cpu_count() or 1))
    out = [x for s in train for t in s.turns for x in (t.question, t.answer)]
    out += [x for task in TASKS for s in test[task] for t in s.turns for x in (t.question, t.answer)]
    return out + text.vocabulary()
