"""A contact sheet of a dataset folder: images with their boxes and labels drawn, captioned.

Works on any folder :func:`clinkd.data.formats.read_dataset_dir` reads (synthetic or real Med-GRIT), and
any image :func:`clinkd.data.images.load_image` reads (within its decoded-size limits); a record whose
image path leaves the image folder is refused, naming its file and record.
What is drawn for a sample, turn by turn: the boxes of the answer with the name of the ``<ref>``
before them (VG, MII), and, when the answer has no box, the box of the question labelled with the
answer (RO: the name; GC: the object a caption names when it names one the synthetic generator
knows, else the start of the caption).
"""

# no ``from __future__ import annotations``: this module's function :func:`annotations` would rebind the
# name (harmless at run time, a redefinition for type checkers); its annotations all evaluate on 3.10
import logging
import math
import re
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clinkd.data.boxes import (
    ANY_TAG,
    BOX_CLOSE,
    BOX_OPEN,
    REF_TAGS,
    Box,
    paired,
    parse_box_body,
    parse_boxes,
    tempered,
)
from clinkd.data.draw import draw_annotations, font
from clinkd.data.formats import read_dataset_dir
from clinkd.data.images import load_image
from clinkd.data.sample import MODALITIES, MODALITY_NAMES, Sample, strip_image_tag
from clinkd.data.synth.templates import CATALOGUE, SYNONYMS_BY_MODALITY
from clinkd.errors import BoxParseError, DataError, ImageLoadError

log = logging.getLogger(__name__)

TILE = 256  # px, the side of an image tile
CAPTION = 34  # px, the caption strip under each tile
LABEL_CHARS = 28

# Bodies never run past the next opening tag of their kind ("tempered" ``.*?``), so that matching stays
# linear in the text's length even when it holds thousands of unclosed opening tags (issue 13). A ref is
# closed by its own style's closer, a box by any box closer.
_TAGS = re.compile(
    f"{paired(*REF_TAGS[0], 'ref')}|{paired(*REF_TAGS[1], 'ref2')}"
    f"|{BOX_OPEN}(?P<box>{tempered(BOX_OPEN)}){BOX_CLOSE}",
    re.S,
)
_MARKUP = re.compile(ANY_TAG)


