import json

import numpy as np
from PIL import Image

from clinkd.cli.main import main
from clinkd.data.check import check_path


def _png(path, size=(32, 24)):
    Image.fromarray(np.zeros((size[1], size[0]), np.uint8)).save(path)


def _broken_dataset(root):
    """A folder with one deliberate problem of every kind the checker knows."""
    img = root / "images"
    img.mkdir(parents=True)
    _png(img / "ct_1.png")
    _png(img / "mr_2.png")
    (img / "x_3.png").write_bytes(b"this is not a png")  # undecodable
    records = [
        {
            "id": "ct_1",
            "conversations": [
                [
                    "<img>ct_1.png</img>\nWhere is the <ref>liver</ref>?",
                    "<ref>liver</ref><box>(10,20),(30,40)</box>",
                ]
            ],
        },  # 0 fine
        {
            "id": "ct_1",
            "conversations": [["<img>ct_1.png</img>\nq", "<box>(10,20),(1200,40)</box>"]],
        },  # 1 out of range
        {
            "id": "mr_2",
            "conversations": [["<img>mr_2.png</img>\nq", "<box>(300,20),(30,40)</box>"]],
        },  # 2 inverted
        {
            "id": "mr_2",
            "conversations": [["<img>mr_2.png</img>\nq", "<box>(3,2),(x,4)</box>"]],
        },  # 3 unparseable, repeats 2
        {"id": "brain_9", "conversations": [["<img>brain_9.png</img>\nq", "a"]]},  # 4 modality + missing
        {"id": "x_3", "conversations": [["<img>x_3.png</img>\nq", "a"]]},  # 5 undecodable
        {"id": "ct_1"},  # 6 missing field
    ]
    (root / "test_VG.json").write_text(json.dumps(records), encoding="utf-8")
    (root / "test_RO.json").write_text(
        '[{"id": "ct_1", "conversations": [["q", "a"]]},', encoding="utf-8"
    )  # bad JSON


def test_check_reports_every_problem_with_location(tmp_path):
    _broken_dataset(tmp_path)
    report = check_path(tmp_path)
    assert not report.ok
    by_record = {}
    for p in report.problems:
        by_record.setdefault((p.path.split("/")[-1], p.record), []).append(p.message)
    vg = "test_VG.json"
    assert ("test_RO.json", None) in by_record and "invalid JSON" in by_record[("test_RO.json", None)][0]
    assert (vg, 0) not in by_record
    assert any("outside 0-1000" in m for m in by_record[(vg, 1)])
    assert any("inverted" in m for m in by_record[(vg, 2)])
    assert any("cannot parse box" in m for m in by_record[(vg, 3)])
    assert any(
        "duplicate record" in m and "record 2" in m for m in by_record[(vg, 3)]
    )  # same image and question
    assert any("unknown modality 'brain'" in m for m in by_record[(vg, 4)])
    assert any("image not found" in m for m in by_record[(vg, 4)])
    assert any("cannot be decoded" in m for m in by_record[(vg, 5)])
    assert any("missing field(s): conversations" in m for m in by_record[(vg, 6)])
    assert len(report.problems) == 9


def test_check_cli_exit_status(tmp_path, capsys):
    _broken_dataset(tmp_path)
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "test_VG.json [record 2]: turn 0 answer: inverted box" in out
    good = tmp_path / "good"
    (good / "images").mkdir(parents=True)
    _png(good / "images" / "ct_1.png")
    (good / "test_VG.json").write_text(
        json.dumps([{"id": "ct_1", "conversations": [["<img>ct_1.png</img>\nq", "a"]]}])
    )
    assert main(["data", "check", str(good)]) == 0
    assert main(["data", "check", str(good / "test_VG.json")]) == 0


def test_check_without_images_skips_decoding(tmp_path):
    _broken_dataset(tmp_path)
    report = check_path(tmp_path, check_images=False)
    assert not any("image" in p.message and "modality" not in p.message for p in report.problems)
