"""Entry point of the ``clinkd`` command.

Each subcommand lives in its own module ``clinkd.cli.<name>`` exposing ``register(subparsers)``, which
adds an ``argparse`` parser whose ``func`` default takes the parsed namespace and returns an exit code.
Modules are imported lazily-enough (heavy libraries such as torch are imported inside the command
functions) so that ``clinkd --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from clinkd import __version__
from clinkd.errors import ClinkdError

# Order is the order shown by --help: data → model → train → infer → eval, then the user-facing tools.
COMMANDS: tuple[str, ...] = ("data", "eval", "model", "demo")


class CLIError(ClinkdError):
    """An error whose message tells the user what to fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinkd",
        description="ClinKD: grounded multi-task medical VQA on the Qwen2-VL family, "
        "with the Med-GRIT-270k evaluation protocol.",
    )
    parser.add_argument("--version", action="version", version=f"clinkd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"clinkd.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except ClinkdError as err:
        print(f"clinkd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
