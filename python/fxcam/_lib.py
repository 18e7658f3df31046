"""Loading libfxcam and declaring the C API for ctypes.

Every public function of include/fxcam.h has its argtypes and restype here
(tests/test_lib.py checks the list against the header), so that ctypes never
guesses an int where the C side wants a pointer or a size_t.

Where the library is looked for, in order:
  1. the file named by the environment variable FXCAM_LIBRARY;
  2. next to the package (fxcam/libfxcam.so*, then the folder above it);
  3. the library directory of the installation the package came from
     (_install_paths.py, written by `meson install`), relative to where the
     package now lies, so a DESTDIR or relocated install still works;
  4. the system: ctypes.util.find_library("fxcam"), then "libfxcam.so.0".
"""
import ctypes
import ctypes.util
import glob
import os

from .errors import FxError, error_for

# The version these bindings were written for: the library must have the
# same major version (same soname, docs/abi.md) and be at least this recent.
BINDINGS_VERSION = (0, 1, 0)
SONAME = "libfxcam.so.0"

c_float_p = ctypes.POINTER(ctypes.c_float)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
c_uint32_p = ctypes.POINTER(ctypes.c_uint32)


class FxImage(ctypes.Structure):
    """struct fx_image (layout frozen, docs/abi.md)."""
    _fields_ = [("data", ctypes.c_void_p), ("stride", ctypes.c_size_t), ("width", ctypes.c_uint32),
                ("height", ctypes.c_uint32), ("channels", ctypes.c_uint32), ("pixel_type", ctypes.c_int32)]


class ImageInfo(ctypes.Structure):
    """fx_image_info: what a loader found out about the samples (the range they occupy)."""
    _fields_ = [("struct_size", ctypes.c_uint32), ("bits_stored", ctypes.c_uint32),
                ("significant_bits", ctypes.c_uint32), ("format", ctypes.c_int32)]


class Intensity(ctypes.Structure):
    """fx_intensity: the rule that turns stored samples into [0,1]."""
    _fields_ = [("struct_size", ctypes.c_uint32), ("mode", ctypes.c_int32), ("bits_stored", ctypes.c_uint32),
                ("window_center", ctypes.c_float), ("window_width", ctypes.c_float)]


class LoadOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("max_width", ctypes.c_uint32),
                ("max_height", ctypes.c_uint32), ("max_pixels", ctypes.c_uint64),
                # added in 0.2: a library without it gets struct_size = LOAD_OPTIONS_V1_SIZE
                ("frame", ctypes.c_uint32),
                # fx_load_options.info (fx_image_info *): the library's init writes the whole struct,
                # so the binding's must be as large (a smaller one is a heap overflow)
                ("info", ctypes.POINTER(ImageInfo))]


LOAD_OPTIONS_V1_SIZE = LoadOptions.frame.offset


class SaveOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("compression_level", ctypes.c_int32)]


class OverlayOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("alpha", ctypes.c_float), ("colormap", ctypes.c_int32),
                ("threshold", ctypes.c_float)]


class FigureOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("label", ctypes.c_char_p), ("confidence", ctypes.c_float),
                ("method", ctypes.c_char_p), ("layer", ctypes.c_char_p), ("timestamp", ctypes.c_char_p),
                ("alpha", ctypes.c_float), ("colormap", ctypes.c_int32), ("threshold", ctypes.c_float),
                ("panel_height", ctypes.c_uint32),
                # added in 0.2: the input file and model, shown in the caption band
                ("source", ctypes.c_char_p),
                # added in 0.2: a guided method's saliency image, drawn as a 4th panel
                ("saliency", ctypes.POINTER(FxImage))]


class ModelOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("device", ctypes.c_char_p), ("threads", ctypes.c_int32),
                ("input_width", ctypes.c_uint32), ("input_height", ctypes.c_uint32),
                ("input_channels", ctypes.c_uint32), ("mean", c_float_p), ("std", c_float_p),
                # added in 0.2: a library without them gets struct_size = MODEL_OPTIONS_V1_SIZE
                ("mean_count", ctypes.c_uint32), ("std_count", ctypes.c_uint32), ("output_kind", ctypes.c_int32),
                ("strict", ctypes.c_int32),
                # intensity and resize fields of fx_model_options (same reason as LoadOptions.info)
                ("intensity", ctypes.c_int32), ("bits_stored", ctypes.c_uint32), ("window_center", ctypes.c_float),
                ("window_width", ctypes.c_float), ("resize_mode", ctypes.c_int32), ("resize_size", ctypes.c_uint32),
                ("class_names", ctypes.POINTER(ctypes.c_char_p)), ("class_name_count", ctypes.c_uint32)]


