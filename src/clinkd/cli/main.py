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
from clinkd.runtime import pin_cpu_threads

pin_cpu_threads()  # before any command imports torch: the same bits whatever else the machine runs

# Order is the order shown by --help: data → model → train → infer → eval, then the user-facing tools.
COMMANDS: tuple[str, ...] = ("data", "model", "train", "infer", "eval", "ask", "demo", "serve")


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


def join_dotted_overrides(argv: list[str]) -> list[str]:
    """``--section.key VALUE`` → ``--section.key=VALUE``, so that argparse never mistakes VALUE for a
    positional argument (dotted options are always configuration overrides)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "." in a.split("=", 1)[0] and "=" not in a and i + 1 < len(argv):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
        else:
            out.append(a)
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = join_dotted_overrides(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
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
