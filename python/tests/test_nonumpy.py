"""The bindings without NumPy: a child interpreter where `import numpy`
fails; images go in as nested lists or shaped buffers and come back as lists."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import PYTHON_DIR

PRELUDE = """
import sys, json
sys.modules["numpy"] = None  # any `import numpy` now raises ImportError
sys.path.insert(0, %r)
import fxcam
assert not fxcam.HAVE_NUMPY
""" % PYTHON_DIR


def run(code):
    r = subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_images_without_numpy(tmp_path):
    path = str(tmp_path / "x.png")
    out = run(f"""
img = [[0, 100, 200], [255, 10, 20]]
fxcam.save_image({path!r}, img)
back = fxcam.load_image({path!r})
rgb = fxcam.to_rgb8(memoryview(bytes([1, 2, 3, 4, 5, 6])).cast("B", (2, 3)))
big = fxcam.load_image({path!r})
heat = [[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]]
over = fxcam.overlay(img, heat, alpha=0.5)
fxcam.save_image({path!r}, [[1000, 2], [3, 65535]])
wide = fxcam.load_image({path!r})
errors = []
for bad in ([[1, 2], [3]], [[-1, 2]], [["a", 2]], bytearray(b"raw bytes"), memoryview(b"abcd").cast("B", (1, 1, 4)).cast("B"),
            [[[1, 2, 3, 4, 5]]] * 5):
    try:
        fxcam.to_rgb8(bad)
        errors.append("no error")
    except (TypeError, ValueError) as e:
        errors.append(type(e).__name__ + ": " + str(e))
print(json.dumps([back, rgb, over, wide, errors]))
""")
    back, rgb, over, wide, errors = out
    assert back == [[0, 100, 200], [255, 10, 20]]
    assert rgb == [[[1, 1, 1], [2, 2, 2], [3, 3, 3]], [[4, 4, 4], [5, 5, 5], [6, 6, 6]]]
    import fxcam
    ref = fxcam.overlay(np.array([[0, 100, 200], [255, 10, 20]], np.uint8),
                        np.array([[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]], np.float32), alpha=0.5)
    assert over == ref.tolist()
    assert wide == [[1000, 2], [3, 65535]]
    assert errors[0].startswith("ValueError: image: row 1 does not have 2 pixels")
    assert errors[1].startswith("ValueError: image: integer pixel values must be in 0..65535")
    assert errors[2].startswith("TypeError: image: pixel values must be int or float, found str")
    assert errors[3].startswith("TypeError: image: a 1-D buffer has no image shape")
    assert errors[4].startswith("TypeError: image: a 1-D buffer")
    assert errors[5].startswith("ValueError: image: an HxWxC or CxHxW image needs 1 to 4 channels")


@pytest.mark.torch
def test_gradcam_without_numpy(models, fxcam):
    path = models["resnet"][0]
    img = np.random.default_rng(2).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    out = run(f"""
model = fxcam.Model({path!r}, device="cpu")
cam = fxcam.GradCAM(model)
img = {img.tolist()!r}
heat, over = cam.generate_visualization(img)
fig = cam.visualize(img, timestamp="t")
probs, logits = model.predict([img, img], return_logits=True)
print(json.dumps([heat, over, [len(fig), len(fig[0]), len(fig[0][0])], probs, logits]))
""")
    heat, over, fig_shape, probs, logits = out
    model = fxcam.Model(path, device="cpu")
    cam = fxcam.GradCAM(model)
    ref_heat, ref_over = cam.generate_visualization(img)
    assert np.array_equal(np.array(heat, np.float32), ref_heat)
    ref_probs, ref_logits = model.predict([img, img], return_logits=True)  # lists of rows, the same numbers
    assert np.array_equal(np.array(probs, np.float32), ref_probs) and np.array_equal(np.array(logits, np.float32), ref_logits)
    assert over == ref_over.tolist()
    assert tuple(fig_shape) == cam.visualize(img, timestamp="t").shape


def test_contract_without_numpy():
    """Lists follow the same rules: CxHxW read when only it fits, BGR pixels
    converted, floats outside [0, 1] refused."""
    out = run("""
chw = [[[10, 20, 30, 1, 2], [40, 50, 60, 3, 4]], [[1, 2, 3, 5, 6], [4, 5, 6, 7, 8]],
       [[7, 8, 9, 9, 9], [0, 0, 0, 1, 1]]]  # 3 planes of 2x5
bgr = [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]] * 3  # 6 rows of 2 BGR pixels
errors = []
for bad in ([[0.0, 255.0], [3.0, 4.0]], [[[1, 2, 3, 4]] * 4] * 3):
    try:
        fxcam.to_rgb8(bad)
        errors.append("no error")
    except ValueError as e:
        errors.append(str(e))
print(json.dumps([fxcam.to_rgb8(chw), fxcam.to_rgb8(bgr, channel_order="bgr"), errors]))
""")
    from_chw, from_bgr, errors = out
    chw = np.array([[[10, 20, 30, 1, 2], [40, 50, 60, 3, 4]], [[1, 2, 3, 5, 6], [4, 5, 6, 7, 8]],
                    [[7, 8, 9, 9, 9], [0, 0, 0, 1, 1]]], np.uint8)
    assert from_chw == chw.transpose(1, 2, 0).tolist()
    bgr = np.array([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]] * 3, np.uint8)
    assert from_bgr == bgr[..., ::-1].tolist()
    assert "seen 0..255" in errors[0] and "divide by 255" in errors[0]
    assert "ambiguous" in errors[1] and "layout=" in errors[1]
