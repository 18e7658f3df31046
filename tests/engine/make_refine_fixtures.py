#!/usr/bin/python3
"""Fixture models and an independent reference for fxcam's refinements
(aug_smooth, eigen_smooth, several target layers; tests/engine/test_refine.c).

Random-init torchvision models (fixed seeds, nothing is downloaded), saved
traced (and ResNet-18 also scripted). The reference runs the eager model
with forward hooks on every target layer in one pass, takes
torch.autograd.grad of the target score with respect to all hooked outputs,
and follows pytorch-grad-cam's base_cam.py step by step:
  per layer: cam = ReLU(sum or get_2d_projection of the weighted terms),
             scale_cam_image(cam, (W, H)) = (cam - min) / (1e-7 + max),
             cv2.resize to the input size;
  aggregate_multi_layers: mean over layers, scale_cam_image again;
  forward_augmentation_smoothing: ttach's HorizontalFlip x Multiply([0.9, 1,
             1.1]) on the normalized input, each map flipped back, mean.
The targets are fixed to the class predicted on the unaugmented input (fxcam's
rule; pytorch-grad-cam with explicit targets does the same). The SVD sign is
fxcam's documented convention: the projection agrees with the channel sum of
the uncentred terms, else its largest |p| is positive. The image has the
model input's size, so the heatmap is the combined map min-max normalized.

Writes raw float32 maps and refine.txt: file, layers (comma-separated),
method, aug, eigen, width, height, target, tag.

Usage: make_refine_fixtures.py OUTPUT_DIR
"""
import json
import os
import sys
import time

import cv2
import numpy as np
import torch
import torchvision

torch.set_num_threads(max(1, os.cpu_count() or 1))
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
GRADCAM_PLUSPLUS_EPS = 1e-6
XGRADCAM_EPS = 1e-7
AUGMENTATIONS = [(flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1)]  # ttach's product
LINES = []


