#!/usr/bin/python3
"""Fixture models and an independent hook-based Grad-CAM reference for the
engine test (tests/engine/test_engine.c).

Models are random-init torchvision networks (fixed seeds, nothing is
downloaded), saved traced and scripted with torch.jit.save. For each case the
eager model (same weights) runs the same preprocessed input with forward hooks
on the target module; torch.autograd.grad gives the gradient of the target
score with respect to the hooked output, and the CAM formulas of
docs/algorithms.md are evaluated here in float64 torch. Everything is written
as raw little-endian float32 files, plus manifest.txt (one case per line).

Usage: make_fixtures.py OUTPUT_DIR
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

torch.set_num_threads(max(1, os.cpu_count() or 1))
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
EPS = 1e-7             # XGradCAM's guard (docs/algorithms.md)
GRADCAM_PLUSPLUS_EPS = 1e-6  # pytorch-grad-cam's constant in alpha
FLAT = 1e-5            # a map whose range is <= FLAT * max(|min|, |max|) is constant: heatmap 0
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
METHODS = ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "gradcam-elementwise", "eigengradcam",
           "eigencam"]


def write(name, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(os.path.join(OUT, name))


def test_images():
    """An RGB 8-bit image (83x71) and a gray 16-bit one (61x77), smooth plus noise."""
    rng = np.random.default_rng(7)
    h, w = 71, 83
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 9.0), np.cos(yy / 7.0), np.sin((xx + yy) / 11.0)], -1)
    rgb = np.clip((base * 0.4 + 0.5) * 255 + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    rgb.tofile(os.path.join(OUT, "image_rgb8.raw"))
    h2, w2 = 77, 61
    yy, xx = np.mgrid[0:h2, 0:w2]
    gray = np.clip((np.sin(xx / 5.0) * np.cos(yy / 8.0) * 0.45 + 0.5) * 65535 + rng.normal(0, 900, (h2, w2)),
                   0, 65535).astype("<u2")
    gray.tofile(os.path.join(OUT, "image_gray16.raw"))
    return {"rgb8": (rgb, w, h, 3, 1), "gray16": (gray[..., None], w2, h2, 1, 2)}


def preprocess(img, channels, size, mean, std):
    x = torch.from_numpy(img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 65535.0))
    if x.shape[-1] == 3 and channels == 1:
        x = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
    elif x.shape[-1] == 1 and channels == 3:
        x = x.repeat(1, 1, 3)
    x = x.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (x - m) / s


def cam_lowres(method, A, G):
    A = A.double()
    G = G.double()
    if method == "gradcam":
        cam = (G.mean(dim=(2, 3), keepdim=True) * A).sum(1)
    elif method == "gradcam++":
        g2, g3 = G ** 2, G ** 3
        s = A.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + s * g3 + GRADCAM_PLUSPLUS_EPS)
        alpha = torch.where(G != 0, alpha, torch.zeros_like(alpha))
        w = (torch.clamp(G, min=0) * alpha).sum(dim=(2, 3), keepdim=True)
        cam = (w * A).sum(1)
    elif method == "hirescam":
        cam = (G * A).sum(1)
    elif method == "xgradcam":
        s = A.sum(dim=(2, 3), keepdim=True)
        w = (G * A).sum(dim=(2, 3), keepdim=True) / (s + EPS)
        cam = (w * A).sum(1)
    elif method == "layercam":
        cam = (torch.clamp(G, min=0) * A).sum(1)
    elif method == "gradcam-elementwise":
        cam = torch.clamp(G * A, min=0).sum(1)
    elif method == "eigengradcam":
        cam = projection_2d(G * A)
    elif method == "eigencam":
        cam = projection_2d(A)
    else:
        raise ValueError(method)
    return torch.clamp(cam, min=0)[0]


def projection_2d(M):
    """pytorch-grad-cam's get_2d_projection (LAPACK SVD of the centred
    (h*w, k) matrix, projection on VT[0]) with fxcam's sign convention
    (docs/algorithms.md): agree with the channel sum, else largest |p| > 0."""
    k, h, w = M.shape[1:]
    X = M[0].reshape(k, h * w).T
    Xc = X - X.mean(dim=0)
    _, _, VT = torch.linalg.svd(Xc, full_matrices=False)
    p = Xc @ VT[0]
    r = X.sum(dim=1)
    dot = float(p @ r)
    if abs(dot) > 1e-9 * float(p.norm() * r.norm()):
        flip = dot < 0
    else:
        flip = float(p[int(p.abs().argmax())]) < 0
    return (-p if flip else p).reshape(1, h, w)


def heatmap(lowres, w, h):
    """pytorch-grad-cam's min-max of the upsampled map; a map constant up to
    float rounding (judged on the low-resolution values) is 0 everywhere."""
    up = F.interpolate(lowres.float()[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].double()
    lo, hi = lowres.double().min(), lowres.double().max()
    if hi - lo <= FLAT * max(abs(lo), abs(hi)):
        return torch.zeros_like(up)
    return (up - up.min()) / (up.max() - up.min())


def reference(model, x, layer, target):
    """Forward hook on `layer` (its last call wins, as in fxcam), gradient of
    the target score with respect to that output."""
    module = model.get_submodule(layer)
    seen = {}

    def hook(mod, inp, out):
        seen["out"] = out
        return out.clone()  # later in-place ops (DenseNet's relu_) must not alter it

    handle = module.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[0, 0]).item()
        t = (1 if p >= 0.5 else 0) if target < 0 else target
        score = logits[0, 0] if t == 1 else -logits[0, 0]
    else:
        t = int(logits[0].argmax()) if target < 0 else target
        score = logits[0, t]
    (grad,) = torch.autograd.grad(score, seen["out"])
    return logits.detach()[0], t, seen["out"].detach(), grad.detach()


def small_cnn(out_channels=8, classes=3, in_ch=3):
    return nn.Sequential(nn.Conv2d(in_ch, out_channels, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(out_channels, classes))


def vgg11_small():
    m = torchvision.models.vgg11(num_classes=10)
    m.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 10))  # the 4096-wide head would weigh 500 MB
    return m


def resnet10(num_classes):
    """A ResNet-18 with one block per stage: the same module names and layer4
    at half the file size, for the head and preprocessing variants."""
    return torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1],
                                            num_classes=num_classes)


def resnet10_gray():
    m = resnet10(4)
    m.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return m


MANIFEST = []


def save(model, name, kind, size, channels, metadata):
    example = torch.zeros(1, channels, *size)
    with torch.no_grad():
        jit = torch.jit.trace(model, example, check_trace=False) if kind == "traced" else torch.jit.script(model)
    files = {"fxcam.json": json.dumps(metadata)} if metadata is not None else {}
    path = os.path.join(OUT, f"{name}_{kind}.pt")
    torch.jit.save(jit, path, _extra_files=files)
    return path


def case(name, ctor, kinds, layers, size=(64, 64), channels=3, metadata=None, image="rgb8", target=-1,
         mean=None, std=None, seed=0):
    torch.manual_seed(seed)
    model = ctor().eval()
    if metadata is None and tuple(size) != (224, 224):
        metadata = {"input_size": list(size)}
    if mean is None:
        mean, std = (IMAGENET if channels == 3 else ([0.5], [0.5]))
    img, w, h, _, _ = IMAGES[image]
    x = preprocess(img, channels, size, mean, std)
    for kind in kinds:
        path = save(model, name, kind, size, channels, metadata)
        for layer in layers:
            write_reference(os.path.basename(path), layer, model, layer, x, image, target)


def write_reference(file, layer, model, model_layer, x, image, target):
    """References for fxcam running `file` with `layer`, computed on the eager
    `model` hooked at `model_layer` (the same module; its name differs when
    the file wraps the model, e.g. Sequential(net, Softmax) has net's layers
    under "0.")."""
    img, w, h, _, _ = IMAGES[image]
    logits, t, A, G = reference(model, x, model_layer, target)
    tag = f"{file[:-3]}.{layer}.{target}"
    write(tag + ".logits", logits.numpy())
    write(tag + ".act", A.numpy())
    write(tag + ".grad", G.numpy())
    lows = {}
    for mname in METHODS:
        low = cam_lowres(mname, A, G)
        lows[mname] = low
        write(f"{tag}.{mname}.lowres", low.float().numpy())
        write(f"{tag}.{mname}.heat", heatmap(low, w, h).float().numpy())
    MANIFEST.append(" ".join(str(v) for v in [
        file, layer, image, target, t, logits.numel(), A.shape[1], A.shape[2], A.shape[3], tag]))
    return logits, t, lows


start = time.time()
IMAGES = test_images()
tv = torchvision.models
case("resnet18", lambda: tv.resnet18(num_classes=10), ["traced", "scripted"],
     ["layer4", "layer3", "layer4.1.conv2", "layer4.1.relu"])
case("densenet121", lambda: tv.densenet121(num_classes=10), ["traced", "scripted"],
     ["features", "features.denseblock4.denselayer16", "features.transition3"])
case("mobilenet_v3_small", lambda: tv.mobilenet_v3_small(num_classes=10), ["traced", "scripted"],
     ["features", "features.9"])
case("vgg11", vgg11_small, ["traced"], ["features.18", "features.20"], seed=3)
case("resnet50", lambda: tv.resnet50(num_classes=10), ["traced"], ["layer4", "layer4.2.conv3"], seed=4)
case("efficientnet_b0", lambda: tv.efficientnet_b0(num_classes=10), ["traced"], ["features", "features.7"], seed=5)
meta2 = {"input_size": [64, 64], "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
         "class_names": ["normal", "fracture"], "positive_class": 1, "target_layer": "layer3"}
case("two_class", lambda: resnet10(2), ["traced"], ["layer3", "layer4"], metadata=meta2,
     mean=meta2["mean"], std=meta2["std"], target=0, seed=6)
# A random-weight single-logit model's logits stay inside (0, 1) for every
# probe image, which the probe would read as probabilities: say what it is.
meta1 = {"input_size": [64, 64], "class_names": ["no fracture", "fracture"], "positive_class": 1,
         "output": "logits"}
for t in (-1, 0, 1):
    case("single_logit", lambda: resnet10(1), ["traced"], ["layer4"], metadata=meta1, target=t,
         seed=7)
meta_gray = {"input_size": [72, 56], "channels": 1, "mean": [0.5], "std": [0.5]}
case("gray", resnet10_gray, ["scripted"], ["layer4", "layer2"], size=(72, 56), channels=1, metadata=meta_gray,
     image="gray16", seed=8)
# Default input size (224) and ImageNet statistics, no metadata.
case("resnet10_224", lambda: resnet10(5), ["traced"], ["layer4"], size=(224, 224), seed=9)

# ---- What the output holds (issue 8) ----------------------------------------
# Models that end in softmax / log_softmax / sigmoid, exported as users do.
# The reference for the maps and logits is the bare network `net` (the
# Grad-CAM paper differentiates the score before the activation); the
# reference for the probabilities is what the exported model itself outputs.
# outputs.txt: file, output_kind option, expected fx_model_output_kind,
# expected predicted class, expected model warning code (0 = none), tag.
OUTPUTS = []
X64 = preprocess(IMAGES["rgb8"][0], 3, (64, 64), *IMAGENET)


def two_conv_net(classes):
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))


def save_plain(model, name, kind, metadata=None):
    """torch.jit.save of a traced or scripted model, as a user would."""
    jit = torch.jit.trace(model, X64[:1] * 0, check_trace=False) if kind == "traced" else torch.jit.script(model)
    meta = {"input_size": [64, 64]}
    meta.update(metadata or {})
    file = f"{name}_{kind}.pt"
    torch.jit.save(jit, os.path.join(OUT, file), _extra_files={"fxcam.json": json.dumps(meta)})
    return file


def expect_output(file, option, kind, warn, probs_of):
    """What fxcam must report for the model in `file`: the exported model's own
    probabilities, computed here by running it (torch.jit.load)."""
    with torch.no_grad():
        out = torch.jit.load(os.path.join(OUT, file))(X64)[0].double()
    probs = probs_of(out)
    tag = f"{file[:-3]}.option{option}"
    write(tag + ".probs", probs.numpy())
    OUTPUTS.append(f"{file} {option} {kind} {int(probs.argmax())} {warn} {tag}")
    return probs


torch.manual_seed(20)
net = two_conv_net(3).eval()
with torch.no_grad():  # confident: the exported model outputs 0.9999 for its top class
    z = net(X64)[0].double()
    top = int(z.argmax())
    others = torch.logsumexp(torch.cat([z[:top], z[top + 1:]]), 0)
    net[6].bias[top] += float(others + math.log(0.9999 / 0.0001) - z[top])
for act_name, act, probs_of in [("softmax", nn.Softmax(dim=1), lambda o: o),
                                ("log_softmax", nn.LogSoftmax(dim=1), lambda o: o.exp())]:
    for kind in ("traced", "scripted"):
        file = save_plain(nn.Sequential(net, act).eval(), f"act_{act_name}", kind)
        _, _, lows = write_reference(file, "0.3", net, "3", X64, "rgb8", -1)
        assert all(float(low.max()) > 0 for low in lows.values()), "the reference map of net must not be blank"
        p = expect_output(file, 0, 2, 0, probs_of)
        assert p.max() > 0.9998
# The override: the same softmax model declared as logits gets softmax applied
# once more (what the user asked for).
expect_output("act_softmax_traced.pt", 1, 1, 0, lambda o: torch.softmax(o, 0))
# fxcam.json that contradicts the graph: the graph wins, with a warning.
file = save_plain(nn.Sequential(net, nn.Softmax(dim=1)).eval(), "act_softmax_said_logits", "traced",
                  {"output": "logits"})
expect_output(file, 0, 2, 2, lambda o: o)

torch.manual_seed(21)
net1 = two_conv_net(1).eval()
with torch.no_grad():  # clearly negative: the exported model outputs 0.01
    net1[6].bias[0] += float(math.log(0.01 / 0.99) - net1(X64)[0, 0])
for kind in ("traced", "scripted"):
    file = save_plain(nn.Sequential(net1, nn.Sigmoid()).eval(), "act_sigmoid", kind)
    _, t, _ = write_reference(file, "0.3", net1, "3", X64, "rgb8", -1)
    assert t == 0
    p = expect_output(file, 0, 2, 0, lambda o: torch.cat([1 - o, o]))
    assert abs(p[0] - 0.99) < 1e-4


class HiddenSoftmax(nn.Module):
    """Softmax written out by hand: no aten::softmax in the graph."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        e = torch.exp(self.net(x))
        return e / e.sum(dim=1, keepdim=True)


