"""Tests of the fxcam command, run by `meson test` (suite "cli") with the built
executable in $FXCAM.

Most tests use a small hand-built TorchScript model whose Grad-CAM is known in
closed form: features = relu(1x1 conv with weight 1) = the input itself,
global average pooling, and a linear layer whose "fracture" logit grows with
the mean brightness. Its Grad-CAM for "fracture" is therefore the input image
resized to 64x64 and back, min-max normalized: the tests recompute that with
OpenCV, and know which images are "fractures" (a bright rectangle on a dark
background) and where the heatmap must peak.

Tests marked `torch` need a library built with libtorch; in a build without
it meson deselects them (-m "not torch") rather than skipping them.
"""
import csv
import json
import os
import re
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
from PIL import Image

FXCAM = os.environ.get("FXCAM", "")
SOURCE_ROOT = os.environ.get("FXCAM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
HAS_TORCH = os.environ.get("FXCAM_HAS_TORCH", "1") == "1"
EMBEDDED_MODEL = os.path.join(SOURCE_ROOT, "models", "fracture_densenet.pt")
SAMPLES = os.path.join(SOURCE_ROOT, "models", "samples")

torch_only = pytest.mark.torch

W, H = 96, 80          # test image size (not square, not the model's 64x64)
BOX = (50, 20, 69, 39)  # inclusive x0, y0, x1, y1 of the bright rectangle


def run(*args, cwd=None, timeout=300):
    assert FXCAM and os.path.isfile(FXCAM), "set FXCAM to the built fxcam executable"
    return subprocess.run([FXCAM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def read_png(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, "%s does not decode as an image" % path
    return img


# ---- fixtures ------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    import torch
    from collections import OrderedDict
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 1, 1), relu=nn.ReLU()))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(1, 2)
            with torch.no_grad():
                self.features.conv.weight.fill_(1.0)
                self.features.conv.bias.zero_()
                # fracture iff mean brightness > 0.07
                self.classifier.weight.copy_(torch.tensor([[-50.0], [50.0]]))
                self.classifier.bias.copy_(torch.tensor([3.5, -3.5]))

        def forward(self, x):
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    traced = torch.jit.trace(Tiny().eval(), torch.zeros(1, 1, 64, 64))
    meta = {"input_size": [64, 64], "channels": 1, "mean": [0.0], "std": [1.0],
            "class_names": ["normal", "fracture"], "positive_class": 1, "target_layer": "features"}
    torch.jit.save(traced, str(path), _extra_files={"fxcam.json": json.dumps(meta)})
    return str(path)


def make_image(seed, fracture):
    rng = np.random.default_rng(seed)
    img = rng.integers(2500, 3500, size=(H, W)).astype(np.uint16)
    if fracture:
        x0, y0, x1, y1 = BOX
        img[y0:y1 + 1, x0:x1 + 1] = 60000
    return img


@pytest.fixture()
def image_dir(tmp_path):
    """Six 16-bit gray PNGs: fracture for even indexes, normal for odd."""
    d = tmp_path / "images"
    d.mkdir()
    for i in range(6):
        cv2.imwrite(str(d / ("img%02d.png" % i)), make_image(i, i % 2 == 0))
    return d


def expected_heatmap(img16):
    """Grad-CAM of the tiny model for "fracture", recomputed with OpenCV."""
    x = img16.astype(np.float32) / 65535.0
    small = cv2.resize(x, (64, 64), interpolation=cv2.INTER_LINEAR)
    up = cv2.resize(small, (img16.shape[1], img16.shape[0]), interpolation=cv2.INTER_LINEAR)
    return (up - up.min()) / (up.max() - up.min() + 1e-7)


def jet_rgb(heat):
    u8 = np.clip(heat * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_JET)[..., ::-1]  # RGB


def read_rgb(path):
    return read_png(path)[..., ::-1]


# ---- help, version, usage errors ------------------------------------------


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert re.match(r"fxcam \d+\.\d+\.\d+ \(libfxcam \d+\.\d+\.\d+\)", r.stdout)


def test_tool_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for command in ("single", "batch", "compare", "layers", "info", "demo", "evaluate"):
        assert re.search(r"^  %s\s" % command, r.stdout, re.M), command
    assert "Exit status" in r.stdout


def registry():
    """The library's method registry read over ctypes (fx_cam_method_at), the
    list the CLI must show: [(name, aliases, title, description)]."""
    import ctypes

    class Info(ctypes.Structure):
        _fields_ = [("struct_size", ctypes.c_uint32), ("id", ctypes.c_int32)] + \
            [(f, ctypes.c_char_p) for f in ("name", "aliases", "title", "slug", "description", "reference")]
    lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(FXCAM))), "libfxcam.so"))
    lib.fx_cam_method_count.restype = ctypes.c_size_t
    lib.fx_cam_method_at.restype = ctypes.POINTER(Info)
    lib.fx_cam_method_at.argtypes = [ctypes.c_size_t]
    out = []
    for i in range(lib.fx_cam_method_count()):
        m = lib.fx_cam_method_at(i).contents
        out.append((m.name.decode(), m.aliases.decode(), m.title.decode(), m.description.decode()))
    return out


def test_methods_lists_the_registry():
    """`fxcam methods`: one line per registry entry, in order, with its title,
    description and aliases; the help texts and the unknown-method error name
    every method too (no copy of the list can fall behind)."""
    r = run("methods")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    methods = registry()
    assert len(methods) >= 8 and len(lines) == len(methods)
    for line, (name, aliases, title, description) in zip(lines, methods):
        assert line.split()[0] == name
        assert title in line and description in line
        for alias in filter(None, aliases.split(",")):
            assert alias in line
    names = [m[0] for m in methods]
    tool_help = run("--help").stdout
    single_help = run("single", "--help").stdout
    bad = run("single", "--method", "nosuchcam")
    assert bad.returncode == 2
    for name in names:
        assert name in tool_help and name in single_help and name in bad.stderr, name
    assert re.search(r"^  methods\s", tool_help, re.M)


def test_methods_columns_line_up():
    """`fxcam methods`: title, needs and description start in the same column
    on every line, however long an entry ("extra forward passes" once pushed
    its description out of line)."""
    lines = run("methods").stdout.splitlines()
    methods = registry()
    starts = [(line.index("  " + title) if title else -1, line.index(description))
              for line, (_, _, title, description) in zip(lines, methods)]
    assert len(set(s[1] for s in starts)) == 1, lines
    name_w = max(len(m[0]) for m in methods)
    assert all(line[name_w:name_w + 2] == "  " and line[name_w + 2] != " " for line in lines), lines


def colormap_names():
    """Every colormap name the library accepts (fx_colormap_at, fx_colormap_name)."""
    import ctypes
    lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(FXCAM))), "libfxcam.so"))
    lib.fx_colormap_count.restype = ctypes.c_uint32
    lib.fx_colormap_at.restype = ctypes.c_int32
    lib.fx_colormap_at.argtypes = [ctypes.c_uint32]
    lib.fx_colormap_name.restype = ctypes.c_char_p
    lib.fx_colormap_name.argtypes = [ctypes.c_int32]
    return [lib.fx_colormap_name(lib.fx_colormap_at(i)).decode() for i in range(lib.fx_colormap_count())]


def test_help_lists_every_colormap():
    """--colormap's help and its error list every map of the library, in its
    order (the help once named 9 of 23)."""
    names = colormap_names()
    assert len(names) >= 20 and "jet" in names and "twilight" in names
    listed = ", ".join(names)
    assert listed in run("--help").stdout
    assert listed in run("single", "--help").stdout
    assert listed in run("single", "--image", "x.png", "--colormap", "rainbo").stderr


