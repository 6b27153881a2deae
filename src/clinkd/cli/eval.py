"""``clinkd eval``: score prediction files under the Med-GRIT protocol (standard + strict readings)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score Med-GRIT prediction files (standard and strict readings)",
        description="Score JSONL prediction files ({id, image, question, annotation, response} per "
        "line), one per task. The task comes from --task or from the file name (VG, RO, GC or MII "
        "as a token, e.g. pred_VG.jsonl). Writes DIR/report.json, DIR/report.md and DIR/plots/.",
    )
    p.add_argument("predictions", nargs="+", type=Path, metavar="PRED.jsonl", help="prediction files")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--task", choices=["VG", "RO", "GC", "MII"], default=None,
                   help="task of every file (default: from each file name)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip malformed lines (counted in the report) instead of stopping")
    p.add_argument("--no-strict", action="store_true", help="standard reading only")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples for the strict 95%% intervals (0: none; default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    spice = p.add_mutually_exclusive_group()
    spice.add_argument("--spice", dest="spice", action="store_const", const=True, default=None,
                       help="require SPICE (fails when the CoreNLP jars are missing)")
    spice.add_argument("--no-spice", dest="spice", action="store_const", const=False,
                       help="do not try SPICE")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from clinkd.eval import evaluate, write_report
    from clinkd.eval.evaluator import HEADLINE

    report = evaluate(args.predictions, task=args.task, strict=not args.no_strict,
                      bootstrap=args.bootstrap, seed=args.seed, skip_invalid=args.skip_invalid,
                      spice=args.spice, progress=True)
    paths = write_report(report, args.out, plots=not args.no_plots)
    for item in report.inputs:
        if item["n_skipped"]:
            print(f"{item['source']}: skipped {item['n_skipped']} invalid line(s)")
    for task, block in report.standard.items():
        key = HEADLINE["standard"][task]
        line = f"{task:4s} standard {key} = {_fmt(block.get(key))}"
        if report.strict is not None:
            skey = HEADLINE["strict"][task]
            line += f"   strict {skey} = {_fmt(report.strict[task].get(skey))}"
        print(line)
    print(f"wrote {paths['json']}, {paths['md']}" + ("" if args.no_plots else f" and {args.out / 'plots'}/"))
    return 0


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:.4f}"
