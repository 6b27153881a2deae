"""The synthetic Med-GRIT generator (issue 2): determinism, exact boxes, format, no answer leaks."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from clinkd.data.boxes import parse_boxes
from clinkd.data.formats import read_dataset_dir
from clinkd.data.sample import MODALITIES, TASKS, strip_image_tag
from clinkd.data.synth import DEFAULT_IMAGES, generate, render, text_corpus
from clinkd.data.synth import dataset as ds_mod
from clinkd.data.synth import templates as T
from clinkd.data.synth.scene import tight_box
from clinkd.data.synth.text import names_for

N_SMALL = 40  # 5 images per modality: 1 test + 4 train each


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate(out, seed=3, n_images=N_SMALL, workers=1)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- rendering -------------------------------------------------------------------------------------
@pytest.mark.parametrize("modality", MODALITIES)
def test_every_box_is_the_tight_box_of_its_mask(modality):
    for k in range(4):
        si = render(modality, np.random.default_rng([11, k]))
        assert si.objects, f"{modality} image {k} has no annotated object"
        assert si.image.mode == ("RGB" if modality in ("endoscopy", "dermoscopy", "fundus") else "L")
        assert 200 <= si.width <= 320 and 200 <= si.height <= 320
        for obj in si.objects:
            assert obj.name in T.CATALOGUE
            assert obj.mask.shape == (si.height, si.width) and obj.mask.dtype == bool
            ys, xs = np.nonzero(obj.mask)
            assert xs.size > 0
            # Independent definition: (x_min, y_min, x_max + 1, y_max + 1).
            assert obj.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), obj.name
            assert obj.box == tight_box(obj.mask)
            # Through the 0-1000 text scale and back: contains every pixel, each side touches one.
            x1, y1, x2, y2 = obj.norm_box(si.width, si.height).to_pixels(si.width, si.height)
            assert x1 <= xs.min() + 1 and y1 <= ys.min() + 1, obj.name
            assert x2 >= xs.max() + 1 - 1 and y2 >= ys.max() + 1 - 1, obj.name
            assert abs(x1 - xs.min()) <= 1 and abs(y1 - ys.min()) <= 1
            assert abs(x2 - (xs.max() + 1)) <= 1 and abs(y2 - (ys.max() + 1)) <= 1
            assert not obj.norm_box(si.width, si.height).problems()


def test_tight_box_definition():
    m = np.zeros((10, 20), bool)
    assert tight_box(m) is None
    m[2:5, 7:9] = True
    m[6, 3] = True
    assert tight_box(m) == (3, 2, 9, 7)


def test_some_modalities_are_not_square():
    sizes = {m: render(m, np.random.default_rng(0)).image.size for m in MODALITIES}
    assert sizes["ultrasound"][0] > sizes["ultrasound"][1]
    assert any(w != h for w, h in sizes.values() if (w, h) != sizes["ultrasound"])


@pytest.mark.parametrize("modality", MODALITIES)
def test_render_is_a_function_of_the_generator_and_varies(modality):
    a = render(modality, np.random.default_rng(5))
    b = render(modality, np.random.default_rng(5))
    assert a.image.tobytes() == b.image.tobytes()
    assert [(o.name, o.box) for o in a.objects] == [(o.name, o.box) for o in b.objects]
    layouts = {
        tuple((o.name, o.box) for o in render(modality, np.random.default_rng(s)).objects) for s in range(6)
    }
    assert len(layouts) == 6, "structures must move between images"


def test_render_rejects_unknown_modality():
    with pytest.raises(ValueError, match="unknown modality"):
        render("xray", np.random.default_rng(0))


# -- dataset files ---------------------------------------------------------------------------------
def test_generate_writes_the_med_grit_layout(small):
    names = {p.name for p in small.iterdir()}
    assert names == {"images", "train.json", "test_VG.json", "test_RO.json", "test_GC.json", "test_MII.json"}
    images = sorted(p.name for p in (small / "images").iterdir())
    assert len(images) == N_SMALL
    assert all(re.fullmatch(r"[a-z]+_\d{5}\.png", n) for n in images)

    train = json.loads((small / "train.json").read_text())
    train_images = set()
    for rec in train:
        conv = rec["conversations"]
        assert [t["from"] for t in conv] == ["user", "assistant"] * (len(conv) // 2)
        assert 3 <= len(conv) // 2 <= 6
        assert conv[0]["value"].startswith(f"<img>{rec['id']}.png</img>\n")
        assert all("<img>" not in t["value"] for t in conv[1:])
        train_images.add(rec["id"] + ".png")

    test_images: dict[str, set] = {}
    cover = set()
    for task in TASKS:
        recs = json.loads((small / f"test_{task}.json").read_text())
        test_images[task] = set()
        for rec in recs:
            [[q, a]] = rec["conversations"]
            assert q.startswith(f"<img>{rec['id']}.png</img>\n")
            test_images[task].add(rec["id"] + ".png")
            cover.add((rec["id"].split("_")[0], task))
            for b in parse_boxes(q + a):
                assert not b.problems() and b == b.rounded()
    assert len({frozenset(v) for v in test_images.values()}) == 1, "each test image appears in all four files"
    test_set = test_images["VG"]
    assert not train_images & test_set
    assert train_images | test_set == set(images)
    assert cover == {(m, t) for m in MODALITIES for t in TASKS}
    assert {n.split("_")[0] for n in train_images} == set(MODALITIES)

    ds = read_dataset_dir(small)  # the package's own reader takes it
    assert len(ds.train) == len(train) and all(len(ds.test[t]) == len(test_set) for t in TASKS)


def test_answers_follow_the_task_conventions(small):
    ds = read_dataset_dir(small)
    for s in ds.test["VG"]:
        ans = s.turns[0].answer
        assert re.fullmatch(r"<ref>[a-z ]+</ref>(<box>\(\d+,\d+\),\(\d+,\d+\)</box>)+", ans), ans
    for s in ds.test["RO"]:
        assert s.turns[0].answer in T.CATALOGUE
    for s in ds.test["GC"]:
        assert "<" not in s.turns[0].answer and s.turns[0].answer.endswith(".")
    for s in ds.test["MII"]:
        assert len(s.turns[0].answer.split()) >= 10


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, small):
    again = tmp_path / "again"
    generate(again, seed=3, n_images=N_SMALL, workers=1)
    assert _files(again) == _files(small)
    other = tmp_path / "other"
    generate(other, seed=4, n_images=N_SMALL, workers=1)
    a, b = _files(small), _files(other)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a if k.endswith(".json"))
    assert sum(a[k] != b[k] for k in a) > 0.9 * len(a)


def test_parallel_rendering_gives_the_same_bytes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    generate(one, seed=1, n_images=64, workers=1)
    generate(two, seed=1, n_images=64, workers=2)
    assert _files(one) == _files(two)


def test_plan_splits_per_modality():
    items = ds_mod.plan(0, 480, 0.2)
    assert len(items) == 480
    for m in MODALITIES:
        splits = [s for mod, _, s in items if mod == m]
        assert splits.count("test") == 12 and splits.count("train") == 48
    tiny = ds_mod.plan(0, 8, 0.2)  # one image per modality stays in train
    assert all(s == "train" for *_, s in tiny)
    with pytest.raises(ValueError):
        ds_mod.plan(-1, 8, 0.2)
    with pytest.raises(ValueError):
        ds_mod.plan(0, 8, 1.5)


# -- no answer in the question ---------------------------------------------------------------------
def _all_names() -> list[str]:
    return sorted(
        {n for name in T.CATALOGUE for m in MODALITIES for n in names_for(m, name)}, key=len, reverse=True
    )


def _mentions(text: str, names: list[str]) -> list[str]:
    return [n for n in names if re.search(rf"\b{re.escape(n)}\b", text, re.I)]


def test_questions_never_leak_the_answer(small):
    ds = read_dataset_dir(small)
    names = _all_names()
    turns = [(task, s.turns[0]) for task, samples in ds.test.items() for s in samples]
    turns += [(None, t) for s in ds.train for t in s.turns]
    by_question = defaultdict(set)
    for task, turn in turns:
        q = strip_image_tag(turn.question)[0]
        if task in ("RO", "GC") or (task is None and "<box>" in q):
            assert not _mentions(q, names), q  # a box is the only pointer
            assert "<ref>" not in q
        if task == "VG" or "<ref>" in q:
            assert "<box>" not in q and not re.search(r"\(\d+,\d+\)", q), q
            assert turn.answer_boxes
        if task == "MII" or ("<ref>" not in q and "<box>" not in q):
            assert not _mentions(q, names) and q in T.MII_QUESTIONS
        by_question[q].add(turn.answer)
    # The same question gets different answers on different images: the image decides.
    vg_q = [q for q in by_question if "<ref>" in q]
    assert max(len(by_question[q]) for q in vg_q) >= 2
    assert max(len(by_question[q]) for q in T.MII_QUESTIONS if q in by_question) >= 2


def test_leak_check_catches_a_leaking_question():
    names = _all_names()
    assert _mentions("What is the liver in <box>(1,2),(3,4)</box>?", names) == ["liver"]
    assert _mentions("What is the object in <box>(1,2),(3,4)</box>?", names) == []


def test_templates_do_not_name_objects():
    names = _all_names()
    for table in (T.RO_QUESTIONS, T.GC_QUESTIONS, T.MII_QUESTIONS):
        for q in table:
            assert not _mentions(q, names), q
    for q in T.VG_QUESTIONS:
        assert not _mentions(q.replace("{ref}", ""), names), q


# -- text corpus -----------------------------------------------------------------------------------
def _words(texts) -> set[str]:
    return {w for t in texts for w in re.findall(r"[A-Za-z]+|\d", t)}


def test_text_corpus_is_what_generate_writes(small):
    corpus = text_corpus(seed=3, n_images=N_SMALL)
    ds = read_dataset_dir(small)
    written = [x for s in ds.train for t in s.turns for x in (t.question, t.answer)]
    written += [x for task in TASKS for s in ds.test[task] for t in s.turns for x in (t.question, t.answer)]
    assert corpus[: len(written)] == written


def test_text_corpus_covers_the_generator_vocabulary(tmp_path):
    words = _words(text_corpus(seed=0, n_images=8))
    texts = text_corpus(seed=9, n_images=240)  # a different, larger draw
    missing = _words(texts) - words
    assert not missing, f"words the corpus of another seed lacks: {sorted(missing)[:20]}"
    for name, (_, syns) in T.CATALOGUE.items():
        assert _words([name, *syns]) <= words


def test_default_size_is_fast(tmp_path):
    # 48 images must take well under a second each even on a loaded 2-core machine.
    t0 = time.perf_counter()
    summary = generate(tmp_path / "ds", n_images=48, workers=1)
    assert time.perf_counter() - t0 < 20
    assert summary["images"] == 48 and DEFAULT_IMAGES >= 400
    assert summary["tasks"]["test"] == dict.fromkeys(TASKS, 8)
    assert sum(summary["tasks"]["train"].values()) == summary["splits"]["train"]["turns"]