MODEL_OPTIONS_V1_SIZE = ModelOptions.mean_count.offset


LAYER_MAX_RANK = 8


class LayerInfoC(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("name", ctypes.c_char_p), ("type", ctypes.c_char_p),
                ("rank", ctypes.c_uint32), ("shape", ctypes.c_int64 * LAYER_MAX_RANK),
                ("is_feature_map", ctypes.c_int32)]


class CamMethodInfo(ctypes.Structure):
    """fx_cam_method_info: one entry of the library's method registry (read-only, owned by the library)."""
    _fields_ = [("struct_size", ctypes.c_uint32), ("id", ctypes.c_int32), ("name", ctypes.c_char_p),
                ("aliases", ctypes.c_char_p), ("title", ctypes.c_char_p), ("slug", ctypes.c_char_p),
                ("description", ctypes.c_char_p), ("reference", ctypes.c_char_p), ("needs", ctypes.c_uint32)]


class GradcamOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("layer", ctypes.c_char_p), ("target_class", ctypes.c_int32),
                ("methods", c_int32_p), ("method_count", ctypes.c_uint32), ("batch_size", ctypes.c_uint32),
                ("keep_raw", ctypes.c_int32),
                ("image_info", ctypes.POINTER(ImageInfo)),  # const fx_image_info *: n entries or NULL
                # 0.2: Score-CAM/Ablation-CAM batch and progress callback (ProgressCallback or None)
                ("channel_batch_size", ctypes.c_uint32), ("progress", ctypes.c_void_p),
                ("progress_user", ctypes.c_void_p),
                # 0.2: per-image targets and class weights; Smooth Grad-CAM++ samples, noise and seed
                ("target_classes", c_int32_p), ("class_weights", c_float_p), ("class_weight_count", ctypes.c_uint32),
                ("smooth_samples", ctypes.c_uint32), ("smooth_noise", ctypes.c_float), ("smooth_seed", ctypes.c_uint64),
                # 0.2: refinements (test-time augmentation, principal component, several layers)
                ("aug_smooth", ctypes.c_int32), ("eigen_smooth", ctypes.c_int32),
                ("layers", ctypes.POINTER(ctypes.c_char_p)), ("layer_count", ctypes.c_uint32)]


class FaithfulnessOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("steps", ctypes.c_uint32), ("deletion_baseline", ctypes.c_int32),
                ("blur_sigma", ctypes.c_float), ("road_steps", ctypes.c_uint32), ("road_noise", ctypes.c_float),
                ("seed", ctypes.c_uint64), ("batch_size", ctypes.c_uint32)]


class Faithfulness(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("score", ctypes.c_float), ("explanation_score", ctypes.c_float),
                ("average_drop", ctypes.c_float), ("increase", ctypes.c_int32), ("deletion_auc", ctypes.c_float),
                ("insertion_auc", ctypes.c_float), ("road_morf", ctypes.c_float), ("road_lerf", ctypes.c_float)]


class FaithfulnessSummary(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("images", ctypes.c_uint32), ("average_drop", ctypes.c_float),
                ("increase_in_confidence", ctypes.c_float), ("deletion_auc", ctypes.c_float),
                ("insertion_auc", ctypes.c_float), ("road_morf", ctypes.c_float), ("road_lerf", ctypes.c_float)]


# fx_score_batch_fn: fx_status (*)(void *user, const fx_image *images, size_t n, float *scores)
ScoreBatchCallback = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(FxImage), ctypes.c_size_t,
                                      ctypes.POINTER(ctypes.c_float))


# int (*progress)(void *user, uint64_t done, uint64_t total) of fx_gradcam_options;
# keep a reference to the wrapped callable while the call runs.
ProgressCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)


# fx_pipeline_run (0.2): one image's outcome, and the per-image callback.
class PipelineItem(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("index", ctypes.c_size_t), ("path", ctypes.c_char_p),
                ("status", ctypes.c_int32), ("error", ctypes.c_char_p), ("image", ctypes.POINTER(FxImage)),
                ("info", ctypes.POINTER(ImageInfo)), ("result", ctypes.c_void_p), ("result_index", ctypes.c_size_t)]


class PipelineOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("batch_size", ctypes.c_uint32), ("batch_memory", ctypes.c_uint64),
                ("io_threads", ctypes.c_uint32), ("gradcam", ctypes.POINTER(GradcamOptions)),
                ("load", ctypes.POINTER(LoadOptions))]


