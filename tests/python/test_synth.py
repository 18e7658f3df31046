"""Tests of the synthetic radiograph generator (models/synth_radiograph.py).

Run with: /usr/bin/python3 -m pytest tests/python/test_synth.py
"""

import csv
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "..", "models")
sys.path.insert(0, MODELS)
import synth_radiograph as sr  # noqa: E402

SIZE = 128  # small images keep the suite fast; the geometry scales with size
INDICES = range(40)


@pytest.fixture(scope="module")
def samples():
    return {i: sr.generate(i, seed=7, size=SIZE) for i in INDICES}


def test_same_seed_and_index_give_the_same_image(samples):
    for i in (0, 5, 17):
        image, label, boxes = sr.generate(i, seed=7, size=SIZE)
        ref_image, ref_label, ref_boxes = samples[i]
        assert np.array_equal(image, ref_image)
        assert label == ref_label
        assert boxes == ref_boxes


def test_other_seed_or_index_gives_another_image(samples):
    other_seed, _, _ = sr.generate(0, seed=8, size=SIZE)
    assert not np.array_equal(other_seed, samples[0][0])
    assert not np.array_equal(samples[1][0], samples[0][0])


def test_images_are_12_bit_values_in_uint16(samples):
    for image, _, _ in samples.values():
        assert image.dtype == np.uint16
        assert image.shape == (SIZE, SIZE)
        assert int(image.max()) <= sr.MAX_VALUE == 4095
        # A radiograph, not a blank frame: a real spread of grey levels.
        assert int(image.max()) - int(image.min()) > 500


def test_label_matches_boxes(samples):
    labels = []
    for _, label, boxes in samples.values():
        assert label in (0, 1)
        assert (len(boxes) > 0) == (label == 1)
        assert len(boxes) <= 2
        labels.append(label)
    # About half fractured: 40 draws at p = 0.5 fall within 8..32 all but 1e-4 of the time.
    assert 8 <= sum(labels) <= 32


def test_boxes_inside_image_and_well_formed(samples):
    for _, _, boxes in samples.values():
        for x0, y0, x1, y1 in boxes:
            assert all(isinstance(v, int) for v in (x0, y0, x1, y1))
            assert 0 <= x0 < x1 <= SIZE - 1
            assert 0 <= y0 < y1 <= SIZE - 1
            # Tight around one bone's width, not the whole frame.
            assert (x1 - x0) < SIZE * 0.75 and (y1 - y0) < SIZE * 0.75


def test_fracture_lines_are_lucent_and_inside_their_boxes():
    """Rendering the same image without its lucent lines: the difference is a
    darkening (a lucency) that lies inside the recorded boxes."""
    checked = 0
    for i in range(80):
        image, label, boxes = sr.generate(i, seed=3, size=256)
        plain, label2, boxes2 = sr.generate(i, seed=3, size=256, lucency=False)
        assert (label2, boxes2) == (label, boxes)
        if label == 0:
            assert np.array_equal(image, plain)
            continue
        diff = plain.astype(np.int32) - image.astype(np.int32)  # > 0 where the line darkens
        inside = np.zeros(diff.shape, bool)
        for x0, y0, x1, y1 in boxes:
            inside[y0:y1 + 1, x0:x1 + 1] = True
            assert diff[y0:y1 + 1, x0:x1 + 1].max() > 100  # visible: > 2.5 % of the 12-bit range
        darker = np.clip(diff, 0, None).astype(np.float64)
        assert darker[inside].sum() > 0.97 * darker.sum()
        assert np.clip(-diff, 0, None).sum() < 0.05 * darker.sum()  # a lucency, not a brightening
        checked += 1
    assert checked >= 25


