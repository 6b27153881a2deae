"""Readers and writers for the three file forms of Med-GRIT data (protocol.md, "Files").

- ``test``: a JSON list of ``{"id": "<image name without .png>", "conversations": [[question, answer]]}``,
  one file per task (``..._VG...json`` etc.); converted benchmarks add ``"answer_type"`` and
  ``"benchmark"`` (:data:`~clinkd.data.sample.META_KEYS`, kept in :attr:`Sample.meta` and written back).
- ``train``: the ClinKD release's training form, ``{"id", "conversations": [{"from": "user"|"assistant",
  "value"}, ...]}`` with several turns.
- ``sharegpt``: LLaMA-Factory's form, ``{"images": ["<id>.png"], "messages": [{"role", "content"}]}`` with
  the image written ``<image>`` in the text, plus a ``dataset_info.json`` entry describing the columns;
  several images (report studies) take one ``<image>`` each, in order.

A sample of several images (issue 16) writes them as several ``<img>`` tags at the start of its first
question; :attr:`Sample.images` lists them in order.

Every reader returns :class:`~clinkd.data.sample.Sample` objects; every writer takes them. Reading and
writing the same form reproduces the file's records exactly (writers use ``indent=1``,
``ensure_ascii=False``). Structural problems raise :class:`~clinkd.errors.DataError` naming the file and
the record; :func:`parse_records` collects them all instead, for ``clinkd data check``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clinkd.data.boxes import Style, convert_markup
from clinkd.data.images import image_path
from clinkd.data.sample import (
    IMG_TAG_RE,
    TASKS,
    Sample,
    Turn,
    check_meta,
    image_tag,
    strip_image_tags,
    task_from_name,
)
from clinkd.errors import DataError

Format = Literal["test", "train", "sharegpt"]
FORMATS: tuple[str, ...] = ("test", "train", "sharegpt")
_USER = {"user", "human"}
_ASSISTANT = {"assistant", "gpt"}
SHAREGPT_IMAGE_TOKEN = "<image>"
#: What `clinkd data import` writes beside train.json (clinkd.data.bench.convert): not training data
BENCHMARK_MARKER = "benchmark.json"
BENCHMARK_FILES = frozenset({BENCHMARK_MARKER, "test.json", "val.json"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data file: where it is and what it is."""

    path: str
    record: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.record is None else f"{self.path} [record {self.record}]"
        return f"{where}: {self.message}"


