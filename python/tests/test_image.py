"""PNG input/output, array plumbing (zero-copy, layouts, dtypes) and the pure-C
image steps through the bindings, against OpenCV, PIL and hand computations."""
import ctypes

import cv2
import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_load_8bit_matches_pil(fxcam, tmp_path, rng):
    for mode, shape in (("L", (23, 31)), ("RGB", (23, 31, 3)), ("RGBA", (23, 31, 4))):
        data = rng.integers(0, 256, shape, dtype=np.uint8)
        path = tmp_path / f"{mode}.png"
        Image.fromarray(data, mode).save(path)
        loaded = fxcam.load_image(path)
        assert loaded.dtype == np.uint8 and loaded.shape == shape
        assert np.array_equal(loaded, np.asarray(Image.open(path)))


def test_load_16bit_keeps_uint16_without_copy(fxcam, tmp_path, rng):
    data = rng.integers(0, 65536, (19, 27), dtype=np.uint16)
    path = str(tmp_path / "gray16.png")
    assert cv2.imwrite(path, data)
    loaded = fxcam.load_image(path)
    assert loaded.dtype == np.uint16 and np.array_equal(loaded, data)
    assert not loaded.flags.owndata  # a view over the library's buffer
    rgb = rng.integers(0, 65536, (7, 9, 3), dtype=np.uint16)
    assert cv2.imwrite(path, rgb[..., ::-1])
    assert np.array_equal(fxcam.load_image(path), rgb)


def test_load_limits_and_errors(fxcam, tmp_path):
    path = tmp_path / "a.png"
    fxcam.save_image(path, np.zeros((10, 20), np.uint8))
    with pytest.raises(fxcam.LimitError) as err:
        fxcam.load_image(path, max_width=19)
    assert "19" in err.value.message and err.value.status == -5
    with pytest.raises(fxcam.FileError) as err:
        fxcam.load_image(tmp_path / "missing.png")
    assert isinstance(err.value, OSError) and "missing.png" in err.value.message
    assert "FX_ERR_IO" in str(err.value)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"GIF89a not a png")
    with pytest.raises(fxcam.FormatError, match="bad.png"):
        fxcam.load_image(bad)
    with pytest.raises(TypeError, match="image path"):
        fxcam.load_image(3)
    with pytest.raises(ValueError, match="max_width"):
        fxcam.load_image(path, max_width=0)
    png = path.read_bytes()
    assert np.array_equal(fxcam.decode_png(png), np.zeros((10, 20), np.uint8))
    with pytest.raises(fxcam.FormatError):
        fxcam.decode_png(png[:30])
    with pytest.raises(TypeError):
        fxcam.decode_png("text")


def test_save_roundtrip_and_errors(fxcam, tmp_path, rng):
    for data in (rng.integers(0, 256, (5, 6, 3), dtype=np.uint8), rng.integers(0, 65536, (5, 6), dtype=np.uint16),
                 rng.integers(0, 256, (5, 6, 2), dtype=np.uint8)):
        path = str(tmp_path / "out.png")
        fxcam.save_image(path, data, compression_level=9)
        back = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if data.ndim == 3 and data.shape[2] == 3:
            back = back[..., ::-1]
        if data.ndim == 3 and data.shape[2] == 2:
            back = np.asarray(Image.open(path))
        assert np.array_equal(back, data)
    with pytest.raises(fxcam.UnsupportedError, match="float"):
        fxcam.save_image(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    with pytest.raises(fxcam.FileError):
        fxcam.save_image(tmp_path / "no" / "dir" / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="compression_level"):
        fxcam.save_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8), compression_level=10)
    with pytest.raises(TypeError, match="save path"):
        fxcam.save_image(None, np.zeros((4, 4), np.uint8))