def test_batch_help_names_every_format():
    """batch reads PNG, JPEG and DICOM (by content too), and its help says so."""
    tool_help = run("--help").stdout
    batch_help = run("batch", "--help").stdout
    assert "every PNG" not in tool_help and "every *.png" not in batch_help
    assert re.search(r"^  batch .*PNG, JPEG, DICOM", tool_help, re.M)
    for ext in (".png", ".jpg", ".jpeg", ".dcm", ".dicom"):
        assert ext in batch_help, ext


def test_no_arguments_is_a_usage_error():
    r = run()
    assert r.returncode == 2
    assert "Usage: fxcam COMMAND" in r.stderr


@pytest.mark.parametrize("command", ["single", "batch", "compare", "layers", "info", "demo", "evaluate"])
def test_command_help(command):
    r = run(command, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: fxcam %s" % command)
    assert "Options:" in r.stdout and "--help" in r.stdout
    assert r.stderr == ""
    assert run("help", command).stdout == r.stdout


def test_unknown_command():
    r = run("singel")
    assert r.returncode == 2
    assert "unknown command 'singel'" in r.stderr
    assert "single, batch, compare, layers, info, demo, evaluate" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["single", "--image", "x.png", "--method", "gradcam+++"],
     "unknown --method 'gradcam+++'; valid methods: gradcam, gradcam++, hirescam, xgradcam, layercam"),
    (["single", "--image", "x.png", "--colormap", "rainbo"], "unknown --colormap 'rainbo'; valid colormaps: "),
    (["single", "--image", "x.png", "--alpha", "1.5"], "invalid --alpha '1.5'; expected a number from 0 to 1"),
    (["single", "--image", "x.png", "--alpha", "abc"], "invalid --alpha 'abc'"),
    (["single", "--image", "x.png", "--device", "gpu"], "unknown --device 'gpu'; valid devices: auto, cpu, cuda"),
    (["single", "--image", "x.png", "--threads", "-1"], "invalid --threads '-1'"),
    (["single", "--image"], "option --image needs a value (PATH)"),
    (["single", "--frobnicate"], "unknown option '--frobnicate'; valid options: --help, --model, --image"),
    (["single", "--image-dir", "d"], "this command has no option '--image-dir'"),
    (["single", "stray.png"], "unexpected argument 'stray.png'"),
    (["single", "--image", "x.png", "--method", "gradcam,gradcam++"], "give one --method"),
    (["single", "--image", "x.png", "--heatmap-only", "--overlay-only"], "exclude each other"),
    (["single"], "no input image; give one with --image PATH"),
    (["batch", "--output-dir", "o"], "no input folder; give one with --image-dir DIR"),
    (["batch", "--image-dir", "d"], "no output folder; give one with --output-dir DIR"),
    (["batch", "--image-dir", "d", "--output-dir", "o", "--batch-size", "0"],
     "invalid --batch-size '0'; expected a whole number from 1 to 1024"),
    (["batch", "--image_dir", "d", "--output_dir", "o", "--max_images", "x"], "invalid --max-images 'x'"),
    (["evaluate", "--image-dir", "d"], "no annotations; give them with --boxes CSV (file,label,x0,y0,x1,y1), "
     "or measure faithfulness alone with --faithfulness"),
    (["layers", "--help=yes"], "option --help takes no value"),
    (["info", "--output-kind", "softmax"], "invalid --output-kind 'softmax'; valid: auto, logits, probabilities"),
    (["single", "--image", "x.png", "--frame", "-1"], "invalid --frame '-1'; expected a frame number >= 0"),
    (["info", "--strict=1"], "option --strict takes no value"),
])
def test_usage_errors_exit_2(args, message, tmp_path):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Run 'fxcam %s --help' for usage." % args[0] in r.stderr
    assert r.stdout == ""


# ---- model errors ---------------------------------------------------------


def test_missing_model_says_so(tmp_path):
    r = run("info", "--model", str(tmp_path / "nope.pt"))
    assert r.returncode == 1
    assert "fxcam info: error: cannot open the model '%s': No such file or directory" % (tmp_path / "nope.pt") \
        in r.stderr


def test_not_a_model(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a torchscript archive")
    r = run("layers", "--model", str(bad))
    assert r.returncode == 1
    assert "cannot load the model '%s'" % bad in r.stderr
    if not HAS_TORCH:
        assert "libtorch" in r.stderr or "not available" in r.stderr.lower()


# ---- with the tiny model ----------------------------------------------------


@torch_only
def test_info(tiny_model):
    r = run("info", "--model", tiny_model, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "device:         cpu" in r.stdout
    assert "input:          64 x 64, 1 channel" in r.stdout
    assert "0=normal 1=fracture (positive)" in r.stdout
    assert "default layer:  features" in r.stdout


@torch_only
def test_layers_marks_the_default(tiny_model):
    r = run("layers", "--model", tiny_model)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line[2:3].strip()]
    table = {line[2:].split()[0]: line for line in rows[1:] if not line.startswith("\n")}
    assert table["features"].startswith("* ")
    assert re.search(r"features\.conv\s+Conv2d\s+1 x 1 x 64 x 64", table["features.conv"])
    assert re.search(r"classifier\s+Linear\s+1 x 2", table["classifier"])
    assert not table["classifier"].startswith("*")
    r = run("layers", "--model", tiny_model, "--feature-maps")
    assert r.returncode == 0
    assert "classifier" not in r.stdout and "features.relu" in r.stdout
    assert "(feature maps only)" in r.stdout


@torch_only
def test_single_figure(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(1, True))
    out = tmp_path / "fig.png"
    r = run("single", "--model", tiny_model, "--image", str(tmp_path / "frac.png"), "--output", str(out))
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"fracture \((\d+\.\d)%\)  ->  (.*)\n", r.stdout)
    assert m and m.group(2) == str(out)
    fig = read_png(out)
    assert fig.ndim == 3 and fig.shape[2] == 3
    # three panels of the image's height side by side, plus caption and legend
    assert fig.shape[1] >= 3 * W and fig.shape[0] > H
    assert not list(tmp_path.glob("*.tmp"))


@torch_only
def test_figure_time_from_source_date_epoch(tiny_model, tmp_path, monkeypatch):
    """SOURCE_DATE_EPOCH fixes the time in the caption: runs a second apart
    give the same bytes, another epoch other pixels; a value that is not a
    whole number is reported and the current time is shown."""
    import time
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(1, True))
    args = ("single", "--model", tiny_model, "--image", str(tmp_path / "frac.png"), "--output")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796059800")
    assert run(*args, str(tmp_path / "a.png")).returncode == 0
    time.sleep(1.1)
    assert run(*args, str(tmp_path / "b.png")).returncode == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796059801")
    assert run(*args, str(tmp_path / "c.png")).returncode == 0
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    r = run(*args, str(tmp_path / "d.png"))
    assert r.returncode == 0 and "SOURCE_DATE_EPOCH 'yesterday' is not a whole number" in r.stderr


@torch_only
def test_single_heatmap_only_matches_opencv(tiny_model, tmp_path):
    img = make_image(3, True)
    cv2.imwrite(str(tmp_path / "frac.png"), img)
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--heatmap-only", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("->  frac_gradcam_heatmap.png\n")
    got = read_rgb(tmp_path / "frac_gradcam_heatmap.png").astype(int)
    assert got.shape == (H, W, 3)
    want = jet_rgb(expected_heatmap(img)).astype(int)
    diff = np.abs(got - want)
    assert np.mean(diff) < 1.0 and np.percentile(diff, 99) <= 8, (np.mean(diff), diff.max())


@torch_only
def test_single_overlay_only(tiny_model, tmp_path):
    img = make_image(4, True)
    cv2.imwrite(str(tmp_path / "frac.png"), img)
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--overlay-only", "--alpha", "0.5",
            "--output", "ov.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = read_rgb(tmp_path / "ov.png").astype(float)
    assert got.shape == (H, W, 3)
    # The figure shows the image as the model read it (docs/model-format.md,
    # intensity "auto"): a 16-bit PNG without sBIT is v / 65535.
    gray = img.astype(float) / 65535 * 255
    want = 0.5 * gray[..., None] + 0.5 * jet_rgb(expected_heatmap(img)).astype(float)
    assert np.mean(np.abs(got - want)) < 1.5


