"""Loading medical images of any common file form as RGB ``PIL.Image``.

- PNG / JPEG / anything Pillow reads (16-bit greyscale is rescaled to 8 bits).
- DICOM (pydicom): rescale slope/intercept applied (modality LUT), then intensity windowing from the
  file's WindowCenter/WindowWidth tags, else a modality default (CT soft tissue, centre 40 HU / width
  400 HU; other modalities: the 0.5–99.5 percentile range); MONOCHROME1 is inverted; a multi-frame file
  gives its middle frame unless ``frame`` is given. Only that frame is decoded.
- NIfTI (nibabel, ``.nii`` / ``.nii.gz``): the middle axial slice (last spatial axis) unless ``slice_index``
  is given; 4-D volumes give their first volume; intensities scaled by the 0.5–99.5 percentiles. Only
  that slice is read from the file.

Anything that cannot be read raises :class:`~clinkd.errors.ImageLoadError` naming the file.

Decoded-size budget (issue 13: a 14 KB 1-bit PNG decodes to 2.2 GB, a 244 KB deflated DICOM cost 6.9 GB,
a 1.1 MB ``.nii.gz`` 2.3 GB). Before any pixel is decoded, the size the file's header declares is
checked against two limits, and a file over them is refused with an :class:`ImageLoadError`:

- ``MAX_IMAGE_PIXELS`` (environment variable ``CLINKD_MAX_IMAGE_PIXELS``, default 2**26 = 64 Mi pixels,
  8192 × 8192): width × height of one 2-D image, DICOM frame or NIfTI slice. The largest single medical
  images in common use (digital mammograms, about 4096 × 5900 = 24 MP; 43 cm flat-panel radiographs,
  about 4300 × 4300 = 18.5 MP) fit more than twice over, while the decoded RGB image stays under 200 MB
  and the float32 copy that windowing makes under 256 MB. (The models see far less: the Qwen2-VL
  processors resize to at most 12.8 MP.)
- ``MAX_VOLUME_VOXELS`` (``CLINKD_MAX_VOLUME_VOXELS``, default 2**29 = 512 Mi voxels, 512 × 512 × 2048):
  every voxel of a DICOM file (rows × columns × frames × samples) or NIfTI volume (the product of its
  shape). A whole-body CT at sub-millimetre slices, or a 64 × 64 × 40 × 1000 fMRI run, fits. Only one
  frame or slice is decoded, so this bounds the time spent seeking through compressed data (a gzip
  stream must be inflated up to the slice: at most about 1 GiB for 16-bit voxels) and the memory a
  deflated DICOM file is inflated into.

Set a module attribute (``clinkd.data.images.MAX_IMAGE_PIXELS = ...``) to override the environment for
the process; ``None`` (the default) reads the environment variable at each call, else the default.
Pillow's own guard (:class:`PIL.Image.DecompressionBombError` and its warning, above
``PIL.Image.MAX_IMAGE_PIXELS``) also gives an :class:`ImageLoadError`. Compressed DICOM frames (JPEG,
JPEG 2000) are decoded by their codec at the size their codestream declares.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from clinkd.errors import ClinkdError, DataError, ImageLoadError

if TYPE_CHECKING:
    from nibabel.dataobj_images import DataobjImage

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Default windows (centre, width) when a DICOM file carries none; CT in Hounsfield units.
DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {"CT": (40.0, 400.0)}

DEFAULT_MAX_IMAGE_PIXELS = 2**26  # 8192 x 8192; see the module docstring
DEFAULT_MAX_VOLUME_VOXELS = 2**29  # 512 x 512 x 2048
#: Overrides of the limits for this process; ``None`` reads ``CLINKD_MAX_IMAGE_PIXELS`` /
#: ``CLINKD_MAX_VOLUME_VOXELS`` at each call, else uses the defaults above.
MAX_IMAGE_PIXELS: int | None = None
MAX_VOLUME_VOXELS: int | None = None
PIXELS_ENV = "CLINKD_MAX_IMAGE_PIXELS"
VOXELS_ENV = "CLINKD_MAX_VOLUME_VOXELS"
# Header bytes read before the pixel data (DICOM elements, NIfTI extensions): real headers are
# kilobytes, rarely a few megabytes (vendor private data, embedded DICOM headers).
MAX_HEADER_BYTES = 16 * 2**20
# Percentile windows are computed from at most this many evenly spaced values: a window needs no more
# precision, and sorting all 64 Mi values of a large image would cost copies of its size.
PERCENTILE_SAMPLES = 2**22


def _limit(value: int | None, env: str, default: int) -> int:
    """The limit in force: ``value`` (the module setting) unless None, else the environment variable
    ``env`` when set, else ``default``. A value that is not a positive whole number is the user's error."""
    if value is None:
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise ClinkdError(
                f"{env}={text!r} is not a whole number; set it to a positive number, or unset it "
                "for the default"
            ) from None
    if value < 1:
        raise ClinkdError(f"{env}={value} must be at least 1")
    return int(value)