def test_cli_writes_pngs_and_csv(tmp_path):
    script = os.path.join(MODELS, "synth_radiograph.py")
    result = subprocess.run([sys.executable, script, "--out", str(tmp_path), "--count", "6",
                             "--seed", "7", "--size", str(SIZE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "boxes.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "label", "x0", "y0", "x1", "y1"]
    files = sorted({r[0] for r in rows[1:]})
    assert len(files) == 6
    for name in files:
        png = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        index = int(name.split("_")[2].split(".")[0])
        expected, label, boxes = sr.generate(index, seed=7, size=SIZE)
        assert png.dtype == np.uint16 and np.array_equal(png, expected)
        mine = [r for r in rows[1:] if r[0] == name]
        assert all(int(r[1]) == label for r in mine)
        if label == 0:
            assert [r[2:] for r in mine] == [["", "", "", ""]]
        else:
            assert [tuple(int(v) for v in r[2:]) for r in mine] == boxes


def test_cli_rejects_bad_arguments(tmp_path):
    script = os.path.join(MODELS, "synth_radiograph.py")
    result = subprocess.run([sys.executable, script, "--out", str(tmp_path), "--count", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--count >= 1" in result.stderr


# ---- the same scene at any size (issue 10, item 5) ---------------------------------

def _antialiased(image, size):
    """Reference downscale: torch's antialiased bilinear (what torchvision's
    Resize does to tensors, and fxcam's stretch-antialias)."""
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0, 0].numpy()


def _masks(index, seed, size):
    """From the scene's geometry (mm), independently of the rendering: bone =
    more than 3 mm of bone on the ray; soft tissue/air = farther than one and
    a half radii from every bone's axis."""
    _, bones, _ = sr.scene(index, seed)
    x, y = sr.pixel_centres_mm(size)
    bone = np.zeros((size, size), bool)
    away = np.ones((size, size), bool)
    for b in bones:
        cortex, marrow = b.paths(x, y)
        bone |= (cortex + marrow) > 3.0
        _, s = b.local(x, y)
        away &= np.abs(s) > 1.5 * b.radius
    return bone, away


SCALE_CASES = [(0, 1024), (1, 1024), (2, 2048), (3, 1024), (4, 2048), (6, 1024)]


@pytest.mark.parametrize("index,size", SCALE_CASES)
def test_large_image_downscaled_matches_the_256_px_image(index, size):
    """The physics is per mm, not per pixel: the large image averaged down to
    256 px (antialiased) is the 256 px image within noise, and at full size its
    bone and soft tissue have the 256 px image's grey levels (the old generator
    accumulated attenuation per pixel: at 768 px bone saturated to white)."""
    small, label, boxes = sr.generate(index, seed=11, size=256)
    large, label_l, boxes_l = sr.generate(index, seed=11, size=size)
    assert label_l == label and len(boxes_l) == len(boxes)
    down = _antialiased(large, 256)
    assert np.corrcoef(small.ravel(), down.ravel())[0, 1] > 0.99
    assert np.abs(down - small).mean() < 0.02 * sr.MAX_VALUE
    bone, soft = _masks(index, 11, 256)
    bone_l, soft_l = _masks(index, 11, size)
    assert bone.mean() > 0.05 and soft.mean() > 0.05
    for mask, mask_l in ((bone, bone_l), (soft, soft_l)):
        for q in (10, 50, 90):
            a = np.percentile(small[mask], q)
            b = np.percentile(large[mask_l], q)
            assert abs(a - b) < 0.03 * sr.MAX_VALUE, (q, a, b)
    # Bone keeps its texture at full size: not clipped flat, a real spread of grey levels.
    top = int(large.max())
    assert (large[bone_l] == top).mean() < 0.05 + (small[bone] == int(small.max())).mean()
    assert large[bone_l].std() > 0.5 * small[bone].std()


def test_boxes_scale_with_the_image():
    """A fracture box covers the same mm of the scene at every size: the box at
    N px divided by k = N / 256 is the 256 px box within rounding: an edge at X
    (in 256 px units) is floor(X - 0.5) at 256 px and floor(k X - 0.5) / k at
    N px, which differ by less than 1.5 - 0.5 / k (same for ceil)."""
    checked = 0
    for index in range(60):
        _, _, fractures = sr.scene(index, seed=11)
        for f in fractures:
            ref = np.array(f.box(256), float)
            for size in (512, 1024, 2048):
                scaled = np.array(f.box(size), float) * 256.0 / size
                inside = (ref > 0) & (ref < 255)  # not clipped at the border
                assert np.all(np.abs(scaled - ref)[inside] < 1.5 - 0.5 * 256.0 / size), (index, size, ref, scaled)
            checked += 1
    assert checked >= 15
    # The boxes generate() returns are the scene's, at that size.
    index = next(i for i in range(60) if sr.scene(i, seed=11)[2])
    _, _, boxes = sr.generate(index, seed=11, size=512)
    assert boxes == [f.box(512) for f in sr.scene(index, seed=11)[2]]


def test_fracture_lines_inside_their_boxes_at_1024_px():
    """The lucent lines of a 1024 px image lie inside its 1024 px boxes."""
    checked = 0
    for i in range(12):
        image, label, boxes = sr.generate(i, seed=3, size=1024)
        if label == 0:
            continue
        plain, _, _ = sr.generate(i, seed=3, size=1024, lucency=False)
        diff = np.clip(plain.astype(np.int32) - image.astype(np.int32), 0, None).astype(np.float64)
        inside = np.zeros(diff.shape, bool)
        for x0, y0, x1, y1 in boxes:
            inside[y0:y1 + 1, x0:x1 + 1] = True
            assert diff[y0:y1 + 1, x0:x1 + 1].max() > 100
        assert diff[inside].sum() > 0.97 * diff.sum()
        checked += 1
        if checked == 3:
            break
    assert checked == 3
