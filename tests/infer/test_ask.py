"""``clinkd ask`` on a real DICOM file; drawing the answer's labelled boxes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

import clinkd.infer.ask as ask_mod
from clinkd.cli.main import main
from clinkd.infer.ask import default_output, labelled_boxes


@pytest.fixture
def ct_dicom(tmp_path):
    pydicom_data = pytest.importorskip("pydicom.data")
    src = pydicom_data.get_testdata_file("CT_small.dcm", download=False)
    if src is None:
        pytest.skip("pydicom's CT_small.dcm is not installed")
    dst = tmp_path / "CT_small.dcm"
    shutil.copy(src, dst)
    return dst


def test_ask_on_dicom_prints_an_answer_and_writes_the_png(ct_dicom, tiny_student_dir, capsys):
    rc = main(
        [
            "ask",
            "--model",
            str(tiny_student_dir),
            "--image",
            str(ct_dicom),
            "--max-new-tokens",
            "8",
            "Where is the liver?",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert out.strip() and "drawn on" in out
    png = ct_dicom.with_name("CT_small_answer.png")
    assert png.is_file()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (128, 128) and im.mode == "RGB"


def test_the_answers_boxes_are_drawn_with_their_labels(
    ct_dicom, tiny_student_dir, capsys, monkeypatch, tmp_path
):
    answer = (
        "<|object_ref_start|>liver<|object_ref_end|><|box_start|>(100,100),(600,600)<|box_end|>"
        " and <ref>spleen</ref><box>(700,200),(900,500)</box>"
    )
    monkeypatch.setattr(ask_mod, "generate_candidates", lambda *a, **k: [[answer]])
    target = tmp_path / "sub" / "drawn.png"
    assert (
        main(
            [
                "ask",
                "--model",
                str(tiny_student_dir),
                "--image",
                str(ct_dicom),
                "--out",
                str(target),
                "where?",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "<ref>liver</ref><box>(100,100),(600,600)</box>" in printed and "2 box(es)" in printed
    plain = np.asarray(ask_mod.load_image(ct_dicom), dtype=int)
    drawn = np.asarray(Image.open(target).convert("RGB"), dtype=int)
    changed = np.abs(plain - drawn).sum(-1) > 0  # (H, W)
    assert changed[13:77, 13:77].any() and changed[40:60, 40:60].sum() == 0  # outline drawn, inside untouched


def test_labelled_boxes_and_default_output():
    items = labelled_boxes(
        "<ref>a</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box> <box>bad</box>"
        "<|object_ref_start|>b<|object_ref_end|><box_start>(9,9),(10,10)<box_end>"
    )
    assert [(lab, b.coords) for lab, b in items] == [
        ("a", (1, 2, 3, 4)),
        ("a", (5, 6, 7, 8)),
        ("b", (9, 9, 10, 10)),
    ]
    assert default_output("d/scan.nii.gz").as_posix() == "d/scan_answer.png"
    assert default_output("d/x.dcm").as_posix() == "d/x_answer.png"
