"""Image input (PNG, JPEG, DICOM), PNG output and the pure-C image steps (no model needed):
resize, colormaps, overlays and figures."""
import ctypes
import functools

from ._arrays import (Output, OwnedImage, as_input, check_channel_order, fspath_bytes, is_path, load_owned,
                      rgb_to_bgr, wrap_owned)
from ._lib import FigureOptions, LoadOptions, OverlayOptions, PIXEL_U8, SaveOptions, check, lib

from . import _lib

# A library older than fx_colormap_at() is asked for the names of ids below
# this bound instead (a bound on the search, not a count of maps).
_COLORMAP_ID_SEARCH = 4096


def _uint(value, name, low=0, high=0xFFFFFFFF):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


def _fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], not {type(value).__name__}")
    return float(value)  # the library checks the range and says what is valid


def colormap_id(colormap):
    """FX_COLORMAP_* value of a name ("jet", "viridis", ...) or an int: the
    ints are OpenCV's numbers, so cv2.COLORMAP_HOT gives hot."""
    if isinstance(colormap, str):
        value = ctypes.c_int32()
        check(lib.fx_colormap_from_name(colormap.encode("utf-8"), ctypes.byref(value)))
        return value.value
    if isinstance(colormap, bool) or not isinstance(colormap, int):
        raise TypeError(f"colormap must be a name such as 'jet' or an int, not {type(colormap).__name__}")
    if not -2 ** 31 <= colormap < 2 ** 31:
        raise ValueError(f"colormap {colormap} is unknown; valid: {', '.join(colormap_names())}")
    return colormap  # the library checks it and lists the valid ones


@functools.lru_cache(maxsize=None)
def _colormap_ids():
    """Every colormap id, ascending. Ids are OpenCV's COLORMAP_* numbers
    (cv2.COLORMAP_JET == 2, ...) plus fxcam's own maps outside OpenCV's range,
    so they are not contiguous: the library lists them."""
    if _lib.has("fx_colormap_at"):
        return tuple(lib.fx_colormap_at(k) for k in range(lib.fx_colormap_count()))
    return tuple(i for i in range(_COLORMAP_ID_SEARCH) if lib.fx_colormap_name(i))


def colormaps():
    """{name: id} of every colormap the library has, in id order (ids equal
    OpenCV's cv2.COLORMAP_* numbers where OpenCV has the map)."""
    return {lib.fx_colormap_name(i).decode(): i for i in _colormap_ids()}


def colormap_names():
    """Names of the colormaps, in id order."""
    return list(colormaps())


def colormap_table(colormap="jet"):
    """The 256 RGB entries of a colormap, as a list of (r, g, b) tuples."""
    table = (ctypes.c_uint8 * 768)()
    check(lib.fx_colormap_table(colormap_id(colormap), table))
    return [tuple(table[3 * i:3 * i + 3]) for i in range(256)]


def _load_options(max_width, max_height, max_pixels, frame):
    opts = LoadOptions()
    lib.fx_load_options_init(ctypes.byref(opts))  # sets struct_size to the loaded library's size
    if max_width is not None:
        opts.max_width = _uint(max_width, "max_width", 1)
    if max_height is not None:
        opts.max_height = _uint(max_height, "max_height", 1)
    if max_pixels is not None:
        opts.max_pixels = _uint(max_pixels, "max_pixels", 1, 2 ** 64 - 1)
    if frame is not None:
        opts.frame = _uint(frame, "frame")
        if opts.frame != 0 and opts.struct_size <= _lib.LOAD_OPTIONS_V1_SIZE:
            raise _lib.FxError(f"frame={frame}: the loaded libfxcam ({_lib.path}) predates DICOM frames "
                               "(fx_load_options.frame, 0.2); upgrade it")
    return opts


def load_image(path, max_width=None, max_height=None, max_pixels=None, frame=None):
    """Reads a PNG, JPEG or DICOM file, recognised by its first bytes (never
    by its name): uint8 for 8-bit (and lower) PNGs, JPEGs and color DICOM;
    uint16 for 16-bit PNGs and gray DICOM (its VOI output mapped onto
    0..65535); HxW for gray, HxWxC (C = 2, 3, 4) otherwise. frame: the
    0-based frame of a multi-frame DICOM file (default 0; PNG and JPEG hold
    frame 0 only). The array uses the library's buffer directly (no copy)."""
    opts = _load_options(max_width, max_height, max_pixels, frame)
    return wrap_owned(load_owned(path, ctypes.byref(opts)))


