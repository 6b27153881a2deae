"""Resuming a prediction file without losing anything (issue 13): what an existing file may hold, what a
crash may have torn, and what run wrote it.

* :func:`inspect_prediction_file` — an existing ``--out`` must be a clinkd prediction file of the test
  file being answered: every complete line a record with the published fields, matching its test
  sample, no id twice. Only a torn last line (the beginning of a record a crash cut off) may be cut.
* :func:`run_identity` — what decides the records (model folder and weights, test file content, task,
  samples answered, selection and decoding settings), recorded under ``"run"`` in the side file
  ``<stem>.settings.json`` (:func:`settings_path`); a resume whose run differs is refused, saying what
  differs (:func:`run_differences`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from clinkd.data.sample import Sample
from clinkd.errors import ClinkdError, DataError
from clinkd.paths import file_sha256

__all__ = [
    "PUBLISHED_FIELDS",
    "FileState",
    "cut_to",
    "decoding_differences",
    "inspect_prediction_file",
    "model_identity",
    "read_done_ids",
    "read_settings",
    "repair_tail",
    "run_differences",
    "run_identity",
    "settings_path",
    "write_settings",
]

log = logging.getLogger(__name__)

#: The fields of a published prediction record (protocol.md §1), in the order clinkd writes them.
PUBLISHED_FIELDS: tuple[str, ...] = ("id", "image", "question", "annotation", "response")
# Every record clinkd writes starts with these bytes (json.dumps, "id" first): a torn line starts so too.
_RECORD_HEAD = b'{"id": '


def _is_int(value: Any) -> bool:
    """A whole number (NumPy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# -- the prediction file: what may be resumed, and what a crash may have torn --------------------------
@dataclass
class FileState:
    """What an existing prediction file holds (:func:`inspect_prediction_file`)."""

    done: set[int] = field(default_factory=set)  # ids of its complete records
    keep: int = 0  # bytes to keep: everything but a torn last line
    size: int = 0  # bytes now
    newline: bool = False  # the last complete record lacks its newline (add one before appending)

    @property
    def torn(self) -> int:
        """Bytes of a torn last line (cut before appending)."""
        return self.size - self.keep


def _looks_torn(line: bytes) -> bool:
    """A line a crash mid-write can leave: the beginning of a record as clinkd writes it (NUL bytes, which
    some file systems leave after a power loss, ignored)."""
    line = line.replace(b"\x00", b"")
    return line.startswith(_RECORD_HEAD) or _RECORD_HEAD.startswith(line)


def _record_problem(rec: Any) -> str | None:
    """Why a parsed line is not a published prediction record, or None."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    missing = [k for k in PUBLISHED_FIELDS if k not in rec]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if not _is_int(rec["id"]):
        return f"'id' must be an integer, got {rec['id']!r}"
    for k in PUBLISHED_FIELDS[1:]:
        if not isinstance(rec[k], str):
            return f"'{k}' must be a string, got {type(rec[k]).__name__}"
    return None


def _not_ours(path: Path, line_no: int, why: str) -> DataError:
    return DataError(
        f"not a clinkd prediction record ({why}); clinkd appends only to its own prediction files and "
        "changed nothing — give another --out, or move this file away",
        path,
        record=f"line {line_no}",
    )


def inspect_prediction_file(path: str | PathLike, samples: list[Sample] | None = None) -> FileState:
    """Check that ``path`` is a clinkd prediction file that may be resumed, and say what it holds.

    A missing or empty file holds nothing. Otherwise every complete line (blank lines aside) must be a
    JSON object with the published fields (:data:`PUBLISHED_FIELDS`, ``id`` an integer), no id may
    appear twice, and with ``samples`` (the test file's) every record must be its sample's: the same
    image name, question and annotation. Only the last line may be torn — the beginning of a record
    that a crash cut off (no newline, or not valid JSON) — and only it is marked to be cut
    (:attr:`FileState.keep`); a complete last record without its newline is kept.

    Raises :class:`~clinkd.errors.DataError` naming the file and the line; the file is only read.
    """
    path = Path(path)
    state = FileState()
    if not path.exists():
        return state
    if not path.is_file():
        raise ClinkdError(f"{path} is not a regular file; give a .jsonl file to write the predictions to")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read it: {err.strerror or err}", path) from None
    state.size = state.keep = len(data)
    lines = data.split(b"\n")  # the last item follows the last newline: b"" when the file ends with one
    first_line: dict[int, int] = {}
    filled = [k for k, line in enumerate(lines) if line.strip(b" \t\r\n")]
    for k in filled:
        line, line_no, is_last = lines[k], k + 1, k == filled[-1]
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if is_last and _looks_torn(line):
                state.keep = sum(len(x) + 1 for x in lines[:k])
                break
            raise _not_ours(path, line_no, f"not valid JSON: {err}") from None
        why = _record_problem(rec)
        if why is not None:
            raise _not_ours(path, line_no, why)
        rid = rec["id"]
        if rid in first_line:
            raise DataError(
                f"record id {rid} appears twice (lines {first_line[rid]} and {line_no}); this file was "
                "not written by one clinkd run — give another --out, or remove one copy",
                path,
                record=f"line {line_no}",
            )
        first_line[rid] = line_no
        if samples is not None:
            ok = 0 <= rid < len(samples)
            if ok:
                s = samples[rid]
                turn = s.turns[0]
                ok = (
                    rec["image"] == Path(s.image).name
                    and rec["question"] == turn.question
                    and rec["annotation"] == turn.answer
                )
            if not ok:
                raise DataError(
                    f"record id {rid} (image {rec['image']!r}) does not match the test file; was this "
                    "file written for another test file? Use another --out",
                    path,
                    record=f"line {line_no}",
                )
        state.done.add(rid)
        if k == len(lines) - 1:  # a whole record, its newline not yet written
            state.newline = True
    return state


def repair_tail(path: str | PathLike) -> int:
    """Cut a torn last record off a JSONL file; returns the number of bytes removed (0 when intact).

    A last line is torn when it is not valid JSON (a crash mid-write, with or without its newline) *and*
    begins as a clinkd record does (``{"id": ``); anything else is left alone, so an unrelated file never
    loses a byte here. Lines before it are not looked at (:func:`inspect_prediction_file` checks them).
    """
    path = Path(path)
    if not path.is_file():
        return 0
    data = path.read_bytes()
    keep = len(data)
    body = data[:-1] if data.endswith(b"\n") else data
    start = body.rfind(b"\n") + 1
    last = body[start:]
    if last.strip():
        try:
            json.loads(last.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if _looks_torn(last):
                keep = start
    return cut_to(path, keep)


def cut_to(path: Path, keep: int) -> int:
    """Truncate ``path`` to ``keep`` bytes (fsync-ed); the number of bytes removed."""
    removed = path.stat().st_size - keep if path.is_file() else 0
    if removed > 0:
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        log.warning("%s: removed a torn last record (%d bytes) before resuming", path, removed)
    return max(removed, 0)


def read_done_ids(path: str | PathLike, samples: list[Sample] | None = None) -> set[int]:
    """The ids of the complete records of a prediction file (:func:`inspect_prediction_file`'s checks;
    a torn last line is not counted)."""
    return inspect_prediction_file(path, samples).done


# -- what produced a prediction file -----------------------------------------------------------------
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_CONFIG_FILES = ("config.json", "adapter_config.json")


def model_identity(model: Any) -> dict[str, Any]:
    """What identifies a model cheaply: for a folder (or a model loaded from one), its path, the SHA-256
    of its config and the name, size and modification time of each weight file (retraining in place
    changes them; reading gigabytes of weights to digest them is not worth it here); for a model built in
    memory, its ``name_or_path`` and the digest of its config."""
    folder = model if isinstance(model, (str, PathLike)) else getattr(model, "name_or_path", None)
    if folder and Path(folder).is_dir():
        root = Path(folder).resolve()
        weights = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
        return {
            "path": str(root),
            "config_sha256": {n: file_sha256(root / n) for n in _CONFIG_FILES if (root / n).is_file()},
            "weights": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights],
        }
    config = getattr(model, "config", None)
    to_dict = getattr(config, "to_dict", None)
    text = json.dumps(to_dict(), sort_keys=True, default=str) if callable(to_dict) else ""
    return {"name_or_path": str(folder or ""), "config_sha256": hashlib.sha256(text.encode()).hexdigest()}


def run_identity(
    model: Any,
    test_file: Path,
    samples: list[Sample],
    *,
    task: str | None,
    image_dir: Path,
    select: str,
    candidates: int,
    temperature: float,
    top_p: float,
    box_weight: float,
    length_factor: float | None,
    max_new_tokens: int,
    seed: int,
    batch_size: int,
    box_style: str,
    question_box_style: str | None,
    min_pixels: int | None,
    max_pixels: int | None,
) -> dict[str, Any]:
    """What decides a prediction file's records, recorded under ``"run"`` in its side file.

    The model (:func:`model_identity`), the test file (path and SHA-256 of its bytes), the image folder,
    the task, how many samples are answered (``limit`` applied), and every selection and decoding setting
    the answers depend on — sampling settings and the seed for SASG only (greedy ignores them), the
    pixel budget as asked (``None``: the model's own). Paths are recorded for the reader; a resume
    compares contents (:func:`run_differences`), so a moved test file or model folder is the same run.
    """
    run: dict[str, Any] = {
        "model": model_identity(model),
        "test_file": {"path": str(test_file.resolve()), "sha256": file_sha256(test_file)},
        "image_dir": str(image_dir.resolve()),
        "task": task,
        "n_samples": len(samples),
        "select": select,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "box_style": box_style,
        "question_box_style": question_box_style,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    if select == "sasg":
        run.update(
            candidates=candidates,
            temperature=temperature,
            top_p=top_p,
            box_weight=box_weight,
            length_factor=length_factor,
            seed=seed,
        )
    return run


_ONLY_SHOWN = ("image_dir",)  # recorded, not compared: images are found by name in whatever folder is given
_LABELS = {
    "n_samples": "samples answered (--limit)",
    "max_new_tokens": "max new tokens",
    "select": "selection",
    "batch_size": "batch size (the batch grid)",
    "box_style": "box style",
    "question_box_style": "question box style",
    "min_pixels": "min pixels",
    "max_pixels": "max pixels",
    "length_factor": "length cap",
    "box_weight": "box weight",
    "top_p": "top-p",
    "greedy": "greedy decoding",
    "sampled": "sampling",
}


def run_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the run recorded in a side file and this one, one phrase each."""
    out = []
    om, nm = old.get("model") or {}, new.get("model") or {}
    if om.get("config_sha256") != nm.get("config_sha256"):
        was, now = (m.get("path") or m.get("name_or_path") for m in (om, nm))
        out.append(f"model config ({now}: its config changed)" if was == now else f"model ({was} → {now})")
    elif "weights" in om or "weights" in nm:
        was = {w[0]: w[1:] for w in om.get("weights") or []}
        now = {w[0]: w[1:] for w in nm.get("weights") or []}
        changed = sorted(n for n in set(was) | set(now) if was.get(n) != now.get(n))
        if changed:
            out.append(
                f"model weights ({', '.join(changed[:3])}: added, removed, or changed size or modification "
                "time)"
            )
    elif om.get("name_or_path") != nm.get("name_or_path"):
        out.append(f"model ({om.get('name_or_path')!r} → {nm.get('name_or_path')!r})")
    ot, nt = old.get("test_file") or {}, new.get("test_file") or {}
    if ot.get("sha256") != nt.get("sha256"):
        was, now = ot.get("path"), nt.get("path")
        out.append(
            f"test file content ({now} changed)" if was == now else f"test file content ({was} → {now})"
        )
    # keys only one side has are the SASG ones when the selection differs (said once, as "selection")
    keys = [k for k in sorted(set(old) & set(new)) if k not in ("model", "test_file", *_ONLY_SHOWN)]
    return out + [_change(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def _change(key: str, was: Any, now: Any) -> str:
    """``label (was → now)``; for two dicts (decoding settings) only the fields that differ."""
    if isinstance(was, dict) and isinstance(now, dict):
        fields = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        return (
            f"{_LABELS.get(key, key)} ("
            + ", ".join(f"{k} {was.get(k)!r} → {now.get(k)!r}" for k in fields)
            + ")"
        )
    return f"{_LABELS.get(key, key)} ({was!r} → {now!r})"


def settings_path(out: str | PathLike) -> Path:
    """The settings side file of a prediction file: ``pred_VG.jsonl`` → ``pred_VG.settings.json``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.settings.json")


def read_settings(path: Path, in_use: bool) -> dict[str, Any] | None:
    """The side file's content, None when there is none. A file that is not a clinkd settings file is
    refused (it is never overwritten); an unreadable one too when ``in_use`` (its prediction file holds
    records it speaks for)."""
    if not path.exists():
        return None
    if not path.is_file():
        raise ClinkdError(f"settings side file {path} is not a regular file; move it away")
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        if in_use:
            raise DataError(
                f"cannot read this settings side file ({err}); it records what produced the records of "
                f"{path.name.replace('.settings.json', '')}. Delete it to resume without that check, or "
                "give another --out",
                path,
            ) from None
        data = None
    if not (isinstance(data, dict) and "select" in data and "greedy" in data):
        raise DataError(
            "not a clinkd settings side file, and clinkd would write its prediction settings here; "
            "move it away or give another --out",
            path,
        )
    return data


# The decoding record's fields that decide the answers (compared once the model is loaded)
_DECODING_KEYS = (
    "select",
    "greedy",
    "sampled",
    "box_style",
    "batch_size",
    "min_pixels",
    "max_pixels",
    "box_convention",
    "questions_converted",
)
_SASG_KEYS = ("seed", "candidates", "length_factor", "box_weight")


def decoding_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the decoding record of a side file and this run's (the fields that decide the
    answers; the SASG ones for SASG only), one phrase each."""
    keys = _DECODING_KEYS + (_SASG_KEYS if new.get("select") == "sasg" else ())
    return [_change(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def write_settings(out: Path, settings: dict[str, Any]) -> None:
    """Write the side file atomically (a crash leaves the old one or the new one)."""
    path = settings_path(out)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
