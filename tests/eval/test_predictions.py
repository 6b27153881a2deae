import json

import pytest

from clinkd.errors import DataError
from clinkd.eval import Prediction, read_predictions
from clinkd.eval.predictions import group_by_modality, modality_of, task_from_filename


def test_read_valid_file(tmp_path, records):
    path = tmp_path / "pred_VG.jsonl"
    recs = [records("ct_1.png", "a", "b", 0), {**records("mr_2.png", "c", "d", 1), "response": None}]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    preds = read_predictions(path)
    assert preds == [
        Prediction(0, "ct_1.png", "<img>q</img>", "a", "b"),
        Prediction(1, "mr_2.png", "<img>q</img>", "c", ""),
    ]
    assert preds[1].modality == "mr"


def test_malformed_line_names_file_and_line(tmp_path, records):
    path = tmp_path / "pred_RO.jsonl"
    good = json.dumps(records("ct_1.png", "a", "b"))
    path.write_text("\n".join([good, good, '{"id": 3, "image": "ct_3.png"', good]) + "\n")
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert err.value.path == str(path)
    assert err.value.record == 3  # 1-based line number
    assert "pred_RO.jsonl, record 3: line 3 is not a valid prediction record" in str(err.value)
    assert "--skip-invalid" in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        '{"id": 1, "image": "ct_1.png", "annotation": "a"}',  # missing response
        '{"id": 1, "image": 5, "annotation": "a", "response": "b"}',  # wrong type
        "[1, 2]",  # not an object
        '{"id": true, "image": "ct_1.png", "annotation": "a", "response": "b"}',  # bool id
    ],
)
def test_invalid_records_are_skipped_and_counted(tmp_path, records, bad):
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        json.dumps(records("ct_1.png", "a", "b")).encode() + b"\n" + bad.encode() + b"\n\xff\xfe not utf8\n"
    )
    skipped: list = []
    preds = read_predictions(path, skip_invalid=True, skipped=skipped)
    assert len(preds) == 1
    assert [n for n, _ in skipped] == [2, 3]


@pytest.mark.parametrize(
    "name, task",
    [
        ("pred_VG.jsonl", "VG"),
        ("test_MII_pred.jsonl", "MII"),
        ("gc.jsonl", "GC"),
        ("run-3.RO.predictions.jsonl", "RO"),
    ],
)
def test_task_from_filename(name, task):
    assert task_from_filename(name) == task


@pytest.mark.parametrize("name", ["predictions.jsonl", "VG_vs_GC.jsonl", "VGx.jsonl"])
def test_task_from_filename_errors_tell_to_pass_task(name):
    with pytest.raises(DataError, match="--task"):
        task_from_filename(name)


def test_modality_is_the_prefix_as_is():
    assert modality_of("x_chest_1.png") == "x"
    assert modality_of("CT_1.png") == "CT"  # not lower-cased, like the scripts
    assert modality_of("noprefix.png") == "noprefix.png"


def test_prediction_modality_leaves_folders_out():
    """The one modality rule (clinkd.data.sample.modality_of, issue 15): the published scripts see bare file
    names; a prediction whose image carries a folder is still scored under its modality."""
    for image in ["ct_00012.png", "images/ct_00012.png", "/data/med_grit/images/ct_00012.png"]:
        assert Prediction(id=0, image=image, question="", annotation="", response="").modality == "ct"
    assert group_by_modality(
        [Prediction(0, "a_b/x_1.png", "", "", ""), Prediction(1, "x_2.png", "", "", "")]
    ) == {"x": [0, 1]}