# -- JSON -------------------------------------------------------------------------------------------
def read_json(path: str | os.PathLike) -> Any:
    """Load a JSON file. Anything that is not one — a folder, an unreadable, empty or non-UTF-8 file, bad
    JSON (with its line and column), nesting too deep for the parser, a number too long to convert —
    raises :class:`DataError` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a JSON data file", path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", path) from None
    except UnicodeDecodeError as err:
        raise DataError(
            f"not UTF-8 text ({err.reason} at byte {err.start}); save the file as UTF-8", path
        ) from None
    except OSError as err:
        raise DataError(f"cannot read the file: {err.strerror or err}", path) from None
    if not text.strip():
        raise DataError("the file is empty (expected a JSON list of records)", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}", path) from None
    except RecursionError:
        raise DataError(
            "JSON nested too deeply to read (records are at most a few levels deep)", path
        ) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise DataError(f"invalid JSON: {err}", path) from None


def _dump(obj: Any, path: Path) -> None:
    """Write JSON atomically (a temporary file renamed into place: a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def detect_format(data: Any) -> Format | None:
    """Guess the form of loaded JSON from its first record (None when it is none of the three)."""
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    first = data[0]
    if "messages" in first:
        return "sharegpt"
    conv = first.get("conversations")
    if isinstance(conv, list) and conv:
        if isinstance(conv[0], list):
            return "test"
        if isinstance(conv[0], dict):
            return "train"
    return None


# -- records -> samples -----------------------------------------------------------------------------
def _is_text(value: Any) -> bool:
    """A string that can be written back as UTF-8 (JSON's ``\\ud800`` escapes give lone surrogates that
    cannot)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_speaker(who: Any, want: set[str], where: str, rule: str) -> None:
    """Refuse a speaker (a message's ``from`` or ``role``) not in ``want``: ``where`` says which message
    (``"messages[1] has role"``), ``rule`` what is expected. A list or an object is refused, not looked up."""
    if not isinstance(who, str) or who not in want:
        kind = "" if isinstance(who, str) else f" (a {type(who).__name__}, not a string)"
        raise ValueError(f"{where} {_shown(who)}{kind}; {rule}")


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about values of any size."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_id(value: Any) -> bool:
    """A record id: a string or an integer (not a boolean)."""
    return _is_text(value) or (isinstance(value, int) and not isinstance(value, bool))


def _from_test(rec: dict, task: str | None) -> Sample:
    rid, conv = rec["id"], rec["conversations"]
    if not _is_text(rid):
        raise ValueError(f"'id' must be a string, got {type(rid).__name__}")
    if not isinstance(conv, list) or not conv:
        raise ValueError("'conversations' must be a non-empty list of [question, answer] pairs")
    turns = []
    for i, pair in enumerate(conv):
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_text(x) for x in pair)):
            raise ValueError(f"conversations[{i}] must be [question, answer] strings (UTF-8 text)")
        turns.append(Turn(pair[0], pair[1]))
    images = strip_image_tags(turns[0].question)[1] or [f"{rid}.png"]
    meta = check_meta(rec)
    return Sample(id=rid, image=images[0], turns=turns, task=task, images=images, meta=meta)


def _from_train(rec: dict) -> Sample:
    rid, conv = rec["id"], rec["conversations"]
    if not _is_id(rid):
        raise ValueError(f"'id' must be a string or an integer, got {type(rid).__name__}")
    if not isinstance(conv, list) or not conv:
        raise ValueError("'conversations' must be a non-empty list of {from, value} messages")
    turns = []
    for i, msg in enumerate(conv):
        if not (isinstance(msg, dict) and _is_text(msg.get("value")) and "from" in msg):
            raise ValueError(f"conversations[{i}] must be {{'from': ..., 'value': str}}")
        want = _USER if i % 2 == 0 else _ASSISTANT
        _check_speaker(
            msg["from"], want, f"conversations[{i}] is from", "turns must alternate user, assistant"
        )
        if i % 2 == 1:
            turns.append(Turn(conv[i - 1]["value"], msg["value"]))
    if len(conv) % 2:
        raise ValueError("the last user message has no assistant answer")
    images = strip_image_tags(turns[0].question)[1] or [f"{rid}.png"]
    return Sample(id=str(rid), image=images[0], turns=turns, images=images)


def _from_sharegpt(rec: dict) -> Sample:
    msgs, images = rec["messages"], rec.get("images") or []
    if not isinstance(images, list) or not images or not all(_is_text(x) for x in images):
        raise ValueError("'images' must be a non-empty list of image paths")
    image = images[0]
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("'messages' must be a non-empty list")
    for i, msg in enumerate(msgs):
        if not (isinstance(msg, dict) and _is_text(msg.get("content")) and "role" in msg):
            raise ValueError(f"messages[{i}] must be {{'role': ..., 'content': str}}")
        want = _USER if i % 2 == 0 else _ASSISTANT
        _check_speaker(msg["role"], want, f"messages[{i}] has role", "roles must alternate user, assistant")
    if len(images) > 1:
        # LLaMA-Factory's rule: one <image> token per image, in order (a single image keeps the old,
        # lenient reading below: the first token of each user message, or none)
        tokens = sum(m["content"].count(SHAREGPT_IMAGE_TOKEN) for m in msgs[::2])
        if tokens != len(images):
            raise ValueError(
                f"'images' lists {len(images)} image paths but the user messages hold {tokens} "
                f"{SHAREGPT_IMAGE_TOKEN} token(s); give one token per image"
            )
    left = iter(images)
    turns = []
    for i, msg in enumerate(msgs):
        if i % 2 == 1:
            question = msgs[i - 1]["content"]
            if len(images) == 1:
                question = question.replace(SHAREGPT_IMAGE_TOKEN, image_tag(image), 1)
            else:
                parts = question.split(SHAREGPT_IMAGE_TOKEN)
                question = parts[0] + "".join(image_tag(next(left)) + p for p in parts[1:])
            turns.append(Turn(question, msg["content"]))
    if len(msgs) % 2:
        raise ValueError("the last user message has no assistant answer")
    rid = rec.get("id", Path(image).stem)
    if not _is_id(rid):
        raise ValueError(f"'id' must be a string or an integer, got {type(rid).__name__}")
    return Sample(id=str(rid), image=image, turns=turns, images=list(images))


def parse_records(
    data: Any, path: str | os.PathLike, fmt: Format | None = None, task: str | None = None
) -> tuple[list[Sample], list[Problem]]:
    """Turn loaded JSON into samples, collecting a :class:`Problem` for every bad record."""
    path = str(path)
    if not isinstance(data, list):
        return [], [Problem(path, None, f"expected a JSON list of records, got {type(data).__name__}")]
    fmt = fmt or detect_format(data)
    if fmt is None:
        msg = "cannot tell the file's form (test, train or sharegpt) from its first record"
        return [], [Problem(path, None, msg if data else "the file holds no records")]
    if fmt == "test" and task is None:
        task = task_from_name(path)
    need = {"test": ("id", "conversations"), "train": ("id", "conversations"), "sharegpt": ("messages",)}[fmt]
    samples, problems = [], []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            problems.append(Problem(path, i, f"record is a {type(rec).__name__}, not an object"))
            continue
        missing = [k for k in need if k not in rec]
        if missing:
            problems.append(Problem(path, i, f"missing field(s): {', '.join(missing)}"))
            continue
        try:
            if fmt == "test":
                samples.append(_from_test(rec, task))
            elif fmt == "train":
                samples.append(_from_train(rec))
            else:
                samples.append(_from_sharegpt(rec))
        except ValueError as err:
            problems.append(Problem(path, i, str(err)))
    return samples, problems


def read_samples(path: str | os.PathLike, fmt: Format | None = None, task: str | None = None) -> list[Sample]:
    """Read a test, train or ShareGPT file (form detected unless given). Raises on the first problem."""
    samples, problems = parse_records(read_json(path), path, fmt, task)
    if problems:
        p = problems[0]
        more = (
            f" (and {len(problems) - 1} more problem(s); run `clinkd data check {path}`)"
            if len(problems) > 1
            else ""
        )
        raise DataError(p.message + more, p.path, p.record)
    return samples


# -- samples -> records -----------------------------------------------------------------------------
def _restyle(text: str, style: Style | None) -> str:
    return text if style is None else convert_markup(text, style)


def to_records(samples: Iterable[Sample], fmt: Format, box_style: Style | None = None) -> list[dict]:
    """Samples as JSON-ready records of the given form; ``box_style`` rewrites box/ref markup."""
    out = []
    for s in samples:
        qa = [(_restyle(t.question, box_style), _restyle(t.answer, box_style)) for t in s.turns]
        if fmt == "test":
            out.append({"id": s.id, "conversations": [[q, a] for q, a in qa], **check_meta(s.meta)})
        elif fmt == "train":
            conv = []
            for q, a in qa:
                conv += [{"from": "user", "value": q}, {"from": "assistant", "value": a}]
            out.append({"id": s.id, "conversations": conv})
        elif fmt == "sharegpt":
            msgs: list[dict[str, str]] = []
            several = len(s.images) > 1  # every tag of the first question becomes a token, in order
            for q, a in qa:
                q = IMG_TAG_RE.sub(SHAREGPT_IMAGE_TOKEN, q, count=0 if several else 1) if not msgs else q
                msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            missing = len(s.images) - msgs[0]["content"].count(SHAREGPT_IMAGE_TOKEN)
            if missing > 0:
                msgs[0]["content"] = SHAREGPT_IMAGE_TOKEN * missing + msgs[0]["content"]
            out.append({"id": s.id, "messages": msgs, "images": list(s.images)})
        else:
            raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    return out


def write_test_file(
    samples: Iterable[Sample], path: str | os.PathLike, box_style: Style | None = None
) -> Path:
    path = Path(path)
    _dump(to_records(samples, "test", box_style), path)
    return path


def write_train_file(
    samples: Iterable[Sample], path: str | os.PathLike, box_style: Style | None = None
) -> Path:
    path = Path(path)
    _dump(to_records(samples, "train", box_style), path)
    return path


def write_sharegpt(
    samples: Iterable[Sample],
    path: str | os.PathLike,
    *,
    dataset_name: str | None = None,
    box_style: Style | None = None,
) -> Path:
    """Write LLaMA-Factory ShareGPT records and add/refresh their entry in ``dataset_info.json`` beside."""
    path = Path(path)
    _dump(to_records(samples, "sharegpt", box_style), path)
    info_path = path.parent / "dataset_info.json"
    info = read_json(info_path) if info_path.exists() else {}
    info[dataset_name or path.stem] = {
        "file_name": path.name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    }
    _dump(info, info_path)
    return path


def write_samples(
    samples: Iterable[Sample], path: str | os.PathLike, fmt: Format, box_style: Style | None = None
) -> Path:
    if fmt == "test":
        return write_test_file(samples, path, box_style)
    if fmt == "train":
        return write_train_file(samples, path, box_style)
    if fmt == "sharegpt":
        return write_sharegpt(samples, path, box_style=box_style)
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")


# -- dataset folders --------------------------------------------------------------------------------
@dataclass
class DatasetFiles:
    """The files of a dataset folder: training files and one test file per task."""

    root: Path
    image_dir: Path
    train: list[Path] = field(default_factory=list)
    test: dict[str, Path] = field(default_factory=dict)


def find_dataset_files(root: str | os.PathLike) -> DatasetFiles:
    """Locate the files of a dataset folder as ``clinkd data synth`` writes it, or real Med-GRIT files.

    JSON files whose name names a task (``test_VG.json``, ``MedGRIT_test_RO.json``) are test files;
    other JSON files except ``dataset_info.json`` are training files. Images live in ``root/images`` when
    that folder exists, else in ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a folder (expected a dataset folder as `clinkd data synth` writes it)", root)
    image_dir = root / "images" if (root / "images").is_dir() else root
    files = DatasetFiles(root=root, image_dir=image_dir)
    # a folder of `clinkd data import` (benchmark.json beside): its test.json and val.json are not training data
    skip = {"dataset_info.json"} | (BENCHMARK_FILES if (root / BENCHMARK_MARKER).is_file() else set())
    for p in sorted(root.glob("*.json")):
        if p.name in skip:
            continue
        task = task_from_name(p.name)
        if task is not None:
            if task in files.test:
                raise DataError(f"two test files for task {task}: {files.test[task].name} and {p.name}", root)
            files.test[task] = p
        else:
            files.train.append(p)
    return files


@dataclass
class Dataset:
    """A dataset folder read into samples."""

    files: DatasetFiles
    train: list[Sample]
    test: dict[str, list[Sample]]
    #: for each training sample, the file and record index it was read from (for error messages)
    train_origin: list[tuple[Path, int]] = field(default_factory=list)

    @property
    def image_dir(self) -> Path:
        return self.files.image_dir

    def image_path(
        self, sample: Sample, source: str | os.PathLike | None = None, record: int | str | None = None
    ) -> Path:
        """The file of ``sample``'s image; a path leaving the image folder raises :class:`DataError`
        (naming ``source`` and ``record`` when given), see :func:`clinkd.data.images.image_path`."""
        return image_path(self.image_dir, sample.image, source, record)

    def image_paths(
        self, sample: Sample, source: str | os.PathLike | None = None, record: int | str | None = None
    ) -> list[Path]:
        """The files of every image of ``sample`` (:attr:`Sample.images`), checked as :meth:`image_path`."""
        return [image_path(self.image_dir, name, source, record) for name in sample.images]


def read_dataset_dir(root: str | os.PathLike) -> Dataset:
    """Read every training and test file of a dataset folder (see :func:`find_dataset_files`)."""
    files = find_dataset_files(root)
    train, origin = [], []
    for p in files.train:
        samples = read_samples(p)
        train += samples
        origin += [(p, i) for i in range(len(samples))]
    test = {t: read_samples(files.test[t], task=t) for t in TASKS if t in files.test}
    return Dataset(files=files, train=train, test=test, train_origin=origin)
