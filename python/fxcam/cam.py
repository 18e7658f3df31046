"""Grad-CAM and Grad-CAM++ over a Model (fx_gradcam_compute, fx_result_*)."""
import ctypes
import difflib

from . import _lib
from . import image as _image
from ._arrays import Output, as_input, describe_batch, wrap_borrowed
from ._lib import PIXEL_U8, GradcamOptions, ProgressCallback, check, lib
from .errors import FxcamWarning, LayerError, emit_warnings
from .model import Model

def _text(value):
    return value.decode("utf-8") if value is not None else None


def methods():
    """The library's method registry (fx_cam_method_at), in id order: one dict per
    method with id, name, aliases (list), title, slug, description, reference and
    needs (a list of "gradients", "extra_forwards", "input_gradients")."""
    out = []
    for i in range(lib.fx_cam_method_count()):
        m = lib.fx_cam_method_at(i).contents
        aliases = _text(m.aliases)
        needs = [word for bit, word in ((_lib.CAM_NEEDS_GRADIENTS, "gradients"),
                                        (_lib.CAM_NEEDS_EXTRA_FORWARDS, "extra_forwards"),
                                        (_lib.CAM_NEEDS_INPUT_GRADIENTS, "input_gradients")) if m.needs & bit]
        out.append({"id": m.id, "name": _text(m.name), "aliases": aliases.split(",") if aliases else [],
                    "title": _text(m.title), "slug": _text(m.slug), "description": _text(m.description),
                    "reference": _text(m.reference), "needs": needs})
    return out


def method_names():
    """The CAM method names the library knows (its registry), in FX_CAM_* order."""
    return [m["name"] for m in methods()]


def method_title(method):
    """Display title of a method name, alias or id ("Grad-CAM++"), from the library."""
    return _text(lib.fx_cam_method_title(method_id(method)))


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
        self.warnings = self._read_warnings()

    def _read_warnings(self):
        """The library's warnings about this call, as FxcamWarning objects."""
        if not _lib.has("fx_result_warning_count"):
            return []
        found = []
        for k in range(lib.fx_result_warning_count(self._handle.ptr)):
            code, image = ctypes.c_int32(), ctypes.c_int64()
            text = lib.fx_result_warning(self._handle.ptr, k, ctypes.byref(code), ctypes.byref(image))
            if text is not None:
                found.append(FxcamWarning(text.decode("utf-8", "replace"), code.value,
                                          None if image.value < 0 else image.value))
        return found

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

    def saliency(self, i=0, j=0):
        """Guided methods ("guided-backprop", "guided-gradcam") only: the
        input-space saliency of image i, float32 in [0, 1] at the image's size
        with the model's input channels C, shaped as every image this package
        returns: HxW for a 1-channel model, HxWxC otherwise (HxWx3 for RGB);
        0.5 = no gradient. By
        pytorch-grad-cam's deprocess_image without its uint8 step (fxcam.h,
        fx_result_saliency). ValueError for other methods."""
        self._index(i, j)
        ptr = lib.fx_result_saliency(self._handle.ptr, i, j) if _lib.has("fx_result_saliency") else None
        if not ptr:
            raise ValueError(f"method {self.methods[j]!r} gives no saliency image; only the guided methods "
                             f"(guided-backprop, guided-gradcam) do")
        return wrap_borrowed(ptr, self._handle)

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
        """The class whose score was differentiated for image i, or None when
        the score was a weighted sum of classes (fx_gradcam_options.
        class_weights; the library's -1, which would index the last class)."""
        self._index(i)
        target = lib.fx_result_target_class(self._handle.ptr, i)
        return None if target < 0 else target

    def target_name(self, i=0):
        """The name of target_class(i), or "weighted classes" when the score
        was a weighted sum of classes."""
        target = self.target_class(i)
        return "weighted classes" if target is None else self.model.class_names[target]

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
    """layer_name: None, a layer name, or a list/tuple of names (several
    target layers, their maps averaged)."""
    if layer_name is None:
        return None
    if isinstance(layer_name, (list, tuple)):
        if not 1 <= len(layer_name) <= 16:
            raise ValueError(f"layer_name lists {len(layer_name)} layers; give 1..16")
        if len(set(layer_name)) != len(layer_name):
            raise ValueError(f"layer_name lists a layer twice: {list(layer_name)}; give each layer once")
        return tuple(_check_layer(model, name) for name in layer_name)
    if not isinstance(layer_name, str):
        raise TypeError(f"layer_name must be a str, a list of str or None, not {type(layer_name).__name__}")
    names = [l.name for l in model.layers]
    if layer_name not in names:
        close = difflib.get_close_matches(layer_name, names, n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise LayerError(f"layer '{layer_name}' not found in the model{hint}; see fxcam.list_layers(model)", -8,
                         "FX_ERR_LAYER")
    return layer_name


class _Progress:
    """A Python progress(done, total) as fx_gradcam_options.progress. An
    exception cannot cross the C frames: it is kept, the call is cancelled,
    and it is raised again after the call returns."""

    def __init__(self, progress):
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be a callable progress(done, total) or None, not "
                            f"{type(progress).__name__}")
        self.progress = progress
        self.error = None
        self._c = None if progress is None else ProgressCallback(self._call)  # alive during the call

    def _call(self, user, done, total):
        try:
            return 1 if self.progress(done, total) is True else 0
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt must stop the run too
            self.error = e
            return 1

    def install(self, opts):
        if self._c is not None:
            opts.progress = ctypes.cast(self._c, ctypes.c_void_p)

    def check(self, status):
        """check(status), raising the callback's own exception first."""
        if self.error is not None:
            error, self.error = self.error, None
            if status == _lib.ERR_CANCELLED:
                raise error
        check(status)


