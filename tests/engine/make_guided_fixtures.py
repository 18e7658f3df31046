"""Reference data for Guided Backpropagation and Guided Grad-CAM (test_guided.c).

An independent eager PyTorch computation, written from the papers rather than
from fxcam's code:
  * guided backprop (Springenberg et al. 2015): a torch.autograd.Function
    whose backward is g * (x > 0) * (g > 0), patched in for torch.nn.functional.relu,
    torch.relu and torch.relu_ while the eager model runs. nn.ReLU modules call
    F.relu, so module ReLUs and functional ones (DenseNet-121's final
    F.relu(features, inplace=True)) are both guided -- the convention of fxcam's
    graph rewrite of every aten::relu / aten::relu_. pytorch-grad-cam's
    GuidedBackpropReLUModel replaces only nn.ReLU modules, so on DenseNet-121 it
    leaves that last ReLU plain; on ResNet-18 and MobileNetV3 (all ReLUs are
    modules) the two conventions agree. Other activations (MobileNetV3's
    Hardswish and Hardsigmoid) keep their ordinary gradients in both.
  * Grad-CAM (Selvaraju et al. 2017) from a forward hook on the UNPATCHED model,
    upsampled bilinearly (align_corners=False) to the model input and min-max
    scaled (fxcam's heatmap rule; flat maps give 0).
  * Guided Grad-CAM = guided gradient x that map (Selvaraju et al., section 3).
  * saliency = pytorch-grad-cam's deprocess_image without the uint8 step:
    clip((p - mean) / (std + 1e-5) * 0.1 + 0.5, 0, 1) over the whole C x H x W map.
  * heatmap = max over channels of |p|, min-max scaled.
Random-init torchvision models (BatchNorm statistics calibrated on noise, see
calibrate), fixed seeds, nothing downloaded. Writes
guided_manifest.txt: model file, layer, image tag, width, height, reference tag.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

torch.set_num_threads(2)
OUT = sys.argv[1]
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
FLAT = 1e-5
SIZE = (64, 64)


def write(name, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(os.path.join(OUT, name))


def image(w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 9.0), np.cos(yy / 7.0), np.sin((xx + yy) / 11.0)], -1)
    return np.clip((base * 0.4 + 0.5) * 255 + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def preprocess(img):
    """fxcam's default: u8 / 255, bilinear stretch without antialias, ImageNet statistics."""
    x = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False, antialias=False)
    m = torch.tensor(IMAGENET[0])[None, :, None, None]
    s = torch.tensor(IMAGENET[1])[None, :, None, None]
    return (x - m) / s


class GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).type_as(g) * (g > 0).type_as(g)


class guided_relus:
    """Every F.relu / torch.relu / torch.relu_ call guided while active."""

    def __enter__(self):
        self.saved = (F.relu, torch.relu, torch.relu_)
        F.relu = lambda x, inplace=False: GuidedReLU.apply(x)
        torch.relu = lambda x: GuidedReLU.apply(x)
        torch.relu_ = lambda x: GuidedReLU.apply(x)

    def __exit__(self, *exc):
        F.relu, torch.relu, torch.relu_ = self.saved


def gradcam_mask(model, x, layer, target):
    seen = {}

    def hook(mod, inp, out):
        seen["out"] = out
        return out.clone()

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[0, target], seen["out"])
    a, g = seen["out"].detach()[0].double(), grad[0].double()
    low = torch.relu((g.mean(dim=(1, 2))[:, None, None] * a).sum(0))
    up = F.interpolate(low.float()[None, None], size=SIZE, mode="bilinear", align_corners=False)[0, 0].double()
    lo, hi = low.min(), low.max()
    if hi - lo <= FLAT * max(abs(lo), abs(hi)):
        return torch.zeros_like(up)
    return (up - up.min()) / (up.max() - up.min())


def guided_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    with guided_relus():
        logits = model(x)
    (g,) = torch.autograd.grad(logits[0, target], x)
    return g[0].double()


def deprocess(p):
    p = p.numpy()
    return np.clip((p - p.mean()) / (p.std() + 1e-5) * 0.1 + 0.5, 0, 1)


