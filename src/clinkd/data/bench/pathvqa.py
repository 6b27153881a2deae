"""PathVQA (He et al., 2020, arXiv:2003.10286): 32,799 questions on 4,998 pathology images.

Read form: the parquet release on the Hugging Face hub (``flaviagiammarino/path-vqa``; its dataset
page lists the splits train 19.7k, validation 6.26k and test 6.72k rows and the columns ``image``,
``question``, ``answer``), as ``datasets`` writes it::

    ROOT/data/train-00000-of-0000N.parquet      (or the parquet files directly in ROOT,
    ROOT/data/validation-00000-of-0000N.parquet  or ROOT/<split>/*.parquet as the hub's
    ROOT/data/test-00000-of-0000N.parquet        refs/convert/parquet branch lays them out)

Columns: ``image`` — a struct ``{bytes: binary, path: string}`` (the ``datasets`` Image feature; the
encoded JPEG is in ``bytes``, ``path`` is the original file name or null; a row with no bytes names a
file under ROOT in ``path``), ``question`` and ``answer`` (strings). The rows carry no id: a record's
id is ``<split>-<row>`` counted over the split's files in name order.

Answer type: PathVQA has no answer_type field; a question whose gold answer is ``yes`` or ``no`` is
``closed``, every other one ``open`` (the yes/no vs open-ended division the PathVQA paper reports).

The original release (``qas/<split>/<split>_qa.pkl`` and ``images/<split>/*.jpg``) is Python pickle:
unpickling runs code chosen by whoever wrote the file, so pickle files are refused, never opened.
No JSON release of the whole set was found, so none is read.

Images stay in the parquet files: reading streams each file in batches and keeps, per distinct image, only
where it is (file and row) and a digest (:class:`ParquetImages`, :attr:`BenchData.embedded`); its bytes are
read again when the image is checked or written out by :func:`clinkd.data.bench.convert.convert_benchmark`,
one row group at a time. The whole set (about 5,000 images) is never held in memory.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from clinkd.data.bench.records import CLOSED_ANSWERS, SPLITS, BenchData, BenchRecord, finish
from clinkd.data.formats import Problem

NAME = "pathvqa"
SPLIT_NAMES: dict[str, str] = {"train": "train", "validation": "val", "val": "val", "test": "test"}
PICKLE_SUFFIXES = (".pkl", ".pickle", ".p")
COLUMNS = ("image", "question", "answer")
IMAGE_DIR = "images"  # where conversion writes the embedded images, under the output folder
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_SPLIT_OF_FILE = re.compile(r"^(train|validation|val|test)(?:[-_.].*)?$")


def _split_of(path: Path, root: Path) -> str | None:
    """The split a parquet file holds, from its name (``train-00000-of-00002``) or its folder."""
    m = _SPLIT_OF_FILE.match(path.stem)
    if m:
        return SPLIT_NAMES[m.group(1)]
    parent = path.parent.name
    return SPLIT_NAMES.get(parent) if path.parent != root else None


def find_files(root: Path) -> tuple[list[Path], list[Path]]:
    """``(parquet files, pickle files)`` under ``root`` (at most three folders deep)."""
    parquet, pickles = [], []
    for depth in ("*", "*/*", "*/*/*"):
        for p in sorted(root.glob(depth)):
            if p.is_file() and p.suffix == ".parquet":
                parquet.append(p)
            elif p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES:
                pickles.append(p)
    return parquet, pickles


def image_name(split: str, path: str | None, blob: bytes) -> str:
    """A file name for embedded image bytes: ``<split>/<original name>`` when the row names a plain
    file, else ``<split>/<sha256 of the bytes, 16 hex>.<jpg|png>``; always inside the image folder."""
    if path:
        base = PurePosixPath(path.replace("\\", "/")).name
        if _SAFE_NAME.match(base) and base not in (".", ".."):
            return f"{split}/{base}"
    ext = "png" if blob[:8] == b"\x89PNG\r\n\x1a\n" else "jpg"
    return f"{split}/{hashlib.sha256(blob).hexdigest()[:16]}.{ext}"


#: rows per batch while streaming a parquet file (the bytes of at most this many images in memory at once)
BATCH_ROWS = 256


class ParquetImages(Mapping[str, bytes]):
    """Image name → its encoded bytes, read on demand from the parquet row that holds it.

    Reading a row group's image column at a time, and keeping the last one, makes a pass in file order
    (the order names were added) read each row group once.
    """

    def __init__(self) -> None:
        self._where: dict[str, tuple[Path, int, str]] = {}  # name → (file, row, sha256 of the bytes)
        self._files: dict[
            Path, tuple[Any, list[int]]
        ] = {}  # file → (its ParquetFile, each row group's first row)
        self._cached: tuple[Path, int, Any] | None = None  # (file, row group, its image column)

    def add(self, name: str, path: Path, row: int, digest: str) -> None:
        self._where[name] = (path, row, digest)

    def digest(self, name: str) -> str:
        return self._where[name][2]

    def __getitem__(self, name: str) -> bytes:
        path, row, _ = self._where[name]
        if path not in self._files:  # the footer read once per file
            import pyarrow.parquet as pq

            parquet_file = pq.ParquetFile(path)
            meta = parquet_file.metadata
            starts = list(
                itertools.accumulate(
                    (meta.row_group(g).num_rows for g in range(meta.num_row_groups)), initial=0
                )
            )
            self._files[path] = (parquet_file, starts[:-1])
        parquet_file, starts = self._files[path]
        group = bisect.bisect_right(starts, row) - 1
        if self._cached is None or self._cached[:2] != (path, group):
            column = parquet_file.read_row_group(group, columns=["image"]).column("image")
            self._cached = (path, group, column)
        return self._cached[2][row - starts[group]].as_py()["bytes"]

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def read_pathvqa(root: str | os.PathLike, *, check_images: bool = False) -> BenchData:
    """Read PathVQA's parquet files under ``root``, collecting every problem (pickles are refused)."""
    root = Path(root)
    data = BenchData(NAME, root)
    if not root.is_dir():
        data.problems.append(Problem(str(root), None, "no such folder (expected the PathVQA parquet folder)"))
        return data
    parquet, pickles = find_files(root)
    for p in pickles:
        data.problems.append(
            Problem(
                str(p),
                None,
                "a Python pickle file: refused, never opened (unpickling runs whatever code the file's "
                "author chose). Use the parquet release (Hugging Face flaviagiammarino/path-vqa) instead",
            )
        )
    if not parquet:
        data.problems.append(
            Problem(
                str(root), None, "no .parquet files here (expected data/{train,validation,test}-*.parquet)"
            )
        )
        return data
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        data.problems.append(Problem(str(root), None, "reading parquet needs pyarrow: pip install pyarrow"))
        return data
    rows_seen: dict[str, int] = {}
    images = ParquetImages()
    found = []
    for path in parquet:
        split = _split_of(path, root)
        if split is None:
            data.problems.append(
                Problem(
                    str(path), None, "cannot tell the split from the name (train-*, validation-*, test-*)"
                )
            )
        else:
            found.append((SPLITS.index(split), path, split))
    for _, path, split in sorted(found):  # train, val, test; a split's files in name order
        data.files.append(path)
        start = rows_seen.get(split, 0)
        i = 0
        try:
            parquet_file = pq.ParquetFile(path)
            missing = [c for c in COLUMNS if c not in parquet_file.schema_arrow.names]
            if missing:
                data.problems.append(Problem(str(path), None, f"missing column(s): {', '.join(missing)}"))
                continue
            for batch in parquet_file.iter_batches(batch_size=BATCH_ROWS, columns=list(COLUMNS)):
                for row in batch.to_pylist():  # at most BATCH_ROWS images' bytes alive at once
                    rec = _record(row, split, start + i, path, i, data, images)
                    if rec is not None:
                        data.records.append(rec)
                    i += 1
        except Exception as err:  # pyarrow's errors for damaged files have no common base class
            data.problems.append(Problem(str(path), None, f"not a readable parquet file: {err}"))
        rows_seen[split] = start + i
    data.embedded = images
    return finish(data, check_images=check_images)


