#!/usr/bin/env python3
"""Save a PyTorch classifier as a TorchScript archive that carries its own
preprocessing for fxcam (the fxcam.json extra file, docs/model-format.md).

As a module:
    from fxcam_save_model import save_model
    save_model(model, "fracture.pt", input_size=(224, 224), channels=3,
               mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
               class_names=["normal", "fracture"], positive_class=1,
               target_layer="features", script=False)

From the shell, re-save an existing TorchScript file with metadata:
    fxcam_save_model.py in.pt out.pt --input-size 224 224 --class-names normal fracture \
        --positive-class 1 --target-layer features
"""
import argparse
import importlib.util
import json
import os

import torch


def _export_path():
    """fxcam/_export.py next to this script (the source tree), else in the
    installed fxcam package (the `fxcam-export` command that meson installs
    into bin/): found with find_spec, which locates the package without
    running its __init__ (that would load libfxcam)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fxcam", "_export.py")
    if os.path.isfile(here):
        return here
    spec = importlib.util.find_spec("fxcam")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isfile(os.path.join(folder, "_export.py")):
            return os.path.join(folder, "_export.py")
    raise SystemExit("fxcam-export: cannot find the fxcam package (fxcam/_export.py) next to this script or on "
                     "the Python path; install fxcam (meson install) or set PYTHONPATH to its site-packages")


def _load_export():
    """The one implementation of the metadata and of tracing in eval mode
    (loaded by path, so that this script needs torch only, not libfxcam)."""
    path = _export_path()
    spec = importlib.util.spec_from_file_location("fxcam_export", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_export = _load_export()
make_metadata = _export.make_metadata


def save_model(model, path, script=False, example_input=None, **metadata):
    """Traces (default) or scripts `model` in eval mode and saves it with
    fxcam.json; the model's own training flags are left as they were. A
    torch.jit.ScriptModule is saved as it is."""
    meta = make_metadata(**metadata)
    if not script and example_input is None and not isinstance(model, torch.jit.ScriptModule):
        h, w = meta.get("input_size", [224, 224])
        example_input = torch.zeros(1, meta.get("channels", 3), h, w)
    scripted = _export.to_torchscript(model, example_input, script)
    torch.jit.save(scripted, path, _extra_files={"fxcam.json": json.dumps(meta, indent=2)})
    return meta


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="TorchScript archive to read")
    p.add_argument("output", help="TorchScript archive to write with fxcam.json")
    p.add_argument("--input-size", nargs=2, type=int, metavar=("HEIGHT", "WIDTH"))
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--mean", nargs="+", type=float)
    p.add_argument("--std", nargs="+", type=float)
    p.add_argument("--class-names", nargs="+")
    p.add_argument("--positive-class", type=int)
    p.add_argument("--target-layer")
    a = p.parse_args()
    model = torch.jit.load(a.input, map_location="cpu")
    meta = save_model(model, a.output, input_size=a.input_size, channels=a.channels, mean=a.mean, std=a.std,
                      class_names=a.class_names, positive_class=a.positive_class, target_layer=a.target_layer)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
