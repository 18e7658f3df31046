"""Grad-CAM and Grad-CAM++ over a Model (fx_gradcam_compute, fx_result_*)."""
import ctypes
import difflib
import glob
import os

from . import image as _image
from ._arrays import as_input, is_path, wrap_borrowed
from ._lib import CAM_METHOD_COUNT, FxImage, GradcamOptions, check, lib
from .errors import LayerError
from .model import Model

_DISPLAY = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "hirescam": "HiResCAM", "xgradcam": "XGradCAM",
            "layercam": "LayerCAM"}


def method_names():
    """The CAM methods the library knows, in FX_CAM_* order."""
    return [lib.fx_cam_method_name(i).decode() for i in range(CAM_METHOD_COUNT)]


def method_id(method):
    if isinstance(method, str):
        value = ctypes.c_int32()
        check(lib.fx_cam_method_from_name(method.encode("utf-8"), ctypes.byref(value)))
        return value.value
    if isinstance(method, bool) or not isinstance(method, int):
        raise TypeError(f"method must be a name such as 'gradcam' or an int, not {type(method).__name__}")
    return method


class _ResultHandle:
    def __init__(self):
        self.ptr = ctypes.c_void_p()
        self._free = lib.fx_result_free

    def __del__(self):
        if self.ptr:
            self._free(self.ptr)
            self.ptr = ctypes.c_void_p()


class CamResult:
    """What one fx_gradcam_compute call produced for n images and m methods.
    Heatmaps are arrays over the result's own memory (no copy); they keep it
    alive. Index i is the image, j the method (in the order asked)."""

    def __init__(self, handle, model):
        self._handle = handle
        self.model = model

    def __len__(self):
        return lib.fx_result_count(self._handle.ptr)

    @property
    def layer(self):
        return lib.fx_result_layer(self._handle.ptr).decode("utf-8", "replace")

    @property
    def methods(self):
        n = lib.fx_result_method_count(self._handle.ptr)
        return [lib.fx_cam_method_name(lib.fx_result_method(self._handle.ptr, j)).decode() for j in range(n)]

    def _index(self, i, j=0):
        if not 0 <= i < len(self):
            raise IndexError(f"image index {i} out of range 0..{len(self) - 1}")
        count = lib.fx_result_method_count(self._handle.ptr)
        if not 0 <= j < count:
            raise IndexError(f"method index {j} out of range 0..{count - 1}")

    def _map(self, getter, i, j, what):
        self._index(i, j)
        ptr = getter(self._handle.ptr, i, j)
        if not ptr:
            raise ValueError(f"this result has no {what} (compute with keep_raw=True)")
        return wrap_borrowed(ptr, self._handle)

    def heatmap(self, i=0, j=0):
        """HxW float32 in [0, 1] at image i's size."""
        return self._map(lib.fx_result_heatmap, i, j, "heatmap")

    def raw_heatmap(self, i=0, j=0):
        """The heatmap before normalization (needs keep_raw=True)."""
        return self._map(lib.fx_result_raw_heatmap, i, j, "raw heatmap")

    def lowres(self, i=0, j=0):
        """The map at the layer's resolution, after ReLU."""
        return self._map(lib.fx_result_lowres, i, j, "low-resolution map")

    def heatmap_address(self, i=0, j=0):
        """Address of the library's heatmap pixels (to check zero-copy)."""
        self._index(i, j)
        return lib.fx_result_heatmap(self._handle.ptr, i, j).contents.data

    def predicted_class(self, i=0):
        self._index(i)
        return lib.fx_result_predicted_class(self._handle.ptr, i)

    def predicted_name(self, i=0):
        return self.model.class_names[self.predicted_class(i)]

    def confidence(self, i=0):
        self._index(i)
        return lib.fx_result_confidence(self._handle.ptr, i)

    def target_class(self, i=0):
        self._index(i)
        return lib.fx_result_target_class(self._handle.ptr, i)

    def _floats(self, getter, i):
        self._index(i)
        count = ctypes.c_uint32()
        ptr = getter(self._handle.ptr, i, ctypes.byref(count))
        return [ptr[k] for k in range(count.value)]

    def probabilities(self, i=0):
        return self._floats(lib.fx_result_probabilities, i)

    def logits(self, i=0):
        return self._floats(lib.fx_result_logits, i)


