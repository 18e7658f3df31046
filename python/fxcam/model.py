"""TorchScript models (fx_model_*)."""
import collections
import ctypes
import math
import os
import tempfile

from . import _lib
from ._arrays import HAVE_NUMPY, describe_batch, fspath_bytes, is_path, np
from ._lib import (LAYER_MAX_RANK, MODEL_OPTIONS_V1_SIZE, OUTPUT_AUTO, OUTPUT_LOGITS, OUTPUT_PROBABILITIES,
                   GradcamOptions, Intensity, LayerInfoC, ModelOptions, check, lib)
from .errors import FxcamWarning, NotAvailableError, emit_warnings

OUTPUT_KINDS = {"auto": OUTPUT_AUTO, "logits": OUTPUT_LOGITS, "probabilities": OUTPUT_PROBABILITIES}

DEFAULT_MODEL_NAME = "fracture_densenet.pt"

LayerInfo = collections.namedtuple("LayerInfo", "name type shape is_feature_map")
LayerInfo.__doc__ = """One submodule: dotted name, class name, output shape for one image at
the model's input size (() when forward does not call it), and whether it is
a valid Grad-CAM target (4-D output)."""


def default_model_candidates():
    """Where Model(None) looks for the default fracture model, in order."""
    places = []
    env = os.environ.get("FXCAM_MODEL")
    if env:
        places.append(env)
    pkg = os.path.dirname(os.path.abspath(__file__))
    places.append(os.path.join(pkg, "models", DEFAULT_MODEL_NAME))
    try:
        from . import _install_paths
        site = os.path.dirname(pkg)
        rel = os.path.relpath(_install_paths.DATADIR, _install_paths.PYTHONDIR)
        places.append(os.path.normpath(os.path.join(site, rel, "fxcam", DEFAULT_MODEL_NAME)))
    except ImportError:
        pass
    libdir = os.path.dirname(os.path.abspath(_lib.path)) if os.sep in _lib.path else None
    if libdir:
        for up in ("..", os.path.join("..", "..")):
            places.append(os.path.normpath(os.path.join(libdir, up, "share", "fxcam", DEFAULT_MODEL_NAME)))
    places += [os.path.join(p, "share", "fxcam", DEFAULT_MODEL_NAME) for p in ("/usr/local", "/usr")]
    # A source checkout: python/fxcam/ next to models/.
    places.append(os.path.normpath(os.path.join(pkg, "..", "..", "models", DEFAULT_MODEL_NAME)))
    unique = []
    for p in places:
        if p not in unique:
            unique.append(p)
    return unique


def default_model_path():
    places = default_model_candidates()
    for p in places:
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"fxcam: the default model {DEFAULT_MODEL_NAME} was not found; looked in:\n  " +
                            "\n  ".join(places) + "\nGive a model path, or set FXCAM_MODEL.")


class _ModelHandle:
    def __init__(self):
        self.ptr = ctypes.c_void_p()
        self._free = lib.fx_model_free

    def __del__(self):
        if self.ptr:
            self._free(self.ptr)
            self.ptr = ctypes.c_void_p()


def _floats(values, name):
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of numbers, not {type(values).__name__}")
    try:
        values = [float(v) for v in values]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of numbers") from None
    return values


def _per_channel(values, name, channels):
    """A ctypes float array of one value per input channel; a wrong count is
    refused here (the library also checks it, through mean_count/std_count),
    never padded or cut."""
    if values is None:
        return None
    if len(values) != channels:
        raise ValueError(f"{name} has {len(values)} value{'s' if len(values) != 1 else ''} but the model takes "
                         f"{channels} input channel{'s' if channels != 1 else ''}: give {channels} "
                         f"(one per channel{', e.g. [0.485, 0.456, 0.406] for ImageNet' if channels == 3 else ''})")
    return (ctypes.c_float * channels)(*values)


def _output_kind(value):
    if value not in OUTPUT_KINDS:
        raise ValueError(f"output_kind must be one of {', '.join(map(repr, OUTPUT_KINDS))}, not {value!r}")
    return OUTPUT_KINDS[value]


