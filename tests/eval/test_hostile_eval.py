"""Hostile input to ``clinkd eval`` (issue 13): exit status 2 with one line naming the file and line, no
traceback, inputs unchanged; and where the published pipeline itself misbehaves, clinkd's sound behaviour
is reported under ``conventions`` with the records concerned."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from eval_helpers import write_jsonl

import clinkd.eval.coco_java as coco_java
from clinkd.cli.main import main

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")


def _digest(paths) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() if Path(p).is_file() else "-" for p in paths
    }


def refused(capsys, argv, inputs, *expected) -> str:
    before = _digest(inputs)
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert rc == 2, captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err
    assert _digest(inputs) == before
    for part in expected:
        assert part in captured.err, (part, captured.err)
    return captured.err


def rec(i: int, image: str = "ct_1.png", annotation: str = "liver", response: str = "liver") -> dict:
    return {"id": i, "image": image, "question": "q", "annotation": annotation, "response": response}


@pytest.mark.parametrize(
    "content, skip", [(b"", False), (b"\n  \n\n", False), (b'oops\n{"id": 1}\n[]\n', True)]
)
def test_an_empty_prediction_file_is_refused(tmp_path, capsys, content, skip):
    path = tmp_path / "pred_RO.jsonl"
    path.write_bytes(content)
    err = refused(
        capsys,
        ["eval", path, "--out", tmp_path / "r", *(["--skip-invalid"] if skip else [])],
        [path],
        "pred_RO.jsonl: holds no prediction records",
    )
    assert ("3 invalid line(s) skipped" in err) == skip
    assert not (tmp_path / "r" / "report.json").exists()


def test_duplicate_ids_are_refused(tmp_path, capsys):
    """Three copies of one record used to score strict F1 = 1.0."""
    path = write_jsonl(
        tmp_path / "pred_VG.jsonl",
        [rec(0, annotation="<box>(1,1),(9,9)</box>", response="<box>(1,1),(9,9)</box>")] * 3,
    )
    refused(
        capsys,
        ["eval", path, "--out", tmp_path / "r"],
        [path],
        "pred_VG.jsonl, record 2: line 2 repeats id 0, already given at line 1",
    )
    refused(capsys, ["eval", path, "--out", tmp_path / "r", "--skip-invalid"], [path], "line 2 repeats id 0")
    a = write_jsonl(
        tmp_path / "a_RO.jsonl", [rec(0), rec(1)]
    )  # shards of one task: ids must not repeat across
    b = write_jsonl(tmp_path / "b_RO.jsonl", [rec(2), rec(1)])
    refused(capsys, ["eval", a, b, "--out", tmp_path / "r"], [a, b], "b_RO.jsonl, record 2", "of " + str(a))


@pytest.mark.parametrize(
    "options, named",
    [
        (["--bootstrap", "-1"], "--bootstrap"),
        (["--bootstrap", "10000000000"], "--bootstrap"),
        (["--seed", "-1"], "--seed"),
        (["--max-caption-tokens", "0"], "--max-caption-tokens"),
    ],
)
def test_impossible_settings_are_named(tmp_path, capsys, options, named):
    path = write_jsonl(tmp_path / "pred_RO.jsonl", [rec(0)])
    refused(capsys, ["eval", path, "--out", tmp_path / "r", *options], [path], named)
    assert not (tmp_path / "r").exists()


def test_report_folders_are_checked_before_scoring(tmp_path, capsys):
    path = write_jsonl(tmp_path / "pred_RO.jsonl", [rec(0)])
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    refused(capsys, ["eval", path, "--out", blocker], [path, blocker], "is a file")
    refused(capsys, ["eval", path, "--out", blocker / "r"], [path, blocker], "is a file, not a folder")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    refused(
        capsys,
        ["eval", path, "--out", busy],
        [path, busy / "notes.txt"],
        "is not empty (notes.txt)",
        "--force",
    )
    assert main(["eval", str(path), "--out", str(busy), "--force", "--no-plots", "--bootstrap", "0"]) == 0
    assert (busy / "notes.txt").read_text() == "mine"
    # an earlier report is overwritten without --force; an input named like a report file is not
    assert main(["eval", str(path), "--out", str(busy / "again"), "--no-plots", "--bootstrap", "0"]) == 0
    assert main(["eval", str(path), "--out", str(busy / "again"), "--no-plots", "--bootstrap", "0"]) == 0
    shutil.copy(path, busy / "again" / "report.json")
    refused(
        capsys,
        ["eval", busy / "again" / "report.json", "--task", "RO", "--out", busy / "again"],
        [busy / "again" / "report.json"],
        "would overwrite the input",
    )
    (busy / "plots_as_file").mkdir()
    (busy / "plots_as_file" / "plots").write_text("x")
    refused(capsys, ["eval", path, "--out", busy / "plots_as_file"], [path], "plots is a file")
    capsys.readouterr()


def test_odd_input_paths(tmp_path, capsys):
    folder = tmp_path / "pred_RO.jsonl"
    folder.mkdir()
    refused(capsys, ["eval", folder, "--out", tmp_path / "r"], [], "pred_RO.jsonl: not a prediction file")
    fifo = tmp_path / "pipe_RO.jsonl"
    os.mkfifo(fifo)  # reading it would wait forever
    refused(capsys, ["eval", fifo, "--out", tmp_path / "r"], [], "pipe_RO.jsonl: not a prediction file")
    refused(capsys, ["eval", tmp_path / "none_RO.jsonl", "--out", tmp_path / "r"], [], "none_RO.jsonl")


class InstantMeteor:
    """A METEOR stand-in scoring 0 at once (the real JVM takes ~10 s to load; METEOR is not what is tested here)."""

    def __init__(self):
        pass

    def stats(self, hyps, refs):
        return [" ".join(["0.0"] * coco_java.STATS_WIDTH)] * len(hyps)

    def evaluate_summed_many(self, groups):
        return [0.0] * len(groups)

    def close(self):
        pass


@needs_java
def test_published_pipeline_failures_are_counted_and_captions_scored_whole(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(coco_java, "MeteorProcess", InstantMeteor)
    long_tail = "x " * 2100 + "the liver is enlarged"  # its only matches lie past the 2,000 tokens once kept
    records = [
        rec(0, "ct_1.png", "a small lesion in the liver", "a small\r lesion in the liver"),
        rec(1, "ct_2.png", "a cyst in the left kidney", "a cyst in the\u2028 left kidney"),
        rec(2, "ct_3.png", "a cyst", "a cyst \ud800"),
        rec(3, "ct_4.png", "a normal scan", "a" * 120_000),
        rec(4, "mr_1.png", "the liver is enlarged", long_tail),
        rec(5, "xray_1.png", "clear lungs", "clear lungs"),  # not one of the eight modalities
    ]
    path = write_jsonl(tmp_path / "pred_GC.jsonl", records)
    out = tmp_path / "r"
    assert main(["eval", str(path), "--out", str(out), "--no-plots", "--bootstrap", "0", "--no-spice"]) == 0
    assert "published_pipeline" in capsys.readouterr().out
    data = json.loads((out / "report.json").read_text())
    conv = data["conventions"]
    assert conv["caption_length"]["max_tokens"] is None and data["settings"]["max_caption_tokens"] is None
    assert conv["published_pipeline"]["counts"]["GC"] == {
        "line_breaks": 2,
        "lone_surrogates": 1,
        "over_100k_characters": 1,
        "absent_modalities": 6,
        "other_modalities": 1,
    }
    assert set(conv["published_pipeline"]["what"]) >= set(conv["published_pipeline"]["counts"]["GC"])
    assert data["standard"]["GC"]["per_modality"]["mr"]["Bleu_1"] > 1e-3  # the answer's end was scored
    assert "published_pipeline" in (out / "report.md").read_text()
    # the bound, asked for: counted, and said not to be the standard reading
    assert (
        main(
            [
                "eval",
                str(path),
                "--out",
                str(out),
                "--no-plots",
                "--bootstrap",
                "0",
                "--no-spice",
                "--max-caption-tokens",
                "2000",
            ]
        )
        == 0
    )
    assert "cut 1 response(s) and 0 reference(s) (not the standard reading)" in capsys.readouterr().out
    data = json.loads((out / "report.json").read_text())
    assert data["conventions"]["caption_length"]["responses_cut"] == {"GC": 1}
    assert "NOT the standard reading" in data["conventions"]["caption_length"]["note"]
    assert data["standard"]["GC"]["per_modality"]["mr"]["Bleu_1"] < 1e-9  # cut before its matches


@needs_java
def test_a_caption_meteor_cannot_align_is_named(tmp_path, capsys, monkeypatch):
    """METEOR's aligner dies on a response of ~20,000 matching words (pycocoevalcap's too): the error names the
    record and the way out instead of a broken pipe."""
    path = write_jsonl(
        tmp_path / "pred_MII.jsonl",
        [rec(0, "ct_1.png", "a cyst", "a cyst"), rec(7, "ct_2.png", "the liver", "the liver " * 20_000)],
    )

    class DyingMeteor(InstantMeteor):
        def stats(self, hyps, refs):  # what the real process does on the second caption, without its 2 GB
            raise coco_java.MeteorDied("the METEOR process ended unexpectedly", 1)

    monkeypatch.setattr(coco_java, "MeteorProcess", DyingMeteor)
    refused(
        capsys,
        ["eval", path, "--out", tmp_path / "r", "--no-plots", "--bootstrap", "0"],
        [path],
        "METEOR's process died on pred_MII.jsonl line 2 (id 7)",
        "40000 tokens",
        "--max-caption-tokens 2000",
    )
