"""NIfTI volumes for :func:`clinkd.data.images.load_image` and :func:`~clinkd.data.images.image_size`: the
header read and the volume's declared size checked before any voxel, one slice read from the file. The
limits and the module docstring's rules are :mod:`clinkd.data.images`'s.
"""

from __future__ import annotations

import gzip
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image

from clinkd.data.images import MAX_HEADER_BYTES, check_decoded_size, gray_to_rgb, percentile_window, to_uint8
from clinkd.errors import ImageLoadError

if TYPE_CHECKING:
    from nibabel.dataobj_images import DataobjImage

__all__ = ["load_nifti", "nifti_size"]


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


def load_nifti(path: Path, slice_index: int | None) -> Image.Image:
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
    return gray_to_rgb(to_uint8(data, *percentile_window(data)))


def nifti_size(path: Path) -> tuple[int, int]:
    _, shape = _open_nifti_checked(path)
    return shape[0], shape[1]  # x is the width: load_image shows the slice transposed
