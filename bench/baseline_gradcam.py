#!/usr/bin/python3
"""What pytorch-grad-cam does, for timing `fxcam batch` against it (docs/performance.md).

pytorch-grad-cam is not installable here, so this is its Grad-CAM written out:
an eager torchvision model, a forward hook on the target layer that keeps the
activations and registers a tensor hook for their gradient, a full backward of
the summed target scores (parameters keep requires_grad, as there), the
channel-mean weights, ReLU, per-image min-max scaling and cv2.resize, then
cv2.applyColorMap and an original | heatmap | overlay strip with panels 512 px
high, written with cv2.imwrite (no captions).

    baseline_gradcam.py export OUT_DIR
        writes OUT_DIR/densenet121.pth (state dict, eager) and OUT_DIR/densenet121.pt
        (the same weights traced, with fxcam.json) from one random initialisation
    baseline_gradcam.py run WEIGHTS.pth IMAGE_DIR OUTPUT_DIR [--batch-size 8]
        one figure per *.png of IMAGE_DIR, in sorted order
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
import torch
import torchvision

INPUT_SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PANEL = 512


def export(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.densenet121(num_classes=2).eval()
    torch.save(model.state_dict(), os.path.join(out_dir, "densenet121.pth"))
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    meta = {"format": 1, "input_size": [INPUT_SIZE, INPUT_SIZE], "channels": 3, "mean": MEAN.tolist(),
            "std": STD.tolist(), "class_names": ["normal", "fracture"], "target_layer": "features.norm5"}
    torch.jit.save(traced, os.path.join(out_dir, "densenet121.pt"), _extra_files={"fxcam.json": json.dumps(meta)})


class GradCAM:
    """pytorch_grad_cam.GradCAM with ActivationsAndGradients, reduced to its steps."""

    def __init__(self, model, layer):
        self.model = model
        self.activations = None
        self.gradients = None
        layer.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self.activations = output.cpu().detach()

        def keep_gradient(grad):
            self.gradients = grad.cpu().detach()

        output.register_hook(keep_gradient)

    def __call__(self, batch):
        outputs = self.model(batch)
        targets = outputs.argmax(dim=1)
        self.model.zero_grad()
        loss = sum(outputs[i, targets[i]] for i in range(len(targets)))
        loss.backward(retain_graph=True)
        weights = self.gradients.mean(dim=(2, 3), keepdim=True)
        cams = torch.relu((weights * self.activations).sum(dim=1)).numpy()
        scaled = []
        for cam in cams:  # scale_cam_image
            cam = cam - cam.min()
            cam = cam / (1e-7 + cam.max())
            scaled.append(cv2.resize(cam, (INPUT_SIZE, INPUT_SIZE)))
        return np.float32(scaled), torch.softmax(outputs.detach(), 1)


def preprocess(image16):
    x = cv2.resize(image16.astype(np.float32) / 65535.0, (INPUT_SIZE, INPUT_SIZE))
    x = (np.repeat(x[:, :, None], 3, axis=2) - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy())


def figure(image16, cam):
    original = cv2.resize(image16, (PANEL * image16.shape[1] // image16.shape[0], PANEL), interpolation=cv2.INTER_AREA)
    original = cv2.cvtColor((original / 257.0).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    mask = cv2.resize(cam, (original.shape[1], PANEL))
    heatmap = cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET)
    overlay = np.float32(heatmap) / 255 * 0.4 + np.float32(original) / 255 * 0.6  # show_cam_on_image
    overlay = np.uint8(255 * overlay / np.max(overlay))
    return np.hstack([original, heatmap, overlay])


def run(weights, image_dir, output_dir, batch_size):
    start = time.monotonic()
    model = torchvision.models.densenet121(num_classes=2)
    model.load_state_dict(torch.load(weights))
    model.eval()
    cam = GradCAM(model, model.features.norm5)
    names = sorted(n for n in os.listdir(image_dir) if n.lower().endswith(".png"))
    os.makedirs(output_dir, exist_ok=True)
    for first in range(0, len(names), batch_size):
        chunk = names[first:first + batch_size]
        images = [cv2.imread(os.path.join(image_dir, n), cv2.IMREAD_UNCHANGED) for n in chunk]
        batch = torch.stack([preprocess(im) for im in images])
        cams, _ = cam(batch)
        for name, image, m in zip(chunk, images, cams):
            out = os.path.join(output_dir, os.path.splitext(name)[0] + "_gradcam.png")
            if not cv2.imwrite(out, figure(image, m)):
                raise OSError("cannot write " + out)
    print("baseline: %d images in %.2f s (model load included, imports not)" % (len(names), time.monotonic() - start))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export")
    e.add_argument("out_dir")
    r = sub.add_parser("run")
    r.add_argument("weights")
    r.add_argument("image_dir")
    r.add_argument("output_dir")
    r.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    if args.command == "export":
        export(args.out_dir)
    else:
        run(args.weights, args.image_dir, args.output_dir, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
