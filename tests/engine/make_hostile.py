#!/usr/bin/python3
"""Hostile and awkward model archives for tests/engine/test_model_safety.c
(issue 9): a small 3-channel CNN saved with fxcam.json files that a model
downloaded from anywhere may carry. The expected behaviour of each is written
in the test, from docs/model-format.md.

Usage: make_hostile.py OUTPUT_DIR   (writes hostile_*.pt and hostile.stamp)
"""
import json
import os
import sys

import torch
import torch.nn as nn

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(11)
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 3)).eval()
traced = torch.jit.trace(model, torch.zeros(1, 3, 32, 32))


def save(name, text):
    files = {"fxcam.json": text} if text is not None else {}
    torch.jit.save(traced, os.path.join(OUT, "hostile_" + name + ".pt"), _extra_files=files)


DEPTH = 87500  # 175 KB: overflowed the 8 MiB main stack when the error path serialized it
save("deep_nesting", '{"mean": ' + "[" * DEPTH + "]" * DEPTH + "}")
save("float_positive_class", '{"input_size": [32, 32], "positive_class": -0.5}')
save("float_channels", '{"input_size": [32, 32], "channels": 3.7}')
save("float_input_size", '{"input_size": [32.9, 40.99]}')
save("huge_channels", '{"input_size": [32, 32], "channels": 1e300}')
save("tall_input_size", '{"input_size": [4097, 2]}')  # over the 4096 cap, yet tiny to run
save("long_wrong_string", json.dumps({"input_size": [32, 32], "class_names": "\x1b[2J" + "x" * 100000}))
save("integral_floats", '{"input_size": [32.0, 40], "channels": 3.0, "positive_class": 2.0}')
save("three_channel", '{"input_size": [32, 32]}')

# A classifier whose Linear layer fixes the input size: run at another size,
# libtorch's own cause ("mat1 and mat2 shapes cannot be multiplied") is the
# last line of a long traced-model traceback.
fixed = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 3)).eval()
torch.jit.save(torch.jit.trace(fixed, torch.zeros(1, 3, 32, 32)), os.path.join(OUT, "hostile_fixed_size.pt"),
               _extra_files={"fxcam.json": '{"input_size": [32, 32]}'})

with open(os.path.join(OUT, "hostile.stamp"), "w") as f:
    f.write("ok\n")
