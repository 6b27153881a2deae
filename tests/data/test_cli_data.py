import json

from clinkd.cli.main import main
from clinkd.data.formats import read_json

RECORDS = [
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
        "id": "pet_00002",
        "conversations": [
            [
                "<img>pet_00002.png</img>\nFind <ref>hot spot</ref>.",
                "<ref>hot spot</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box>",
            ]
        ],
    },
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


def test_convert_to_a_family_convention_records_the_sizes_assumed(tmp_path, capsys):
    """--box-convention qwen2_5_vl: JSON bbox_2d in pixels of each image as the processor resizes it (the
    sizes written beside the output); reading the output back with those sizes gives the Med-GRIT boxes."""
    from PIL import Image

    from clinkd.data.boxes import parse_boxes
    from clinkd.data.conventions import CONVENTIONS, read_answer

    src = tmp_path / "test_VG.json"
    src.write_text(json.dumps(RECORDS), encoding="utf-8")
    (tmp_path / "images").mkdir()
    Image.new("RGB", (640, 480)).save(tmp_path / "images" / "ct_00001.png")
    Image.new("RGB", (100, 3000)).save(tmp_path / "images" / "pet_00002.png")
    out = tmp_path / "sg" / "vg.json"
    assert (
        main(
            [
                "data",
                "convert",
                str(src),
                str(out),
                "--to",
                "sharegpt",
                "--box-convention",
                "qwen2_5_vl",
                "--max-pixels",
                str(448 * 448),
            ]
        )
        == 0
    )
    side = read_json(tmp_path / "sg" / "vg.boxes.json")
    assert side["box_convention"] == "qwen2_5_vl" and side["max_pixels"] == 448 * 448
    assert side["images"]["ct_00001.png"] == {"size": [640, 480], "resized": [504, 364]}
    records = read_json(out)
    answer = records[0]["messages"][1]["content"]
    assert answer.startswith("```json") and '"bbox_2d": [50, 44, 242, 204], "label": "liver"' in answer
    assert records[0]["messages"][0]["content"] == "<image>\nPlease locate the liver."
    for rec, orig in zip(records, RECORDS):  # back within one unit of the coarser grid
        w, h = side["images"][rec["images"][0]]["resized"]
        back = read_answer(rec["messages"][1]["content"], CONVENTIONS["qwen2_5_vl"], (w, h)).boxes
        want = [b for t in orig["conversations"] for b in parse_boxes(t[1])]
        assert len(back) == len(want)
        for a, b in zip(back, want):
            assert all(
                abs(u - v) <= max(1, 1000 / side) for u, v, side in zip(a.coords, b.coords, (w, h, w, h))
            )
    q3 = tmp_path / "q3.json"
    assert main(["data", "convert", str(src), str(q3), "--to", "test", "--box-convention", "qwen3_vl"]) == 0
    assert "[100, 120, 480, 560]" in q3.read_text()
    assert (
        main(
            [
                "data",
                "convert",
                str(src),
                str(q3),
                "--to",
                "test",
                "--box-convention",
                "qwen3_vl",
                "--box-style",
                "qwen2",
            ]
        )
        == 2
    )
    assert "not both" in capsys.readouterr().err
    (tmp_path / "images" / "pet_00002.png").unlink()
    assert main(["data", "convert", str(src), str(q3), "--to", "test", "--box-convention", "qwen2_5_vl"]) == 2
    assert "pet_00002.png not found" in capsys.readouterr().err
