"""Models through the bindings (issues 8 and 9): library warnings as
FxcamWarning, output kind and strict loads, mean/std lengths, the process's
thread count left alone, Model.from_module during training, and
batch_visualize that skips and reports. References: the eager PyTorch module
itself (its outputs, hook-based Grad-CAM), OpenCV and the CLI's source."""
import csv
import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import PYTHON_DIR, SOURCE_ROOT
from test_engine import preprocess, reference_cam, smooth_image

pytestmark = pytest.mark.torch


def save_traced(tmp_path, name, module, meta, size=(32, 32), channels=3, train=False):
    import torch
    module.train(train)
    with torch.no_grad():
        traced = torch.jit.trace(module, torch.rand(1, channels, *size), check_trace=False)
    path = tmp_path / f"{name}.pt"
    torch.jit.save(traced, str(path), _extra_files={"fxcam.json": json.dumps(meta)})
    return str(path)


def small_cnn(classes=2, channels=3, seed=0):
    import torch
    import torch.nn as nn
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Dropout(0.5),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))


def caught(fn):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value = fn()
    return value, [w for w in seen if issubclass(w.category, UserWarning)]


# ---- warnings -----------------------------------------------------------

def test_training_mode_export_warns_or_fails_when_strict(fxcam, tmp_path):
    path = save_traced(tmp_path, "train", small_cnn(), {"input_size": [32, 32]}, train=True)
    model, seen = caught(lambda: fxcam.Model(path, device="cpu"))
    codes = [w.message.code for w in seen if issubclass(w.category, fxcam.FxcamWarning)]
    assert fxcam.WARN_TRAINING_MODE in codes, [str(w.message) for w in seen]
    warning = next(w for w in seen if w.message.code == fxcam.WARN_TRAINING_MODE)
    assert "eval()" in str(warning.message)
    assert warning.filename == __file__  # attributed to the caller, not to fxcam's internals
    assert [w.code for w in model.warnings] == codes
    with pytest.raises(fxcam.ModelError, match=r"eval\(\)"):
        fxcam.Model(path, device="cpu", strict=True)
    clean = save_traced(tmp_path, "eval", small_cnn(), {"input_size": [32, 32]})
    model, seen = caught(lambda: fxcam.Model(clean, device="cpu", strict=True))
    assert model.warnings == [] and not seen


def test_zero_map_and_scaling_warnings_name_the_image(fxcam, tmp_path):
    import torch
    net = small_cnn(seed=3)
    with torch.no_grad():  # class 1 gets only negative evidence from the ReLU features
        net[8].weight[1] = -net[8].weight[1].abs() - 0.1
    path = save_traced(tmp_path, "neg", net, {"input_size": [32, 32], "target_layer": "4"})
    model = fxcam.Model(path, device="cpu")
    big, tiny = smooth_image(40, 40, 3, np.uint8), smooth_image(6, 7, 3, np.uint8)
    result, seen = caught(lambda: fxcam.compute(model, [big, tiny], target_class=1))
    found = {(w.code, w.image) for w in result.warnings}
    assert (fxcam.WARN_ZERO_MAP, 0) in found and (fxcam.WARN_UPSCALE, 1) in found, found
    assert {(w.message.code, w.message.image) for w in seen} == found
    assert np.array_equal(result.heatmap(0), np.zeros((40, 40), np.float32))  # no evidence: an all-zero map
    huge = smooth_image(600, 600, 3, np.uint8)
    result, _ = caught(lambda: fxcam.compute(model, [huge]))
    assert (fxcam.WARN_DOWNSCALE, 0) in {(w.code, w.image) for w in result.warnings}
    with warnings.catch_warnings():
        warnings.simplefilter("error", fxcam.FxcamWarning)
        with pytest.raises(fxcam.FxcamWarning):
            fxcam.compute(model, [tiny])


def test_1x1_layer_is_refused_or_warned(fxcam, tmp_path):
    path = save_traced(tmp_path, "pool", small_cnn(), {"input_size": [32, 32]})
    model = fxcam.Model(path, device="cpu")
    try:
        result, seen = caught(lambda: fxcam.compute(model, [smooth_image(32, 32, 3, np.uint8)], layer_name="6"))
    except fxcam.LayerError as err:
        assert "1x1" in err.message
    else:
        assert fxcam.WARN_LAYER_1X1 in [w.code for w in result.warnings]


