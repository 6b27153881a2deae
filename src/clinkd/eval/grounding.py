"""Boxes: extraction from text, IoU, and the two matching rules (protocol.md §4).

Boxes are ``(x1, y1, x2, y2)``, top-left then bottom-right, on the 0–1000 integer grid of the Qwen-VL
convention (floats are accepted and used as they are; no rescaling is done, both sides share a scale).

IoU convention: the published ``eval_VG.py`` computes areas as ``(x2 - x1) * (y2 - y1)`` on the raw
numbers — continuous area, **no +1 pixel** — and intersection as ``clip(min(br) - max(tl), 0)``. We
do the same. A degenerate union (``<= 0``, e.g. two zero-area boxes) gives IoU 0 here; the script
gets 0/0 = NaN there, which never passes ``> 0.5`` either, so the counts agree.

Extraction in the standard reading is the scripts' ``<box>(.*?)</box>`` (``.`` not crossing a newline)
and, when a response holds none, the fallback ``\\(\\d+,\\d+\\),\\(\\d+,\\d+\\)``. The tag scan is
written with ``str.find`` so it stays linear (the regex is quadratic on a megabyte of ``<box>``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from clinkd.data.boxes import BOX_TAGS

Box = tuple[float, float, float, float]

_FALLBACK = re.compile(r"\(\d+,\d+\),\(\d+,\d+\)")
_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")

STRICT_TAGS: tuple[tuple[str, str], ...] = BOX_TAGS
"""Box tags the strict reading accepts: Qwen-VL, Qwen2-VL and the ClinKD release (protocol.md, Files)."""


def find_tagged(text: str, open_tag: str = "<box>", close_tag: str = "</box>") -> list[str]:
    """All ``open(.*?)close`` contents, with ``.`` not matching ``\\n`` — the semantics of
    ``re.findall(r"<box>(.*?)</box>", text)`` — in linear time.

    >>> find_tagged("<box>(1,2),(3,4)</box> and <box>x\\n</box><box>(5,6),(7,8)</box>")
    ['(1,2),(3,4)', '(5,6),(7,8)']
    """
    out: list[str] = []
    pos, n_open = 0, len(open_tag)
    while True:
        start = text.find(open_tag, pos)
        if start == -1:
            return out
        body = start + n_open
        end = text.find(close_tag, body)
        if end == -1:
            return out  # no closing tag anywhere after: no later opening can match either
        newline = text.find("\n", body, end)
        if newline == -1:
            out.append(text[body:end])
            pos = end + len(close_tag)
        else:
            pos = newline + 1  # every opening before this newline fails the same way


def standard_box_strings(text: str) -> list[str]:
    """Box strings of the standard reading: ``<box>`` contents, else the bare-pair fallback."""
    found = find_tagged(text)
    if not found:
        found = _FALLBACK.findall(text)
    return found


def parse_box_standard(box: str) -> Box | None:
    """Parse like the scripts' ``get_float_bboxs``: drop ``(`` and ``)``, split on ``,``, ``float``
    each part. Anything but exactly four finite numbers is malformed (``None``) — the scripts then
    catch the error and score IoU 0, which is what a ``None`` box gets here.
    """
    parts = box.replace("(", "").replace(")", "").split(",")
    if len(parts) != 4:
        return None
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in vals):
        return None
    return vals  # type: ignore[return-value]


def strict_box_strings(text: str) -> list[str]:
    """Box strings of the strict reading: any of :data:`STRICT_TAGS`, else the fallback pattern."""
    found: list[str] = []
    for open_tag, close_tag in STRICT_TAGS:
        found.extend(find_tagged(text, open_tag, close_tag))
    if not found:
        found = _FALLBACK.findall(text)
    return found


def parse_box_lenient(box: str) -> Box | None:
    """Strict reading's parser: the four ASCII numbers in the string (spaces, signs, decimals
    allowed), or ``None`` unless there are exactly four."""
    nums = _NUMBER.findall(box)
    if len(nums) != 4:
        return None
    return tuple(float(v) for v in nums)  # type: ignore[return-value]


def iou(a: Box, b: Box) -> float:
    """IoU with continuous areas ``(x2 - x1) * (y2 - y1)`` (no +1), 0 when the union is not positive.

    >>> iou((0, 0, 10, 10), (5, 0, 15, 10))  # 50 / 150
    0.3333333333333333
    """
    return float(iou_matrix([a], [b])[0, 0])


def iou_matrix(boxes1: Sequence[Box | None], boxes2: Sequence[Box | None]) -> np.ndarray:
    """Pairwise IoU, shape ``(len(boxes1), len(boxes2))``; a ``None`` (malformed) box has IoU 0 with
    everything. Areas are computed as the scripts do, without ``abs``: an inverted box has a
    non-positive width or height, hence no intersection."""
    if len(boxes1) * len(boxes2) <= 16:  # the usual case: a few boxes; NumPy overhead dominates
        return np.array([[_iou_scalar(a, b) for b in boxes2] for a in boxes1], dtype=np.float64).reshape(
            len(boxes1), len(boxes2)
        )
    out = np.zeros((len(boxes1), len(boxes2)), dtype=np.float64)
    ok1 = [i for i, b in enumerate(boxes1) if b is not None]
    ok2 = [j for j, b in enumerate(boxes2) if b is not None]
    if not ok1 or not ok2:
        return out
    a = np.asarray([boxes1[i] for i in ok1], dtype=np.float64)  # (N, 4)
    b = np.asarray([boxes2[j] for j in ok2], dtype=np.float64)  # (M, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])  # (N,)
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # (M,)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    wh = np.clip(br - tl, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    out[np.ix_(ok1, ok2)] = vals
    return out


def _iou_scalar(a: Box | None, b: Box | None) -> float:
    """One IoU with exactly the operations of the vectorised path (same IEEE results)."""
    if a is None or b is None:
        return 0.0
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def many_to_one_found(ious: np.ndarray, threshold: float = 0.5) -> int:
    """Standard VG count: annotation boxes (rows) for which *any* predicted box (column) has
    IoU **strictly greater** than ``threshold`` (protocol.md §4; one prediction may serve many)."""
    if ious.size == 0:
        return 0
    return int((ious > threshold).any(axis=1).sum())


def one_to_one_match(ious: np.ndarray, threshold: float = 0.5) -> tuple[int, np.ndarray]:
    """Strict VG matching: the one-to-one assignment of annotation boxes (rows) to predicted boxes
    (columns) with the most pairs of IoU **>= threshold** (true positives, the COCO/VOC convention);
    among those, the one with the largest total IoU.

    Maximising total IoU alone can cost a match (issue 15): with IoUs ``[[0.95, 0.50], [0.50, 0.45]]``
    the diagonal has the larger total (1.40) but one pair at 0.5, the anti-diagonal two:

    >>> one_to_one_match(np.array([[0.95, 0.50], [0.50, 0.45]]))
    (2, array([0.5, 0.5]))

    Solved as one Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on the weights
    ``K * [IoU >= threshold] + IoU`` with ``K = min(rows, cols) + 1``: a pair over the threshold is
    worth more than any total IoU can add up to, so the assignment maximises the count first and the
    total IoU second.

    Returns ``(true_positives, assigned_iou)`` where ``assigned_iou[i]`` is the IoU of the prediction
    assigned to annotation box ``i`` (0 when none is); the strict reading's mean IoU is its sum over
    the annotation boxes.
    """
    n_gt = ious.shape[0]
    assigned = np.zeros(n_gt, dtype=np.float64)
    if ious.size == 0:
        return 0, assigned
    if ious.shape[0] == 1 or ious.shape[1] == 1:  # one row or column: the best pair is optimal
        flat = int(np.argmax(ious))
        rows, cols = np.unravel_index([flat], ious.shape)
    else:
        weights = (min(ious.shape) + 1.0) * (ious >= threshold) + ious  # (n_gt, n_pred)
        rows, cols = linear_sum_assignment(weights, maximize=True)
    assigned[rows] = ious[rows, cols]
    return int((assigned[rows] >= threshold).sum()), assigned
