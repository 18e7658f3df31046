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
import json

import torch


def make_metadata(input_size=None, channels=None, mean=None, std=None, class_names=None, positive_class=None,
                  target_layer=None):
    """The fxcam.json object; keys left as None are omitted (fxcam then uses its defaults)."""
    meta = {}
    if input_size is not None:
        h, w = (int(v) for v in input_size)
        meta["input_size"] = [h, w]
    if channels is not None:
        if channels not in (1, 3):
            raise ValueError("channels must be 1 or 3")
        meta["channels"] = int(channels)
    for key, values in (("mean", mean), ("std", std)):
        if values is not None:
            values = [float(v) for v in values]
            if len(values) not in (1, 3):
                raise ValueError(f"{key} needs 1 or 3 values")
            meta[key] = values
    if class_names is not None:
        meta["class_names"] = [str(c) for c in class_names]
    if positive_class is not None:
        meta["positive_class"] = int(positive_class)
    if target_layer is not None:
        meta["target_layer"] = str(target_layer)
    return meta


def save_model(model, path, script=False, example_input=None, **metadata):
    """Traces (default) or scripts `model` in eval mode and saves it with fxcam.json.
    A torch.jit.ScriptModule is saved as it is."""
    meta = make_metadata(**metadata)
    if not isinstance(model, torch.jit.ScriptModule):
        model = model.eval()
        if script:
            model = torch.jit.script(model)
        else:
            if example_input is None:
                h, w = meta.get("input_size", [224, 224])
                example_input = torch.zeros(1, meta.get("channels", 3), h, w)
            with torch.no_grad():
                model = torch.jit.trace(model, example_input)
    torch.jit.save(model, path, _extra_files={"fxcam.json": json.dumps(meta, indent=2)})
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
