"""Images between Python and fx_image, with or without NumPy.

With NumPy, images are arrays: uint8, uint16 or float32, HxW (one channel) or
HxWxC (C = 1..4). An array whose rows are each contiguous is handed to the
library as is (no copy; the row stride may be padded); any other layout is
copied once. Results the library allocates are returned as arrays over that
memory, released when the last array using it goes away.

Without NumPy, images are nested lists (rows of pixels; a pixel is a number
for one channel, a list of numbers for several), or any buffer with a shape,
e.g. memoryview(data).cast("B", (height, width)) or .cast("H", (h, w, 3)).
Results are nested lists. Nested lists of ints are 8-bit unless a value
exceeds 255 (then 16-bit); any float makes them float32.
"""
import array
import ctypes
import os

from . import _lib
from ._lib import FxImage, ImageInfo, LoadOptions, PIXEL_F32, PIXEL_U16, PIXEL_U8, check, lib

try:
    import numpy as np
except ImportError:  # NumPy is optional
    np = None

HAVE_NUMPY = np is not None

_ITEMSIZE = {PIXEL_U8: 1, PIXEL_U16: 2, PIXEL_F32: 4}
_ARRAY_CODE = {PIXEL_U8: "B", PIXEL_U16: "H", PIXEL_F32: "f"}
_BUFFER_FORMATS = {"B": PIXEL_U8, "<B": PIXEL_U8, "=B": PIXEL_U8, "H": PIXEL_U16, "=H": PIXEL_U16,
                   "f": PIXEL_F32, "=f": PIXEL_F32}
if HAVE_NUMPY:
    _NP_TYPES = {np.dtype(np.uint8): PIXEL_U8, np.dtype(np.uint16): PIXEL_U16, np.dtype(np.float32): PIXEL_F32}
    _NP_DTYPE = {v: k for k, v in _NP_TYPES.items()}


def is_path(obj):
    return isinstance(obj, (str, bytes, os.PathLike))


def fspath_bytes(path, what="path"):
    if not is_path(path):
        raise TypeError(f"{what} must be a str, bytes or os.PathLike, not {type(path).__name__}")
    return os.fsencode(path)


class OwnedImage:
    """An fx_image whose pixels the library allocated; freed with fx_image_free."""

    def __init__(self):
        self.image = FxImage()
        self._free = lib.fx_image_free  # kept: module globals may be gone at interpreter exit

    def __del__(self):
        if self.image.data:
            self._free(ctypes.byref(self.image))


class Input:
    """An fx_image describing caller data, and the objects that keep it alive.
    info: the loader's fx_image_info for a file (bits stored, e.g. 12 from a
    PNG sBIT chunk), None for arrays (their container range: /255, /65535)."""

    def __init__(self, image, keep, info=None):
        self.image = image
        self.keep = keep
        self.info = info

    @property
    def shape(self):
        img = self.image
        return (img.height, img.width) if img.channels == 1 else (img.height, img.width, img.channels)


def _describe(data, stride, width, height, channels, pixel_type):
    return FxImage(data=data, stride=stride, width=width, height=height, channels=channels,
                   pixel_type=pixel_type)


LAYOUTS = ("hwc", "chw")
CHANNEL_ORDERS = ("rgb", "bgr")


def check_layout(layout):
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be None (decide from the shape), 'hwc' or 'chw', not {layout!r}")
    return layout


def check_channel_order(order):
    if order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be 'rgb' or 'bgr' (arrays from cv2.imread), not {order!r}")
    return order


