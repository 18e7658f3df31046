"""fxcam: Grad-CAM heatmaps for TorchScript CNNs, over libfxcam's C API (ctypes).

    import fxcam
    model = fxcam.Model()                    # the default fracture model
    cam = fxcam.GradCAM(model)               # or GradCAMPlusPlus, layer_name="features"
    heatmap, overlay = cam.generate_visualization("xray.png")
    cam.visualize("xray.png", save_path="xray_gradcam.png")
    fxcam.batch_visualize(model, "validation/", "out/")

Images are PNG paths or arrays (NumPy uint8 0..255, uint16 0..65535, float32
in [0, 1]; HxW, HxWxC or CxHxW; channel_order="bgr" for cv2.imread arrays);
without NumPy, nested lists or shaped buffers (see fxcam._arrays). Failing
library calls raise fxcam.FxError subclasses with the library's message;
library warnings are raised as fxcam.FxcamWarning (warnings.warn).
The library is found through FXCAM_LIBRARY, next to the package, the install
prefix, or the system loader (fxcam._lib).
"""
from . import _lib
from ._arrays import HAVE_NUMPY
from ._lib import (WARN_CLIPPED, WARN_DOWNSCALE, WARN_LAYER_1X1, WARN_NARROW_RANGE, WARN_NOT_SEEN,
                   WARN_OUTPUT_KIND, WARN_TRAINING_MODE, WARN_UPSCALE, WARN_ZERO_MAP)
from .batch import batch_visualize
from .cam import CamResult, GradCAM, GradCAMPlusPlus, compute, method_names, method_title, methods
from .errors import (CancelledError, DeviceError, FileError, FormatError, FxError, FxcamWarning, InternalError, InvalidArgumentError,
                     LayerError, LimitError, ModelError, NotAvailableError, NumericError, OutOfMemoryError,
                     UnsupportedError)
from .image import (apply_colormap, colormap_id, colormap_names, colormap_table, colormaps, compare_figure,
                    compose_figure, decode_image, decode_png, load_image, overlay, resize, save_image, to_rgb8)
from .model import LayerInfo, Model, default_model_candidates, default_model_path, list_layers

__version__ = "0.1.0"
library_path = _lib.path


def library_version():
    """Version string of the loaded libfxcam ("MAJOR.MINOR.PATCH")."""
    return _lib.lib.fx_version_string().decode()


__all__ = [
    "Model", "GradCAM", "GradCAMPlusPlus", "CamResult", "LayerInfo", "batch_visualize", "list_layers", "compute",
    "load_image", "save_image", "decode_image", "decode_png", "to_rgb8", "resize", "apply_colormap", "overlay", "compose_figure",
    "compare_figure", "colormap_names", "colormap_table", "colormaps", "colormap_id", "method_names",
    "method_title", "methods",
    "default_model_path", "FxcamWarning", "WARN_TRAINING_MODE", "WARN_OUTPUT_KIND", "WARN_LAYER_1X1",
    "WARN_ZERO_MAP", "WARN_UPSCALE", "WARN_DOWNSCALE", "WARN_NOT_SEEN", "WARN_CLIPPED", "WARN_NARROW_RANGE",
    "default_model_candidates", "library_version", "library_path", "HAVE_NUMPY",
    "FxError", "InvalidArgumentError", "OutOfMemoryError", "FileError", "FormatError", "LimitError",
    "UnsupportedError", "ModelError", "LayerError", "DeviceError", "NumericError", "NotAvailableError",
    "InternalError", "CancelledError",
]
