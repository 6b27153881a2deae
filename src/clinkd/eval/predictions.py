"""Prediction records, the JSONL reader and task detection from file names.

A prediction file holds one JSON object per line, in the published Med-GRIT format (protocol.md §1):
``{"id", "image", "question", "annotation", "response"}``. ``id`` is the sample's index in the test
file and ``image`` the image file name, whose part before the first ``_`` is the modality (§3).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from clinkd.data.sample import MODALITIES, TASKS, modality_of, tasks_named
from clinkd.errors import DataError

T = TypeVar("T")

# TASKS (the four Med-GRIT tasks), MODALITIES (the eight modalities every standard mean is taken over, in
# the published scripts' order) and modality_of are clinkd.data.sample's: one definition each.
__all__ = [
    "MODALITIES",
    "TASKS",
    "Prediction",
    "as_prediction",
    "group_by_modality",
    "modality_of",
    "read_predictions",
    "task_from_filename",
]

_REQUIRED = ("id", "image", "annotation", "response")


@dataclass(frozen=True)
class Prediction:
    """One scored answer: the test sample (``id``, ``image``, ``question``, ``annotation``) and the
    model's raw ``response`` (cleaning happens at scoring time, see :mod:`clinkd.eval.cleaning`)."""

    id: int | str
    image: str
    question: str
    annotation: str
    response: str

    @property
    def modality(self) -> str:
        """:func:`~clinkd.data.sample.modality_of`: ``image.split("_")[0]`` as the published scripts take it
        (case kept) on the file names they write, folders left out (``images/ct_1.png`` is ``ct``, not
        ``images/ct``, which no mean would count)."""
        return modality_of(self.image)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Prediction:
        """Build from a mapping; raises ``ValueError`` naming the first bad field.

        ``response: null`` is read as an empty answer (a model that produced nothing is scored, not
        rejected); every other field must have the published type.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        missing = [k for k in _REQUIRED if k not in record]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        pid = record["id"]
        if isinstance(pid, bool) or not isinstance(pid, (int, str)):
            raise ValueError(f"'id' must be an integer or a string, got {type(pid).__name__}")
        response = record["response"]
        if response is None:
            response = ""
        question = record.get("question", "")
        question = "" if question is None else question
        for name, value in (
            ("image", record["image"]),
            ("annotation", record["annotation"]),
            ("response", response),
            ("question", question),
        ):
            if not isinstance(value, str):
                raise ValueError(f"'{name}' must be a string, got {type(value).__name__}")
        return cls(
            id=pid,
            image=record["image"],
            question=question,
            annotation=record["annotation"],
            response=response,
        )


def as_prediction(item: Prediction | Mapping[str, Any]) -> Prediction:
    """Accept a :class:`Prediction` or a plain dict with the same fields."""
    return item if isinstance(item, Prediction) else Prediction.from_dict(item)


def read_predictions(
    path: str | PathLike,
    skip_invalid: bool = False,
    *,
    skipped: list[tuple[int, str]] | None = None,
    lines: list[int] | None = None,
) -> list[Prediction]:
    """Read a JSONL prediction file.

    Args:
        path: the file.
        skip_invalid: when False (default) a malformed line raises :class:`DataError` naming the file
            and the 1-based line number (``err.path``, ``err.record``); when True it is left out and, if ``skipped`` is a list,
            ``(line_no, reason)`` is appended to it.
        skipped: optional list collecting the skipped lines.
        lines: optional list collecting the 1-based line number of each prediction returned.

    Blank lines are ignored (they are not records). Lines are decoded as UTF-8; undecodable bytes make
    the line invalid.
    """
    return read_jsonl_records(
        path, lambda record, line_no: Prediction.from_dict(record), skip_invalid, skipped=skipped, lines=lines
    )


def read_jsonl_records(
    path: str | PathLike,
    parse: Callable[[Any, int], T],
    skip_invalid: bool = False,
    *,
    skipped: list[tuple[int, str]] | None = None,
    lines: list[int] | None = None,
) -> list[T]:
    """The records of a JSONL prediction file, each line's JSON value turned into a ``T`` by
    ``parse(value, line_no)``: the one reader of prediction files (:func:`read_predictions` for the
    Med-GRIT protocol, :mod:`clinkd.eval.benchmark` for the other benchmarks).

    ``parse`` raises ``ValueError`` for a malformed record: a line that is not UTF-8, not JSON or that
    ``parse`` refuses is skipped with ``skip_invalid`` (``(line_no, reason)`` appended to ``skipped``) or
    raises :class:`DataError` naming the file and line. Any other error of ``parse`` (a
    :class:`~clinkd.errors.ClinkdError` for a record that must never be skipped) propagates.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise DataError("not a prediction file (a folder or a special file); give JSONL files", path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read prediction file: {err.strerror or err}", path) from err
    out: list[T] = []
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            out.append(parse(record, line_no))
            if lines is not None:
                lines.append(line_no)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
            reason = f"line {line_no} is not a valid prediction record ({_short(err)})"
            if not skip_invalid:
                raise DataError(
                    reason + "; fix the line or pass --skip-invalid", path, record=line_no
                ) from err
            if skipped is not None:
                skipped.append((line_no, reason))
    return out


def _short(err: Exception) -> str:
    text = str(err)
    return text if len(text) <= 200 else text[:200] + "…"


def task_from_filename(path: str | PathLike) -> str:
    """The task named in a file name: VG, RO, GC or MII as a token (split on non-alphanumerics,
    case-insensitive, folders left out), e.g. ``pred_VG.jsonl``, ``test_MII_pred.jsonl``, ``test_mii.json``
    — :func:`clinkd.data.sample.task_from_name`'s rules.

    Raises :class:`DataError` when no task or more than one task is named.
    """
    found = tasks_named(path)
    if len(found) == 1:
        return found[0]
    what = "names no task" if not found else f"is ambiguous (names {', '.join(found)})"
    raise DataError(
        f"the file name {what}; pass --task VG|RO|GC|MII (or rename the file so that "
        "exactly one of VG, RO, GC, MII appears as a '_'-separated token)",
        path,
    )


def group_by_modality(preds: Iterable[Prediction]) -> dict[str, list[int]]:
    """Indices of the predictions per modality, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(preds):
        groups.setdefault(p.modality, []).append(i)
    return groups
