"""The one record model of the Med-VQA and report-generation benchmarks, and the checks every reader shares.

A reader turns a benchmark's distributed files into :class:`BenchRecord` objects and collects every
problem it meets as a :class:`~clinkd.data.formats.Problem` (file and record index), never raising on a
malformed record: :class:`BenchData` holds both. The checks here are the ones all five sets share:
typed fields, answer types, chat special tokens, repeated ids, image paths that must stay inside the
image root, and (for ``clinkd data check --benchmark``) images that must exist and decode.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinkd.data.check import image_problem, token_problems
from clinkd.data.formats import Problem, read_json
from clinkd.data.images import check_decoded_size, image_path
from clinkd.data.sample import ANSWER_TYPES
from clinkd.errors import DataError, ImageLoadError

KINDS: tuple[str, ...] = ("vqa", "report")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Answers that make a question closed when a set does not say (PathVQA): yes/no questions.
CLOSED_ANSWERS = frozenset({"yes", "no"})


@dataclass
class BenchRecord:
    """One question (VQA) or one study (report generation) of a benchmark.

    Attributes:
        id: the record id, unique in the benchmark (VQA-RAD/SLAKE ``qid``, R2Gen ``id``, PathVQA
            ``<split>-<row>``), as text.
        images: one or more image paths relative to the benchmark's image root (reports: every view).
        question: the question text; None for report generation.
        answer: the gold answer, or the gold report.
        answer_type: ``"closed"`` or ``"open"`` for VQA, None for reports.
        split: ``"train"``, ``"val"`` or ``"test"``.
        meta: the set's other fields worth keeping (SLAKE ``q_lang``/``modality``, MIMIC ``study_id``…).
        source: the file the record was read from, and ``index`` its index there (for messages).
    """

    id: str
    images: list[str]
    question: str | None
    answer: str
    answer_type: str | None
    split: str
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="", compare=False)
    index: int | None = field(default=None, compare=False)


@dataclass
class BenchData:
    """What a reader returns: the records, where their images are, and every problem found.

    ``embedded`` maps an image name (a path under ``image_root``) to its encoded bytes for sets that
    carry their images inside the data files (PathVQA's parquet release, read on demand:
    :class:`~clinkd.data.bench.pathvqa.ParquetImages`); conversion writes them out.
    """

    name: str
    image_root: Path
    records: list[BenchRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    embedded: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_split(self) -> dict[str, list[BenchRecord]]:
        """Records per split, in :data:`SPLITS` order (splits without records left out)."""
        out: dict[str, list[BenchRecord]] = {}
        for split in SPLITS:
            recs = [r for r in self.records if r.split == split]
            if recs:
                out[split] = recs
        return out

    def counts(self) -> dict[str, int]:
        return {split: len(recs) for split, recs in self.by_split().items()}

    def raise_first(self) -> BenchData:
        """``self`` when there is no problem, else a :class:`DataError` for the first one (with a count)."""
        if self.problems:
            p = self.problems[0]
            more = len(self.problems) - 1
            hint = (
                f" (and {more} more problem(s); run `clinkd data check --benchmark {self.name} PATH`)"
                if more
                else ""
            )
            raise DataError(p.message + hint, p.path, p.record)
        return self


class Fields:
    """Typed access to one record's fields, adding a :class:`Problem` for each bad one.

    >>> probs = []
    >>> f = Fields({"q": "Is it?", "n": 3}, "a.json", 0, probs)
    >>> f.text("q"), f.text("n", numbers=True), f.text("missing")
    ('Is it?', '3', None)
    >>> [str(p) for p in probs]
    ["a.json [record 0]: missing field 'missing'"]
    """

    def __init__(self, rec: dict, path: str, index: int | None, problems: list[Problem]):
        self.rec, self.path, self.index, self.problems = rec, path, index, problems

    def problem(self, message: str) -> None:
        self.problems.append(Problem(self.path, self.index, message))

    def has(self, key: str) -> bool:
        return key in self.rec

    def text(
        self, key: str, *, numbers: bool = False, required: bool = True, empty_ok: bool = False
    ) -> str | None:
        """The string at ``key`` (an integer or float too when ``numbers``: some sets write counting
        answers as JSON numbers), stripped of surrounding white space; None (and a problem when
        ``required``) when it is missing, of another type or empty."""
        if key not in self.rec:
            if required:
                self.problem(f"missing field {key!r}")
            return None
        value = self.rec[key]
        if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.problem(f"field {key!r} must be text, got {_type(value)}")
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.problem(f"field {key!r} is not valid text (a lone surrogate); fix its encoding")
            return None
        if not value.strip() and not empty_ok:
            self.problem(f"field {key!r} is empty")
            return None
        return value.strip()

    def ident(self, key: str) -> str | None:
        """An id: a non-empty string or an integer (not a boolean), as text."""
        if key not in self.rec:
            self.problem(f"missing field {key!r}")
            return None
        value = self.rec[key]
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.problem(f"field {key!r} must be a non-empty string or an integer, got {_shown(value)}")
        return None

    def answer_type(self, key: str = "answer_type") -> str | None:
        """``"closed"``/``"open"`` from ``CLOSED``/``OPEN`` (case and surrounding spaces ignored: the
        public VQA-RAD file spells a few with a trailing space)."""
        raw = self.text(key)
        if raw is None:
            return None
        value = raw.lower()
        if value not in ANSWER_TYPES:
            self.problem(f"unknown {key} {raw!r} (expected CLOSED or OPEN)")
            return None
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str | None:
        """The text at ``key`` when it is one of ``allowed``; else None and a problem."""
        value = self.text(key)
        if value is not None and value not in allowed:
            self.problem(f"unknown {key} {value!r} (expected one of {', '.join(allowed)})")
            return None
        return value

    def vqa_record(
        self, *, id_key: str, image_key: str, split: str | None, meta: tuple[str, ...]
    ) -> BenchRecord | None:
        """A Med-VQA record (id, one image, question, answer, answer type) read from this record's fields,
        each bad field a problem; None when any is unusable. ``split`` None: the caller sets it."""
        qid = self.ident(id_key)
        image = self.text(image_key)
        question = self.text("question")
        answer = self.text("answer", numbers=True)
        answer_type = self.answer_type()
        if qid is None or image is None or question is None or answer is None or answer_type is None:
            return None
        return BenchRecord(
            id=qid,
            images=[image],
            question=question,
            answer=answer,
            answer_type=answer_type,
            split=split or "train",
            meta=self.extra(meta),
            source=self.path,
            index=self.index,
        )

    def path_list(self, key: str) -> list[str] | None:
        """A non-empty list of image paths (strings)."""
        if key not in self.rec:
            self.problem(f"missing field {key!r}")
            return None
        value = self.rec[key]
        if not isinstance(value, list) or not value:
            self.problem(f"field {key!r} must be a non-empty list of image paths, got {_shown(value)}")
            return None
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(f"field {key!r} must hold image paths (non-empty strings), got {_shown(value)}")
            return None
        return [v.strip() for v in value]

    def extra(self, keys: tuple[str, ...]) -> dict[str, Any]:
        """The fields of ``keys`` that the record has, for :attr:`BenchRecord.meta`."""
        return {k: self.rec[k] for k in keys if k in self.rec}


def _type(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_json_list(
    path: Path, problems: list[Problem], *, what: str = "a JSON list of records"
) -> list | None:
    """The JSON list in ``path``, or None with a problem (bad JSON, not a list, missing file)."""
    try:
        data = read_json(path)
    except DataError as err:
        problems.append(Problem(str(path), None, err.reason))
        return None
    if not isinstance(data, list):
        problems.append(Problem(str(path), None, f"expected {what}, got {_type(data)}"))
        return None
    return data


def record_dicts(data: list, path: Path, problems: list[Problem]):
    """``(index, record)`` for each record of ``data`` that is a JSON object; a problem for the others."""
    for i, rec in enumerate(data):
        if isinstance(rec, dict):
            yield i, rec
        else:
            problems.append(Problem(str(path), i, f"record is {_type(rec)}, not an object"))


def text_problems(rec: BenchRecord) -> list[Problem]:
    """Chat special tokens in a record's question or answer (:func:`clinkd.data.check.token_problems`):
    the converted folder would be refused by training and inference."""
    out = []
    for where, text in (("question", rec.question), ("answer", rec.answer)):
        if text is not None:
            out += [Problem(rec.source, rec.index, f"{where} {m}") for m in token_problems(text)]
    return out


def check_paths(data: BenchData) -> None:
    """Refuse image paths leaving the image root (absolute, ``..``, symbolic links out): a problem for
    each, and the record dropped (it could never be loaded safely)."""
    kept = []
    for rec in data.records:
        bad = False
        for name in rec.images:
            if name in data.embedded:
                continue
            try:
                image_path(data.image_root, name)
            except DataError as err:
                data.problems.append(Problem(rec.source, rec.index, err.reason))
                bad = True
        if not bad:
            kept.append(rec)
    data.records = kept


def duplicate_problems(data: BenchData) -> None:
    """A problem for each record whose id repeats an earlier one's."""
    first: dict[str, BenchRecord] = {}
    for rec in data.records:
        if rec.id in first:
            prev = first[rec.id]
            where = prev.source if prev.source != rec.source else "this file"
            data.problems.append(
                Problem(
                    rec.source,
                    rec.index,
                    f"duplicate id {rec.id!r}: record {prev.index} of {where} has it too",
                )
            )
        else:
            first[rec.id] = rec


