#!/usr/bin/python3
"""Writes the OpenCV reference data that tests/unit/test_resize.c and
tests/unit/test_colormap.c compare fxcam against.

Run by meson at build time (tests/reference/meson.build) with Debian's
/usr/bin/python3 and python3-opencv; the files go into the build directory and
are never committed. Inputs come from a fixed seed, so the files are the same
on every run with the same OpenCV.

File format (all integers little-endian uint32):
  resize_cases.bin:   "FXRS", version, case count, then per case
                      src_w, src_h, dst_w, dst_h, channels, pixel_type
                      (FX_PIXEL_* of fxcam.h), then the source samples and
                      OpenCV's output, both tightly packed, host byte order.
  colormap_cases.bin: "FXCM", version (2), width, height, map count, the U8
                      input image, then per map OpenCV's COLORMAP_* number,
                      the constant's suffix in lower case ("jet",
                      "twilight_shifted") as 32 bytes padded with NUL, and
                      cv2.applyColorMap's result converted to RGB. Every
                      COLORMAP_* constant of the installed OpenCV is there:
                      the test checks that fxcam parses each name to the
                      same number and colors identically.

"""
import argparse
import pathlib
import struct
import sys

import cv2
import numpy as np

VERSION = 1
COLORMAP_VERSION = 2
FX_PIXEL_U8, FX_PIXEL_U16, FX_PIXEL_F32 = 1, 2, 3

# (src_w, src_h, dst_w, dst_h): up, down, 1xN, Nx1, exact 2x and 3x both
# ways, non-integer factors (1.37, 0.61), anisotropic, identity.
RESIZE_SIZES = [
    (7, 7, 224, 224),
    (224, 224, 7, 7),
    (13, 9, 100, 37),
    (1, 17, 1, 40),
    (17, 1, 40, 1),
    (1, 1, 5, 3),
    (9, 1, 4, 6),
    (1, 12, 7, 5),
    (16, 12, 32, 24),
    (32, 24, 16, 12),
    (10, 10, 30, 30),
    (30, 30, 10, 10),
    (100, 73, 137, 100),
    (137, 100, 84, 61),
    (50, 40, 50, 40),
    (64, 48, 39, 29),
    (20, 20, 21, 19),
]

# (pixel_type, channels) for every size above.
RESIZE_TYPES = [
    (FX_PIXEL_F32, 1),
    (FX_PIXEL_F32, 3),
    (FX_PIXEL_U8, 1),
    (FX_PIXEL_U8, 3),
    (FX_PIXEL_U8, 4),
    (FX_PIXEL_U16, 1),
]



def opencv_colormaps():
    """(lower-case name, OpenCV number) of every COLORMAP_* constant."""
    maps = [(n[len("COLORMAP_"):].lower(), getattr(cv2, n)) for n in dir(cv2) if n.startswith("COLORMAP_")]
    return sorted(maps, key=lambda m: m[1])


def random_image(rng, np, w, h, channels, pixel_type):
    shape = (h, w, channels)
    if pixel_type == FX_PIXEL_U8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if pixel_type == FX_PIXEL_U16:
        return rng.integers(0, 65536, size=shape, dtype=np.uint16)
    # Heatmap-like values plus a few outside [0, 1]: resize must not clamp floats.
    return (rng.random(size=shape, dtype=np.float32) * 1.5 - 0.25).astype(np.float32)


def opencv_resize(cv2, img, w, h):
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    # cv2 drops the channel axis of 1-channel images.
    return out.reshape(h, w, img.shape[2])


def write_resize(path):
    cases = []
    rng = np.random.default_rng(20240611)
    for pixel_type, channels in RESIZE_TYPES:
        for sw, sh, dw, dh in RESIZE_SIZES:
            src = random_image(rng, np, sw, sh, channels, pixel_type)
            dst = opencv_resize(cv2, src, dw, dh)
            assert dst.dtype == src.dtype
            cases.append((sw, sh, dw, dh, channels, pixel_type, src, dst))
    with open(path, "wb") as f:
        f.write(b"FXRS" + struct.pack("<II", VERSION, len(cases)))
        for sw, sh, dw, dh, channels, pixel_type, src, dst in cases:
            f.write(struct.pack("<6I", sw, sh, dw, dh, channels, pixel_type))
            f.write(src.tobytes())
            f.write(dst.tobytes())


def write_colormap(path):
    width, height = 97, 61
    maps = []
    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
    # Make sure every index appears at least once.
    gray.reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
    for name, value in opencv_colormaps():
        bgr = cv2.applyColorMap(gray, value)
        maps.append((value, name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    with open(path, "wb") as f:
        f.write(b"FXCM" + struct.pack("<IIII", COLORMAP_VERSION, width, height, len(maps)))
        f.write(gray.tobytes())
        for value, name, rgb in maps:
            f.write(struct.pack("<I", value))
            f.write(name.encode("ascii").ljust(32, b"\0"))
            f.write(rgb.tobytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("resize_out", type=pathlib.Path)
    parser.add_argument("colormap_out", type=pathlib.Path)
    args = parser.parse_args()
    if sys.byteorder != "little":
        sys.exit("make_opencv_reference.py: the file headers assume a little-endian host")
    write_resize(args.resize_out)
    write_colormap(args.colormap_out)


if __name__ == "__main__":
    main()