@torch_only
def test_single_class_by_name_and_index(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(5, True))
    a = run("single", "--model", tiny_model, "--image", "frac.png", "--class", "NORMAL", "--heatmap-only",
            "--output", "a.png", cwd=tmp_path)
    b = run("single", "--model", tiny_model, "--image", "frac.png", "--class", "0", "--heatmap-only",
            "--output", "b.png", cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    # prediction unchanged, map of "normal": all weights negative -> ReLU -> zero map -> jet(0)
    assert a.stdout.startswith("fracture (")
    ha, hb = read_rgb(tmp_path / "a.png"), read_rgb(tmp_path / "b.png")
    assert np.array_equal(ha, hb)
    assert np.all(ha == jet_rgb(np.zeros((1, 1)))[0, 0])


@torch_only
def test_wrong_class(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(5, True))
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--class", "broken", cwd=tmp_path)
    assert r.returncode == 2
    assert "unknown --class 'broken'; this model's classes are 0 (normal), 1 (fracture)" in r.stderr


@torch_only
def test_wrong_layer_lists_closest(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(5, True))
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--layer", "features.cnv", cwd=tmp_path)
    assert r.returncode == 2
    assert "fxcam single: error:" in r.stderr
    assert "features.cnv" in r.stderr and "features.conv" in r.stderr
    assert "Run 'fxcam layers --feature-maps'" in r.stderr
    assert not list(tmp_path.glob("frac_*.png"))


@torch_only
def test_unreadable_image(tiny_model, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    r = run("single", "--model", tiny_model, "--image", str(tmp_path / "broken.png"))
    assert r.returncode == 1
    assert "cannot read the image '%s'" % (tmp_path / "broken.png") in r.stderr


@torch_only
def test_compare(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(6, True))
    r = run("compare", "--model", tiny_model, "--image", "frac.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"fracture \(\d+\.\d%\)  ->  frac_compare\.png  \(largest \|Grad-CAM - Grad-CAM\+\+\|: "
                        r"\d\.\d{3}\)\n", r.stdout), r.stdout
    fig = read_png(tmp_path / "frac_compare.png")
    assert fig.shape[1] >= 4 * W and fig.shape[0] > H


# ---- batch ------------------------------------------------------------------


def read_summary_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@torch_only
def test_batch(tiny_model, image_dir, tmp_path):
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out),
            "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    # not a terminal: one plain line per image, in sorted order
    lines = [line for line in r.stderr.splitlines() if line.startswith("[")]
    assert lines == ["[%d/6] img%02d.png: %s (%s" % (i + 1, i, "fracture" if i % 2 == 0 else "normal", lines[i].split("(")[1])
                     for i in range(6)]
    assert "\r" not in r.stderr
    for i in range(6):
        fig = read_png(out / ("img%02d_gradcam.png" % i))
        assert fig.shape[1] >= 3 * W
    rows = read_summary_csv(out / "summary.csv")
    assert [row["file"] for row in rows] == ["img%02d.png" % i for i in range(6)]
    assert list(rows[0].keys()) == ["file", "predicted_class", "confidence", "peak_x", "peak_y", "output", "status"]
    for i, row in enumerate(rows):
        assert row["status"] == "ok"
        assert row["predicted_class"] == ("fracture" if i % 2 == 0 else "normal")
        assert 0.5 <= float(row["confidence"]) <= 1.0
        assert row["output"] == str(out / ("img%02d_gradcam.png" % i))
        if i % 2 == 0:  # the peak of the fracture map is on the bright box
            x, y = int(row["peak_x"]), int(row["peak_y"])
            assert BOX[0] <= x <= BOX[2] and BOX[1] <= y <= BOX[3]
    text = (out / "summary.txt").read_text()
    assert "6 files (PNG, JPEG, DICOM), 6 processed, 0 failed, 0 skipped" in text
    assert re.search(r"^fracture\s+3  \d+\.\d%$", text, re.M)
    assert re.search(r"^normal\s+3  \d+\.\d%$", text, re.M)
    mean = np.mean([float(row["confidence"]) for row in rows]) * 100
    m = re.search(r"^all\s+6  (\d+\.\d)%$", text, re.M)
    assert m and abs(float(m.group(1)) - mean) < 0.06
    assert re.search(r"^time: +\d+\.\d\d s total .*, \d+\.\d{3} s per processed image, batch size 4$", text, re.M)
    assert "failures:     0" in text
    assert "6 processed, 0 failed, 0 skipped, 0 ignored" in r.stdout


@torch_only
def test_batch_bad_files_are_reported_and_skipped(tiny_model, image_dir, tmp_path):
    good = (image_dir / "img00.png").read_bytes()
    (image_dir / "img02.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    (image_dir / "notes.png").write_text("this is not an image\n")  # not a PNG at all
    (image_dir / "readme.txt").write_text("hello\n")                # no image name or content: ignored
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image_dir", str(image_dir), "--output_dir", str(out),
            "--batch-size", "3")
    assert r.returncode == 1, r.stderr
    assert "img02.png: FAILED (cannot read the image:" in r.stderr
    assert "notes.png: FAILED (cannot read the image:" in r.stderr
    assert ("ignored: readme.txt: not an image fxcam reads: the name ends in '.txt', not .png, .jpg, .jpeg, .dcm "
            "or .dicom, and the content is not PNG, JPEG or DICOM") in r.stderr
    rows = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    assert rows["img02.png"]["status"].startswith("failed: cannot read the image")
    assert rows["notes.png"]["status"].startswith("failed: cannot read the image")
    assert rows["readme.txt"]["status"].startswith("ignored: not an image fxcam reads: the name ends in '.txt'")
    for name in ("img00", "img01", "img03", "img04", "img05"):
        assert rows[name + ".png"]["status"] == "ok"
        read_png(out / (name + "_gradcam.png"))
    assert not (out / "img02_gradcam.png").exists() and not (out / "notes_gradcam.png").exists()
    text = (out / "summary.txt").read_text()
    assert "7 files (PNG, JPEG, DICOM), 5 processed, 2 failed, 0 skipped" in text
    assert re.search(r"^  img02\.png: cannot read the image: .+$", text, re.M)
    assert re.search(r"^  readme\.txt: not an image fxcam reads: .+$", text, re.M)


@torch_only
def test_batch_bad_image_in_a_computed_batch_fails_alone(tiny_model, image_dir, tmp_path):
    # a 1x1 image decodes but fx_gradcam_compute refuses it (smaller than 2x2):
    # the other images of its batch must still be processed.
    cv2.imwrite(str(image_dir / "img02.png"), np.zeros((1, 1), np.uint16))
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out),
            "--batch-size", "6")
    assert r.returncode == 1
    rows = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    assert rows["img02.png"]["status"].startswith("failed: cannot compute the heatmap")
    assert sum(row["status"] == "ok" for row in rows.values()) == 5


@torch_only
def test_batch_recursive_max_images_and_modes(tiny_model, image_dir, tmp_path):
    sub = image_dir / "sub" / "deeper"
    sub.mkdir(parents=True)
    cv2.imwrite(str(sub / "a.png"), make_image(9, True))
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out),
            "--recursive", "--overlay-only", "--method", "gradcam++")
    assert r.returncode == 0, r.stderr
    assert read_png(out / "sub" / "deeper" / "a_gradcampp_overlay.png").shape == (H, W, 3)
    assert read_png(out / "img05_gradcampp_overlay.png").shape == (H, W, 3)
    out2 = tmp_path / "out2"
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out2),
            "--max-images", "2", "--heatmap-only")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out2.iterdir()) == ["img00_gradcam_heatmap.png", "img01_gradcam_heatmap.png",
                                                      "summary.csv", "summary.txt"]