PipelineCallback = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(PipelineItem))


# Constants of include/fxcam.h (pinned values).
FX_OK = 0
ERR_CANCELLED = -13  # FX_ERR_CANCELLED: a progress callback asked to stop
PIXEL_U8, PIXEL_U16, PIXEL_F32 = 1, 2, 3
CAM_NEEDS_GRADIENTS, CAM_NEEDS_EXTRA_FORWARDS, CAM_NEEDS_INPUT_GRADIENTS = 1, 2, 4
OUTPUT_AUTO, OUTPUT_LOGITS, OUTPUT_PROBABILITIES = 0, 1, 2
WARN_TRAINING_MODE, WARN_OUTPUT_KIND, WARN_LAYER_1X1, WARN_ZERO_MAP, WARN_UPSCALE, WARN_DOWNSCALE = 1, 2, 3, 4, 5, 6
WARN_NOT_SEEN, WARN_CLIPPED, WARN_NARROW_RANGE = 7, 8, 9
INTENSITY_AUTO, INTENSITY_CONTAINER, INTENSITY_BITS, INTENSITY_MINMAX, INTENSITY_WINDOW = 0, 1, 2, 3, 4
RESIZE_DEFAULT, RESIZE_STRETCH, RESIZE_STRETCH_ANTIALIAS, RESIZE_LETTERBOX, RESIZE_SHORTER_SIDE_CROP = 0, 1, 2, 3, 4

_img_p = ctypes.POINTER(FxImage)
_handle = ctypes.c_void_p
_handle_p = ctypes.POINTER(ctypes.c_void_p)
_u32, _i32, _size = ctypes.c_uint32, ctypes.c_int32, ctypes.c_size_t
_str = ctypes.c_char_p
_status = ctypes.c_int32