def _shape_channels(shape, name, layout=None):
    """(height, width, channels, layout) of an HxW, HxWxC or CxHxW shape.
    A 3-D shape is read as HWC when only its last dimension can be a channel
    count (1..4), as CHW when only its first can; when both can (3x8x4, a
    4-pixel-wide CHW image or an 3-row HWC one) it is refused unless `layout`
    says which: a guess would silently scramble the image."""
    shape = tuple(shape)
    if len(shape) == 2:
        return shape[0], shape[1], 1, "hwc"
    if len(shape) != 3:
        raise ValueError(f"{name}: an image must be HxW, HxWxC or CxHxW (C = 1..4), got {len(shape)} dimensions "
                         f"(shape {shape})")
    last_ok, first_ok = 1 <= shape[2] <= 4, 1 <= shape[0] <= 4
    if layout is None:
        if last_ok and first_ok:
            raise ValueError(f"{name}: shape {shape} is ambiguous: it can be HxWxC ({shape[0]}x{shape[1]}, "
                             f"{shape[2]} channels) or CxHxW ({shape[1]}x{shape[2]}, {shape[0]} channels); "
                             f"pass layout='hwc' or layout='chw'")
        layout = "hwc" if last_ok else "chw" if first_ok else None
        if layout is None:
            raise ValueError(f"{name}: an HxWxC or CxHxW image needs 1 to 4 channels, got shape {shape}")
    channels = shape[2] if layout == "hwc" else shape[0]
    if not 1 <= channels <= 4:
        raise ValueError(f"{name}: layout={layout!r} reads shape {shape} as {channels} channels; "
                         f"an image has 1 to 4")
    if layout == "hwc":
        return shape[0], shape[1], channels, layout
    return shape[1], shape[2], channels, layout


_FLOAT_ADVICE = ("fxcam reads float images as intensities in [0, 1]. Data in 0..255 (e.g. "
                 "np.float32(cv2.imread(path))): divide by 255, or pass the uint8 array itself; data in 0..65535: "
                 "divide by 65535, or pass it as uint16; data of another range: scale it to [0, 1] yourself")


def check_unit_range(low, high, name, dtype="float32"):
    """Float images must hold intensities in [0, 1] (docs: python/README.md)."""
    if low != low or high != high:  # NaN
        raise ValueError(f"{name}: the {dtype} image contains NaN; fxcam needs finite values in [0, 1]")
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name}: {dtype} values must be in [0, 1]; seen {low:g}..{high:g}. {_FLOAT_ADVICE}")


def _integer_hint(low, high):
    """Advice for an integer array of an unsupported dtype, from its range,
    that never leads to a wrong scale."""
    if low < 0:
        return (f"its values ({low}..{high}) include negatives, which are no pixel intensities fxcam can read; "
                f"scale them to float32 in [0, 1] yourself")
    if high <= 255:
        return (f"its values ({low}..{high}) fit 8 bits: if it holds an 8-bit image use arr.astype(np.uint8); "
                f"if a 16-bit one (0..65535 full scale, e.g. PIL mode 'I'), arr.astype(np.uint16)")
    if high <= 65535:
        return (f"its values ({low}..{high}) fit 16 bits: if it holds a 16-bit image (0..65535 full scale, e.g. "
                f"PIL mode 'I' of a 16-bit PNG) use arr.astype(np.uint16); if it has another full scale "
                f"(e.g. 12-bit, 0..4095) divide by that and pass float32")
    return (f"its values ({low}..{high}) exceed 16 bits: divide by the full-scale value of its format and pass "
            f"float32 in [0, 1]")


def _float_range(arr):
    """(min, max) of a float array; (nan, nan) when it holds a NaN."""
    low, high = float(arr.min()), float(arr.max())
    return (low, high) if low == low and high == high else (float("nan"), float("nan"))


def _unsupported_dtype(arr, name):
    kind = arr.dtype.kind
    base = f"{name}: dtype {arr.dtype} is not supported; fxcam takes uint8 (0..255), uint16 (0..65535) or float32 " \
           f"(0..1)"
    if arr.size and kind in "iu":
        hint = _integer_hint(int(arr.min()), int(arr.max()))
    elif arr.size and kind == "f":
        low, high = _float_range(arr)
        if 0.0 <= low and high <= 1.0:
            hint = "its values are in [0, 1]: use arr.astype(np.float32)"
        else:
            hint = f"its values are {low:g}..{high:g}, not in [0, 1]. {_FLOAT_ADVICE}, then use float32"
    elif kind == "b":
        hint = "for a mask use arr.astype(np.uint8) * 255"
    else:
        hint = ""
    return TypeError(f"{base}; {hint}" if hint else base)


def _check_size(height, width, name):
    if height == 0 or width == 0:
        raise ValueError(f"{name}: the image is empty ({height}x{width})")
    if height > 0xFFFFFFFF or width > 0xFFFFFFFF:
        raise ValueError(f"{name}: {height}x{width} is over the 2^32 - 1 pixels a side fxcam supports")


