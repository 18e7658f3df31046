"""Fixes from a new-user review: --resume with a deleted output, boxes outside
the image in evaluate, and the reason `fxcam info` gives for the output kind.
Fixtures and helpers come from test_cli.py (the tiny model of known Grad-CAM)."""
import csv
import re

import cv2
import numpy as np
import pytest

from test_cli import BOX, H, W, expected_heatmap, make_image, run, tiny_model  # noqa: F401 (tiny_model is a fixture)

torch_only = pytest.mark.torch


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@torch_only
def test_resume_does_not_carry_a_row_whose_output_was_deleted(tiny_model, tmp_path):  # noqa: F811
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        cv2.imwrite(str(src / ("img%02d.png" % i)), make_image(i, i % 2 == 0))
    out = tmp_path / "out"
    base = ("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out))
    assert run(*base).returncode == 0
    outputs = {row["file"]: row["output"] for row in read_rows(out / "summary.csv")}
    # one deleted output inside the next run's --max-images, one beyond it
    for name in ("img01.png", "img03.png"):
        (out / ("%s_gradcam.png" % name[:-4])).unlink()
    r = run(*base, "--resume", "--max-images", "2")
    assert r.returncode == 0, r.stderr
    rows = {row["file"]: row for row in read_rows(out / "summary.csv")}
    assert sorted(rows) == ["img%02d.png" % i for i in range(5)]
    # within --max-images: recomputed, the file is back
    assert rows["img01.png"]["status"] == "ok"
    assert (out / "img01_gradcam.png").is_file()
    # beyond --max-images: not carried as ok, no output named, no class counted
    beyond = rows["img03.png"]
    assert not beyond["status"].startswith("ok"), beyond
    assert "output of the earlier run is missing" in beyond["status"]
    assert beyond["output"] == "" and beyond["predicted_class"] == ""
    assert rows["img02.png"]["status"] == rows["img04.png"]["status"] == "ok (earlier run)"
    assert rows["img04.png"]["output"] == outputs["img04.png"]
    # summary.txt counts the same files as summary.csv lists
    text = (out / "summary.txt").read_text()
    assert re.search(r"^images:\s+5 files \(PNG, JPEG, DICOM\), 1 processed, 0 failed, 1 skipped", text, re.M), text
    assert re.search(r"^this run:\s+2 files \(--max-images\); the other 3 rows", text, re.M), text
    assert re.search(r"^missing:\s+1 results", text, re.M), text
    assert re.search(r"^all\s+4  \d+\.\d%$", text, re.M), text  # img03 is not counted


@torch_only
def test_evaluate_warns_about_boxes_outside_the_image_and_refuses_disjoint_ones(tiny_model, tmp_path):  # noqa: F811
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / ("img%02d.png" % i)), make_image(i, i % 2 == 0))
    x0, y0, x1, y1 = BOX
    partly = (x0, y0, W + 20, y1)  # runs past the right edge
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\n"
                     "img00.png,1,300,300,400,400\n"
                     "img01.png,0,,,,\n"
                     "img02.png,1,%d,%d,%d,%d\n" % partly)
    csv_out = tmp_path / "eval.csv"
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(src), "--boxes", str(boxes), "--csv", str(csv_out))
    assert r.returncode == 1, r.stderr  # one image failed; the others were scored
    size = "%dx%d image" % (W, H)
    assert ("img00.png: box 300,300,400,400 is entirely outside the %s (boxes are in the image's pixel "
            "coordinates" % size) in r.stderr, r.stderr
    assert "img02.png: box %d,%d,%d,%d is partly outside the %s" % (partly + (size,)) in r.stderr, r.stderr
    assert "2 evaluated, 1 failed; 1 with boxes" in r.stdout, r.stdout
    rows = {row["file"]: row for row in csv.DictReader(open(csv_out, newline=""))}
    assert rows["img00.png"]["status"].startswith("failed: refused: box 300,300,400,400 lies entirely outside")
    # img02 is still scored: its peak (recomputed) lies in the part of the box inside the image
    heat = expected_heatmap(make_image(2, True))
    py, px = np.unravel_index(np.argmax(heat), heat.shape)
    want = int(partly[0] <= px <= partly[2] and partly[1] <= py <= partly[3])
    assert rows["img02.png"]["status"] == "ok" and rows["img02.png"]["pointing_hit"] == str(want)


def save_model(module, path, **meta):
    import json
    import torch
    base = {"input_size": [64, 64], "channels": 1, "mean": [0.0], "std": [1.0], "target_layer": "features"}
    base.update(meta)
    traced = torch.jit.trace(module.eval(), torch.zeros(1, 1, 64, 64))
    torch.jit.save(traced, str(path), _extra_files={"fxcam.json": json.dumps(base)})
    return str(path)


def output_line(model, *extra):
    r = run("info", "--model", model, *extra)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("output:")]
    assert len(lines) == 1, r.stdout
    return lines[0], r.stderr


@torch_only
def test_info_says_how_the_output_kind_was_decided(tiny_model, tmp_path):  # noqa: F811
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, tail):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
            self.classifier = nn.Linear(4, 2)
            self.tail = tail

        def forward(self, x):
            z = self.classifier(self.features(x).mean(dim=(2, 3)))
            if self.tail == "softmax":
                return torch.softmax(z, dim=1)
            if self.tail == "constant":  # probability-like rows, but no activation in the graph
                p = 0.3 + 0.1 * torch.tanh(z[:, :1])
                return torch.cat([p, 1 - p], dim=1)
            return z

    # the option decides, whatever the model
    line, _ = output_line(tiny_model, "--output-kind", "probabilities")
    assert line.split() [1:] == ["probabilities", "(set", "by", "--output-kind)"], line
    assert "ends in an activation" not in line
    # the graph: a final softmax
    soft = save_model(Net("softmax"), tmp_path / "soft.pt")
    line, _ = output_line(soft)
    assert line.startswith("output:         probabilities (graph: final softmax"), line
    # guessed from the probe's values: the reason points at the warning that was printed
    guess = save_model(Net("constant"), tmp_path / "guess.pt")
    line, err = output_line(guess)
    assert line == "output:         probabilities (guessed from the probe's values; see the warning)", line
    assert "look like probabilities" in err
    # plain logits
    line, _ = output_line(save_model(Net("none"), tmp_path / "logits.pt"))
    assert line.startswith("output:         logits ("), line
