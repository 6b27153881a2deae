"""``predict_file``: the published record format, read back by the evaluator, and crash-safe resume."""

from __future__ import annotations

import json
import re

import pytest

import clinkd.infer.predict as predict_mod
from clinkd.data import read_samples
from clinkd.errors import DataError
from clinkd.eval.predictions import read_predictions
from clinkd.infer.predict import predict_file, repair_tail

FAST = dict(batch_size=2, max_new_tokens=6, progress=False)


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_records_have_the_published_format(tmp_path, synth_dir, tiny_student):
    model, processor = tiny_student
    test = synth_dir / "test_RO.json"
    out = tmp_path / "pred_RO.jsonl"
    s = predict_file(model, test, out, processor=processor, limit=5, **FAST)
    assert (s.total, s.written, s.done_before) == (5, 5, 0)
    samples = read_samples(test)
    recs = [json.loads(line) for line in _lines(out)]
    assert [r["id"] for r in recs] == list(range(5))
    for r, smp in zip(recs, samples):
        assert list(r)[:5] == ["id", "image", "question", "annotation", "response"]
        assert set(r) <= {"id", "image", "question", "annotation", "response", "raw_response"}
        assert r["image"] == smp.image and r["question"] == smp.turns[0].question
        assert r["annotation"] == smp.turns[0].answer and isinstance(r["response"], str)
        assert "<img>" in r["question"]  # the question as the test file has it
    preds = read_predictions(out)  # the evaluator reads every record back, unchanged
    assert [p.to_dict() for p in preds] == [{k: v for k, v in r.items() if k != "raw_response"} for r in recs]


def test_box_markup_is_rewritten_for_the_published_regex(tmp_path, synth_dir, tiny_student, monkeypatch):
    model, processor = tiny_student
    answer = "<|object_ref_start|>liver<|object_ref_end|><|box_start|>(10,20),(300,400)<|box_end|>"
    monkeypatch.setattr(
        predict_mod, "generate_candidates", lambda m, p, ims, prompts, **kw: [[answer]] * len(prompts)
    )
    out = tmp_path / "pred_VG.jsonl"
    predict_file(model, synth_dir / "test_VG.json", out, processor=processor, limit=2, **FAST)
    resp = json.loads(_lines(out)[0])["response"]
    assert re.findall(r"<box>(.*?)</box>", resp) == ["(10,20),(300,400)"] and "<ref>liver</ref>" in resp
    raw = tmp_path / "raw_VG.jsonl"
    predict_file(
        model, synth_dir / "test_VG.json", raw, processor=processor, limit=2, box_style="raw", **FAST
    )
    assert json.loads(_lines(raw)[0])["response"] == answer


class Crash(RuntimeError):
    pass


