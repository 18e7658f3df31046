"""TorchScript models (fx_model_*)."""
import collections
import ctypes
import os
import tempfile

from . import _lib
from ._arrays import fspath_bytes, is_path
from ._lib import (LAYER_MAX_RANK, MODEL_OPTIONS_V1_SIZE, OUTPUT_AUTO, OUTPUT_LOGITS, OUTPUT_PROBABILITIES,
                   LayerInfoC, ModelOptions, check, lib)
from .errors import FxcamWarning, emit_warnings

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


class Model:
    """A TorchScript classifier loaded by libfxcam.

    Model(path=None, device="auto", threads=-1): path None loads the default
    fracture model (see default_model_candidates()). device: "auto", "cpu",
    "cuda" or "cuda:N". threads: libtorch's CPU thread count, a setting of the
    whole process; -1 (default) leaves it as the process has it (so a PyTorch
    training loop in the same process keeps its torch.set_num_threads()),
    0 = all CPUs, n >= 1 = n. input_size=(width, height), channels (1 or 3),
    mean and std (one value per channel) override the model's fxcam.json
    metadata. output_kind: "auto" (decided at load from the graph, the
    metadata, then the output's values), "logits" or "probabilities" (the
    model ends in softmax/sigmoid). strict=True turns load warnings that make
    results unreliable (a model traced in training mode) into a ModelError.
    Load warnings are raised as fxcam.FxcamWarning and kept in .warnings.
    """

    def __init__(self, path=None, device="auto", threads=-1, input_size=None, channels=None, mean=None,
                 std=None, output_kind="auto", strict=False, _data=None):
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
        if input_size is not None:
            try:
                width, height = (int(v) for v in input_size)
            except (TypeError, ValueError):
                raise TypeError("input_size must be (width, height)") from None
            if width <= 0 or height <= 0:
                raise ValueError(f"input_size must be positive, got {width}x{height}")
            input_size = (width, height)
        _output_kind(output_kind)
        mean, std = _floats(mean, "mean"), _floats(std, "std")
        if mean is not None or std is not None:
            count = _input_channels(path, _data, channels)
            if count is not None:
                _per_channel(mean, "mean", count)
                _per_channel(std, "std", count)
        self._load(path, _data, device, threads, input_size, channels, mean, std, output_kind, strict)

    def _load(self, path, data, device, threads, input_size, channels, mean, std, output_kind, strict):
        opts = ModelOptions()
        lib.fx_model_options_init(ctypes.byref(opts))
        if not _lib.has("fx_model_output_kind"):
            opts.struct_size = MODEL_OPTIONS_V1_SIZE  # a 0.1 library: the fields it knows
        opts.device = device.encode("utf-8")
        opts.threads = threads if threads < 2 ** 31 else 2 ** 31 - 1  # the library reports the range
        if input_size is not None:
            opts.input_width, opts.input_height = input_size
        if channels is not None:
            opts.input_channels = int(channels)
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
        """(width, height) images are resized to."""
        w, h = ctypes.c_uint32(), ctypes.c_uint32()
        check(lib.fx_model_input_size(self.handle, ctypes.byref(w), ctypes.byref(h), None))
        return (w.value, h.value)

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
        w, h = self.input_size
        return (f"<fxcam.Model {self.path or '(from memory)'} on {self.device}, {w}x{h}x{self.channels}, "
                f"classes {self.class_names}>")


def list_layers(model, feature_maps_only=False):
    """The layers of a Model (or of the model at a path): LayerInfo tuples."""
    if is_path(model):
        model = Model(model)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a fxcam.Model or a path, not {type(model).__name__}")
    layers = model.layers
    return [l for l in layers if l.is_feature_map] if feature_maps_only else layers
