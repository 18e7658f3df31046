"""Shared fixtures: the fxcam package from this checkout, small TorchScript
models made here (random init, fixed seeds, nothing downloaded) and their eager
twins for hook-based reference computations."""
import json
import os
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_ROOT = os.path.dirname(PYTHON_DIR)
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

HAS_TORCH_ENGINE = os.environ.get("FXCAM_HAS_TORCH", "1") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs a libfxcam built with the libtorch engine")


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """name -> (path to the TorchScript file, eager module, metadata)."""
    import torch
    import torch.nn as nn
    import torchvision

    out = tmp_path_factory.mktemp("models")
    made = {}

    def save(name, module, meta, size, channels):
        module.eval()
        with torch.no_grad():
            traced = torch.jit.trace(module, torch.zeros(1, channels, *size), check_trace=False)
        path = out / f"{name}.pt"
        torch.jit.save(traced, str(path), _extra_files={"fxcam.json": json.dumps(meta)})
        made[name] = (str(path), module, meta)

    torch.manual_seed(0)
    resnet = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=3)
    save("resnet", resnet, {"input_size": [64, 64], "class_names": ["normal", "fracture", "implant"]}, (64, 64), 3)
    torch.manual_seed(1)
    tiny = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1))
    save("tiny_gray", tiny, {"input_size": [32, 32], "channels": 1, "mean": [0.5], "std": [0.25],
                             "class_names": ["normal", "fracture"], "positive_class": 1, "target_layer": "3"},
         (32, 32), 1)
    return made


@pytest.fixture(scope="session")
def fxcam():
    import fxcam as module
    return module