def max_image_pixels() -> int:
    """The pixel limit of one 2-D image in force: :data:`MAX_IMAGE_PIXELS`, else ``CLINKD_MAX_IMAGE_PIXELS``,
    else :data:`DEFAULT_MAX_IMAGE_PIXELS`."""
    return _limit(MAX_IMAGE_PIXELS, PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)


def max_volume_voxels() -> int:
    """The voxel limit of a whole file in force: :data:`MAX_VOLUME_VOXELS`, else ``CLINKD_MAX_VOLUME_VOXELS``,
    else :data:`DEFAULT_MAX_VOLUME_VOXELS`."""
    return _limit(MAX_VOLUME_VOXELS, VOXELS_ENV, DEFAULT_MAX_VOLUME_VOXELS)


def check_decoded_size(path: str | os.PathLike, described: str, plane: int, total: int | None = None) -> None:
    """Refuse (:class:`ImageLoadError` naming ``path``) an image whose header declares more than the
    limits in force: ``plane`` pixels in one 2-D image, ``total`` voxels in the whole file.

    ``described`` says what the header declares (``"a 65535 x 65535 image"``), for the message.
    """
    pixels = max_image_pixels()
    if plane > pixels:
        raise ImageLoadError(
            f"{described}: {plane:,} pixels in one image, over the limit of {pixels:,} ({PIXELS_ENV}); refused "
            "before decoding (a decompression bomb, or a larger image than clinkd accepts: raise the limit)",
            path,
        )
    voxels = max_volume_voxels()
    if total is not None and total > voxels:
        raise ImageLoadError(
            f"{described}: {total:,} voxels, over the limit of {voxels:,} ({VOXELS_ENV}); refused before "
            "decoding (a decompression bomb, or a larger volume than clinkd accepts: raise the limit)",
            path,
        )


def image_path(
    image_dir: str | os.PathLike,
    name: str,
    source: str | os.PathLike | None = None,
    record: int | str | None = None,
) -> Path:
    """``image_dir / name`` for an image named by a data record, refused when it leaves ``image_dir``.

    An absolute path, or one whose ``..`` or symbolic links lead outside the image folder, is a
    :class:`~clinkd.errors.DataError` (naming ``source`` and ``record`` when given): a record never makes
    clinkd read, or reveal the existence of, a file outside the data it was given.
    """
    folder = Path(image_dir)
    if not name or Path(name).is_absolute() or Path(name).anchor or "\x00" in name:
        raise DataError(
            f"image path {_cut(name)!r} is not a path inside the image folder {folder}", source, record
        )
    path = folder / name
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
        if inside:
            path.exists()  # a name too long for the file system raises here, not later in a caller
    except (OSError, RuntimeError) as err:  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise DataError(
            f"image path {_cut(name)!r} cannot be looked up: {getattr(err, 'strerror', None) or err}",
            source,
            record,
        ) from None
    if not inside:
        raise DataError(f"image path {_cut(name)!r} leaves the image folder {folder}", source, record)
    return path


