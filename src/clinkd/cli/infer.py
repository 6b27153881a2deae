"""``clinkd infer``: answer Med-GRIT test files and write prediction files that ``clinkd eval`` reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinkd.errors import ClinkdError

TASK_CHOICES = ("VG", "RO", "GC", "MII", "all")


def add_pixel_options(p: argparse.ArgumentParser) -> None:
    """``--min-pixels`` / ``--max-pixels``: the image budget (shared by infer, ask and serve)."""
    p.add_argument(
        "--min-pixels",
        type=int,
        default=None,
        metavar="N",
        help="smallest resized image area in pixels (default: 512*512 for a real checkpoint, a tiny "
        "model's own setting)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="largest resized image area in pixels, i.e. at most N/784 visual tokens an image (default: "
        "1024*1024 for a real checkpoint, as the ClinKD release; a tiny model's own setting)",
    )


def check_pixel_options(args: argparse.Namespace, error: type[Exception] = ClinkdError) -> None:
    """Refuse an impossible ``--min-pixels``/``--max-pixels`` before any work (the budget's one check)."""
    from clinkd.model.processor import check_pixel_budget

    check_pixel_budget(args.min_pixels, args.max_pixels, names=("--min-pixels", "--max-pixels"), error=error)


def add_selection_options(p: argparse.ArgumentParser) -> None:
    """``--select`` and ``--candidates``, with the release's defaults (:mod:`clinkd.infer.defaults`): shared by
    ``clinkd infer``, ``ask`` and ``serve``."""
    from clinkd.infer.defaults import DEFAULTS  # no torch: --help stays fast

    p.add_argument(
        "--select",
        choices=("greedy", "sasg"),
        default=DEFAULTS.select,
        help=f"answer selection: greedy, or SASG (the semantic medoid of sampled candidates; default "
        f"{DEFAULTS.select})",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=DEFAULTS.candidates,
        metavar="N",
        help=f"SASG: sampled candidates besides greedy ({DEFAULTS.candidates})",
    )


def _token_defaults() -> str:
    """The default token limits, as the help text states them (from :mod:`clinkd.infer.defaults`)."""
    from clinkd.infer.defaults import DEFAULTS

    tasks = DEFAULTS.task_max_new_tokens
    common = DEFAULTS.max_new_tokens_default_task
    longer = ", ".join(f"{n} for {t}" for t, n in tasks.items() if n != common)
    bench = ", ".join(f"{b} {n}" for b, n in DEFAULTS.benchmark_max_new_tokens.items())
    return f"{common}, and {longer} (the release's); with --benchmark: {bench}"


def register(sub: argparse._SubParsersAction) -> None:
    from clinkd.infer.defaults import BENCHMARKS, DEFAULTS  # no torch: --help stays fast

    d = DEFAULTS
    p = sub.add_parser(
        "infer",
        help="answer test files; write JSONL predictions (resumable, greedy or SASG)",
        description="Answer a Med-GRIT test file (--data TEST.json --out PRED.jsonl) or the test files of a "
        "dataset folder (--data DIR --out OUTDIR, writing OUTDIR/pred_<TASK>.jsonl for each --task), or a "
        "converted benchmark folder (--benchmark NAME --data DIR --out OUTDIR, reading DIR/test.json and "
        "writing OUTDIR/pred_<NAME>.jsonl). Each line "
        "is {id, image, question, annotation, response}, the format `clinkd eval` and the published scripts "
        "read. Rerunning the same command resumes: ids already written are skipped and a torn last line "
        "is removed. An existing --out must be a prediction file of the same test file written with the same "
        "model and settings (recorded in PRED.settings.json); anything else is refused, never changed.",
        epilog=f"Max new tokens default to {_token_defaults()}. With --select sasg each "
        "question gets the greedy answer plus --candidates sampled ones (one generate call), and the "
        "candidate the others agree with most (sentence embeddings + box IoU) is written.",
    )
    p.add_argument("--model", required=True, type=Path, metavar="DIR", help="model directory")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="TEST.json|DIR",
        help="a test file, or a dataset folder holding test_<TASK>.json files",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="PRED.jsonl|DIR",
        help="prediction file (for a test file) or output folder (for a dataset folder)",
    )
    p.add_argument(
        "--task",
        choices=TASK_CHOICES,
        default=None,
        help="folder: which test files (default all); file: its task (default from the file name)",
    )
    p.add_argument(
        "--benchmark",
        choices=BENCHMARKS,
        default=None,
        metavar="NAME",
        help=f"a converted benchmark ({', '.join(BENCHMARKS)}): --data DIR reads DIR/test.json and writes "
        "--out OUTDIR/pred_NAME.jsonl (a test file: --out is the prediction file); sets the default max new "
        "tokens (short answers for VQA sets, long for reports)",
    )
    p.add_argument(
        "--images",
        type=Path,
        default=None,
        metavar="DIR",
        help="image folder (default: images/ beside the test file, else its folder)",
    )
    add_selection_options(p)
    p.add_argument(
        "--temperature",
        type=float,
        default=d.temperature,
        help=f"SASG sampling temperature ({d.temperature})",
    )
    p.add_argument("--top-p", type=float, default=d.top_p, help=f"SASG nucleus sampling top-p ({d.top_p})")
    p.add_argument(
        "--box-weight",
        type=float,
        default=d.box_weight,
        help=f"SASG: weight of box IoU in agreement ({d.box_weight})",
    )
    p.add_argument(
        "--length-cap",
        type=float,
        default=d.length_factor,
        metavar="FACTOR",
        help=f"SASG: drop samples longer than FACTOR x the greedy answer + {d.length_slack} tokens "
        f"({d.length_factor:g}; 0 = no cap)",
    )
    p.add_argument(
        "--save-candidates",
        action="store_true",
        help="SASG: keep candidates and scores in each record under the extra key 'sasg'",
    )
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"questions per generate call ({d.batch_size})"
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="override the token limit (default: per task or --benchmark, see below)",
    )
    p.add_argument(
        "--box-style",
        choices=("qwen", "qwen2", "clinkd", "raw"),
        default="qwen",
        help="box markup of responses, read back from the model's box convention into Med-GRIT 0-1000; "
        "qwen = <box>...</box> (default, what eval reads); raw = the model's own text (always kept "
        "as raw_response when it differs)",
    )
    p.add_argument(
        "--question-box-style",
        choices=("auto", "qwen", "qwen2", "clinkd", "raw"),
        default="auto",
        help="boxes of the questions fed to the model; auto (default) = the model's box convention "
        "(the one it was trained in, a hub checkpoint's family's own); qwen/qwen2/clinkd = that "
        "markup, 0-1000; raw = the test file's text unchanged",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"sampling seed ({d.seed})")
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="only the first N samples of each file"
    )
    p.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    add_pixel_options(p)
    p.set_defaults(func=cmd_infer)