# name: (restype, argtypes). Order follows include/fxcam.h.
PROTOTYPES = {
    "fx_version": (_u32, []),
    "fx_version_string": (_str, []),
    "fx_status_str": (_str, [_status]),
    "fx_last_error": (_str, []),
    "fx_clear_error": (None, []),
    "fx_pixel_size": (_size, [_i32]),
    "fx_image_alloc": (_status, [_img_p, _u32, _u32, _u32, _i32]),
    "fx_image_free": (None, [_img_p]),
    "fx_load_options_init": (None, [ctypes.POINTER(LoadOptions)]),
    "fx_image_load": (_status, [_str, ctypes.POINTER(LoadOptions), _img_p]),
    "fx_image_load_memory": (_status, [ctypes.c_void_p, _size, ctypes.POINTER(LoadOptions), _img_p]),
    "fx_save_options_init": (None, [ctypes.POINTER(SaveOptions)]),
    "fx_image_save": (_status, [_str, _img_p, ctypes.POINTER(SaveOptions)]),
    "fx_image_to_rgb8": (_status, [_img_p, _img_p]),
    "fx_intensity_init": (None, [ctypes.POINTER(Intensity)]),
    "fx_intensity_name": (_str, [_i32]),
    "fx_intensity_from_name": (_status, [_str, c_int32_p]),
    "fx_image_to_unit": (_status, [_img_p, ctypes.POINTER(Intensity), ctypes.POINTER(ImageInfo), _img_p]),
    "fx_image_to_rgb8_intensity": (_status, [_img_p, ctypes.POINTER(Intensity), ctypes.POINTER(ImageInfo), _img_p]),
    "fx_resize_bilinear": (_status, [_img_p, _img_p]),
    "fx_cam_method_count": (_size, []),
    "fx_cam_method_at": (ctypes.POINTER(CamMethodInfo), [_size]),
    "fx_cam_method_find": (ctypes.POINTER(CamMethodInfo), [_i32]),
    "fx_cam_method_name": (_str, [_i32]),
    "fx_cam_method_title": (_str, [_i32]),
    "fx_cam_method_description": (_str, [_i32]),
    "fx_cam_method_from_name": (_status, [_str, c_int32_p]),
    "fx_cam_lowres": (_status, [_i32, c_float_p, c_float_p, _u32, _u32, _u32, _u32, c_float_p]),
    "fx_cam_upsample": (_status, [c_float_p, _u32, _u32, _i32, _img_p]),
    "fx_map_normalize": (_status, [_img_p]),
    "fx_colormap_count": (_u32, []),
    "fx_colormap_at": (_i32, [_u32]),
    "fx_colormap_name": (_str, [_i32]),
    "fx_colormap_from_name": (_status, [_str, c_int32_p]),
    "fx_colormap_table": (_status, [_i32, ctypes.POINTER(ctypes.c_uint8)]),
    "fx_colormap_apply": (_status, [_img_p, _i32, _img_p]),
    "fx_overlay_options_init": (None, [ctypes.POINTER(OverlayOptions)]),
    "fx_overlay": (_status, [_img_p, _img_p, ctypes.POINTER(OverlayOptions), _img_p]),
    "fx_figure_options_init": (None, [ctypes.POINTER(FigureOptions)]),
    "fx_figure_compose": (_status, [_img_p, _img_p, ctypes.POINTER(FigureOptions), _img_p]),
    "fx_figure_compare": (_status, [_img_p, _img_p, _str, _img_p, _str, ctypes.POINTER(FigureOptions), _img_p]),
    "fx_model_options_init": (None, [ctypes.POINTER(ModelOptions)]),
    "fx_resize_mode_name": (_str, [_i32]),
    "fx_resize_mode_from_name": (_status, [_str, c_int32_p]),
    "fx_model_load": (_status, [_str, ctypes.POINTER(ModelOptions), _handle_p]),
    "fx_model_load_memory": (_status, [ctypes.c_void_p, _size, ctypes.POINTER(ModelOptions), _handle_p]),
    "fx_model_free": (None, [_handle]),
    "fx_model_device": (_str, [_handle]),
    "fx_model_input_size": (_status, [_handle, c_uint32_p, c_uint32_p, c_uint32_p]),
    "fx_model_class_count": (_u32, [_handle]),
    "fx_model_result_class_count": (_u32, [_handle]),
    "fx_model_class_name": (_str, [_handle, _u32]),
    "fx_model_positive_class": (_i32, [_handle]),
    "fx_model_normalization": (_status, [_handle, c_float_p, c_float_p]),
    "fx_model_default_layer": (_str, [_handle]),
    "fx_model_layer_count": (_size, [_handle]),
    "fx_model_layer": (_status, [_handle, _size, ctypes.POINTER(LayerInfoC)]),
    "fx_gradcam_options_init": (None, [ctypes.POINTER(GradcamOptions)]),
    "fx_gradcam_compute": (_status, [_handle, _img_p, _size, ctypes.POINTER(GradcamOptions), _handle_p]),
    "fx_model_predict": (_status, [_handle, _img_p, _size, ctypes.POINTER(GradcamOptions), c_float_p, c_float_p]),
    "fx_result_free": (None, [_handle]),
    "fx_result_count": (_size, [_handle]),
    "fx_result_layer": (_str, [_handle]),
    "fx_result_method_count": (_u32, [_handle]),
    "fx_result_method": (_i32, [_handle, _u32]),
    "fx_result_predicted_class": (_i32, [_handle, _size]),
    "fx_result_confidence": (ctypes.c_float, [_handle, _size]),
    "fx_result_target_class": (_i32, [_handle, _size]),
    "fx_result_probabilities": (c_float_p, [_handle, _size, c_uint32_p]),
    "fx_result_logits": (c_float_p, [_handle, _size, c_uint32_p]),
    "fx_result_heatmap": (_img_p, [_handle, _size, _u32]),
    "fx_result_raw_heatmap": (_img_p, [_handle, _size, _u32]),
    "fx_result_lowres": (_img_p, [_handle, _size, _u32]),
    "fx_result_saliency": (_img_p, [_handle, _size, _u32]),
    "fx_faithfulness_options_init": (None, [ctypes.POINTER(FaithfulnessOptions)]),
    "fx_faithfulness_compute": (_status, [_img_p, _img_p, ScoreBatchCallback, ctypes.c_void_p,
                                          ctypes.POINTER(FaithfulnessOptions), ctypes.POINTER(Faithfulness)]),
    "fx_faithfulness_summarize": (_status, [ctypes.POINTER(Faithfulness), _size,
                                            ctypes.POINTER(FaithfulnessSummary)]),
    "fx_result_seen_region": (_status, [_handle, _size, c_uint32_p, c_uint32_p, c_uint32_p, c_uint32_p]),
    "fx_model_intensity": (_status, [_handle, ctypes.POINTER(Intensity)]),
    "fx_model_resize_mode": (_i32, [_handle, c_uint32_p]),
    "fx_model_output_kind": (_i32, [_handle]),
    "fx_model_warning_count": (_size, [_handle]),
    "fx_model_warning": (_str, [_handle, _size, c_int32_p]),
    "fx_result_warning_count": (_size, [_handle]),
    "fx_result_warning": (_str, [_handle, _size, c_int32_p, ctypes.POINTER(ctypes.c_int64)]),
    "fx_pipeline_options_init": (None, [ctypes.POINTER(PipelineOptions)]),
    "fx_pipeline_run": (_status, [_handle, ctypes.POINTER(ctypes.c_char_p), _size, ctypes.POINTER(PipelineOptions),
                                  PipelineCallback, ctypes.c_void_p]),
}

