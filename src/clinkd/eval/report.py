"""``write_report``: ``report.json``, ``report.md`` and ``plots/*.png`` in one folder.

``report.json`` layout::

    {"standard": {"VG": {"recall@0.5": x, "per_modality": {"ct": {"recall@0.5": x, "n_samples": k,
                                                                 ...}, ...}, ...},
                  "RO": {"accuracy": x, "per_modality": {...}},
                  "GC": {"Bleu_1": x, ..., "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE",
                         "per_modality": {...}, "unavailable": {"SPICE": "reason"}},
                  "MII": {... the same ..., "mBMR": x}},
     "strict": {... the same tasks: means over present modalities, "pooled", "ci95", counts ...},
     "inputs": [...], "settings": {...},
     "conventions": {... the rules, as text ...,
                     "caption_length": {"max_tokens": null | N, "note", ("responses_cut", "references_cut")},
                     "published_pipeline": {"note", "what": {case: text}, "counts": {task: {case: n}}}}}

A metric that could not be computed is ``null``, and the block's ``unavailable`` map says why
(never 0). NaN never reaches the JSON (it is written as ``null``). ``conventions.published_pipeline``
counts the records on which the published scripts themselves would fail or misalign (see
:data:`clinkd.eval.evaluator.PIPELINE`).
"""

from __future__ import annotations

import json
import math
from os import PathLike
from pathlib import Path
from typing import Any

from clinkd.eval.evaluator import Report
from clinkd.eval.plots import plot_iou_histogram, plot_task
from clinkd.eval.predictions import MODALITIES, TASKS

CAPTION_COLUMNS = ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")