def _record(
    row: dict, split: str, number: int, path: Path, i: int, data: BenchData, images: ParquetImages
) -> BenchRecord | None:
    bad = []
    question, answer, image = row.get("question"), row.get("answer"), row.get("image")
    for key, value in (("question", question), ("answer", answer)):
        if not isinstance(value, str):
            bad.append(
                f"column {key!r} must be text, got {'null' if value is None else type(value).__name__}"
            )
        elif not value.strip():
            bad.append(f"column {key!r} is empty")
    name = None
    if not isinstance(image, dict):
        bad.append("column 'image' must be a struct {bytes, path}")
    else:
        blob, ipath = image.get("bytes"), image.get("path")
        if isinstance(blob, bytes) and blob:
            digest = hashlib.sha256(blob).hexdigest()
            name = image_name(split, ipath if isinstance(ipath, str) else None, blob)
            if name in images and images.digest(name) != digest:  # two different images of one name
                name = image_name(split, None, blob)
            if name not in images:
                images.add(name, path, i, digest)
        elif isinstance(ipath, str) and ipath.strip():
            name = ipath.strip()  # a file under ROOT (checked by the shared path check)
        else:
            bad.append("the image has neither bytes nor a path")
    if bad or not isinstance(question, str) or not isinstance(answer, str) or name is None:
        # the last three only narrow the types: ``bad`` already holds a message for each of them
        data.problems += [Problem(str(path), i, m) for m in bad]
        return None
    answer = answer.strip()
    return BenchRecord(
        id=f"{split}-{number:05d}",
        images=[name],
        question=question.strip(),
        answer=answer,
        answer_type="closed" if answer.lower() in CLOSED_ANSWERS else "open",
        split=split,
        source=str(path),
        index=i,
    )
