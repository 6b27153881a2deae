"""Loading medical images of any common file form as RGB ``PIL.Image``.

- PNG / JPEG / anything Pillow reads (16-bit greyscale is rescaled to 8 bits).
- DICOM (pydicom): rescale slope/intercept applied (modality LUT), then intensity windowing from the
  file's WindowCenter/WindowWidth tags, else a modality default (CT soft tissue, centre 40 HU / width
  400 HU; other modalities: the 0.5–99.5 percentile range); MONOCHROME1 is inverted; a multi-frame file
  gives its middle frame unless ``frame`` is given.
- NIfTI (nibabel, ``.nii`` / ``.nii.gz``): the middle axial slice (last spatial axis) unless ``slice_index``
  is given; 4-D volumes give their first volume; intensities scaled by the 0.5–99.5 percentiles.

Anything that cannot be read raises :class:`~clinkd.errors.ImageLoadError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from clinkd.errors import DataError, ImageLoadError

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Default windows (centre, width) when a DICOM file carries none; CT in Hounsfield units.
DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {"CT": (40.0, 400.0)}


def image_path(image_dir: str | os.PathLike, name: str, source: str | os.PathLike | None = None,
               record: int | str | None = None) -> Path:
    """``image_dir / name`` for an image named by a data record, refused when it leaves ``image_dir``.

    An absolute path, or one whose ``..`` or symbolic links lead outside the image folder, is a
    :class:`~clinkd.errors.DataError` (naming ``source`` and ``record`` when given): a record never makes
    clinkd read, or reveal the existence of, a file outside the data it was given.
    """
    folder = Path(image_dir)
    if not name or Path(name).is_absolute() or Path(name).anchor or "\x00" in name:
        raise DataError(f"image path {name!r} is not a path inside the image folder {folder}", source, record)
    path = folder / name
    root = folder.resolve()
    try:
        path.resolve().relative_to(root)
    except ValueError:
        raise DataError(f"image path {name!r} leaves the image folder {folder}", source, record) from None
    return path


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
    """Read ``path`` (PNG/JPEG, DICOM or NIfTI) as an RGB image. See the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError("image file not found", path)
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


def _to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if not hi > lo:
        hi = lo + 1.0
    out = (arr.astype(np.float64) - lo) / (hi - lo)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _percentile_window(arr: np.ndarray) -> tuple[float, float]:
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    return float(lo), float(hi)


def _gray_to_rgb(arr8: np.ndarray) -> Image.Image:
    return Image.fromarray(arr8, mode="L").convert("RGB")


def _load_raster(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im, dtype=np.float64)
                return _gray_to_rgb(_to_uint8(arr, *_percentile_window(arr)))
            return im.convert("RGB")
    except UnidentifiedImageError:
        raise ImageLoadError("not an image Pillow can decode (PNG, JPEG, ...)", path) from None


def _first(value) -> float | None:
    """A DICOM value that may be multi-valued: its first element as float."""
    if value is None:
        return None
    try:
        return float(value[0]) if hasattr(value, "__len__") and not isinstance(value, str) else float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _load_dicom(path: Path, frame: int | None) -> Image.Image:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as err:
        raise ImageLoadError(f"not a valid DICOM file: {err}", path) from None
    if "PixelData" not in ds:
        raise ImageLoadError("DICOM file has no pixel data (PixelData element missing)", path)
    try:
        arr = ds.pixel_array
    except Exception as err:
        raise ImageLoadError(
            f"cannot decode DICOM pixel data (transfer syntax {ds.file_meta.get('TransferSyntaxUID', '?')}): {err}",
            path,
        ) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    is_color = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")
    if n_frames > 1:
        idx = n_frames // 2 if frame is None else frame
        if not 0 <= idx < n_frames:
            raise ImageLoadError(f"frame {idx} out of range: the file has {n_frames} frames", path)
        arr = arr[idx]
    if is_color:
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, photometric, "RGB")
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            arr = apply_color_lut(arr, ds)
        arr = np.asarray(arr)
        if arr.dtype != np.uint8:
            arr = _to_uint8(arr, *_percentile_window(arr))
        return Image.fromarray(arr[..., :3], mode="RGB")
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)  # rescale slope/intercept
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


def _load_nifti(path: Path, slice_index: int | None) -> Image.Image:
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as err:
        raise ImageLoadError(f"not a valid NIfTI file: {err}", path) from None
    data = np.asarray(img.dataobj, dtype=np.float64)
    while data.ndim > 3:  # 4-D (time/volumes): take the first volume
        data = data[..., 0]
    if data.ndim == 3:
        n = data.shape[2]
        idx = n // 2 if slice_index is None else slice_index
        if not 0 <= idx < n:
            raise ImageLoadError(f"slice {idx} out of range: the volume has {n} slices", path)
        data = data[:, :, idx]
    if data.ndim != 2:
        raise ImageLoadError(f"cannot make a 2-D image from a volume of shape {data.shape}", path)
    # NIfTI stores (i=x, j=y) with j increasing anteriorly/superiorly: transpose and flip so that the
    # displayed image has rows top-down, as radiology viewers show it.
    data = np.flipud(data.T)
    return _gray_to_rgb(_to_uint8(data, *_percentile_window(data)))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image, cheaply for rasters (header only)."""
    if image_kind(path) == "raster":
        try:
            with Image.open(path) as im:
                return im.size
        except (OSError, UnidentifiedImageError) as err:
            raise ImageLoadError(f"cannot read image header: {err}", path) from None
    return load_image(path).size