torch.manual_seed(22)
hidden = HiddenSoftmax(two_conv_net(3)).eval()
file = save_plain(hidden, "hidden_softmax", "traced")
expect_output(file, 0, 2, 2, lambda o: o)  # guessed from the probe's values: a warning
file = save_plain(hidden, "hidden_softmax_declared", "traced", {"output": "probabilities"})
expect_output(file, 0, 2, 0, lambda o: o)
# Logits cannot be recovered: fxcam differentiates the probability itself.
write_reference(file, "net.3", hidden, "net.3", X64, "rgb8", -1)

# ---- Training-mode exports (issue 8) ----------------------------------------
# Traced and scripted without model.eval(). The reference is the eager
# network in eval mode with the weights and running statistics as saved.


def bn_dropout_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.3),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 3))


torch.manual_seed(23)
train_net = bn_dropout_net().train()
with torch.no_grad():  # running statistics far from batch statistics
    for _ in range(5):
        train_net(torch.randn(4, 3, 64, 64) * 2 + 1)
for kind in ("traced", "scripted"):
    file = save_plain(train_net, "training_mode", kind)
    saved = torch.jit.load(os.path.join(OUT, file))
    assert any(m.training for m in saved.modules())
    eval_net = bn_dropout_net()
    eval_net.load_state_dict(saved.state_dict())
    write_reference(file, "6", eval_net.eval(), "6", X64, "rgb8", -1)
