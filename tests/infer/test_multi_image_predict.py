"""Answering samples of several images (report studies, issue 16) and converted benchmarks' records."""

from __future__ import annotations

import json
import shutil

import pytest

import clinkd.infer.generate as gen
from clinkd.cli.main import main
from clinkd.eval.predictions import read_predictions
from clinkd.infer.defaults import DEFAULTS
from clinkd.infer.predict import predict_file

FAST = dict(batch_size=2, max_new_tokens=4, progress=False)


@pytest.fixture
def bench(synth_dir, tmp_path):
    """A converted benchmark folder: test.json with a 2-image study and a 1-image question."""
    src = sorted((synth_dir / "images").glob("*.png"))[:3]
    root = tmp_path / "iu-xray"
    (root / "images" / "s1").mkdir(parents=True)
    shutil.copy(src[0], root / "images" / "s1" / "0.png")
    shutil.copy(src[1], root / "images" / "s1" / "1.png")
    shutil.copy(src[2], root / "images" / "x_2.png")
    recs = [
        {
            "id": "s1",
            "conversations": [
                ["<img>s1/0.png</img><img>s1/1.png</img>\nWrite the findings.", "Clear lungs."]
            ],
            "answer_type": "open",
            "benchmark": "iu-xray",
        },
        {
            "id": "x_2",
            "conversations": [["<img>x_2.png</img>\nIs the heart enlarged?", "no"]],
            "answer_type": "closed",
            "benchmark": "iu-xray",
        },
    ]
    (root / "test.json").write_text(json.dumps(recs, indent=1), encoding="utf-8")
    (root / "benchmark.json").write_text(
        json.dumps({"benchmark": "iu-xray", "kind": "report"}), encoding="utf-8"
    )
    return root


def _spy(monkeypatch):
    seen = []
    real = gen.build_batch

    def spy(processor, images, questions, *args, **kwargs):
        batch = real(processor, images, questions, *args, **kwargs)
        seen.append((list(images), list(questions), batch["image_grid_thw"].shape[0]))
        return batch

    monkeypatch.setattr(gen, "build_batch", spy)
    return seen


def test_a_study_is_answered_with_all_its_images(bench, tmp_path, tiny_student, monkeypatch):
    seen = _spy(monkeypatch)
    model, processor = tiny_student
    out = tmp_path / "pred.jsonl"
    s = predict_file(model, bench / "test.json", out, processor=processor, **FAST)
    assert s.written == 2
    ((images, questions, grids),) = seen
    assert isinstance(images[0], list) and len(images[0]) == 2 and not isinstance(images[1], list)
    assert grids == 3  # two image blocks for the study, one for the single image
    assert questions == ["Write the findings.", "Is the heart enlarged?"]  # every tag stripped
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert recs[0]["image"] == "0.png" and recs[0]["images"] == ["0.png", "1.png"]
    assert "images" not in recs[1] and recs[1]["image"] == "x_2.png"
    assert [(r["answer_type"], r["benchmark"]) for r in recs] == [("open", "iu-xray"), ("closed", "iu-xray")]
    assert list(recs[0])[:5] == ["id", "image", "question", "annotation", "response"]
    assert [p.id for p in read_predictions(out)] == [0, 1]  # the evaluator reads them
    # resuming the complete file writes nothing and refuses nothing
    assert predict_file(model, bench / "test.json", out, processor=processor, **FAST).written == 0


def test_the_benchmark_picks_the_token_limit(bench, tmp_path, tiny_student):
    model, processor = tiny_student
    out = tmp_path / "pred.jsonl"
    fast = {k: v for k, v in FAST.items() if k != "max_new_tokens"}
    predict_file(model, bench / "test.json", out, processor=processor, limit=1, **fast)
    settings = json.loads((tmp_path / "pred.settings.json").read_text())
    # the records name iu-xray: its limit, without being told
    assert settings["greedy"]["max_new_tokens"] == DEFAULTS.benchmark_max_new_tokens["iu-xray"] == 256
    # records that name no benchmark take the one given
    plain = json.loads((bench / "test.json").read_text())
    for rec in plain:
        del rec["benchmark"]
    (bench / "plain.json").write_text(json.dumps(plain), encoding="utf-8")
    out2 = tmp_path / "pred2.jsonl"
    predict_file(model, bench / "plain.json", out2, processor=processor, limit=1, benchmark="vqa-rad", **fast)
    settings = json.loads((tmp_path / "pred2.settings.json").read_text())
    assert settings["greedy"]["max_new_tokens"] == 32


def test_missing_second_image_is_named_before_any_work(bench, tmp_path, tiny_student):
    from clinkd.errors import DataError

    (bench / "images" / "s1" / "1.png").unlink()
    model, processor = tiny_student
    with pytest.raises(DataError, match=r"record 0: image .*s1/1.png not found"):
        predict_file(model, bench / "test.json", tmp_path / "p.jsonl", processor=processor, **FAST)
    assert not (tmp_path / "p.jsonl").exists()


def test_cli_benchmark_reads_test_json_and_writes_pred_name(bench, tmp_path, tiny_student_dir, capsys):
    out = tmp_path / "preds"
    args = ["infer", "--model", str(tiny_student_dir), "--data", str(bench), "--out", str(out)]
    rc = main([*args, "--benchmark", "iu-xray", "--max-new-tokens", "4", "--batch-size", "2"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["pred_iu-xray.jsonl", "pred_iu-xray.settings.json"]
    recs = [json.loads(line) for line in (out / "pred_iu-xray.jsonl").read_text().splitlines()]
    assert recs[0]["images"] == ["0.png", "1.png"] and recs[0]["benchmark"] == "iu-xray"
    assert "iu-xray: " in capsys.readouterr().out
    assert main([*args, "--benchmark", "iu-xray", "--task", "VG"]) == 2
    assert "--task names a Med-GRIT task" in capsys.readouterr().err
    assert main([*args[:-1], str(tmp_path / "x.jsonl"), "--benchmark", "slake"]) == 2
    assert "--out must be a folder" in capsys.readouterr().err


def test_generate_answers_takes_a_list_of_images_per_question(bench, tiny_student):
    from clinkd.data.images import load_image
    from clinkd.infer.generate import generate_answers

    model, processor = tiny_student
    views = [load_image(bench / "images" / "s1" / n) for n in ("0.png", "1.png")]
    (answers,) = generate_answers(model, processor, [views], ["Write the findings."], max_new_tokens=3)
    assert len(answers) == 1 and isinstance(answers[0], str)
