"""SLAKE (Liu et al., ISBI 2021): a bilingual (English/Chinese) Med-VQA set on 642 radiology images.

Distributed form (the SLAKE 1.0 release, https://www.med-vqa.com/slake/), as read here::

    ROOT/train.json  ROOT/validate.json  ROOT/test.json     JSON lists, one object per question
    ROOT/imgs/xmlab<N>/source.jpg                            (plus masks and detection files, unused)

Some mirrors name the validation file ``validation.json``; either name is read (both present is a
problem). Fields (checked against public loaders found with the code search, whose docstrings show
records such as ``{'img_id': 0, 'img_name': 'xmlab0/source.jpg', 'question': ..., 'answer': 'MRI',
'q_lang': 'en', 'location': 'Abdomen', 'modality': 'MRI', 'answer_type': 'OPEN', 'base_type': 'vqa',
'content_type': 'Modality', 'triple': [...], 'qid': ...}``):

- ``qid`` (integer, unique over the three files), ``img_name`` (path under ``imgs/``), ``question``,
  ``answer`` (numbers read as text), ``answer_type`` ``CLOSED``/``OPEN``, ``q_lang`` (``en`` or ``zh``);
- kept in :attr:`BenchRecord.meta`: ``q_lang``, ``img_id``, ``location``, ``modality``, ``base_type``,
  ``content_type``, ``triple``.

Only English questions (``q_lang == "en"``) are kept by default, as the English Med-VQA results are
reported; ``lang=None`` keeps every language (the Chinese questions are still validated either way).
Splits: ``train.json`` → train, ``validate.json`` → val, ``test.json`` → test.
"""

from __future__ import annotations

import os
from pathlib import Path

from clinkd.data.bench.records import BenchData, Fields, finish, load_json_list, record_dicts
from clinkd.data.formats import Problem

NAME = "slake"
IMAGE_DIR = "imgs"
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train.json",),
    "val": ("validate.json", "validation.json"),
    "test": ("test.json",),
}
LANGS = ("en", "zh")
META = ("q_lang", "img_id", "location", "modality", "base_type", "content_type", "triple")


def read_slake(root: str | os.PathLike, *, check_images: bool = False, lang: str | None = "en") -> BenchData:
    """Read SLAKE from its release folder, collecting every problem; ``lang`` keeps one language."""
    root = Path(root)
    data = BenchData(NAME, root / IMAGE_DIR)
    if not root.is_dir():
        data.problems.append(Problem(str(root), None, "no such folder (expected the SLAKE release folder)"))
        return data
    if not data.image_root.is_dir():
        data.problems.append(Problem(str(root), None, f"no image folder {IMAGE_DIR!r} here"))
    for split, names in SPLIT_FILES.items():
        present = [root / n for n in names if (root / n).is_file()]
        if len(present) > 1:
            data.problems.append(
                Problem(str(root), None, f"both {names[0]} and {names[1]} are here; keep one")
            )
        if not present:
            if split != "val":
                data.problems.append(Problem(str(root / names[0]), None, "file not found"))
            continue
        path = present[0]
        data.files.append(path)
        items = load_json_list(path, data.problems, what="a JSON list of questions")
        for i, rec in record_dicts(items or [], path, data.problems):
            f = Fields(rec, str(path), i, data.problems)
            found = f.vqa_record(id_key="qid", image_key="img_name", split=split, meta=META)
            q_lang = f.choice("q_lang", LANGS)
            if found is not None and q_lang is not None and (lang is None or q_lang == lang):
                data.records.append(found)
    return finish(data, check_images=check_images)