def test_input_layouts(fxcam, rng):
    from fxcam._arrays import as_input
    base = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    src = as_input(base)
    assert src.image.data == base.ctypes.data and src.image.stride == 90  # zero-copy
    rows = base[::2]  # every other row: still zero-copy, with a doubled stride
    src = as_input(rows)
    assert src.image.data == rows.ctypes.data and src.image.stride == 180 and src.image.height == 10
    cols = base[:, ::2]  # pixels not adjacent: copied once
    assert as_input(cols).image.data != cols.ctypes.data
    assert np.array_equal(fxcam.to_rgb8(cols), np.ascontiguousarray(cols))
    assert np.array_equal(fxcam.to_rgb8(rows), rows)
    fortran = np.asfortranarray(base[..., 0])
    assert np.array_equal(fxcam.to_rgb8(fortran)[..., 1], base[..., 0])
    big = base.astype(">u2") * 257
    assert np.array_equal(fxcam.resize(big, (20, 30)), base.astype(np.uint16) * 257)
    single = np.zeros((20, 30, 1), np.uint8)
    assert as_input(single).image.channels == 1
    readonly = base.copy()
    readonly.flags.writeable = False
    assert np.array_equal(fxcam.to_rgb8(readonly), base)


@pytest.mark.parametrize("bad,exc,text", [
    (np.zeros((8, 8), np.float64), TypeError, "float64"),
    (np.zeros((8, 8), np.int32), TypeError, "int32"),
    (np.zeros((8, 8), bool), TypeError, "bool"),
    (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "4 dimensions"),
    (np.zeros((8,), np.uint8), ValueError, "1 dimensions"),
    (np.zeros((8, 8, 5), np.uint8), ValueError, "1 to 4 channels"),
    (np.zeros((0, 8), np.uint8), ValueError, "empty"),
    (object(), TypeError, "expected a path"),
    (42, TypeError, "expected a path"),
])
def test_bad_arrays(fxcam, bad, exc, text):
    with pytest.raises(exc, match=text):
        fxcam.to_rgb8(bad)


def test_resize_matches_opencv(fxcam, rng):
    for dtype in (np.uint8, np.float32):
        src = rng.random((17, 23, 3)).astype(np.float32)
        if dtype == np.uint8:
            src = (src * 255).astype(np.uint8)
        out = fxcam.resize(src, (9, 41))
        ref = cv2.resize(src, (41, 9), interpolation=cv2.INTER_LINEAR)
        assert out.shape == (9, 41, 3) and out.dtype == dtype
        tol = 1 if dtype == np.uint8 else 1e-5
        assert np.abs(out.astype(np.float64) - ref).max() <= tol
    with pytest.raises(ValueError, match="width"):
        fxcam.resize(src, (5, 0))


def test_colormaps_are_opencvs_numbers_and_tables(fxcam):
    """Every map the library lists: OpenCV's maps under OpenCV's number, byte
    for byte as cv2.applyColorMap (in RGB); fxcam's own 'gray' the identity."""
    ramp = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    maps = fxcam.colormaps()
    opencv = {name[len("COLORMAP_"):].lower(): getattr(cv2, name) for name in dir(cv2)
              if name.startswith("COLORMAP_")}
    assert set(opencv) <= set(maps), "OpenCV maps missing from the library"
    assert list(maps.values()) == sorted(maps.values()) and fxcam.colormap_names() == list(maps)
    for name, number in maps.items():
        table = np.array(fxcam.colormap_table(name), np.uint8)[None]
        if name in opencv:
            assert number == opencv[name], name
            ref = cv2.applyColorMap(ramp, number)[..., ::-1]
        else:
            assert name == "gray" and number not in opencv.values()
            ref = np.repeat(ramp[..., None], 3, -1)
        assert np.array_equal(fxcam.apply_colormap(ramp, number), ref), name
        assert np.array_equal(fxcam.apply_colormap(ramp, name.upper()), ref), name
        assert np.array_equal(table, ref[:1]), name
    assert np.array_equal(fxcam.apply_colormap(ramp, cv2.COLORMAP_JET, use_rgb=False),
                          cv2.applyColorMap(ramp, cv2.COLORMAP_JET))
    with pytest.raises(fxcam.InvalidArgumentError) as err:
        fxcam.apply_colormap(ramp, "rainbowz")
    assert "rainbowz" in err.value.message and "viridis" in err.value.message
    with pytest.raises(fxcam.InvalidArgumentError):
        fxcam.apply_colormap(ramp, 99)
    with pytest.raises(TypeError, match="colormap"):
        fxcam.apply_colormap(ramp, 1.0)


