"""Clinical efficacy (CE) of generated radiology reports: CheXpert-observation precision, recall and F1.

The report-generation papers label every generated and every gold report with a CheXpert labeller
(the rule-based CheXpert labeler, or CheXbert) for the 14 CheXpert observations, then compare the two
label matrices. The convention, as the R2Gen family computes it (``compute_ce.py`` of zhjohnchan/R2Gen,
checked at commit c87ef8f): a blank label (not mentioned) counts 0, an uncertain one (``-1``) counts 0,
a positive one (``1``) counts 1; precision, recall and F1 are **micro-averaged** over all
(report, observation) cells of the 14 columns, ``No Finding`` included (scikit-learn's
``average="micro"``: one pooled count of true positives, false positives and false negatives; a ratio
with a zero denominator is 0, as scikit-learn returns by default). Macro averages and per-observation
scores are given beside them.

No labeller ships with clinkd and none can be downloaded at run time, so CE is computed only when the
user names a local one (``clinkd eval --labeller "COMMAND"``): :func:`run_labeller` writes the reports
to a CSV with one column ``Report Impression`` (CheXbert's input form; header row, one report a row),
runs the command, and reads back the CSV it writes, whose columns include the 14 observations by name
(the order does not matter; other columns are ignored). In the command, ``{input}`` is that CSV,
``{input_no_header}`` the same reports without the header row (the rule-based CheXpert labeler's
``--reports_path`` form), ``{output}`` the CSV path to write, ``{output_dir}`` an empty folder where the labeller may write one
CSV of any name (CheXbert's ``-o``). The command is split like a shell line (``shlex``) but run without
a shell.

>>> ce_scores([[1, 0] + [0] * 12], [[1, 1] + [0] * 12])["precision"]
0.5
"""

from __future__ import annotations

import csv
import math
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from clinkd.errors import ClinkdError, DataError

OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 CheXpert observations, as the labellers' output columns spell them (CheXpert labeler order)."""

INPUT_COLUMN = "Report Impression"
"""The one column of the CSV the labeller reads (CheXbert's ``label.py -d``)."""

UNAVAILABLE = (
    "clinical efficacy needs a CheXpert labeller (CheXpert labeler or CheXbert), which clinkd does not "
    'ship and cannot download; pass --labeller "COMMAND with {input} and {output}" to run a local one'
)


def binarize(labels: ArrayLike) -> np.ndarray:
    """Labeller values to 0/1 as the R2Gen family counts them: ``1`` → 1; ``0``, ``-1`` (uncertain)
    and blank (NaN) → 0. ``(n, 14) -> (n, 14)`` integers."""
    return (np.asarray(labels, dtype=float) == 1).astype(np.int64)