def _from_numpy(arr, name, layout=None, channel_order="rgb", unit_range=True):
    pixel_type = _NP_TYPES.get(arr.dtype)
    if pixel_type is None:
        native = arr.dtype.newbyteorder("=")
        if arr.dtype.byteorder not in ("=", "|") and native in _NP_TYPES:
            arr = arr.astype(native)  # big-endian data: one converted copy
            pixel_type = _NP_TYPES[native]
        else:
            raise _unsupported_dtype(arr, name)
    height, width, channels, layout = _shape_channels(arr.shape, name, layout)
    _check_size(height, width, name)
    if layout == "chw":
        arr = arr[0] if channels == 1 else arr.transpose(1, 2, 0)
    if channel_order == "bgr" and channels >= 3:
        arr = arr[..., [2, 1, 0] + ([3] if channels == 4 else [])]  # BGR(A) -> RGB(A): a copy
    if unit_range and pixel_type == PIXEL_F32:
        check_unit_range(*_float_range(arr), name)
    item = arr.itemsize
    row = width * channels * item
    inner_ok = arr.strides[1] == channels * item and (arr.ndim == 2 or arr.strides[2] == item)
    if not (inner_ok and arr.flags.aligned and (height == 1 or arr.strides[0] >= row)):
        arr = np.ascontiguousarray(arr)
    stride = arr.strides[0] if height > 1 else row
    return Input(_describe(arr.ctypes.data, stride, width, height, channels, pixel_type), arr)


def _values_range(values):
    """(min, max) of a sequence of numbers; (nan, nan) when one is NaN."""
    if any(v != v for v in values):
        return float("nan"), float("nan")
    return min(values), max(values)


def _to_hwc_rgb(data, channels, layout, channel_order):
    """Flat values (array.array) in HWC RGB(A) order, from CHW and/or BGR(A)."""
    if layout == "chw" and channels > 1:
        plane = len(data) // channels
        hwc = array.array(data.typecode, bytes(len(data) * data.itemsize))
        for c in range(channels):
            hwc[c::channels] = data[c * plane:(c + 1) * plane]
        data = hwc
    if channel_order == "bgr" and channels >= 3:
        blue = data[0::channels]
        data[0::channels] = data[2::channels]
        data[2::channels] = blue
    return data


def _flat_input(data, height, width, channels, pixel_type, keep):
    holder = (ctypes.c_char * (len(data) * data.itemsize)).from_buffer(data)
    row = width * channels * data.itemsize
    return Input(_describe(ctypes.addressof(holder), row, width, height, channels, pixel_type), (holder, keep))


def _from_buffer(obj, name, layout=None, channel_order="rgb", unit_range=True):
    view = memoryview(obj)
    fmt = view.format
    pixel_type = _BUFFER_FORMATS.get(fmt)
    if view.ndim < 2:
        raise TypeError(f"{name}: a {view.ndim}-D buffer has no image shape; give one, e.g. "
                        f"memoryview(data).cast('B', (height, width))")
    if pixel_type is None or view.itemsize != _ITEMSIZE[pixel_type]:
        raise TypeError(f"{name}: buffer format {fmt!r} is not supported; use 'B' (uint8), 'H' (uint16) "
                        f"or 'f' (float32)")
    height, width, channels, layout = _shape_channels(view.shape, name, layout)
    _check_size(height, width, name)
    if layout == "hwc" and (channel_order == "rgb" or channels < 3) and not (unit_range and pixel_type == PIXEL_F32):
        raw = view if view.c_contiguous else memoryview(view.tobytes())
        if raw.readonly:
            holder = (ctypes.c_char * raw.nbytes).from_buffer_copy(raw)
        else:
            holder = (ctypes.c_char * raw.nbytes).from_buffer(raw.cast("B"))
        row = width * channels * _ITEMSIZE[pixel_type]
        return Input(_describe(ctypes.addressof(holder), row, width, height, channels, pixel_type), (holder, view))
    data = array.array(_ARRAY_CODE[pixel_type])
    data.frombytes(view.tobytes())
    if unit_range and pixel_type == PIXEL_F32:
        check_unit_range(*_values_range(data), name)
    data = _to_hwc_rgb(data, channels, layout, channel_order)
    return _flat_input(data, height, width, channels, pixel_type, data)


def _nested_shape(obj, name):
    shape = []
    node = obj
    while isinstance(node, (list, tuple)):
        if not node:
            raise ValueError(f"{name}: empty list in the image")
        shape.append(len(node))
        node = node[0]
    return shape