# ---- output kind --------------------------------------------------------

def test_softmax_model_reports_its_own_probabilities(fxcam, tmp_path):
    import torch
    import torch.nn as nn
    net = small_cnn(classes=3, seed=4)
    with torch.no_grad():
        net[8].weight.mul_(40)  # a confident model
    wrapped = nn.Sequential(net, nn.Softmax(dim=1))
    meta = {"input_size": [32, 32]}
    path = save_traced(tmp_path, "softmax", wrapped, meta)
    model = fxcam.Model(path, device="cpu")
    assert model.output_kind == "probabilities"
    img = smooth_image(32, 32, 3, np.uint8, seed=2)
    result = fxcam.compute(model, [img])
    with torch.no_grad():
        own = wrapped.eval()(preprocess(img, meta))[0].double().numpy()
    assert result.predicted_class() == int(own.argmax())
    assert result.confidence() == pytest.approx(own.max(), abs=1e-5)
    assert np.allclose(result.probabilities(), own, atol=1e-5)
    # The CAM explains the score before the softmax (the Grad-CAM paper): the eager net's logits.
    ref, _, _, _ = reference_cam(net, meta, img, "4")
    assert np.abs(result.heatmap() - ref).max() < 1e-4
    assert fxcam.Model(path, device="cpu", output_kind="logits").output_kind == "logits"


def test_sigmoid_model_negative_image(fxcam, tmp_path):
    import torch
    import torch.nn as nn
    net = small_cnn(classes=1, seed=5)
    with torch.no_grad():
        net[8].bias.fill_(-4.6)  # sigmoid(-4.6) = 0.01: clearly negative
        net[8].weight.mul_(0.01)
    wrapped = nn.Sequential(net, nn.Sigmoid())
    meta = {"input_size": [32, 32], "class_names": ["normal", "fracture"]}
    path = save_traced(tmp_path, "sigmoid", wrapped, meta)
    model = fxcam.Model(path, device="cpu")
    img = smooth_image(32, 32, 3, np.uint8, seed=6)
    with torch.no_grad():
        p = float(wrapped.eval()(preprocess(img, meta))[0, 0])
    assert p < 0.05
    result = fxcam.compute(model, [img])
    assert model.output_kind == "probabilities"
    assert result.predicted_name() == "normal"
    assert result.confidence() == pytest.approx(1 - p, abs=1e-5)


def test_output_kind_argument(fxcam, models):
    path = models["resnet"][0]
    assert fxcam.Model(path, device="cpu").output_kind == "logits"
    forced = fxcam.Model(path, device="cpu", output_kind="probabilities")
    assert forced.output_kind == "probabilities"
    with pytest.raises(ValueError, match="output_kind must be one of 'auto', 'logits', 'probabilities'"):
        fxcam.Model(path, device="cpu", output_kind="softmax")


# ---- mean / std ---------------------------------------------------------

def test_mean_std_lengths_are_checked(fxcam, models):
    rgb, gray = models["resnet"][0], models["tiny_gray"][0]
    with pytest.raises(ValueError, match="mean has 1 value but the model takes 3 input channels: give 3"):
        fxcam.Model(rgb, device="cpu", mean=[0.1])
    with pytest.raises(ValueError, match="std has 3 values but the model takes 1 input channel: give 1"):
        fxcam.Model(gray, device="cpu", std=[0.2, 0.2, 0.2])
    with open(rgb, "rb") as f:
        data = f.read()
    with pytest.raises(ValueError, match="takes 3 input channels"):
        fxcam.Model.from_bytes(data, device="cpu", mean=[0.1, 0.2])
    with pytest.raises(ValueError, match="takes 1 input channel"):
        fxcam.Model(rgb, device="cpu", channels=1, mean=[0.1, 0.2, 0.3])
    model = fxcam.Model(rgb, device="cpu", mean=[0.1, 0.2, 0.3], std=[0.5, 0.6, 0.7])
    assert model.normalization == (pytest.approx([0.1, 0.2, 0.3]), pytest.approx([0.5, 0.6, 0.7]))


