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

from clinkd.data.bench.records import BenchData, BenchRecord, Fields, finish, load_json_list, record_dicts
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
        qid = f.ident("qid")
        image = f.text("image_name")
        question = f.text("question")
        answer = f.text("answer", numbers=True)
        answer_type = f.answer_type()
        phrase = f.text("phrase_type")
        if phrase is not None and phrase not in PHRASE_TYPES:
            f.problem(f"unknown phrase_type {phrase!r} (expected one of {', '.join(PHRASE_TYPES)})")
            phrase = None
        if (
            qid is None
            or image is None
            or question is None
            or answer is None
            or answer_type is None
            or phrase is None
        ):
            continue
        data.records.append(
            BenchRecord(
                id=qid,
                images=[image],
                question=question,
                answer=answer,
                answer_type=answer_type,
                split="test" if phrase.startswith("test") else "train",
                meta=f.extra(META),
                source=str(path),
                index=i,
            )
        )
    return finish(data, check_images=check_images)
