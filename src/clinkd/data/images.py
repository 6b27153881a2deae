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

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from clinkd.errors import ClinkdError, DataError, ImageLoadError

if TYPE_CHECKING:
    pass

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
            from clinkd.data.dicom import load_dicom

            return load_dicom(path, frame)
        if kind == "nifti":
            from clinkd.data.nifti import load_nifti

            return load_nifti(path, slice_index)
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


def to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``arr`` scaled so that ``lo`` → 0 and ``hi`` → 255, clipped; float32 arithmetic (exact for 16-bit
    values, and half the memory of float64)."""
    if not hi > lo:
        hi = lo + 1.0
    scale = min(1.0 / (hi - lo), 1e30)  # a window narrower than float32 can invert is a step
    out = (arr.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def percentile_window(arr: np.ndarray) -> tuple[float, float]:
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


def gray_to_rgb(arr8: np.ndarray) -> Image.Image:
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
            return gray_to_rgb(to_uint8(arr, *percentile_window(arr)))
        return im.convert("RGB")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of the image :func:`load_image` gives, from the file's header only (no pixel is
    decoded); an image over the decoded-size limits raises :class:`ImageLoadError`, as it would there."""
    path = Path(path)
    if not _is_file(path):
        raise ImageLoadError("image file not found", path)
    kind = image_kind(path)
    try:
        if kind == "dicom":
            from clinkd.data.dicom import dicom_size

            return dicom_size(path)
        if kind == "nifti":
            from clinkd.data.nifti import nifti_size

            return nifti_size(path)
        with _open_raster(path) as im:
            return im.size
    except ImageLoadError:
        raise
    except Exception as err:  # header readers raise many types; the user needs the file and the reason
        raise ImageLoadError(f"cannot read {kind} image header: {type(err).__name__}: {err}", path) from err