def _check_model(model):
    if not isinstance(model, Model):
        raise TypeError(f"model must be a fxcam.Model (load one with fxcam.Model(path)), "
                        f"not {type(model).__name__}")
    return model


def _check_layer(model, layer_name):
    if layer_name is None:
        return None
    if not isinstance(layer_name, str):
        raise TypeError(f"layer_name must be a str or None, not {type(layer_name).__name__}")
    names = [l.name for l in model.layers]
    if layer_name not in names:
        close = difflib.get_close_matches(layer_name, names, n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise LayerError(f"layer '{layer_name}' not found in the model{hint}; see fxcam.list_layers(model)", -8,
                         "FX_ERR_LAYER")
    return layer_name


def compute(model, images, methods=("gradcam",), layer_name=None, target_class=None, batch_size=0,
            keep_raw=False):
    """One fx_gradcam_compute call over a sequence of images."""
    model = _check_model(model)
    inputs = [as_input(img, f"images[{k}]") for k, img in enumerate(images)]
    if not inputs:
        raise ValueError("images is empty")
    array = (FxImage * len(inputs))(*[i.image for i in inputs])
    ids = [method_id(m) for m in methods]
    opts = GradcamOptions()
    lib.fx_gradcam_options_init(ctypes.byref(opts))
    method_array = (ctypes.c_int32 * len(ids))(*ids)
    opts.methods = method_array
    opts.method_count = len(ids)
    opts.layer = None if layer_name is None else layer_name.encode("utf-8")
    opts.target_class = -1 if target_class is None else model.class_index(target_class)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 0 <= batch_size < 2 ** 32:
        raise ValueError(f"batch_size must be an int >= 0 (0 = 8), got {batch_size!r}")
    opts.batch_size = batch_size
    opts.keep_raw = 1 if keep_raw else 0
    handle = _ResultHandle()
    check(lib.fx_gradcam_compute(model.handle, array, len(inputs), ctypes.byref(opts), ctypes.byref(handle.ptr)))
    return CamResult(handle, model)


class GradCAM:
    """Grad-CAM over a Model's layer (layer_name None = the model's default
    layer). The result of the last call stays in .last_result (prediction,
    confidence, probabilities)."""

    method = "gradcam"

    def __init__(self, model, layer_name=None, batch_size=0):
        self.model = _check_model(model)
        self.layer_name = _check_layer(model, layer_name)
        self.batch_size = batch_size
        self.last_result = None

    @property
    def method_title(self):
        return _DISPLAY.get(self.method, self.method)

    def compute(self, image, target_class=None, keep_raw=False):
        """CamResult for one image."""
        self.last_result = compute(self.model, [image], (self.method,), self.layer_name, target_class,
                                   self.batch_size, keep_raw)
        return self.last_result

    def compute_batch(self, images, target_class=None, keep_raw=False):
        """CamResult for a sequence of images (batched forward passes)."""
        self.last_result = compute(self.model, list(images), (self.method,), self.layer_name, target_class,
                                   self.batch_size, keep_raw)
        return self.last_result

    def compute_heatmap(self, image, target_class=None):
        """HxW float32 heatmap in [0, 1] at the image's size (target_class:
        index or name; None = predicted class)."""
        return self.compute(image, target_class).heatmap()

    def overlay_heatmap(self, heatmap, image, alpha=0.4, colormap="jet", threshold=0.0):
        """The colored heatmap blended over the image: HxWx3 uint8."""
        return _image.overlay(image, heatmap, alpha=alpha, colormap=colormap, threshold=threshold)

    def generate_visualization(self, image, target_class=None, alpha=0.4, colormap="jet"):
        """(heatmap, overlay) for one image."""
        src = as_input(image)  # loaded once for both steps
        heatmap = self.compute_heatmap(src, target_class)
        return heatmap, self.overlay_heatmap(heatmap, src, alpha=alpha, colormap=colormap)

    def visualize(self, image, save_path=None, show=False, target_class=None, alpha=0.4, colormap="jet",
                  timestamp=None, panel_height=0):
        """The figure original | heatmap | overlay with prediction, confidence,
        method and layer. Written as PNG to save_path when given; show=True
        opens it in an image viewer (needs PIL). Returns the figure array."""
        src = as_input(image)
        result = self.compute(src, target_class)
        figure = _image.compose_figure(src, result.heatmap(), label=result.predicted_name(),
                                       confidence=result.confidence(), method=self.method_title,
                                       layer=result.layer, timestamp=timestamp, alpha=alpha, colormap=colormap,
                                       panel_height=panel_height)
        if save_path is not None:
            _image.save_image(save_path, figure)
        if show:
            _show(figure)
        return figure


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018) with the same interface."""

    method = "gradcam++"


def _show(figure):
    try:
        from PIL import Image
    except ImportError:
        raise RuntimeError("show=True needs PIL (python3-pil); use save_path instead") from None
    if isinstance(figure, list):
        h, w = len(figure), len(figure[0])
        data = bytes(v for row in figure for px in row for v in px)
    else:
        h, w = figure.shape[:2]
        data = figure.tobytes()
    Image.frombytes("RGB", (w, h), data).show()


def _image_list(images):
    if is_path(images) and os.path.isdir(images):
        found = sorted(glob.glob(os.path.join(os.fsdecode(images), "*.png")))
        if not found:
            raise FileNotFoundError(f"no .png file in {os.fsdecode(images)}")
        return found
    if is_path(images):
        return [images]
    try:
        return list(images)
    except TypeError:
        raise TypeError(f"images must be a folder, a path or a sequence of images, "
                        f"not {type(images).__name__}") from None


def _output_names(images, suffix):
    names, seen = [], set()
    for k, img in enumerate(images):
        stem = os.path.splitext(os.path.basename(os.fsdecode(img)))[0] if is_path(img) else f"image_{k:04d}"
        name = f"{stem}_{suffix}.png"
        if name in seen:
            name = f"{stem}_{k}_{suffix}.png"
        seen.add(name)
        names.append(name)
    return names


def batch_visualize(model, images, output_dir, layer_name=None, method="gradcam", target_class=None, alpha=0.4,
                    colormap="jet", batch_size=8, timestamp=None):
    """Writes one figure per image into output_dir (created if needed) as
    <name>_<method>.png and returns the paths. images: a folder (its *.png),
    a path, or a sequence of paths/arrays. Images are processed batch_size at
    a time."""
    model = _check_model(model)
    layer_name = _check_layer(model, layer_name)
    images = _image_list(images)
    if not images:
        raise ValueError("images is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    mid = method_id(method)
    title = _DISPLAY.get(lib.fx_cam_method_name(mid).decode(), str(method))
    suffix = lib.fx_cam_method_name(mid).decode().replace("+", "p")
    os.makedirs(output_dir, exist_ok=True)
    names = _output_names(images, suffix)
    written = []
    for start in range(0, len(images), batch_size):
        chunk = [as_input(img, f"images[{start + k}]") for k, img in enumerate(images[start:start + batch_size])]
        result = compute(model, chunk, (mid,), layer_name, target_class, batch_size)
        for k, src in enumerate(chunk):
            figure = _image.compose_figure(src, result.heatmap(k), label=result.predicted_name(k),
                                           confidence=result.confidence(k), method=title, layer=result.layer,
                                           timestamp=timestamp, alpha=alpha, colormap=colormap)
            path = os.path.join(os.fsdecode(output_dir), names[start + k])
            _image.save_image(path, figure)
            written.append(path)
    return written
