"""Errors that tell the user what to fix.

Every error raised on bad input derives from :class:`ClinkdError`; the CLI prints its message without
a traceback and exits with status 2. Errors about a record in a file say which file and which record.
"""

from __future__ import annotations

from os import PathLike


class ClinkdError(Exception):
    """Base class: an error whose message says what went wrong and what to do about it."""


class DataError(ClinkdError):
    """Bad input data. ``path`` and ``record`` (0-based index or line number text) locate it."""

    def __init__(self, message: str, path: str | PathLike | None = None, record: int | str | None = None):
        self.path = None if path is None else str(path)
        self.record = record
        self.reason = message
        where = ""
        if self.path is not None:
            where = self.path
            if record is not None:
                where += f", record {record}"
            where += ": "
        super().__init__(where + message)


class ImageLoadError(DataError):
    """An image file that cannot be read or decoded."""


class BoxParseError(DataError):
    """A box string that does not parse."""
