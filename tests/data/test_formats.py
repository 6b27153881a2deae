import json

import pytest

from clinkd.data.formats import (
    detect_format,
    find_dataset_files,
    parse_records,
    read_dataset_dir,
    read_json,
    read_samples,
    to_records,
    write_samples,
    write_sharegpt,
)
from clinkd.errors import DataError

TEST_RECORDS = [
    {
        "id": "ct_00001",
        "conversations": [
            [
                "<img>ct_00001.png</img>\nPlease locate the <ref>liver</ref>.",
                "<ref>liver</ref><box>(100,120),(480,560)</box>",
            ]
        ],
    },
    {
        "id": "fundus_00007",
        "conversations": [
            ["<img>fundus_00007.png</img>\nWhat is in <box>(10,20),(30,40)</box>?", "<ref>optic disc</ref>"]
        ],
    },
]
TRAIN_RECORDS = [
    {
        "id": "mr_00003",
        "conversations": [
            {"from": "user", "value": "<img>mr_00003.png</img>\nWhere is the <ref>tumour</ref>?"},
            {"from": "assistant", "value": "<ref>tumour</ref><box>(1,2),(300,400)</box>"},
            {"from": "user", "value": "Describe <box>(1,2),(300,400)</box>."},
            {"from": "assistant", "value": "A bright round mass in the upper left."},
        ],
    },
]


def _write(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("records,fmt", [(TEST_RECORDS, "test"), (TRAIN_RECORDS, "train")])
def test_read_write_round_trip_is_byte_exact(tmp_path, records, fmt):
    src = _write(tmp_path / f"in_{fmt}.json", records)
    samples = read_samples(src)
    dst = write_samples(samples, tmp_path / "out.json", fmt)
    assert dst.read_bytes() == src.read_bytes()


def test_samples_carry_image_modality_task(tmp_path):
    samples = read_samples(_write(tmp_path / "test_RO.json", TEST_RECORDS))
    assert [s.image for s in samples] == ["ct_00001.png", "fundus_00007.png"]
    assert [s.modality for s in samples] == ["ct", "fundus"]
    assert {s.task for s in samples} == {"RO"}
    assert samples[0].prompts() == ["Please locate the <ref>liver</ref>."]
    train = read_samples(_write(tmp_path / "train.json", TRAIN_RECORDS))
    assert train[0].task is None and len(train[0].turns) == 2


def test_sharegpt_round_trip_and_dataset_info(tmp_path):
    samples = read_samples(_write(tmp_path / "train.json", TRAIN_RECORDS))
    out = write_sharegpt(samples, tmp_path / "sg" / "medgrit_train.json", box_style="qwen2")
    rec = read_json(out)[0]
    assert rec["images"] == ["mr_00003.png"]
    assert rec["messages"][0]["content"].startswith("<image>\nWhere is the <|object_ref_start|>tumour")
    info = read_json(tmp_path / "sg" / "dataset_info.json")["medgrit_train"]
    assert info["formatting"] == "sharegpt" and info["columns"] == {
        "messages": "messages",
        "images": "images",
    }
    assert info["tags"]["user_tag"] == "user" and info["tags"]["assistant_tag"] == "assistant"
    # back to the training form in the original markup: identical records
    back = read_samples(out)
    assert to_records(back, "train", box_style="qwen") == TRAIN_RECORDS
    # a second dataset in the same folder keeps the first entry
    write_sharegpt(samples, tmp_path / "sg" / "other.json")
    assert set(read_json(tmp_path / "sg" / "dataset_info.json")) == {"medgrit_train", "other"}


def test_detect_format():
    assert detect_format(TEST_RECORDS) == "test"
    assert detect_format(TRAIN_RECORDS) == "train"
    assert detect_format([{"messages": [], "images": []}]) == "sharegpt"
    assert detect_format([]) is None and detect_format({"a": 1}) is None


def test_bad_json_names_file_and_line(tmp_path):
    p = tmp_path / "test_VG.json"
    p.write_text('[{"id": "ct_1",\n "conversations": [["q", "a"]]\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_samples(p)
    assert str(p) in str(err.value) and "line 3" in str(err.value)


def test_every_bad_record_is_collected(tmp_path):
    data = [
        TEST_RECORDS[0],
        {"id": "ct_2"},  # missing conversations
        "not an object",  # wrong type
        {"id": "ct_3", "conversations": [["only question"]]},  # not a pair
        {"id": 4, "conversations": [["q", "a"]]},  # id not a string
    ]
    samples, problems = parse_records(data, "f.json", "test")
    assert len(samples) == 1
    assert [p.record for p in problems] == [1, 2, 3, 4]
    assert "missing field(s): conversations" in problems[0].message
    with pytest.raises(DataError, match=r"record 1.*3 more problem"):
        read_samples(_write(tmp_path / "t.json", data))


def test_train_roles_must_alternate():
    bad = [{"id": "x_1", "conversations": [{"from": "user", "value": "q"}, {"from": "user", "value": "q2"}]}]
    _, problems = parse_records(bad, "train.json")
    assert problems and "alternate" in problems[0].message


def test_dataset_folder(tmp_path):
    (tmp_path / "images").mkdir()
    _write(tmp_path / "train.json", TRAIN_RECORDS)
    _write(tmp_path / "test_VG.json", TEST_RECORDS[:1])
    _write(tmp_path / "MedGRIT_RO_test.json", TEST_RECORDS[1:])
    _write(tmp_path / "dataset_info.json", {})
    files = find_dataset_files(tmp_path)
    assert [p.name for p in files.train] == ["train.json"]
    assert set(files.test) == {"VG", "RO"}
    ds = read_dataset_dir(tmp_path)
    assert len(ds.train) == 1 and ds.test["RO"][0].task == "RO"
    assert ds.image_path(ds.train[0]) == tmp_path / "images" / "mr_00003.png"
    with pytest.raises(DataError, match="not a folder"):
        find_dataset_files(tmp_path / "nope")