@torch_only
def test_batch_no_png(tiny_model, tmp_path):
    (tmp_path / "in").mkdir()
    r = run("batch", "--model", tiny_model, "--image-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 1
    assert "no PNG, JPEG or DICOM images in" in r.stderr


def test_batch_missing_dir(tmp_path):
    r = run("batch", "--image-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 1
    assert "the image folder '%s' does not exist" % (tmp_path / "none") in r.stderr


@torch_only
def test_batch_wrong_layer_stops(tiny_model, image_dir, tmp_path):
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(tmp_path / "o"),
            "--layer", "featurez")
    assert r.returncode == 2
    assert "featurez" in r.stderr and "features" in r.stderr
    assert not list((tmp_path / "o").glob("*.png"))


@torch_only
def test_killed_batch_leaves_no_partial_png_and_resume_finishes(tiny_model, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    big = cv2.resize(make_image(1, True), (W * 8, H * 8), interpolation=cv2.INTER_NEAREST)
    for i in range(40):
        cv2.imwrite(str(src / ("x%03d.png" % i)), big)
    out = tmp_path / "out"
    proc = subprocess.Popen([FXCAM, "batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir",
                             str(out), "--batch-size", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    done = 0
    deadline = time.time() + 120
    while done < 3 and time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        done += line.startswith("[")
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert done == 3, "the batch did not start"
    written = sorted(out.glob("*.png"))
    assert 3 <= len(written) < 40
    for p in written:  # every PNG complete: PIL decodes every row (it raises on a truncated file)
        with Image.open(p) as im:
            im.load()
            assert im.size[0] > 3 * im.size[1] // 2
    assert not (out / "summary.txt").exists()
    # the write in progress was an anonymous O_TMPFILE file: nothing is left
    assert not list(out.glob("*.tmp"))
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert not list(out.glob("*.tmp"))
    rows = read_summary_csv(out / "summary.csv")
    skipped = [row for row in rows if row["status"] == "skipped: output exists (--resume)"]
    assert len(skipped) == len(written)
    assert sum(row["status"] == "ok" for row in rows) == 40 - len(written)
    assert len(list(out.glob("x*_gradcam.png"))) == 40
    assert "%d skipped (output existed)" % len(written) in (out / "summary.txt").read_text()


@torch_only
def test_resume_skips_finished(tiny_model, image_dir, tmp_path):
    out = tmp_path / "out"
    assert run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out),
               "--max-images", "3").returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    time.sleep(0.02)
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name in before} == before
    assert "3 processed, 0 failed, 3 skipped" in r.stdout
    assert len(list(out.glob("img*_gradcam.png"))) == 6


# ---- evaluate -----------------------------------------------------------------


@torch_only
def test_evaluate(tiny_model, image_dir, tmp_path):
    boxes = tmp_path / "boxes.csv"
    rows = ["file,label,x0,y0,x1,y1"]
    for i in range(6):
        if i % 2 == 0:
            rows.append("img%02d.png,1,%d,%d,%d,%d" % ((i,) + BOX))
        else:
            rows.append("img%02d.png,0,,,," % i)
    # img04 labelled normal although it is bright: one classification error;
    # img02's box moved away from the bright area: one pointing-game miss.
    rows[5] = "img04.png,0,,,,"
    rows[3] = "img02.png,1,0,0,9,9"
    rows.append("img02.png,1,10,70,20,79")  # a second box, also away from the peak
    boxes.write_text("\n".join(rows) + "\n")
    csv_out = tmp_path / "eval.csv"
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(image_dir), "--boxes", str(boxes),
            "--csv", str(csv_out), "--method", "gradcam", "--method", "gradcam++")
    assert r.returncode == 0, r.stderr
    assert "accuracy:  83.33% (5/6; label 1 = fracture)" in r.stdout
    assert "2 with boxes" in r.stdout
    # energy in box recomputed here: the map is known in closed form
    energy0 = None
    for i, box_list in ((0, [BOX]),):
        heat = expected_heatmap(make_image(i, True))
        x0, y0, x1, y1 = box_list[0]
        energy0 = heat[y0:y1 + 1, x0:x1 + 1].sum() / heat.sum()
    heat2 = expected_heatmap(make_image(2, True))
    mask = np.zeros_like(heat2, bool)
    mask[0:10, 0:10] = True
    mask[70:80, 10:21] = True
    energy2 = heat2[mask].sum() / heat2.sum()
    m = re.search(r"^gradcam\s+50\.00% \(1/2\)\s+(\d\.\d{4})$", r.stdout, re.M)
    assert m, r.stdout
    assert abs(float(m.group(1)) - (energy0 + energy2) / 2) < 2e-3
    assert re.search(r"^gradcam\+\+\s+50\.00% \(1/2\)\s+\d\.\d{4}$", r.stdout, re.M)
    table = list(csv.DictReader(open(csv_out, newline="")))
    assert len(table) == 12
    first = table[0]
    assert first["file"] == "img00.png" and first["method"] == "gradcam" and first["pointing_hit"] == "1"
    assert abs(float(first["energy_in_box"]) - energy0) < 2e-3
    assert table[1]["method"] == "gradcam++"
    assert all(row["pointing_hit"] == "" for row in table if row["label"] == "0")


@torch_only
def test_evaluate_bad_annotations(tiny_model, image_dir, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\nimg00.png,1,5,5,2,9\n")
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(image_dir), "--boxes", str(boxes))
    assert r.returncode == 1
    assert "invalid annotations '%s': line 2: invalid box '5,5,2,9'" % boxes in r.stderr
    boxes.write_text("file,label,x0,y0,x1,y1\nimg00.png,1,,,,\nmissing.png,0,,,,\n")
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(image_dir), "--boxes", str(boxes))
    assert r.returncode == 1
    assert "missing.png: cannot read the image" in r.stderr
    assert "1 evaluated, 1 failed" in r.stdout


# ---- the embedded model and samples -------------------------------------------


def sample_boxes():
    boxes = {}
    with open(os.path.join(SAMPLES, "boxes.csv"), newline="") as fh:
        for row in csv.DictReader(fh):
            entry = boxes.setdefault(row["file"], (int(row["label"]), []))
            if row["x0"]:
                entry[1].append(tuple(int(row[k]) for k in ("x0", "y0", "x1", "y1")))
    return boxes


def test_embedded_model_is_built_in():
    assert os.path.isfile(EMBEDDED_MODEL), "models/fracture_densenet.pt is missing from the source tree"
    r = run("--version")
    assert "embedded model: fracture_densenet.pt (%d bytes), %d sample files" % (
        os.path.getsize(EMBEDDED_MODEL), len(sample_boxes()) + 1) in r.stdout


@torch_only
def test_embedded_info_and_layers():
    r = run("info")
    assert r.returncode == 0, r.stderr
    assert "model:          embedded fracture_densenet.pt" in r.stdout
    assert "0=normal 1=fracture (positive)" in r.stdout
    assert "1 channel" in r.stdout
    assert "normalization:  (x - mean) / std, x in [0,1]; mean 0, std 1" in r.stdout  # models/README.md
    assert "default layer:  features" in r.stdout
    r = run("layers", "--feature-maps")
    assert r.returncode == 0
    assert re.search(r"^\* features\s", r.stdout, re.M)