def ce_scores(gold: ArrayLike, pred: ArrayLike) -> dict[str, Any]:
    """CE of labelled reports: ``gold`` and ``pred`` are ``(n, 14)`` labeller values (1, 0, -1, NaN) in
    :data:`OBSERVATIONS` order.

    Returns ``precision``, ``recall``, ``f1`` (micro, the headline), ``precision_macro``,
    ``recall_macro``, ``f1_macro`` and ``per_observation`` ``{name: {precision, recall, f1, support}}``.

    >>> s = ce_scores([[1] + [0] * 13, [0, 1] + [0] * 12], [[1] + [0] * 13, [1] + [0] * 13])
    >>> s["precision"], s["recall"], round(s["f1"], 4)  # tp 1, fp 1, fn 1
    (0.5, 0.5, 0.5)
    """
    g, p = binarize(gold), binarize(pred)
    if g.shape != p.shape or g.ndim != 2 or g.shape[1] != len(OBSERVATIONS):
        raise ValueError(f"expected two (n, {len(OBSERVATIONS)}) label matrices, got {g.shape} and {p.shape}")
    tp = (g & p).sum(axis=0)
    fp = ((1 - g) & p).sum(axis=0)
    fn = (g & (1 - p)).sum(axis=0)
    micro = _prf(int(tp.sum()), int(fp.sum()), int(fn.sum()))
    per = {
        name: {**_prf(int(a), int(b), int(c)), "support": int(a + c)}
        for name, a, b, c in zip(OBSERVATIONS, tp, fp, fn)
    }
    return {
        **micro,
        **{f"{k}_macro": float(np.mean([v[k] for v in per.values()])) for k in ("precision", "recall", "f1")},
        "per_observation": per,
    }


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def run_labeller(command: str, reports: Sequence[str], what: str = "reports") -> np.ndarray:
    """Label ``reports`` with a local labeller command; ``(n, 14)`` values (1, 0, -1, NaN).

    ``what`` names the reports in errors (``generated reports``, ``gold reports``). Raises
    :class:`~clinkd.errors.ClinkdError` when the command is not a valid template, cannot start, exits
    with a non-zero status or writes nothing, and :class:`~clinkd.errors.DataError` (naming the file and
    line) when its CSV lacks observation columns, has the wrong number of rows or an unreadable value.
    """
    check_command(command)
    with tempfile.TemporaryDirectory(prefix="clinkd-labeller-") as tmp:
        folder = Path(tmp)
        src, out, out_dir = folder / "reports.csv", folder / "labelled.csv", folder / "out"
        bare = folder / "reports_no_header.csv"
        out_dir.mkdir()
        for path, header in ((src, True), (bare, False)):
            with path.open("w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                if header:
                    writer.writerow([INPUT_COLUMN])
                writer.writerows([r] for r in reports)
        fill = {
            "{input_no_header}": str(bare),
            "{input}": str(src),
            "{output}": str(out),
            "{output_dir}": str(out_dir),
        }
        argv = []
        for arg in shlex.split(command):
            for key, value in fill.items():
                arg = arg.replace(key, value)
            argv.append(arg)
        try:
            proc = subprocess.run(argv, capture_output=True, check=False)
        except OSError as err:
            raise ClinkdError(f"--labeller: cannot run {argv[0]!r} ({err.strerror or err})") from err
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip()[-800:]
            raise ClinkdError(
                f"--labeller exited with status {proc.returncode} on the {what}"
                + (f":\n{tail}" if tail else "")
            )
        if "{output}" in command:
            if not out.is_file():
                raise ClinkdError(f"--labeller wrote no file at {{output}} for the {what}")
            result = out
        else:
            found = sorted(p for p in out_dir.rglob("*.csv") if p.is_file())
            if len(found) != 1:
                raise ClinkdError(
                    f"--labeller should write one CSV file into {{output_dir}} for the {what}, wrote "
                    f"{len(found)}"
                )
            result = found[0]
        return read_labels(result, len(reports), what=what)


def check_command(command: str) -> None:
    """Refuse a labeller command without ``{input}``/``{input_no_header}`` or without
    ``{output}``/``{output_dir}``, or one that does not split (unbalanced quotes)."""
    has_input = "{input}" in command or "{input_no_header}" in command
    if not has_input or ("{output}" not in command and "{output_dir}" not in command):
        raise ClinkdError(
            "--labeller must contain {input} (the reports CSV clinkd writes; {input_no_header}: the same "
            "without its header row) and {output} (the labelled CSV to write) or {output_dir} (a folder to "
            f"write it into); got {command!r}"
        )
    try:
        parts = shlex.split(command)
    except ValueError as err:
        raise ClinkdError(f"--labeller {command!r} does not split into words: {err}") from err
    if not parts:
        raise ClinkdError("--labeller is empty")


def read_labels(path: Path, n: int, what: str = "reports") -> np.ndarray:
    """The 14 observation columns of a labelled CSV, ``(n, 14)``; blank cells are NaN."""
    label = f"labelled CSV of the {what}"
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read the {label}: {err}", path) from err
    if not rows:
        raise DataError(f"the {label} is empty", path)
    header = [h.strip() for h in rows[0]]
    missing = [o for o in OBSERVATIONS if o not in header]
    if missing:
        raise DataError(
            f"the {label} lacks the CheXpert column(s) {', '.join(missing)} (its header: {', '.join(header)})",
            path,
            record="line 1",
        )
    cols = [header.index(o) for o in OBSERVATIONS]
    body = rows[1:]
    if len(body) != n:
        raise DataError(
            f"the {label} has {len(body)} rows for {n} reports; it must keep one row per report", path
        )
    out = np.full((n, len(OBSERVATIONS)), np.nan)
    for i, row in enumerate(body):
        for j, c in enumerate(cols):
            cell = row[c].strip() if c < len(row) else ""
            if cell == "":
                continue
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if value not in (1.0, 0.0, -1.0):
                raise DataError(
                    f"{OBSERVATIONS[j]} is {cell!r}; a label must be 1, 0, -1 or blank",
                    path,
                    record=f"line {i + 2}",
                )
            out[i, j] = value
    return out
