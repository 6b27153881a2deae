"""What produced a cached result: keys that decide whether a cache (pseudo-labels, a finished demo stage) may
be reused, and a line saying why not.

A key is a plain JSON-able dict of everything the result depends on; a model folder enters it by the
digest of its weight files, so retraining a teacher in place invalidates what was computed from it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["describe_change", "digest", "weights_digest"]

_WEIGHT_SUFFIXES = (".safetensors", ".bin")
# (resolved folder, [(file, size, mtime_ns)]) -> digest: a folder is read once per process
_memo: dict[tuple, str] = {}


def weights_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over a model folder's weight files (names and bytes, in name order).

    Reads every byte once per process (a few seconds per GB); an unchanged folder (same files, sizes and
    modification times) is not read again. A folder without weight files digests to its config alone.
    """
    root = Path(folder).resolve()
    files = (
        sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
        if root.is_dir()
        else []
    )
    if not files and (root / "config.json").is_file():
        files = [root / "config.json"]
    stat = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo_key = (str(root), stat)
    if memo_key in _memo:
        return _memo[memo_key]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
    _memo[memo_key] = h.hexdigest()
    return _memo[memo_key]


def digest(value: Any) -> str:
    """SHA-256 of a JSON-able value (keys sorted): a short stand-in for a long input such as a list of items."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def describe_change(old: dict | None, new: dict) -> str:
    """Which top-level fields differ between a stored key and the wanted one, for the log line."""
    if old is None:
        return "it records no key (made by an older clinkd or cut short)"
    fields = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return (
        "its " + ", ".join(fields) + (" differ" if len(fields) > 1 else " differs") if fields else "no change"
    )
