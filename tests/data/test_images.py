from pathlib import Path

import nibabel
import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from clinkd.data.images import image_size, load_image
from clinkd.errors import ImageLoadError

NIB_DATA = Path(nibabel.__file__).parent / "tests" / "data"


def _dicom(name):
    path = get_testdata_file(name, download=False)  # shipped with pydicom; never download
    if path is None:
        pytest.fail(f"pydicom no longer ships {name}")
    return path


def test_ct_dicom_applies_rescale_and_default_window():
    import pydicom

    ds = pydicom.dcmread(_dicom("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    img = load_image(_dicom("CT_small.dcm"))
    assert img.mode == "RGB" and img.size == (128, 128)
    arr = np.asarray(img)[..., 0].astype(float)
    # CT_small has no window tags: soft-tissue window 40/400 HU -> [-160, 240] maps to [0, 255]
    expected = np.clip((hu + 160) / 400, 0, 1) * 255
    assert np.abs(arr - expected).max() <= 1.0


def test_mr_dicom_uses_its_window_tags():
    import pydicom

    ds = pydicom.dcmread(_dicom("MR_small.dcm"))
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    arr = np.asarray(load_image(_dicom("MR_small.dcm")))[..., 0].astype(float)
    expected = np.clip((ds.pixel_array - (c - w / 2)) / w, 0, 1) * 255
    assert np.abs(arr - expected).max() <= 1.0


def test_jpeg2000_dicom_decodes():
    img = load_image(_dicom("693_J2KI.dcm"))
    assert img.size == (512, 512)
    assert np.asarray(img).std() > 10  # a real picture, not a blank


def test_nifti_middle_slice_and_explicit_slice():
    vol = np.asarray(nibabel.load(str(NIB_DATA / "anatomical.nii")).dataobj)
    img = load_image(NIB_DATA / "anatomical.nii")
    assert img.size == (vol.shape[0], vol.shape[1])
    first = load_image(NIB_DATA / "anatomical.nii", slice_index=0)
    assert not np.array_equal(np.asarray(img), np.asarray(first))
    img4d = load_image(NIB_DATA / "example4d.nii.gz")
    assert img4d.mode == "RGB" and min(img4d.size) > 1
    with pytest.raises(ImageLoadError, match="slice 999 out of range"):
        load_image(NIB_DATA / "anatomical.nii", slice_index=999)


def test_png_and_16bit(tmp_path):
    Image.fromarray(np.full((5, 7), 200, np.uint8)).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").size == (7, 5)
    arr16 = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(arr16).save(tmp_path / "b.png")
    out = np.asarray(load_image(tmp_path / "b.png"))
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("missing.png", None, "image file not found"),
        ("junk.png", b"\x89PNG garbage", "not an image Pillow can decode"),
        ("corrupt.dcm", b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 4, "DICOM"),
        ("corrupt.nii", b"not nifti at all", "NIfTI"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=match) as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_truncated_dicom_is_a_clear_error(tmp_path):
    data = Path(_dicom("CT_small.dcm")).read_bytes()
    bad = tmp_path / "truncated.dcm"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as err:
        load_image(bad)
    assert str(bad) in str(err.value)


def test_ybr_dicom_is_converted_to_rgb_once():
    # pydicom gives YBR_FULL(_422) pixel data as RGB already; converting again gave false colours.
    rgb = np.asarray(load_image(_dicom("SC_rgb_dcmtk_+eb+cr.dcm"))).astype(int)
    for name in ("SC_rgb_jpeg_dcmtk.dcm", "SC_ybr_full_422_uncompressed.dcm"):
        assert np.abs(np.asarray(load_image(_dicom(name))).astype(int) - rgb).mean() < 5, name


def test_multiframe_dicom_decodes_only_the_frame_asked():
    import pydicom

    path = _dicom("SC_rgb_rle_2frame.dcm")
    frames = pydicom.dcmread(path).pixel_array
    for i in (0, 1):
        assert np.array_equal(np.asarray(load_image(path, frame=i)), frames[i])
    with pytest.raises(ImageLoadError, match="frame 2 out of range: the file has 2 frames"):
        load_image(path, frame=2)


def test_deflated_dicom_decodes():
    import pydicom

    path = _dicom("image_dfl.dcm")
    assert load_image(path).size == (pydicom.dcmread(path).Columns, pydicom.dcmread(path).Rows)


def test_image_size_reads_only_headers_and_agrees_with_load_image():
    for path in (
        _dicom("CT_small.dcm"),
        _dicom("SC_rgb_rle_2frame.dcm"),
        _dicom("image_dfl.dcm"),
        NIB_DATA / "anatomical.nii",
        NIB_DATA / "example4d.nii.gz",
    ):
        assert image_size(path) == load_image(path).size, path