@torch_only
def test_demo(tmp_path):
    r = run("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "fxcam-demo"
    assert "demo: wrote %d figures" % (2 * len(sample_boxes())) in r.stdout
    assert str(out) in r.stdout
    for name, (label, boxes) in sample_boxes().items():
        stem = name[:-4]
        img = read_png(os.path.join(SAMPLES, name))
        for suffix, panels in (("_gradcam", 3), ("_compare", 4)):
            fig = read_png(out / (stem + suffix + ".png"))
            assert fig.shape[1] >= panels * min(img.shape[0], 512) * img.shape[1] // img.shape[0] - panels
        line = next(line for line in r.stdout.splitlines() if line.startswith(name))
        assert line.split("annotated ")[1].split()[0] == ("fracture" if label == 1 else "normal")
    # The samples are 12-bit data in 16-bit PNGs with sBIT 12: the demo must
    # pass what the loader read to the intensity rule (no 'no sBIT' warning).
    assert "warning" not in r.stderr, r.stderr


@torch_only
def test_embedded_single_and_evaluate(tmp_path):
    boxes = sample_boxes()
    name = next(n for n, (label, b) in boxes.items() if label == 1 and b)
    r = run("single", "--image", os.path.join(SAMPLES, name), "--output", "f.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"(fracture|normal) \(\d+\.\d%\)  ->  f\.png\n", r.stdout)
    r = run("evaluate", "--image-dir", SAMPLES, "--boxes", os.path.join(SAMPLES, "boxes.csv"))
    assert r.returncode == 0, r.stderr
    m = re.search(r"accuracy:  (\d+\.\d\d)% \((\d+)/(\d+);", r.stdout)
    assert m and int(m.group(3)) == len(boxes)
    assert re.search(r"^gradcam\s+\d+\.\d\d%% \(\d+/%d\)" % sum(1 for _, b in boxes.values() if b), r.stdout, re.M)


# ---- faithfulness (issue 11 section 3) ---------------------------------------------

FAITH_ROW = re.compile(r"^(gradcam\+\+|gradcam|random map)\s+" + r"\s+".join([r"(-?\d+\.\d+)"] * 6) + r"$", re.M)


@torch_only
def test_evaluate_faithfulness_on_the_samples(tmp_path):
    """4 fractured samples, no --boxes: every metric for each method and the
    random map, finite and in range, and Grad-CAM's deletion AUC below the
    random map's (a map that knows nothing about the model)."""
    import shutil
    fractured = sorted(n for n, (label, b) in sample_boxes().items() if label == 1)[:4]
    assert len(fractured) == 4
    d = tmp_path / "four"
    d.mkdir()
    for name in fractured:
        shutil.copy(os.path.join(SAMPLES, name), d / name)
    r = run("evaluate", "--image-dir", str(d), "--faithfulness", "--methods", "gradcam,gradcam++", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "accuracy:  - (no --boxes: no labels)" in r.stdout
    assert "faithfulness of the maps of class 'fracture' (4 images, 0 failed" in r.stdout
    rows = {m.group(1): [float(v) for v in m.groups()[1:]] for m in FAITH_ROW.finditer(r.stdout)}
    assert set(rows) == {"gradcam", "gradcam++", "random map"}, r.stdout
    for name, (ad, ic, deletion, insertion, morf, lerf) in rows.items():
        assert 0 <= ad <= 100 and 0 <= ic <= 100, (name, rows)
        assert 0 <= deletion <= 1 and 0 <= insertion <= 1, (name, rows)
        assert -1 <= morf <= 1 and -1 <= lerf <= 1, (name, rows)
    assert rows["gradcam"][2] < rows["random map"][2], r.stdout
    assert re.search(r"^  deletion AUC\s+ \S", r.stdout, re.M), r.stdout
    assert re.search(r"^most faithful: .+ by deletion AUC, .+ by insertion AUC", r.stdout, re.M), r.stdout


# ---- hostile and shared folders (issue 9) ---------------------------------------


def make_inputs(d, n, scale=1):
    d.mkdir(exist_ok=True)
    for i in range(n):
        img = make_image(i, i % 2 == 0)
        if scale != 1:
            img = cv2.resize(img, (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(d / ("x%03d.png" % i)), img)
    return d


@torch_only
def test_summaries_never_written_through_planted_symlinks(tiny_model, tmp_path):
    src = make_inputs(tmp_path / "in", 16, scale=8)
    out = tmp_path / "out"
    out.mkdir()
    outside = {name: tmp_path / ("outside_" + name) for name in ("txt", "csv", "link")}
    for path in outside.values():
        path.write_text("precious\n")
    # a planted link at the final name, and at the temporary names the old
    # writer derived from the pid ("summary.txt.<pid>.tmp")
    os.symlink(outside["link"], out / "summary.txt")
    proc = subprocess.Popen([FXCAM, "batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir",
                             str(out), "--batch-size", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # planted once the images are being processed (after the start-of-batch cleanup)
    first = proc.stderr.readline()
    assert first.startswith("[1/16]"), first
    os.symlink(outside["txt"], out / ("summary.txt.%d.tmp" % proc.pid))
    os.symlink(outside["csv"], out / ("summary.csv.%d.tmp" % proc.pid))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    for path in outside.values():
        assert path.read_text() == "precious\n", path
    for name in ("summary.txt", "summary.csv"):
        assert (out / name).is_file() and not (out / name).is_symlink(), name
    assert (out / "summary.txt").read_text().startswith("fxcam batch summary")
    assert len(read_summary_csv(out / "summary.csv")) == 16


@torch_only
def test_cleanup_keeps_files_fxcam_did_not_write(tiny_model, image_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # names the old cleanup took for its own leftovers: all belong to the user
    user_files = ["report_gradcam.png.v2.tmp", "summary.txt.backup.tmp", "img00_gradcam.png.12345678.tmp",
                  ".fxcam-0123456789abcdef.tmp"]
    for name in user_files:
        (out / name).write_text("mine\n")
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert "removed" not in r.stderr
    for name in user_files:
        assert (out / name).read_text() == "mine\n", name


@torch_only
def test_recursive_symlink_loops_end_and_count_each_image_once(tiny_model, tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    cv2.imwrite(str(src / "top.png"), make_image(0, True))
    cv2.imwrite(str(src / "a" / "one.png"), make_image(1, False))
    cv2.imwrite(str(src / "b" / "two.png"), make_image(2, True))
    os.symlink(".", src / "self")
    os.symlink("../b", src / "a" / "to_b")  # a/to_b -> b and b/to_a -> a: a loop
    os.symlink("../a", src / "b" / "to_a")
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out), "--recursive",
            timeout=120)
    assert r.returncode == 0, r.stderr
    rows = read_summary_csv(out / "summary.csv")
    ok = sorted(row["file"] for row in rows if row["status"] == "ok")
    assert ok == ["a/one.png", "b/two.png", "top.png"]
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert pngs == ["a/one_gradcam.png", "b/two_gradcam.png", "top_gradcam.png"]
    skipped = {row["file"]: row["status"] for row in rows if row["status"].startswith("ignored")}
    # folders count under their real names; every link leads back into the tree
    assert set(skipped) == {"a/to_b", "b/to_a", "self"}, skipped
    assert all("already included" in status for status in skipped.values())


def heat_of(path):
    """The heatmap an --heatmap-only output encodes, as its jet colors."""
    return read_rgb(path).astype(int)


@torch_only
def test_outputs_of_a_png_and_a_PNG_do_not_collide(tiny_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    images = {"a.png": make_image(1, True), "a.PNG": make_image(2, False)}
    for name, img in images.items():
        cv2.imwrite(str(src / "tmp.png"), img)
        os.rename(src / "tmp.png", src / name)
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out), "--heatmap-only",
            "--class", "fracture")
    assert r.returncode == 0, r.stderr
    rows = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    assert rows["a.png"]["output"] == str(out / "a_gradcam_heatmap.png")
    assert rows["a.PNG"]["output"] == str(out / "a_PNG_gradcam_heatmap.png")
    assert rows["a.png"]["predicted_class"] == "fracture" and rows["a.PNG"]["predicted_class"] == "normal"
    for name, img in images.items():
        want = jet_rgb(expected_heatmap(img)).astype(int)
        got = heat_of(rows[name]["output"])
        assert np.mean(np.abs(got - want)) < 1.0, name
    # --resume after a complete run: both done, nothing recomputed
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out), "--heatmap-only",
            "--class", "fracture", "--resume")
    assert "0 processed, 0 failed, 2 skipped" in r.stdout


@torch_only
def test_resume_redoes_an_output_that_belonged_to_another_input(tiny_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    upper, lower = make_image(2, False), make_image(1, True)
    cv2.imwrite(str(src / "tmp.png"), upper)
    os.rename(src / "tmp.png", src / "a.PNG")
    out = tmp_path / "out"
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out), "--heatmap-only",
            "--class", "fracture")
    assert r.returncode == 0, r.stderr
    assert (out / "a_gradcam_heatmap.png").exists()  # alone, a.PNG has the plain name
    cv2.imwrite(str(src / "a.png"), lower)  # now a.png takes the plain name
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(out), "--heatmap-only",
            "--class", "fracture", "--resume")
    assert r.returncode == 0, r.stderr
    assert "2 processed, 0 failed, 0 skipped" in r.stdout
    rows = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    assert rows["a.png"]["status"] == "ok" and rows["a.PNG"]["status"] == "ok"
    for name, img in (("a.png", lower), ("a.PNG", upper)):
        want = jet_rgb(expected_heatmap(img)).astype(int)
        assert np.mean(np.abs(heat_of(rows[name]["output"]) - want)) < 1.0, name


@torch_only
def test_fifo_and_socket_are_listed_never_opened(tiny_model, image_dir, tmp_path):
    import socket
    os.mkfifo(image_dir / "x.png")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(image_dir / "s.png"))
    try:
        out = tmp_path / "out"
        r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out),
                timeout=60)
    finally:
        sock.close()
    assert r.returncode == 0, r.stderr
    assert "ignored: x.png: a FIFO, not a regular file; not opened" in r.stderr
    assert "ignored: s.png: a socket, not a regular file; not opened" in r.stderr
    rows = {row["file"]: row["status"] for row in read_summary_csv(out / "summary.csv")}
    assert rows["x.png"] == "ignored: a FIFO, not a regular file; not opened"
    assert sum(status == "ok" for status in rows.values()) == 6


