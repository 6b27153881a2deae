"""``clinkd eval`` end to end: files in, report.json / report.md / plots out, bad input handled."""

import json
import random
import shutil

import pytest
from eval_helpers import box, write_jsonl

from clinkd.cli.main import main

MODS = ("ct", "mr", "x", "pet", "endoscopy", "dermoscopy", "fundus", "ultrasound")
GARBAGE = [
    "",
    "\n\n\n",
    "<box>" * 5000,
    "(1,2),(3" * 100,
    "\u2028\r\x85\x00\ud800 🩻",
    "|||" * 50,
    "<|im_end|>\n" * 3,
    "a" * 300_000,
    "<box>(1e9,2),(-3,nan)</box>",
    "\t \x0b\x0c",
]


def _records(task: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        m = MODS[i % 7]  # ultrasound stays absent
        if task == "VG":
            ann = box(100, 100, 300, 300)
            resp = rng.choice([ann, box(110, 90, 310, 280), "nothing", *GARBAGE])
        elif task == "RO":
            ann = rng.choice(["liver", "left kidney"])
            resp = rng.choice([ann, f"The {ann}.", "spleen", *GARBAGE])
        else:
            ann = rng.choice(["a small lesion in the liver", "the left kidney shows a cyst"])
            resp = rng.choice([ann, "a lesion in the kidney", *GARBAGE])
        out.append({"id": i, "image": f"{m}_{i}.png", "question": "q", "annotation": ann, "response": resp})
    out.append({"id": n, "image": "us_1.png", "question": "q", "annotation": "liver", "response": "liver"})
    return out


def test_cli_writes_the_report_and_handles_garbage(tmp_path, capsys):
    if shutil.which("java") is None:
        pytest.skip("needs Java")
    files = []
    for task in ("VG", "RO", "GC", "MII"):
        files.append(write_jsonl(tmp_path / f"pred_{task}.jsonl", _records(task, 40, len(files))))
    with open(files[1], "a") as f:  # a malformed line in the RO file
        f.write('{"id": 99, "image": "ct_9.png", "annot\n')
    out = tmp_path / "report"
    # without --skip-invalid: a clear error naming the file and line, exit status 2
    assert main(["eval", *map(str, files), "--out", str(out), "--bootstrap", "50"]) == 2
    err = capsys.readouterr().err
    assert "pred_RO.jsonl, record 42: line 42 is not a valid" in err
    assert main(["eval", *map(str, files), "--out", str(out), "--bootstrap", "50", "--skip-invalid"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 invalid line" in printed and "VG   standard recall@0.5" in printed

    data = json.loads((out / "report.json").read_text())
    assert set(data["standard"]) == set(data["strict"]) == {"VG", "RO", "GC", "MII"}
    assert [i["n_skipped"] for i in data["inputs"]] == [0, 1, 0, 0]
    gc, mii = data["standard"]["GC"], data["standard"]["MII"]
    for metric in ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"):
        assert isinstance(gc[metric], float) and isinstance(mii[metric], float)
    assert gc["SPICE"] is None and gc["unavailable"]["SPICE"]
    assert isinstance(mii["mBMR"], float)
    assert data["standard"]["RO"]["other_modalities"]["us"]["n_samples"] == 1
    assert "ultrasound" in data["standard"]["VG"]["absent_modalities"]
    assert 0 <= data["standard"]["VG"]["recall@0.5"] <= 1
    assert set(data["strict"]["VG"]["ci95"]) == {"precision", "recall", "f1", "mean_iou"}

    md = (out / "report.md").read_text()
    for task in ("VG", "RO", "GC", "MII"):
        assert f"## {task}" in md and f"plots/{task}_per_modality.png" in md
        assert (out / "plots" / f"{task}_per_modality.png").stat().st_size > 5000
    assert (out / "plots" / "VG_iou_histogram.png").exists()
    assert "SPICE unavailable" in md


def test_cli_task_option_and_name_errors(tmp_path, capsys, records):
    path = write_jsonl(tmp_path / "predictions.jsonl", [records("ct_1.png", "liver", "liver")])
    assert main(["eval", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "pass --task" in capsys.readouterr().err
    assert main(["eval", str(path), "--task", "RO", "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    data = json.loads((tmp_path / "o" / "report.json").read_text())
    assert data["standard"]["RO"]["per_modality"]["ct"]["accuracy"] == 1.0
    assert not (tmp_path / "o" / "plots" / "RO_per_modality.png").exists()
