"""``clinkd demo``: the one-command demonstration (the README's main job)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole ClinKD ablation on the built-in synthetic benchmark (about 16 minutes on 2 cores)",
        description="Build the synthetic Med-GRIT benchmark, train the tiny teacher, distil the tiny student, "
        "fine-tune it with reflective correction, answer the test split (greedy and SASG) and evaluate with the "
        "standard protocol: a five-row ablation written to DIR/results.md and DIR/results.json. Stages already "
        "finished in DIR are reused.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument(
        "--size",
        choices=["full", "tiny"],
        default="full",
        help="full: the documented budget; tiny: a smoke run of a few seconds",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="delete DIR first instead of reusing finished stages")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from clinkd.pipelines.demo import run_demo

    run_demo(args.out, size=args.size, seed=args.seed, fresh=args.fresh)
    return 0