@torch_only
def test_batch_memory_is_bounded_for_small_pngs_that_decode_huge(tiny_model, tmp_path):
    # 32768 x 4096 16-bit RGBA of zeros: 1 MB on disk, 1 GiB decoded, inside
    # the default limits. The old batch decoded all three first (3.7 GB+).
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "big0.png"), np.zeros((4096, 32768, 4), np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert os.path.getsize(src / "big0.png") < 2 << 20
    for i in (1, 2):
        os.link(src / "big0.png", src / ("big%d.png" % i))
    out = tmp_path / "out"
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    r = subprocess.run(["/usr/bin/python3", "-c", probe, FXCAM, "batch", "--model", tiny_model, "--image-dir",
                        str(src), "--output-dir", str(out), "--device", "cpu"],
                       capture_output=True, text=True, timeout=600)
    peak_kib, rc = map(int, r.stdout.split()[-2:])
    assert rc == 0, r.stderr
    assert "3 processed, 0 failed" in r.stdout
    assert peak_kib * 1024 < 2.5 * (1 << 30), "peak RSS %.2f GiB" % (peak_kib / (1 << 20))


@torch_only
def test_max_pixels_reaches_the_loader_and_the_message_names_it(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(1, True))  # 96 x 80 = 7680 pixels
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--max-pixels", "7679", cwd=tmp_path)
    assert r.returncode == 1
    assert "over the limit of 7679 (raise it with --max-pixels N)" in r.stderr
    assert "fx_load_options" not in r.stderr
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--max-pixels", "7680", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--max-side", "90", cwd=tmp_path)
    assert r.returncode == 1 and "(raise it with --max-side PX)" in r.stderr
    # a 12000 x 12000 radiograph is over the default 2^27 pixels: refused with the option to raise
    cv2.imwrite(str(tmp_path / "huge.png"), np.zeros((12000, 12000), np.uint8))
    r = run("single", "--model", tiny_model, "--image", "huge.png", cwd=tmp_path)
    assert r.returncode == 1
    assert "12000x12000 = 144000000 pixels, over the limit of 134217728 (raise it with --max-pixels N)" in r.stderr
    r = run("batch", "--image-dir", ".", "--output-dir", "o", "--batch-memory", "12Q", cwd=tmp_path)
    assert r.returncode == 2 and "invalid --batch-memory '12Q'" in r.stderr


@torch_only
def test_evaluate_refuses_names_outside_the_image_dir(tiny_model, image_dir, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"TOPSECRET-PASSWORD-DATA")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\nimg00.png,1,,,,\n../secret.png,0,,,,\n%s,0,,,,\n" % secret)
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(image_dir), "--boxes", str(boxes))
    assert r.returncode == 1
    assert "fxcam evaluate: ../secret.png: refused: the name is an absolute path or contains '..'" in r.stderr
    assert "fxcam evaluate: %s: refused" % secret in r.stderr
    hex_start = " ".join("%02x" % b for b in b"TOPSECRE")
    assert hex_start not in r.stderr + r.stdout and "TOPSECRET" not in r.stderr + r.stdout
    assert "1 evaluated, 2 failed" in r.stdout


@torch_only
def test_names_with_escape_codes_are_printed_escaped(tiny_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    evil = "evil\x1b[2J\x07.png"
    (src / evil).write_bytes(b"not a png")
    cv2.imwrite(str(src / "good.png"), make_image(0, True))
    r = run("batch", "--model", tiny_model, "--image-dir", str(src), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 1
    assert "\x1b" not in r.stderr + r.stdout and "\x07" not in r.stderr + r.stdout
    assert "evil\\x1b[2J\\x07.png: FAILED (cannot read the image" in r.stderr
    text = (tmp_path / "out" / "summary.txt").read_text()
    assert "\x1b" not in text and "evil\\x1b[2J\\x07.png" in text
    # the CSV is data: the name as it is
    rows = read_summary_csv(tmp_path / "out" / "summary.csv")
    assert evil in [row["file"] for row in rows]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\n%s,1,,,,\n" % evil)
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(src), "--boxes", str(boxes))
    assert "\x1b" not in r.stderr + r.stdout and "evil\\x1b[2J\\x07.png" in r.stderr


def test_model_path_that_is_a_folder(tmp_path):
    r = run("info", "--model", str(tmp_path))
    assert r.returncode == 1
    assert ("fxcam info: error: the model '%s' is a directory; give the TorchScript .pt file" % tmp_path) in r.stderr
    assert "central directory" not in r.stderr


@torch_only
def test_resume_merges_the_previous_summary(tiny_model, image_dir, tmp_path):
    out = tmp_path / "out"
    assert run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out),
               "--max-images", "3").returncode == 0
    first = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    rows = read_summary_csv(out / "summary.csv")
    assert [row["file"] for row in rows] == ["img%02d.png" % i for i in range(6)]
    for row in rows[:3]:
        before = first[row["file"]]
        assert row["status"] == "ok (earlier run)"
        for key in ("predicted_class", "confidence", "peak_x", "peak_y", "output"):
            assert row[key] == before[key], key
    assert all(row["status"] == "ok" for row in rows[3:])
    text = (out / "summary.txt").read_text()
    assert re.search(r"^all\s+6  \d+\.\d%$", text, re.M), text
    assert re.search(r"^fracture\s+3 ", text, re.M) and re.search(r"^normal\s+3 ", text, re.M)
    # resuming again with a smaller --max-images keeps describing the whole folder
    r = run("batch", "--model", tiny_model, "--image-dir", str(image_dir), "--output-dir", str(out), "--resume",
            "--max-images", "2")
    assert r.returncode == 0, r.stderr
    rows = read_summary_csv(out / "summary.csv")
    assert len(rows) == 6 and all(row["status"].startswith("ok") for row in rows)


