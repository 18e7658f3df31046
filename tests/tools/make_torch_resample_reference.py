#!/usr/bin/python3
"""Writes the torch/torchvision reference data that tests/unit/test_preprocess.c
compares fxcam's antialiased resampler and resize modes against.

Run by meson at build time (tests/reference/meson.build) with Debian's
/usr/bin/python3 (torch, torchvision); the file goes into the build directory
and is never committed. Inputs come from a fixed seed.

File format (little-endian uint32 unless said):
  "FXAA", version (1), case count, then per case
    kind (0 = torch.nn.functional.interpolate(mode="bilinear",
          align_corners=False, antialias=True) to dst_w x dst_h;
          1 = torchvision transforms.Resize(resize_size, antialias=True) then
          CenterCrop((dst_h, dst_w)), on a tensor),
    src_w, src_h, dst_w, dst_h, channels, resize_size,
    the source as float32 HWC (interleaved), then the reference output as
    float32 HWC.
"""
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms

VERSION = 1

# (src_w, src_h, dst_w, dst_h, channels): down by non-integer and large
# factors, anisotropic, up (support 1), identity, 1-pixel sides.
INTERP = [
    (100, 80, 37, 29, 1),
    (64, 64, 7, 7, 3),
    (300, 200, 224, 224, 1),
    (50, 70, 50, 70, 1),
    (13, 9, 40, 31, 3),
    (512, 384, 224, 224, 3),
    (33, 1, 5, 1, 1),
    (97, 61, 61, 97, 1),
]
# (src_w, src_h, crop_w, crop_h, channels, resize_size)
CROP = [
    (300, 200, 224, 224, 3, 256),
    (200, 333, 224, 224, 1, 256),
    (640, 480, 224, 224, 1, 232),
    (257, 256, 224, 224, 1, 256),
]


def main():
    out_path = sys.argv[1]
    rng = np.random.default_rng(20240610)
    cases = []
    for sw, sh, dw, dh, c in INTERP:
        src = rng.random((sh, sw, c), dtype=np.float32)
        t = torch.from_numpy(src).permute(2, 0, 1)[None]
        ref = F.interpolate(t, size=(dh, dw), mode="bilinear", align_corners=False, antialias=True)
        cases.append((0, sw, sh, dw, dh, c, 0, src, ref[0].permute(1, 2, 0).numpy()))
    for sw, sh, cw, ch, c, size in CROP:
        src = rng.random((sh, sw, c), dtype=np.float32)
        t = torch.from_numpy(src).permute(2, 0, 1)
        pipeline = transforms.Compose([
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
            transforms.CenterCrop((ch, cw)),
        ])
        ref = pipeline(t)
        cases.append((1, sw, sh, cw, ch, c, size, src, ref.permute(1, 2, 0).numpy()))
    with open(out_path, "wb") as f:
        f.write(b"FXAA" + struct.pack("<II", VERSION, len(cases)))
        for kind, sw, sh, dw, dh, c, size, src, ref in cases:
            assert ref.shape == (dh, dw, c), (ref.shape, dh, dw, c)
            f.write(struct.pack("<7I", kind, sw, sh, dw, dh, c, size))
            f.write(np.ascontiguousarray(src, dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(ref, dtype="<f4").tobytes())


if __name__ == "__main__":
    main()
