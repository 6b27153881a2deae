"""A benchmark as a clinkd dataset folder, so that ``clinkd train --data DIR`` runs on it unchanged.

``convert_benchmark(name, src, out)`` writes::

    DIR/train.json       Med-GRIT training form: [{"id", "conversations": [{"from": "human", "value":
                         "<img>A</img><img>B</img>\\n<question>"}, {"from": "gpt", "value": <answer>}]}]
    DIR/val.json         the same form, for the validation split (sets that have one)
    DIR/test.json        Med-GRIT test form plus two keys: [{"id", "conversations": [[question, gold]],
                         "answer_type": "closed"|"open" (VQA only), "benchmark": <name>}]
    DIR/benchmark.json   {"benchmark", "kind", "source" (absolute path), "counts": {split: records},
                         "instruction" (report sets)}
    DIR/images           a symbolic link to the set's image root (nothing copied); PathVQA's parquet
                         images are written into a real DIR/images/<split>/ folder instead

Every image of a record becomes one ``<img>…</img>`` tag at the start of the first question, in the
record's order (IU X-Ray: frontal, then lateral). Report records get :data:`REPORT_INSTRUCTION` as the
question. Record ids are ``<benchmark>-<id>``.

The image paths are checked against ``DIR/images`` by :func:`clinkd.data.images.image_path`, which
resolves symbolic links: through the link, ``DIR/images/a.jpg`` resolves to ``SRC/.../a.jpg``, inside
the resolved image folder, so it is accepted; a link inside the source that points out of it is still
refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from clinkd.data.bench.records import BenchData, BenchRecord
from clinkd.data.images import image_path
from clinkd.data.sample import image_tag
from clinkd.errors import ClinkdError

#: The one question every report-generation sample is asked.
REPORT_INSTRUCTION = "Write the findings and impression of this chest X-ray study."
OUTPUT_FILES = ("train.json", "val.json", "test.json", "benchmark.json", "images")


def question_text(rec: BenchRecord) -> str:
    """The first user turn: one image tag per image, a newline, then the question (or the instruction).

    >>> question_text(BenchRecord("1", ["a/0.png", "a/1.png"], None, "Normal.", None, "test"))
    '<img>a/0.png</img><img>a/1.png</img>\\nWrite the findings and impression of this chest X-ray study.'
    """
    tags = "".join(image_tag(name) for name in rec.images)
    return f"{tags}\n{rec.question if rec.question is not None else REPORT_INSTRUCTION}"


def train_record(rec: BenchRecord, name: str) -> dict:
    return {
        "id": f"{name}-{rec.id}",
        "conversations": [
            {"from": "human", "value": question_text(rec)},
            {"from": "gpt", "value": rec.answer},
        ],
    }


def test_record(rec: BenchRecord, name: str) -> dict:
    out: dict = {"id": f"{name}-{rec.id}", "conversations": [[question_text(rec), rec.answer]]}
    if rec.answer_type is not None:
        out["answer_type"] = rec.answer_type
    out["benchmark"] = name
    return out


def _dump(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _prepare(out: Path, force: bool) -> None:
    """Create ``out``; refuse a folder holding anything unless ``force``, and even then refuse to replace
    a real ``images`` folder by a link (it may hold the user's files: remove it yourself)."""
    from clinkd.paths import output_dir

    output_dir(out, force=force, what="--out folder")
    for name in ("train.json", "val.json", "test.json"):
        (out / name).unlink(missing_ok=True)  # a stale split of an earlier conversion must not remain


def _link_images(out: Path, image_root: Path) -> None:
    link = out / "images"
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise ClinkdError(
            f"{link} is a real folder; remove it (or choose another --out) so that it can become a link "
            f"to the benchmark's images {image_root}"
        )
    os.symlink(image_root.resolve(), link, target_is_directory=True)


def _write_images(out: Path, data: BenchData) -> None:
    """Write the embedded images (and copy any named by path) into a real ``out/images`` folder."""
    folder = out / "images"
    if folder.is_symlink():
        folder.unlink()
    names = {n for r in data.records for n in r.images}
    # embedded images in the order the data files hold them (each row group read once), then the rest
    ordered = [n for n in data.embedded if n in names] + sorted(names.difference(data.embedded))
    for name in ordered:
        dst = image_path(folder, name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if name in data.embedded:
            blob = data.embedded[name]
            if not (dst.is_file() and dst.stat().st_size == len(blob) and dst.read_bytes() == blob):
                dst.write_bytes(blob)
        else:
            shutil.copyfile(image_path(data.image_root, name), dst)


def convert_benchmark(
    name: str, src: str | os.PathLike, out: str | os.PathLike, *, force: bool = False, **read_options
) -> dict:
    """Read benchmark ``name`` from ``src`` (refusing it with a :class:`~clinkd.errors.DataError` on its
    first problem: run ``clinkd data check --benchmark`` for all of them) and write the dataset folder
    ``out``. Returns the summary written to ``benchmark.json``."""
    from clinkd.data.bench import get_benchmark, read_benchmark

    bench = get_benchmark(name)
    data = read_benchmark(name, src, **read_options).raise_first()
    if not data.records:
        raise ClinkdError(f"{src}: no {name} records to convert")
    out = Path(out)
    _prepare(out, force)
    if data.embedded:
        _write_images(out, data)
    else:
        _link_images(out, data.image_root)
    splits = data.by_split()
    files = {}
    for split, recs in splits.items():
        if split == "test":
            path = out / "test.json"
            _dump([test_record(r, name) for r in recs], path)
        else:
            path = out / f"{split}.json"
            _dump([train_record(r, name) for r in recs], path)
        files[split] = path.name
    summary = {
        "benchmark": name,
        "kind": bench.kind,
        "source": str(Path(src).resolve()),
        "counts": {s: len(r) for s, r in splits.items()},
        "files": files,
    }
    if bench.kind == "report":
        summary["instruction"] = REPORT_INSTRUCTION
    _dump(summary, out / "benchmark.json")
    return summary
