"""``evaluate_benchmark``: score a Med-VQA or report-generation prediction file (``clinkd eval --benchmark``).

>>> rep = evaluate_benchmark({"vqa-rad": [{"id": 0, "image": "a.jpg", "question": "Is there a mass?",
...     "annotation": "yes", "response": "Yes.", "answer_type": "closed"}]}, "vqa-rad", bootstrap=0)
>>> rep.metrics["llava_med"]["closed_accuracy"]
1.0

Prediction files are the JSONL ``clinkd infer`` writes, one record a line: ``{"id", "image",
"question", "annotation" (gold answer or report), "response", "answer_type" ("closed"/"open", VQA sets,
optional), "benchmark" (optional)}``; other keys are ignored. Records are validated as Med-GRIT ones
(:meth:`clinkd.eval.predictions.Prediction.from_dict`), and so are files: an empty file, an id given
twice (naming both lines), a malformed line (naming file and line; ``skip_invalid`` skips and counts
it). A record whose ``benchmark`` names another benchmark is refused (naming file and line), whatever
``skip_invalid`` says: it belongs to another file.

The protocols: :mod:`clinkd.eval.medvqa` (``vqa-rad``, ``slake``, ``pathvqa``),
:mod:`clinkd.eval.reportgen` and :mod:`clinkd.eval.clinical` (``iu-xray``, ``mimic-cxr``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from clinkd import __version__
from clinkd.benchmarks import KINDS, REPORT_NAMES, SPECS, canonical, spec
from clinkd.data.sample import ANSWER_TYPES
from clinkd.errors import ClinkdError, DataError
from clinkd.eval.predictions import Prediction, read_jsonl_records

log = logging.getLogger(__name__)

#: benchmark name → kind (``vqa``: Med-VQA; ``report``: report generation), titles: :mod:`clinkd.benchmarks`
BENCHMARKS = KINDS
TITLES = {n: s.title for n, s in SPECS.items()}

_SPECIAL = ("<|im_end|>", "<|endoftext|>")


def clean_answer(text: str) -> str:
    """A response as scored: chat end markers (``<|im_end|>``, ``<|endoftext|>``) removed, surrounding
    whitespace stripped. Nothing else: Med-GRIT's line-picking cleaning would cut multi-line reports."""
    for tok in _SPECIAL:
        text = text.replace(tok, "")
    return text.strip()


@dataclass(frozen=True)
class BenchmarkRecord:
    """One prediction with the keys the benchmark protocols read, and where it came from (``line 5`` of
    its file, ``record 5`` in memory)."""

    prediction: Prediction
    answer_type: str | None
    where: str


@dataclass
class BenchmarkReport:
    """``metrics`` is the JSON-ready block of the benchmark's kind (see :func:`evaluate_benchmark`)."""

    benchmark: str
    kind: str
    metrics: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clinkd_version": __version__,
            "benchmark": self.benchmark,
            "kind": self.kind,
            "protocol": PROTOCOLS[self.kind],
            "conventions": self.conventions,
            "inputs": self.inputs,
            "settings": self.settings,
            "metrics": self.metrics,
            "timings_s": self.timings,
        }


PROTOCOLS = {
    "vqa": "Med-VQA: LLaVA-Med convention (open token recall, closed gold-in-prediction accuracy; the "
    "headline) and exact-match accuracy (classification-style papers); see clinkd.eval.medvqa",
    "report": "report generation: R2Gen-family cleaning, pycocoevalcap BLEU-1..4, METEOR, ROUGE-L, CIDEr; "
    "clinical efficacy (CheXpert micro P/R/F1) with a local labeller; see clinkd.eval.reportgen, "
    "clinkd.eval.clinical",
}

VQA_CONVENTIONS = {
    "normalisation": "VQA-style (LLaVA-Med normalize_word): lower-case, punctuation removed or spaced, "
    "periods not before a digit removed, number words to digits, articles dropped, whitespace collapsed",
    "llava_med": "open: token recall (share of gold tokens in the prediction, LLaVA-Med calculate_f1score); "
    "closed: the prediction contains 'yes' or 'no' and the gold answer (substrings). closed_accuracy counts "
    "every closed question; closed_accuracy_script leaves out those run_eval.py drops (n_closed_dropped_by_script)",
    "exact_match": "normalised prediction equals normalised gold (MEVF, PubMedCLIP, M2I2 style accuracy)",
    "headline": "llava_med.open_recall and llava_med.closed_accuracy; exact_match.overall_accuracy beside them",
    "answer_type": "from each record's answer_type; where absent, closed iff the normalised gold is yes or no",
    "response_cleaning": "chat end markers removed, whitespace stripped",
    "ci95": "95% percentile bootstrap, questions resampled within each answer type",
}