def _cut(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def image_kind(path: str | os.PathLike) -> str:
    """``"dicom"``, ``"nifti"`` or ``"raster"`` from the file name, sniffing DICOM's magic bytes too."""
    name = str(path).lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(DICOM_SUFFIXES):
        return "dicom"
    try:
        with open(path, "rb") as f:
            head = f.read(132)
        if len(head) == 132 and head[128:132] == b"DICM":
            return "dicom"
    except OSError:
        pass
    return "raster"


def load_image(
    path: str | os.PathLike, *, frame: int | None = None, slice_index: int | None = None
) -> Image.Image:
    """Read ``path`` (PNG/JPEG, DICOM or NIfTI) as an RGB image, refusing one whose header declares more
    than the decoded-size limits (:func:`max_image_pixels`, :func:`max_volume_voxels`). See the module
    docstring."""
    path = Path(path)
    if not _is_file(path):
        raise ImageLoadError("image file not found", path)
    max_image_pixels(), max_volume_voxels()  # a bad environment setting is the user's error, said as such
    kind = image_kind(path)
    try:
        if kind == "dicom":
            return _load_dicom(path, frame)
        if kind == "nifti":
            return _load_nifti(path, slice_index)
        return _load_raster(path)
    except ImageLoadError:
        raise
    except Exception as err:  # decoders raise many types; the user needs the file and the reason
        raise ImageLoadError(f"cannot read {kind} image: {type(err).__name__}: {err}", path) from err


def _is_file(path: Path) -> bool:
    """``path.is_file()``, an unusable name (too long for the file system, ...) being an :class:`ImageLoadError`."""
    try:
        return path.is_file()
    except OSError as err:
        raise ImageLoadError(f"cannot look up the image file: {err.strerror or err}", path) from None


def verify_image(path: str | os.PathLike) -> None:
    """Check that ``path`` can be used: every pixel decoded (:func:`load_image`, within the limits) and,
    for Pillow rasters, the file's structure verified too (a PNG chunk whose checksum is wrong may still
    decode). Raises :class:`ImageLoadError` naming the file."""
    path = Path(path)
    if _is_file(path) and image_kind(path) == "raster":
        try:
            with _open_raster(path) as im:
                im.verify()
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageLoadError(f"damaged image file: {type(err).__name__}: {err}", path) from None
    load_image(path)


def _to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``arr`` scaled so that ``lo`` → 0 and ``hi`` → 255, clipped; float32 arithmetic (exact for 16-bit
    values, and half the memory of float64)."""
    if not hi > lo:
        hi = lo + 1.0
    scale = min(1.0 / (hi - lo), 1e30)  # a window narrower than float32 can invert is a step
    out = (arr.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _percentile_window(arr: np.ndarray) -> tuple[float, float]:
    """The 0.5–99.5 percentile range of the finite values (of at most :data:`PERCENTILE_SAMPLES` evenly
    spaced ones), widened to min–max when that range is empty."""
    flat = arr.reshape(-1)
    if flat.size > PERCENTILE_SAMPLES:
        flat = flat[:: -(-flat.size // PERCENTILE_SAMPLES)]
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    return float(lo), float(hi)


def _gray_to_rgb(arr8: np.ndarray) -> Image.Image:
    return Image.fromarray(arr8, mode="L").convert("RGB")


# -- rasters (Pillow) ---------------------------------------------------------------------------------
@contextmanager
def _open_raster(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)`` with the decoded-size budget checked on the header, and Pillow's own
    decompression-bomb guard (its error, and its warning) turned into :class:`ImageLoadError`."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            im = Image.open(path)
    except UnidentifiedImageError:
        raise ImageLoadError("not an image Pillow can decode (PNG, JPEG, ...)", path) from None
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"refused as a decompression bomb by Pillow: {err}", path) from None
    with im:
        width, height = im.size
        check_decoded_size(
            path,
            f"the header declares a {width} x {height} {im.format or ''} image".replace("  ", " "),
            width * height,
        )
        bomb = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
        for w in caught:
            if w not in bomb:
                warnings.warn(w.message, w.category, stacklevel=3)
        if bomb:
            raise ImageLoadError(
                f"refused as a decompression bomb by Pillow (PIL.Image.MAX_IMAGE_PIXELS): {bomb[0].message}",
                path,
            )
        yield im


def _load_raster(path: Path) -> Image.Image:
    with _open_raster(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im)
            return _gray_to_rgb(_to_uint8(arr, *_percentile_window(arr)))
        return im.convert("RGB")


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


# -- DICOM --------------------------------------------------------------------------------------------
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


def _load_dicom(path: Path, frame: int | None) -> Image.Image:
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
            arr = _to_uint8(arr, *_percentile_window(arr))
        return Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)  # rescale slope/intercept
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if centre is None or width is None or width <= 0:
        default = DEFAULT_WINDOWS.get(str(ds.get("Modality", "")).upper())
        centre, width = default if default else (None, None)
    if centre is not None and width is not None:
        lo, hi = centre - width / 2.0, centre + width / 2.0
    else:
        lo, hi = _percentile_window(values)
    out = _to_uint8(values, lo, hi)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return _gray_to_rgb(out)


# -- NIfTI --------------------------------------------------------------------------------------------
def _open_nifti(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _nifti_header(path: str | os.PathLike):
    """The NIfTI-1 or NIfTI-2 header of ``path``, read without its data, its extensions checked to end
    before the data (nibabel would read an extension of any declared size into memory, and an
    extension size of 0 as "the rest of the file")."""
    import nibabel as nib

    path = Path(path)
    with _open_nifti(path) as f:
        head = f.read(540)
        sizes = {int.from_bytes(head[:4], "little"): "<", int.from_bytes(head[:4], "big"): ">"}
        if 348 in sizes:
            klass, n, endian = nib.Nifti1Header, 348, sizes[348]
        elif 540 in sizes:
            klass, n, endian = nib.Nifti2Header, 540, sizes[540]
        else:
            raise ImageLoadError(
                "not a valid NIfTI file (its header size is neither 348 nor 540 bytes)", path
            )
        hdr = klass.from_fileobj(io.BytesIO(head[:n]))
        offset = int(hdr["vox_offset"])
        if offset > MAX_HEADER_BYTES:
            raise ImageLoadError(
                f"NIfTI header declares its data at byte {offset:,}, past the "
                f"{MAX_HEADER_BYTES:,} bytes a header may take; refused",
                path,
            )
        f.seek(n)
        flag = f.read(4)
        pos = n + 4
        while len(flag) == 4 and flag[0] and offset - pos >= 16:
            ext = f.read(8)
            esize = int.from_bytes(ext[:4], "little" if endian == "<" else "big", signed=True)
            if len(ext) < 8 or esize < 16 or pos + esize > offset:
                raise ImageLoadError(
                    f"NIfTI header extension at byte {pos} declares {esize} bytes, which do not "
                    f"fit before the image data at byte {offset}; refused",
                    path,
                )
            f.seek(esize - 8, 1)  # through gzip: inflated and discarded, at most MAX_HEADER_BYTES
            pos += esize
    return hdr


def _open_nifti_checked(path: Path):
    """``(nibabel image, its shape)`` once the header's declared size is within the limits; the data
    stay on disk behind the image's array proxy."""
    import nibabel as nib

    try:
        shape = tuple(int(s) for s in _nifti_header(path).get_data_shape())
    except ImageLoadError:
        raise
    except Exception as err:
        raise ImageLoadError(f"not a valid NIfTI file: {err}", path) from None
    if len(shape) < 2:
        raise ImageLoadError(f"cannot make a 2-D image from a volume of shape {shape}", path)
    check_decoded_size(
        path, f"the NIfTI header declares a volume of shape {shape}", shape[0] * shape[1], math.prod(shape)
    )
    try:
        # a NIfTI header (checked above): a NIfTI or CIFTI image, both with a data array and its shape
        img = cast("DataobjImage", nib.load(str(path)))
    except Exception as err:
        raise ImageLoadError(f"not a valid NIfTI file: {err}", path) from None
    shape = img.shape  # as nibabel presents the data (a CIFTI file drops the header's leading 1s)
    if len(shape) < 2:
        raise ImageLoadError(f"cannot make a 2-D image from a volume of shape {shape}", path)
    return img, shape


def _load_nifti(path: Path, slice_index: int | None) -> Image.Image:
    img, shape = _open_nifti_checked(path)
    # One 2-D slice from the array proxy: the volume is never read whole, nor copied as float64.
    index: tuple = (slice(None), slice(None))
    if len(shape) >= 3:
        n = shape[2]
        idx = n // 2 if slice_index is None else slice_index
        if not 0 <= idx < n:
            raise ImageLoadError(f"slice {idx} out of range: the volume has {n} slices", path)
        index += (idx,) + (0,) * (len(shape) - 3)  # 4-D (time/volumes): the first volume
    data = np.asarray(img.dataobj[index], dtype=np.float32)
    # NIfTI stores (i=x, j=y) with j increasing anteriorly/superiorly: transpose and flip so that the
    # displayed image has rows top-down, as radiology viewers show it.
    data = np.flipud(data.T)
    return _gray_to_rgb(_to_uint8(data, *_percentile_window(data)))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of the image :func:`load_image` gives, from the file's header only (no pixel is
    decoded); an image over the decoded-size limits raises :class:`ImageLoadError`, as it would there."""
    path = Path(path)
    if not _is_file(path):
        raise ImageLoadError("image file not found", path)
    kind = image_kind(path)
    try:
        if kind == "dicom":
            return _dicom_size(path)
        if kind == "nifti":
            return _nifti_size(path)
        with _open_raster(path) as im:
            return im.size
    except ImageLoadError:
        raise
    except Exception as err:  # header readers raise many types; the user needs the file and the reason
        raise ImageLoadError(f"cannot read {kind} image header: {type(err).__name__}: {err}", path) from err


def _dicom_size(path: Path) -> tuple[int, int]:
    from pydicom.errors import InvalidDicomError

    try:
        ds, _ = _dicom_header(path)
    except InvalidDicomError as err:
        raise ImageLoadError(f"not a valid DICOM file: {err}", path) from None
    _check_dicom_size(ds, path)
    rows, cols, *_ = _dicom_geometry(ds, path)
    return cols, rows


def _nifti_size(path: Path) -> tuple[int, int]:
    _, shape = _open_nifti_checked(path)
    return shape[0], shape[1]  # x is the width: load_image shows the slice transposed
