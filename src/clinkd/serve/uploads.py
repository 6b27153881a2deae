"""Where the web app's uploads live, and how they go away (issue 13: patient data must not linger).

Gradio keeps every upload, and every image it sends back to the page, under one folder: ``GRADIO_TEMP_DIR``,
else ``<system temp>/gradio`` (shared by every Gradio app on the machine, readable by other users, never
emptied). The folder is read when components are built (``Block.GRADIO_CACHE``) and when the server starts
(``App.uploaded_file_dir``), and an upload lands in ``<folder>/<sha256 of its bytes>/<file name>``.

- :func:`private_temp_dir` points ``GRADIO_TEMP_DIR`` at a fresh folder only this user can read (mode 0700)
  for as long as the app is built and served, and removes it when the server stops, or at interpreter exit
  should the ``with`` block never finish.
- :func:`discard_upload` deletes one upload (and the folder Gradio made for it) once it has been read.

No Gradio import here: plain file operations, testable without a server.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TEMP_DIR_ENV", "discard_upload", "private_temp_dir", "remove_temp_dir"]

log = logging.getLogger(__name__)

TEMP_DIR_ENV = "GRADIO_TEMP_DIR"


def remove_temp_dir(path: str | os.PathLike) -> bool:
    """Delete the folder ``path`` and everything in it; True when it is gone (a failure is logged)."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning(
            "could not delete the web app's temporary folder %s: delete it by hand (it may hold "
            "uploaded images)",
            path,
        )
        return False
    return True


@contextmanager
def private_temp_dir(prefix: str = "clinkd-serve-") -> Iterator[Path]:
    """A fresh 0700 folder set as ``GRADIO_TEMP_DIR`` inside the ``with`` block, removed at its end.

    Build *and* launch the app inside the block: Gradio reads the variable at both times. The previous
    value of the variable is restored on exit. If the process ends without leaving the block (an
    exception in another thread, ``sys.exit`` from a callback), an :mod:`atexit` hook removes it.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp: mode 0700, a name nobody else can guess
    previous = os.environ.get(TEMP_DIR_ENV)
    os.environ[TEMP_DIR_ENV] = str(path)
    at_exit = functools.partial(remove_temp_dir, path)  # its own object: unregister removes only this one
    atexit.register(at_exit)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(TEMP_DIR_ENV, None)
        else:
            os.environ[TEMP_DIR_ENV] = previous
        remove_temp_dir(path)
        atexit.unregister(at_exit)


def discard_upload(path: str | os.PathLike | None, root: str | os.PathLike) -> bool:
    """Delete the uploaded file ``path``, and its folder when that is left empty, if it lies inside ``root``
    (Gradio's upload folder); True when a file was deleted.

    A path outside ``root`` (a file a test or an API caller named) is never touched. The folder may hold
    the same upload of another session (Gradio names it by the file's hash), hence only an empty one goes.
    """
    if not path:
        return False
    path = Path(path)
    root = Path(os.path.realpath(root))
    folder = Path(os.path.realpath(path.parent))  # the file itself is unlinked, never a link's target
    if folder != root and root not in folder.parents:
        return False
    try:
        (folder / path.name).unlink()
    except FileNotFoundError:
        return False
    except OSError as err:
        log.warning("could not delete the upload %s: %s", path, err)
        return False
    if folder != root:
        try:
            folder.rmdir()
        except OSError:  # not empty: another session uploaded the same bytes
            pass
    return True