def _metadata_channels(path, data):
    """The "channels" of the archive's fxcam.json (a TorchScript archive is a
    zip file holding <name>/extra/fxcam.json): 0 when the archive has no
    fxcam.json or it has no "channels", None when unreadable or invalid (the
    library then says what is wrong)."""
    import io
    import json
    import zipfile
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/extra/fxcam.json") and n.count("/") == 2]
            if len(names) > 1:
                return None
            value = json.loads(archive.read(names[0])).get("channels", 0) if names else 0
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError, RecursionError):
        return None
    return value if value in (0, 1, 3) and not isinstance(value, bool) else None


def _input_channels(path, data, channels):
    """Channels the load will use: the option, else fxcam.json's, else 3
    (docs/model-format.md); None when that cannot be told here (the library
    checks the counts it is given and names the problem)."""
    if channels is not None:
        return int(channels) if channels in (1, 3) else None
    found = _metadata_channels(path, data)
    return None if found is None else found or 3


# Limits the library enforces (lib/engine.c; CLI cli/args.c); checked here too
# so that the message names the Python argument.
_MIN_INPUT_SIDE, _MAX_INPUT_SIDE = 2, 16384
_MAX_CLASS_NAMES, _MAX_CLASS_NAME_BYTES = 256, 255


def _int_in(value, name, low, high, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int ({what}), not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def _pair(value, name, meaning):
    """A 2-sequence (tuple, list, array), refusing str/bytes and scalars."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair {meaning}, got {value!r}")
    return tuple(value)


def _input_size(value):
    if value is None:
        return None
    height, width = _pair(value, "input_size", "(height, width)")
    what = f"{_MIN_INPUT_SIDE}..{_MAX_INPUT_SIDE} pixels"
    return (_int_in(height, "input_size height", _MIN_INPUT_SIDE, _MAX_INPUT_SIDE, what),
            _int_in(width, "input_size width", _MIN_INPUT_SIDE, _MAX_INPUT_SIDE, what))


def _name_to_id(value, name, parse, valid):
    """A library enum from its name (parse: the name of fx_*_from_name)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {valid}, not {type(value).__name__}")
    if not _lib.has(parse):
        raise NotAvailableError(f"{name}=: {_lib.path} predates it (fxcam 0.2); upgrade the library", -11,
                                "FX_ERR_NOT_AVAILABLE")
    out = ctypes.c_int32()
    if getattr(lib, parse)(value.encode("utf-8"), ctypes.byref(out)) != 0:
        raise ValueError(f"{name}={value!r} is unknown; valid: {valid}")
    return out.value


_INTENSITY_NAMES = "'auto', 'container', 'bits', 'minmax', 'window'"
_RESIZE_NAMES = "'stretch', 'stretch-antialias', 'letterbox', 'shorter-side-crop'"


def _window(value):
    if value is None:
        return None
    center, width = _pair(value, "window", "(center, width) in the image's sample units")
    try:
        center, width = float(center), float(width)
    except (TypeError, ValueError):
        raise TypeError(f"window must be two numbers (center, width), got {value!r}") from None
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise ValueError(f"window=(center, width) needs a finite center and a width > 0 (in the image's sample "
                         f"units: 0..255 or 0..65535, e.g. (2048, 4096) for 12-bit data), got ({center}, {width})")
    return center, width


def _class_names(value):
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise TypeError("class_names must be a sequence of str, one per class (e.g. ['normal', 'fracture']), "
                        "not a single string")
    names = list(value)
    if not 1 <= len(names) <= _MAX_CLASS_NAMES:
        raise ValueError(f"class_names must hold 1..{_MAX_CLASS_NAMES} names, got {len(names)}")
    for k, n in enumerate(names):
        if not isinstance(n, str):
            raise TypeError(f"class_names[{k}] must be a str, not {type(n).__name__}")
        if not n or len(n.encode("utf-8")) > _MAX_CLASS_NAME_BYTES or "\0" in n:
            raise ValueError(f"class_names[{k}] = {n!r}: every class needs a name of 1..{_MAX_CLASS_NAME_BYTES} "
                             f"UTF-8 bytes without NUL")
    return names


class _TrainingOptions:
    """The arguments that say how the model was trained, checked once here
    (names, types, ranges, combinations), then written into fx_model_options."""

    def __init__(self, input_size, channels, intensity, bits_stored, window, resize_mode, resize_size, class_names):
        self.input_size = _input_size(input_size)
        self.channels = None if channels is None else _int_in(channels, "channels", 1, 3, "1 or 3")
        if self.channels == 2:
            raise ValueError("channels must be 1 or 3, got 2")
        self.intensity = None if intensity is None else _name_to_id(intensity, "intensity",
                                                                     "fx_intensity_from_name", _INTENSITY_NAMES)
        self.bits_stored = None if bits_stored is None else _int_in(bits_stored, "bits_stored", 1, 16, "1..16")
        self.window = _window(window)
        self.resize_mode = None if resize_mode is None else _name_to_id(resize_mode, "resize_mode",
                                                                         "fx_resize_mode_from_name", _RESIZE_NAMES)
        if self.resize_mode == _lib.RESIZE_DEFAULT:
            raise ValueError(f"resize_mode={resize_mode!r}: give one of {_RESIZE_NAMES} (None = the metadata's)")
        self.resize_size = None if resize_size is None else _int_in(resize_size, "resize_size", 1, _MAX_INPUT_SIDE,
                                                                     f"1..{_MAX_INPUT_SIDE} pixels")
        if self.resize_size is not None and self.resize_mode not in (None, _lib.RESIZE_SHORTER_SIDE_CROP):
            raise ValueError(f"resize_size={resize_size} applies to resize_mode='shorter-side-crop' only, not "
                             f"{resize_mode!r}")
        self.class_names = _class_names(class_names)
        self._check_intensity(intensity, bits_stored, window)

    def _check_intensity(self, intensity, bits_stored, window):
        auto = (None, _lib.INTENSITY_AUTO)
        if self.bits_stored is not None and self.intensity not in auto + (_lib.INTENSITY_BITS,):
            raise ValueError(f"bits_stored={bits_stored} applies to intensity 'bits' (or None/'auto'), not "
                             f"{intensity!r}")
        if self.window is not None and self.intensity not in auto + (_lib.INTENSITY_WINDOW,):
            raise ValueError(f"window={window!r} applies to intensity 'window' (or None/'auto'), not {intensity!r}")
        if self.window is not None and self.bits_stored is not None:
            raise ValueError("give either window=(center, width) or bits_stored, not both: a window reads the "
                             "samples in their own units")

    def given(self):
        return any(v is not None for v in (self.intensity, self.bits_stored, self.window, self.resize_mode,
                                           self.resize_size, self.class_names))

    def apply(self, opts):
        """Writes the options into opts; returns what must stay alive during the load."""
        if self.input_size is not None:
            opts.input_height, opts.input_width = self.input_size
        if self.channels is not None:
            opts.input_channels = self.channels
        if self.intensity is not None:
            opts.intensity = self.intensity
        if self.bits_stored is not None:
            opts.bits_stored = self.bits_stored
        if self.window is not None:
            opts.window_center, opts.window_width = self.window
        if self.resize_mode is not None:
            opts.resize_mode = self.resize_mode
        if self.resize_size is not None:
            opts.resize_size = self.resize_size
        if self.class_names is None:
            return None
        names = (ctypes.c_char_p * len(self.class_names))(*[n.encode("utf-8") for n in self.class_names])
        opts.class_names = ctypes.cast(names, ctypes.POINTER(ctypes.c_char_p))
        opts.class_name_count = len(self.class_names)
        return names


def _rows(values, n, width):
    """n x width float32 array (lists without NumPy) from a flat ctypes array."""
    if HAVE_NUMPY:
        return np.ctypeslib.as_array(values).reshape(n, width).copy()
    return [list(values[k * width:(k + 1) * width]) for k in range(n)]


class Model:
    """A TorchScript classifier loaded by libfxcam.

    Model(path=None, device="auto", threads=-1): path None loads the default
    fracture model (see default_model_candidates()). device: "auto", "cpu",
    "cuda" or "cuda:N". threads: libtorch's CPU thread count, a setting of the
    whole process; -1 (default) leaves it as the process has it (so a PyTorch
    training loop in the same process keeps its torch.set_num_threads()),
    0 = all CPUs, n >= 1 = n. output_kind: "auto" (decided at load from the
    graph, the metadata, then the output's values), "logits" or
    "probabilities" (the model ends in softmax/sigmoid). strict=True turns
    load warnings that make results unreliable (a model traced in training
    mode) into a ModelError. Load warnings are raised as fxcam.FxcamWarning
    and kept in .warnings.

    How the model was trained (each overrides the fxcam.json key of the same
    name and has the CLI option of the same name; None = the metadata's,
    else fxcam's default; docs/model-format.md):
      input_size=(height, width)  model input, each 2..16384 (--input-size HxW)
      channels=1 or 3             model input channels (--channels)
      mean=, std=                 one value per input channel, std > 0 (--mean, --std)
      class_names=[...]           one name per result class (--class-names)
      intensity=                  "auto", "container", "bits", "minmax" or "window" (--intensity)
      bits_stored=1..16           samples read as v / (2^bits - 1) (--bits); with intensity
                                  None, "auto" or "bits"
      window=(center, width)      v -> (v - (center - width/2)) / width clipped to [0, 1], in
                                  the image's sample units, width > 0 (--window C,W); with
                                  intensity None, "auto" or "window"
      resize_mode=                "stretch", "stretch-antialias", "letterbox" or
                                  "shorter-side-crop" (--resize-mode)
      resize_size=N               shorter side before the center crop (--resize-size); only
                                  with the shorter-side-crop mode
    The decided values are properties: input_size, channels, mean, std,
    class_names, intensity, bits_stored, window, resize_mode, resize_size.
    Sizes are (height, width) everywhere in fxcam's Python API.
    """

    def __init__(self, path=None, device="auto", threads=-1, input_size=None, channels=None, mean=None,
                 std=None, output_kind="auto", strict=False, intensity=None, bits_stored=None, window=None,
                 resize_mode=None, resize_size=None, class_names=None, _data=None):
        if path is None and _data is None:
            path = default_model_path()
        if path is not None and not is_path(path):
            raise TypeError(f"model path must be a str, bytes or os.PathLike (or None for the default model), "
                            f"not {type(path).__name__}")
        if not isinstance(device, str):
            raise TypeError(f"device must be a str such as 'auto', 'cpu' or 'cuda:0', not {type(device).__name__}")
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError(f"threads must be an int, not {type(threads).__name__}")
        if threads < -1:
            raise ValueError(f"threads must be -1 (leave the process's setting), 0 (all CPUs) or >= 1, "
                             f"got {threads}")
        _output_kind(output_kind)
        training = _TrainingOptions(input_size, channels, intensity, bits_stored, window, resize_mode, resize_size,
                                    class_names)
        mean, std = _floats(mean, "mean"), _floats(std, "std")
        if std is not None and not all(v > 0 for v in std):
            raise ValueError(f"std must be > 0 for every channel, got {std}")
        if mean is not None or std is not None:
            count = _input_channels(path, _data, training.channels)
            if count is not None:
                _per_channel(mean, "mean", count)
                _per_channel(std, "std", count)
        self._load(path, _data, device, threads, training, mean, std, output_kind, strict)
        if training.resize_size and self.resize_mode != "shorter-side-crop":
            mode = self.resize_mode
            self.close()
            raise ValueError(f"resize_size={training.resize_size} applies to resize_mode='shorter-side-crop' only; "
                             f"this model resizes by {mode!r} (give resize_mode='shorter-side-crop' or drop "
                             f"resize_size)")
        if training.bits_stored is not None and self.intensity not in ("auto", "bits"):
            rule = self.intensity
            self.close()
            raise ValueError(f"bits_stored={training.bits_stored} applies to intensity 'bits' or 'auto'; this model's "
                             f"fxcam.json says {rule!r}, which would ignore it (give intensity='bits' or drop "
                             f"bits_stored)")

    def _load(self, path, data, device, threads, training, mean, std, output_kind, strict):
        opts = ModelOptions()
        lib.fx_model_options_init(ctypes.byref(opts))
        if not _lib.has("fx_model_output_kind"):
            if training.given():
                raise NotAvailableError(f"{_lib.path} predates the training options (intensity, resize, "
                                        f"class_names: fxcam 0.2); upgrade it", -11, "FX_ERR_NOT_AVAILABLE")
            opts.struct_size = MODEL_OPTIONS_V1_SIZE  # a 0.1 library: the fields it knows
        opts.device = device.encode("utf-8")
        opts.threads = threads if threads < 2 ** 31 else 2 ** 31 - 1  # the library reports the range
        self._keep = training.apply(opts)  # buffers the library reads during the load
        self._mean = None if mean is None else (ctypes.c_float * len(mean))(*mean)  # kept alive during the load
        self._std = None if std is None else (ctypes.c_float * len(std))(*std)
        opts.mean, opts.std = self._mean, self._std
        opts.mean_count = 0 if mean is None else len(mean)
        opts.std_count = 0 if std is None else len(std)
        opts.output_kind = _output_kind(output_kind)
        opts.strict = 1 if strict else 0
        self._handle = _ModelHandle()
        if data is not None:
            self.path = None
            self._load_bytes(data, opts)
        else:
            self.path = os.fsdecode(path)
            check(lib.fx_model_load(fspath_bytes(path, "model path"), ctypes.byref(opts),
                                    ctypes.byref(self._handle.ptr)))
        self.warnings = self._read_warnings()
        emit_warnings(self.warnings)

    def _read_warnings(self):
        if not _lib.has("fx_model_warning_count"):
            return []
        found = []
        for k in range(lib.fx_model_warning_count(self._handle.ptr)):
            code = ctypes.c_int32()
            text = lib.fx_model_warning(self._handle.ptr, k, ctypes.byref(code))
            if text is not None:
                found.append(FxcamWarning(text.decode("utf-8", "replace"), code.value))
        return found

    def _load_bytes(self, data, opts):
        if _lib.has("fx_model_load_memory"):
            check(lib.fx_model_load_memory(data, len(data), ctypes.byref(opts), ctypes.byref(self._handle.ptr)))
            return
        # Older library: go through a temporary file.
        fd, tmp = tempfile.mkstemp(suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            check(lib.fx_model_load(os.fsencode(tmp), ctypes.byref(opts), ctypes.byref(self._handle.ptr)))
        finally:
            os.unlink(tmp)

    @classmethod
    def from_bytes(cls, data, device="auto", threads=-1, **options):
        """Loads a TorchScript archive held in memory."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        return cls(None, device, threads, _data=bytes(data), **options)

    @classmethod
    def from_module(cls, module, example_input, device="auto", threads=-1, script=False, class_names=None,
                    positive_class=None, target_layer=None, mean=None, std=None, **options):
        """A Model of a PyTorch nn.Module, traced (script=True: scripted) in
        memory, e.g. once per epoch during training to watch the maps change.

        example_input: a tensor [1, C, H, W] as the model takes it; its size
        gives the input size and channel count. The module is put in eval mode
        for the trace (BatchNorm/Dropout as at inference) and each submodule's
        training flag is restored afterwards; its parameters are not changed.
        mean/std are what fxcam normalizes images with (give the ones your
        transforms use; default ImageNet for 3 channels, 0.5 for 1). Other
        options as Model()."""
        from ._export import archive_bytes
        data = archive_bytes(module, example_input, script=script, class_names=class_names,
                             positive_class=positive_class, target_layer=target_layer, mean=mean, std=std)
        return cls(None, device, threads, _data=data, **options)

    @property
    def handle(self):
        """The fx_model pointer (raises when the model was closed)."""
        if not self._handle.ptr:
            raise ValueError("this fxcam.Model was closed")
        return self._handle.ptr

    def close(self):
        """Releases the model now (also done when it is garbage-collected)."""
        self._handle.__del__()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def device(self):
        return lib.fx_model_device(self.handle).decode()

    @property
    def input_size(self):
        """(height, width) of the model input (as torch's [N, C, H, W] and
        fxcam.json's "input_size")."""
        w, h = ctypes.c_uint32(), ctypes.c_uint32()
        check(lib.fx_model_input_size(self.handle, ctypes.byref(w), ctypes.byref(h), None))
        return (h.value, w.value)

    @property
    def channels(self):
        c = ctypes.c_uint32()
        check(lib.fx_model_input_size(self.handle, None, None, ctypes.byref(c)))
        return c.value

    @property
    def logit_count(self):
        return lib.fx_model_class_count(self.handle)

    @property
    def class_names(self):
        """Names of the result classes (2 for a single-logit model)."""
        n = lib.fx_model_result_class_count(self.handle)
        return [lib.fx_model_class_name(self.handle, i).decode("utf-8", "replace") for i in range(n)]

    @property
    def positive_class(self):
        """Index of the class of interest from the metadata, or None."""
        value = lib.fx_model_positive_class(self.handle)
        return None if value < 0 else value

    @property
    def normalization(self):
        """(mean, std) lists used for preprocessing, one value per channel."""
        if not _lib.has("fx_model_normalization"):
            raise NotImplementedError(f"{_lib.path} has no fx_model_normalization (added after 0.1.0)")
        mean, std = (ctypes.c_float * 3)(), (ctypes.c_float * 3)()
        check(lib.fx_model_normalization(self.handle, mean, std))
        n = self.channels
        return list(mean[:n]), list(std[:n])

    @property
    def mean(self):
        """Normalization mean, one value per input channel."""
        return self.normalization[0]

    @property
    def std(self):
        """Normalization std, one value per input channel."""
        return self.normalization[1]

    def _intensity_rule(self):
        if not _lib.has("fx_model_intensity"):
            raise NotImplementedError(f"{_lib.path} has no fx_model_intensity (added in 0.2)")
        rule = Intensity()
        rule.struct_size = ctypes.sizeof(Intensity)
        check(lib.fx_model_intensity(self.handle, ctypes.byref(rule)))
        return rule

    @property
    def intensity(self):
        """How samples are read to [0, 1]: "auto" (bits stored when the file
        says, e.g. a PNG sBIT chunk, else the container: /255, /65535),
        "container", "bits", "minmax" or "window" (docs/algorithms.md)."""
        mode = self._intensity_rule().mode
        name = lib.fx_intensity_name(mode)
        return name.decode() if name is not None else str(mode)

    @property
    def bits_stored(self):
        """The bits the "auto"/"bits" rules divide by (v / (2^bits - 1)), or
        None: the image's (fx_image_info), else its container's."""
        return self._intensity_rule().bits_stored or None

    @property
    def window(self):
        """(center, width) of the "window" rule, in sample units; None for the other rules."""
        rule = self._intensity_rule()
        return (rule.window_center, rule.window_width) if rule.mode == _lib.INTENSITY_WINDOW else None

    def _resize(self):
        if not _lib.has("fx_model_resize_mode"):
            raise NotImplementedError(f"{_lib.path} has no fx_model_resize_mode (added in 0.2)")
        size = ctypes.c_uint32()
        mode = lib.fx_model_resize_mode(self.handle, ctypes.byref(size))
        name = lib.fx_resize_mode_name(mode)
        return (name.decode() if name is not None else str(mode)), size.value

    @property
    def resize_mode(self):
        """"stretch", "stretch-antialias", "letterbox" or "shorter-side-crop"."""
        return self._resize()[0]

    @property
    def resize_size(self):
        """The shorter side before the center crop of "shorter-side-crop"
        (torchvision Resize(resize_size)); None for the other modes."""
        return self._resize()[1] or None

    @property
    def output_kind(self):
        """"logits" or "probabilities": what the model's output was taken to
        be at load (see Model(output_kind=...))."""
        if not _lib.has("fx_model_output_kind"):
            return "logits"  # a 0.1 library always read the output as logits
        value = lib.fx_model_output_kind(self.handle)
        return {v: k for k, v in OUTPUT_KINDS.items()}.get(value, str(value))

    @property
    def default_layer(self):
        name = lib.fx_model_default_layer(self.handle)
        return None if name is None else name.decode("utf-8", "replace")

    @property
    def layers(self):
        """Every submodule as a LayerInfo, in definition order."""
        result = []
        for i in range(lib.fx_model_layer_count(self.handle)):
            info = LayerInfoC()
            info.struct_size = ctypes.sizeof(LayerInfoC)
            check(lib.fx_model_layer(self.handle, i, ctypes.byref(info)))
            shape = tuple(info.shape[k] for k in range(min(info.rank, LAYER_MAX_RANK)))
            result.append(LayerInfo(info.name.decode("utf-8", "replace"), info.type.decode("utf-8", "replace"),
                                    shape, bool(info.is_feature_map)))
        return result

    def predict(self, images, batch_size=0, channel_order="rgb", layout=None, return_logits=False):
        """Class probabilities for a list of images, forward passes only
        (fx_model_predict): each image preprocessed as GradCAM does (files
        with their bits stored), the numbers equal to CamResult.probabilities().
        Returns an n x len(class_names) float32 array (nested lists without
        NumPy); return_logits=True returns (probabilities, logits), the
        logits n x logit_count."""
        if not _lib.has("fx_model_predict"):
            raise NotAvailableError(f"{_lib.path} has no fx_model_predict (added in 0.2)", -11,
                                    "FX_ERR_NOT_AVAILABLE")
        if HAVE_NUMPY and isinstance(images, np.ndarray):
            raise TypeError("images must be a list of images, e.g. [array]: a single array's first axis is not "
                            "read as a batch (is it HxWxC or NxHxW?)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 0 <= batch_size < 2 ** 32:
            raise ValueError(f"batch_size must be an int >= 0 (0 = 8), got {batch_size!r}")
        inputs, array, infos = describe_batch(images, layout=layout, channel_order=channel_order)
        opts = GradcamOptions()
        lib.fx_gradcam_options_init(ctypes.byref(opts))
        opts.batch_size = batch_size
        if infos is not None:
            opts.image_info = infos
        n, classes, logit_count = len(inputs), lib.fx_model_result_class_count(self.handle), self.logit_count
        probabilities = (ctypes.c_float * (n * classes))()
        logits = (ctypes.c_float * (n * logit_count))()
        check(lib.fx_model_predict(self.handle, array, n, ctypes.byref(opts), probabilities, logits))
        probabilities, logits = _rows(probabilities, n, classes), _rows(logits, n, logit_count)
        return (probabilities, logits) if return_logits else probabilities

    def class_index(self, target):
        """A class index from an index or a class name."""
        if isinstance(target, str):
            names = self.class_names
            if target not in names:
                raise ValueError(f"class {target!r} is not one of the model's classes: {', '.join(names)}")
            return names.index(target)
        if isinstance(target, bool) or not isinstance(target, int):
            raise TypeError(f"target_class must be an int, a class name or None, not {type(target).__name__}")
        if not 0 <= target < 2 ** 31:
            raise ValueError(f"target_class must be a class index 0..{len(self.class_names) - 1}, got {target}")
        return target  # the library checks the upper bound

    def __repr__(self):
        if not self._handle.ptr:
            return "<fxcam.Model closed>"
        h, w = self.input_size
        return (f"<fxcam.Model {self.path or '(from memory)'} on {self.device}, input {h}x{w}x{self.channels} "
                f"(HxWxC), "
                f"classes {self.class_names}>")


def list_layers(model, feature_maps_only=False):
    """The layers of a Model (or of the model at a path): LayerInfo tuples."""
    if is_path(model):
        model = Model(model)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a fxcam.Model or a path, not {type(model).__name__}")
    layers = model.layers
    return [l for l in layers if l.is_feature_map] if feature_maps_only else layers
