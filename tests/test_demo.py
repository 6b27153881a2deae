"""The demo pipeline at its tiny size: every stage runs and the results have the documented shape."""

import json

import clinkd.train.rct as rct_mod
from clinkd.cli.main import main


def test_tiny_demo_end_to_end(tmp_path, monkeypatch):
    from tests.train.test_rct import BagOfWords

    monkeypatch.setattr(rct_mod, "Embedder", BagOfWords)  # RCT's embedder; SASG below uses the real one
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
        "VG", "RO", "GC", "MII"}
    assert "| *teacher (reference)* |" in md and "standard error" in md and "Pseudo-labels: the teacher answered" in md
    # stage times survive in the output folder, so a rerun that reuses stages still reports their cost
    stages = json.loads((out / "stage_seconds.json").read_text())
    assert stages == results["stage_seconds"] and stages["teacher"] > 0
    assert results["total_seconds"] >= stages["teacher"]
