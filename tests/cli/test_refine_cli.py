"""CLI surface of the refinements and method settings (issue 11): --layers,
--aug-smooth, --eigen-smooth, --class-weights, --smooth-samples,
--smooth-noise, --channel-batch-size. Their maps are checked against PyTorch
in tests/engine/test_refine.c; here: bad values are usage errors that say
what would be valid, and good values reach the library (the caption names
the layers)."""
import os

import cv2
import pytest

import test_cli

SAMPLE = os.path.join(test_cli.SAMPLES, "synth_2000_00000.png")
# Most checks run after the model loads (class names, layers): a build without libtorch deselects them.
pytestmark = pytest.mark.torch


def run(*args):
    return test_cli.run(*args, timeout=600)  # --aug-smooth on the embedded model takes a while


@pytest.mark.parametrize("args,message", [
    (["--layer", "a,b"], "--layer takes one layer; for several, give --layers a,b"),
    (["--layer", "features", "--layers", "features"], "give --layer or --layers, not both"),
    (["--layers", "features,,pool"], "invalid --layers"),
    (["--layers", "features,features"], "is given twice"),
    (["--class", "fracture", "--class-weights", "fracture=1"], "give --class or --class-weights, not both"),
    (["--class-weights", "tumour=1"], "invalid --class-weights entry 'tumour=1'"),
    (["--class-weights", "1,2,3"], "expected 2 weights"),
    (["--smooth-samples", "0"], "invalid --smooth-samples '0'"),
    (["--smooth-noise", "11"], "invalid --smooth-noise '11'"),
    (["--channel-batch-size", "5000"], "invalid --channel-batch-size '5000'"),
])
def test_bad_values_are_usage_errors(args, message, tmp_path):
    r = run("single", "--image", SAMPLE, "--output", str(tmp_path / "out.png"), *args)
    # A repeated layer is found by the library (fx_gradcam_compute), after the model loads: exit 1.
    assert r.returncode == (1 if "twice" in message else 2), r.stderr
    assert message in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_refinements_reach_the_library(tmp_path):
    out = tmp_path / "out.png"
    r = run("single", "--image", SAMPLE, "--output", str(out), "--aug-smooth", "--eigen-smooth",
            "--layers", "features.denseblock2,features.transition1", "--class-weights", "fracture=1,normal=-1")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out)) is not None
    help_text = run("batch", "--help").stdout
    for option in ("--layers", "--aug-smooth", "--eigen-smooth", "--class-weights", "--smooth-samples",
                   "--smooth-noise", "--channel-batch-size"):
        assert option in help_text
