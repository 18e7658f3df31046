#!/usr/bin/python3
"""Fixtures for tests/engine/test_preprocessing.c: the engine's intensity rule
and resize modes against torch/torchvision, computed here independently.

 - twelve_bit.png: a 12-bit radiograph stored unscaled in a 16-bit PNG with
   sBIT = 12 (written by hand below: PIL cannot write sBIT), and
   twelve_bit_8.png, the same image in 8 bits (round(v * 255 / 4095)). The
   1-channel model gray_model.pt (stretch, no antialias, as fxcam 0.1) is run
   in torch on v / 4095 and on v8 / 255.
 - resize_model.pt: a 3-channel ResNet with input (h, w) = (64, 80); the RGB
   image resize_rgb.png (150 x 97) goes through torchvision's
   Resize(72) + CenterCrop((64, 80)) and through a letterbox (aspect kept,
   fitted, zero padding, centred), then ImageNet normalization. For each: the
   logits and the Grad-CAM low-resolution map (hooks on layer4).
 - channel models: a 1-channel model without metadata and a 3-channel one.

Usage: make_preprocess_fixtures.py OUTPUT_DIR
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
LINES = []


def write(name, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(os.path.join(OUT, name))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16_sbit(path, gray, bits):
    """16-bit gray PNG, samples written as they are (not scaled), with sBIT."""
    h, w = gray.shape
    raw = b"".join(b"\0" + gray[y].astype(">u2").tobytes() for y in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)) +
            png_chunk(b"sBIT", bytes([bits])) + png_chunk(b"IDAT", zlib.compress(raw, 6)) + png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def resnet10(classes, in_ch=3):
    m = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=classes)
    if in_ch != 3:
        m.conv1 = nn.Conv2d(in_ch, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return m.eval()


def save(model, name, channels, size, metadata):
    jit = torch.jit.trace(model, torch.zeros(1, channels, *size), check_trace=False)
    extra = {"fxcam.json": json.dumps(metadata)} if metadata is not None else {}
    torch.jit.save(jit, os.path.join(OUT, name), _extra_files=extra)


def normalize(x, mean, std):
    return (x - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]


def gradcam(model, x, layer="layer4"):
    """Logits and the Grad-CAM low-resolution map of the predicted class
    (ReLU(sum_k mean(G_k) A_k)), from hooks on the eager model."""
    seen = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.update(out=o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    target = int(logits[0].argmax())
    (grad,) = torch.autograd.grad(logits[0, target], seen["out"])
    A, G = seen["out"][0].double(), grad[0].double()
    low = torch.clamp((G.mean((1, 2))[:, None, None] * A).sum(0), min=0)
    return logits[0].detach(), target, low.detach()


# ---- (a) 12 bits in a 16-bit PNG vs the same image in 8 bits ----------------
rng = np.random.default_rng(11)
h, w = 90, 70
yy, xx = np.mgrid[0:h, 0:w]
bone = np.exp(-(((xx - 38) / 9.0) ** 2)) * (yy > 12) * (yy < 80)
v12 = np.clip((0.15 + 0.7 * bone + 0.1 * np.sin(yy / 6.0)) * 4095 + rng.normal(0, 60, (h, w)), 0, 4095)
v12 = np.round(v12).astype(np.uint16)
v8 = np.round(v12.astype(np.float64) * 255.0 / 4095.0).astype(np.uint8)
write_png16_sbit(os.path.join(OUT, "twelve_bit.png"), v12, 12)
Image.fromarray(v8, mode="L").save(os.path.join(OUT, "twelve_bit_8.png"))
torch.manual_seed(21)
gray_model = resnet10(3, in_ch=1)
gray_meta = {"input_size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.5]}
save(gray_model, "gray_model.pt", 1, (64, 64), gray_meta)


def gray_input(unit):
    x = torch.from_numpy(unit.astype(np.float32))[None, None]
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=False)
    return normalize(x, [0.5], [0.5])


targets = {}
for tag, unit in [("twelve", v12 / 4095.0), ("eight", v8 / 255.0), ("container", v12 / 65535.0)]:
    logits, t, low = gradcam(gray_model, gray_input(unit))
    write(f"gray_{tag}.logits", logits.numpy())
    write(f"gray_{tag}.lowres", low.float().numpy())
    targets[tag] = t
    LINES.append(f"gray_{tag} {t} {logits.numel()} {low.shape[0]} {low.shape[1]}")
assert targets["twelve"] == targets["eight"], "the fixture needs a clear prediction: change the seed"

# ---- (b) letterbox and shorter-side + center crop ---------------------------
H, W, RESIZE = 64, 80, 72
iw, ih = 150, 97
yy, xx = np.mgrid[0:ih, 0:iw]
rgb = np.stack([np.sin(xx / 9.0), np.cos(yy / 7.0), np.sin((xx + yy) / 11.0)], -1) * 0.4 + 0.5
rgb = np.clip(rgb * 255 + rng.normal(0, 20, (ih, iw, 3)), 0, 255).astype(np.uint8)
Image.fromarray(rgb, mode="RGB").save(os.path.join(OUT, "resize_rgb.png"))
torch.manual_seed(22)
resize_model = resnet10(4)
save(resize_model, "resize_model.pt", 3, (H, W),
     {"input_size": [H, W], "resize_mode": "shorter-side-crop", "resize_size": RESIZE})
x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

# torchvision's ImageNet recipe on the tensor: Resize(72) + CenterCrop((64, 80)).
crop = TF.center_crop(TF.resize(x, RESIZE, antialias=True), [H, W])
# Letterbox: scale min(W / iw, H / ih), sizes rounded, centred (offset floor),
# the rest 0 before normalization.
s = min(W / iw, H / ih)
rw, rh = round(iw * s), round(ih * s)
ox, oy = (W - rw) // 2, (H - rh) // 2
letter = torch.zeros(1, 3, H, W)
letter[:, :, oy:oy + rh, ox:ox + rw] = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False,
                                                      antialias=True)
# Where image pixel centres land in the input (resized / image scale, offset):
# the crop offsets of torchvision's CenterCrop: int(round((r - c) / 2.0)).
sw = int(RESIZE * iw / ih)
geometry = {"crop": (sw / iw, RESIZE / ih, -int(round((sw - W) / 2.0)), -int(round((RESIZE - H) / 2.0))),
            "letterbox": (rw / iw, rh / ih, ox, oy)}
for tag, inp in [("crop", crop), ("letterbox", letter)]:
    logits, t, low = gradcam(resize_model, normalize(inp, *IMAGENET))
    write(f"resize_{tag}.logits", logits.numpy())
    write(f"resize_{tag}.lowres", low.float().numpy())
    sx, sy, ox_, oy_ = geometry[tag]
    LINES.append(f"resize_{tag} {t} {logits.numel()} {low.shape[0]} {low.shape[1]} {sx!r} {sy!r} {ox_} {oy_}")

# ---- (c) channel mismatch ---------------------------------------------------
torch.manual_seed(23)
save(resnet10(2, in_ch=1), "one_channel_no_meta.pt", 1, (64, 64), {"input_size": [64, 64]})
save(resnet10(2), "three_channel_meta.pt", 3, (64, 64), {"input_size": [64, 64]})

with open(os.path.join(OUT, "preprocess_manifest.txt"), "w") as f:
    f.write("\n".join(LINES) + "\n")
print(f"{len(LINES)} preprocessing references")
