"""Samples of several images (report studies, issue 16) and the converted benchmarks' extra record keys."""

from __future__ import annotations

import json

import pytest

from clinkd.data.formats import parse_records, read_samples, to_records, write_samples
from clinkd.data.sample import Sample, Turn, strip_image_tags
from clinkd.errors import DataError

QUESTION = "<img>CXR1_1_IM-0001/0.png</img><img>CXR1_1_IM-0001/1.png</img>\nWrite the findings of this study."
REPORT = "The heart is normal in size. The lungs are clear."


def _test_record(**extra):
    return {"id": "CXR1_1_IM-0001", "conversations": [[QUESTION, REPORT]], **extra}


def test_several_image_tags_give_every_image_in_order():
    (s,), problems = parse_records([_test_record(benchmark="iu-xray")], "test.json", fmt="test")
    assert not problems
    assert s.images == ["CXR1_1_IM-0001/0.png", "CXR1_1_IM-0001/1.png"]
    assert s.image == "CXR1_1_IM-0001/0.png"  # the first: single-image code keeps working
    assert s.prompts() == ["Write the findings of this study."]
    assert s.meta == {"benchmark": "iu-xray"}


def test_strip_image_tags_matches_strip_image_tag_on_one_tag():
    from clinkd.data.sample import strip_image_tag

    for text in ("<img>ct_1.png</img>\nWhere is the liver?", "Where is <img>ct_1.png</img> it?", "no tag"):
        one, first = strip_image_tag(text)
        every, names = strip_image_tags(text)
        assert one == every and ([first] if first else []) == names


def test_single_image_sample_has_one_image_and_no_meta():
    (s,), _ = parse_records(
        [{"id": "ct_00012", "conversations": [["<img>ct_00012.png</img>\nWhere?", "here"]]}], "test_VG.json"
    )
    assert s.images == ["ct_00012.png"] and s.meta == {}
    assert Sample("x", "a.png", [Turn("q", "a")]).images == ["a.png"]


def test_meta_keys_round_trip_and_only_known_keys_are_kept(tmp_path):
    recs = [
        _test_record(answer_type="open", benchmark="vqa-rad"),
        {**_test_record(answer_type="closed"), "id": "b"},
    ]
    path = tmp_path / "test.json"
    path.write_text(json.dumps(recs, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    samples = read_samples(path)
    assert [s.meta for s in samples] == [
        {"answer_type": "open", "benchmark": "vqa-rad"},
        {"answer_type": "closed"},
    ]
    out = write_samples(samples, tmp_path / "again.json", "test")
    assert out.read_bytes() == path.read_bytes()  # byte-identical, multi-image questions included
    (s,), _ = parse_records([_test_record(source="mimic", answer_type="open")], "test.json", fmt="test")
    assert s.meta == {"answer_type": "open"}  # unknown keys are not kept


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"answer_type": "yes/no"}, "'answer_type' must be one of closed, open"),
        ({"answer_type": 1}, "'answer_type' must be one of"),
        ({"benchmark": ""}, "'benchmark' must be a non-empty string"),
        ({"benchmark": ["iu-xray"]}, "'benchmark' must be a non-empty string"),
    ],
)
def test_bad_meta_values_are_named(extra, message):
    _, problems = parse_records([_test_record(**extra)], "test.json", fmt="test")
    assert len(problems) == 1 and message in problems[0].message


def test_sharegpt_several_images_round_trip(tmp_path):
    (s,), _ = parse_records([_test_record()], "test.json", fmt="test")
    (rec,) = to_records([s], "sharegpt")
    assert rec["images"] == s.images
    assert rec["messages"][0]["content"] == "<image><image>\nWrite the findings of this study."
    (back,), problems = parse_records([rec], "train.json", fmt="sharegpt")
    assert not problems
    assert back.images == s.images and back.turns[0].question == QUESTION


def test_sharegpt_image_count_must_match_tokens():
    rec = {
        "images": ["a/0.png", "a/1.png"],
        "messages": [
            {"role": "user", "content": "<image>\nfindings?"},
            {"role": "assistant", "content": "ok"},
        ],
    }
    _, problems = parse_records([rec], "train.json", fmt="sharegpt")
    assert "lists 2 image paths but the user messages hold 1 <image> token(s)" in problems[0].message
    for images in ([], "a.png", ["a.png", 3]):
        _, problems = parse_records([{**rec, "images": images}], "train.json", fmt="sharegpt")
        assert "'images' must be a non-empty list of image paths" in problems[0].message


def test_sharegpt_single_image_reads_as_before():
    rec = {
        "images": ["ct_1.png"],
        "messages": [
            {"role": "user", "content": "<image>\nWhere?"},
            {"role": "assistant", "content": "here"},
        ],
    }
    (s,), _ = parse_records([rec], "train.json", fmt="sharegpt")
    assert s.images == ["ct_1.png"] and s.turns[0].question == "<img>ct_1.png</img>\nWhere?"
    (again,) = to_records([s], "sharegpt")
    assert again["messages"] == rec["messages"] and again["images"] == rec["images"]


def test_train_form_and_dataset_image_paths(tmp_path):
    rec = {
        "id": "s1",
        "conversations": [{"from": "user", "value": QUESTION}, {"from": "assistant", "value": REPORT}],
    }
    (tmp_path / "images").mkdir()
    (tmp_path / "train.json").write_text(json.dumps([rec]), encoding="utf-8")
    from clinkd.data.formats import read_dataset_dir

    ds = read_dataset_dir(tmp_path)
    (s,) = ds.train
    assert s.images == ["CXR1_1_IM-0001/0.png", "CXR1_1_IM-0001/1.png"]
    assert ds.image_paths(s) == [tmp_path / "images" / n for n in s.images]
    bad = Sample("x", "a.png", [Turn("q", "a")], images=["a.png", "../../etc/passwd"])
    with pytest.raises(DataError):
        ds.image_paths(bad)


def test_images_must_start_with_image():
    with pytest.raises(ValueError, match="is not the sample's image"):
        Sample("x", "a.png", [Turn("q", "a")], images=["b.png", "a.png"])
