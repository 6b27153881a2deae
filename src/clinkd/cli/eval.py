"""``clinkd eval``: score prediction files under the Med-GRIT protocol (standard + strict readings), or
under a Med-VQA / report-generation benchmark's protocol with ``--benchmark`` (:mod:`clinkd.eval.benchmark`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clinkd.benchmarks import NAMES as BENCHMARK_NAMES  # standard library only: --help stays fast
from clinkd.benchmarks import REPORT_NAMES as REPORT_BENCHMARKS
from clinkd.errors import ClinkdError

log = logging.getLogger(__name__)


#: What ``clinkd eval`` writes into its folder; a folder holding only these is overwritten without --force.
REPORT_FILES = ("report.json", "report.md", "plots")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score prediction files: Med-GRIT (standard and strict readings) or a --benchmark",
        description="Score JSONL prediction files ({id, image, question, annotation, response} per "
        "line), one per task. The task comes from --task or from the file name (VG, RO, GC or MII "
        "as a token, e.g. pred_VG.jsonl). Writes DIR/report.json, DIR/report.md and DIR/plots/. "
        "An empty file, or an id given twice, is refused. With --benchmark NAME the files are scored "
        "under that benchmark's protocol instead: Med-VQA (vqa-rad, slake, pathvqa: LLaVA-Med open "
        "recall and closed accuracy, exact-match accuracy) or report generation (iu-xray, mimic-cxr: "
        "BLEU-1..4, METEOR, ROUGE-L, CIDEr; clinical efficacy with --labeller).",
    )
    p.add_argument("predictions", nargs="+", type=Path, metavar="PRED.jsonl", help="prediction files")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder: new, empty, or holding an earlier report (else pass --force)",
    )
    p.add_argument(
        "--benchmark",
        choices=BENCHMARK_NAMES,
        default=None,
        metavar="NAME",
        help=f"score under a benchmark's protocol: {', '.join(BENCHMARK_NAMES)} (default: Med-GRIT)",
    )
    p.add_argument(
        "--labeller",
        default=None,
        metavar="COMMAND",
        help="with --benchmark iu-xray/mimic-cxr: a local CheXpert labeller (CheXpert labeler, CheXbert) run "
        "as COMMAND with {input} (a CSV with a 'Report Impression' column that clinkd writes; "
        "{input_no_header}: the same without the header row, for the rule-based CheXpert labeler) and {output} "
        "(the labelled CSV to write) or {output_dir} (a folder to write it into), e.g. "
        '"python label.py -d={input} -o={output_dir} -c=chexbert.pth"; gives clinical efficacy '
        "(CheXpert micro precision/recall/F1). Without it CE is reported unavailable",
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
    if args.benchmark is not None:
        return cmd_eval_benchmark(args)
    if args.labeller is not None:
        raise ClinkdError("--labeller is for --benchmark iu-xray or mimic-cxr (report generation)")
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


def cmd_eval_benchmark(args: argparse.Namespace) -> int:
    """``clinkd eval --benchmark NAME``: one benchmark's protocol over the given files (scored as one set)."""
    from clinkd.eval.evaluator import check_settings

    name = args.benchmark
    if args.labeller is not None and name not in REPORT_BENCHMARKS:
        raise ClinkdError(
            f"--labeller is for the report benchmarks ({', '.join(REPORT_BENCHMARKS)}), not {name}"
        )
    refused = [
        flag
        for flag, given in (
            ("--task", args.task is not None),
            ("--no-strict", args.no_strict),
            ("--max-caption-tokens", args.max_caption_tokens is not None),
            ("--spice/--no-spice", args.spice is not None),
        )
        if given
    ]
    if refused:
        raise ClinkdError(
            f"{', '.join(refused)} belong(s) to the Med-GRIT protocol, not to --benchmark {name}"
        )
    check_settings(bootstrap=args.bootstrap, seed=args.seed, cli=True)
    if args.labeller is not None:
        from clinkd.eval.clinical import check_command

        check_command(args.labeller)
    check_out(args.out, args.predictions, args.force)
    from clinkd.eval.benchmark import evaluate_benchmark
    from clinkd.eval.report import write_benchmark_report

    report = evaluate_benchmark(
        args.predictions,
        name,
        bootstrap=args.bootstrap,
        seed=args.seed,
        skip_invalid=args.skip_invalid,
        labeller=args.labeller,
    )
    paths = write_benchmark_report(report, args.out, plots=not args.no_plots)
    for item in report.inputs:
        if item["n_skipped"]:
            print(f"{item['source']}: skipped {item['n_skipped']} invalid line(s)")
    m = report.metrics
    if report.kind == "vqa":
        lm, em = m["llava_med"], m["exact_match"]
        print(
            f"{name}: LLaVA-Med open recall = {_fmt(lm['open_recall'])} ({m['counts']['open']} open), "
            f"closed accuracy = {_fmt(lm['closed_accuracy'])} ({m['counts']['closed']} closed); "
            f"exact-match overall accuracy = {_fmt(em['overall_accuracy'])}"
        )
    else:
        nlg = ", ".join(f"{k} = {_fmt(m[k])}" for k in ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"))
        ce = m["clinical_efficacy"]
        ce_text = "CE unavailable (no --labeller)" if ce is None else f"CE micro F1 = {_fmt(ce['f1'])}"
        print(f"{name}: {nlg}; {ce_text}")
    print(f"wrote {paths['json']}, {paths['md']}" + ("" if args.no_plots else f" and {args.out / 'plots'}/"))
    return 0


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:.4f}"