def _count(value, name, low, high, default):
    if isinstance(value, bool) or not isinstance(value, int) or not (value == 0 or low <= value <= high):
        raise ValueError(f"{name} must be an int in {low}..{high} (0 = default {default}), got {value!r}")
    return value


def _target_classes(model, target_classes, n):
    """One class per image (index, name, or None = that image's predicted class)."""
    if isinstance(target_classes, (str, bytes)) or not hasattr(target_classes, "__len__"):
        raise TypeError(f"target_classes must be a sequence with one class per image, not "
                        f"{type(target_classes).__name__}")
    if len(target_classes) != n:
        raise ValueError(f"target_classes has {len(target_classes)} entries for {n} images; give one per image "
                         f"(None = that image's predicted class)")
    return (ctypes.c_int32 * n)(*[-1 if t is None else model.class_index(t) for t in target_classes])


def _weight_sequence(class_weights):
    """The floats of a class_weights sequence; TypeError naming what was given otherwise."""
    expected = "class_weights must be a sequence of floats (one per model output) or a dict {class: weight}"
    if isinstance(class_weights, (str, bytes)) or not hasattr(class_weights, "__iter__"):
        raise TypeError(f"{expected}, not {type(class_weights).__name__} {class_weights!r}")
    values = list(class_weights)
    bad = [v for v in values if isinstance(v, (str, bytes, bool)) or not isinstance(v, (int, float))
           and not hasattr(v, "__float__")]
    if bad:
        raise TypeError(f"{expected}; it holds {bad[0]!r} ({type(bad[0]).__name__})")
    return [float(v) for v in values]


def _class_weights(model, class_weights):
    """A weight per model output: a sequence of logit_count numbers, or a
    dict {class index or name: weight} (other classes 0)."""
    count = model.logit_count
    if isinstance(class_weights, dict):
        weights = [0.0] * count
        for key, value in class_weights.items():
            index = model.class_index(key)
            if index >= count:
                raise ValueError(f"class_weights names class {key!r}, but the model has {count} output(s); a "
                                 f"single-logit model takes one weight (index 0)")
            weights[index] = _weight_sequence([value])[0]
    else:
        weights = _weight_sequence(class_weights)
        if len(weights) != count:
            raise ValueError(f"class_weights has {len(weights)} values but the model has {count} outputs; give one "
                             f"per output, or a dict {{class: weight}}")
    return (ctypes.c_float * count)(*weights)


