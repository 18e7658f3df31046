#!/usr/bin/python3
"""Writes the seed and regression inputs of tests/fuzz/corpus/ (run once; the
files are committed). Each name says what the input is; the crashers of
issue 9 are here so that every fuzz run replays them.

Usage: /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import io
import json
import os
import struct
import zlib

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


# fxcam.json
deep = lambda n: '{"mean": ' + "[" * n + "]" * n + "}"
put("json", "valid_full", json.dumps({"input_size": [224, 224], "channels": 3, "mean": [0.485, 0.456, 0.406],
                                      "std": [0.229, 0.224, 0.225], "class_names": ["normal", "fracture"],
                                      "positive_class": 1, "target_layer": "features", "output": "logits"}))
put("json", "crash_deep_nesting_3000", deep(3000))  # killed a 256 KiB-stack thread (issue 9)
put("json", "float_positive_class", '{"positive_class": -0.5}')
put("json", "float_channels", '{"channels": 3.7}')
put("json", "float_input_size", '{"input_size": [32.9, 40.99]}')
put("json", "huge_channels", '{"channels": 1e300}')  # UB float->int cast before
# A number no type holds: nlohmann's out_of_range 406 quoted all of it (found by the fuzzer in CI).
put("json", "crash_number_overflow", "-99" + "3" * 370 + "91999999999")
put("json", "huge_input_size", '{"input_size": [16384, 16384]}')
put("json", "escape_in_string", '{"class_names": "\\u001b[2J' + "x" * 500 + '"}')
put("json", "bad_utf8", b'{"class_names": ["\xff\xfe"]}')

# PNG


def png_bytes(img):
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


rng = np.random.default_rng(1)
put("png", "rgb8_5x4", png_bytes(Image.fromarray(rng.integers(0, 255, (4, 5, 3), dtype=np.uint8))))
put("png", "gray16_3x6", png_bytes(Image.fromarray(rng.integers(0, 65535, (6, 3), dtype=np.uint16))))
put("png", "palette_4x4", png_bytes(Image.fromarray(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)).convert("P")))
# fx_image_load_memory dispatches by content: a JPEG seed lets the target reach the JPEG reader too.
jpeg = io.BytesIO()
Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(jpeg, format="JPEG", quality=80)
put("png", "jpeg_rgb_8x8", jpeg.getvalue())
# 32768 x 4096, 16-bit RGBA: within the default limits, 1 GiB decoded (issue 9).
ihdr = struct.pack(">IIBBBBB", 32768, 4096, 16, 6, 0, 0, 0)
put("png", "huge_header_32768x4096_rgba16",
    b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096, 9)) + chunk(b"IEND", b""))

# DICOM seeds (fx_image_load_memory dispatches by content): a bare dataset (no
# preamble, no "DICM", implicit VR) and a Part 10 file with a 12-bit VOI LUT.
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence


def dicom_seed(bare, voi_lut):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    if not bare:
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.Modality = "1.2.840.10008.5.1.4.1.1.1.1", "DX"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if voi_lut:
        item = Dataset()
        item.LUTDescriptor = [16, 0, 12]
        item.LUTData = struct.pack("<16H", *[i * 273 for i in range(16)])  # OW
        ds.VOILUTSequence = Sequence([item])
    ds.PixelData = bytes((i * 37) % 256 for i in range(8 * 8 * 2))
    ds.is_little_endian, ds.is_implicit_VR = True, bare
    out = io.BytesIO()
    if bare:
        ds.preamble = None
    ds.save_as(out, write_like_original=bare)
    return out.getvalue()


put("png", "dicom_bare_implicit_8x8", dicom_seed(True, False))
put("png", "dicom_voi_lut12_8x8", dicom_seed(False, True))

# Model archives: a small 3-channel CNN with and without hostile fxcam.json.
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 2)).eval()
traced = torch.jit.trace(model, torch.zeros(1, 3, 16, 16))


def archive(meta):
    out = io.BytesIO()
    torch.jit.save(traced, out, _extra_files={"fxcam.json": meta} if meta is not None else {})
    return out.getvalue()


put("model", "small_cnn", archive('{"input_size": [16, 16], "class_names": ["a", "b"], "positive_class": 1}'))
put("model", "crash_deep_nesting_3000", archive(deep(3000)))
put("model", "float_channels", archive('{"input_size": [16, 16], "channels": 3.7}'))

# CLI arguments, one per line.
put("cli", "single", "--model\nm.pt\n--image\na.png\n-o\nout.png\n--method\ngradcam,gradcam++\n--alpha\n0.4")
put("cli", "numbers", "--max-pixels\n99999999999999999999999\n--threads\n-1\n--batch-size\n0x10")
put("cli", "sizes", "--batch-memory\n1.5G\n--max-side\n65536\n--panel-height\n0\n--threshold\nnan")
put("cli", "inline", "--layer=\n--class=fracture\n--device=cuda:99999999999\n--colormap=JET\n-")
