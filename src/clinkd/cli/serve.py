"""``clinkd serve``: the local web app (upload an image, ask, see the answer and its boxes)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="start the web app: upload an image, ask a question, see the answer and its boxes",
        description="Load the model in DIR and serve a Gradio app on HOST:PORT (loopback by default; pass "
        "--host 0.0.0.0 to expose it on the network). Nothing is downloaded and nothing is sent anywhere: "
        "no analytics, no share link.",
    )
    p.add_argument("--model", required=True, type=Path, metavar="DIR", help="model directory (clinkd.model.load)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="largest accepted upload in MB (default 20)")
    p.add_argument("--select", default="greedy", choices=["greedy", "sasg"],
                   help="answer selection: greedy, or SASG (semantic medoid of sampled candidates)")
    p.add_argument("--candidates", type=int, default=4, help="sampled candidates for --select sasg (default 4)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit (default 128)")
    p.add_argument("--device", default=None, help="torch device for the model (default: cuda if available, else cpu)")
    from clinkd.cli.infer import add_pixel_options

    add_pixel_options(p)
    p.set_defaults(func=cmd_serve)


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad settings before the (slow) model load."""
    from clinkd.cli.main import CLIError

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be between 1 and 65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise CLIError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.candidates < 1:
        raise CLIError(f"--candidates must be at least 1, got {args.candidates}")
    if not args.model.is_dir():
        raise CLIError(f"--model {args.model}: not a directory (build a tiny one with `clinkd model init`)")
    from clinkd.cli.infer import check_pixel_options

    check_pixel_options(args, error=CLIError)


def build_from_args(args: argparse.Namespace):
    """Load the model and build the (unlaunched) app: ``(app, answerer)``."""
    import torch

    from clinkd.model import load
    from clinkd.serve.answer import Answerer
    from clinkd.serve.app import build_app

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load(args.model, min_pixels=getattr(args, "min_pixels", None),
                            max_pixels=getattr(args, "max_pixels", None))
    model = model.to(device)
    answerer = Answerer(model, processor, select=args.select, candidates=args.candidates,
                        max_new_tokens=args.max_new_tokens)
    app = build_app(answerer, model_path=args.model, max_upload_mb=args.max_upload_mb)
    return app, answerer


def cmd_serve(args: argparse.Namespace) -> int:
    check_args(args)
    app, _ = build_from_args(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the app is reachable from other machines and has no login", args.host)
    from clinkd.serve.app import launch

    launch(app, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, block=True)
    return 0
