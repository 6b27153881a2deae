import json

from clinkd.cli.main import main
from clinkd.data.formats import read_json

RECORDS = [
    {"id": "ct_00001", "conversations": [["<img>ct_00001.png</img>\nPlease locate the <ref>liver</ref>.",
                                          "<ref>liver</ref><box>(100,120),(480,560)</box>"]]},
    {"id": "pet_00002", "conversations": [["<img>pet_00002.png</img>\nFind <ref>hot spot</ref>.",
                                           "<ref>hot spot</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box>"]]},
]


def test_convert_file_round_trip_through_sharegpt_and_qwen2(tmp_path, capsys):
    src = tmp_path / "test_VG.json"
    src.write_text(json.dumps(RECORDS, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sg = tmp_path / "sg" / "vg.json"
    assert main(["data", "convert", str(src), str(sg), "--to", "sharegpt", "--box-style", "qwen2"]) == 0
    assert "<|box_start|>(100,120),(480,560)<|box_end|>" in sg.read_text()
    assert (tmp_path / "sg" / "dataset_info.json").exists()
    back = tmp_path / "back_VG.json"
    assert main(["data", "convert", str(sg), str(back), "--to", "test", "--box-style", "qwen"]) == 0
    assert back.read_bytes() == src.read_bytes()


def test_convert_folder_and_errors(tmp_path, capsys):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "test_VG.json").write_text(json.dumps(RECORDS))
    assert main(["data", "convert", str(ds), str(tmp_path / "out"), "--to", "train"]) == 0
    train = read_json(tmp_path / "out" / "test_VG.json")
    assert train[0]["conversations"][0]["from"] == "user"
    (ds / "test_RO.json").write_text("{broken")
    assert main(["data", "convert", str(ds / "test_RO.json"), str(tmp_path / "x.json"), "--to", "train"]) == 2
    assert "test_RO.json: invalid JSON at line 1" in capsys.readouterr().err


def test_stats_json(tmp_path, capsys):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "test_VG.json").write_text(json.dumps(RECORDS))
    assert main(["data", "stats", str(ds), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["test"]["by_task"] == {"VG": {"ct": 1, "pet": 1}}
    assert stats["test"]["images"] == 2
    assert main(["data", "stats", str(ds)]) == 0
    assert "VG" in capsys.readouterr().out