def fill_cam_options(opts, model, methods, *, layer_name=None, target_class=None, target_classes=None,
                     image_count=0, class_weights=None, aug_smooth=False, eigen_smooth=False, smooth_samples=0,
                     smooth_noise=0.0, smooth_seed=0, channel_batch_size=0):
    """Check the CAM keywords of compute() and set them in opts (a
    GradcamOptions after fx_gradcam_options_init): the one place that maps
    them, used by compute() and batch.run_pipeline(). Returns the ctypes
    arrays opts points into; keep them alive until the call returns.
    target_classes needs image_count (one class per image)."""
    ids = [method_id(m) for m in methods]
    if not ids:
        raise ValueError("methods is empty; give at least one (e.g. ('gradcam',))")
    if target_classes is not None and target_class is not None:
        raise ValueError("give target_class (one class for every image) or target_classes (one per image), "
                         "not both")
    keep = [(ctypes.c_int32 * len(ids))(*ids)]
    opts.methods = keep[0]
    opts.method_count = len(ids)
    if isinstance(layer_name, (list, tuple)):
        if not all(isinstance(name, str) for name in layer_name):
            raise TypeError(f"layer_name must be a str, a list of str or None; got a list holding "
                            f"{sorted({type(name).__name__ for name in layer_name})}")
        keep.append((ctypes.c_char_p * len(layer_name))(*[name.encode("utf-8") for name in layer_name]))
        opts.layers = keep[-1]
        opts.layer_count = len(layer_name)
    else:
        opts.layer = None if layer_name is None else layer_name.encode("utf-8")
    opts.target_class = -1 if target_class is None else model.class_index(target_class)
    if target_classes is not None:
        keep.append(_target_classes(model, target_classes, image_count))
        opts.target_classes = keep[-1]
    if class_weights is not None:
        keep.append(_class_weights(model, class_weights))
        opts.class_weights = keep[-1]
        opts.class_weight_count = len(keep[-1])
    opts.aug_smooth = 1 if aug_smooth else 0
    opts.eigen_smooth = 1 if eigen_smooth else 0
    opts.smooth_samples = _count(smooth_samples, "smooth_samples", 1, 256, 8)
    if isinstance(smooth_noise, bool) or not isinstance(smooth_noise, (int, float)) or not 0 <= smooth_noise <= 10:
        raise ValueError(f"smooth_noise must be a number in (0, 10] (0 = default 0.15), got {smooth_noise!r}")
    opts.smooth_noise = float(smooth_noise)
    if isinstance(smooth_seed, bool) or not isinstance(smooth_seed, int) or not 0 <= smooth_seed < 2 ** 64:
        raise ValueError(f"smooth_seed must be an int in 0..2**64-1, got {smooth_seed!r}")
    opts.smooth_seed = smooth_seed
    opts.channel_batch_size = _count(channel_batch_size, "channel_batch_size", 1, 2 ** 32 - 1, 32)
    return keep