REPORT_CONVENTIONS = {
    "cleaning": "R2Gen clean_report of the benchmark (iu_xray / mimic_cxr) on generated and gold reports; "
    "no PTB tokenizer; gold words are not mapped to <unk> (that needs R2Gen's training vocabulary)",
    "metrics": "pycocoevalcap Bleu(4) (closest reference length), Meteor (METEOR 1.5 JVM), Rouge (ROUGE-L), "
    "Cider (CIDEr-D), one reference per report",
    "clinical_efficacy": "CheXpert labeller on the cleaned reports; blank and uncertain (-1) count 0; "
    "precision/recall/F1 micro-averaged over the 14 observations (No Finding included), as the R2Gen family",
    "ci95": "95% percentile bootstrap over reports; BLEU and METEOR from resampled corpus statistics, CIDEr "
    "with the full set's document frequencies",
    "response_cleaning": "chat end markers removed, whitespace stripped",
}


def check_benchmark(name: str) -> str:
    """The canonical name of a known benchmark; :class:`ClinkdError` listing them otherwise."""
    return spec(name).name


def evaluate_benchmark(
    predictions: Mapping[str, Sequence[Mapping[str, Any]]] | str | PathLike | Sequence[str | PathLike],
    benchmark: str,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    skip_invalid: bool = False,
    labeller: str | None = None,
) -> BenchmarkReport:
    """Score prediction files (or ``{benchmark: [record, ...]}`` in memory) under ``benchmark``'s protocol.

    Args:
        predictions: one or more JSONL files (several are scored as one set, e.g. shards), or records.
        benchmark: ``vqa-rad``, ``slake``, ``pathvqa`` (Med-VQA) or ``iu-xray``, ``mimic-cxr`` (reports).
        bootstrap: resamples for the 95% intervals (0: none).
        seed: bootstrap seed.
        skip_invalid: skip malformed lines (counted in ``inputs``) instead of raising.
        labeller: report kinds only: a local CheXpert labeller command (see :mod:`clinkd.eval.clinical`);
            without it clinical efficacy is reported unavailable, with the reason.

    ``metrics`` holds, for Med-VQA, :func:`clinkd.eval.medvqa.score_vqa`'s block plus
    ``answer_type_inferred`` (questions whose type was inferred); for reports, the NLG metrics
    (:func:`clinkd.eval.reportgen.score_reports`), ``n_reports`` and ``clinical_efficacy``
    (:func:`clinkd.eval.clinical.ce_scores`'s block, or ``None``) with ``unavailable`` giving the reason.

    Raises:
        ClinkdError: unknown benchmark, ``labeller`` with a VQA benchmark, bad settings, a labeller failure.
        DataError: unreadable, empty or malformed file, an id given twice, a record of another benchmark.
        JavaToolError: Java missing (METEOR, report kinds).
    """
    from clinkd.eval.evaluator import check_settings

    name = check_benchmark(benchmark)
    kind = BENCHMARKS[name]
    check_settings(bootstrap=bootstrap, seed=seed)
    if labeller is not None and kind != "report":
        raise ClinkdError(f"--labeller is for the report benchmarks ({', '.join(REPORT_NAMES)}), not {name}")
    if labeller is not None:
        from clinkd.eval.clinical import check_command

        check_command(labeller)
    t0 = time.perf_counter()
    records, inputs = load_records(predictions, name, skip_invalid)
    timings = {"load": time.perf_counter() - t0}
    settings = {"bootstrap": bootstrap, "seed": seed, "labeller": labeller}
    if kind == "vqa":
        metrics = _score_vqa(records, bootstrap, seed)
        conventions = dict(VQA_CONVENTIONS)
    else:
        metrics = _score_reports(records, name, bootstrap, seed, labeller, timings)
        conventions = dict(REPORT_CONVENTIONS)
    timings["total"] = time.perf_counter() - t0
    return BenchmarkReport(
        benchmark=name,
        kind=kind,
        metrics=metrics,
        inputs=inputs,
        settings=settings,
        conventions=conventions,
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _score_vqa(records: list[BenchmarkRecord], bootstrap: int, seed: int) -> dict[str, Any]:
    from clinkd.eval.medvqa import VQAItem, infer_answer_type, score_vqa

    items, inferred = [], 0
    for r in records:
        kind = r.answer_type
        if kind is None:
            kind = infer_answer_type(r.prediction.annotation)
            inferred += 1
        items.append(VQAItem(clean_answer(r.prediction.response), r.prediction.annotation, kind))
    block = score_vqa(items, bootstrap=bootstrap, seed=seed)
    block["answer_type_inferred"] = inferred
    return block


def _score_reports(
    records: list[BenchmarkRecord],
    name: str,
    bootstrap: int,
    seed: int,
    labeller: str | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    from clinkd.eval.clinical import UNAVAILABLE, ce_scores, run_labeller
    from clinkd.eval.reportgen import CLEANERS, score_reports

    clean = CLEANERS[name]
    hyps = [clean(clean_answer(r.prediction.response)) for r in records]
    refs = [clean(r.prediction.annotation) for r in records]
    t1 = time.perf_counter()
    block = score_reports(hyps, refs, bootstrap=bootstrap, seed=seed)
    timings["nlg"] = time.perf_counter() - t1
    block["n_reports"] = len(records)
    block["headline"] = ["Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "clinical_efficacy.f1"]
    if labeller is None:
        block["clinical_efficacy"] = None
        block["unavailable"] = {"clinical_efficacy": UNAVAILABLE}
    else:
        t2 = time.perf_counter()
        pred = run_labeller(labeller, hyps, what="generated reports")
        gold = run_labeller(labeller, refs, what="gold reports")
        block["clinical_efficacy"] = ce_scores(gold, pred)
        block["unavailable"] = {}
        timings["labeller"] = time.perf_counter() - t2
    return block


def load_records(
    predictions: Mapping[str, Sequence[Mapping[str, Any]]] | str | PathLike | Sequence[str | PathLike],
    benchmark: str,
    skip_invalid: bool = False,
) -> tuple[list[BenchmarkRecord], list[dict[str, Any]]]:
    """The records of ``benchmark`` and the report's ``inputs`` rows (see the module docstring)."""
    if isinstance(predictions, Mapping):
        records: list[BenchmarkRecord] = []
        inputs = []
        for key, items in predictions.items():
            source = f"<{key} predictions>"
            if canonical(key) != benchmark:
                raise DataError(f"records of {key!r} given to score {benchmark}", source)
            n0 = len(records)
            for k, item in enumerate(items):
                try:
                    records.append(_record(item, benchmark, source, k, f"record {k}"))
                except ValueError as err:
                    if not skip_invalid:
                        raise DataError(f"invalid prediction: {err}", source, record=k) from err
            inputs.append(
                {
                    "source": source,
                    "n_predictions": len(records) - n0,
                    "n_skipped": len(items) - len(records) + n0,
                }
            )
        if not records:
            raise DataError("no prediction records given", f"<{benchmark} predictions>")
        return records, inputs
    paths = [predictions] if isinstance(predictions, (str, PathLike)) else list(predictions)
    records, inputs = [], []
    seen: dict[int | str, tuple[str, int]] = {}
    for path in paths:
        got, skipped = _read_file(Path(path), benchmark, skip_invalid)
        if not got:
            more = f" ({len(skipped)} invalid line(s) skipped)" if skipped else ""
            raise DataError(
                f"holds no prediction records{more}; was the inference run cut short, or is this the wrong file?",
                path,
            )
        for rec, line_no in got:
            pid = rec.prediction.id
            if pid in seen:
                where, at = seen[pid]
                other = "" if where == str(path) else f" of {where}"
                raise DataError(
                    f"line {line_no} repeats id {pid!r}, already given at line {at}{other}; each test sample is "
                    "scored once — remove the duplicate line(s)",
                    path,
                    record=line_no,
                )
            seen[pid] = (str(path), line_no)
            records.append(rec)
        if skipped:
            log.warning("%s: skipped %d invalid line(s), first at line %d", path, len(skipped), skipped[0])
        inputs.append(
            {
                "source": str(path),
                "file": Path(path).name,
                "n_predictions": len(got),
                "n_skipped": len(skipped),
                "skipped_lines": skipped[:100],
            }
        )
    return records, inputs


def _read_file(
    path: Path, benchmark: str, skip_invalid: bool
) -> tuple[list[tuple[BenchmarkRecord, int]], list[int]]:
    """(record, line number) pairs and the skipped line numbers, read by the one prediction-file reader
    (:func:`clinkd.eval.predictions.read_jsonl_records`)."""
    lines: list[int] = []
    skipped: list[tuple[int, str]] = []
    got = read_jsonl_records(
        path,
        lambda record, line_no: _record(record, benchmark, path, line_no, f"line {line_no}"),
        skip_invalid,
        skipped=skipped,
        lines=lines,
    )
    return list(zip(got, lines)), [line_no for line_no, _ in skipped]


def _record(
    record: Any, benchmark: str, source: str | PathLike, record_no: int, where: str
) -> BenchmarkRecord:
    """Validate one record (``ValueError`` for a malformed one; :class:`DataError` for one of another
    benchmark, which ``skip_invalid`` does not skip)."""
    pred = Prediction.from_dict(record)  # ValueError naming the bad field
    named = record.get("benchmark")
    if named is not None:
        if not isinstance(named, str):
            raise ValueError(f"'benchmark' must be a string, got {type(named).__name__}")
        if canonical(named) != benchmark:
            raise DataError(
                f"{where} is a record of benchmark {named!r}, "
                f"not {benchmark}; score each benchmark's predictions "
                "on their own (one --benchmark per file)",
                source,
                record=record_no,
            )
    kind = record.get("answer_type")
    if kind is not None:
        if not isinstance(kind, str) or kind.strip().lower() not in ANSWER_TYPES:
            raise ValueError(f'\'answer_type\' must be "closed" or "open", got {kind!r}')
        kind = kind.strip().lower()
    return BenchmarkRecord(prediction=pred, answer_type=kind, where=where)