train_net.eval()

# ---- An all-zero map (issue 8) ------------------------------------------------
# Non-negative activations (after ReLU) and a class whose weights are all
# negative: every method's map is 0 for that class.
torch.manual_seed(24)
zero_net = two_conv_net(2).eval()
with torch.no_grad():
    zero_net[6].weight[0] = -zero_net[6].weight[0].abs() - 0.01
file = save_plain(zero_net, "zero_map", "traced")
_, _, lows = write_reference(file, "3", zero_net, "3", X64, "rgb8", 0)
# The principal-component methods are not sums of the class evidence: Eigen-CAM
# ignores the class, and the component of G * A <= 0 may point either way.
assert all(float(low.abs().max()) == 0 for name, low in lows.items() if not name.startswith("eigen"))

# ---- Gradient-free methods with one forward per channel (issue 11) ---------
# Score-CAM and Ablation-CAM computed on the eager model: masks by
# F.interpolate(align_corners=True) (pytorch-grad-cam's UpsamplingBilinear2d),
# ablation by a forward hook that returns the ablated activations (as
# pytorch-grad-cam's AblationLayer replaces the module). channels.txt: file,
# layer, image, target, k, h, w, tag.
CHANNELS = []
SCORECAM_EPS = 1e-8  # pytorch-grad-cam's (maxs - mins + 1e-8)
ABLATION_VALUE = 1e7  # pytorch-grad-cam's AblationLayer: min - 1e7 unless min == 0