def test_library_checks_the_counts_it_is_given(fxcam, models):
    """mean_count reaches C: one value for a 3-channel model is refused there too."""
    import ctypes
    from fxcam import _lib
    opts = _lib.ModelOptions()
    _lib.lib.fx_model_options_init(ctypes.byref(opts))
    one = (ctypes.c_float * 1)(0.1)
    opts.device, opts.threads, opts.mean, opts.mean_count = b"cpu", 1, one, 1
    handle = ctypes.c_void_p()
    status = _lib.lib.fx_model_load(models["resnet"][0].encode(), ctypes.byref(opts), ctypes.byref(handle))
    if status == 0:
        _lib.lib.fx_model_free(handle)
    assert status == fxcam.InvalidArgumentError.status
    assert "mean" in _lib.lib.fx_last_error().decode()


# ---- threads ------------------------------------------------------------

def test_loading_leaves_the_process_thread_count(models):
    """fxcam's libtorch and python3-torch's: when they are one library, a
    training process's torch.set_num_threads() must survive Model()."""
    code = f"""
import os, sys, torch
sys.path.insert(0, {PYTHON_DIR!r})
import fxcam
maps = {{os.path.realpath(l.split()[-1]) for l in open('/proc/self/maps') if 'libtorch_cpu' in l}}
torch.set_num_threads(1)
fxcam.Model({models['tiny_gray'][0]!r}, device="cpu")
after_default = torch.get_num_threads()
fxcam.Model({models['tiny_gray'][0]!r}, device="cpu", threads=2)
print(len(maps), after_default, torch.get_num_threads())
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    libs, after_default, after_two = map(int, r.stdout.split())
    if libs != 1:
        pytest.skip("fxcam and torch use different libtorch files here: their thread settings are independent")
    assert after_default == 1  # threads=-1 (default): left as the process had it
    assert after_two == 2      # asked for: set


def test_threads_argument_checked(fxcam, models):
    with pytest.raises(ValueError, match="-1 .*leave the process's setting"):
        fxcam.Model(models["tiny_gray"][0], device="cpu", threads=-2)


# ---- from_module --------------------------------------------------------

def test_from_module_during_training_equals_hook_gradcam(fxcam):
    import torch
    net = small_cnn(classes=3, seed=7)
    net.train()
    net[1].eval()  # a frozen BatchNorm stays frozen after the export
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.rand(4, 3, 32, 32)
    for _ in range(2):  # a few training steps: BatchNorm statistics move, Dropout is active
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0])).backward()
        opt.step()
    flags = [m.training for m in net.modules()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    meta = {"input_size": [32, 32], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    model, seen = caught(lambda: fxcam.Model.from_module(net, torch.zeros(1, 3, 32, 32), device="cpu",
                                                         mean=meta["mean"], std=meta["std"],
                                                         class_names=["a", "b", "c"], target_layer="4"))
    assert [m.training for m in net.modules()] == flags
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert not [w for w in seen if w.message.code == fxcam.WARN_TRAINING_MODE]
    assert model.path is None and model.class_names == ["a", "b", "c"] and model.input_size == (32, 32)
    assert model.default_layer == "4"
    img = smooth_image(45, 38, 3, np.uint8, seed=8)
    heat = fxcam.GradCAM(model).compute_heatmap(img)
    net.eval()
    ref, target, probs, _ = reference_cam(net, meta, img, "4")
    net.train()
    assert np.abs(heat - ref).max() < 1e-4
    assert fxcam.GradCAM(model).compute(img).predicted_class() == target
    scripted = fxcam.Model.from_module(net, torch.zeros(1, 3, 32, 32), script=True, device="cpu",
                                       mean=meta["mean"], std=meta["std"])
    assert np.abs(fxcam.GradCAM(scripted, layer_name="4").compute_heatmap(img) - ref).max() < 1e-4
    with pytest.raises(ValueError, match="example_input"):
        fxcam.Model.from_module(net, torch.zeros(3, 32, 32))


# ---- batch_visualize ----------------------------------------------------

def cli_csv_header():
    """The CLI's batch summary.csv header, read from its source (cli/)."""
    folder = os.path.join(SOURCE_ROOT, "cli")
    for name in sorted(os.listdir(folder)):
        if name.endswith((".c", ".h")):
            found = re.search(r'"(file,predicted_class,[a-z_,]+?)(?:\\n)?"', open(os.path.join(folder, name)).read())
            if found:
                return found.group(1).split(",")
    raise AssertionError("no batch CSV header in cli/")


