"""`fxcam single --method guided-gradcam / guided-backprop` (issue 11): the
figure gains a fourth panel (the saliency image), --heatmap-only writes the
saliency itself, and `fxcam methods` lists both from the registry. The numbers
are checked against an eager PyTorch reference in tests/engine/test_guided.c."""
import os

import cv2
import numpy as np
import pytest

from test_cli import SAMPLES, run

SAMPLE = os.path.join(SAMPLES, "synth_2000_00000.png")

pytestmark = pytest.mark.torch


def test_guided_figure_has_the_saliency_panel(tmp_path):
    plain, guided = tmp_path / "plain.png", tmp_path / "guided.png"
    for method, out in (("gradcam", plain), ("guided-gradcam", guided)):
        r = run("single", "--image", SAMPLE, "--method", method, "--output", str(out))
        assert r.returncode == 0, r.stderr
    a, b = cv2.imread(str(plain)), cv2.imread(str(guided))
    assert b.shape[1] > a.shape[1] * 1.15  # one more panel (the caption band may wrap into fewer lines)


def test_guided_backprop_heatmap_only_is_the_saliency(tmp_path):
    out = tmp_path / "gb.png"
    r = run("single", "--image", SAMPLE, "--method", "guided-backprop", "--heatmap-only", "--output", str(out))
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    src = cv2.imread(SAMPLE, cv2.IMREAD_UNCHANGED)
    assert img.shape[:2] == src.shape[:2] and img.shape[2] == 3
    # deprocess_image: most pixels carry almost no gradient and sit at 0.5 (128); some do not.
    assert abs(float(np.median(img)) - 128) <= 3
    assert img.min() < 100 and img.max() > 156


def test_methods_lists_the_guided_methods():
    r = run("methods")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert "guided-backprop" in names and "guided-gradcam" in names


@pytest.mark.parametrize("method,extra,option", [
    ("guided-backprop", ["--aug-smooth"], "--aug-smooth"),
    ("guided-gradcam", ["--layers", "features,features.denseblock1"], "--layers"),
])
def test_guided_with_layer_refinements_is_a_usage_error(tmp_path, method, extra, option):
    out = tmp_path / "g.png"
    r = run("single", "--image", SAMPLE, "--method", method, *extra, "--output", str(out))
    assert r.returncode == 2, r.stderr
    assert "%s does not apply to %s: its saliency is in input space" % (option, method) in r.stderr, r.stderr
    assert not out.exists()