def channel_references(file, model, layer, x, image, target, batch=64):
    img, w, h, _, _ = IMAGES[image]
    logits, t, A, _ = reference(model, x, layer, target)
    weights = torch.zeros(logits.numel(), dtype=torch.float64)
    if logits.numel() == 1:
        weights[0] = 1.0 if t == 1 else -1.0
    else:
        weights[t] = 1.0
    k = A.shape[1]
    module = model.get_submodule(layer)

    def scores(out):
        return (out.double() * weights).sum(1)

    with torch.no_grad():
        up = F.interpolate(A, size=x.shape[-2:], mode="bilinear", align_corners=True)[0]
        lo = up.flatten(1).min(1).values[:, None, None]
        hi = up.flatten(1).max(1).values[:, None, None]
        masks = (up - lo) / (hi - lo + SCORECAM_EPS)
        score = torch.cat([scores(model(x * masks[i:i + batch, None])) for i in range(0, k, batch)])
        lows = {"scorecam": torch.clamp((torch.softmax(score, 0)[:, None, None] * A[0].double()).sum(0), min=0)}
        value = 0.0 if float(A.min()) == 0.0 else float(A.min()) - ABLATION_VALUE
        original = scores(model(x))[0]
        ablated = []
        for i in range(0, k, batch):
            idx = torch.arange(i, min(k, i + batch))
            rep = A.repeat(len(idx), 1, 1, 1)
            rep[torch.arange(len(idx)), idx] = value
            handle = module.register_forward_hook(lambda mod, inp, out: rep)
            try:
                ablated.append(scores(model(x.repeat(len(idx), 1, 1, 1))))
            finally:
                handle.remove()
        wts = (original - torch.cat(ablated)) / original
        lows["ablationcam"] = torch.clamp((wts[:, None, None] * A[0].double()).sum(0), min=0)
    tag = f"{file[:-3]}.{layer}.{target}.channels"
    for name, low in lows.items():
        assert float(low.max()) > 0, f"{tag} {name}: the reference map must not be blank"
        write(f"{tag}.{name}.lowres", low.float().numpy())
        write(f"{tag}.{name}.heat", heatmap(low, w, h).float().numpy())
    CHANNELS.append(" ".join(str(v) for v in [file, layer, image, target, k, A.shape[2], A.shape[3], tag]))


