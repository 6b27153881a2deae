"""``clinkd ask``: one question about one image (PNG/JPEG/DICOM/NIfTI); prints the answer, draws its boxes."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinkd.errors import ClinkdError


def register(sub: argparse._SubParsersAction) -> None:
    from clinkd.cli.infer import add_pixel_options, add_selection_options
    from clinkd.infer.defaults import DEFAULTS  # no torch: --help stays fast

    p = sub.add_parser(
        "ask",
        help="ask a model about one image; print the answer and draw its boxes",
        description="Answer QUESTION about --image (PNG, JPEG, DICOM or NIfTI), print the answer and write a "
        "copy of the image with the answer's boxes and labels drawn (default: <stem>_answer.png beside it).",
    )
    p.add_argument("question", help='the question, e.g. "Where is the liver?"')
    p.add_argument("--model", required=True, type=Path, metavar="DIR", help="model directory")
    p.add_argument("--image", required=True, type=Path, metavar="FILE", help="PNG/JPEG/DICOM/NIfTI image")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="annotated image (default <stem>_answer.png next to the input)",
    )
    add_selection_options(p)
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULTS.max_new_tokens,
        help=f"answer length limit ({DEFAULTS.max_new_tokens}, the release's longest: image analysis)",
    )
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help=f"sampling seed ({DEFAULTS.seed})")
    p.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    add_pixel_options(p)
    p.set_defaults(func=cmd_ask)


def cmd_ask(args: argparse.Namespace) -> int:
    from clinkd.cli.infer import check_pixel_options, resolve_device
    from clinkd.infer.ask import ask_image, check_question
    from clinkd.infer.options import check_decoding_args

    check_decoding_args(
        select=args.select,
        candidates=args.candidates,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        cli=True,
    )
    check_question(args.question)
    if not args.model.is_dir():
        raise ClinkdError(f"model directory {args.model} not found")
    if not args.image.is_file():
        raise ClinkdError(f"image {args.image} not found")
    check_pixel_options(args)
    device = resolve_device(args.device)
    # ask_image checks --out (a writable image file, not the input) before loading anything
    ans = ask_image(
        args.model,
        args.image,
        args.question,
        out=args.out,
        select=args.select,
        candidates=args.candidates,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        device=device,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
    )
    print(ans.text)
    print(f"({len(ans.boxes)} box(es) drawn on {ans.image_out})")
    return 0
