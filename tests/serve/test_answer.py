"""The app's request logic without a browser: upload checks, task presets, markup shown readably, answering."""

from __future__ import annotations

import numpy as np
import pytest

from clinkd.data.boxes import Box
from clinkd.serve.answer import (
    ASKED_LABEL,
    FREE,
    TASKS,
    Answerer,
    ServeError,
    ask,
    box_rows,
    build_question,
    grounded_items,
    parse_region,
    read_upload,
    readable,
)

MB = 2**20


def write_dicom(path, rows=64, cols=80):
    """A small CT DICOM file (16-bit, window tags present)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, -1024, 40, 400
    ds.PixelData = np.random.default_rng(0).integers(800, 1300, (rows, cols), dtype=np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# -- uploads ----------------------------------------------------------------------------------------------
def test_read_upload_png_and_dicom(png, tmp_path):
    assert read_upload(png, 20 * MB).size == (300, 200)
    image = read_upload(write_dicom(tmp_path / "ct.dcm"), 20 * MB)
    assert image.size == (80, 64) and image.mode == "RGB"


def test_read_upload_refuses_oversized(png):
    with pytest.raises(ServeError, match=r"scan.png is 0.0 MB; the limit is 0.0 MB"):
        read_upload(png, max_bytes=100)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"hello", "not an accepted image file"),
        (
            "fake.png",
            b"this is not a png",
            "fake.png is not a readable image: not an image Pillow can decode",
        ),
        ("fake.dcm", b"\0" * 200, "fake.dcm is not a readable image: not a valid DICOM file"),
    ],
)
def test_read_upload_refuses_non_images(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ServeError, match=message) as info:
        read_upload(path, 20 * MB)
    assert str(tmp_path) not in str(info.value)  # the server's temporary path is not shown to the user


def test_read_upload_refuses_missing():
    with pytest.raises(ServeError, match="upload an image first"):
        read_upload(None, 20 * MB)


# -- questions ----------------------------------------------------------------------------------------------
def test_parse_region():
    assert parse_region(" (120,340),(260,512) ") == Box(120, 340, 260, 512)
    assert parse_region("<box>(0,0),(1000,1000)</box>") == Box(0, 0, 1000, 1000)
    for bad, message in [
        ("", "needs a region"),
        ("120,340", "cannot read the region"),
        ("(0,0),(1200,10)", "outside 0-1000"),
        ("(500,500),(100,100)", "inverted"),
        ("(5,5),(5,9)", "empty"),
    ]:
        with pytest.raises(ServeError, match=message):
            parse_region(bad)


def test_build_question_presets():
    assert build_question(FREE, "  Where is the liver? ") == "Where is the liver?"
    assert (
        build_question("VG: locate an object", object_name=" left  kidney")
        == "Please locate the <ref>left kidney</ref> in this image."
    )
    assert (
        build_question("RO", region="(120,340),(260,512)")
        == "What is the object in <box>(120,340),(260,512)</box>?"
    )
    assert build_question("GC", region="(1.4,2),(3,4.6)") == "Describe the region <box>(1,2),(3,5)</box>."
    assert build_question("MII: analyse the image", question="ignored") == "Analyse this image."
    assert {t.key for t in TASKS.values()} == {"free", "VG", "RO", "GC", "MII"}


@pytest.mark.parametrize(
    "task, kwargs, message",
    [
        (FREE, {"question": "   "}, "type a question"),
        ("VG", {}, "needs the name of the object"),
        ("RO", {"region": "nowhere"}, "cannot read the region"),
        ("XYZ", {}, "unknown task"),
    ],
)
def test_build_question_refusals(task, kwargs, message):
    with pytest.raises(ServeError, match=message):
        build_question(task, **kwargs)


# -- markup shown readably -----------------------------------------------------------------------------------
def test_grounded_items_and_readable():
    text = (
        "<ref>liver</ref><box>(100,200),(500,600)</box><box>(0,0),(10,10)</box> and "
        "<|object_ref_start|>spleen<|object_ref_end|><|box_start|>(600,100),(900,400)<|box_end|> <box>junk</box>"
    )
    assert grounded_items(text) == [
        ("liver", Box(100, 200, 500, 600)),
        ("liver", Box(0, 0, 10, 10)),
        ("spleen", Box(600, 100, 900, 400)),
    ]
    assert grounded_items("in <box>(1,2),(3,4)</box>?", ASKED_LABEL) == [(ASKED_LABEL, Box(1, 2, 3, 4))]
    # 300x200 image: x * 0.3, y * 0.2
    assert readable(text, 300, 200) == (
        "«liver» [box (100,200),(500,600) = pixels (30,40)-(150,120)] [box (0,0),(10,10) = pixels (0,0)-(3,2)] and "
        "«spleen» [box (600,100),(900,400) = pixels (180,20)-(270,80)] [unreadable box 'junk']"
    )
    assert readable("a\x01b  c\ufffd\n", 10, 10) == "ab c"
    assert box_rows([(None, Box(100, 200, 500, 600))], 300, 200) == [
        ["(no label)", "(100,200),(500,600)", "(30,40),(150,120)"]
    ]


# -- answering -------------------------------------------------------------------------------------------------
def test_ask_end_to_end(answerer, png):
    r = ask(answerer, png, "RO: identify the object in a region", region="(100,100),(500,600)")
    assert r.question == "What is the object in <box>(100,100),(500,600)</box>?"
    assert isinstance(r.answer, str) and r.text and r.seconds > 0
    assert r.image.size == (300, 200) and r.rows[0] == [
        ASKED_LABEL,
        "(100,100),(500,600)",
        "(30,20),(150,120)",
    ]
    assert (
        np.asarray(r.image)[20, 30:150].tolist() != np.asarray(read_upload(png, MB))[20, 30:150].tolist()
    )  # drawn


def test_ask_refuses_before_answering(png, tmp_path):
    def never(image, question):  # pragma: no cover - must not be reached
        raise AssertionError("the model was asked")

    with pytest.raises(ServeError, match="type a question"):
        ask(never, png, FREE, "")
    with pytest.raises(ServeError, match="limit is"):
        ask(never, png, FREE, "What is this?", max_bytes=10)


class ConstantEmbedder:
    """Every text gets the same unit vector: all candidates agree, so the medoid is the first (greedy)."""

    def encode(self, texts):
        return np.ones((len(texts), 4), np.float32) / 2


def test_answerer_sasg_prefers_greedy_on_ties(tiny_student, png):
    model, processor = tiny_student
    image = read_upload(png, MB)
    greedy = Answerer(model, processor, max_new_tokens=6)(image, "Where is the liver?")
    sasg = Answerer(
        model, processor, select="sasg", candidates=2, max_new_tokens=6, embedder=ConstantEmbedder()
    )
    assert sasg(image, "Where is the liver?") == greedy
    assert sasg.rope_scheme == model.rope_settings.scheme


def test_answerer_validates():
    with pytest.raises(Exception, match="greedy' or 'sasg"):
        Answerer(None, None, select="beam")
