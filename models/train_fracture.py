#!/usr/bin/python3
"""Trains fxcam's embedded fracture classifier on synthetic radiographs.

    /usr/bin/python3 models/train_fracture.py --out models/fracture_densenet.pt
    /usr/bin/python3 models/train_fracture.py --evaluate models/fracture_densenet.pt

Training is reproducible: the images come from models/synth_radiograph.py with
fixed seeds (training set seed 1, held-out set seed 1000, which shares no image
with it), and torch is seeded. It runs on the CPU with 2 threads.

Sizes: the generator's physics is in millimetres (a fixed field of view), so a
scene looks the same at any pixel count. Each training image is rendered at a
size drawn from TRAIN_SIZES (256 to 2048 px, mostly small ones: a 2048 px image
costs ~50 times a 256 px one) and brought to the input size exactly as fxcam
will at inference: samples / 4095 (what fxcam's "auto" intensity does with the
files' sBIT 12), then torch.nn.functional.interpolate(bilinear,
align_corners=False, antialias=True), which is fxcam's "stretch-antialias"
resize mode (lib/preprocess.c), named in the model's fxcam.json. Only the
128 x 128 inputs are kept (and cached with --cache).

The model is a small DenseNet with torchvision's layer names (features.conv0,
features.denseblock1, features.transition1, features.denseblock2,
features.norm5, classifier). Only two dense blocks, so the map of `features`
is 16x16 for the 128x128 input: fine enough for a heatmap to sit on a fracture
line. The input is one channel, the 12-bit image divided by 4095 and resized
to 128x128 with antialiasing (above). The first module of `features`
standardizes each image (zero mean, unit standard deviation), so the model
does not depend on the bit depth or exposure of the image: the mean and std
in fxcam.json are therefore 0 and 1.

Besides cross-entropy on the labels, training asks the classifier, applied at
each cell of the `features` map, for "fracture" inside the training images'
fracture boxes and "normal" elsewhere, so that the Grad-CAM map sits on the
fracture line rather than in a ring around it (see models/README.md).

--evaluate reports the held-out accuracy and, on the fractured images, the
pointing game of Grad-CAM and Grad-CAM++ computed on the saved TorchScript
file (peak of the map, upsampled to the image, inside a fracture box).
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth_radiograph  # noqa: E402

INPUT_SIZE = 128
# Rendering sizes of the training images and their shares: every size from
# 256 to 2048 px is seen, at a generation cost about 3.5 times that of 256 px alone.
TRAIN_SIZES = (256, 320, 448, 512, 768, 1024, 1536, 2048)
TRAIN_SIZE_SHARES = (0.60, 0.10, 0.08, 0.08, 0.06, 0.05, 0.015, 0.015)
HELDOUT_SIZE = 256
CLASS_NAMES = ["normal", "fracture"]
TRAIN_SEED = 1
FEATURE_STRIDE = 8  # input pixels per cell of the features map
LOCALIZATION_WEIGHT = 0.5
POS_WEIGHT = 5.0
HELDOUT_SEED = 1000


class Standardize(nn.Module):
    """Per-image zero mean, unit standard deviation: makes the model blind to
    how the pixel values were scaled (8-, 12- or 16-bit, any exposure)."""

    def forward(self, x):
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = ((x - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-12)


class FractureDenseNet(torchvision.models.DenseNet):
    """torchvision's DenseNet, 1-channel, with a non-inplace ReLU after
    `features` so that whoever captures that output sees it unchanged."""

    def __init__(self):
        super().__init__(growth_rate=12, block_config=(6, 12), num_init_features=32,
                         bn_size=4, num_classes=len(CLASS_NAMES))
        layers = list(self.features.named_children())
        conv0 = nn.Conv2d(1, 32, kernel_size=5, stride=2, padding=2, bias=False)
        nn.init.kaiming_normal_(conv0.weight)
        layers = [("standardize", Standardize()), ("conv0", conv0)] + \
                 [(name, module) for name, module in layers if name != "conv0"]
        self.features = nn.Sequential(OrderedDict(layers))

    def forward(self, x):
        features = self.features(x)
        out = F.relu(features)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        return self.classifier(out)


def preprocess(image_u16):
    """What fxcam does with the model's fxcam.json (intensity "auto" on a PNG
    with sBIT 12: v / 4095; resize_mode "stretch-antialias"): 1 x 1 x 128 x 128."""
    x = torch.from_numpy(image_u16.astype(np.float32) / 4095.0)[None, None]
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)


def training_size(seed, index):
    """The rendering size of one training image, fixed by (seed, index)."""
    rng = np.random.default_rng([int(seed), int(index), 0x512E])
    return int(rng.choice(TRAIN_SIZES, p=TRAIN_SIZE_SHARES))


def _worker_init():
    torch.set_num_threads(1)


def _generate_one(args):
    index, seed, size = args
    image, label, boxes = synth_radiograph.generate(index, seed, size)
    return preprocess(image)[0], label, boxes, size


def _cache_path(cache, seed, sizes):
    """A cache file named by everything the set depends on."""
    digest = hashlib.sha1()
    for name in ("synth_radiograph.py", "train_fracture.py"):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), "rb") as fh:
            text = fh.read()
        if name == "train_fracture.py":  # only the preprocessing part matters for the set
            text = text[text.index(b"def preprocess"):text.index(b"def _cache_path")]
        digest.update(text)
    digest.update(repr((seed, sizes, INPUT_SIZE)).encode())
    return os.path.join(cache, "fracture_set_%d_%d_%s.pt" % (seed, len(sizes), digest.hexdigest()[:12]))


def make_set(seed, count, workers, size=None, cache=None):
    """count generated images as (inputs N x 1 x 128 x 128, labels, boxes, sizes);
    size None: each image at its training_size()."""
    sizes = [size or training_size(seed, i) for i in range(count)]
    path = _cache_path(cache, seed, sizes) if cache else None
    if path and os.path.exists(path):
        return torch.load(path)
    jobs = [(i, seed, sizes[i]) for i in range(count)]
    # The big ones first, so the pool does not end on one straggler.
    jobs.sort(key=lambda j: -j[2])
    if workers > 1:
        with multiprocessing.Pool(workers, initializer=_worker_init) as pool:
            results = pool.map(_generate_one, jobs, chunksize=8)
    else:
        results = [_generate_one(j) for j in jobs]
    order = sorted(range(count), key=lambda n: jobs[n][0])
    results = [results[n] for n in order]
    inputs = torch.stack([r[0] for r in results])
    labels = torch.tensor([r[1] for r in results], dtype=torch.long)
    boxes = [r[2] for r in results]
    data = (inputs, labels, boxes, sizes)
    if path:
        os.makedirs(cache, exist_ok=True)
        torch.save(data, path)
    return data


def box_masks(boxes, sizes):
    """Per cell of the features map: target 1 where the cell's centre lies in a
    fracture box, and weight 0 (ignored) for cells a box only grazes."""
    cells = INPUT_SIZE // FEATURE_STRIDE
    target = torch.zeros(len(boxes), 1, cells, cells)
    weight = torch.ones(len(boxes), 1, cells, cells)
    for n, image_boxes in enumerate(boxes):
        step = sizes[n] / cells
        for x0, y0, x1, y1 in image_boxes:
            for i in range(cells):
                for j in range(cells):
                    cy, cx = (i + 0.5) * step - 0.5, (j + 0.5) * step - 0.5
                    touches = (x0 <= (j + 1) * step - 1 and x1 >= j * step and
                               y0 <= (i + 1) * step - 1 and y1 >= i * step)
                    if x0 <= cx <= x1 and y0 <= cy <= y1:
                        target[n, 0, i, j] = 1.0
                    elif touches:
                        weight[n, 0, i, j] = 0.0
    weight = torch.where(target > 0, torch.ones_like(weight), weight)
    return target, weight


def augment(tensors, generator):
    """Random flips and transposition (the eight symmetries of the square),
    the same for an image batch and its box masks."""
    if torch.rand(1, generator=generator).item() < 0.5:
        tensors = [t.flip(3) for t in tensors]
    if torch.rand(1, generator=generator).item() < 0.5:
        tensors = [t.flip(2) for t in tensors]
    if torch.rand(1, generator=generator).item() < 0.5:
        tensors = [t.transpose(2, 3) for t in tensors]
    return tensors


def forward_with_local(model, x):
    """The model's forward, plus each class's logit at every cell of the
    features map (the global logits are their mean)."""
    activations = model.features(x)
    positive = F.relu(activations)
    logits = model.classifier(torch.flatten(F.adaptive_avg_pool2d(positive, (1, 1)), 1))
    local = torch.einsum("nchw,kc->nkhw", positive, model.classifier.weight) + \
        model.classifier.bias[None, :, None, None]
    return logits, local


def localization_loss(local, target, weight):
    """Fracture evidence inside the boxes, normal evidence elsewhere: the
    heatmap is asked to sit on the fracture line, not merely near it."""
    fracture = F.binary_cross_entropy_with_logits(local[:, 1:2], target, weight=weight,
                                                  pos_weight=torch.tensor(POS_WEIGHT))
    normal = F.binary_cross_entropy_with_logits(local[:, 0:1], 1.0 - target, weight=weight)
    return fracture + normal


def pointing_game(model, inputs, labels, boxes, sizes, method="gradcam"):
    hits, total = 0, 0
    fractured = [i for i in range(len(labels)) if labels[i] == 1]
    for start in range(0, len(fractured), 64):
        chunk = fractured[start:start + 64]
        _, maps = cams(model, inputs[chunk], 1)
        for j, i in enumerate(chunk):
            x, y = peak(maps[method][j], sizes[i])
            hits += any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes[i])
            total += 1
    return hits / max(total, 1)


def accuracy(model, inputs, labels):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(inputs[i:i + 128]) for i in range(0, len(inputs), 128)])
    return (logits.argmax(1) == labels).float().mean().item()


def train(args):
    torch.manual_seed(args.seed)
    t0 = time.time()
    train_x, train_y, train_boxes, train_sizes = make_set(TRAIN_SEED, args.train_count, args.workers,
                                                          cache=args.cache)
    held_x, held_y, held_boxes, held_sizes = make_set(HELDOUT_SEED, args.eval_count, args.workers,
                                                      size=args.eval_size, cache=args.cache)
    train_target, train_weight = box_masks(train_boxes, train_sizes)
    print("data: %d training (%d fractured; sizes %s), %d held-out images at %d px, generated in %.0f s"
          % (len(train_y), int(train_y.sum()),
             ", ".join("%d: %d" % (s, train_sizes.count(s)) for s in TRAIN_SIZES),
             len(held_y), args.eval_size, time.time() - t0), flush=True)

    model = FractureDenseNet()
    if args.init:
        # Fine-tuning: start from a saved model's weights (a traced module has the eager one's names).
        model.load_state_dict(torch.jit.load(args.init).state_dict())
        print("initialized from %s" % args.init, flush=True)
    steps_per_epoch = len(train_y) // args.batch
    total = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total,
                                                   pct_start=0.15)
    generator = torch.Generator().manual_seed(args.seed)
    t_train = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator)
        running = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch:(step + 1) * args.batch]
            batch, target, weight = augment([train_x[idx], train_target[idx], train_weight[idx]], generator)
            logits, local = forward_with_local(model, batch)
            loss = F.cross_entropy(logits, train_y[idx])
            if args.localization_weight > 0:
                loss = loss + args.localization_weight * localization_loss(local, target, weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item()
            if (step + 1) % 50 == 0:
                print("  epoch %d step %d/%d loss %.4f (%.0f s)" % (epoch + 1, step + 1, steps_per_epoch,
                      running / 50, time.time() - t_train), flush=True)
                running = 0.0
        print("epoch %d: held-out accuracy %.4f, Grad-CAM pointing game %.4f (%.0f s training so far)"
              % (epoch + 1, accuracy(model, held_x, held_y),
                 pointing_game(model, held_x, held_y, held_boxes, held_sizes), time.time() - t_train), flush=True)

    model.eval()
    save(model, args.out)
    print("saved %s (%d bytes); total time %.0f s" % (args.out, os.path.getsize(args.out), time.time() - t0),
          flush=True)


def metadata():
    return {
        "format": 1,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "channels": 1,
        "mean": [0.0],
        "std": [1.0],
        "class_names": CLASS_NAMES,
        "positive_class": 1,
        "target_layer": "features",
        "intensity": "auto",
        "resize_mode": "stretch-antialias",
    }


def save(model, path):
    example = torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE)
    example[:, :, 40:80, :] = 0.03  # not constant, so standardization is traced on real values
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
        check = torch.rand(3, 1, INPUT_SIZE, INPUT_SIZE) * 0.0625
        if not torch.allclose(traced(check), model(check), atol=1e-5):
            raise RuntimeError("traced model disagrees with the eager one")
    torch.jit.save(traced, path, _extra_files={"fxcam.json": json.dumps(metadata())})


def cams(model, inputs, target_class):
    """Grad-CAM and Grad-CAM++ maps (N x h x w) of `features` for target_class,
    computed on the TorchScript model's own submodules."""
    activations = model.features(inputs).detach().requires_grad_(True)
    pooled = F.adaptive_avg_pool2d(F.relu(activations), (1, 1)).flatten(1)
    logits = model.classifier(pooled)
    score = logits[:, target_class].sum()
    (grads,) = torch.autograd.grad(score, activations)
    a, g = activations.detach(), grads
    gradcam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1))
    g2, g3 = g * g, g * g * g
    denom = 2.0 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
    alpha = torch.where(g != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    weights = (alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True)
    gradcampp = F.relu((weights * a).sum(1))
    return logits.detach(), {"gradcam": gradcam, "gradcam++": gradcampp}


def peak(cam, size):
    """Peak (x, y) of the map upsampled bilinearly to the image size."""
    up = F.interpolate(cam[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    flat = int(torch.argmax(up))
    return flat % size, flat // size


def evaluate(args):
    torch.manual_seed(0)
    model = torch.jit.load(args.evaluate)
    model.eval()
    t0 = time.time()
    inputs, labels, boxes, sizes = make_set(HELDOUT_SEED, args.eval_count, args.workers, size=args.eval_size,
                                            cache=args.cache)
    with torch.no_grad():
        logits = torch.cat([model(inputs[i:i + 128]) for i in range(0, len(inputs), 128)])
    predicted = logits.argmax(1)
    acc = (predicted == labels).float().mean().item()
    tp = int(((predicted == 1) & (labels == 1)).sum())
    tn = int(((predicted == 0) & (labels == 0)).sum())
    print("held-out (seed %d, %d px): %d images, %d fractured; accuracy %.4f (sensitivity %d/%d, specificity %d/%d)"
          % (HELDOUT_SEED, args.eval_size, len(labels), int(labels.sum()), acc, tp, int(labels.sum()), tn,
             int((labels == 0).sum())))
    hits = {"gradcam": 0, "gradcam++": 0}
    fractured = [i for i in range(len(labels)) if labels[i] == 1]
    for start in range(0, len(fractured), 64):
        chunk = fractured[start:start + 64]
        _, maps = cams(model, inputs[chunk], 1)
        for method, batch in maps.items():
            for j, i in enumerate(chunk):
                x, y = peak(batch[j], sizes[i])
                if any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes[i]):
                    hits[method] += 1
    for method, count in hits.items():
        print("pointing game %-9s (target: fracture, layer: features): %d/%d = %.4f"
              % (method, count, len(fractured), count / len(fractured)))
    print("evaluation time %.0f s" % (time.time() - t0))
    return acc, hits, len(fractured)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "fracture_densenet.pt"))
    parser.add_argument("--evaluate", metavar="MODEL", help="evaluate a saved model instead of training")
    parser.add_argument("--train-count", type=int, default=6000)
    parser.add_argument("--eval-count", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--localization-weight", type=float, default=LOCALIZATION_WEIGHT,
                        help="weight of the box-supervised loss on the per-cell logits (0: labels only)")
    parser.add_argument("--eval-size", type=int, default=HELDOUT_SIZE, help="held-out image size in pixels")
    parser.add_argument("--cache", metavar="DIR", help="keep the generated 128x128 inputs here (keyed by the "
                        "generator's and the preprocessing's source), so a rerun skips generation")
    parser.add_argument("--init", metavar="MODEL", help="start from this saved model's weights (fine-tuning)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes generating images")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.evaluate:
        evaluate(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
