"""Where clinkd writes: output files and folders checked before any work, with errors that say what to fix.

Every command that writes takes its paths through :func:`output_file` or :func:`output_dir`, so that a
path that is a folder (or a file), lies under a file, or cannot be written is refused up front — before
hours of work, and before anything a user made is touched. A non-empty folder is refused unless the
caller passes ``force`` (the user's ``--force``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from clinkd.errors import ClinkdError

__all__ = ["file_sha256", "output_dir", "output_file"]


def _writable_parent(path: Path, what: str) -> None:
    """Refuse ``path`` when an ancestor is a file or the nearest existing ancestor is not writable."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ClinkdError(f"{what} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ClinkdError(f"{what} {path}: cannot write into {parent} (permission denied)")
            return


def output_file(path: str | os.PathLike, *, what: str = "output file", create_parent: bool = True) -> Path:
    """Check that ``path`` can be written as a file (it may exist: the caller decides about that) and
    create its folder. Raises :class:`~clinkd.errors.ClinkdError` saying why not."""
    path = Path(path)
    if path.is_dir():
        raise ClinkdError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ClinkdError(f"{what} {path}: cannot write it (permission denied)")
    _writable_parent(path, what)
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def output_dir(
    path: str | os.PathLike, *, force: bool = False, what: str = "output folder", allow: tuple[str, ...] = ()
) -> Path:
    """Check that ``path`` can be a fresh output folder and create it.

    Refused: a file, a folder under a file or in an unwritable place, and a folder that already holds
    something — unless ``force`` (the user's ``--force``) or everything in it is named in ``allow``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ClinkdError(f"{what} {path} is a file; give a folder")
    _writable_parent(path, what)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ClinkdError(f"{what} {path}: cannot write into it (permission denied)")
        held = sorted(p.name for p in path.iterdir() if p.name not in allow)
        if held and not force:
            shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            raise ClinkdError(
                f"{what} {path} is not empty ({shown}); choose another folder, or pass --force "
                "to write into it"
            )
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in 16 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or the same inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