def test_overlay_with_opencv_colormap_numbers(fxcam, rng):
    """overlay(colormap=cv2.COLORMAP_HOT) is hot, cv2.COLORMAP_JET jet: at
    alpha 1 the overlay is the colored map, = cv2.applyColorMap of the map
    quantized as fxcam documents (round(v * 255))."""
    heat = rng.random((9, 13)).astype(np.float32)
    img = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    index = np.floor(heat.astype(np.float64) * 255 + 0.5).astype(np.uint8)
    for number in (cv2.COLORMAP_HOT, cv2.COLORMAP_JET, cv2.COLORMAP_BONE, cv2.COLORMAP_TURBO):
        ref_bgr = cv2.applyColorMap(index, number)
        out = fxcam.overlay(img, heat, alpha=1.0, colormap=number)
        assert np.array_equal(out, ref_bgr[..., ::-1]), number
        assert np.array_equal(fxcam.overlay(img, heat, alpha=1.0, colormap=number, use_rgb=False), ref_bgr)


def test_overlay_hand_computed(fxcam, rng):
    img = rng.integers(0, 256, (12, 14), dtype=np.uint8)
    heat = rng.random((12, 14)).astype(np.float32)
    out = fxcam.overlay(img, heat, alpha=0.3, colormap="hot", threshold=0.5)
    lut = np.array(fxcam.colormap_table("hot"), np.float64)
    colored = lut[(heat * 255 + 0.5).astype(np.uint8)]
    gray = np.repeat(img[..., None], 3, -1).astype(np.float64)
    blend = np.floor(0.7 * gray + 0.3 * colored + 0.5)
    expected = np.where((heat >= 0.5)[..., None], blend, gray)
    assert np.abs(out.astype(np.int32) - expected).max() <= 1
    with pytest.raises(fxcam.InvalidArgumentError) as err:
        fxcam.overlay(img, heat, alpha=1.5)
    assert "alpha" in err.value.message
    with pytest.raises(fxcam.InvalidArgumentError, match="12"):
        fxcam.overlay(img, heat[:10])
    with pytest.raises(TypeError, match="float64"):
        fxcam.overlay(img, heat.astype(np.float64))
    with pytest.raises(TypeError, match="alpha"):
        fxcam.overlay(img, heat, alpha="0.4")


def test_figures(fxcam, rng):
    img = rng.integers(0, 65536, (40, 50), dtype=np.uint16)
    heat = rng.random((40, 50)).astype(np.float32)
    fig = fxcam.compose_figure(img, heat, label="fracture", confidence=0.9, method="Grad-CAM", layer="features",
                               timestamp="now")
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[1] >= 150 and fig.shape[0] > 40
    assert np.array_equal(fig, fxcam.compose_figure(img, heat, label="fracture", confidence=0.9,
                                                    method="Grad-CAM", layer="features", timestamp="now"))
    cmp = fxcam.compare_figure(img, heat, 1 - heat, "A", "B", timestamp="now")
    assert cmp.shape[1] > fig.shape[1]
    with pytest.raises(fxcam.InvalidArgumentError, match="confidence"):
        fxcam.compose_figure(img, heat, confidence=1.5)
    with pytest.raises(TypeError, match="label"):
        fxcam.compose_figure(img, heat, label=3)


