"""Report plots (matplotlib, Agg backend): per-modality bars per task and an IoU histogram for VG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt
import numpy as np

from clinkd.eval.predictions import MODALITIES

_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52")


def _bars(
    ax: Any, series: Mapping[str, Sequence[float | None]], labels: Sequence[str], ylabel: str, title: str
) -> None:
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for k, (name, vals) in enumerate(series.items()):
        heights = [np.nan if v is None else v for v in vals]
        ax.bar(
            x + (k - (len(series) - 1) / 2) * width,
            heights,
            width,
            label=name,
            color=_COLORS[k % len(_COLORS)],
        )
    for i, _lab in enumerate(labels):
        if all(vals[i] is None for vals in series.values()):
            ax.text(i, 0, "no\nsamples", ha="center", va="bottom", fontsize=7, color="grey")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    top = max([v for vals in series.values() for v in vals if v is not None] or [1.0])
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)  # head room for the legend above the bars
    ax.legend(fontsize=8, loc="upper left", ncol=min(len(series), 3))


def plot_task(task: str, standard: dict[str, Any], strict: dict[str, Any] | None, path: Path) -> None:
    """Per-modality bars: standard vs strict where they differ, the caption metrics otherwise."""
    labels = list(MODALITIES)
    std_per, st_per = standard["per_modality"], (strict or {}).get("per_modality", {})
    if task in ("VG", "RO"):
        fig, ax = plt.subplots(figsize=(8, 4))
        if task == "VG":
            series = {
                "standard recall@0.5 (many-to-one, IoU>0.5)": [std_per[m]["recall@0.5"] for m in labels]
            }
            if strict:
                series["strict recall (one-to-one, IoU>=0.5)"] = [st_per[m]["recall"] for m in labels]
                series["strict F1"] = [st_per[m]["f1"] for m in labels]
        else:
            series = {"standard accuracy (word substrings)": [std_per[m]["accuracy"] for m in labels]}
            if strict:
                series["strict accuracy (normalised exact)"] = [st_per[m]["accuracy"] for m in labels]
        _bars(ax, series, labels, "score", f"{task} per modality")
    else:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
        metrics = ["Bleu_4", "METEOR", "ROUGE_L"] + (["mBMR"] if task == "MII" else [])
        _bars(
            ax1,
            {k: [std_per[m].get(k) for m in labels] for k in metrics},
            labels,
            "score",
            f"{task} per modality",
        )
        _bars(
            ax2,
            {"CIDEr": [std_per[m]["CIDEr"] for m in labels]},
            labels,
            "CIDEr",
            f"{task} CIDEr per modality",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_iou_histogram(best_iou: Sequence[float], path: Path) -> None:
    """Histogram of each annotation box's best IoU with any predicted box (0 when none)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    vals = np.asarray(best_iou, dtype=float)
    ax.hist(vals, bins=np.linspace(0, 1, 21).tolist(), color=_COLORS[0], edgecolor="white")
    ax.axvline(0.5, color=_COLORS[3], linestyle="--", label="IoU = 0.5")
    hit = float((vals > 0.5).mean()) if vals.size else 0.0
    ax.set_title(f"VG: best IoU per annotation box (n={vals.size}, {hit:.1%} > 0.5)")
    ax.set_xlabel("IoU")
    ax.set_ylabel("annotation boxes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_vqa(block: dict[str, Any], path: Path, title: str) -> None:
    """Med-VQA: per answer type, the LLaVA-Med number (closed accuracy / open token recall) beside the
    exact-match accuracy, and the overall exact-match accuracy."""
    lm, em = block["llava_med"], block["exact_match"]
    labels = [
        f"closed (n={block['counts']['closed']})",
        f"open (n={block['counts']['open']})",
        f"all (n={block['counts']['total']})",
    ]
    series: dict[str, Sequence[float | None]] = {
        "LLaVA-Med (closed: gold in answer; open: token recall)": [
            lm["closed_accuracy"],
            lm["open_recall"],
            None,
        ],
        "exact match": [em["closed_accuracy"], em["open_accuracy"], em["overall_accuracy"]],
    }
    fig, ax = plt.subplots(figsize=(7, 4))
    _bars(ax, series, labels, "score", f"{title}: accuracy per answer type")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_report_metrics(block: dict[str, Any], path: Path, title: str) -> None:
    """Report generation: the NLG metrics (CIDEr on its own axis) and, when computed, clinical efficacy."""
    nlg = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L"]
    ce = block.get("clinical_efficacy")
    widths = [3, 1] + ([2] if ce else [])
    fig, axes = plt.subplots(
        1, len(widths), figsize=(4 + 2 * sum(widths) / 2, 4), gridspec_kw={"width_ratios": widths}
    )
    _bars(axes[0], {"score": [block.get(m) for m in nlg]}, nlg, "score", f"{title}: language metrics")
    _bars(axes[1], {"CIDEr": [block.get("CIDEr")]}, ["CIDEr"], "CIDEr", "CIDEr")
    if ce:
        keys = ["precision", "recall", "f1"]
        _bars(axes[2], {"micro": [ce[k] for k in keys]}, keys, "score", "clinical efficacy (CheXpert, micro)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
