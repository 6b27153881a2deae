"""The demo pipeline at its tiny size: every stage runs and the results have the documented shape."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clinkd.cli.main import main


def test_tiny_demo_end_to_end(tmp_path, rct_bag_of_words):  # RCT's embedder replaced; SASG uses the real one
    out = tmp_path / "demo"
    assert main(["demo", "--size", "tiny", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    names = [r["name"] for r in results["rows"]]
    assert names == ["baseline", "+ MCG-RoPE", "+ pseudo-KD", "+ RCT", "ClinKD"]
    assert results["rows"][-1]["settings"]["selection"] == "sasg"
    for r in results["rows"]:
        assert set(r["metrics"]) == {"VG", "RO", "GC", "MII"}
        assert "recall@0.5" in r["metrics"]["VG"] and "mBMR" in r["metrics"]["MII"]
    md = (out / "results.md").read_text()
    assert "| ClinKD | mcg | yes | yes | sasg |" in md and "vs **baseline**" in md
    for slug in ("baseline", "mcg-rope", "pseudo-kd", "rct", "clinkd", "teacher-reference"):
        assert (out / "predictions" / slug / "pred_VG.jsonl").is_file()
    # the teacher's own answers are reported beside the ablation, not in it
    assert results["teacher"]["name"] == "teacher (reference)" and set(results["teacher"]["metrics"]) == {
        "VG",
        "RO",
        "GC",
        "MII",
    }
    assert "| *teacher (reference)* |" in md and "Pseudo-labels: the teacher answered" in md
    assert "Differences from the baseline" in md and "95% intervals" in md
    for r in results["rows"][1:]:
        assert set(r["vs_baseline"]) == {"VG", "RO", "GC", "MII"}
        d = r["vs_baseline"]["VG"]["recall@0.5"]
        assert d["ci95"][0] <= d["difference"] <= d["ci95"][1]
    # stage times survive in the output folder, so a rerun that reuses stages still reports their cost
    stages = json.loads((out / "stage_seconds.json").read_text())
    assert stages == results["stage_seconds"] and stages["baseline"] > 0
    assert results["total_seconds"] >= stages["baseline"]
    # every row starts from the shipped student base; the KD rows distil from the shipped teacher
    from clinkd.model.pretrained import pretrained_card, pretrained_path

    assert results["pretrained"]["teacher"]["sha256"] == pretrained_card("teacher")["sha256"]
    distill = yaml.safe_load((out / "models" / "distill" / "clinkd_run.yaml").read_text())
    assert Path(distill["distill"]["teacher"]) == pretrained_path("teacher")
    for stage in ("baseline", "mcg", "distill"):
        run = yaml.safe_load((out / "models" / stage / "clinkd_run.yaml").read_text())
        assert Path(run["model"]["path"]) == pretrained_path("student-base")
    assert results["threads"]["OMP_DYNAMIC"] == "FALSE"


def _comparable(results: dict) -> dict:
    """results.json without what a rerun may change: times, the machine line."""
    results = dict(results)
    for key in ("wall_seconds", "total_seconds", "stage_seconds", "machine"):
        results.pop(key)
    results["rows"] = [{k: v for k, v in r.items() if k != "seconds"} for r in results["rows"]]
    results["teacher"] = {k: v for k, v in results["teacher"].items() if k != "seconds"}
    return results


@pytest.mark.slow
def test_tiny_demo_gives_the_same_bits_beside_a_cpu_burning_process(tmp_path):
    """Twice from scratch, in fresh processes: once on a quiet machine, once while other processes keep every
    core busy. Training and inference must not depend on the load (thread pools pinned: clinkd.runtime)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "clinkd.cli.main", "demo", "--size", "tiny", "--out"]
    subprocess.run(cmd + [str(tmp_path / "quiet")], check=True, env=env, capture_output=True)
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)
    ]
    try:
        subprocess.run(cmd + [str(tmp_path / "busy")], check=True, env=env, capture_output=True)
    finally:
        for b in burners:
            b.kill()
    quiet, busy = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("quiet", "busy"))
    assert _comparable(quiet) == _comparable(busy)
    for stage in ("baseline", "mcg", "distill", "kd-sft", "kd-sft-rct"):
        a, b = (tmp_path / d / "models" / stage / "model.safetensors" for d in ("quiet", "busy"))
        assert a.read_bytes() == b.read_bytes(), stage


def _diagnose():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "diagnose_demo.py"
    spec = importlib.util.spec_from_file_location("diagnose_demo", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_diagnosis_tells_a_missing_box_from_a_misplaced_one():
    g = _diagnose().grounding(
        [
            {
                "annotation": "<ref>liver</ref><box>(100,100),(300,300)</box>",
                "response": "<ref>liver</ref><box>(100,100),(300,300)</box>",
            },  # right
            {
                "annotation": "<ref>liver</ref><box>(100,100),(300,300)</box>",
                "response": "<ref>spleen</ref><box>(600,600),(900,900)</box>",
            },  # a box, wrong name and place
            {
                "annotation": "<ref>liver</ref><box>(100,100),(300,300)</box>",
                "response": "the liver",
            },  # no box
        ]
    )
    assert g["n"] == 3 and g["has_box"] == 2 / 3 and g["names_structure"] == 1 / 3
    assert g["median_iou"] == 0.0 and g["iou>=0.3"] == 1 / 3


def test_training_questions_take_one_turn_per_task_and_image(tmp_path):
    from clinkd.data import read_samples, synth

    synth.generate(tmp_path / "data", seed=0, n_images=24)
    files = _diagnose().training_questions(tmp_path / "data", tmp_path / "q", per_task=6)
    assert set(files) == {"VG", "RO", "GC", "MII"}
    for task, path in files.items():
        samples = read_samples(path, task=task)
        assert len(samples) == 6 and len({s.id for s in samples}) == 6
        assert len({s.modality for s in samples}) > 1  # drawn across the split, not its first images


def test_the_demo_never_writes_into_or_deletes_a_users_folder(tmp_path, capsys):
    """--out naming a folder the demo did not write is refused (with --fresh too: nothing deleted); a path
    under a file is refused; the demo's own folder is reused, or emptied by --fresh."""
    from clinkd.cli.main import main
    from clinkd.pipelines.demo import DEMO_MARKER, demo_folder

    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    for extra in ([], ["--fresh"]):
        assert main(["demo", "--out", str(mine), "--size", "tiny", *extra]) == 2
        assert "did not write" in capsys.readouterr().err
    assert (mine / "chapter1.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    assert main(["demo", "--out", str(mine / "chapter1.tex" / "demo"), "--size", "tiny"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    ours = demo_folder(tmp_path / "demo", fresh=False)
    (ours / "stage.json").write_text("{}")
    assert demo_folder(ours, fresh=False) == ours and (ours / "stage.json").exists()
    demo_folder(ours, fresh=True)
    assert [p.name for p in ours.iterdir()] == [DEMO_MARKER]
