"""``clinkd eval --benchmark``: Med-VQA and report-generation files in, report.json / report.md / plots out."""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from eval_helpers import write_jsonl

from clinkd.cli.main import main
from clinkd.eval.clinical import OBSERVATIONS

VQA = [
    {"id": 0, "image": "a.jpg", "question": "<img>a.jpg</img>Is there a mass?", "annotation": "yes",
     "response": "Yes.", "answer_type": "closed", "benchmark": "vqa-rad"},
    {"id": 1, "image": "a.jpg", "question": "<img>a.jpg</img>Where is the mass?", "annotation": "left lung",
     "response": "In the left lung.<|im_end|>", "answer_type": "open", "benchmark": "vqa-rad"},
    {"id": 2, "image": "b.jpg", "question": "Where is the lesion?", "annotation": "liver",
     "response": "liver", "answer_type": "open"},
    {"id": 3, "image": "b.jpg", "question": "Is it normal?", "annotation": "No", "response": "yes", "extra": 1},
]  # fmt: skip

REPORTS = [
    {"id": 0, "image": "p1.jpg", "question": "<img>p1.jpg</img>Write the findings.",
     "annotation": "The heart is enlarged, cardiomegaly. No effusion.",
     "response": "Cardiomegaly. No effusion.", "benchmark": "mimic-cxr"},
    {"id": 1, "image": "p2.jpg", "question": "<img>p2.jpg</img>Write the findings.",
     "annotation": "FINDINGS:\nSmall right effusion.  No pneumothorax.",
     "response": "Right effusion and a pneumothorax."},
    {"id": 2, "image": "p3.jpg", "question": "<img>p3.jpg</img>Write the findings.",
     "annotation": "Normal chest.", "response": "Normal chest radiograph."},
]  # fmt: skip

# keyword labeller, CheXbert output form (see test_clinical.py for a fuller one)
LABELLER = textwrap.dedent(
    """
    import csv, sys
    OBS = {obs!r}
    WORDS = {{"cardiomegaly": "Cardiomegaly", "effusion": "Pleural Effusion", "pneumothorax": "Pneumothorax",
              "normal": "No Finding"}}
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    with open(sys.argv[2], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Report Impression"] + OBS)
        for r in rows:
            t = r["Report Impression"]
            lab = {{o: "" for o in OBS}}
            for word, obs in WORDS.items():
                if word in t:
                    lab[obs] = "0" if "no " + word in t else "1"
            w.writerow([t] + [lab[o] for o in OBS])
    """
).format(obs=list(OBSERVATIONS))


def test_vqa_end_to_end(tmp_path, capsys):
    pred = write_jsonl(tmp_path / "pred_vqa_rad.jsonl", VQA)
    out = tmp_path / "report"
    assert main(["eval", "--benchmark", "vqa-rad", str(pred), "--out", str(out), "--bootstrap", "100"]) == 0
    printed = capsys.readouterr().out
    assert "vqa-rad: LLaVA-Med open recall = 1.0000 (2 open), closed accuracy = 0.5000 (2 closed)" in printed
    data = json.loads((out / "report.json").read_text())
    assert data["benchmark"] == "vqa-rad" and data["kind"] == "vqa"
    m = data["metrics"]
    assert m["counts"] == {"closed": 2, "open": 2, "total": 4}
    assert m["answer_type_inferred"] == 1  # id 3: "No" → closed
    assert m["llava_med"]["n_closed_dropped_by_script"] == 1  # "yes" against "no"
    assert m["exact_match"]["overall_accuracy"] == 2 / 4  # ids 0 and 2
    assert m["exact_match"]["open_accuracy"] == 1 / 2
    assert set(m["ci95"]) >= {"llava_med.open_recall", "exact_match.overall_accuracy"}
    md = (out / "report.md").read_text()
    assert "# VQA-RAD evaluation report" in md and "**Headline**" in md
    assert (out / "plots" / "accuracy_per_answer_type.png").stat().st_size > 0


