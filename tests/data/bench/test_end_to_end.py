"""Each benchmark's stand-in through the whole command line: synth → import → check → train → infer → eval.

The same commands a user runs on the real sets (docs/benchmarks.md), from the shipped pretrained student
base, a few SFT steps each, so that every layer meets the benchmark's real layout: several views per
report study, answer types carried from the data to the prediction file, the benchmark's token limit, and
its protocol's report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinkd.benchmarks import KINDS, NAMES
from clinkd.cli.main import main
from clinkd.data.formats import read_json
from clinkd.data.sample import IMG_TAG_RE
from clinkd.infer.defaults import BENCHMARK_MAX_NEW_TOKENS
from clinkd.model.pretrained import pretrained_path

RECIPE = Path(__file__).parents[3] / "configs" / "tiny-sft.yaml"


@pytest.mark.parametrize("name", NAMES)
def test_a_stand_in_goes_through_every_command(name, tmp_path, capsys):
    raw, data, model, preds, report = (tmp_path / d for d in ("raw", "data", "model", "preds", "report"))
    assert main(["data", "synth", "--format", name, "--out", str(raw), "--seed", "1", "--images", "8"]) == 0
    assert main(["data", "import", name, str(raw), "--out", str(data)]) == 0
    assert main(["data", "check", str(data)]) == 0
    assert main(["data", "check", "--benchmark", name, str(raw)]) == 0
    train = [
        "train",
        str(RECIPE),
        f"--data.dir={data}",
        f"--model.path={pretrained_path('student-base')}",
        f"--train.output_dir={model}",
        "--train.max_steps=3",
        "--train.per_device_train_batch_size=2",
        "--train.disable_tqdm=true",
    ]
    assert main(train) == 0
    assert (
        main(["infer", "--model", str(model), "--benchmark", name, "--data", str(data), "--out", str(preds)])
        == 0
    )
    pred_file = preds / f"pred_{name}.jsonl"
    records = [json.loads(line) for line in pred_file.read_text(encoding="utf-8").splitlines()]
    tests = read_json(data / "test.json")
    assert len(records) == len(tests) and all(r["benchmark"] == name for r in records)
    settings = json.loads((preds / f"pred_{name}.settings.json").read_text(encoding="utf-8"))
    assert settings["greedy"]["max_new_tokens"] == BENCHMARK_MAX_NEW_TOKENS[name]
    if KINDS[name] == "vqa":
        assert [r["answer_type"] for r in records] == [t["answer_type"] for t in tests]
    else:  # a study answered from all its views (IU X-Ray: frontal + lateral; MIMIC-CXR: one per entry)
        views = [len(IMG_TAG_RE.findall(t["conversations"][0][0])) for t in tests]
        assert [len(r.get("images", [r["image"]])) for r in records] == views
        assert set(views) == ({2} if name == "iu-xray" else {1})
    capsys.readouterr()
    assert main(["eval", "--benchmark", name, str(pred_file), "--out", str(report), "--bootstrap", "20"]) == 0
    result = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert result["benchmark"] == name and (report / "report.md").is_file()
    assert list((report / "plots").glob("*.png"))
    metrics = result["metrics"]
    if KINDS[name] == "vqa":
        n_closed = sum(t["answer_type"] == "closed" for t in tests)
        assert metrics["counts"] == {"closed": n_closed, "open": len(tests) - n_closed, "total": len(tests)}
        assert (
            0 <= metrics["llava_med"]["open_recall"] <= 1
            and 0 <= metrics["exact_match"]["overall_accuracy"] <= 1
        )
    else:
        assert metrics["n_reports"] == len(tests) and 0 <= metrics["Bleu_1"] <= 1
        assert (
            metrics["clinical_efficacy"] is None and "labeller" in metrics["unavailable"]["clinical_efficacy"]
        )


def test_the_whole_clinkd_recipe_runs_unchanged_on_report_studies(tmp_path, rct_bag_of_words):
    """configs/tiny-clinkd.yaml (teacher SFT → pseudo-label distillation → SFT with reflective correction)
    on imported IU X-Ray studies, two views each, at a few steps a stage."""
    raw, data, out = tmp_path / "raw", tmp_path / "data", tmp_path / "clinkd"
    assert main(["data", "synth", "--format", "iu-xray", "--out", str(raw), "--images", "8"]) == 0
    assert main(["data", "import", "iu-xray", str(raw), "--out", str(data)]) == 0
    recipe = RECIPE.with_name("tiny-clinkd.yaml")
    args = [f"--data.dir={data}", f"--train.output_dir={out}", "--train.per_device_train_batch_size=2"]
    args += ["--teacher.train.max_steps=4", "--distill.train.max_steps=3", "--student.train.max_steps=4"]
    args += ["--student.rct.sample_size=2", "--train.disable_tqdm=true"]
    assert main(["train", str(recipe), *args]) == 0
    stats = json.loads((out / "distill" / "distill_stats.json").read_text(encoding="utf-8"))
    assert stats["pseudo_labels"] > 0 and sum(stats["labelled_per_process"]) == stats["pseudo_labels"]
    (first,) = read_json(out / "student" / "rct" / "round_1.json")[:1]
    assert len(IMG_TAG_RE.findall(first["conversations"][0]["value"])) == 2  # both views replayed
    assert (out / "student" / "model.safetensors").is_file()