def test_batch_skips_unreadable_images_and_reports(fxcam, models, tmp_path):
    path, module, meta = models["resnet"]
    model = fxcam.Model(path, device="cpu")
    src = tmp_path / "in"
    src.mkdir()
    imgs = {name: smooth_image(40, 44, 3, np.uint8, seed=k) for k, name in enumerate(["a.png", "a.PNG", "c.png"])}
    for name, img in imgs.items():
        fxcam.save_image(src / name, img)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (src / "notes.txt").write_text("not an image")
    os.mkfifo(src / "pipe.png")  # would block a reader forever
    out = tmp_path / "out"
    written = fxcam.batch_visualize(model, src, out, batch_size=2, timestamp="t")
    assert sorted(os.path.basename(p) for p in written) == sorted(["a_gradcam.png", "a_1_gradcam.png",
                                                                  "c_gradcam.png"])
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == cli_csv_header()
    by_file = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert set(by_file) == {"a.PNG", "a.png", "broken.png", "c.png", "notes.txt", "pipe.png"}
    for name, img in imgs.items():
        row = by_file[name]
        ref, target, probs, _ = reference_cam(module, meta, img, "layer4")
        assert row["status"] == "ok" and row["predicted_class"] == model.class_names[target]
        assert float(row["confidence"]) == pytest.approx(max(probs), abs=1e-4)
        assert ref[int(row["peak_y"]), int(row["peak_x"])] >= ref.max() - 1e-4
        assert os.path.isfile(row["output"]) and row["output"] in written
    assert by_file["broken.png"]["status"].startswith("failed: cannot read the image")
    assert by_file["broken.png"]["output"] == ""
    assert by_file["notes.txt"]["status"] == "ignored: not a .png file"
    assert by_file["pipe.png"]["status"] == "ignored: not a regular file"
    summary = (out / "summary.txt").read_text()
    assert "3 processed, 1 failed" in summary and "broken.png:" in summary and "pipe.png" in summary
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_batch_draws_on_original_images(fxcam, models, tmp_path):
    path, module, meta = models["resnet"]
    model = fxcam.Model(path, device="cpu")
    originals = [smooth_image(80, 96, 3, np.uint8, seed=s) for s in (1, 2)]
    prepared = [np.ascontiguousarray(o[::2, ::2]) for o in originals]  # what the model sees
    # batch_size=1: each image alone, so that the figure is bit-equal to a single compute of it
    written = fxcam.batch_visualize(model, prepared, tmp_path / "o", original_images=originals, timestamp="t",
                                    batch_size=1)
    import cv2
    for k, p in enumerate(written):
        fig = cv2.imread(p)[..., ::-1]
        heat = fxcam.GradCAM(model).compute_heatmap(prepared[k])
        ref, _, _, _ = reference_cam(module, meta, prepared[k], "layer4")
        assert np.abs(heat - ref).max() < 1e-4
        on_original = fxcam.resize(heat, (80, 96))
        result = fxcam.GradCAM(model).compute(prepared[k])
        expected = fxcam.compose_figure(originals[k], on_original, label=result.predicted_name(),
                                        confidence=result.confidence(), method="Grad-CAM", layer="layer4",
                                        timestamp="t")
        assert np.array_equal(fig, expected)
    with pytest.raises(ValueError, match="original_images has 1 entries for 2 images"):
        fxcam.batch_visualize(model, prepared, tmp_path / "x", original_images=originals[:1])


def test_batch_refuses_a_symlinked_summary_target(fxcam, models, tmp_path):
    """A link planted as summary.txt is replaced, the file it names untouched."""
    model = fxcam.Model(models["tiny_gray"][0], device="cpu")
    out = tmp_path / "shared"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, out / "summary.txt")
    fxcam.batch_visualize(model, [smooth_image(20, 20, 1, np.uint8)], out)
    assert victim.read_text() == "keep me"
    assert not os.path.islink(out / "summary.txt") and "fxcam batch summary" in (out / "summary.txt").read_text()