def _crash_after(monkeypatch, k: int):
    real, calls = predict_mod.generate_candidates, []

    def flaky(*args, **kwargs):
        if len(calls) == k:
            raise Crash("killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_mod, "generate_candidates", flaky)


@pytest.mark.parametrize("select", ["greedy", "sasg"])
def test_resume_after_a_crash_gives_the_uninterrupted_file(
    tmp_path, synth_dir, tiny_student, embedder, monkeypatch, select
):
    model, processor = tiny_student
    test = synth_dir / "test_GC.json"
    kw = dict(FAST, processor=processor, limit=7, select=select, candidates=2, embedder=embedder, seed=3)
    ref = tmp_path / "ref.jsonl"
    predict_file(model, test, ref, **kw)
    want = _lines(ref)
    assert len(want) == 7

    out = tmp_path / "pred_GC.jsonl"
    _crash_after(monkeypatch, 2)  # two batches (4 records) reach the disk, the third dies
    with pytest.raises(Crash):
        predict_file(model, test, out, **kw)
    monkeypatch.undo()
    assert _lines(out) == want[:4]
    with open(out, "a", encoding="utf-8") as f:  # and the 5th record was torn mid-write
        f.write(want[4][: len(want[4]) // 2])
    s = predict_file(model, test, out, **kw)
    assert (s.done_before, s.written) == (4, 3) and s.repaired > 0
    got = _lines(out)
    assert got == want  # no loss, no duplicate, byte-identical records
    assert sorted(json.loads(x)["id"] for x in got) == list(range(7))
    # a finished file: rerunning writes nothing
    assert predict_file(model, test, out, **kw).written == 0 and _lines(out) == want


def test_resume_skips_written_ids_inside_a_batch(tmp_path, synth_dir, tiny_student):
    model, processor = tiny_student
    test = synth_dir / "test_RO.json"
    ref = tmp_path / "ref.jsonl"
    predict_file(model, test, ref, processor=processor, limit=5, **FAST)
    want = _lines(ref)
    out = tmp_path / "pred.jsonl"
    out.write_text("\n".join([want[0], want[2]]) + "\n", encoding="utf-8")  # ids 0 and 2 already there
    s = predict_file(model, test, out, processor=processor, limit=5, **FAST)
    assert s.written == 3
    got = _lines(out)
    assert sorted(got) == sorted(want) and len(got) == len(set(got))


def test_repair_tail_cuts_only_a_torn_last_line(tmp_path):
    p = tmp_path / "p.jsonl"
    good = '{"id": 0}\n{"id": 1}\n'
    p.write_text(good + '{"id": 2, "respo')
    assert repair_tail(p) > 0 and p.read_text() == good
    p.write_text(good + '{"id": 2, "respo\n')  # newline written, JSON cut: also torn
    assert repair_tail(p) > 0 and p.read_text() == good
    assert repair_tail(p) == 0 and p.read_text() == good
    p.write_text('{"id": 0')
    assert repair_tail(p) == 8 and p.read_text() == ""


def test_a_file_of_another_test_file_is_not_extended(tmp_path, synth_dir, tiny_student):
    model, processor = tiny_student
    out = tmp_path / "pred.jsonl"
    predict_file(model, synth_dir / "test_RO.json", out, processor=processor, limit=2, **FAST)
    recs = [json.loads(x) for x in _lines(out)]
    recs[1]["image"] = "pet_99999.png"
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(DataError, match=r"pred.jsonl, record line 2: record id 1"):
        predict_file(model, synth_dir / "test_RO.json", out, processor=processor, limit=4, **FAST)
    recs[1]["image"] = recs[0]["image"] = read_samples(synth_dir / "test_RO.json")[0].image
    out.write_text(json.dumps(recs[0]) + "\nnot json\n" + json.dumps(recs[0]) + "\n")
    with pytest.raises(DataError, match="line 2"):
        predict_file(model, synth_dir / "test_RO.json", out, processor=processor, limit=4, **FAST)


def test_missing_images_are_named_before_any_work(tmp_path, synth_dir, tiny_student):
    model, processor = tiny_student
    with pytest.raises(DataError, match=r"test_RO.json, record 0: image .*nowhere.* not found"):
        predict_file(
            model,
            synth_dir / "test_RO.json",
            tmp_path / "p.jsonl",
            processor=processor,
            image_dir=tmp_path / "nowhere",
            **FAST,
        )
    assert not (tmp_path / "p.jsonl").exists()


def test_prompts_are_written_in_the_models_box_convention(
    tmp_path, synth_dir, tiny_student_dir, tiny_student, monkeypatch
):
    """Inference asks in the convention the model was trained in (its config's clinkd_box_convention; an
    older clinkd folder's clinkd_run.yaml data.box_style); the records keep the test file's question."""
    import shutil

    import clinkd.infer.generate as gen
    from clinkd.data.boxes import convert_markup

    seen = []
    real = gen.build_batch

    def spy(processor, images, questions, *args, **kwargs):
        seen.append(list(questions))
        return real(processor, images, questions, *args, **kwargs)

    monkeypatch.setattr(gen, "build_batch", spy)
    test = synth_dir / "test_RO.json"
    questions = [s.prompts()[0] for s in read_samples(test)[:2]]
    assert all("<box>" in q for q in questions)  # RO questions point at a box
    model, processor = tiny_student
    predict_file(
        model, test, tmp_path / "a.jsonl", processor=processor, limit=2, **FAST
    )  # tiny model: medgrit
    assert seen[-1] == questions
    # a clinkd folder from before clinkd_box_convention: Med-GRIT text in its data.box_style
    folder = tmp_path / "trained"
    shutil.copytree(tiny_student_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["clinkd_box_convention"]
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "clinkd_run.yaml").write_text("stage: sft\ndata:\n  box_style: qwen2\n", encoding="utf-8")
    out = tmp_path / "pred_RO.jsonl"
    predict_file(folder, test, out, limit=2, **FAST)
    assert seen[-1] == [convert_markup(q, "qwen2") for q in questions] and "<|box_start|>" in seen[-1][0]
    recs = [json.loads(line) for line in _lines(out)]
    assert [r["question"] for r in recs] == [s.turns[0].question for s in read_samples(test)[:2]]
    predict_mod.predict_dataset(folder, synth_dir, tmp_path / "all", tasks="RO", limit=2, **FAST)
    assert seen[-1] == [convert_markup(q, "qwen2") for q in questions]
    # a model answering in Qwen3-VL's JSON: the box of the question as bbox_2d
    monkeypatch.setattr(model.config, "clinkd_box_convention", "qwen3_vl", raising=False)
    predict_file(model, test, tmp_path / "q3.jsonl", processor=processor, limit=2, **FAST)
    box = re.search(r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>", questions[0]).groups()
    assert '{{"bbox_2d": [{}, {}, {}, {}]}}'.format(*box) in seen[-1][0] and "<box>" not in seen[-1][0]
    settings = json.loads((tmp_path / "q3.settings.json").read_text())
    assert settings["box_convention"] == "qwen3_vl" and settings["questions_converted"] is True
    # an explicit markup wins; raw keeps the text
    predict_file(
        model, test, tmp_path / "b.jsonl", processor=processor, limit=2, question_box_style="clinkd", **FAST
    )
    assert seen[-1] == [convert_markup(q, "clinkd") for q in questions] and "<box_start>" in seen[-1][0]
    predict_file(
        model, test, tmp_path / "c.jsonl", processor=processor, limit=2, question_box_style="raw", **FAST
    )
    assert seen[-1] == questions
    with pytest.raises(Exception, match="question box style"):
        predict_file(model, test, tmp_path / "e.jsonl", processor=processor, question_box_style="xml", **FAST)


def test_answers_are_read_back_into_medgrit_with_the_raw_text_beside(
    tmp_path, synth_dir, tiny_student, monkeypatch
):
    """A model answering in Qwen2.5-VL's form (JSON, pixels of the resized image): the record's response
    is Med-GRIT 0-1000 of the original image, and the model's own text stays beside it as raw_response."""
    import torch

    from clinkd.data.conventions import resized_size
    from clinkd.data.images import image_size
    from clinkd.model.processor import pixel_budget

    model, processor = tiny_student
    monkeypatch.setattr(model.config, "clinkd_box_convention", "qwen2_5_vl", raising=False)
    raw = '```json\n[{"bbox_2d": [28, 14, 56, 42], "label": "liver"}]\n```'
    new = processor.tokenizer(raw + "<|im_end|>", add_special_tokens=False, return_tensors="pt")["input_ids"]

    def writes_raw(**kwargs):  # generate: the prompt followed by the tokens of `raw`
        ids = kwargs["input_ids"]
        return torch.cat([ids, new.expand(ids.shape[0], -1)], dim=1)

    monkeypatch.setattr(model, "generate", writes_raw)
    out = tmp_path / "pred_VG.jsonl"
    predict_file(model, synth_dir / "test_VG.json", out, processor=processor, limit=2, **FAST)
    rec = json.loads(_lines(out)[0])
    assert rec["raw_response"] == raw
    sample = read_samples(synth_dir / "test_VG.json")[0]
    lo, hi = pixel_budget(processor)
    w, h = resized_size(
        *image_size(synth_dir / "images" / sample.image), factor=28, min_pixels=lo, max_pixels=hi
    )
    expected = [round(28 * 1000 / w), round(14 * 1000 / h), round(56 * 1000 / w), round(42 * 1000 / h)]
    assert rec["response"] == "<ref>liver</ref><box>({},{}),({},{})</box>".format(*expected)
    raw_file = tmp_path / "raw_VG.jsonl"  # box_style raw: the model's own text as the response
    predict_file(
        model, synth_dir / "test_VG.json", raw_file, processor=processor, limit=1, box_style="raw", **FAST
    )
    assert json.loads(_lines(raw_file)[0])["response"] == raw