def resolve_device(name: str) -> str:
    """``--device``: ``auto`` → cuda when available, else cpu; anything else must name a device torch has
    here (``cpu``, ``cuda``, ``cuda:1``, ``mps``), checked before any work."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ClinkdError(
            f"--device {name!r} is not a torch device; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ClinkdError(
                f"--device {name}: this machine has {count} usable CUDA device(s); use auto or cpu"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ClinkdError(f"--device {name}: MPS is not available here; use auto or cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ClinkdError(f"--device {name}: clinkd runs on cpu, cuda or mps")
    return name


def cmd_infer(args: argparse.Namespace) -> int:
    from clinkd.infer.options import check_decoding_args

    check_decoding_args(
        select=args.select,
        candidates=args.candidates,
        temperature=args.temperature,
        top_p=args.top_p,
        box_weight=args.box_weight,
        length_factor=args.length_cap or None,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        seed=args.seed,
        cli=True,
    )
    if not args.model.is_dir():
        raise ClinkdError(f"model directory {args.model} not found")
    if not args.data.exists():
        raise ClinkdError(f"--data {args.data} not found (give a test file or a dataset folder)")
    check_pixel_options(args)
    device = resolve_device(args.device)
    from clinkd.infer.predict import predict_benchmark, predict_dataset, predict_file

    common = dict(
        select=args.select,
        candidates=args.candidates,
        temperature=args.temperature,
        top_p=args.top_p,
        box_weight=args.box_weight,
        length_factor=args.length_cap or None,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        box_style=args.box_style,
        question_box_style=args.question_box_style,
        seed=args.seed,
        limit=args.limit,
        save_candidates=args.save_candidates,
        device=device,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
    )
    benchmark = getattr(args, "benchmark", None)
    if benchmark is not None:
        if args.task is not None:
            raise ClinkdError("--task names a Med-GRIT task; a --benchmark file has none: leave --task out")
        if args.data.is_dir():
            if args.out.suffix == ".jsonl":
                raise ClinkdError(f"--data is a folder, so --out must be a folder (got {args.out})")
            s = predict_benchmark(args.model, args.data, args.out, benchmark, image_dir=args.images, **common)
        else:
            s = predict_file(
                args.model, args.data, args.out, image_dir=args.images, benchmark=benchmark, **common
            )
        results = {benchmark: s}
    elif args.data.is_dir():
        if args.out.suffix == ".jsonl":
            raise ClinkdError(f"--data is a folder, so --out must be a folder (got {args.out})")
        kwargs = dict(common, image_dir=args.images) if args.images else common
        results = predict_dataset(args.model, args.data, args.out, tasks=args.task or "all", **kwargs)
    else:
        if args.task == "all":
            raise ClinkdError("--task all needs --data to be a dataset folder; for one file give its task")
        s = predict_file(args.model, args.data, args.out, task=args.task, image_dir=args.images, **common)
        results = {s.task or args.data.stem: s}
    for name, s in results.items():
        print(
            f"{name}: {s.path} ({s.done_before + s.written}/{s.total} records; {s.written} written now, "
            f"{s.done_before} already there)"
        )
    return 0
