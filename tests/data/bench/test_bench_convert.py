"""Stand-ins (real layout, determinism, answers true of the images), conversion to a clinkd dataset
folder (read back by the Med-GRIT readers) and the CLI."""

import json
from pathlib import Path

import pytest

from clinkd.cli.main import main
from clinkd.data.bench import BENCHMARKS, check_benchmark, read_benchmark
from clinkd.data.bench.convert import REPORT_INSTRUCTION, convert_benchmark
from clinkd.data.bench.synth import write_standin
from clinkd.data.formats import read_dataset_dir, read_json, read_samples
from clinkd.data.images import image_path
from clinkd.data.sample import IMG_TAG_RE

NAMES = list(BENCHMARKS)
LAYOUT = {
    "vqa-rad": ["VQA_RAD Dataset Public.json", "VQA_RAD Image Folder/synpic40001.jpg"],
    "slake": ["train.json", "validate.json", "test.json", "imgs/xmlab0/source.jpg"],
    "pathvqa": [f"data/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")],
    "iu-xray": ["annotation.json", "images/CXR1001_IM-0000/0.png", "images/CXR1001_IM-0000/1.png"],
    "mimic-cxr": ["annotation.json"],
}


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return {n: write_standin(n, root / n, seed=3, n_images=10) and root / n for n in NAMES}


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", NAMES)
def test_standin_layout_reads_clean(standins, name):
    root = standins[name]
    for rel in LAYOUT[name]:
        assert (root / rel).is_file(), rel
    assert check_benchmark(name, root) == []
    data = read_benchmark(name, root)
    assert set(data.counts()) >= {"train", "test"}
    kind = BENCHMARKS[name].kind
    for rec in data.records:
        assert (rec.question is None) == (kind == "report")
        assert (rec.answer_type in ("closed", "open")) == (kind == "vqa")


def test_standin_is_deterministic(tmp_path, standins):
    for name in ("vqa-rad", "pathvqa", "mimic-cxr"):
        write_standin(name, tmp_path / name, seed=3, n_images=10)
        assert _tree(tmp_path / name) == _tree(standins[name]), name
    write_standin("iu-xray", tmp_path / "other", seed=4, n_images=10)
    assert _tree(tmp_path / "other") != _tree(standins["iu-xray"])


def test_standin_answers_are_true_of_the_image(standins):
    data = read_benchmark("vqa-rad", standins["vqa-rad"])
    organ_modality = {"ABD": "CT", "HEAD": "MRI", "CHEST": "X-ray"}
    for rec in data.records:
        if rec.question == "What imaging modality was used?":
            assert rec.answer == organ_modality[rec.meta["image_organ"]]
    assert {r.answer for r in data.records if r.answer_type == "closed"} == {"yes", "no"}
    assert {"test_freeform", "freeform", "para"} <= {r.meta["phrase_type"] for r in data.records}
    reports = read_benchmark("iu-xray", standins["iu-xray"]).records
    assert all("Impression:" in r.answer and len(r.images) == 2 for r in reports)


@pytest.mark.parametrize("name", NAMES)
def test_convert_reads_back(tmp_path, standins, name):
    out = tmp_path / "ds"
    summary = convert_benchmark(name, standins[name], out)
    meta = read_json(out / "benchmark.json")
    assert meta == summary and meta["benchmark"] == name and meta["source"] == str(standins[name].resolve())
    data = read_benchmark(name, standins[name])
    assert meta["counts"] == data.counts()
    if name == "pathvqa":
        assert (out / "images").is_dir() and not (out / "images").is_symlink()
    else:
        assert (out / "images").is_symlink()
    for split, fname in meta["files"].items():
        samples = read_samples(out / fname)
        assert len(samples) == meta["counts"][split]
        for s in samples:
            for rel in IMG_TAG_RE.findall(s.turns[0].question):
                assert image_path(out / "images", rel).is_file()  # the link is inside the image folder
            assert s.image == IMG_TAG_RE.findall(s.turns[0].question)[0]
    test = read_json(out / "test.json")
    assert all(r["benchmark"] == name for r in test)
    if BENCHMARKS[name].kind == "vqa":
        assert {r["answer_type"] for r in test} <= {"closed", "open"}
    else:
        assert all("answer_type" not in r for r in test)
        assert all(r["conversations"][0][0].endswith("\n" + REPORT_INSTRUCTION) for r in test)
    train = read_json(out / "train.json")
    assert [m["from"] for m in train[0]["conversations"]] == ["human", "gpt"]


