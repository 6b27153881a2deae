"""Validation of Med-GRIT files and dataset folders: every problem at once, each located.

``clinkd data check PATH`` reports bad JSON, missing fields, malformed conversations, unknown modalities,
unparseable, out-of-range or inverted boxes, and images that are missing or cannot be decoded, each with
its file and record index, and exits non-zero when there is any.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from clinkd.data.boxes import find_box_tags, parse_box_body
from clinkd.data.formats import Problem, find_dataset_files, parse_records, read_json
from clinkd.data.images import image_kind, load_image
from clinkd.data.sample import MODALITIES, Sample
from clinkd.errors import BoxParseError, DataError, ImageLoadError


@dataclass
class CheckReport:
    """The outcome of a check: what was read and every problem found."""

    files: list[str] = field(default_factory=list)
    n_records: int = 0
    n_images: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def sample_problems(sample: Sample) -> list[str]:
    """What is wrong with one sample's content (modality, boxes); empty when nothing."""
    out = []
    if sample.modality not in MODALITIES:
        out.append(
            f"unknown modality {sample.modality!r} from image name {sample.image!r} "
            f"(names must start with one of {', '.join(MODALITIES)} followed by '_')"
        )
    for t_i, turn in enumerate(sample.turns):
        for where, text in (("question", turn.question), ("answer", turn.answer)):
            for body in find_box_tags(text):
                try:
                    box, _ = parse_box_body(body)
                except BoxParseError as err:
                    out.append(f"turn {t_i} {where}: {err.reason}")
                    continue
                out += [f"turn {t_i} {where}: {p}" for p in box.problems()]
    return out


def image_problem(path: Path) -> str | None:
    """Why an image cannot be used (None when it can): missing, or not decodable."""
    if not path.is_file():
        return f"image not found: {path}"
    try:
        if image_kind(path) == "raster":
            with Image.open(path) as im:
                im.verify()  # checks the file's structure without decoding every pixel
        else:
            load_image(path)
    except (OSError, SyntaxError, ValueError, ImageLoadError) as err:
        reason = err.reason if isinstance(err, ImageLoadError) else f"{type(err).__name__}: {err}"
        return f"image cannot be decoded: {path}: {reason}"
    return None


def check_file(
    path: str | os.PathLike,
    image_dir: str | os.PathLike | None = None,
    *,
    check_images: bool = True,
    report: CheckReport | None = None,
    _image_cache: dict[Path, str | None] | None = None,
) -> CheckReport:
    """Check one data file; images are looked up in ``image_dir`` (default: ``images/`` beside it)."""
    path = Path(path)
    report = report or CheckReport()
    cache = {} if _image_cache is None else _image_cache
    report.files.append(str(path))
    try:
        data = read_json(path)
    except DataError as err:
        report.problems.append(Problem(str(path), None, err.reason))
        return report
    samples, problems = parse_records(data, path)
    report.problems += problems
    report.n_records += len(data) if isinstance(data, list) else 0
    if image_dir is None:
        image_dir = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    image_dir = Path(image_dir)
    # Records that failed to parse are absent from `samples`: map samples back to record indices.
    bad = {p.record for p in problems}
    indices = [i for i in range(len(data) if isinstance(data, list) else 0) if i not in bad]
    for idx, sample in zip(indices, samples):
        report.problems += [Problem(str(path), idx, m) for m in sample_problems(sample)]
        if check_images:
            img = image_dir / sample.image
            if img not in cache:
                cache[img] = image_problem(img)
                report.n_images += 1
            if cache[img] is not None:
                report.problems.append(Problem(str(path), idx, cache[img]))
    return report


def check_path(
    path: str | os.PathLike, image_dir: str | os.PathLike | None = None, *, check_images: bool = True
) -> CheckReport:
    """Check a data file, or every data file of a dataset folder."""
    path = Path(path)
    report = CheckReport()
    if not path.exists():
        report.problems.append(Problem(str(path), None, "no such file or folder"))
        return report
    if path.is_file():
        return check_file(path, image_dir, check_images=check_images, report=report)
    try:
        files = find_dataset_files(path)
    except DataError as err:
        report.problems.append(Problem(str(path), None, err.reason))
        return report
    all_files: Iterable[Path] = [*files.train, *files.test.values()]
    if not files.train and not files.test:
        report.problems.append(Problem(str(path), None, "no JSON data files in this folder"))
    cache: dict[Path, str | None] = {}
    for f in all_files:
        check_file(f, image_dir or files.image_dir, check_images=check_images, report=report, _image_cache=cache)
    return report
