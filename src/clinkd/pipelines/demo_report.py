"""The demo's ``results.md``: the ablation table, the intervals, the paired differences, in words.

Pure functions of what :func:`clinkd.pipelines.demo.run_demo` writes to ``results.json``.
"""

from __future__ import annotations

import itertools

METRICS = {  # the columns of results.md: task -> metric names of report.json's standard reading
    "VG": ["recall@0.5"],
    "RO": ["accuracy"],
    "GC": ["Bleu_4", "METEOR", "ROUGE_L", "CIDEr"],
    "MII": ["Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "mBMR"],
}


def _value(metrics: dict, task: str, key: str):
    block = metrics.get(task) or {}
    return block.get(key)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def compare(rows: list[dict]) -> list[str]:
    """Plain sentences: for each row after the baseline, which numbers rose and which did not."""
    lines = []
    base = rows[0]["metrics"]
    for prev, row in itertools.pairwise(rows):
        up: list[str] = []
        down: list[str] = []
        same: list[str] = []
        for task, keys in METRICS.items():
            for k in keys:
                a, b = _value(prev["metrics"], task, k), _value(row["metrics"], task, k)
                if a is None or b is None:
                    continue
                label = f"{task} {k}"
                (up if b > a + 1e-9 else down if b < a - 1e-9 else same).append(label)
        vs_base = []
        for task, keys in METRICS.items():
            a, b = _value(base, task, keys[-1]), _value(row["metrics"], task, keys[-1])
            if a is not None and b is not None:
                vs_base.append(f"{task} {keys[-1]} {'+' if b >= a else ''}{b - a:.3f}")
        lines.append(
            f"- **{row['name']}** vs **{prev['name']}**: improved {', '.join(up) or 'nothing'}; "
            f"worse {', '.join(down) or 'nothing'}"
            + (f"; unchanged {', '.join(same)}" if same else "")
            + f". Against the baseline: {', '.join(vs_base)}."
        )
    return lines


HEADLINE = [("VG", "recall@0.5"), ("RO", "accuracy"), ("GC", "CIDEr"), ("MII", "mBMR")]


def _ci(entry: dict | None) -> str:
    if not entry or entry.get("ci95") is None:
        return "n/a"
    lo, hi = entry["ci95"]
    return f"[{lo:.3f}, {hi:.3f}]"


def intervals_table(results: dict) -> list[str]:
    """Each row's headline numbers with their 95% intervals (stratified bootstrap over the questions)."""
    head = ["row"] + [f"{t} {k}" for t, k in HEADLINE]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"] + [results["teacher"]]:
        cells = [r["name"]]
        for t, k in HEADLINE:
            e = (r.get("intervals") or {}).get(t, {}).get(k)
            cells.append("n/a" if not e else f"{e['value']:.3f} {_ci(e)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def differences_table(results: dict) -> list[str]:
    """Each row minus the baseline, question by question (paired bootstrap): the difference, its 95%
    interval, and **bold** where the interval excludes 0 (beyond noise)."""
    head = ["row − baseline"] + [f"{t} {k}" for t, k in HEADLINE]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["rows"][1:] + [results["teacher"]]:
        cells = [r["name"]]
        for t, k in HEADLINE:
            e = (r.get("vs_baseline") or {}).get(t, {}).get(k)
            if not e:
                cells.append("n/a")
                continue
            text = f"{e['difference']:+.3f} {_ci(e)}"
            cells.append(f"**{text}**" if e["beyond_noise"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def noise(results: dict) -> str:
    """One sentence on what the test split can resolve: the half-widths of the paired intervals."""
    res = results.get("resolution") or {}
    parts = []
    for t, k in HEADLINE:
        e = (res.get(t) or {}).get(k) or {}
        if e.get("min_half_width") is not None:
            parts.append(f"{t} {k} ±{e['min_half_width']:.3f}–{e['max_half_width']:.3f}")
    n = results.get("n_questions") or {}
    sizes = ", ".join(f"{t} {(n.get(t) or {}).get('total', '?')}" for t, _ in HEADLINE if t in n)
    return (
        (
            "Questions per task: "
            + sizes
            + ". Half-widths of the paired 95% intervals against the baseline: "
            + "; ".join(parts)
            + ". A difference inside its interval's reach is not evidence either way; "
            "bold differences are beyond noise."
        )
        if parts
        else ""
    )


def _pretrained_lines(pretrained: dict | None) -> list[str]:
    if not pretrained:
        return []
    out = []
    for name, c in pretrained.items():
        out.append(
            f"- **{name}**: {c['parameters'] / 1e6:.2f} M parameters, {c['steps']} pretraining steps on "
            f"data seed {c['data_seed']} (`clinkd model init --size {name}` writes it; its model card says how "
            "it was made); validation " + ", ".join(f"{k} {v:.3f}" for k, v in c["validation"].items()) + "."
        )
    return ["The shipped pretrained checkpoints (scripts/pretrain_tiny.py):", "", *out, ""]


def _pseudo_label_line(stats: dict | None) -> list[str]:
    if not stats or not stats.get("pseudo_labels"):
        return []
    n = stats["pseudo_labels"]
    return [
        f"Pseudo-labels: the teacher answered {n} training questions; {stats['kept']} ({stats['kept'] / n:.0%}) "
        f"were kept, {stats['replaced_contradicting']} replaced by the ground truth because they contradicted "
        f"it and {stats['replaced_low_margin']} because the teacher was unsure (mean confidence margin "
        f"{stats['mean_margin']:.2f}).",
        "",
    ]


def render_results(results: dict, brief: bool = False) -> str:
    """``results.md`` from ``results``; with ``brief``, its ablation table alone (what the demo prints)."""
    rows = results["rows"]
    head = ["student", "rope", "KD", "RCT", "selection"] + [
        f"{t} {k}" for t, ks in METRICS.items() for k in ks
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows + ([results["teacher"]] if results.get("teacher") else []):
        s = r["settings"]
        name = r["name"] if r in rows else f"*{r['name']}*"  # the teacher's reference line in italics
        cells = [
            name,
            s["rope"],
            "yes" if s["distillation"] else "–",
            "yes" if s["rct"] else "–",
            s["selection"],
        ]
        cells += [_fmt(_value(r["metrics"], t, k)) for t, ks in METRICS.items() for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    if brief:
        return "\n".join(lines)
    b = results["budget"]
    doc = [
        "# clinkd demo: the ClinKD ablation on the synthetic Med-GRIT benchmark",
        "",
        f"Measured on {results['machine']}; {results.get('total_seconds', results['wall_seconds']):.0f} s of work in "
        f"all ({results['wall_seconds']:.0f} s in the last run). Standard Med-GRIT "
        "reading (equal-weight mean over the eight modalities; VG recall@0.5, RO accuracy, pycocoevalcap "
        "metrics for GC and MII; SPICE left out, it cannot run offline).",
        "",
        f"Budget: {b['images']} images ({b.get('test_fraction', 0.2):.0%} held out for the test split); "
        f"data seed {results.get('seed', 0)}; every student starts from the shipped student base and takes "
        f"{b['distill_steps'] + b['sft_steps']} steps at batch {b['batch']} (rows with KD: {b['distill_steps']} "
        f"distillation + {b['sft_steps']} SFT); SASG with {b['sasg_candidates']} sampled candidates besides the greedy answer.",
        "",
        *lines,
        "",
        "The last line, in italics, is the shipped teacher's own greedy answers: not a row of the ablation, "
        "but the ceiling the pseudo-labels come from.",
        "",
        *_pretrained_lines(results.get("pretrained")),
        *_pseudo_label_line(results.get("distill_stats")),
        "## Headline numbers with 95% intervals",
        "",
        "Stratified bootstrap over the test questions (resampled within each modality, 1000 times).",
        "",
        *intervals_table(results),
        "",
        "## Differences from the baseline (paired: the same questions)",
        "",
        *differences_table(results),
        "",
        noise(results),
        "",
        "## What changed, row by row (measured, not adjusted)",
        "",
        *compare(rows),
        "",
        "## Wall time per stage (s)",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in results["stage_seconds"].items()],
        "",
    ]
    return "\n".join(doc)