torch.manual_seed(25)
channel_cnn = small_cnn(out_channels=8, classes=3).eval()
file = os.path.basename(save(channel_cnn, "channel_cnn", "traced", (64, 64), 3, {"input_size": [64, 64]}))
channel_references(file, channel_cnn, "1", X64, "rgb8", -1)
channel_references(file, channel_cnn, "1", X64, "rgb8", 2)
torch.manual_seed(0)  # the weights of case("resnet18", ...) above
resnet18_eager = tv.resnet18(num_classes=10).eval()
channel_references("resnet18_traced.pt", resnet18_eager, "layer4", X64, "rgb8", -1)
# Inside a residual block: the identity branch still reads the image, and a
# conv output's minimum is negative (the ablation value is min - 1e7).
channel_references("resnet18_scripted.pt", resnet18_eager, "layer4.1.conv2", X64, "rgb8", 3)
with open(os.path.join(OUT, "channels.txt"), "w") as f:
    f.write("\n".join(CHANNELS) + "\n")

# ---- Targets and Smooth Grad-CAM++ (issue 11) --------------------------------
# resnet18_traced.pt, layer4, the batch [rgb8, gray16] (gray replicated to RGB).
# A weight vector w gives score = sum_c w_c logit_c; a class t is the one-hot w.


def weighted_reference(model, x, layer, weights):
    module = model.get_submodule(layer)
    seen = {}

    def hook(mod, inp, out):
        seen["out"] = out
        return out.clone()

    handle = module.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad((logits[0].double() * weights).sum(), seen["out"])
    return logits.detach()[0], seen["out"].detach(), grad.detach()


def one_hot(logits, target):
    w = torch.zeros(logits.numel(), dtype=torch.float64)
    w[int(logits.argmax()) if target < 0 else target] = 1.0
    return w


MASK64 = (1 << 64) - 1