def decode_image(data, max_width=None, max_height=None, max_pixels=None, frame=None):
    """Same as load_image() from the bytes of a PNG, JPEG or DICOM file held
    in memory."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    raw = bytes(data)
    opts = _load_options(max_width, max_height, max_pixels, frame)
    owned = OwnedImage()
    check(lib.fx_image_load_memory(raw, len(raw), ctypes.byref(opts), ctypes.byref(owned.image)))
    return wrap_owned(owned)


def decode_png(data, frame=None):
    """Former name of decode_image(), kept as an alias: it reads JPEG and
    DICOM bytes too."""
    return decode_image(data, frame=frame)


def save_image(path, image, compression_level=None, channel_order="rgb", layout=None):
    """Writes a uint8 or uint16 image (1..4 channels) as PNG, atomically.
    float32 images are refused (color them with apply_colormap or convert).
    channel_order="bgr" for arrays in OpenCV's order (written as RGB)."""
    target = fspath_bytes(path, "save path")
    src = as_input(image, layout=layout, channel_order=channel_order)
    opts = SaveOptions()
    lib.fx_save_options_init(ctypes.byref(opts))
    if compression_level is not None:
        opts.compression_level = _uint(compression_level, "compression_level", 0, 9)
    check(lib.fx_image_save(target, ctypes.byref(src.image), ctypes.byref(opts)))


def to_rgb8(image, layout=None, channel_order="rgb"):
    """8-bit RGB version of any image (16-bit windowed min..max; float in [0, 1])."""
    src = as_input(image, layout=layout, channel_order=channel_order)
    out = Output(src.image.height, src.image.width, 3, PIXEL_U8)
    check(lib.fx_image_to_rgb8(ctypes.byref(src.image), ctypes.byref(out.image)))
    return out.result()


def resize(image, size=None, *legacy, height=None, width=None, layout=None):
    """Bilinear resize (OpenCV INTER_LINEAR / torch bilinear, half-pixel centres)
    to size=(height, width), the order of the result's shape and of every
    size in fxcam's Python API; or height=, width= by keyword. Values are not
    interpreted: float data of any range is resized as it is. The result is
    HxW or HxWxC. (fxcam 0.1's resize(image, width, height) is refused with
    a TypeError rather than read in the new order.)"""
    if legacy:
        raise TypeError("resize(image, width, height) is now resize(image, (height, width)) or "
                        "resize(image, height=..., width=...): sizes are (height, width) in fxcam's Python API")
    if size is not None:
        if height is not None or width is not None:
            raise TypeError("give size=(height, width) or height= and width=, not both")
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
            raise TypeError(f"size must be (height, width), got {size!r}")
        height, width = size
    if height is None or width is None:
        raise TypeError("resize needs size=(height, width) (or height= and width=)")
    src = as_input(image, layout=layout, unit_range=False)
    width, height = _uint(width, "width", 1), _uint(height, "height", 1)
    out = Output(height, width, src.image.channels, src.image.pixel_type)
    check(lib.fx_resize_bilinear(ctypes.byref(src.image), ctypes.byref(out.image)))
    return out.result()


def _check_use_rgb(use_rgb):
    if not isinstance(use_rgb, bool):
        raise TypeError(f"use_rgb must be True (RGB arrays) or False (BGR, for cv2.imwrite), not {use_rgb!r}")


def image_input(image, use_rgb=True, channel_order=None, layout=None, name="image"):
    """The image to draw on, converted once. An array's channel order is
    channel_order when given, else the order asked for the output (use_rgb,
    as pytorch-grad-cam's show_cam_on_image: one order in and out). Files
    are decoded by fxcam in RGB whatever use_rgb says."""
    _check_use_rgb(use_rgb)
    if channel_order is None:
        channel_order = "rgb" if use_rgb or is_path(image) else "bgr"
    return as_input(image, name, layout=layout, channel_order=check_channel_order(channel_order))


