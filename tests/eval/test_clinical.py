"""Clinical efficacy (clinkd.eval.clinical): CheXpert micro P/R/F1 and the local labeller command."""

import math
import sys
import textwrap

import numpy as np
import pytest

from clinkd.errors import ClinkdError, DataError
from clinkd.eval.clinical import OBSERVATIONS, binarize, ce_scores, check_command, run_labeller

# A keyword labeller in CheXbert's output form: "Report Impression" then the 14 observations; a word
# mentioned positive gives 1, after "no " 0, after "possible " -1, else blank. MODE changes its behaviour.
LABELLER = textwrap.dedent(
    """
    import csv, os, sys
    OBS = {obs!r}
    WORDS = {{"cardiomegaly": "Cardiomegaly", "effusion": "Pleural Effusion", "edema": "Edema",
              "pneumothorax": "Pneumothorax", "normal": "No Finding"}}
    src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "fail":
        sys.stderr.write("model file not found\\n")
        sys.exit(3)
    with open(src, newline="") as f:
        if mode == "noheader":  # the rule-based CheXpert labeler's input: one report a line, no header
            rows = [{{"Report Impression": r[0]}} for r in csv.reader(f)]
        else:
            rows = list(csv.DictReader(f))
    cols = [o for o in OBS if not (mode == "missing" and o == "Edema")]
    if mode == "dir":
        dst = os.path.join(dst, "labeled_reports.csv")
    with open(dst, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Report Impression"] + cols[::-1])  # any column order
        for r in rows[: None if mode != "short" else -1]:
            text = r["Report Impression"]
            lab = dict.fromkeys(cols, "")
            for word, obs in WORDS.items():
                if ("possible " + word) in text:
                    lab[obs] = "-1.0"
                elif ("no " + word) in text:
                    lab[obs] = "0.0"
                elif word in text:
                    lab[obs] = "1.0"
            if mode == "bad":
                lab["Cardiomegaly"] = "maybe"
            w.writerow([text] + [lab[o] for o in cols[::-1]])
    """
).format(obs=list(OBSERVATIONS))


@pytest.fixture
def labeller(tmp_path):
    script = tmp_path / "label.py"
    script.write_text(LABELLER)

    def command(mode: str = "ok", out: str = "{output}", inp: str = "{input}") -> str:
        return f'"{sys.executable}" "{script}" {inp} {out} {mode}'

    return command


def _row(**positive: float) -> list[float]:
    row = [math.nan] * len(OBSERVATIONS)
    for name, v in positive.items():
        row[OBSERVATIONS.index(name.replace("_", " "))] = v
    return row


def test_binarize_counts_uncertain_and_blank_as_negative():
    assert binarize([[1, 0, -1, math.nan]]).tolist() == [[1, 0, 0, 0]]


def test_micro_scores_hand_worked():
    gold = [_row(Cardiomegaly=1, Edema=1), _row(Pleural_Effusion=1), _row(No_Finding=1)]
    pred = [_row(Cardiomegaly=1, Edema=-1), _row(Pleural_Effusion=1, Pneumothorax=1), _row(Cardiomegaly=1)]
    s = ce_scores(gold, pred)
    # tp: cardiomegaly (r1), effusion (r2) = 2; fp: pneumothorax (r2), cardiomegaly (r3) = 2;
    # fn: edema (r1, uncertain counts 0), no finding (r3) = 2
    assert (s["precision"], s["recall"], s["f1"]) == (0.5, 0.5, 0.5)
    per = s["per_observation"]
    assert per["Cardiomegaly"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert per["Fracture"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert s["f1_macro"] == pytest.approx(np.mean([v["f1"] for v in per.values()]))


def test_micro_equals_sklearn_on_random_labels():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    gold = rng.choice([1.0, 0.0, -1.0, math.nan], size=(40, 14))
    pred = rng.choice([1.0, 0.0, -1.0, math.nan], size=(40, 14))
    s = ce_scores(gold, pred)
    g, p = binarize(gold), binarize(pred)
    assert s["precision"] == pytest.approx(sklearn.precision_score(g, p, average="micro"))
    assert s["recall"] == pytest.approx(sklearn.recall_score(g, p, average="micro"))
    assert s["f1"] == pytest.approx(sklearn.f1_score(g, p, average="micro"))
    assert s["f1_macro"] == pytest.approx(sklearn.f1_score(g, p, average="macro", zero_division=0))


def test_run_labeller_reads_columns_by_name(labeller):
    reports = ["cardiomegaly . no effusion .", "possible edema, pneumothorax", "normal study"]
    labels = run_labeller(labeller(), reports)
    assert labels.shape == (3, 14)
    at = OBSERVATIONS.index
    assert labels[0, at("Cardiomegaly")] == 1 and labels[0, at("Pleural Effusion")] == 0
    assert labels[1, at("Edema")] == -1 and labels[1, at("Pneumothorax")] == 1
    assert labels[2, at("No Finding")] == 1 and math.isnan(labels[2, at("Fracture")])
    assert np.array_equal(
        run_labeller(labeller(out="{output_dir}", mode="dir"), reports), labels, equal_nan=True
    )
    bare = labeller(mode="noheader", inp="{input_no_header}")
    assert np.array_equal(run_labeller(bare, reports), labels, equal_nan=True)
    check_command("label.py {input_no_header} {output}")  # accepted in place of {input}


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("fail", ClinkdError, "exited with status 3 on the gold reports:\nmodel file not found"),
        ("missing", DataError, "lacks the CheXpert column(s) Edema"),
        ("short", DataError, "has 1 rows for 2 reports"),
        ("bad", DataError, "line 2: Cardiomegaly is 'maybe'"),
    ],
)
def test_labeller_failures_are_clear(labeller, mode, error, message):
    with pytest.raises(error) as info:
        run_labeller(labeller(mode), ["a", "b"], what="gold reports")
    assert message in str(info.value)


def test_bad_commands_are_refused():
    with pytest.raises(ClinkdError, match="must contain"):
        check_command("label.py {input}")
    with pytest.raises(ClinkdError, match="does not split"):
        check_command('label.py "{input} {output}')
    with pytest.raises(ClinkdError, match="cannot run"):
        run_labeller("no-such-labeller-xyz {input} {output}", ["a"])