def magnitude_heatmap(p):
    m = p.abs().max(0).values
    lo, hi = m.min(), m.max()
    return torch.zeros_like(m) if hi - lo <= FLAT * max(abs(lo), abs(hi)) else (m - lo) / (hi - lo)


def to_image(planes, w, h):
    """A C x 64 x 64 map into a w x h image: bilinear per channel, half-pixel centres."""
    if (w, h) == SIZE[::-1]:
        return planes
    t = torch.from_numpy(np.ascontiguousarray(planes)).float()
    t = t[None] if t.dim() == 3 else t[None, None]
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0].squeeze(0).double().numpy()


MANIFEST = []
IMAGES = {"sq": image(64, 64, 11), "wide": image(83, 71, 12)}
for tag, img in IMAGES.items():
    img.tofile(os.path.join(OUT, f"guided_{tag}.raw"))


def calibrate(model):
    """BatchNorm running statistics from 32 noise images (weights stay random):
    with the default statistics (mean 0, var 1) MobileNetV3-small's input
    gradient has a std of 3e-12, below deprocess_image's 1e-5 guard, and every
    saliency would be 0.5 whatever the gradient; calibrated, it is about 0.06."""
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # a plain average over the batches
    model.train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, *SIZE, generator=g))
    return model.eval()


def case(name, ctor, layer, images, seed):
    torch.manual_seed(seed)
    model = calibrate(ctor())
    for kind in ("traced", "scripted"):
        with torch.no_grad():
            jit = torch.jit.trace(model, torch.zeros(1, 3, *SIZE), check_trace=False) if kind == "traced" \
                else torch.jit.script(model)
        file = f"guided_{name}_{kind}.pt"
        torch.jit.save(jit, os.path.join(OUT, file), _extra_files={"fxcam.json": '{"input_size": [64, 64]}'})
        for itag in images:
            img = IMAGES[itag]
            h, w = img.shape[:2]
            x = preprocess(img)
            with torch.no_grad():
                target = int(model(x)[0].argmax())
            gb = guided_gradient(model, x, target)
            # The test can fail: the plain input gradient must be far from the guided one.
            xp = x.clone().requires_grad_(True)
            (plain,) = torch.autograd.grad(model(xp)[0, target], xp)
            apart = np.abs(deprocess(plain[0].double()) - deprocess(gb)).max()
            assert apart > 0.01, f"{name}: guided and plain gradients agree within {apart}"
            assert gb.std() > 1e-4, f"{name}: guided gradient std {gb.std()} is near deprocess_image's 1e-5 guard"
            mask = gradcam_mask(model, x, layer, target)
            tag = f"guided_{name}_{kind}_{itag}"
            for method, p in (("guided-backprop", gb), ("guided-gradcam", gb * mask[None])):
                sal = to_image(deprocess(p), w, h)                        # C x h x w
                write(f"{tag}.{method}.saliency", np.transpose(sal, (1, 2, 0)))  # interleaved like fx_image
                heat = magnitude_heatmap(p)
                up = to_image(heat.numpy(), w, h)
                up = torch.from_numpy(np.ascontiguousarray(up))
                lo, hi = up.min(), up.max()
                write(f"{tag}.{method}.heat", ((up - lo) / (hi - lo)).numpy() if hi > lo else up.numpy() * 0)
            MANIFEST.append(f"{file} {layer} {itag} {w} {h} {target} {tag}")


tv = torchvision.models
case("resnet18", lambda: tv.resnet18(num_classes=10), "layer4", ["sq", "wide"], 21)
case("densenet121", lambda: tv.densenet121(num_classes=10), "features", ["sq"], 22)
case("mobilenet_v3_small", lambda: tv.mobilenet_v3_small(num_classes=10), "features", ["sq"], 23)

# No ReLU at all: guided backprop is undefined (it would be the plain gradient).
torch.manual_seed(24)
no_relu = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Hardswish(), nn.Conv2d(8, 8, 3, padding=1), nn.GELU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
with torch.no_grad():
    torch.jit.save(torch.jit.trace(no_relu, torch.zeros(1, 3, *SIZE)), os.path.join(OUT, "guided_no_relu.pt"),
                   _extra_files={"fxcam.json": '{"input_size": [64, 64]}'})

with open(os.path.join(OUT, "guided_manifest.txt"), "w") as f:
    f.write("\n".join(MANIFEST) + "\n")