def test_convert_writes_every_view_as_a_tag(tmp_path, standins):
    convert_benchmark("iu-xray", standins["iu-xray"], tmp_path / "ds")
    first = read_json(tmp_path / "ds" / "train.json")[0]["conversations"][0]["value"]
    assert first == f"<img>CXR1001_IM-0000/0.png</img><img>CXR1001_IM-0000/1.png</img>\n{REPORT_INSTRUCTION}"


def test_converted_folder_is_a_dataset(tmp_path, standins):
    convert_benchmark("slake", standins["slake"], tmp_path / "ds")
    ds = read_dataset_dir(tmp_path / "ds")
    assert len(ds.train) == read_benchmark("slake", standins["slake"]).counts()["train"]
    assert ds.test == {}  # test.json names no Med-GRIT task; `clinkd infer --benchmark` reads it


def test_convert_refuses_bad_data_and_non_empty_out(tmp_path, standins):
    from clinkd.errors import ClinkdError, DataError

    out = tmp_path / "ds"
    convert_benchmark("vqa-rad", standins["vqa-rad"], out)
    with pytest.raises(ClinkdError, match="not empty"):
        convert_benchmark("vqa-rad", standins["vqa-rad"], out)
    convert_benchmark("slake", standins["slake"], out, force=True)  # the link is replaced
    assert read_json(out / "benchmark.json")["benchmark"] == "slake"
    assert (out / "images").resolve() == (standins["slake"] / "imgs").resolve()
    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    (bad / "annotation.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match="annotation.json: invalid JSON"):
        convert_benchmark("iu-xray", bad, tmp_path / "x")


def test_cli_synth_check_import(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    assert main(["data", "synth", "--format", "mimic-cxr", "--out", str(src), "--images", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "mimic-cxr"
    assert main(["data", "check", "--benchmark", "mimic-cxr", str(src)]) == 0
    assert "OK" in capsys.readouterr().err
    assert main(["data", "import", "mimic-cxr", str(src), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["test"] == 2
    ann = json.loads((src / "annotation.json").read_text())
    ann["train"][0]["report"] = ""
    ann["test"][0]["image_path"] = ["../../x.jpg"]
    (src / "annotation.json").write_text(json.dumps(ann))
    assert main(["data", "check", "--benchmark", "mimic-cxr", str(src)]) == 1
    shown = capsys.readouterr()
    assert "(train) [record 0]: field 'report' is empty" in shown.out
    assert "(test) [record 0]: image path '../../x.jpg' leaves the image folder" in shown.out
    assert "2 problem(s)" in shown.err
    assert main(["data", "import", "mimic-cxr", str(src), "--out", str(tmp_path / "o2")]) == 2
    assert "field 'report' is empty (and 1 more problem(s)" in capsys.readouterr().err


def test_cli_names_match_the_registry():
    from clinkd.cli.data import BENCHMARK_NAMES

    assert tuple(BENCHMARKS) == BENCHMARK_NAMES


def test_clinkd_data_check_reads_an_imported_folder_whole(tmp_path, standins):
    """Every split is checked (val.json and test.json too), every view of a study, and no Med-GRIT modality
    prefix is asked of benchmark image names."""
    from clinkd.data.check import check_path

    out = tmp_path / "ds"
    convert_benchmark("iu-xray", standins["iu-xray"], out)
    report = check_path(out)
    assert report.problems == [] and {Path(f).name for f in report.files} == {
        "train.json",
        "val.json",
        "test.json",
    }
    records = sum(read_benchmark("iu-xray", standins["iu-xray"]).counts().values())
    assert report.n_records == records and report.n_images == 2 * records  # frontal + lateral
    lateral = next((standins["iu-xray"] / "images").glob("*/1.png"))
    kept = lateral.read_bytes()
    try:
        lateral.unlink()
        problems = check_path(out).problems
        assert (
            len(problems) == 1 and "image not found" in problems[0].message and "1.png" in problems[0].message
        )
    finally:
        lateral.write_bytes(kept)
