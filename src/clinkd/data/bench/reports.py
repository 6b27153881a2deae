"""IU X-Ray and MIMIC-CXR report generation, in the R2Gen annotation form (Chen et al., EMNLP 2020).

The form almost every report-generation paper since R2Gen uses (its preprocessed IU X-Ray and
MIMIC-CXR downloads), as read here::

    ROOT/annotation.json     {"train": [...], "val": [...], "test": [...]}
    ROOT/images/...          the paths of ``image_path``

Fields of an entry (checked against public copies found with the code search: R2Gen-derived loaders
and READMEs show ``{"id": "CXR2384_IM-0942", "report": "The heart size ...", "image_path":
["CXR2384_IM-0942/0.png", "CXR2384_IM-0942/1.png"], "split": "train"}`` for IU X-Ray, and MIMIC-CXR
entries with ``"image_path": ["p10/p10000032/s53911762/<dicom_id>.jpg"]`` plus ``study_id`` and
``subject_id``):

- ``id`` (text), ``report`` (the gold text: findings and impression as the preprocessing kept them),
  ``image_path`` (a list: IU X-Ray two views, frontal then lateral, ``<id>/0.png`` and ``<id>/1.png``;
  MIMIC-CXR usually one JPEG), ``split`` (when present it must match the list the entry is in);
- MIMIC-CXR also ``study_id`` and ``subject_id`` (integers), kept in :attr:`BenchRecord.meta`.

Splits: the three lists ``train``, ``val``, ``test``.
"""

from __future__ import annotations

import os
from pathlib import Path

from clinkd.data.bench.records import SPLITS, BenchData, BenchRecord, Fields, finish, record_dicts
from clinkd.data.formats import Problem, read_json
from clinkd.errors import DataError

ANNOTATION = "annotation.json"
IMAGE_DIR = "images"
MIMIC_IDS = ("study_id", "subject_id")


def read_r2gen(
    root: str | os.PathLike, name: str, *, check_images: bool = False, require: tuple[str, ...] = ()
) -> BenchData:
    """Read an R2Gen ``annotation.json`` (``root`` is its folder, or the file), collecting every problem.

    ``require`` names extra integer fields every entry must have (MIMIC-CXR: ``study_id``,
    ``subject_id``).
    """
    root = Path(root)
    if root.is_file():
        root = root.parent
    path = root / ANNOTATION
    data = BenchData(name, root / IMAGE_DIR, files=[path])
    if not root.is_dir():
        data.problems.append(
            Problem(str(root), None, "no such folder (expected the folder of annotation.json)")
        )
        return data
    if not data.image_root.is_dir():
        data.problems.append(Problem(str(root), None, f"no image folder {IMAGE_DIR!r} here"))
    try:
        ann = read_json(path)
    except DataError as err:
        data.problems.append(Problem(str(path), None, err.reason))
        return data
    if not isinstance(ann, dict):
        data.problems.append(
            Problem(str(path), None, 'expected an object {"train": [...], "val": [...], "test": [...]}')
        )
        return data
    unknown = sorted(set(ann) - set(SPLITS))
    if unknown:
        data.problems.append(
            Problem(str(path), None, f"unknown split(s) {unknown} (expected train, val, test)")
        )
    for split in SPLITS:
        if split not in ann:
            data.problems.append(Problem(str(path), None, f"missing split {split!r}"))
            continue
        entries = ann[split]
        if not isinstance(entries, list):
            data.problems.append(Problem(str(path), None, f"split {split!r} must be a list of entries"))
            continue
        where = f"{path} ({split})"
        for i, rec in record_dicts(entries, Path(where), data.problems):
            f = Fields(rec, where, i, data.problems)
            rid = f.ident("id")
            report = f.text("report")
            images = f.path_list("image_path")
            if f.has("split") and rec["split"] != split:
                f.problem(f"its split {rec['split']!r} is not the list it is in ({split!r})")
            ok = True
            for key in require:
                value = rec.get(key)
                if not isinstance(value, (int, str)) or isinstance(value, bool) or value == "":
                    f.problem(f"field {key!r} must be an integer id, got {value!r}")
                    ok = False
            if rid is None or report is None or images is None or not ok:
                continue
            data.records.append(
                BenchRecord(
                    id=rid,
                    images=images,
                    question=None,
                    answer=report,
                    answer_type=None,
                    split=split,
                    meta=f.extra(MIMIC_IDS),
                    source=where,
                    index=i,
                )
            )
    return finish(data, check_images=check_images)


def read_iu_xray(root: str | os.PathLike, *, check_images: bool = False) -> BenchData:
    """IU X-Ray (Demner-Fushman et al., 2016) in the R2Gen form: about 3,955 studies, two views each."""
    return read_r2gen(root, "iu-xray", check_images=check_images)


def read_mimic_cxr(root: str | os.PathLike, *, check_images: bool = False) -> BenchData:
    """MIMIC-CXR (Johnson et al., 2019) in the R2Gen form: ``study_id``/``subject_id`` required."""
    return read_r2gen(root, "mimic-cxr", check_images=check_images, require=MIMIC_IDS)
