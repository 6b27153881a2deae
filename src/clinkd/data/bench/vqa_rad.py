"""VQA-RAD (Lau et al., Scientific Data 2018): 3,515 clinician-written questions on 315 radiology images.

Distributed form (the OSF release, https://osf.io/89kps/), as read here::

    ROOT/VQA_RAD Dataset Public.json     a JSON list, one object per question
    ROOT/VQA_RAD Image Folder/synpic<N>.jpg

Fields of a question (names as in the public JSON; checked against public loaders found with the code
search, e.g. processing scripts that open ``'VQA-RAD' / 'VQA_RAD Dataset Public.json'`` and read
``item['image_name']`` from ``'VQA_RAD Image Folder'``, and a test fixture of an importer using
``qid, image_name, question, answer, answer_type: "OPEN", question_type, image_organ,
phrase_type: "test_freeform"``):

- ``qid`` (integer), ``image_name`` (file in the image folder), ``question``, ``answer`` (text; a few
  counting answers may be JSON numbers, read as text), ``answer_type`` ``CLOSED``/``OPEN`` (spaces and
  case ignored), ``phrase_type`` — ``freeform``/``para`` for training questions,
  ``test_freeform``/``test_para`` for the official test set (451 questions);
- kept in :attr:`BenchRecord.meta` when present: ``question_type`` (MODALITY, PRES, POS…),
  ``image_organ`` (HEAD, CHEST, ABD), ``phrase_type``, ``qid_linked_id``, ``evaluation``,
  ``image_case_url``, ``question_rephrase``, ``question_relation``, ``question_frame``.

Splits: ``phrase_type`` starting with ``test`` → ``test``, anything else → ``train``; the set has no
validation split.
"""

from __future__ import annotations

import os
from pathlib import Path

from clinkd.data.bench.records import BenchData, Fields, finish, load_json_list, record_dicts
from clinkd.data.formats import Problem

NAME = "vqa-rad"
JSON_NAME = "VQA_RAD Dataset Public.json"
IMAGE_DIR = "VQA_RAD Image Folder"
PHRASE_TYPES = ("freeform", "para", "test_freeform", "test_para")
META = (
    "question_type",
    "image_organ",
    "phrase_type",
    "qid_linked_id",
    "evaluation",
    "image_case_url",
    "question_rephrase",
    "question_relation",
    "question_frame",
)


def read_vqa_rad(root: str | os.PathLike, *, check_images: bool = False) -> BenchData:
    """Read VQA-RAD from its folder (or from the JSON file itself), collecting every problem."""
    root = Path(root)
    if root.is_file():
        root = root.parent
    path = root / JSON_NAME
    data = BenchData(NAME, root / IMAGE_DIR, files=[path])
    if not root.is_dir():
        data.problems.append(Problem(str(root), None, "no such folder (expected the VQA-RAD release folder)"))
        return data
    if not (root / IMAGE_DIR).is_dir():
        data.problems.append(Problem(str(root), None, f"no image folder {IMAGE_DIR!r} here"))
    items = load_json_list(path, data.problems, what="a JSON list of questions")
    for i, rec in record_dicts(items or [], path, data.problems):
        f = Fields(rec, str(path), i, data.problems)
        found = f.vqa_record(id_key="qid", image_key="image_name", split=None, meta=META)
        phrase = f.choice("phrase_type", PHRASE_TYPES)
        if found is not None and phrase is not None:
            found.split = "test" if phrase.startswith("test") else "train"
            data.records.append(found)
    return finish(data, check_images=check_images)
