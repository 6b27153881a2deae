"""``clinkd demo``: the one-command demonstration (the README's main job)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demo on the built-in synthetic benchmark",
        description="Build the synthetic Med-GRIT benchmark, validate it, print its statistics and draw a "
        "gallery; write DIR/results.md and DIR/results.json.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=None, help="benchmark size in images (default: generator default)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from clinkd.demo import run_demo

    run_demo(args.out, seed=args.seed, n_images=args.images)
    return 0