@torch_only
def test_single_threshold_boxes_and_panel_height(tiny_model, tmp_path):
    img = make_image(4, True)
    cv2.imwrite(str(tmp_path / "frac.png"), img)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\nfrac.png,1,%d,%d,%d,%d\n" % BOX)
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--overlay-only", "--alpha", "0.5",
            "--threshold", "0.5", "--boxes", str(boxes), "--output", "ov.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = read_rgb(tmp_path / "ov.png").astype(float)
    gray = img.astype(float) / 65535 * 255  # the model's intensity rule, as above
    heat = expected_heatmap(img)
    blend = 0.5 * gray[..., None] + 0.5 * jet_rgb(heat).astype(float)
    want = np.where((heat >= 0.5)[..., None], blend, np.repeat(gray[..., None], 3, axis=2))
    outline = np.zeros((H, W), bool)
    x0, y0, x1, y1 = BOX
    for t in (0, 1):
        outline[y0 - t, x0 - t:x1 + t + 1] = outline[y1 + t, x0 - t:x1 + t + 1] = True
        outline[y0 - t:y1 + t + 1, x0 - t] = outline[y0 - t:y1 + t + 1, x1 + t] = True
    assert np.all(got[outline] == (0, 220, 0))
    near = np.abs(heat - 0.5) > 0.01  # away from the threshold's edge
    assert np.mean(np.abs(got - want)[~outline & near]) < 1.0
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--panel-height", "160", "--output", "f.png",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r2 = run("single", "--model", tiny_model, "--image", "frac.png", "--panel-height", "320", "--output", "g.png",
             cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    small, large = read_png(tmp_path / "f.png"), read_png(tmp_path / "g.png")
    # three panels at the image's aspect ratio: width grows with the panel height
    assert small.shape[1] >= 3 * 160 * W // H and large.shape[1] >= 3 * 320 * W // H > small.shape[1]


