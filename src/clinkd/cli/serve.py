"""``clinkd serve``: the local web app (upload an image, ask, see the answer and its boxes).

Beyond this machine only with a login: a non-loopback ``--host`` needs ``--auth USER:PASSWORD`` (or the
variable :data:`AUTH_ENV`, which keeps the password out of the process list), unless ``--insecure`` says
that anyone who reaches the port may use it. The login travels in clear over plain HTTP: put a TLS proxy in
front on an untrusted network.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)

AUTH_ENV = "CLINKD_SERVE_AUTH"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="start the web app: upload an image, ask a question, see the answer and its boxes",
        description="Load the model in DIR and serve a Gradio app on HOST:PORT (loopback by default; pass "
        "--host 0.0.0.0 --auth USER:PASSWORD to expose it on the network). Nothing is downloaded and nothing is "
        "sent anywhere: no analytics, no share link. Uploads are read once and deleted; the app's temporary "
        "folder is private and removed when it stops.",
    )
    p.add_argument(
        "--model", required=True, type=Path, metavar="DIR", help="model directory (clinkd.model.load)"
    )
    from clinkd.serve.limits import MAX_QUESTION_CHARS, QUEUE_SIZE

    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; any other needs --auth or --insecure)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--auth",
        default=os.environ.get(AUTH_ENV),
        metavar="USER:PASSWORD",
        help=f"require this login (default: ${AUTH_ENV}, which other users cannot see in the process "
        "list as they can this option)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --auth: anyone who reaches the port can use the model",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        metavar="MB",
        help="largest accepted upload in MB (default 20)",
    )
    p.add_argument(
        "--max-question-chars",
        type=int,
        default=MAX_QUESTION_CHARS,
        metavar="N",
        help="longest accepted question, object name or region, in characters "
        f"(default {MAX_QUESTION_CHARS})",
    )
    p.add_argument(
        "--queue-size",
        type=int,
        default=QUEUE_SIZE,
        metavar="N",
        help=f"requests that may wait; one more is told the app is busy (default {QUEUE_SIZE})",
    )
    from clinkd.cli.infer import add_pixel_options, add_selection_options
    from clinkd.infer.defaults import DEFAULTS  # no torch: --help stays fast

    add_selection_options(p)
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULTS.max_new_tokens,
        help=f"answer length limit (default {DEFAULTS.max_new_tokens}, the release's longest: image analysis)",
    )
    p.add_argument(
        "--device", default=None, help="torch device for the model (default: cuda if available, else cpu)"
    )
    add_pixel_options(p)
    p.set_defaults(func=cmd_serve)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost, or "" (every interface)
        return False


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD`` → ``(user, password)`` (the password may hold ``:``); None → None.

    Raises :class:`~clinkd.cli.main.CLIError` naming what is wrong, never echoing the password.
    """
    from clinkd.cli.main import CLIError

    if text is None:
        return None
    user, colon, password = text.partition(":")
    if not colon:
        raise CLIError(f"--auth (or ${AUTH_ENV}) must be USER:PASSWORD (no ':' found)")
    if not user or user != user.strip() or any(not ch.isprintable() for ch in user):
        raise CLIError(
            "--auth: the user name before ':' must be non-empty, without surrounding spaces or "
            "control characters"
        )
    if not password:
        raise CLIError(f"--auth: the password of {user!r} is empty")
    if any(not ch.isprintable() for ch in password):
        raise CLIError(f"--auth: the password of {user!r} holds a control character")
    return user, password


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad settings before the (slow) model load."""
    from clinkd.cli.main import CLIError

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be between 1 and 65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise CLIError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.max_question_chars < 1:
        raise CLIError(f"--max-question-chars must be at least 1, got {args.max_question_chars}")
    if args.queue_size < 1:
        raise CLIError(f"--queue-size must be at least 1, got {args.queue_size}")
    parse_auth(args.auth)
    if not is_loopback(args.host) and args.auth is None and not args.insecure:
        raise CLIError(
            f"--host {args.host or '(every interface)'} makes the app reachable from other machines: "
            "require a login with --auth USER:PASSWORD, or pass --insecure to serve it without one"
        )
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
    model, processor = load(
        args.model, min_pixels=getattr(args, "min_pixels", None), max_pixels=getattr(args, "max_pixels", None)
    )
    model = model.to(device)
    answerer = Answerer(
        model, processor, select=args.select, candidates=args.candidates, max_new_tokens=args.max_new_tokens
    )
    app = build_app(
        answerer,
        model_path=args.model,
        max_upload_mb=args.max_upload_mb,
        max_question_chars=args.max_question_chars,
    )
    return app, answerer


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # gradio closes its server on it, and the `with` blocks below then clean up


def cmd_serve(args: argparse.Namespace) -> int:
    check_args(args)
    auth = parse_auth(args.auth)
    from clinkd.serve.uploads import private_temp_dir

    if not is_loopback(args.host):
        log.warning(
            "binding %s: the app is reachable from other machines%s",
            args.host or "every interface",
            " (login required; it travels in clear over plain HTTP)" if auth else " and has no login",
        )
    # `kill` (SIGTERM, as a service manager stops it) must delete the uploads as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with (
            private_temp_dir() as temp_dir
        ):  # gradio reads it when imported, when the app is built and launched
            from clinkd.serve.app import launch

            log.info("uploads and served images kept in %s until the app stops", temp_dir)
            app, _ = build_from_args(args)
            launch(
                app,
                host=args.host,
                port=args.port,
                max_upload_mb=args.max_upload_mb,
                queue_size=args.queue_size,
                auth=auth,
                block=True,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
