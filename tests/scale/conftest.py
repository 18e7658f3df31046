"""Shared by the scale tests: the fxcam executable ($FXCAM), a folder of
sample radiographs (the embedded samples of models/samples, plus renamed
copies), and FNV-1a 64 written here from its specification (Fowler, Noll, Vo;
IETF draft-eastlake-fnv), the independent reference of the shard rule."""
import os
import shutil
import subprocess

import pytest

FXCAM = os.environ.get("FXCAM", "")
SOURCE_ROOT = os.environ.get("FXCAM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLES = os.path.join(SOURCE_ROOT, "models", "samples")


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs libfxcam built with libtorch (deselected otherwise)")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def run(*args, timeout=300):
    assert FXCAM and os.path.isfile(FXCAM), "set FXCAM to the built fxcam executable"
    return subprocess.run([FXCAM, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def make_folder(folder, copies):
    """The 9 sample PNGs, then `copies` renamed copies of them (sub-folders
    included with --recursive), and one text file that batch lists as ignored."""
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    pngs = sorted(n for n in os.listdir(SAMPLES) if n.endswith(".png"))
    for name in pngs:
        shutil.copy(os.path.join(SAMPLES, name), os.path.join(folder, name))
    for k in range(copies):
        where = "sub" if k % 2 else ""
        shutil.copy(os.path.join(SAMPLES, pngs[k % len(pngs)]), os.path.join(folder, where, f"copy_{k:02d}.png"))
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not an image\n")
    return folder


@pytest.fixture
def folder(tmp_path):
    return make_folder(str(tmp_path / "in"), 3)