def test_report_end_to_end_with_labeller(tmp_path, capsys):
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    pred = write_jsonl(tmp_path / "pred.jsonl", REPORTS)
    script = tmp_path / "label.py"
    script.write_text(LABELLER)
    command = f'"{sys.executable}" "{script}" {{input}} {{output}}'
    out = tmp_path / "report"
    args = ["eval", "--benchmark", "mimic-cxr", str(pred), "--out", str(out), "--bootstrap", "50"]
    assert main([*args, "--labeller", command]) == 0
    printed = capsys.readouterr().out
    assert "mimic-cxr: Bleu_1 = " in printed and "CE micro F1 = " in printed
    m = json.loads((out / "report.json").read_text())["metrics"]
    assert m["n_reports"] == 3
    assert all(0 <= m[k] <= 1 for k in ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L"))
    ce = m["clinical_efficacy"]
    # gold: cardiomegaly; effusion (r2); no finding (r3). generated: cardiomegaly; effusion, pneumothorax;
    # no finding. tp 3, fp 1 (pneumothorax), fn 0
    assert (ce["precision"], ce["recall"]) == (0.75, 1.0)
    assert ce["f1"] == pytest.approx(6 / 7)
    md = (out / "report.md").read_text()
    assert "# MIMIC-CXR evaluation report" in md and "**micro** (headline)" in md
    assert (out / "plots" / "report_metrics.png").stat().st_size > 0


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def test_mixed_benchmark_is_refused_naming_file_and_line(tmp_path, capsys):
    rows = [*VQA, {"id": 9, "image": "c.jpg", "question": "q", "annotation": "yes", "response": "yes",
                   "benchmark": "slake"}]  # fmt: skip
    pred = write_jsonl(tmp_path / "pred.jsonl", rows)
    for extra in ([], ["--skip-invalid"]):
        code, err = _run(
            ["eval", "--benchmark", "vqa-rad", str(pred), "--out", str(tmp_path / "o"), *extra], capsys
        )
        assert code == 2
        assert "pred.jsonl, record 5: line 5 is a record of benchmark 'slake', not vqa-rad" in err
        assert "Traceback" not in err


def test_malformed_lines(tmp_path, capsys):
    out = str(tmp_path / "o")
    # scored as slake: the records naming vqa-rad are left out of the file
    rows = [{k: v for k, v in r.items() if k != "benchmark"} for r in VQA]
    pred = write_jsonl(tmp_path / "pred.jsonl", rows)
    with open(pred, "a") as f:
        f.write('{"id": 7, "image": "x.jpg", "annot\n')
        f.write(json.dumps({**rows[0], "id": 8, "answer_type": "yes/no"}) + "\n")
    code, err = _run(["eval", "--benchmark", "slake", str(pred), "--out", out], capsys)
    assert code == 2 and "line 5 is not a valid" in err
    assert (
        main(["eval", "--benchmark", "slake", str(pred), "--out", out, "--skip-invalid", "--no-plots"]) == 0
    )
    assert "skipped 2 invalid line(s)" in capsys.readouterr().out
    data = json.loads((tmp_path / "o" / "report.json").read_text())
    assert data["inputs"][0]["skipped_lines"] == [5, 6] and data["metrics"]["counts"]["total"] == 4
    # a bad answer_type alone names its line
    pred = write_jsonl(tmp_path / "p2.jsonl", [rows[0], {**rows[1], "answer_type": "yes/no"}])
    code, err = _run(["eval", "--benchmark", "slake", str(pred), "--out", out, "--force"], capsys)
    assert code == 2 and "p2.jsonl, record 2: line 2" in err and "'answer_type' must be" in err


def test_empty_file_and_duplicate_ids(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    code, err = _run(["eval", "--benchmark", "pathvqa", str(empty), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "empty.jsonl: holds no prediction records" in err
    dup = write_jsonl(tmp_path / "dup.jsonl", [VQA[2], VQA[3], VQA[2]])
    code, err = _run(["eval", "--benchmark", "pathvqa", str(dup), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "dup.jsonl, record 3: line 3 repeats id 2, already given at line 1" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--benchmark", "vqa-rad", "--labeller", "x {input} {output}"],
            "--labeller is for the report benchmarks",
        ),
        (["--labeller", "x {input} {output}"], "--labeller is for --benchmark iu-xray or mimic-cxr"),
        (["--benchmark", "iu-xray", "--labeller", "label.py {input}"], "--labeller must contain"),
        (["--benchmark", "slake", "--task", "VG"], "--task belong(s) to the Med-GRIT protocol"),
        (["--benchmark", "slake", "--bootstrap", "-1"], "--bootstrap must be"),
    ],
)
def test_option_errors(tmp_path, capsys, extra, message):
    pred = write_jsonl(tmp_path / "pred_VG.jsonl", VQA[2:])
    code, err = _run(["eval", str(pred), "--out", str(tmp_path / "o"), *extra], capsys)
    assert code == 2 and message in err


def test_unknown_benchmark_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", "--benchmark", "vqa", "x.jsonl", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "invalid choice: 'vqa'" in capsys.readouterr().err


def test_help_stays_fast_and_light():
    code = (
        "import sys\n"
        "from clinkd.cli.main import main\n"
        "try:\n"
        "    main(['eval', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('matplotlib', 'numpy', 'clinkd.eval.medvqa', 'clinkd.eval.reportgen') "
        "if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--benchmark NAME" in proc.stdout and "--labeller COMMAND" in proc.stdout
    assert proc.stdout.strip().endswith("[]")
