#!/usr/bin/python3
"""JPEG fixtures and independent reference pixels for tests/unit/test_jpeg.c.

Usage: make_jpeg_fixtures.py DIR

Writes JPEGs made by PIL and by OpenCV into DIR (gray, RGB, progressive, the
8 EXIF orientations, CMYK, a header declaring 30000x30000) and, for each one
fxcam must read, DIR/<name>.ref with PIL's decode after
ImageOps.exif_transpose (the upright image a viewer shows):
    uint32 width, height, channels, bits (8), little-endian
    then the samples row by row, RGB order.
"""
import pathlib
import struct
import sys

import cv2
import numpy as np
from PIL import Image, ImageOps

W, H = 37, 23  # not square, odd: a wrong rotation or mirror changes the shape or the pixels


def content(channels):
    y, x, c = np.mgrid[0:H, 0:W, 0:channels]
    v = (x * 7 + y * 11 + c * 60 + ((x // 5 + y // 4) % 2) * 90) % 256
    return v.astype(np.uint8)


def write_reference(out, name):
    with Image.open(out / (name + ".jpg")) as im:
        im = ImageOps.exif_transpose(im)
        a = np.asarray(im.convert("L" if im.mode == "L" else "RGB"))
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    with open(out / (name + ".ref"), "wb") as f:
        f.write(struct.pack("<4I", w, h, c, 8))
        f.write(np.ascontiguousarray(a).tobytes())


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    gray = Image.fromarray(content(1)[:, :, 0], "L")
    rgb = Image.fromarray(content(3), "RGB")
    names = []

    gray.save(out / "pil_gray.jpg", quality=90)
    rgb.save(out / "pil_rgb.jpg", quality=90)
    rgb.save(out / "pil_rgb_444.jpg", quality=95, subsampling=0)
    rgb.save(out / "pil_progressive.jpg", quality=85, progressive=True)
    gray.save(out / "pil_gray_progressive.jpg", quality=85, progressive=True)
    assert cv2.imwrite(str(out / "cv2_gray.jpg"), content(1)[:, :, 0], [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert cv2.imwrite(str(out / "cv2_rgb.jpg"), content(3)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert cv2.imwrite(str(out / "cv2_progressive.jpg"), content(3)[:, :, ::-1],
                       [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    names += ["pil_gray", "pil_rgb", "pil_rgb_444", "pil_progressive", "pil_gray_progressive", "cv2_gray",
              "cv2_rgb", "cv2_progressive"]

    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = "pil_exif_%d" % orientation
        rgb.save(out / (name + ".jpg"), quality=90, exif=exif.tobytes())
        names.append(name)
    # Big-endian ("MM") Exif, written by hand: orientation 6.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0\0\0\0"
    rgb.save(out / "exif_big_endian_6.jpg", quality=90, exif=b"Exif\x00\x00" + tiff)
    names.append("exif_big_endian_6")
    gray_exif = Image.Exif()
    gray_exif[0x0112] = 8
    gray.save(out / "pil_gray_exif_8.jpg", quality=90, exif=gray_exif.tobytes())
    names.append("pil_gray_exif_8")

    Image.fromarray(content(4), "CMYK").save(out / "pil_cmyk.jpg", quality=90)

    # A valid header declaring 30000x30000 (SOF0 height and width patched).
    data = bytearray((out / "pil_rgb.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 30000, 30000)
    (out / "huge_header.jpg").write_bytes(bytes(data))

    for name in names:
        write_reference(out, name)


if __name__ == "__main__":
    main()