# Functions added after 0.1.0: bound when the loaded library has them.
OPTIONAL = {"fx_colormap_count", "fx_colormap_at", "fx_model_load_memory", "fx_model_normalization", "fx_model_output_kind", "fx_model_warning_count",
            "fx_model_warning", "fx_result_warning_count", "fx_result_warning",
            "fx_intensity_init", "fx_intensity_name", "fx_intensity_from_name", "fx_image_to_unit",
            "fx_image_to_rgb8_intensity", "fx_resize_mode_name", "fx_resize_mode_from_name", "fx_model_predict",
            "fx_faithfulness_options_init", "fx_faithfulness_compute", "fx_faithfulness_summarize",
            "fx_result_seen_region", "fx_model_intensity", "fx_model_resize_mode",
            "fx_pipeline_options_init", "fx_pipeline_run", "fx_result_saliency"}


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def _installed_libdir():
    """The install's library folder, found from where this package lies now
    and the relative layout recorded at install time."""
    try:
        from . import _install_paths
    except ImportError:
        return None
    here = os.path.dirname(_package_dir())  # the site folder holding fxcam/
    rel = os.path.relpath(_install_paths.LIBDIR, _install_paths.PYTHONDIR)
    return os.path.normpath(os.path.join(here, rel))


def candidates():
    """(description, path-or-name) pairs, in the order they are tried."""
    found = []
    env = os.environ.get("FXCAM_LIBRARY")
    if env:
        found.append(("FXCAM_LIBRARY", env))
    pkg = _package_dir()
    for folder in (pkg, os.path.dirname(pkg)):
        names = sorted(glob.glob(os.path.join(folder, "libfxcam.so*")))
        found.extend(("next to the package", n) for n in names)
        if not names:
            found.append(("next to the package", os.path.join(folder, "libfxcam.so")))
    libdir = _installed_libdir()
    if libdir:
        found.append(("install prefix", os.path.join(libdir, SONAME)))
    system = ctypes.util.find_library("fxcam")
    if system:
        found.append(("ctypes.util.find_library('fxcam')", system))
    found.append(("system loader", SONAME))
    return found


def _load():
    tried = []
    for how, path in candidates():
        is_file = os.sep in path
        if is_file and not os.path.exists(path):
            tried.append(f"  {how}: {path} (no such file)")
            if how == "FXCAM_LIBRARY":
                break  # an explicit choice that is wrong must not be papered over
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"  {how}: {path} ({e})")
            if how == "FXCAM_LIBRARY":
                break
    raise ImportError("fxcam: cannot load libfxcam; looked in:\n" + "\n".join(tried) +
                      "\nSet FXCAM_LIBRARY to the path of libfxcam.so, or install fxcam (meson install).")


def _declare(lib):
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if name in OPTIONAL:
                continue
            raise ImportError(f"fxcam: {lib._name} has no symbol {name}: the library is older than these "
                              f"bindings ({'.'.join(map(str, BINDINGS_VERSION))})") from None
        fn.restype = restype
        fn.argtypes = argtypes


def _check_version(lib, path):
    number = lib.fx_version()
    major, minor, patch = number // 10000, number // 100 % 100, number % 100
    if major != BINDINGS_VERSION[0] or (major, minor, patch) < BINDINGS_VERSION:
        raise ImportError(f"fxcam: {path} is version {major}.{minor}.{patch}; these bindings need "
                          f"{BINDINGS_VERSION[0]}.x, at least {'.'.join(map(str, BINDINGS_VERSION))}")
    return (major, minor, patch)


lib, path = _load()
_declare(lib)
version = _check_version(lib, path)


def has(name):
    """Whether the loaded library has an optional function."""
    return hasattr(lib, name)


def check(status):
    """Raises the FxError subclass of a status with the thread's message."""
    if status != FX_OK:
        message = lib.fx_last_error().decode("utf-8", "replace")
        name = lib.fx_status_str(status).decode("ascii", "replace")
        raise error_for(status, name, message)


__all__ = ["lib", "path", "version", "check", "has", "FxError"]