def test_errors_and_versions(fxcam):
    from fxcam import _lib
    assert fxcam.library_version() == "0.1.0"
    assert _lib.version == (0, 1, 0)
    err = fxcam.errors.error_for(-4, "FX_ERR_FORMAT: x", "bad file")
    assert isinstance(err, fxcam.FormatError) and isinstance(err, ValueError)
    assert err.status == -4 and err.message == "bad file" and str(err) == "bad file [FX_ERR_FORMAT: x]"
    assert type(fxcam.errors.error_for(-99, "unknown status", "?")) is fxcam.FxError
    with pytest.raises(fxcam.InvalidArgumentError) as e:
        _lib.check(_lib.lib.fx_image_alloc(None, 1, 1, 1, 1))
    assert e.value.message == _lib.lib.fx_last_error().decode()
    registry = [_lib.lib.fx_cam_method_at(i).contents.name.decode() for i in range(_lib.lib.fx_cam_method_count())]
    assert fxcam.method_names() == registry
    img = _lib.FxImage()
    _lib.check(_lib.lib.fx_image_alloc(ctypes.byref(img), 3, 2, 1, _lib.PIXEL_F32))
    assert img.stride == 12 and _lib.lib.fx_pixel_size(_lib.PIXEL_F32) == 4
    _lib.lib.fx_image_free(ctypes.byref(img))
    assert not img.data


def _dx_dicom(path, frames, **extra):
    """An uncompressed 12-bit MONOCHROME2 DX file written by pydicom; frames
    is a [n, rows, cols] uint16 array (NumberOfFrames set when n > 1)."""
    import pydicom  # python3-pydicom (tools/setup.sh); a missing one fails, never skips
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = frames.shape[1:]
    if frames.shape[0] > 1:
        ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    assert pydicom.dcmread(path).pixel_array.shape[-2:] == frames.shape[1:]


def test_load_dicom_frame(fxcam, tmp_path, rng):
    """frame= picks one frame of a multi-frame DICOM: frame k equals the same
    pixels written as a single-frame file (the pixel mapping itself is
    checked against pydicom in tests/unit/test_dicom.c)."""
    frames = rng.integers(0, 4096, (3, 12, 17), dtype=np.uint16)
    window = {"WindowCenter": "2048", "WindowWidth": "4096"}  # one mapping for every frame
    multi = tmp_path / "multi.dcm"
    _dx_dicom(multi, frames, **window)
    for k in range(3):
        single = tmp_path / f"frame{k}.dcm"
        _dx_dicom(single, frames[k:k + 1], **window)
        expected = fxcam.load_image(single)
        assert expected.dtype == np.uint16 and expected.shape == (12, 17)
        assert np.array_equal(fxcam.load_image(multi, frame=k), expected)
        assert np.array_equal(fxcam.decode_image(multi.read_bytes(), frame=k), expected)
    assert not np.array_equal(fxcam.load_image(multi, frame=1), fxcam.load_image(multi))
    with pytest.raises(fxcam.InvalidArgumentError, match="frame"):
        fxcam.load_image(multi, frame=3)
    png = tmp_path / "one.png"
    fxcam.save_image(png, np.zeros((4, 5), np.uint8))
    with pytest.raises(fxcam.InvalidArgumentError, match="frame"):
        fxcam.load_image(png, frame=1)
    with pytest.raises(ValueError, match="frame"):
        fxcam.load_image(png, frame=-1)


def test_load_jpeg_by_content(fxcam, tmp_path, rng):
    """A JPEG written by PIL is read whatever its name; decode_png (the old
    name) reads it too."""
    data = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"  # a JPEG under a PNG name
    Image.fromarray(data).save(path, format="JPEG", quality=95)
    reference = np.asarray(Image.open(path).convert("RGB")).astype(int)
    loaded = fxcam.load_image(path)
    assert loaded.shape == (16, 24, 3) and np.abs(loaded.astype(int) - reference).max() <= 1
    assert np.array_equal(fxcam.decode_png(path.read_bytes()), loaded)
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"hello")
    with pytest.raises(fxcam.FormatError, match="not a PNG, JPEG or DICOM file"):
        fxcam.load_image(bad)
