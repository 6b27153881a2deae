"""``clinkd infer`` end to end and the CLI's error messages (file named, no traceback, status 2)."""

from __future__ import annotations

import json

from clinkd.cli.main import main
from clinkd.eval.predictions import read_predictions


def test_infer_a_dataset_folder_writes_one_file_per_task(tmp_path, synth_dir, tiny_student_dir, capsys):
    out = tmp_path / "preds"
    rc = main(
        [
            "infer",
            "--model",
            str(tiny_student_dir),
            "--data",
            str(synth_dir),
            "--out",
            str(out),
            "--task",
            "all",
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--batch-size",
            "2",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"pred_{t}{ext}" for t in ("GC", "MII", "RO", "VG") for ext in (".jsonl", ".settings.json")
    )
    for p in out.glob("*.jsonl"):
        assert [r.id for r in read_predictions(p)] == [0, 1]
        settings = json.loads((out / f"{p.stem}.settings.json").read_text())  # the decoding used, beside it
        assert settings["greedy"]["do_sample"] is False and settings["greedy"]["repetition_penalty"] == 1.0
    assert "MII: " in capsys.readouterr().out
    from clinkd.eval import evaluate

    report = evaluate(
        [out / "pred_VG.jsonl", out / "pred_RO.jsonl"], strict=False, spice=False
    )  # scored as is
    assert set(report.standard) == {"VG", "RO"}
    # a second run resumes: nothing left to do
    assert (
        main(
            [
                "infer",
                "--model",
                str(tiny_student_dir),
                "--data",
                str(synth_dir),
                "--out",
                str(out),
                "--limit",
                "2",
                "--max-new-tokens",
                "4",
            ]
        )
        == 0
    )
    assert "0 written now, 2 already there" in capsys.readouterr().out


def test_missing_model_dir(tmp_path, synth_dir, capsys):
    rc = main(
        [
            "infer",
            "--model",
            str(tmp_path / "no_model"),
            "--data",
            str(synth_dir / "test_VG.json"),
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert rc == 2 and "no_model" in capsys.readouterr().err


def test_a_model_dir_without_config(tmp_path, synth_dir, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(
        [
            "infer",
            "--model",
            str(tmp_path / "empty"),
            "--data",
            str(synth_dir / "test_VG.json"),
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert rc == 2 and "config.json" in capsys.readouterr().err


def test_bad_test_files_are_named(tmp_path, tiny_student_dir, capsys):
    bad = tmp_path / "test_VG.json"
    bad.write_text('[{"id": "ct_1", "conversations": [["q", "a"]]},\n oops]')
    rc = main(
        ["infer", "--model", str(tiny_student_dir), "--data", str(bad), "--out", str(tmp_path / "p.jsonl")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "test_VG.json" in err and "invalid JSON at line 2" in err
    bad.write_text(json.dumps([{"id": "ct_1", "conversations": [["q", "a"]]}, {"id": "ct_2"}]))
    rc = main(
        ["infer", "--model", str(tiny_student_dir), "--data", str(bad), "--out", str(tmp_path / "p.jsonl")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "test_VG.json, record 1" in err and "conversations" in err
    rc = main(
        [
            "infer",
            "--model",
            str(tiny_student_dir),
            "--data",
            str(tmp_path / "nope.json"),
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert rc == 2 and "nope.json" in capsys.readouterr().err


def test_missing_image_is_named(tmp_path, tiny_student_dir, capsys):
    test = tmp_path / "test_RO.json"
    test.write_text(
        json.dumps([{"id": "ct_00001", "conversations": [["<img>ct_00001.png</img>\nWhat?", "liver"]]}])
    )
    rc = main(
        ["infer", "--model", str(tiny_student_dir), "--data", str(test), "--out", str(tmp_path / "p.jsonl")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "test_RO.json, record 0" in err and "ct_00001.png not found" in err


def test_ask_errors(tmp_path, tiny_student_dir, capsys):
    rc = main(["ask", "--model", str(tiny_student_dir), "--image", str(tmp_path / "scan.dcm"), "what?"])
    assert rc == 2 and "scan.dcm" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    rc = main(["ask", "--model", str(tiny_student_dir), "--image", str(broken), "what?"])
    assert rc == 2 and "broken.png" in capsys.readouterr().err
    rc = main(["ask", "--model", str(tmp_path / "no_model"), "--image", str(broken), "what?"])
    assert rc == 2 and "no_model" in capsys.readouterr().err


def test_folder_data_needs_folder_out(tmp_path, synth_dir, tiny_student_dir, capsys):
    rc = main(
        [
            "infer",
            "--model",
            str(tiny_student_dir),
            "--data",
            str(synth_dir),
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert rc == 2 and "must be a folder" in capsys.readouterr().err