def grounded_boxes(text: str) -> list[tuple[str | None, Box]]:
    """``(name of the nearest <ref> before it or None, box)`` for every parsable box in ``text``."""
    out, ref = [], None
    for m in _TAGS.finditer(text):
        if m.group("box") is None:
            ref = (m.group("ref") if m.group("ref") is not None else m.group("ref2")).strip()
            continue
        try:
            out.append((ref, parse_box_body(m.group("box"))[0]))
        except BoxParseError:
            continue
    return out


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` without markup, cut to ``limit`` characters at a word boundary."""
    plain = " ".join(_MARKUP.sub(" ", text).split()).rstrip(".")
    if len(plain) <= limit:
        return plain
    return plain[:limit].rsplit(" ", 1)[0] + "…"


def _known_names() -> list[tuple[re.Pattern, str]]:
    pairs = {n: n for n in CATALOGUE}
    pairs.update({syn: n for n, (_, syns) in CATALOGUE.items() for syn in syns})
    pairs.update({syn: n for (_, n), syns in SYNONYMS_BY_MODALITY.items() for syn in syns})
    return [
        (re.compile(rf"\b{re.escape(k)}\b", re.I), v)
        for k, v in sorted(pairs.items(), key=lambda kv: -len(kv[0]))
    ]


_KNOWN = _known_names()


def answer_label(answer: str) -> str | None:
    """A short label for a box whose answer is text: the answer itself when short, else the object a
    caption names (synthetic vocabulary), else the caption's start."""
    plain = short_label(answer, 10**6)
    if len(plain.split()) <= 4:
        return plain or None
    for pattern, name in _KNOWN:
        if pattern.search(plain):
            return name
    return short_label(plain)


def annotations(sample: Sample) -> list[tuple[str | None, Box]]:
    """What to draw for ``sample`` (every turn, repeated boxes once)."""
    items: list[tuple[str | None, Box]] = []
    for turn in sample.turns:
        found = grounded_boxes(turn.answer)
        if not found:
            q_boxes = parse_boxes(strip_image_tag(turn.question)[0])
            found = [(answer_label(turn.answer), b) for b in q_boxes]
        for label, box in found:
            if all(box.rounded() != b.rounded() for _, b in items):
                items.append((label, box))
    return items


def _select(entries: list[tuple], n: int, seed: int, per_modality: bool) -> list[tuple]:
    """``n`` of ``entries`` (tuples of a sample, its task, ...) drawn with ``seed``; see :func:`make_gallery`."""
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(entries))]
    if not per_modality:
        return [entries[i] for i in order[:n]]
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(entries[i][0].modality, []).append(i)
    mods = [m for m in MODALITIES if m in groups] + sorted(m for m in groups if m not in MODALITIES)
    chosen: list[int] = []
    shown: dict[str, set[str]] = {m: set() for m in mods}
    while len(chosen) < n and any(groups[m] for m in mods):
        for m in mods:
            if len(chosen) == n or not groups[m]:
                continue
            # Prefer a task this modality has not shown yet.
            pick = next((i for i in groups[m] if entries[i][1] not in shown[m]), groups[m][0])
            groups[m].remove(pick)
            shown[m].add(entries[pick][1])
            chosen.append(pick)
    return [entries[i] for i in chosen]


def _tile(path: Path, sample: Sample, task: str) -> Image.Image:
    """One tile: the image scaled into ``TILE`` px with its annotations, or a note saying why it is not
    shown (the reason is logged), and a caption."""
    tile = Image.new("RGB", (TILE, TILE + CAPTION), (24, 24, 24))
    try:
        img = load_image(path)
    except ImageLoadError as err:
        log.warning("gallery: %s", err)
        note = "image missing" if not path.is_file() else "image unreadable"
        ImageDraw.Draw(tile).text((8, TILE // 2), note, fill=(255, 90, 90), font=font(14))
    else:
        scale = min(TILE / img.width, TILE / img.height)
        img = img.resize(
            (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR
        )
        img = draw_annotations(img, annotations(sample), font_size=12, line_width=2)
        tile.paste(img, ((TILE - img.width) // 2, (TILE - img.height) // 2))
    draw = ImageDraw.Draw(tile)
    name = MODALITY_NAMES.get(sample.modality, sample.modality)
    draw.text((6, TILE + 3), f"{name} · {task}", fill=(255, 255, 255), font=font(14))
    draw.text((6, TILE + 19), short_label(sample.image, 40), fill=(170, 170, 170), font=font(11))
    return tile


def make_gallery(
    dataset_dir: str | PathLike,
    out_png: str | PathLike,
    *,
    n: int = 16,
    seed: int = 0,
    per_modality: bool = True,
) -> Path:
    """Write a contact sheet of ``n`` samples of a dataset folder to ``out_png`` and return its path.

    Samples are drawn from the test files (task = the file's task) and the training files (task
    ``train``). With ``per_modality`` they are taken round-robin over the modalities present (each
    modality showing different tasks first), else at random. The sheet is a grid of
    ``ceil(sqrt(k))`` columns of ``TILE`` × ``TILE + CAPTION`` px tiles for the ``k`` samples chosen.
    Raises :class:`DataError` when the folder holds no sample, or a chosen sample's image path leaves
    the image folder.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ds = read_dataset_dir(dataset_dir)
    # (sample, task, file, record index): every record of a file read is a sample, in order.
    entries = [
        (s, task, ds.files.test[task], i) for task, samples in ds.test.items() for i, s in enumerate(samples)
    ]
    entries += [(s, "train", src, i) for s, (src, i) in zip(ds.train, ds.train_origin)]
    if not entries:
        raise DataError("no samples found (expected train.json or test_<TASK>.json files)", dataset_dir)
    chosen = _select(entries, n, seed, per_modality)
    cols = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    sheet = Image.new("RGB", (cols * TILE, rows * (TILE + CAPTION)), (0, 0, 0))
    for i, (sample, task, source, record) in enumerate(chosen):
        path = ds.image_path(sample, source, record)
        sheet.paste(_tile(path, sample, task), ((i % cols) * TILE, (i // cols) * (TILE + CAPTION)))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
