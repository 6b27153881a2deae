"""``clinkd eval``: score prediction files under the Med-GRIT protocol (standard + strict readings)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clinkd.errors import ClinkdError

log = logging.getLogger(__name__)

#: What ``clinkd eval`` writes into its folder; a folder holding only these is overwritten without --force.
REPORT_FILES = ("report.json", "report.md", "plots")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score Med-GRIT prediction files (standard and strict readings)",
        description="Score JSONL prediction files ({id, image, question, annotation, response} per "
        "line), one per task. The task comes from --task or from the file name (VG, RO, GC or MII "
        "as a token, e.g. pred_VG.jsonl). Writes DIR/report.json, DIR/report.md and DIR/plots/. "
        "An empty file, or an id given twice, is refused.",
    )
    p.add_argument("predictions", nargs="+", type=Path, metavar="PRED.jsonl", help="prediction files")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder: new, empty, or holding an earlier report (else pass --force)",
    )
    p.add_argument("--force", action="store_true", help="write into an --out folder that holds other files")
    p.add_argument(
        "--task",
        choices=["VG", "RO", "GC", "MII"],
        default=None,
        help="task of every file (default: from each file name)",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip malformed lines (counted in the report) instead of stopping",
    )
    p.add_argument("--no-strict", action="store_true", help="standard reading only")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples for the strict 95%% intervals (0: none; default 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--max-caption-tokens",
        type=int,
        default=None,
        metavar="N",
        help="cut GC/MII captions to N tokens after tokenising, for files whose runaway answers METEOR "
        "cannot align (e.g. 2000). Off by default: the standard reading scores whole captions, as "
        "pycocoevalcap does; report.json counts the captions cut",
    )
    spice = p.add_mutually_exclusive_group()
    spice.add_argument(
        "--spice",
        dest="spice",
        action="store_const",
        const=True,
        default=None,
        help="require SPICE (fails when the CoreNLP jars are missing)",
    )
    spice.add_argument("--no-spice", dest="spice", action="store_const", const=False, help="do not try SPICE")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=cmd_eval)


def check_out(out: Path, inputs: list[Path], force: bool) -> None:
    """Refuse an --out folder that cannot hold the report, before the (long) scoring: a file, a place that
    cannot be written, a folder holding other things (without --force), or one whose report files
    would overwrite an input or are folders/files of the wrong kind."""
    from clinkd.paths import output_dir

    for name in REPORT_FILES:
        target = out / name
        for src in inputs:
            if (
                src.exists()
                and target.exists()
                and (src.resolve() == target.resolve() or src.samefile(target))
            ):
                raise ClinkdError(
                    f"--out {out}: writing {name} there would overwrite the input {src}; choose "
                    "another folder"
                )
        if target.exists() and (target.is_dir() != (name == "plots")):
            raise ClinkdError(
                f"--out {out}: {target} is a {'folder' if target.is_dir() else 'file'}; move it away "
                "or choose another folder"
            )
    output_dir(out, force=force, what="--out folder", allow=REPORT_FILES)


def cmd_eval(args: argparse.Namespace) -> int:
    from clinkd.eval import evaluate, write_report
    from clinkd.eval.evaluator import HEADLINE, check_settings

    check_settings(
        bootstrap=args.bootstrap, seed=args.seed, max_caption_tokens=args.max_caption_tokens, cli=True
    )
    check_out(args.out, args.predictions, args.force)
    report = evaluate(
        args.predictions,
        task=args.task,
        strict=not args.no_strict,
        bootstrap=args.bootstrap,
        seed=args.seed,
        skip_invalid=args.skip_invalid,
        spice=args.spice,
        progress=True,
        max_caption_tokens=args.max_caption_tokens,
    )
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
    length = report.conventions.get("caption_length") or {}
    for task, n in (length.get("responses_cut") or {}).items():
        print(
            f"{task}: --max-caption-tokens {length['max_tokens']} cut {n} response(s) and "
            f"{length['references_cut'][task]} reference(s) (not the standard reading)"
        )
    counts = (report.conventions.get("published_pipeline") or {}).get("counts") or {}
    if counts:
        print(
            "the published scripts would fail or misalign on some records here; see 'published_pipeline' under "
            "conventions in report.json"
        )
    print(f"wrote {paths['json']}, {paths['md']}" + ("" if args.no_plots else f" and {args.out / 'plots'}/"))
    return 0


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:.4f}"