def compute(model, images, methods=("gradcam",), layer_name=None, target_class=None, batch_size=0,
            keep_raw=False, channel_order="rgb", layout=None, progress=None, *, target_classes=None,
            class_weights=None, aug_smooth=False, eigen_smooth=False, smooth_samples=0, smooth_noise=0.0,
            smooth_seed=0, channel_batch_size=0):
    """One fx_gradcam_compute call over a sequence of images. The library's
    warnings (an all-zero map, a 1x1 layer, an image scaled far from the
    model input) are raised as fxcam.FxcamWarning and kept in the result's
    .warnings. channel_order="bgr" for arrays from cv2.imread; layout
    "hwc"/"chw" for arrays whose shape cannot tell. Image files are read with
    what their loader found out (bits stored: a 16-bit PNG with sBIT 12 is
    read as v / 4095 by the default intensity rule).

    progress: None or a callable progress(done, total) for the methods with
    one forward pass per channel (Score-CAM, Ablation-CAM): called with
    done = 0 once the total (images x channels x such methods) is known and
    after each batch of passes, on the calling thread. Returning True stops
    the call with fxcam.CancelledError; an exception raised inside it stops
    the call and is raised again here.

    layer_name: a name, or a list of names whose maps are upsampled and
    averaged (pytorch-grad-cam's several target_layers). target_classes: one
    class per image (index, name or None = predicted). class_weights: the
    score is sum_c w_c logit_c (a sequence per output, or {class: weight}).
    aug_smooth: test-time augmentation (flip x [1.0, 1.1, 0.9], 6 runs).
    eigen_smooth: first principal component of the weighted activations.
    smooth_samples, smooth_noise, smooth_seed: Smooth Grad-CAM++.
    channel_batch_size: Score-CAM/Ablation-CAM inputs per forward (0 = 32).
    docs/algorithms.md gives every definition."""
    model = _check_model(model)
    inputs, array, infos = describe_batch(images, layout=layout, channel_order=channel_order)
    opts = GradcamOptions()
    lib.fx_gradcam_options_init(ctypes.byref(opts))
    if infos is not None:
        opts.image_info = infos
    callback = _Progress(progress)
    callback.install(opts)
    keep = fill_cam_options(opts, model, methods, layer_name=layer_name, target_class=target_class,
                            target_classes=target_classes, image_count=len(inputs), class_weights=class_weights,
                            aug_smooth=aug_smooth, eigen_smooth=eigen_smooth, smooth_samples=smooth_samples,
                            smooth_noise=smooth_noise, smooth_seed=smooth_seed,
                            channel_batch_size=channel_batch_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 0 <= batch_size < 2 ** 32:
        raise ValueError(f"batch_size must be an int >= 0 (0 = 8), got {batch_size!r}")
    opts.batch_size = batch_size
    opts.keep_raw = 1 if keep_raw else 0
    handle = _ResultHandle()
    callback.check(lib.fx_gradcam_compute(model.handle, array, len(inputs), ctypes.byref(opts),
                                          ctypes.byref(handle.ptr)))
    result = CamResult(handle, model)
    emit_warnings(result.warnings)
    return result


def model_view(model, image, channel_order="rgb", layout=None):
    """The image as the model sees it, as HxWx3 uint8 RGB: each sample read to
    [0, 1] by the model's intensity rule (Model.intensity; a file with what its
    loader found, e.g. 12 bits stored from a PNG sBIT chunk) then
    round(x * 255) half up: fx_image_to_rgb8_intensity, as the CLI's figures
    (a 16-bit image is not stretched over its own min..max as fxcam.to_rgb8 does)."""
    src = as_input(image, layout=layout, channel_order=channel_order)
    if not _lib.has("fx_image_to_rgb8_intensity"):
        return _image.to_rgb8(src)  # a 0.1 library: its only rule
    rule = _check_model(model)._intensity_rule()
    info = None if src.info is None else ctypes.byref(src.info)
    out = Output(src.image.height, src.image.width, 3, PIXEL_U8)
    check(lib.fx_image_to_rgb8_intensity(ctypes.byref(src.image), ctypes.byref(rule), info, ctypes.byref(out.image)))
    return out.result()


class GradCAM:
    """Grad-CAM over a Model's layer (layer_name None = the model's default
    layer). The result of the last call stays in .last_result (prediction,
    confidence, probabilities)."""

    method = "gradcam"

    def __init__(self, model, layer_name=None, batch_size=0, aug_smooth=False, eigen_smooth=False):
        """layer_name: a name, a list of names (maps averaged) or None;
        aug_smooth, eigen_smooth: the refinements of compute()."""
        self.model = _check_model(model)
        self.layer_name = _check_layer(model, layer_name)
        self.batch_size = batch_size
        self.aug_smooth = aug_smooth
        self.eigen_smooth = eigen_smooth
        self.last_result = None

    def _compute(self, images, target_class, keep_raw, channel_order, layout):
        return compute(self.model, images, (self.method,), self.layer_name, target_class, self.batch_size, keep_raw,
                       channel_order, layout, aug_smooth=self.aug_smooth, eigen_smooth=self.eigen_smooth)

    @property
    def method_title(self):
        return method_title(self.method)

    def compute(self, image, target_class=None, keep_raw=False, channel_order="rgb", layout=None):
        """CamResult for one image (channel_order="bgr" for cv2.imread arrays)."""
        self.last_result = self._compute([image], target_class, keep_raw, channel_order, layout)
        return self.last_result

    def compute_batch(self, images, target_class=None, keep_raw=False, channel_order="rgb", layout=None):
        """CamResult for a sequence of images (batched forward passes)."""
        self.last_result = self._compute(list(images), target_class, keep_raw, channel_order, layout)
        return self.last_result

    def compute_heatmap(self, image, target_class=None, channel_order="rgb", layout=None):
        """HxW float32 heatmap in [0, 1] at the image's size (target_class:
        index or name; None = predicted class)."""
        return self.compute(image, target_class, channel_order=channel_order, layout=layout).heatmap()

    def overlay_heatmap(self, heatmap, image, alpha=0.4, colormap="jet", threshold=0.0, use_rgb=True,
                        channel_order=None, layout=None):
        """The colored heatmap blended over the image: HxWx3 uint8. colormap:
        a name or an OpenCV number (cv2.COLORMAP_JET). use_rgb=False returns
        BGR for cv2.imwrite; the image's channel order is channel_order, by
        default the same as the output's (as pytorch-grad-cam). The image is
        drawn as the model sees it (model_view: the model's intensity rule),
        as the CLI draws it."""
        src = _image.image_input(image, use_rgb, channel_order, layout)
        return _image.overlay(model_view(self.model, src), heatmap, alpha=alpha, colormap=colormap,
                              threshold=threshold, use_rgb=use_rgb, channel_order="rgb")

    def generate_visualization(self, image, target_class=None, alpha=0.4, colormap="jet", use_rgb=True,
                               channel_order=None, layout=None):
        """(heatmap, overlay) for one image; image order as overlay_heatmap()."""
        src = _image.image_input(image, use_rgb, channel_order, layout)  # converted once for both steps
        heatmap = self.compute_heatmap(src, target_class)
        return heatmap, self.overlay_heatmap(heatmap, src, alpha=alpha, colormap=colormap, use_rgb=use_rgb)

    def visualize(self, image, save_path=None, show=False, target_class=None, alpha=0.4, colormap="jet",
                  timestamp=None, panel_height=0, use_rgb=True, channel_order=None, layout=None):
        """The figure original | heatmap | overlay with prediction, confidence,
        method and layer. Written as PNG to save_path when given (colors
        right whatever use_rgb); show=True opens it in an image viewer (needs
        PIL). Returns the figure array, RGB (use_rgb=False: BGR). The image
        is shown as the model sees it (model_view), as in the CLI's figures."""
        src = _image.image_input(image, use_rgb, channel_order, layout)
        result = self.compute(src, target_class)
        figure = _image.compose_figure(model_view(self.model, src), result.heatmap(), label=result.predicted_name(),
                                       confidence=result.confidence(), method=self.method_title,
                                       layer=result.layer, timestamp=timestamp, alpha=alpha, colormap=colormap,
                                       panel_height=panel_height)
        if save_path is not None:
            _image.save_image(save_path, figure)
        if show:
            _show(figure)
        return figure if use_rgb else _image.rgb_to_bgr(figure)


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
