"""PyTorch modules to TorchScript archives with fxcam.json (docs/model-format.md).

The one implementation of saving a model for fxcam: Model.from_module() uses it
in memory, python/fxcam_save_model.py loads this file to write archives to disk.
It needs torch, and nothing of libfxcam (so the script runs without it).
"""
import contextlib
import io
import json


def make_metadata(input_size=None, channels=None, mean=None, std=None, class_names=None, positive_class=None,
                  target_layer=None):
    """The fxcam.json object; keys left as None are omitted (fxcam then uses its defaults).
    input_size is (height, width), as in fxcam.json."""
    meta = {}
    if input_size is not None:
        h, w = (int(v) for v in input_size)
        meta["input_size"] = [h, w]
    if channels is not None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        meta["channels"] = int(channels)
    for key, values in (("mean", mean), ("std", std)):
        if values is not None:
            values = [float(v) for v in values]
            expected = meta.get("channels")
            if expected is not None and len(values) != expected:
                raise ValueError(f"{key} has {len(values)} values but the model takes {expected} channels")
            if len(values) not in (1, 3):
                raise ValueError(f"{key} needs 1 or 3 values (one per input channel), got {len(values)}")
            meta[key] = values
    if class_names is not None:
        meta["class_names"] = [str(c) for c in class_names]
    if positive_class is not None:
        meta["positive_class"] = int(positive_class)
    if target_layer is not None:
        meta["target_layer"] = str(target_layer)
    return meta


@contextlib.contextmanager
def eval_mode(module):
    """module.eval() for the block, then every submodule's own training flag
    back as it was (a model may keep, e.g., frozen BatchNorm layers in eval
    while the rest trains, so one module.train(old) would not restore it)."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags:
            m.training = training


def to_torchscript(module, example_input=None, script=False):
    """A ScriptModule of `module` as it computes at inference: traced with
    example_input (default) or scripted, in eval mode and without gradients.
    A ScriptModule is returned as it is."""
    import torch
    if isinstance(module, torch.jit.ScriptModule):
        return module
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, not {type(module).__name__}")
    with eval_mode(module), torch.no_grad():
        if script:
            return torch.jit.script(module)
        if example_input is None:
            raise ValueError("tracing needs an example_input tensor [1, channels, height, width]")
        return torch.jit.trace(module, example_input, check_trace=False)


def _input_shape(example_input):
    import torch
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        shape = tuple(example_input.shape) if isinstance(example_input, torch.Tensor) else type(example_input).__name__
        raise ValueError(f"example_input must be a tensor [batch, channels, height, width], got {shape}")
    _, channels, height, width = example_input.shape
    return int(channels), int(height), int(width)


def archive_bytes(module, example_input, script=False, **metadata):
    """The TorchScript archive of `module` (bytes) with fxcam.json; input size
    and channels are the example input's, the other keys as make_metadata()."""
    import torch
    channels, height, width = _input_shape(example_input)
    meta = make_metadata(input_size=(height, width), channels=channels, **metadata)
    scripted = to_torchscript(module, example_input, script)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer, _extra_files={"fxcam.json": json.dumps(meta)})
    return buffer.getvalue()
