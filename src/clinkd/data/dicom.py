"""DICOM files for :func:`clinkd.data.images.load_image` and :func:`~clinkd.data.images.image_size`: the
header read and its declared size checked before any pixel (deflated files inflated only up to what the
header declares), one frame decoded, modality LUT, windowing and MONOCHROME1 applied. The limits and the
module docstring's rules are :mod:`clinkd.data.images`'s.
"""

from __future__ import annotations

import io
import math
import zlib
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
from PIL import Image

from clinkd.data.images import (
    DEFAULT_WINDOWS,
    MAX_HEADER_BYTES,
    check_decoded_size,
    gray_to_rgb,
    percentile_window,
    to_uint8,
)
from clinkd.errors import ImageLoadError

__all__ = ["dicom_size", "load_dicom"]


def _first(value) -> float | None:
    """A DICOM value that may be multi-valued: its first element as a finite float (None when there is
    none)."""
    if value is None:
        return None
    try:
        number = float(value[0]) if hasattr(value, "__len__") and not isinstance(value, str) else float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) else None


def _dicom_int(ds, keyword: str, default: int, path: Path) -> int:
    """An integer attribute of a DICOM header, ``default`` when absent; refused when not a count."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ImageLoadError(f"DICOM {keyword} {value!r} is not a whole number", path) from None
    if number < 0:
        raise ImageLoadError(f"DICOM {keyword} {number} is negative", path)
    return number


def _dicom_geometry(ds, path: Path) -> tuple[int, int, int, int, int]:
    """``(rows, columns, frames, samples per pixel, bits allocated)`` from a DICOM header."""
    rows, cols = _dicom_int(ds, "Rows", 0, path), _dicom_int(ds, "Columns", 0, path)
    if rows == 0 or cols == 0:
        raise ImageLoadError("DICOM file holds no image (Rows/Columns missing or 0)", path)
    frames = max(1, _dicom_int(ds, "NumberOfFrames", 1, path))
    samples = max(1, _dicom_int(ds, "SamplesPerPixel", 1, path))
    bits = max(1, _dicom_int(ds, "BitsAllocated", 16, path))
    return rows, cols, frames, samples, bits


def _check_dicom_size(ds, path: Path) -> tuple[int, int]:
    """Check the decoded size a DICOM header declares; return ``(frames, decoded pixel-data bytes)``."""
    rows, cols, frames, samples, bits = _dicom_geometry(ds, path)
    n_bytes = -(-rows * cols * frames * samples * bits // 8)
    described = (
        f"the DICOM header declares {rows} x {cols} pixels x {frames} frame(s) x {samples} sample(s) "
        f"of {bits} bits ({n_bytes / 2**20:,.0f} MiB of pixel data)"
    )
    check_decoded_size(path, described, rows * cols, rows * cols * frames * samples)
    return frames, n_bytes


def _dicom_header(path: Path):
    """``(the data set of a DICOM file up to its pixel data, a function reading the whole data set)``.

    A deflated file (transfer syntax 1.2.840.10008.1.2.1.99) is inflated only as far as its header:
    pydicom would inflate the whole file into memory first (a 244 KB file can inflate to gigabytes).
    """
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    meta = pydicom.filereader.read_file_meta_info(path)
    syntax = meta.get("TransferSyntaxUID")
    if syntax == DeflatedExplicitVRLittleEndian:
        return _deflated_dicom(path, meta)
    ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size=2**20)
    if syntax is not None and syntax.is_transfer_syntax and not syntax.is_encapsulated:
        return ds, lambda: path  # pydicom reads just the frame asked for from the file
    return ds, lambda: pydicom.dcmread(path)  # compressed frames, held as compressed as in the file


class _Inflating(io.RawIOBase):
    """A seekable, read-only view of a raw deflate stream, inflated only as far as it is read and never
    past ``limit`` bytes (reading further raises :class:`ImageLoadError` naming ``path`` and saying that
    ``what`` inflates to more; both may be changed between reads)."""

    def __init__(self, data: bytes, limit: int, path: Path, what: str):
        super().__init__()
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._pending, self._buf, self._pos = data, bytearray(), 0
        self.limit, self.what, self._path = limit, what, path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _fill(self, end: int | None) -> None:
        """Inflate until ``end`` bytes are held (``None``: to the end of the stream)."""
        while (end is None or len(self._buf) < end) and not self._inflater.eof:
            want = self.limit + 1 - len(self._buf)
            if want <= 0:
                raise ImageLoadError(
                    f"{self.what} inflates to more than {self.limit:,} bytes; refused (a decompression bomb)",
                    self._path,
                )
            if end is not None:
                want = min(want, max(end - len(self._buf), 2**16))
            out = self._inflater.decompress(self._pending, want)
            self._pending = self._inflater.unconsumed_tail
            if not out and not self._pending:
                break  # the deflate stream ends early: the reader sees the end of the data
            self._buf += out

    def read(self, size: int | None = -1) -> bytes:
        end = None if size is None or size < 0 else self._pos + size
        self._fill(end)
        out = bytes(self._buf[self._pos : end])
        self._pos += len(out)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            self._fill(None)
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _deflated_dicom(path: Path, meta):
    """``(header data set, function giving the whole data set)`` of a deflated DICOM file, inflated in two
    bounded steps: the header (at most :data:`MAX_HEADER_BYTES`), then — once its declared size is
    within the limits — the rest, refused when it inflates to more than the header declares."""
    from pydicom.filereader import read_dataset, read_preamble

    with open(path, "rb") as fp:
        read_preamble(fp, False)
        read_dataset(
            fp, is_implicit_VR=False, is_little_endian=True, stop_when=lambda tag, vr, n: tag >> 16 != 2
        )
        stream = _Inflating(fp.read(), MAX_HEADER_BYTES, path, "deflated DICOM header")
    header = read_dataset(
        cast(BinaryIO, stream),  # a binary file object (read, seek, tell), as pydicom reads it
        is_implicit_VR=False,
        is_little_endian=True,
        stop_when=lambda tag, vr, n: tag in (0x7FE00010, 0x7FE00008, 0x7FE00009),
    )
    pixel_start = stream.tell()
    header.file_meta = meta

    def whole():
        _, n_bytes = _check_dicom_size(header, path)
        stream.limit = pixel_start + 12 + n_bytes + 2**20  # element header, pixel data, trailing elements
        stream.what = "deflated DICOM data (more than its header declares)"
        stream.seek(0)
        ds = read_dataset(stream, is_implicit_VR=False, is_little_endian=True)
        ds.file_meta = meta
        return ds

    return header, whole


def load_dicom(path: Path, frame: int | None) -> Image.Image:
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, pixel_array

    try:
        ds, whole = _dicom_header(path)
    except InvalidDicomError as err:
        raise ImageLoadError(f"not a valid DICOM file: {err}", path) from None
    n_frames, _ = _check_dicom_size(ds, path)
    idx = None
    if n_frames > 1:
        idx = n_frames // 2 if frame is None else frame
        if not 0 <= idx < n_frames:
            raise ImageLoadError(f"frame {idx} out of range: the file has {n_frames} frames", path)
    src = whole()
    try:
        arr = pixel_array(src, index=idx)  # only the frame wanted is read and decoded
    except AttributeError as err:
        if "no pixel data" not in str(err):
            raise
        raise ImageLoadError("DICOM file has no pixel data (PixelData element missing)", path) from None
    except Exception as err:  # codecs raise many types; the user needs the file and the reason
        raise ImageLoadError(
            f"cannot decode DICOM pixel data (transfer syntax {ds.file_meta.get('TransferSyntaxUID', '?')}): {err}",
            path,
        ) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR"):
        # pydicom already converts YBR_FULL(_422) to RGB (pixel_array's raw=False); JPEG 2000 decoders
        # give RGB for YBR_RCT/ICT.
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            arr = apply_color_lut(arr, ds)
        arr = np.asarray(arr)
        if arr.dtype != np.uint8:
            arr = to_uint8(arr, *percentile_window(arr))
        return Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)  # rescale slope/intercept
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if centre is None or width is None or width <= 0:
        default = DEFAULT_WINDOWS.get(str(ds.get("Modality", "")).upper())
        centre, width = default if default else (None, None)
    if centre is not None and width is not None:
        lo, hi = centre - width / 2.0, centre + width / 2.0
    else:
        lo, hi = percentile_window(values)
    out = to_uint8(values, lo, hi)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return gray_to_rgb(out)


def dicom_size(path: Path) -> tuple[int, int]:
    from pydicom.errors import InvalidDicomError

    try:
        ds, _ = _dicom_header(path)
    except InvalidDicomError as err:
        raise ImageLoadError(f"not a valid DICOM file: {err}", path) from None
    _check_dicom_size(ds, path)
    rows, cols, *_ = _dicom_geometry(ds, path)
    return cols, rows
