"""Validation of Med-GRIT files and dataset folders: every problem at once, each located.

``clinkd data check PATH`` reports bad JSON, missing fields, malformed conversations, repeated record
ids, unknown modalities, unparseable, out-of-range or inverted boxes, unclosed or unbalanced box and ref
tags, chat special tokens in questions or answers, image paths that leave the image folder, and images
that are missing or cannot be decoded (every pixel, within the decoded-size limits of
:mod:`clinkd.data.images`), each with its file and record index, and exits non-zero when there is any.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from clinkd.data.boxes import DELIMITERS_RE, STYLES, find_box_tags, parse_box_body
from clinkd.data.formats import (
    BENCHMARK_MARKER,
    Problem,
    detect_format,
    find_dataset_files,
    parse_records,
    read_json,
)
from clinkd.data.images import image_path, image_size, verify_image
from clinkd.data.sample import MODALITIES, PRETRAINING_MODALITIES, Sample, special_tokens_in
from clinkd.errors import BoxParseError, DataError, ImageLoadError

# Every ref/box delimiter of every markup style, opening tag -> its closing tag.
_CLOSER: dict[str, str] = {o: c for ro, rc, bo, bc in STYLES.values() for o, c in ((ro, rc), (bo, bc))}
MAX_MARKUP_PROBLEMS = 3  # per text: a text of a million stray tags is one problem, not a million


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


def markup_problems(text: str) -> list[str]:
    """Unclosed, unopened, mismatched or nested ref/box tags in ``text`` (every style: ``<ref>``/``<box>``,
    ``<|object_ref_start|>``/``<|box_start|>``, ``<box_start>``); at most :data:`MAX_MARKUP_PROBLEMS`,
    then a count. Tags never nest: each opening tag is closed by its own closing tag before the next.

    >>> markup_problems("<ref>liver</ref><box>(1,2),(3,4)</box>")
    []
    >>> markup_problems("<ref>liver<box>(1,2),(3,4)</box>")
    ['<ref> is not closed before <box>']
    >>> markup_problems("<box>(1,2),(3,4)<|box_end|> </ref>")
    ['<box> is closed by <|box_end|> (expected </box>)', '</ref> closes nothing (no tag is open)']
    """
    out: list[str] = []
    open_tag: str | None = None
    for m in DELIMITERS_RE.finditer(text):
        tag = m.group(0)
        if tag in _CLOSER:
            if open_tag is not None:
                out.append(f"{open_tag} is not closed before {tag}")
            open_tag = tag
        elif open_tag is None:
            out.append(f"{tag} closes nothing (no tag is open)")
        else:
            if _CLOSER[open_tag] != tag:
                out.append(f"{open_tag} is closed by {tag} (expected {_CLOSER[open_tag]})")
            open_tag = None
    if open_tag is not None:
        out.append(f"{open_tag} is never closed")
    if len(out) > MAX_MARKUP_PROBLEMS:
        out = out[:MAX_MARKUP_PROBLEMS] + [f"and {len(out) - MAX_MARKUP_PROBLEMS} more tag problem(s)"]
    return out


def token_problems(text: str) -> list[str]:
    """Chat special tokens in one question or answer text (:func:`clinkd.data.sample.special_tokens_in`)."""
    tokens = special_tokens_in(text)
    if not tokens:
        return []
    return [
        f"holds chat special token(s) {', '.join(tokens)}, which would end or fake a chat turn; remove them"
    ]


def box_problems(text: str) -> list[str]:
    """Unparseable, out-of-range or inverted boxes in a text whose tags are balanced."""
    out = []
    for body in find_box_tags(text):
        try:
            box, _ = parse_box_body(body)
        except BoxParseError as err:
            out.append(err.reason)
            continue
        out += box.problems()
    return out


def sample_problems(sample: Sample, *, check_modality: bool = True) -> list[str]:
    """What is wrong with one sample's content (modality, special tokens, tags, boxes); empty when nothing.

    ``check_modality=False`` for a benchmark folder (`clinkd data import`): its image names (``synpic…``,
    ``CXR1_IM-0001/0.png``) never carry a Med-GRIT modality prefix, and nothing there is averaged by modality.

    The boxes of a text are parsed only when its tags are balanced: the markup problem is the one to fix
    first, and matching tag pairs across thousands of stray opening tags would take quadratic time.
    """
    out = []
    if check_modality and sample.modality not in MODALITIES and sample.modality not in PRETRAINING_MODALITIES:
        out.append(
            f"unknown modality {sample.modality!r} from image name {sample.image!r} "
            f"(names must start with one of {', '.join(MODALITIES)} followed by '_'; or, for pretraining "
            f"data, {', '.join(PRETRAINING_MODALITIES)})"
        )
    for t_i, turn in enumerate(sample.turns):
        for where, text in (("question", turn.question), ("answer", turn.answer)):
            found = token_problems(text) + (markup_problems(text) or box_problems(text))
            out += [f"turn {t_i} {where}: {p}" for p in found]
    return out


def image_problem(path: Path, decode: bool = True) -> str | None:
    """Why an image cannot be used (None when it can): missing, damaged, over the decoded-size limits, or
    not decodable — every pixel is decoded, as training will (:func:`clinkd.data.images.verify_image`).
    ``decode=False`` reads the header only (:func:`~clinkd.data.images.image_size`: what training checks
    of every image before its first step, cheaply)."""
    if not path.is_file():
        return f"image not found: {path}"
    try:
        verify_image(path) if decode else image_size(path)
    except ImageLoadError as err:
        return f"image cannot be {'decoded' if decode else 'read'}: {path}: {err.reason}"
    return None


def duplicate_ids(samples: Iterable[tuple[int, Sample]], fmt: str | None) -> dict[int, int]:
    """``{record index: index of the earlier record it repeats}`` for ``(record index, sample)`` pairs.

    In the training and ShareGPT forms a record holds every turn about its image, so a repeated id is a
    repeated record. In the test form the id is the image's name and a task file may ask several
    questions about one image: a record repeats another when it has the same id and the same question
    (it would be scored twice, or against two different answers).
    """
    first: dict[tuple[str, str], int] = {}
    out = {}
    for idx, sample in samples:
        key = (sample.id, sample.turns[0].question if fmt == "test" else "")
        if key in first:
            out[idx] = first[key]
        else:
            first[key] = idx
    return out


def check_file(
    path: str | os.PathLike,
    image_dir: str | os.PathLike | None = None,
    *,
    check_images: bool = True,
    report: CheckReport | None = None,
    _image_cache: dict[Path, str | None] | None = None,
) -> CheckReport:
    """Check one data file; images are looked up in ``image_dir`` (default: ``images/`` beside it). Every
    image of a sample is checked (a report study has several)."""
    path = Path(path)
    in_benchmark = (path.parent / BENCHMARK_MARKER).is_file()  # a folder `clinkd data import` wrote
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
    fmt = detect_format(data)
    with_ids = [(i, s) for i, s in zip(indices, samples) if fmt != "sharegpt" or "id" in data[i]]
    repeats = duplicate_ids(with_ids, fmt)
    for idx, sample in zip(indices, samples):
        report.problems += [
            Problem(str(path), idx, m) for m in sample_problems(sample, check_modality=not in_benchmark)
        ]
        if idx in repeats:
            what = "and question are" if fmt == "test" else "is"
            report.problems.append(
                Problem(
                    str(path),
                    idx,
                    f"duplicate record: its id {sample.id!r} {what} those "
                    f"of record {repeats[idx]}; remove it or give it its own id",
                )
            )
        for name in sample.images:
            try:
                img = image_path(image_dir, name)
            except DataError as err:
                report.problems.append(Problem(str(path), idx, err.reason))
                continue
            if check_images:
                if img not in cache:
                    cache[img] = image_problem(img)
                    report.n_images += 1
                problem = cache[img]
                if problem is not None:
                    report.problems.append(Problem(str(path), idx, problem))
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
    all_files: list[Path] = [*files.train, *files.test.values()]
    if (path / BENCHMARK_MARKER).is_file():  # a benchmark folder's splits beside train.json
        all_files += [path / n for n in ("val.json", "test.json") if (path / n).is_file()]
    if not files.train and not files.test:
        report.problems.append(Problem(str(path), None, "no JSON data files in this folder"))
    cache: dict[Path, str | None] = {}
    for f in all_files:
        check_file(
            f, image_dir or files.image_dir, check_images=check_images, report=report, _image_cache=cache
        )
    return report
