"""The input contract of arrays (issue 8: no silent wrong answers): float
images in [0, 1], integer dtypes with hints that keep the right scale, CHW vs
HWC never guessed, BGR arrays from OpenCV in and out. Expected values come
from OpenCV, PIL and NumPy, never from fxcam's own output."""
import cv2
import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.fixture
def color_png(tmp_path, rng):
    """An 8-bit RGB PNG written by PIL, and its pixels (RGB)."""
    rgb = rng.integers(0, 256, (21, 17, 3), dtype=np.uint8)
    path = tmp_path / "color.png"
    Image.fromarray(rgb, "RGB").save(path)
    return path, rgb


def test_float_0_255_is_refused_with_what_to_do(fxcam, color_png):
    path, rgb = color_png
    as_float = np.float32(cv2.imread(str(path)))  # the everyday mistake: values 0..255
    heat = np.zeros(rgb.shape[:2], np.float32)
    for call in (lambda: fxcam.to_rgb8(as_float), lambda: fxcam.overlay(as_float, heat),
                 lambda: fxcam.compose_figure(as_float, heat)):
        with pytest.raises(ValueError) as err:
            call()
        text = str(err.value)
        assert f"seen {as_float.min():g}..{as_float.max():g}" in text
        assert "[0, 1]" in text and "divide by 255" in text and "65535" in text
    # What the message says to do gives what the file holds.
    assert np.array_equal(fxcam.to_rgb8(as_float / 255, channel_order="bgr"), rgb)


@pytest.mark.parametrize("bad", [1.0001, -0.001, np.nan])
def test_float_outside_unit_range_or_nan_is_refused(fxcam, bad):
    img = np.full((4, 5), 0.5, np.float32)
    img[2, 3] = bad
    with pytest.raises(ValueError, match="NaN" if bad != bad else r"seen -?[0-9.]+\.\.[0-9.]+"):
        fxcam.to_rgb8(img)
    heat = np.full((4, 5), 0.5, np.float32)
    with pytest.raises(ValueError, match="heatmap"):
        fxcam.overlay(np.zeros((4, 5), np.uint8), img, alpha=0.5)
    assert fxcam.overlay(np.zeros((4, 5), np.uint8), heat).shape == (4, 5, 3)


def test_float_in_unit_range_is_read_as_intensity(fxcam, rng):
    img = rng.random((6, 7)).astype(np.float32)
    img[0, 0], img[0, 1] = 0.0, 1.0
    expected = np.repeat(np.floor(img.astype(np.float64) * 255 + 0.5).astype(np.uint8)[..., None], 3, -1)
    assert np.abs(fxcam.to_rgb8(img).astype(int) - expected).max() <= 1


def test_resize_takes_values_of_any_range(fxcam, rng):
    raw = (rng.random((9, 11)) * 1000).astype(np.float32)  # e.g. a raw, unnormalized map
    ref = cv2.resize(raw, (22, 5), interpolation=cv2.INTER_LINEAR)
    assert np.abs(fxcam.resize(raw, (5, 22)) - ref).max() < 1e-3


def test_pil_16bit_int32_hint_keeps_the_scale(fxcam, tmp_path, rng):
    data = rng.integers(0, 65536, (12, 10), dtype=np.uint16)
    path = tmp_path / "gray16.png"
    assert cv2.imwrite(str(path), data)
    pil = np.asarray(Image.open(path).convert("I"))  # PIL's 16-bit mode 'I': int32
    assert pil.dtype == np.int32
    with pytest.raises(TypeError) as err:
        fxcam.to_rgb8(pil)
    text = str(err.value)
    assert "int32" in text and "arr.astype(np.uint16)" in text and f"{pil.min()}..{pil.max()}" in text
    assert "float32)" not in text.split(";", 1)[1]  # no advice to go to float without scaling
    # Following the hint gives exactly what fxcam reads from the file itself.
    assert np.array_equal(fxcam.to_rgb8(pil.astype(np.uint16)), fxcam.to_rgb8(path))


def test_integer_hints_depend_on_the_range(fxcam):
    small = np.arange(30, dtype=np.int64).reshape(5, 6)
    with pytest.raises(TypeError, match=r"fit 8 bits: .*np.uint8.*np.uint16"):
        fxcam.to_rgb8(small)
    with pytest.raises(TypeError, match="negatives"):
        fxcam.to_rgb8(small - 3)
    with pytest.raises(TypeError, match="exceed 16 bits"):
        fxcam.to_rgb8(small * 10000)
    with pytest.raises(TypeError, match=r"values are in \[0, 1\]: use arr.astype\(np.float32\)"):
        fxcam.to_rgb8(np.full((4, 4), 0.5))
    with pytest.raises(TypeError, match="0..255.*divide by 255"):
        fxcam.to_rgb8(np.full((4, 4), 200.0))
    with pytest.raises(TypeError, match="mask"):
        fxcam.to_rgb8(np.zeros((4, 4), bool))