def _from_lists(obj, name, layout=None, channel_order="rgb", unit_range=True):
    shape = _nested_shape(obj, name)
    height, width, channels, layout = _shape_channels(shape, name, layout)
    rows, row_len, depth = obj, width, len(shape)
    if layout == "chw":  # the planes' rows one after another, transposed to HWC below
        if any(not isinstance(plane, (list, tuple)) or len(plane) != height for plane in obj):
            raise ValueError(f"{name}: a CxHxW image needs {channels} planes of {height} rows each")
        rows, depth = [r for plane in obj for r in plane], 2
    flat = []
    for y, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != row_len:
            raise ValueError(f"{name}: row {y} does not have {row_len} pixels")
        if depth == 2:
            flat.extend(row)
        else:
            for x, px in enumerate(row):
                if not isinstance(px, (list, tuple)) or len(px) != channels:
                    raise ValueError(f"{name}: pixel ({x}, {y}) does not have {channels} channels")
                flat.extend(px)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
        bad = next(v for v in flat if isinstance(v, bool) or not isinstance(v, (int, float)))
        raise TypeError(f"{name}: pixel values must be int or float, found {type(bad).__name__}")
    if any(isinstance(v, float) for v in flat):
        pixel_type = PIXEL_F32
        if unit_range:
            check_unit_range(*_values_range(flat), name, "float")
    else:
        low, high = min(flat), max(flat)
        if low < 0 or high > 65535:
            raise ValueError(f"{name}: integer pixel values must be in 0..65535, found {low}..{high}")
        pixel_type = PIXEL_U8 if high <= 255 else PIXEL_U16
    data = _to_hwc_rgb(array.array(_ARRAY_CODE[pixel_type], flat), channels, layout, channel_order)
    return _flat_input(data, height, width, channels, pixel_type, data)


def load_owned(path, options=None):
    owned = OwnedImage()
    check(lib.fx_image_load(fspath_bytes(path, "image path"), options, ctypes.byref(owned.image)))
    return owned


def load_with_info(path):
    """(OwnedImage, ImageInfo or None): a file and what its loader found out
    about the samples (None from a library that predates fx_image_info)."""
    opts = LoadOptions()
    lib.fx_load_options_init(ctypes.byref(opts))
    if opts.struct_size < ctypes.sizeof(LoadOptions):
        return load_owned(path, ctypes.byref(opts)), None
    info = ImageInfo()
    info.struct_size = ctypes.sizeof(ImageInfo)
    opts.info = ctypes.pointer(info)
    return load_owned(path, ctypes.byref(opts)), info


def as_input(obj, name="image", layout=None, channel_order="rgb", unit_range=True):
    """Describes an image (path, array, buffer or nested lists) as an fx_image.

    layout: None (from the shape; ambiguous shapes are refused), "hwc" or
    "chw". channel_order: "rgb" or "bgr" (arrays from cv2.imread; converted
    to RGB). unit_range: float data must lie in [0, 1] (False only for maps
    that are not intensities, e.g. resizing raw values)."""
    check_layout(layout)
    check_channel_order(channel_order)
    if is_path(obj):
        if channel_order != "rgb" or layout is not None:
            raise ValueError(f"{name}: channel_order and layout describe arrays; an image file is decoded by "
                             f"fxcam itself (RGB, HxWxC), so leave them at their defaults for paths")
        owned, info = load_with_info(obj)
        return Input(owned.image, owned, info)
    if isinstance(obj, Input):
        return obj
    options = dict(layout=layout, channel_order=channel_order, unit_range=unit_range)
    if HAVE_NUMPY and isinstance(obj, np.ndarray):
        return _from_numpy(obj, name, **options)
    if isinstance(obj, (list, tuple)):
        return _from_lists(obj, name, **options)
    if HAVE_NUMPY and hasattr(obj, "__array_interface__"):
        return _from_numpy(np.asarray(obj), name, **options)
    try:
        memoryview(obj)
    except TypeError:
        kinds = "a path, a NumPy array, a shaped buffer or nested lists" if HAVE_NUMPY else \
            "a path, a shaped buffer (memoryview.cast) or nested lists"
        raise TypeError(f"{name}: expected {kinds}, not {type(obj).__name__}") from None
    return _from_buffer(obj, name, **options)