def image(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 6.0), np.cos(yy / 5.0), np.sin((xx + 2 * yy) / 9.0)], -1)
    rgb = np.clip((base * 0.4 + 0.5) * 255 + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    return rgb


def normalized(rgb):
    x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return (x - torch.tensor(MEAN)[None, :, None, None]) / torch.tensor(STD)[None, :, None, None]


def hooked(model, x, layers, target):
    """Logits, and each layer's output and gradient of the target score."""
    seen = {}
    handles = []
    for name in layers:
        def hook(mod, inp, out, name=name):
            seen[name] = out
            return out.clone()  # a later in-place op (DenseNet's relu_) must not alter it
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    t = int(logits[0].argmax()) if target < 0 else target
    grads = torch.autograd.grad(logits[0, t], [seen[n] for n in layers])
    return logits.detach()[0], t, [seen[n].detach()[0].double() for n in layers], [g[0].double() for g in grads]


def terms(method, A, G):
    """[k, h, w] terms whose channel sum is the method's map (pytorch-grad-cam)."""
    if method == "gradcam":
        return G.mean(dim=(1, 2), keepdim=True) * A
    if method == "gradcam++":
        g2, g3 = G ** 2, G ** 3
        s = A.sum(dim=(1, 2), keepdim=True)
        alpha = torch.where(G != 0, g2 / (2 * g2 + s * g3 + GRADCAM_PLUSPLUS_EPS), torch.zeros_like(G))
        return (torch.clamp(G, min=0) * alpha).sum(dim=(1, 2), keepdim=True) * A
    if method == "xgradcam":
        s = A.sum(dim=(1, 2), keepdim=True)
        return (G * A).sum(dim=(1, 2), keepdim=True) / (s + XGRADCAM_EPS) * A
    if method == "hirescam":
        return G * A
    if method == "layercam":
        return torch.clamp(G, min=0) * A
    if method == "gradcam-elementwise":
        return torch.clamp(G * A, min=0)
    raise ValueError(method)


def projection(M):
    """get_2d_projection (centred (h*w, k) matrix, SVD, projection on VT[0])
    with fxcam's sign convention."""
    k, h, w = M.shape
    X = M.reshape(k, h * w).T
    Xc = X - X.mean(dim=0)
    _, _, VT = torch.linalg.svd(Xc, full_matrices=False)
    p = Xc @ VT[0]
    r = X.sum(dim=1)
    dot = float(p @ r)
    flip = dot < 0 if abs(dot) > 1e-9 * float(p.norm() * r.norm()) else float(p[int(p.abs().argmax())]) < 0
    return (-p if flip else p).reshape(h, w)


def scale_cam_image(cam, size=None):
    """pytorch-grad-cam's utils/image.py scale_cam_image for one map (float32, cv2.resize)."""
    img = cam.astype(np.float32)
    img = img - np.min(img)
    img = img / (1e-7 + np.max(img))
    if size is not None:
        img = cv2.resize(np.float32(img), size)
    return img


def one_forward(model, x, layers, method, eigen, target):
    """base_cam.py forward: every layer's scaled map, aggregated."""
    logits, t, As, Gs = hooked(model, x, layers, target)
    size = (x.shape[3], x.shape[2])
    per_layer = []
    for A, G in zip(As, Gs):
        M = terms(method, A, G)
        cam = projection(M) if eigen else M.sum(0)
        per_layer.append(scale_cam_image(np.maximum(cam.float().numpy(), 0), size))
    mean = np.mean(np.maximum(np.stack(per_layer), 0), axis=0)
    return logits, t, scale_cam_image(mean)


def reference(model, x, layers, method, aug, eigen):
    logits, t, cam = one_forward(model, x, layers, method, eigen, -1)
    if aug:
        cams = []
        for flip, factor in AUGMENTATIONS:
            xa = x * factor
            if flip:
                xa = torch.flip(xa, [3])
            _, _, c = one_forward(model, xa, layers, method, eigen, t)
            cams.append(c[:, ::-1] if flip else c)
        cam = np.mean(np.float32(cams), axis=0)
    cam = cam.astype(np.float64)
    lo, hi = cam.min(), cam.max()
    assert hi - lo > 1e-3, "the reference map must not be flat"
    return t, (cam - lo) / (hi - lo)


def case(file, model, rgb, layers, method, aug=False, eigen=False):
    x = normalized(rgb)
    t, heat = reference(model, x, layers, method, aug, eigen)
    tag = f"refine.{len(LINES)}"
    np.ascontiguousarray(heat, dtype="<f4").tofile(os.path.join(OUT, tag + ".heat"))
    LINES.append(" ".join(str(v) for v in [file, ",".join(layers), method, int(aug), int(eigen), rgb.shape[1],
                                            rgb.shape[0], t, tag]))


def save(model, name, kind, h, w):
    example = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        jit = torch.jit.trace(model, example, check_trace=False) if kind == "traced" else torch.jit.script(model)
    file = f"refine_{name}_{kind}.pt"
    torch.jit.save(jit, os.path.join(OUT, file), _extra_files={"fxcam.json": json.dumps({"input_size": [h, w]})})
    return file


start = time.time()
tv = torchvision.models
SQUARE = image(64, 64, 1)
GRADIENT_METHODS = ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "gradcam-elementwise"]
MODELS = [("resnet18", lambda: tv.resnet18(num_classes=10), ["traced", "scripted"], "layer4", ["layer4", "layer3"]),
          ("densenet121", lambda: tv.densenet121(num_classes=10), ["traced"], "features",
           ["features", "features.denseblock3"]),
          ("mobilenet_v3_small", lambda: tv.mobilenet_v3_small(num_classes=10), ["traced"], "features",
           ["features", "features.6"])]
for seed, (name, ctor, kinds, layer, pair) in enumerate(MODELS):
    torch.manual_seed(30 + seed)
    model = ctor().eval()
    for kind in kinds:
        file = save(model, name, kind, 64, 64)
        for method in GRADIENT_METHODS:
            case(file, model, SQUARE, [layer], method, eigen=True)
        case(file, model, SQUARE, pair, "gradcam")
        case(file, model, SQUARE, pair, "hirescam", eigen=True)
        case(file, model, SQUARE, [layer], "gradcam", aug=True)
        case(file, model, SQUARE, pair, "gradcam++", aug=True)
# A non-square input (56 high, 72 wide): the flip mirrors the width only.
torch.manual_seed(40)
model = tv.resnet18(num_classes=10).eval()
file = save(model, "resnet18_wide", "traced", 56, 72)
case(file, model, image(56, 72, 2), ["layer4"], "gradcam", aug=True)
case(file, model, image(56, 72, 2), ["layer4", "layer3"], "layercam", aug=True, eigen=True)
for name, rgb in (("square", SQUARE), ("wide", image(56, 72, 2))):
    rgb.tofile(os.path.join(OUT, f"refine_image_{name}.raw"))
with open(os.path.join(OUT, "refine.txt"), "w") as f:
    f.write("\n".join(LINES) + "\n")
print(f"{len(LINES)} refinement cases in {time.time() - start:.1f} s")