def _in_order(result, use_rgb):
    return result if use_rgb else rgb_to_bgr(result)


def apply_colormap(heatmap, colormap="jet", use_rgb=True):
    """Colors a 1-channel map (uint8, or float32 in [0, 1]): HxWx3 uint8,
    RGB (use_rgb=False: BGR, as cv2.applyColorMap)."""
    _check_use_rgb(use_rgb)
    src = as_input(heatmap, "heatmap")
    out = Output(src.image.height, src.image.width, 3, PIXEL_U8)
    check(lib.fx_colormap_apply(ctypes.byref(src.image), colormap_id(colormap), ctypes.byref(out.image)))
    return _in_order(out.result(), use_rgb)


def overlay(image, heatmap, alpha=0.4, colormap="jet", threshold=0.0, use_rgb=True, channel_order=None,
            layout=None):
    """Blends the colored heatmap (float32 HxW in [0, 1]) over the image:
    HxWx3 uint8. use_rgb=False returns BGR (for cv2.imwrite / cv2.imshow);
    channel_order ("rgb"/"bgr") is the image's, by default the same as the
    output's, as in pytorch-grad-cam's show_cam_on_image."""
    img = image_input(image, use_rgb, channel_order, layout)
    heat = as_input(heatmap, "heatmap")
    opts = OverlayOptions()
    lib.fx_overlay_options_init(ctypes.byref(opts))
    opts.alpha = _fraction(alpha, "alpha")
    opts.colormap = colormap_id(colormap)
    opts.threshold = _fraction(threshold, "threshold")
    out = Output(img.image.height, img.image.width, 3, PIXEL_U8)
    check(lib.fx_overlay(ctypes.byref(img.image), ctypes.byref(heat.image), ctypes.byref(opts),
                         ctypes.byref(out.image)))
    return _in_order(out.result(), use_rgb)


def _text(value, name):
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    return value.encode("utf-8")


def figure_options(label=None, confidence=None, method=None, layer=None, timestamp=None, alpha=0.4,
                   colormap="jet", threshold=0.0, panel_height=0, source=None):
    opts = FigureOptions()
    lib.fx_figure_options_init(ctypes.byref(opts))
    opts.label = _text(label, "label")
    opts.confidence = -1.0 if confidence is None else _fraction(confidence, "confidence")
    opts.method = _text(method, "method")
    opts.layer = _text(layer, "layer")
    opts.timestamp = _text(timestamp, "timestamp")
    opts.alpha = _fraction(alpha, "alpha")
    opts.colormap = colormap_id(colormap)
    opts.threshold = _fraction(threshold, "threshold")
    opts.panel_height = _uint(panel_height, "panel_height")
    opts.source = _text(source, "source")
    return opts


def compose_figure(image, heatmap, use_rgb=True, channel_order=None, layout=None, **options):
    """original | heatmap | overlay with a caption band and a color bar
    (options: label, confidence, method, layer, source, timestamp, alpha,
    colormap, threshold, panel_height). Returns HxWx3 uint8, RGB (use_rgb=False: BGR;
    channel_order as in overlay())."""
    img = image_input(image, use_rgb, channel_order, layout)
    heat = as_input(heatmap, "heatmap")
    opts = figure_options(**options)
    owned = OwnedImage()
    check(lib.fx_figure_compose(ctypes.byref(img.image), ctypes.byref(heat.image), ctypes.byref(opts),
                                ctypes.byref(owned.image)))
    return _in_order(wrap_owned(owned), use_rgb)


def compare_figure(image, map_a, map_b, name_a=None, name_b=None, use_rgb=True, channel_order=None, layout=None,
                   **options):
    """original | map_a | map_b | |map_a - map_b|, same options as compose_figure."""
    img = image_input(image, use_rgb, channel_order, layout)
    a = as_input(map_a, "map_a")
    b = as_input(map_b, "map_b")
    opts = figure_options(**options)
    owned = OwnedImage()
    check(lib.fx_figure_compare(ctypes.byref(img.image), ctypes.byref(a.image), _text(name_a, "name_a"),
                                ctypes.byref(b.image), _text(name_b, "name_b"), ctypes.byref(opts),
                                ctypes.byref(owned.image)))
    return _in_order(wrap_owned(owned), use_rgb)
