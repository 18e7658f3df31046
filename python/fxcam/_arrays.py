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
from ._lib import FxImage, PIXEL_F32, PIXEL_U16, PIXEL_U8, check, lib

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
    """An fx_image describing caller data, and the objects that keep it alive."""

    def __init__(self, image, keep):
        self.image = image
        self.keep = keep

    @property
    def shape(self):
        img = self.image
        return (img.height, img.width) if img.channels == 1 else (img.height, img.width, img.channels)


def _describe(data, stride, width, height, channels, pixel_type):
    return FxImage(data=data, stride=stride, width=width, height=height, channels=channels,
                   pixel_type=pixel_type)


def _shape_channels(shape, name):
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3:
        if not 1 <= shape[2] <= 4:
            raise ValueError(f"{name}: an HxWxC image needs 1 to 4 channels, got shape {tuple(shape)}")
        return shape[0], shape[1], shape[2]
    raise ValueError(f"{name}: an image must be HxW or HxWxC (C = 1..4), got {len(shape)} dimensions "
                     f"(shape {tuple(shape)})")


def _check_size(height, width, name):
    if height == 0 or width == 0:
        raise ValueError(f"{name}: the image is empty ({height}x{width})")
    if height > 0xFFFFFFFF or width > 0xFFFFFFFF:
        raise ValueError(f"{name}: {height}x{width} is over the 2^32 - 1 pixels a side fxcam supports")


def _from_numpy(arr, name):
    pixel_type = _NP_TYPES.get(arr.dtype)
    if pixel_type is None:
        native = arr.dtype.newbyteorder("=")
        if arr.dtype.byteorder not in ("=", "|") and native in _NP_TYPES:
            arr = arr.astype(native)  # big-endian data: one converted copy
            pixel_type = _NP_TYPES[native]
        else:
            hint = " (e.g. image.astype(numpy.float32))" if arr.dtype.kind in "fiub" else ""
            raise TypeError(f"{name}: dtype {arr.dtype} is not supported; use uint8, uint16 or float32{hint}")
    height, width, channels = _shape_channels(arr.shape, name)
    _check_size(height, width, name)
    item = arr.itemsize
    row = width * channels * item
    inner_ok = arr.strides[1] == channels * item and (arr.ndim == 2 or arr.strides[2] == item)
    if not (inner_ok and arr.flags.aligned and (height == 1 or arr.strides[0] >= row)):
        arr = np.ascontiguousarray(arr)
    stride = arr.strides[0] if height > 1 else row
    return Input(_describe(arr.ctypes.data, stride, width, height, channels, pixel_type), arr)


def _from_buffer(obj, name):
    view = memoryview(obj)
    fmt = view.format
    pixel_type = _BUFFER_FORMATS.get(fmt)
    if view.ndim < 2:
        raise TypeError(f"{name}: a {view.ndim}-D buffer has no image shape; give one, e.g. "
                        f"memoryview(data).cast('B', (height, width))")
    if pixel_type is None or view.itemsize != _ITEMSIZE[pixel_type]:
        raise TypeError(f"{name}: buffer format {fmt!r} is not supported; use 'B' (uint8), 'H' (uint16) "
                        f"or 'f' (float32)")
    height, width, channels = _shape_channels(view.shape, name)
    _check_size(height, width, name)
    raw = view if view.c_contiguous else memoryview(view.tobytes())
    if raw.readonly:
        holder = (ctypes.c_char * raw.nbytes).from_buffer_copy(raw)
    else:
        holder = (ctypes.c_char * raw.nbytes).from_buffer(raw.cast("B"))
    row = width * channels * _ITEMSIZE[pixel_type]
    return Input(_describe(ctypes.addressof(holder), row, width, height, channels, pixel_type), (holder, view))


def _nested_shape(obj, name):
    shape = []
    node = obj
    while isinstance(node, (list, tuple)):
        if not node:
            raise ValueError(f"{name}: empty list in the image")
        shape.append(len(node))
        node = node[0]
    return shape


def _from_lists(obj, name):
    shape = _nested_shape(obj, name)
    height, width, channels = _shape_channels(shape, name)
    flat = []
    for y, row in enumerate(obj):
        if not isinstance(row, (list, tuple)) or len(row) != width:
            raise ValueError(f"{name}: row {y} does not have {width} pixels")
        if len(shape) == 2:
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
    else:
        low, high = min(flat), max(flat)
        if low < 0 or high > 65535:
            raise ValueError(f"{name}: integer pixel values must be in 0..65535, found {low}..{high}")
        pixel_type = PIXEL_U8 if high <= 255 else PIXEL_U16
    data = array.array(_ARRAY_CODE[pixel_type], flat)
    holder = (ctypes.c_char * (len(data) * data.itemsize)).from_buffer(data)
    row = width * channels * data.itemsize
    return Input(_describe(ctypes.addressof(holder), row, width, height, channels, pixel_type), (holder, data))


def load_owned(path, options=None):
    owned = OwnedImage()
    check(lib.fx_image_load(fspath_bytes(path, "image path"), options, ctypes.byref(owned.image)))
    return owned


def as_input(obj, name="image"):
    """Describes an image (path, array, buffer or nested lists) as an fx_image."""
    if is_path(obj):
        owned = load_owned(obj)
        return Input(owned.image, owned)
    if isinstance(obj, Input):
        return obj
    if HAVE_NUMPY and isinstance(obj, np.ndarray):
        return _from_numpy(obj, name)
    if isinstance(obj, (list, tuple)):
        return _from_lists(obj, name)
    if HAVE_NUMPY and hasattr(obj, "__array_interface__"):
        return _from_numpy(np.asarray(obj), name)
    try:
        memoryview(obj)
    except TypeError:
        kinds = "a path, a NumPy array, a shaped buffer or nested lists" if HAVE_NUMPY else \
            "a path, a shaped buffer (memoryview.cast) or nested lists"
        raise TypeError(f"{name}: expected {kinds}, not {type(obj).__name__}") from None
    return _from_buffer(obj, name)


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


__all__ = ["HAVE_NUMPY", "as_input", "wrap_owned", "wrap_borrowed", "Output", "OwnedImage", "load_owned",
           "fspath_bytes", "is_path", "_lib"]