@torch_only
def test_single_output_name_and_folder(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(1, True))
    r = run("single", "--model", tiny_model, "--image", "frac.png", "-o", "x.jpg", cwd=tmp_path)
    assert r.returncode == 2
    assert "--output 'x.jpg': fxcam writes PNG files only; give a name ending in .png" in r.stderr
    assert not (tmp_path / "x.jpg").exists()
    r = run("single", "--model", tiny_model, "--image", "frac.png", "-o", "new/deeper/f.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    read_png(tmp_path / "new" / "deeper" / "f.png")
    (tmp_path / "afile").write_text("x")
    r = run("single", "--model", tiny_model, "--image", "frac.png", "-o", "afile/f.png", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.count("error") == 1 and "cannot create the output folder 'afile'" in r.stderr


@torch_only
def test_compare_methods(tiny_model, tmp_path):
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(6, True))
    r = run("compare", "--model", tiny_model, "--image", "frac.png", "--methods", "gradcam,hirescam", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(largest |Grad-CAM - HiResCAM|: " in r.stdout
    r = run("compare", "--model", tiny_model, "--image", "frac.png", "--methods", "gradcam", cwd=tmp_path)
    assert r.returncode == 2 and "--methods needs two different methods" in r.stderr


@torch_only
def test_library_warnings_are_printed(tiny_model, tmp_path):
    # the map of "normal" is all zero after ReLU (its weight is negative): the
    # library warns, the command prints it once on stderr
    cv2.imwrite(str(tmp_path / "frac.png"), make_image(5, True))
    r = run("single", "--model", tiny_model, "--image", "frac.png", "--class", "normal", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("fxcam: warning: ")]
    assert len(warnings) == 1 and "all zero" in warnings[0], r.stderr



# ---- output kind and strict loading (issue 8) --------------------------------


def tiny_network(final=None, batchnorm=False):
    """The tiny model's network, optionally ending in an activation (a model
    saved for deployment) or holding a BatchNorm (for training-mode exports)."""
    import torch
    from collections import OrderedDict
    from torch import nn
    layers = OrderedDict(conv=nn.Conv2d(1, 1, 1), relu=nn.ReLU())
    if batchnorm:
        layers["norm"] = nn.BatchNorm2d(1)
    net = nn.Sequential(OrderedDict(features=nn.Sequential(layers), pool=nn.AdaptiveAvgPool2d(1),
                                    flatten=nn.Flatten(), classifier=nn.Linear(1, 2)))
    with torch.no_grad():
        net.features.conv.weight.fill_(1.0)
        net.features.conv.bias.zero_()
        net.classifier.weight.copy_(torch.tensor([[-50.0], [50.0]]))
        net.classifier.bias.copy_(torch.tensor([3.5, -3.5]))
    return nn.Sequential(net, final) if final is not None else net


def save_tiny(path, net, train=False):
    import torch
    net = net.train() if train else net.eval()
    traced = torch.jit.trace(net, torch.zeros(1, 1, 64, 64), check_trace=False)
    meta = {"input_size": [64, 64], "channels": 1, "mean": [0.0], "std": [1.0],
            "class_names": ["normal", "fracture"], "positive_class": 1}
    torch.jit.save(traced, str(path), _extra_files={"fxcam.json": json.dumps(meta)})
    return str(path)


def model_input(gray01):
    """What fxcam feeds a 64x64 1-channel model with mean 0, std 1: the image
    in [0, 1], resized bilinearly (OpenCV's INTER_LINEAR = fx_resize_bilinear)."""
    import torch
    small = cv2.resize(gray01.astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(small)[None, None]


@torch_only
def test_output_kind_and_strict(tmp_path):
    import torch
    softmax_model = save_tiny(tmp_path / "softmax.pt", tiny_network(torch.nn.Softmax(dim=1)))
    img = make_image(3, True)
    (tmp_path / "in").mkdir()
    assert cv2.imwrite(str(tmp_path / "in" / "frac.png"), img)
    with torch.no_grad():
        own = torch.jit.load(softmax_model)(model_input(img / 65535.0))[0]  # the model's own probabilities
    assert 0.6 < float(own[1]) < 0.99, own  # not saturated: the two readings below differ clearly
    again = torch.softmax(own, 0)  # what reading those probabilities as logits gives

    r = run("info", "--model", softmax_model)
    assert r.returncode == 0, r.stderr
    assert "output:         probabilities (graph: final softmax" in r.stdout
    r = run("info", "--model", softmax_model, "--output-kind", "logits")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^output:\s+logits \(set by --output-kind\)$", r.stdout, re.M)

    def confidence(*extra):
        out = tmp_path / ("out" + "".join(extra))
        r = run("batch", "--model", softmax_model, "--image-dir", str(tmp_path / "in"), "--output-dir", str(out),
                *extra)
        assert r.returncode == 0, r.stderr
        row = read_summary_csv(out / "summary.csv")[0]
        assert row["predicted_class"] == "fracture"
        return float(row["confidence"])

    assert abs(confidence() - float(own[1])) < 1e-4  # auto: the graph shows the softmax
    assert abs(confidence("--output-kind", "probabilities") - float(own[1])) < 1e-4
    assert abs(confidence("--output-kind", "logits") - float(again[1])) < 1e-4  # as told, softmax again

    # A model traced in training mode: a warning by default, an error with --strict.
    trained = save_tiny(tmp_path / "train.pt", tiny_network(batchnorm=True), train=True)
    r = run("single", "--model", trained, "--image", str(tmp_path / "in" / "frac.png"), "--output",
            str(tmp_path / "fig.png"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^fxcam: warning: .*training mode.*call model\.eval\(\)", r.stderr, re.M), r.stderr
    r = run("single", "--model", trained, "--image", str(tmp_path / "in" / "frac.png"), "--output",
            str(tmp_path / "fig2.png"), "--strict")
    assert r.returncode == 1
    assert "fxcam single: error: cannot load the model" in r.stderr and "(strict)" in r.stderr
    assert "call model.eval()" in r.stderr
    assert not (tmp_path / "fig2.png").exists()
    r = run("info", "--model", softmax_model, "--strict")
    assert r.returncode == 0, r.stderr  # nothing unreliable about an eval-mode export


# ---- inputs by content: PNG, JPEG, DICOM (issue 10) ---------------------------


def write_dicom(path, frames, bare=False):
    """An uncompressed MONOCHROME2 DX file written by pydicom from uint16
    frames [n, rows, cols] (12 bits stored; NumberOfFrames when n > 1).
    bare: the dataset alone in implicit VR little endian, without the Part 10
    preamble, "DICM" and file meta group (write_like_original=True)."""
    from pydicom.dataset import Dataset, FileMetaDataset  # python3-pydicom (tools/setup.sh)
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = frames.shape[1:]
    if frames.shape[0] > 1:
        ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, bare
    if bare:
        ds.file_meta = FileMetaDataset()
        ds.preamble = None
    ds.save_as(str(path), write_like_original=bare)
    assert (open(path, "rb").read(132)[128:] == b"DICM") != bare


def dicom_display(frame12):
    """fxcam's reading of write_dicom's frames (no window: the frame's
    minimum..maximum onto 0..1; fx_image_load in include/fxcam.h)."""
    v = frame12.astype(np.float64)
    return np.round((v - v.min()) / (v.max() - v.min()) * 65535) / 65535


def tiny_prediction(gray01):
    """(class, confidence) of the tiny model, by torch from the input fxcam feeds it."""
    import torch
    net = tiny_network().eval()
    with torch.no_grad():
        p = torch.softmax(net(model_input(gray01)), 1)[0]
    return ("fracture" if p[1] > p[0] else "normal"), float(p.max())


@torch_only
def test_batch_reads_png_jpeg_dicom_by_content(tmp_path):
    model = save_tiny(tmp_path / "tiny.pt", tiny_network())
    src = tmp_path / "in"
    src.mkdir()
    png16 = make_image(1, True)
    assert cv2.imwrite(str(src / "a.png"), png16)
    gray8 = (make_image(2, True) // 256).astype(np.uint8)
    Image.fromarray(gray8).save(src / "a.jpg", quality=95)          # same stem as a.png
    Image.fromarray(gray8).save(src / "b.JPEG", quality=95)
    dcm12 = (make_image(3, True) // 16).astype(np.uint16)           # 12-bit values
    write_dicom(src / "c.dcm", dcm12[None])
    write_dicom(src / "1.2.840.10008.5", dcm12[None])               # PACS-style name: found by content
    write_dicom(src / "scan", dcm12[None])                          # no extension: found by content
    write_dicom(src / "bare", dcm12[None], bare=True)                # no preamble/DICM: found by content
    (src / "notes.txt").write_text("hello\n")
    (src / "broken.jpg").write_bytes((src / "a.jpg").read_bytes()[:200])  # truncated JPEG
    out = tmp_path / "out"
    r = run("batch", "--model", model, "--image-dir", str(src), "--output-dir", str(out), "--heatmap-only",
            "--class", "fracture")
    assert r.returncode == 1, r.stderr  # broken.jpg failed; the rest went on
    rows = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    assert rows["broken.jpg"]["status"].startswith("failed: cannot read the image: '%s'" % (src / "broken.jpg"))
    assert rows["notes.txt"]["status"].startswith("ignored: not an image fxcam reads: the name ends in '.txt'")
    jpeg = np.asarray(Image.open(src / "a.jpg")).astype(np.float64) / 255  # PIL: the reference decoder
    references = {"a.png": png16 / 65535.0, "a.jpg": jpeg, "b.JPEG": jpeg,
                  "c.dcm": dicom_display(dcm12), "1.2.840.10008.5": dicom_display(dcm12),
                  "scan": dicom_display(dcm12), "bare": dicom_display(dcm12)}
    outputs = {"a.png": "a", "a.jpg": "a_jpg", "b.JPEG": "b", "c.dcm": "c", "1.2.840.10008.5": "1.2.840.10008.5",
               "scan": "scan", "bare": "bare"}
    for name, gray in references.items():
        row = rows[name]
        assert row["status"] == "ok", (name, row)
        assert row["output"] == str(out / (outputs[name] + "_gradcam_heatmap.png")), name
        cls, conf = tiny_prediction(gray)
        assert row["predicted_class"] == cls and abs(float(row["confidence"]) - conf) < 2e-3, (name, row, conf)
        want = jet_rgb(expected_heatmap(gray)).astype(int)  # the map is affine in the input: min-max cancels it
        assert np.mean(np.abs(heat_of(row["output"]) - want)) < 1.0, name
    text = (out / "summary.txt").read_text()
    assert "8 files (PNG, JPEG, DICOM), 7 processed, 1 failed, 0 skipped" in text
    assert re.search(r"^  notes\.txt: not an image fxcam reads: .+$", text, re.M)
    assert re.search(r"^  broken\.jpg: cannot read the image: .+$", text, re.M)
    assert "ignored: notes.txt: not an image fxcam reads" in r.stderr
    assert "broken.jpg: FAILED (cannot read the image:" in r.stderr


@torch_only
def test_frame_of_multiframe_dicom(tmp_path):
    model = save_tiny(tmp_path / "tiny.pt", tiny_network())
    src = tmp_path / "in"
    src.mkdir()
    frames = np.stack([make_image(4, False), make_image(5, True)]) // 16
    # After the minimum..maximum mapping the frames get different classes, so
    # the prediction tells which frame was read.
    assert tiny_prediction(dicom_display(frames[0]))[0] != tiny_prediction(dicom_display(frames[1]))[0]
    write_dicom(src / "multi.dcm", frames)
    assert cv2.imwrite(str(src / "plain.png"), make_image(6, True))
    out = tmp_path / "out"
    r = run("batch", "--model", model, "--image-dir", str(src), "--output-dir", str(out), "--frame", "1")
    assert r.returncode == 0, r.stderr  # --frame applies to the DICOM file only
    rows = {row["file"]: row for row in read_summary_csv(out / "summary.csv")}
    cls, conf = tiny_prediction(dicom_display(frames[1]))
    assert rows["multi.dcm"]["predicted_class"] == cls
    assert abs(float(rows["multi.dcm"]["confidence"]) - conf) < 2e-3
    assert rows["plain.png"]["status"] == "ok"
    r = run("batch", "--model", model, "--image-dir", str(src), "--output-dir", str(tmp_path / "out0"))
    rows = {row["file"]: row for row in read_summary_csv(tmp_path / "out0" / "summary.csv")}
    assert rows["multi.dcm"]["predicted_class"] == tiny_prediction(dicom_display(frames[0]))[0]
    r = run("single", "--model", model, "--image", str(src / "multi.dcm"), "--frame", "2", cwd=tmp_path)
    assert r.returncode == 1
    assert "--frame is 2, but the file has 2 frames (valid: 0..1)" in r.stderr
    r = run("single", "--model", model, "--image", str(src / "plain.png"), "--frame", "1", cwd=tmp_path)
    assert r.returncode == 1
    assert "--frame is 1, but a PNG file holds one image" in r.stderr


@torch_only
def test_twelve_bit_data_without_sbit_is_named(tiny_model, tmp_path):
    """A 16-bit PNG whose samples all fit in 12 bits and that carries no sBIT
    is read as v / 65535 (dark): fxcam says so and names --bits; with --bits
    12 the warning is gone."""
    img = make_image(3, True) // 16  # 156..3750: 12-bit data, cv2 writes no sBIT
    cv2.imwrite(str(tmp_path / "twelve.png"), img)
    r = run("single", "--model", tiny_model, "--image", "twelve.png", "--output", "a.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "fit in 12 bits" in r.stderr and "--bits 12" in r.stderr, r.stderr
    r = run("single", "--model", tiny_model, "--image", "twelve.png", "--bits", "12", "--output", "b.png",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "fit in 12 bits" not in r.stderr, r.stderr