def describe_batch(images, layout=None, channel_order="rgb"):
    """(inputs, fx_image array, fx_image_info array or None) for a list of
    images: the info array (what the loader found of each file, e.g. 12 bits
    stored; zeros for arrays, meaning their container) is given when any
    image is a file, so the model's intensity rule reads it (fx_gradcam_options.image_info)."""
    if isinstance(images, (str, bytes, os.PathLike)):
        raise TypeError("images must be a list of images (paths, arrays, buffers or nested lists), e.g. [image]")
    inputs = [as_input(img, f"images[{k}]", layout=layout, channel_order=channel_order)
              for k, img in enumerate(images)]
    if not inputs:
        raise ValueError("images is empty")
    array = (FxImage * len(inputs))(*[i.image for i in inputs])
    if all(i.info is None for i in inputs):
        return inputs, array, None
    infos = (ImageInfo * len(inputs))()
    for k, i in enumerate(inputs):
        if i.info is not None:
            ctypes.memmove(ctypes.byref(infos[k]), ctypes.byref(i.info), ctypes.sizeof(ImageInfo))
        infos[k].struct_size = ctypes.sizeof(ImageInfo)
    return inputs, array, infos


def rgb_to_bgr(image):
    """The same image with its first and third channels swapped (for
    use_rgb=False: arrays for cv2.imwrite); 1- and 2-channel images as they are."""
    if HAVE_NUMPY and isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] >= 3:
            order = [2, 1, 0] + ([3] if image.shape[2] == 4 else [])
            return np.ascontiguousarray(image[..., order])
        return image
    return [[px[2::-1] + px[3:] if isinstance(px, list) and len(px) >= 3 else px for px in row] for row in image]


def _lists_from(image):
    """Nested lists copied out of an fx_image."""
    item = _ITEMSIZE[image.pixel_type]
    width, channels = image.width, image.channels
    rows = []
    for y in range(image.height):
        values = array.array(_ARRAY_CODE[image.pixel_type])
        values.frombytes(ctypes.string_at(image.data + y * image.stride, width * channels * item))
        values = values.tolist()
        if channels == 1:
            rows.append(values)
        else:
            rows.append([values[x * channels:(x + 1) * channels] for x in range(width)])
    return rows


def _numpy_view(image, owner):
    """An array over an fx_image's pixels; `owner` stays alive as long as it."""
    item = _ITEMSIZE[image.pixel_type]
    nbytes = image.stride * (image.height - 1) + image.width * image.channels * item
    buf = (ctypes.c_char * nbytes).from_address(image.data)
    buf._fx_owner = owner
    shape = (image.height, image.width) + ((image.channels,) if image.channels > 1 else ())
    strides = (image.stride, image.channels * item) + ((item,) if image.channels > 1 else ())
    return np.ndarray(shape, dtype=_NP_DTYPE[image.pixel_type], buffer=buf, strides=strides)


def wrap_owned(owned):
    """Result of an OwnedImage: a zero-copy array, or nested lists."""
    if HAVE_NUMPY:
        return _numpy_view(owned.image, owned)
    return _lists_from(owned.image)


def wrap_borrowed(image_ptr, owner):
    """Result of an fx_image owned by `owner` (e.g. a result's heatmap)."""
    image = image_ptr.contents
    if HAVE_NUMPY:
        return _numpy_view(image, owner)
    return _lists_from(image)


class Output:
    """A caller-owned output buffer of a given size, filled by the library."""

    def __init__(self, height, width, channels, pixel_type):
        item = _ITEMSIZE[pixel_type]
        if HAVE_NUMPY:
            shape = (height, width) + ((channels,) if channels > 1 else ())
            self.buffer = np.empty(shape, dtype=_NP_DTYPE[pixel_type])
            data = self.buffer.ctypes.data
        else:
            self.buffer = ctypes.create_string_buffer(height * width * channels * item)
            data = ctypes.addressof(self.buffer)
        self.image = _describe(data, width * channels * item, width, height, channels, pixel_type)

    def result(self):
        return self.buffer if HAVE_NUMPY else _lists_from(self.image)


__all__ = ["HAVE_NUMPY", "as_input", "rgb_to_bgr", "check_unit_range", "wrap_owned", "wrap_borrowed", "Output", "OwnedImage", "load_owned",
           "fspath_bytes", "is_path", "_lib"]
