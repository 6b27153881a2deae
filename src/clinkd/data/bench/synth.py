"""Small synthetic stand-ins of the five benchmarks, in exactly their distributed layouts.

``write_standin(name, out, seed=0, n_images=None)`` writes the files the readers of this package read
(file and folder names, field names, splits as in the real releases: see each reader's docstring),
with images drawn by :mod:`clinkd.data.synth` and :mod:`clinkd.data.bench.render` and answers that are
true of what was drawn:

- ``vqa-rad`` / ``slake``: CT (abdomen), MRI (head) and chest X-ray images; closed yes/no questions
  (is this an MRI? is there a liver tumour? is the spleen visible?) and open ones (which modality,
  which body region, which side a finding is on — the patient's side: image left is patient right);
  SLAKE also gets one Chinese question per image (``q_lang: zh``), which the reader leaves out by default.
- ``pathvqa``: H&E-like tiles; yes/no questions on necrosis and vessels, open ones on the nuclei and the
  stain; parquet files with the image bytes embedded.
- ``iu-xray`` / ``mimic-cxr``: studies of a frontal and a lateral view with a findings-and-impression
  report derived from the drawing (heart size, nodule and its side, pleural effusion and its side).

Same seed, same bytes (each image's generator is seeded from ``(seed, benchmark, index)``; PNG, JPEG
and parquet writers are deterministic for a given library version). Small by default and fast.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from clinkd.data.bench import reports, slake, vqa_rad
from clinkd.data.bench.render import render_lateral, render_tile
from clinkd.data.synth import render
from clinkd.data.synth.scene import SynthImage

DEFAULT_IMAGES: dict[str, int] = {"vqa-rad": 24, "slake": 24, "pathvqa": 24, "iu-xray": 16, "mimic-cxr": 16}
_CODES = {"vqa-rad": 1, "slake": 2, "pathvqa": 3, "iu-xray": 4, "mimic-cxr": 5}
RADIOLOGY = ("ct", "mr", "x")
MODALITY_WORD = {"ct": "CT", "mr": "MRI", "x": "X-ray"}
#: findings a renderer may draw, asked about whether present or not
FINDINGS = {"ct": ("liver tumor", "kidney cyst"), "mr": ("tumor",), "x": ("nodule", "pleural effusion")}
ORGANS = {"ct": ("liver", "spleen", "stomach"), "mr": ("brain",), "x": ("heart",)}
REGION_WORD = {"abdomen": "abdomen", "head": "head", "chest": "chest"}


def _rng(seed: int, name: str, k: int, part: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, _CODES[name], k, part])


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, "JPEG", quality=90)
    else:
        image.save(buf, "PNG")
    return buf.getvalue()


def _write(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)


def _dump(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def patient_side(location: str) -> str | None:
    """The patient's side of an image location word (radiological convention: image left is patient
    right); None when central."""
    if "left" in location:
        return "right"
    if "right" in location:
        return "left"
    return None


def radiology_questions(si: SynthImage, rng: np.random.Generator) -> list[dict]:
    """Questions about a rendered image, each ``{question, answer, answer_type, content}``, true of it."""
    mod = si.modality
    names = {o.name for o in si.objects}
    qs = [
        {
            "question": "What imaging modality was used?",
            "answer": MODALITY_WORD[mod],
            "answer_type": "OPEN",
            "content": "Modality",
        },
        {
            "question": "Which part of the body is shown?",
            "answer": REGION_WORD[si.region],
            "answer_type": "OPEN",
            "content": "Organ",
        },
    ]
    other = RADIOLOGY[int(rng.integers(len(RADIOLOGY)))]
    qs.append(
        {
            "question": f"Is this an {MODALITY_WORD[other]}?" if other != "ct" else "Is this a CT scan?",
            "answer": "yes" if other == mod else "no",
            "answer_type": "CLOSED",
            "content": "Modality",
        }
    )
    finding = FINDINGS[mod][int(rng.integers(len(FINDINGS[mod])))]
    qs.append(
        {
            "question": f"Is there a {finding} in this image?",
            "answer": "yes" if finding in names else "no",
            "answer_type": "CLOSED",
            "content": "Abnormality",
        }
    )
    organ = ORGANS[mod][int(rng.integers(len(ORGANS[mod])))]
    qs.append(
        {
            "question": f"Is the {organ} visible?",
            "answer": "yes" if organ in names else "no",
            "answer_type": "CLOSED",
            "content": "Organ",
        }
    )
    for obj in si.objects:
        side = patient_side(obj.location)
        if obj.name in FINDINGS[mod] and side is not None:
            qs.append(
                {
                    "question": f"On which side is the {obj.name}?",
                    "answer": side,
                    "answer_type": "OPEN",
                    "content": "Position",
                }
            )
            break
    return qs


def _radiology_images(name: str, seed: int, n: int):
    for k in range(n):
        mod = RADIOLOGY[k % len(RADIOLOGY)]
        si = render(mod, _rng(seed, name, k))
        yield k, si, radiology_questions(si, _rng(seed, name, k, 1))


def standin_vqa_rad(out: Path, seed: int, n: int) -> dict:
    organ = {"ct": "ABD", "mr": "HEAD", "x": "CHEST"}
    qtype = {"Modality": "MODALITY", "Organ": "ORGAN", "Abnormality": "PRES", "Position": "POS"}
    records, qid = [], 0
    for k, si, qs in _radiology_images("vqa-rad", seed, n):
        image = f"synpic{40001 + k}.jpg"
        _write(out / vqa_rad.IMAGE_DIR / image, _encode(si.image, "JPEG"))
        test = k % 5 == 4
        for j, q in enumerate(qs):
            qid += 1
            para = j == 0  # the first question also gets a paraphrase, linked to it
            base = {
                "qid": qid,
                "phrase_type": "test_freeform" if test else "freeform",
                "qid_linked_id": f"0{40001 + k}{j}",
                "image_case_url": f"https://medpix.nlm.nih.gov/case?id=synthetic-{k}",
                "image_name": image,
                "image_organ": organ[si.modality],
                "evaluation": "given",
                "question": q["question"],
                "question_rephrase": "NULL",
                "question_relation": "NULL",
                "question_frame": "NULL",
                "question_type": qtype[q["content"]],
                "answer": q["answer"],
                "answer_type": q["answer_type"],
            }
            records.append(base)
            if para:
                qid += 1
                records.append(
                    {
                        **base,
                        "qid": qid,
                        "phrase_type": "test_para" if test else "para",
                        "question": "Which imaging technique produced this image?",
                        "question_rephrase": q["question"],
                    }
                )
    _dump(records, out / vqa_rad.JSON_NAME)
    return {"questions": len(records), "images": n}


def standin_slake(out: Path, seed: int, n: int) -> dict:
    location = {"abdomen": "Abdomen", "head": "Brain", "chest": "Chest_lung"}
    zh_modality = {"ct": "CT", "mr": "核磁共振", "x": "X光"}
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    qid = 0
    for k, si, qs in _radiology_images("slake", seed, n):
        image = f"xmlab{k}/source.jpg"
        _write(out / slake.IMAGE_DIR / image, _encode(si.image.convert("RGB"), "JPEG"))
        split = "test" if k % 5 == 4 else "val" if k % 5 == 3 else "train"
        common = {
            "img_id": k,
            "img_name": image,
            "location": location[si.region],
            "modality": {"ct": "CT", "mr": "MRI", "x": "X-Ray"}[si.modality],
        }
        for q in [
            *qs,
            {
                "question": "这张图片是什么成像方式？",
                "answer": zh_modality[si.modality],
                "answer_type": "OPEN",
                "content": "Modality",
                "lang": "zh",
            },
        ]:
            qid += 1
            splits[split].append(
                {
                    **common,
                    "question": q["question"],
                    "answer": q["answer"],
                    "q_lang": q.get("lang", "en"),
                    "answer_type": q["answer_type"],
                    "base_type": "vqa",
                    "content_type": q["content"],
                    "triple": ["vhead", "_", "_"],
                    "qid": qid,
                }
            )
    for split, name in (("train", "train.json"), ("val", "validate.json"), ("test", "test.json")):
        _dump(splits[split], out / name)
    return {"questions": sum(len(v) for v in splits.values()), "images": n}


def standin_pathvqa(out: Path, seed: int, n: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("question", pa.string()),
            ("answer", pa.string()),
        ]
    )
    rows: dict[str, list] = {"train": [], "validation": [], "test": []}
    for k in range(n):
        tile = render_tile(_rng(seed, "pathvqa", k))
        split = "test" if k % 5 == 4 else "validation" if k % 5 == 3 else "train"
        image = {"bytes": _encode(tile.image, "JPEG"), "path": f"{split}_{k:04d}.jpg"}
        qa = [
            ("Is there necrosis in this image?", "yes" if tile.necrosis else "no"),
            ("Does this image show a blood vessel?", "yes" if tile.vessel else "no"),
            ("How are the nuclei distributed?", "densely packed" if tile.nuclei == "dense" else "sparse"),
            ("What stain is used?", "hematoxylin and eosin"),
        ]
        rows[split] += [{"image": image, "question": q, "answer": a} for q, a in qa]
    for split, recs in rows.items():
        path = out / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(recs, schema=schema), path)
    return {"questions": sum(len(v) for v in rows.values()), "images": n}


def chest_report(si: SynthImage) -> str:
    """Findings and impression for a rendered frontal chest X-ray, from what was drawn."""
    big = "cardiomegaly" in si.facts
    findings, impression = [], []
    findings.append("The heart is enlarged." if big else "The heart size is normal.")
    if big:
        impression.append("cardiomegaly")
    nodules = [o for o in si.objects if o.name == "nodule"]
    for o in nodules[:1]:
        side = patient_side(o.location) or "right"
        zone = o.location.split()[0] if o.location.split()[0] in ("upper", "lower") else "mid"
        findings.append(f"There is a nodule in the {zone} {side} lung.")
        impression.append(f"{side} lung nodule")
    effusion = [o for o in si.objects if o.name == "pleural effusion"]
    if effusion:
        side = patient_side(effusion[0].location) or "right"
        findings.append(f"There is a {side} pleural effusion.")
        impression.append(f"{side} pleural effusion")
    else:
        findings.append("No pleural effusion.")
    if not nodules:
        findings.append("The lungs are clear without focal nodule.")
    findings.append("No pneumothorax.")
    summary = "; ".join(impression) if impression else "no acute cardiopulmonary abnormality"
    return f"{' '.join(findings)} Impression: {summary[0].upper()}{summary[1:]}."


def _study(name: str, seed: int, k: int) -> tuple[Image.Image, Image.Image, str]:
    si = render("x", _rng(seed, name, k))
    effusion = any(o.name == "pleural effusion" for o in si.objects)
    lateral = render_lateral(
        _rng(seed, name, k, 1), cardiomegaly="cardiomegaly" in si.facts, effusion=effusion
    )
    return si.image, lateral, chest_report(si)


def _split(k: int) -> str:
    return "test" if k % 5 == 4 else "val" if k % 5 == 3 else "train"


def standin_iu_xray(out: Path, seed: int, n: int) -> dict:
    ann: dict[str, list] = {"train": [], "val": [], "test": []}
    for k in range(n):
        frontal, lateral, report = _study("iu-xray", seed, k)
        sid = f"CXR{1001 + k}_IM-{k:04d}"
        for view, img in enumerate((frontal, lateral)):
            _write(out / reports.IMAGE_DIR / sid / f"{view}.png", _encode(img, "PNG"))
        split = _split(k)
        ann[split].append(
            {"id": sid, "report": report, "image_path": [f"{sid}/0.png", f"{sid}/1.png"], "split": split}
        )
    _dump(ann, out / reports.ANNOTATION)
    return {"studies": n, "images": 2 * n}


def standin_mimic_cxr(out: Path, seed: int, n: int) -> dict:
    """One R2Gen entry per image (as the R2Gen MIMIC-CXR annotation has it): the frontal and lateral
    image of a study are two entries sharing ``study_id``, ``subject_id`` and the report."""
    ann: dict[str, list] = {"train": [], "val": [], "test": []}
    for k in range(n):
        frontal, lateral, report = _study("mimic-cxr", seed, k)
        subject, study = 10000032 + k, 50000000 + 7 * k
        split = _split(k)
        for view, img in enumerate((frontal, lateral)):
            h = np.random.default_rng([seed, k, view]).integers(0, 16, 40)
            dicom = "-".join("".join(f"{x:x}" for x in h[i : i + 8]) for i in range(0, 40, 8))
            rel = f"p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"
            _write(out / reports.IMAGE_DIR / rel, _encode(img, "JPEG"))
            ann[split].append(
                {
                    "id": dicom,
                    "study_id": study,
                    "subject_id": subject,
                    "report": report,
                    "image_path": [rel],
                    "split": split,
                }
            )
    _dump(ann, out / reports.ANNOTATION)
    return {"studies": n, "images": 2 * n}


WRITERS = {
    "vqa-rad": standin_vqa_rad,
    "slake": standin_slake,
    "pathvqa": standin_pathvqa,
    "iu-xray": standin_iu_xray,
    "mimic-cxr": standin_mimic_cxr,
}


def write_standin(name: str, out: str | os.PathLike, *, seed: int = 0, n_images: int | None = None) -> dict:
    """Write the stand-in of benchmark ``name`` into ``out`` (created); ``n_images`` images (report sets:
    studies), default :data:`DEFAULT_IMAGES`. Returns a summary."""
    from clinkd.errors import ClinkdError

    if name not in WRITERS:
        raise ClinkdError(f"unknown benchmark {name!r}; choose one of {', '.join(WRITERS)}")
    n = DEFAULT_IMAGES[name] if n_images is None else n_images
    if n < 5:
        raise ClinkdError(f"--images must be at least 5 (one per split at least), got {n}")
    if seed < 0:
        raise ClinkdError(f"--seed must be 0 or more, got {seed}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = WRITERS[name](out, seed, n)
    return {"out_dir": str(out), "format": name, "seed": seed, **summary}