def write_report(report: Report, out_dir: str | PathLike, *, plots: bool = True) -> dict[str, Path]:
    """Write the report files; returns their paths by name (``json``, ``md``, and one per plot)."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"json": out / "report.json", "md": out / "report.md"}
    _write_json(report.to_dict(), paths["json"])
    plot_files: dict[str, list[str]] = {}
    if plots:
        for task, block in report.standard.items():
            p = out / "plots" / f"{task}_per_modality.png"
            plot_task(task, block, (report.strict or {}).get(task), p)
            paths[f"{task}_per_modality"] = p
            plot_files.setdefault(task, []).append(p.name)
        if "VG_best_iou" in report.plot_data:
            p = out / "plots" / "VG_iou_histogram.png"
            plot_iou_histogram(report.plot_data["VG_best_iou"], p)
            paths["VG_iou_histogram"] = p
            plot_files.setdefault("VG", []).append(p.name)
    paths["md"].write_text(render_markdown(report, plot_files), encoding="utf-8", errors="replace")
    return paths


def _write_json(data: dict[str, Any], path: Path) -> None:
    """``data`` as indented JSON, non-finite numbers as null; UTF-8, escaped only when the text cannot be
    (a lone surrogate, e.g. in an image-name prefix)."""
    data = _finite(data)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raw = (json.dumps(data, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode()
    path.write_bytes(raw)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else "—"
    return str(v)


def _ci(block: dict[str, Any], key: str) -> str:
    ci = (block.get("ci95") or {}).get(key)
    return "" if not ci else f" [{ci[0]:.3f}, {ci[1]:.3f}]"


def render_markdown(report: Report, plot_files: dict[str, list[str]] | None = None) -> str:
    """The human-readable report: one section per task, standard and strict side by side."""
    lines = [
        "# Med-GRIT-270k evaluation report",
        "",
        "Two readings. **Standard**: the published protocol, quirks included — comparable with "
        "published numbers (mean over all eight modalities, absent ones counting 0). "
        "**Strict**: one-to-one box matching, normalised exact RO match, means over present "
        "modalities, 95% bootstrap intervals.",
        "",
    ]
    if report.inputs:
        lines += ["| input | task | predictions | skipped lines |", "|---|---|---:|---:|"]
        lines += [
            f"| {i.get('file', i['source'])} | {i['task']} | {i['n_predictions']} | {i['n_skipped']} |"
            for i in report.inputs
        ]
        lines.append("")
    notes: list[str] = []
    for task in TASKS:
        if task not in report.standard:
            continue
        std, st = report.standard[task], (report.strict or {}).get(task)
        lines += [f"## {task}", ""]
        if task == "VG":
            lines += _vg_table(std, st)
        elif task == "RO":
            lines += _ro_table(std, st)
        else:
            lines += _caption_table(task, std, st)
        if std.get("absent_modalities"):
            notes.append(
                f"{task}: no scorable samples for {', '.join(std['absent_modalities'])} — "
                "counted as 0 in the standard mean, left out of the strict mean."
            )
        for name, reason in (std.get("unavailable") or {}).items():
            notes.append(f"{task}: {name} unavailable — {reason}")
        if std.get("other_modalities"):
            notes.append(
                f"{task}: modalities outside the eight, scored apart and left out of the "
                f"means: {', '.join(std['other_modalities'])}."
            )
        for name in (plot_files or {}).get(task, []):
            lines.append(f"![{task} {name}](plots/{name})  ")
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    conventions = report.to_dict()["conventions"]
    lines += ["## Conventions", ""] + [
        f"- **{k}**: {v}" for k, v in conventions.items() if isinstance(v, str)
    ]
    length = conventions.get("caption_length")
    if length:
        cut = ", ".join(
            f"{t}: {n} response(s), {length['references_cut'][t]} reference(s)"
            for t, n in (length.get("responses_cut") or {}).items()
        )
        lines.append(f"- **caption_length**: {length['note']}" + (f" — cut: {cut}" if cut else ""))
    pipeline = conventions.get("published_pipeline")
    if pipeline:
        lines.append(
            f"- **published_pipeline**: {pipeline['note']}" + ("" if pipeline["counts"] else " (none here)")
        )
        for task, counts in pipeline["counts"].items():
            for case, n in counts.items():
                lines.append(f"  - {task}, {n} × {case}: {pipeline['what'][case]}")
    return "\n".join(lines) + "\n"


def _rows(std: dict[str, Any]) -> list[str]:
    return [*MODALITIES, *(std.get("other_modalities") or {})]


def _entry(block: dict[str, Any] | None, m: str) -> dict[str, Any]:
    if not block:
        return {}
    return block["per_modality"].get(m) or (block.get("other_modalities") or {}).get(m) or {}


def _vg_table(std: dict[str, Any], st: dict[str, Any] | None) -> list[str]:
    out = [
        "| modality | samples | annotation boxes | std recall@0.5 | strict P | strict R | "
        "strict F1 | strict mean IoU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in _rows(std):
        e, s = _entry(std, m), _entry(st, m)
        out.append(
            f"| {m} | {e['n_samples']} | {e['n_boxes']} | {_f(e['recall@0.5'])} | "
            f"{_f(s.get('precision'))} | {_f(s.get('recall'))} | {_f(s.get('f1'))} | "
            f"{_f(s.get('mean_iou'))} |"
        )
    out.append(
        f"| **mean** (std: over 8; strict: over present) | {std['n_samples']} | | "
        f"**{_f(std['recall@0.5'])}** | "
        + (
            " | ".join(f"**{_f(st[k])}**{_ci(st, k)}" for k in ("precision", "recall", "f1", "mean_iou"))
            if st
            else " | | | "
        )
        + " |"
    )
    if st:
        p = st["pooled"]
        out.append(
            f"| pooled (strict) | | | | {_f(p['precision'])} | {_f(p['recall'])} | "
            f"{_f(p['f1'])} | {_f(p['mean_iou'])} |"
        )
    out += ["", f"Samples without an annotation box (skipped): {std['n_skipped_no_box']}."]
    if std.get("n_malformed_annotation_boxes"):
        out.append(
            f"Malformed annotation boxes (counted, never found): {std['n_malformed_annotation_boxes']}."
        )
    return out + [""]


def _ro_table(std: dict[str, Any], st: dict[str, Any] | None) -> list[str]:
    out = [
        "| modality | samples | std accuracy (substring) | strict accuracy (exact) |",
        "|---|---:|---:|---:|",
    ]
    for m in _rows(std):
        e, s = _entry(std, m), _entry(st, m)
        out.append(f"| {m} | {e['n_samples']} | {_f(e['accuracy'])} | {_f(s.get('accuracy'))} |")
    out.append(
        f"| **mean** (std: over 8; strict: over present) | {std['n_samples']} | "
        f"**{_f(std['accuracy'])}** | "
        + (f"**{_f(st['accuracy'])}**{_ci(st, 'accuracy')}" if st else "")
        + " |"
    )
    if st:
        out.append(f"| pooled (strict) | {st['pooled']['n_samples']} | | {_f(st['pooled']['accuracy'])} |")
    return out + [""]


def _caption_table(task: str, std: dict[str, Any], st: dict[str, Any] | None) -> list[str]:
    cols = [*CAPTION_COLUMNS, *(["mBMR"] if task == "MII" else [])]
    out = ["| modality | samples | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for m in _rows(std):
        e = _entry(std, m)
        out.append(f"| {m} | {e['n_samples']} | " + " | ".join(_f(e.get(c)) for c in cols) + " |")
    out.append(
        f"| **standard mean** (over 8) | {std['n_samples']} | "
        + " | ".join(f"**{_f(std.get(c))}**" for c in cols)
        + " |"
    )
    if st:
        out.append(
            f"| **strict mean** (over {len(st['modalities_in_mean'])} present) | "
            f"{st['n_samples']} | " + " | ".join(f"**{_f(st.get(c))}**{_ci(st, c)}" for c in cols) + " |"
        )
        out.append(
            f"| pooled (strict) | {st['pooled']['n_samples']} | "
            + " | ".join(_f(st["pooled"].get(c)) for c in cols)
            + " |"
        )
    out += [
        "",
        "Per-modality scores are one pycocoevalcap run per modality (identical in both "
        "readings); the readings differ in how they average. Intervals in brackets are 95% "
        "bootstrap intervals (ROUGE_L, CIDEr, SPICE only).",
    ]
    return out + [""]


def write_benchmark_report(report: Any, out_dir: str | PathLike, *, plots: bool = True) -> dict[str, Path]:
    """Write a :class:`clinkd.eval.benchmark.BenchmarkReport` as ``report.json``, ``report.md`` and
    ``plots/*.png`` (as :func:`write_report` does for Med-GRIT); returns the paths by name."""
    from clinkd.eval.benchmark import TITLES
    from clinkd.eval.plots import plot_report_metrics, plot_vqa

    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"json": out / "report.json", "md": out / "report.md"}
    _write_json(report.to_dict(), paths["json"])
    plot_files: list[str] = []
    if plots:
        title = TITLES[report.benchmark]
        if report.kind == "vqa":
            p = out / "plots" / "accuracy_per_answer_type.png"
            plot_vqa(report.metrics, p, title)
        else:
            p = out / "plots" / "report_metrics.png"
            plot_report_metrics(report.metrics, p, title)
        paths[p.stem] = p
        plot_files.append(p.name)
    paths["md"].write_text(render_benchmark_markdown(report, plot_files), encoding="utf-8", errors="replace")
    return paths


def render_benchmark_markdown(report: Any, plot_files: list[str] | None = None) -> str:
    """The human-readable report of a Med-VQA or report-generation benchmark."""
    from clinkd.eval.benchmark import TITLES

    m = report.metrics
    lines = [f"# {TITLES[report.benchmark]} evaluation report", ""]
    if report.inputs:
        lines += ["| input | predictions | skipped lines |", "|---|---:|---:|"]
        lines += [
            f"| {i.get('file', i['source'])} | {i['n_predictions']} | {i['n_skipped']} |"
            for i in report.inputs
        ]
        lines.append("")
    if report.kind == "vqa":
        lines += _vqa_section(m)
    else:
        lines += _reportgen_section(m)
    for name in plot_files or []:
        lines.append(f"![{name}](plots/{name})")
        lines.append("")
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in report.conventions.items()]
    return "\n".join(lines) + "\n"


def _vqa_section(m: dict[str, Any]) -> list[str]:
    lm, em, n = m["llava_med"], m["exact_match"], m["counts"]
    out = [
        "**Headline**: the LLaVA-Med convention — open questions: token recall (share of gold tokens in the "
        "answer); closed questions: accuracy (gold in answer, yes/no gate). Exact-match accuracy (the "
        "classification-style papers) beside it. Brackets: 95% bootstrap intervals.",
        "",
        "| answer type | questions | LLaVA-Med | exact match |",
        "|---|---:|---:|---:|",
        f"| closed | {n['closed']} | **{_f(lm['closed_accuracy'])}**{_ci(m, 'llava_med.closed_accuracy')} | "
        f"{_f(em['closed_accuracy'])}{_ci(m, 'exact_match.closed_accuracy')} |",
        f"| open | {n['open']} | **{_f(lm['open_recall'])}**{_ci(m, 'llava_med.open_recall')} (recall) | "
        f"{_f(em['open_accuracy'])}{_ci(m, 'exact_match.open_accuracy')} |",
        f"| all | {n['total']} | | {_f(em['overall_accuracy'])}{_ci(m, 'exact_match.overall_accuracy')} |",
        "",
    ]
    if lm["n_closed_dropped_by_script"]:
        out += [
            f"LLaVA-Med's run_eval.py would leave {lm['n_closed_dropped_by_script']} closed question(s) out of "
            f"its denominator (answer holds yes/no but not the gold); its own closed accuracy would read "
            f"{_f(lm['closed_accuracy_script'])}.",
            "",
        ]
    if m.get("answer_type_inferred"):
        out += [
            f"{m['answer_type_inferred']} question(s) had no answer_type: closed iff the gold answer is yes/no.",
            "",
        ]
    return out


def _reportgen_section(m: dict[str, Any]) -> list[str]:
    from clinkd.eval.reportgen import REPORT_METRICS

    out = [
        f"Reports: {m['n_reports']}. Language metrics on R2Gen-cleaned reports (pycocoevalcap scorers); "
        "brackets: 95% bootstrap intervals.",
        "",
        "| " + " | ".join(REPORT_METRICS) + " |",
        "|" + "---:|" * len(REPORT_METRICS),
        "| " + " | ".join(f"{_f(m.get(k))}{_ci(m, k)}" for k in REPORT_METRICS) + " |",
        "",
        "### Clinical efficacy (CheXpert, 14 observations)",
        "",
    ]
    ce = m.get("clinical_efficacy")
    if ce is None:
        out += [f"Unavailable — {(m.get('unavailable') or {}).get('clinical_efficacy', 'not computed')}.", ""]
        return out
    out += [
        "| averaging | precision | recall | F1 |",
        "|---|---:|---:|---:|",
        f"| **micro** (headline) | **{_f(ce['precision'])}** | **{_f(ce['recall'])}** | **{_f(ce['f1'])}** |",
        f"| macro | {_f(ce['precision_macro'])} | {_f(ce['recall_macro'])} | {_f(ce['f1_macro'])} |",
        "",
        "| observation | gold positives | precision | recall | F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    out += [
        f"| {name} | {v['support']} | {_f(v['precision'])} | {_f(v['recall'])} | {_f(v['f1'])} |"
        for name, v in ce["per_observation"].items()
    ]
    return [*out, ""]
