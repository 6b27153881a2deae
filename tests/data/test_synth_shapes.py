"""The generic shapes pretraining domain: determinism, answers true to the pixels drawn, format, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clinkd.cli.main import main
from clinkd.data.boxes import Box, parse_boxes, parse_refs
from clinkd.data.formats import read_dataset_dir, read_json
from clinkd.data.sample import MODALITIES, PRETRAINING_MODALITIES, image_tag, strip_image_tag
from clinkd.data.synth import generate_shapes
from clinkd.data.synth import shapes as S
from clinkd.data.synth import templates as T

SEED, N = 5, 24


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shapes") / "ds"
    assert generate_shapes(out, seed=SEED, n_images=N, workers=1) == out
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- determinism -------------------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_image_k_does_not_depend_on_n(tmp_path, shapes_dir):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_shapes(a, seed=SEED, n_images=3, workers=1)
    generate_shapes(b, seed=SEED, n_images=3, workers=1)
    generate_shapes(c, seed=SEED, n_images=5, workers=1)
    fa, fc = _files(a), _files(c)
    assert fa == _files(b)
    assert sorted(fa) == [
        "images/shapes_00000.png",
        "images/shapes_00001.png",
        "images/shapes_00002.png",
        "train.json",
    ]
    for k in range(3):
        assert fa[f"images/shapes_0000{k}.png"] == fc[f"images/shapes_0000{k}.png"]
        assert fa[f"images/shapes_0000{k}.png"] == (shapes_dir / f"images/shapes_0000{k}.png").read_bytes()
    assert read_json(c / "train.json")[:3] == read_json(a / "train.json")
    generate_shapes(b, seed=SEED + 1, n_images=3, workers=1)
    assert _files(b)["images/shapes_00000.png"] != fa["images/shapes_00000.png"]


def test_worker_processes_do_not_change_a_byte(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    generate_shapes(one, seed=2, n_images=64, workers=1)
    generate_shapes(two, seed=2, n_images=64, workers=2)  # 64 images: the process-pool path
    assert _files(one) == _files(two)


# -- what is drawn ------------------------------------------------------------------------------------------
def _truth(si: S.ShapesImage) -> list[tuple[str, str, Box]]:
    """(colour, shape, 0–1000 box) of every shape, the box recomputed here from the visible mask."""
    out = []
    for o in si.objects:
        ys, xs = np.nonzero(o.mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        assert o.box == box
        out.append((o.colour, o.shape, Box.from_pixels(*box, width=si.width, height=si.height).rounded()))
    return out


def test_masks_are_the_pixels_drawn_in_the_colour_named():
    palette = np.float32(list(S.COLOURS.values())) * 255
    for k in range(40):
        si = S.render_shapes(S.shapes_rngs(9, k)[0])
        assert si.image.mode == "RGB" and (si.width, si.height) in S.IMAGE_SIZES
        assert 2 <= len(si.objects) <= 5
        px = np.asarray(si.image, np.float32)
        seen = np.zeros((si.height, si.width), bool)
        for i, o in enumerate(si.objects):
            assert o.name == f"{o.colour} {o.shape}" and o.colour in S.COLOURS and o.shape in S.SHAPES
            # the visible mask: the whole shape less what later shapes cover, disjoint from the others
            later = np.zeros_like(seen)
            for m in si.full_masks[i + 1 :]:
                later |= m
            assert np.array_equal(o.mask, si.full_masks[i] & ~later)
            assert not (o.mask & seen).any()
            seen |= o.mask
            assert o.mask.sum() >= S.MIN_VISIBLE * si.full_masks[i].sum()
            # those pixels carry the named colour: the nearest palette colour to their mean, and flat
            mean = px[o.mask].mean(axis=0)
            assert list(S.COLOURS)[int(np.argmin(np.linalg.norm(palette - mean, axis=1)))] == o.colour
            assert px[o.mask].std(axis=0).max() < 1.0
        _truth(si)


def test_shape_words_match_the_geometry():
    """Unhidden shapes: box fill ratio and aspect tell the shape words apart."""
    fill_range = {
        "square": (0.97, 1.0),
        "rectangle": (0.97, 1.0),
        "circle": (0.72, 0.84),
        "ring": (0.3, 0.62),
        "star": (0.2, 0.55),
        "triangle": (0.35, 0.66),
        "diamond": (0.42, 0.6),
        "hexagon": (0.62, 0.86),
        "cross": (0.4, 0.72),
    }
    seen = set()
    for k in range(120):
        si = S.render_shapes(S.shapes_rngs(4, k)[0])
        for i, o in enumerate(si.objects):
            if not np.array_equal(o.mask, si.full_masks[i]):
                continue
            x0, y0, x1, y1 = o.box
            w, h = x1 - x0, y1 - y0
            fill = o.mask.sum() / (w * h)
            lo, hi = fill_range[o.shape]
            assert lo <= fill <= hi, (o.shape, fill)
            if o.shape in ("square", "circle", "ring", "cross"):
                assert abs(w - h) <= 1, (o.shape, w, h)
            if o.shape == "rectangle":
                assert max(w, h) >= 1.5 * min(w, h)
            if o.shape == "ring":
                assert not o.mask[(y0 + y1) // 2, (x0 + x1) // 2]
            seen.add(o.shape)
    assert seen == set(S.SHAPES)


# -- the answers ------------------------------------------------------------------------------------------
_NUM = {w: i for i, w in enumerate(S.NUMBERS)}


def _skill(q: str) -> str:
    """The skill of a question, from the template tables it matches."""
    tables = {
        "ground": (*S.GROUND_NAME, *S.GROUND_SHAPE, *S.GROUND_COLOUR),
        "refer": S.REFER,
        "describe": S.DESCRIBE,
        "count": (*S.COUNT_ALL, *S.COUNT_SHAPE, *S.COUNT_COLOUR),
    }
    found = {
        skill
        for skill, table in tables.items()
        for tpl in table
        if re.fullmatch(".+?".join(re.escape(x) for x in re.split(r"\{\w+\}", tpl)), q)
    }
    assert len(found) == 1, (q, found)
    return found.pop()


def _target(q: str) -> tuple[str, str | None]:
    """What a grounding or counting question asks about: ("name"|"shape"|"colour"|"all", word)."""
    q = re.sub(r"</?ref>", "", strip_image_tag(q)[0])
    colours, shapes = "|".join(S.COLOURS), "|".join(S.SHAPES)
    if m := re.search(rf"\b((?:{colours}) (?:{shapes}))\b", q):
        return "name", m.group(1)
    if m := re.search(rf"\b({shapes})(?:e?s)?\b", q):
        return "shape", m.group(1)
    if m := re.search(rf"\b({colours})\b", q):
        return "colour", m.group(1)
    return "all", None


def test_every_answer_is_true_to_the_picture(shapes_dir):
    ds = read_dataset_dir(shapes_dir)
    assert len(ds.train) == N and not ds.test
    skills = set()
    for sample in ds.train:
        k = int(sample.id.split("_")[1])
        assert sample.image == f"shapes_{k:05d}.png" and sample.modality == "shapes"
        assert sample.turns[0].question.startswith(image_tag(sample.image) + "\n")
        assert 3 <= len(sample.turns) <= 6
        si = S.render_shapes(S.shapes_rngs(SEED, k)[0])
        on_disk = Image.open(ds.image_dir / sample.image)
        assert on_disk.mode == "RGB" and np.array_equal(np.asarray(on_disk), np.asarray(si.image))
        truth = _truth(si)
        for turn in sample.turns:
            q, a = strip_image_tag(turn.question)[0], turn.answer
            for b in [*parse_boxes(q), *parse_boxes(a)]:
                assert not b.problems()
            skill = _skill(q)
            skills.add(skill)
            if skill == "refer":  # the box is one shape's, the answer names it
                (qbox,) = parse_boxes(q)
                names = {f"{c} {s}" for c, s, b in truth if b == qbox}
                assert names and any(S.article(n) in a for n in names), (q, a)
                assert not parse_refs(a) and not parse_boxes(a)
            elif skill == "ground":
                kind, word = _target(q)
                hits = [
                    (c, s, b)
                    for c, s, b in truth
                    if {"name": f"{c} {s}", "shape": s, "colour": c}[kind] == word
                ]
                refs = parse_refs(a)
                assert all(r.split()[0] in S.COLOURS and r.split()[1] in S.SHAPES for r in refs)
                assert all(any(f"{c} {s}" == r for c, s, _ in truth) for r in refs), "names a shape not drawn"
                # one group per name, each with every instance's box, top to bottom then left to right
                want: dict[str, list[Box]] = {}
                for c, s, b in sorted(hits, key=lambda t: (t[2].y1, t[2].x1, t[2].y2, t[2].x2)):
                    want.setdefault(f"{c} {s}", []).append(b)
                assert refs == list(want), (q, a)
                assert parse_boxes(a) == [
                    b for bs in want.values() for b in sorted(bs, key=lambda b: (b.y1, b.x1))
                ]
                assert bool(hits) == ("<ref>" in a)
                if not hits:
                    assert a.startswith(("There is no ", "There are no ", "Nothing in the picture is "))
            elif skill == "count":
                kind, word = _target(q)
                n = sum(1 for c, s, _ in truth if kind == "all" or {"shape": s, "colour": c}[kind] == word)
                said = re.match(r"There (?:is|are) (\w+) ", a).group(1)
                assert _NUM[said] == n, (q, a)
            else:  # description
                n = len(truth)
                assert re.search(rf"\b{S.NUMBERS[n]} shapes\b", a) or (n == 1 and "single shape" in a)
                for c, s, _ in truth:
                    assert f"{c} {s}" in a
                assert a.count(".") - 1 >= len(si.covers()) and not parse_boxes(a)
    assert skills == {"refer", "ground", "count", "describe"}


def test_questions_are_not_the_medical_wording():
    medical = {
        re.sub(r"\{\w+\}", "", t).strip(" ?.").lower()
        for t in (*T.VG_QUESTIONS, *T.RO_QUESTIONS, *T.GC_QUESTIONS, *T.MII_QUESTIONS)
    }
    ours = [
        re.sub(r"\{\w+\}", "", t).strip(" ?.").lower()
        for t in (*S.GROUND_NAME, *S.GROUND_SHAPE, *S.GROUND_COLOUR, *S.REFER, *S.DESCRIBE, *S.COUNT_ALL)
    ]
    assert not medical.intersection(ours)
    words = " ".join(S.shapes_vocabulary())
    for w in (*S.COLOURS, *S.SHAPES, "crosses", "hexagons", "<ref>", "<box>"):
        assert w in words


def test_shapes_is_a_pretraining_modality_not_a_med_grit_one():
    assert "shapes" in PRETRAINING_MODALITIES and "shapes" not in MODALITIES


# -- the CLI and the training path -------------------------------------------------------------------------
def test_data_check_passes_on_a_generated_folder(shapes_dir, capsys):
    assert main(["data", "check", str(shapes_dir)]) == 0
    assert f"{N} record(s), {N} image(s): OK" in capsys.readouterr().err


def test_cli_synth_domain_shapes(tmp_path, capsys, shapes_dir):
    from clinkd.cli.data import DEFAULT_SHAPES_IMAGES

    assert DEFAULT_SHAPES_IMAGES == S.DEFAULT_SHAPES_IMAGES
    out = tmp_path / "cli"
    assert (
        main(
            [
                "data",
                "synth",
                "--domain",
                "shapes",
                "--out",
                str(out),
                "--images",
                "6",
                "--seed",
                str(SEED),
                "--test-fraction",
                "0.5",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 6 and "--test-fraction is ignored" in captured.err
    assert sorted(_files(out)) == [f"images/shapes_{k:05d}.png" for k in range(6)] + ["train.json"]
    assert read_json(out / "train.json") == read_json(shapes_dir / "train.json")[:6]
    # refusals as for the medical domain: a folder that holds files needs --force; --images at least 1
    assert main(["data", "synth", "--domain", "shapes", "--out", str(out), "--images", "2"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["data", "synth", "--domain", "shapes", "--out", str(out), "--images", "2", "--force"]) == 0
    assert len(read_json(out / "train.json")) == 2
    assert (
        main(["data", "synth", "--domain", "shapes", "--out", str(tmp_path / "none"), "--images", "0"]) == 2
    )
    assert not (tmp_path / "none").exists()
    with pytest.raises(SystemExit):
        main(["data", "synth", "--domain", "bones", "--out", str(tmp_path / "x")])


def test_the_collator_labels_every_answer(shapes_dir):
    from clinkd.model import build_tiny_processor
    from clinkd.train.dataset import ConversationCollator, items_from_dataset

    ds = read_dataset_dir(shapes_dir)
    corpus = [x for s in ds.train for t in s.turns for x in (t.question, t.answer)] + S.shapes_vocabulary()
    processor = build_tiny_processor(corpus, vocab_size=1024, max_pixels=112 * 112)
    items = items_from_dataset(ds)[:2]
    batch = ConversationCollator(processor)(items)
    for row, it in enumerate(items):
        labels = batch["labels"][row]
        kept = processor.tokenizer.decode(labels[labels != -100], skip_special_tokens=False)
        assert kept == "".join(a + "<|im_end|>" for _, a in it.turns)


@pytest.mark.slow
def test_three_training_steps_on_shapes(tmp_path, shapes_dir):
    """``clinkd train`` on a shapes folder, from a student made by ``clinkd model init`` (~40 s on 2 cores)."""
    student = tmp_path / "student"
    assert main(["model", "init", "--size", "tiny-student", "--out", str(student)]) == 0
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                f"--data.dir={shapes_dir}",
                f"--model.path={student}",
                "--model.rope=stock",
                "--train.max_steps=3",
                f"--train.output_dir={run}",
            ]
        )
        == 0
    )
    assert (run / "model.safetensors").is_file()