def test_chw_and_hwc_layouts(fxcam, rng):
    hwc = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    assert np.array_equal(fxcam.to_rgb8(chw), hwc)  # only CxHxW fits (30 channels cannot be)
    assert np.array_equal(fxcam.to_rgb8(chw, layout="chw"), hwc)
    assert np.array_equal(fxcam.to_rgb8(hwc, layout="hwc"), hwc)
    gray_chw = hwc[None, ..., 0]
    assert np.array_equal(fxcam.to_rgb8(gray_chw), np.repeat(hwc[..., :1], 3, -1))
    with pytest.raises(ValueError, match="reads shape .* as 20 channels"):
        fxcam.to_rgb8(hwc, layout="chw")
    with pytest.raises(ValueError, match="layout must be"):
        fxcam.to_rgb8(hwc, layout="nhwc")


def test_ambiguous_shape_is_refused_never_guessed(fxcam, rng):
    """3x8x4 is a 3-row image of 4 channels or a 3-channel image 4 pixels wide."""
    arr = rng.integers(0, 256, (3, 8, 4), dtype=np.uint8)
    for call in (lambda **k: fxcam.to_rgb8(arr, **k), lambda **k: fxcam.save_image("/nonexistent/x.png", arr, **k)):
        with pytest.raises(ValueError) as err:
            call()
        assert "ambiguous" in str(err.value) and "layout='chw'" in str(err.value)
    assert np.array_equal(fxcam.to_rgb8(arr, layout="chw"), arr.transpose(1, 2, 0))
    rgba = fxcam.to_rgb8(arr, layout="hwc")  # 4 channels: alpha dropped
    assert np.array_equal(rgba, arr[..., :3])


def test_bgr_arrays_from_opencv(fxcam, color_png, rng):
    path, rgb = color_png
    bgr = cv2.imread(str(path))
    assert np.array_equal(fxcam.to_rgb8(bgr, channel_order="bgr"), rgb)
    bgra = np.dstack([bgr, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(fxcam.to_rgb8(bgra, channel_order="bgr"), rgb)
    gray = rgb[..., 0]
    assert np.array_equal(fxcam.to_rgb8(gray, channel_order="bgr"), fxcam.to_rgb8(gray))
    with pytest.raises(ValueError, match="channel_order"):
        fxcam.to_rgb8(bgr, channel_order="grb")
    with pytest.raises(ValueError, match="decoded by fxcam"):
        fxcam.to_rgb8(path, channel_order="bgr")
    out = path.parent / "bgr_saved.png"
    fxcam.save_image(out, bgr, channel_order="bgr")
    assert np.array_equal(np.asarray(Image.open(out)), rgb)


def test_use_rgb_false_gives_what_cv2_imwrite_expects(fxcam, color_png, rng, tmp_path):
    path, rgb = color_png
    heat = rng.random(rgb.shape[:2]).astype(np.float32)
    overlay_rgb = fxcam.overlay(rgb, heat, alpha=0.5, colormap="hot")
    Image.fromarray(overlay_rgb).save(tmp_path / "pil.png")
    bgr_in = cv2.imread(str(path))
    overlay_bgr = fxcam.overlay(bgr_in, heat, alpha=0.5, colormap="hot", use_rgb=False)
    assert cv2.imwrite(str(tmp_path / "cv2.png"), overlay_bgr)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cv2.png")), np.asarray(Image.open(tmp_path / "pil.png")))
    # An explicit channel_order wins over the one implied by use_rgb; files are RGB whatever use_rgb.
    assert np.array_equal(fxcam.overlay(rgb, heat, alpha=0.5, colormap="hot", use_rgb=False, channel_order="rgb"),
                          overlay_bgr)
    assert np.array_equal(fxcam.overlay(path, heat, alpha=0.5, colormap="hot", use_rgb=False), overlay_bgr)
    fig = fxcam.compose_figure(rgb, heat, timestamp="t")
    fig_bgr = fxcam.compose_figure(bgr_in, heat, timestamp="t", use_rgb=False)
    assert np.array_equal(fig_bgr, fig[..., ::-1])
    with pytest.raises(TypeError, match="use_rgb"):
        fxcam.overlay(rgb, heat, use_rgb="yes")