def bytes_problem(name: str, blob: bytes) -> str | None:
    """Why embedded image bytes cannot be used (None when they can): every pixel is decoded, within
    the decoded-size limits of :mod:`clinkd.data.images`."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as im:
                check_decoded_size(name, f"a {im.width} x {im.height} image", im.width * im.height)
                im.load()
    except ImageLoadError as err:
        return f"embedded image {name} cannot be decoded: {err.reason}"
    except Exception as err:
        return f"embedded image {name} cannot be decoded: {type(err).__name__}: {err}"
    return None


def image_problems(data: BenchData) -> None:
    """A problem for each missing or undecodable image (each image decoded once)."""
    cache: dict[str, str | None] = {}
    for rec in data.records:
        for name in rec.images:
            if name not in cache:
                if name in data.embedded:
                    cache[name] = bytes_problem(name, data.embedded[name])
                else:
                    cache[name] = image_problem(image_path(data.image_root, name))
            message = cache[name]
            if message is not None:
                data.problems.append(Problem(rec.source, rec.index, message))


def finish(data: BenchData, *, check_images: bool) -> BenchData:
    """The checks every reader ends with: text, paths, duplicates and (when asked) the images."""
    for rec in data.records:
        data.problems += text_problems(rec)
    check_paths(data)
    duplicate_problems(data)
    if check_images:
        image_problems(data)
    return data
