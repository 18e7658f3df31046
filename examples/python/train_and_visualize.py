#!/usr/bin/python3
"""Watching what a classifier looks at while it trains.

A tiny CNN learns to tell synthetic "radiographs" with a bright line (a
"fracture") from those without. At the end of every epoch the model is saved
as a TorchScript checkpoint with its preprocessing (fxcam.json), loaded with
the fxcam bindings, and Grad-CAM figures of a few validation images are
written to OUT_DIR/epoch_<n>/. The heatmaps should move onto the line as the
model learns.

    train_and_visualize.py [--epochs 3] [--samples 256] OUT_DIR
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn

import fxcam

SIZE = 64


def make_data(n, rng):
    """Gray images with soft noise; label 1 has a bright random line."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images = np.empty((n, SIZE, SIZE), np.float32)
    labels = rng.integers(0, 2, n)
    for k in range(n):
        img = 0.3 + 0.2 * np.sin(xx / rng.uniform(5, 15)) * np.cos(yy / rng.uniform(5, 15))
        img += rng.normal(0, 0.05, img.shape)
        if labels[k]:
            angle = rng.uniform(0, np.pi)
            cx, cy = rng.uniform(16, 48, 2)
            dist = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
            along = np.abs((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle))
            img += 0.5 * np.exp(-dist ** 2 / 2.0) * (along < 12)
        images[k] = np.clip(img, 0, 1)
    return images, labels


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2))


METADATA = {"input_size": [SIZE, SIZE], "channels": 1, "mean": [0.5], "std": [0.25],
            "class_names": ["normal", "fracture"], "positive_class": 1, "target_layer": "7"}


def save_checkpoint(model, path):
    """TorchScript (traced) with fxcam.json: what fxcam.Model loads."""
    model.eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(1, 1, SIZE, SIZE))
    torch.jit.save(traced, path, _extra_files={"fxcam.json": json.dumps(METADATA)})
    model.train()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--show", type=int, default=4, help="validation images visualized per epoch")
    parser.add_argument("out_dir")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    train_x, train_y = make_data(args.samples, rng)
    val_x, val_y = make_data(max(args.show, 16), rng)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = (torch.from_numpy(train_x)[:, None] - 0.5) / 0.25  # the preprocessing of METADATA
    y = torch.from_numpy(train_y)
    os.makedirs(args.out_dir, exist_ok=True)

    for epoch in range(1, args.epochs + 1):
        for start in range(0, len(x), 32):
            optimizer.zero_grad()
            loss = loss_fn(model(x[start:start + 32]), y[start:start + 32])
            loss.backward()
            optimizer.step()

        checkpoint = os.path.join(args.out_dir, f"epoch_{epoch}.pt")
        save_checkpoint(model, checkpoint)
        # The bindings see the checkpoint exactly as a deployed model would.
        cam_model = fxcam.Model(checkpoint, device="cpu")
        result = fxcam.GradCAM(cam_model).compute_batch(list(val_x))  # float32 images in [0, 1]
        accuracy = np.mean([result.predicted_class(k) == val_y[k] for k in range(len(val_y))])
        shown = [val_x[k] for k in range(args.show)]
        figures = fxcam.batch_visualize(cam_model, shown, os.path.join(args.out_dir, f"epoch_{epoch}"))
        print(f"epoch {epoch}: loss {loss.item():.3f}, validation accuracy {accuracy:.0%}, "
              f"{len(figures)} figures in {os.path.dirname(figures[0])}")


if __name__ == "__main__":
    main()
