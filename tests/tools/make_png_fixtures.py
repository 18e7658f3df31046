#!/usr/bin/python3
"""Independent PNG writers and readers for tests/unit/test_image.c.

Usage: make_png_fixtures.py DIR

1. Writes PNG fixtures made by OpenCV and PIL into DIR. Their pixel formulas
   are repeated in test_image.c, which loads them with fx_image_load.
2. Reads every DIR/fxsave_*.png (written by fx_image_save) with OpenCV and,
   where PIL keeps the full precision, with PIL, and writes what it read to
   DIR/<name>.cv2.txt and DIR/<name>.pil.txt:
       width height channels bits
       every sample, row by row, in RGB(A) order
"""
import pathlib
import sys

import cv2
import numpy as np
from PIL import Image


def write_fixtures(out):
    # 16-bit gray: values spread over the whole range, 4095 (12-bit max) at 0,0.
    y, x = np.mgrid[0:9, 0:17]
    gray16 = ((x * 3851 + y * 7919 + 4095) % 65536).astype(np.uint16)
    assert cv2.imwrite(str(out / "cv2_gray16.png"), gray16)

    # 16-bit RGBA; OpenCV wants BGRA.
    y, x, c = np.mgrid[0:4, 0:5, 0:4]
    rgba16 = ((x * 12345 + y * 54321 + c * 4095 + 1) % 65536).astype(np.uint16)
    assert cv2.imwrite(str(out / "cv2_rgba16.png"), rgba16[:, :, [2, 1, 0, 3]])

    y, x, c = np.mgrid[0:5, 0:6, 0:3]
    rgb8 = ((x * 37 + y * 101 + c * 59) % 256).astype(np.uint8)
    assert cv2.imwrite(str(out / "cv2_rgb8.png"), rgb8[:, :, ::-1])

    # Palette with a tRNS shorter than the palette: entries 3 and 4 are opaque.
    pal = Image.new("P", (8, 6))
    colors = []
    for i in range(5):
        colors += [i * 50, 255 - i * 40, (i * 97) % 256]
    pal.putpalette(colors)
    pal.putdata([(xx + 2 * yy) % 5 for yy in range(6) for xx in range(8)])
    pal.save(out / "pil_palette_trns.png", transparency=bytes([0, 128, 255]))

    bilevel = Image.new("1", (9, 4))
    bilevel.putdata([255 if (xx * yy + xx) % 3 == 0 else 0 for yy in range(4) for xx in range(9)])
    bilevel.save(out / "pil_bilevel.png")

    la = Image.new("LA", (5, 3))
    la.putdata([((xx * 50 + yy * 3) % 256, (255 - xx * 40 - yy) % 256) for yy in range(3) for xx in range(5)])
    la.save(out / "pil_la8.png")


def dump(path, array, bits):
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    with open(path, "w") as f:
        f.write(f"{w} {h} {channels} {bits}\n")
        f.write(" ".join(str(int(v)) for v in array.reshape(-1)))
        f.write("\n")


def read_saved(out):
    for png in sorted(out.glob("fxsave_*.png")):
        two_channels = "_ga" in png.stem
        a = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert a is not None, png
        bits = 16 if a.dtype == np.uint16 else 8
        if a.ndim == 3 and a.shape[2] == 3:
            a = a[:, :, ::-1]
        elif a.ndim == 3 and a.shape[2] == 4:
            # OpenCV turns gray+alpha into BGRA with B = G = R.
            a = a[:, :, [0, 3]] if two_channels else a[:, :, [2, 1, 0, 3]]
        dump(png.with_suffix(".cv2.txt"), a, bits)

        with Image.open(png) as im:
            # PIL opens 16-bit gray as "I" (32-bit integers), values unchanged.
            modes = {"L": 8, "LA": 8, "RGB": 8, "RGBA": 8, "I": 16, "I;16": 16, "I;16B": 16}
            if im.mode in modes:
                dump(png.with_suffix(".pil.txt"), np.array(im), modes[im.mode])


def main():
    out = pathlib.Path(sys.argv[1])
    write_fixtures(out)
    read_saved(out)


if __name__ == "__main__":
    main()