def smooth_noise(x, seed, image, sample, noise):
    """docs/algorithms.md, Smooth Grad-CAM++: SplitMix64 from state seed ^
    (image << 32 | sample), element e takes draws 2e and 2e + 1 (Box-Muller),
    sigma = noise * (max - min) of x; returns x + float32(sigma * z)."""
    size = x.numel()
    state = np.uint64((seed ^ ((image << 32) | sample)) & MASK64)
    with np.errstate(over="ignore"):
        z = state + np.uint64(0x9E3779B97F4A7C15) * np.arange(1, 2 * size + 1, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    d = (z >> np.uint64(11)).astype(np.float64)
    u1 = (d[0::2] + 1.0) * 2.0 ** -53
    u2 = d[1::2] * 2.0 ** -53
    normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
    sigma = noise * (float(x.max()) - float(x.min()))
    return x + torch.from_numpy((sigma * normal).astype(np.float32)).reshape(x.shape)


SMOOTH = {"samples": 5, "noise": 0.2, "seed": 12345}
targets_lines = []
batch_x = [X64, preprocess(IMAGES["gray16"][0], 3, (64, 64), *IMAGENET)]
for mode, spec in (("classes", [3, -1]), ("weights", [0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -0.25, 0.0, 0.75])):
    for i, (name, x) in enumerate(zip(["rgb8", "gray16"], batch_x)):
        img, w, h, _, _ = IMAGES[name]
        with torch.no_grad():
            logits = resnet18_eager(x)[0]
        wts = one_hot(logits, spec[i]) if mode == "classes" else torch.tensor(spec, dtype=torch.float64)
        _, A, G = weighted_reference(resnet18_eager, x, "layer4", wts)
        for mname in ("gradcam", "gradcam++"):
            write(f"targets.{mode}.{i}.{mname}.heat", heatmap(cam_lowres(mname, A, G), w, h).float().numpy())
        targets_lines.append(f"{mode} {i} {int(wts.argmax()) if mode == 'classes' else -1}")
        if mode == "classes":  # Smooth Grad-CAM++: same targets, noisy copies
            Gs = []
            for s_ in range(SMOOTH["samples"]):
                xn = smooth_noise(x, SMOOTH["seed"], i, s_, SMOOTH["noise"])
                Gs.append(weighted_reference(resnet18_eager, xn, "layer4", wts)[2].double())
            low = cam_lowres("gradcam++", A, torch.stack(Gs).mean(0))
            assert float(low.max()) > 0
            write(f"targets.smooth.{i}.lowres", low.float().numpy())
            write(f"targets.smooth.{i}.heat", heatmap(low, w, h).float().numpy())
with open(os.path.join(OUT, "targets.txt"), "w") as f:
    f.write("\n".join(targets_lines) + "\n")

with open(os.path.join(OUT, "outputs.txt"), "w") as f:
    f.write("\n".join(OUTPUTS) + "\n")

# Models that must be refused.
torch.manual_seed(10)
torch.jit.save(torch.jit.trace(nn.Sequential(nn.Conv2d(3, 4, 3)), torch.zeros(1, 3, 64, 64)),
               os.path.join(OUT, "bad_output.pt"), _extra_files={"fxcam.json": json.dumps({"input_size": [64, 64]})})
nan_model = small_cnn()
with torch.no_grad():
    nan_model[4].bias[1] = float("nan")
torch.jit.save(torch.jit.trace(nan_model, torch.zeros(1, 3, 64, 64)), os.path.join(OUT, "nan_logits.pt"),
               _extra_files={"fxcam.json": json.dumps({"input_size": [64, 64]})})
small = torch.jit.trace(small_cnn(), torch.zeros(1, 3, 64, 64))
torch.jit.save(small, os.path.join(OUT, "bad_json.pt"), _extra_files={"fxcam.json": "{\"input_size\": [64, 64"})
torch.jit.save(small, os.path.join(OUT, "bad_type.pt"), _extra_files={"fxcam.json": json.dumps({"mean": "gray"})})
torch.jit.save(small, os.path.join(OUT, "bad_names.pt"),
               _extra_files={"fxcam.json": json.dumps({"input_size": [64, 64], "class_names": ["a", "b"]})})
with open(os.path.join(OUT, "two_class_traced.pt"), "rb") as f:
    blob = f.read()
with open(os.path.join(OUT, "truncated.pt"), "wb") as f:
    f.write(blob[: len(blob) // 2])
with open(os.path.join(OUT, "not_a_model.pt"), "w") as f:
    f.write("this is a text file, not a TorchScript archive\n")

with open(os.path.join(OUT, "manifest.txt"), "w") as f:
    f.write("\n".join(MANIFEST) + "\n")
print(f"{len(MANIFEST)} reference cases in {time.time() - start:.1f} s")
