"""The CLI options that say how a model was trained (issue 10): --intensity,
--bits, --window, --resize-mode, --resize-size, --input-size, --channels,
--mean, --std, --class-names; and the one intensity rule for the model and
the figure: a 12-bit radiograph in a 16-bit PNG (sBIT 12), its 8-bit twin and
its DICOM twin give the same prediction and near-identical pictures."""
import csv
import os
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image

FXCAM = os.environ.get("FXCAM", "")
HAS_TORCH = os.environ.get("FXCAM_HAS_TORCH", "1") == "1"


def run(*args, cwd=None):
    assert FXCAM and os.path.isfile(FXCAM), "set FXCAM to the built fxcam executable"
    return subprocess.run([FXCAM, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16_sbit(path, gray, bits):
    """16-bit gray PNG with the samples unscaled and an sBIT chunk (PIL cannot write sBIT)."""
    h, w = gray.shape
    raw = b"".join(b"\0" + gray[y].astype(">u2").tobytes() for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)) +
                png_chunk(b"sBIT", bytes([bits])) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def write_dicom12(path, frame, center, width):
    """12-bit MONOCHROME2 DX with a window (pydicom)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = frame.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = center, width
    ds.PixelData = frame.astype("<u2").tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(str(path), write_like_original=False)


@pytest.fixture(scope="module")
def radiographs(tmp_path_factory):
    """A 1-channel model (fxcam.json: 64x64, mean/std 0.5) and one 12-bit
    radiograph as 16-bit PNG + sBIT 12, 8-bit PNG and DICOM (window covering
    0..4095)."""
    import torch
    import torch.nn as nn
    d = tmp_path_factory.mktemp("radiographs")
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
    jit = torch.jit.trace(net, torch.zeros(1, 1, 64, 64))
    import json
    torch.jit.save(jit, str(d / "model.pt"), _extra_files={"fxcam.json": json.dumps(
        {"input_size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.5], "target_layer": "3"})})
    torch.jit.save(jit, str(d / "bare.pt"))
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:80]
    bone = np.exp(-(((xx - 40) / 8.0) ** 2)) * (yy > 10) * (yy < 86)
    v12 = np.clip((0.2 + 0.7 * bone) * 4095 + rng.normal(0, 50, yy.shape), 0, 4095).round().astype(np.uint16)
    write_png16_sbit(d / "x12.png", v12, 12)
    Image.fromarray(np.round(v12 * 255.0 / 4095).astype(np.uint8), mode="L").save(d / "x08.png")
    write_dicom12(d / "x12.dcm", v12, 2048, 4096)
    return d


def single(d, image, out, *extra):
    r = run("single", "--model", str(d / "model.pt"), "--image", str(d / image), "--output", str(d / out),
            "--device", "cpu", *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout.split("->")[0].strip(), np.asarray(Image.open(d / out)).astype(np.float64)


@pytest.mark.torch
def test_twelve_bit_eight_bit_and_dicom_twins(radiographs):
    d = radiographs
    p12, fig12 = single(d, "x12.png", "fig12.png")
    p8, fig8 = single(d, "x08.png", "fig8.png")
    pdcm, figdcm = single(d, "x12.dcm", "figdcm.png")
    assert p12 == p8 == pdcm
    # The captions differ (file name, time); the panels are the same picture.
    assert fig12.shape == fig8.shape == figdcm.shape
    assert np.abs(fig12 - fig8).mean() < 2.0
    assert np.abs(fig12 - figdcm).mean() < 2.0
    # The overlays alone: the image as the model saw it under the same map.
    _, o12 = single(d, "x12.png", "o12.png", "--overlay-only")
    _, o8 = single(d, "x08.png", "o8.png", "--overlay-only")
    _, odcm = single(d, "x12.dcm", "odcm.png", "--overlay-only")
    assert np.abs(o12 - o8).mean() < 1.0
    assert np.abs(o12 - odcm).mean() < 1.0
    # Told the container rule, the 12-bit data is read / 65535: the model
    # sees it (and the figure shows it) 16 times darker.
    _, dark = single(d, "x12.png", "dark.png", "--overlay-only", "--intensity", "container")
    assert np.abs(dark - o8).mean() > 20.0
    # --bits 12 on the container-declared rule gives the twin back.
    _, bits = single(d, "x12.png", "bits.png", "--overlay-only", "--intensity", "bits", "--bits", "12")
    assert np.abs(bits - o8).mean() < 1.0
    # A window in sample units: 0..4095 as the full range.
    _, window = single(d, "x12.png", "window.png", "--overlay-only", "--window", "2047.5,4095")
    assert np.abs(window - o8).mean() < 1.5


@pytest.mark.torch
def test_model_without_metadata_described_on_the_command_line(radiographs):
    d = radiographs
    r = run("single", "--model", str(d / "bare.pt"), "--image", str(d / "x08.png"), "--output",
            str(d / "bare_fig.png"), "--device", "cpu", "--layer", "3")
    assert r.returncode == 1 and "takes 1 input channel" in r.stderr and "--channels 1" in r.stderr
    r = run("single", "--model", str(d / "bare.pt"), "--image", str(d / "x08.png"), "--output",
            str(d / "bare_fig.png"), "--device", "cpu", "--layer", "3", "--channels", "1", "--input-size", "64x64",
            "--mean", "0.5", "--std", "0.5", "--class-names", "normal,fracture")
    assert r.returncode == 0, r.stderr
    with_meta, _ = single(d, "x08.png", "meta_fig.png", "--class-names", "normal,fracture")
    assert r.stdout.split("->")[0].strip() == with_meta
    assert with_meta.split()[0] in ("normal", "fracture")
    r = run("info", "--model", str(d / "bare.pt"), "--device", "cpu", "--channels", "1", "--input-size", "48x40")
    assert r.returncode == 0, r.stderr
    r = run("single", "--model", str(d / "model.pt"), "--image", str(d / "x08.png"), "--output",
            str(d / "x.png"), "--device", "cpu", "--class-names", "a,b,c")
    assert r.returncode == 1 and "class_names has 3 names but the model has 2 classes" in r.stderr


@pytest.mark.torch
def test_resize_mode_crop_warns_not_seen(radiographs):
    d = radiographs
    r = run("single", "--model", str(d / "model.pt"), "--image", str(d / "x08.png"), "--output",
            str(d / "crop.png"), "--device", "cpu", "--resize-mode", "shorter-side-crop", "--resize-size", "72")
    assert r.returncode == 0, r.stderr
    assert "the model saw only" in r.stderr
    r = run("single", "--model", str(d / "model.pt"), "--image", str(d / "x08.png"), "--output",
            str(d / "letter.png"), "--device", "cpu", "--resize-mode", "letterbox")
    assert r.returncode == 0, r.stderr
    assert "the model saw only" not in r.stderr


@pytest.mark.parametrize("option,value,needle", [
    ("--intensity", "log", "unknown --intensity 'log'"),
    ("--bits", "17", "invalid --bits '17'"),
    ("--bits", "0", "invalid --bits '0'"),
    ("--window", "100", "invalid --window '100'"),
    ("--window", "100,-5", "invalid --window '100,-5'"),
    ("--window", "a,b", "invalid --window 'a,b'"),
    ("--resize-mode", "crop", "unknown --resize-mode 'crop'"),
    ("--resize-mode", "default", "unknown --resize-mode 'default'"),
    ("--resize-size", "0", "invalid --resize-size '0'"),
    ("--input-size", "224", "invalid --input-size '224'"),
    ("--input-size", "0x224", "invalid --input-size '0x224'"),
    ("--input-size", "224x16385", "invalid --input-size '224x16385'"),
    ("--input-size", "1x224", "invalid --input-size '1x224'"),
    ("--input-size", "224x1", "invalid --input-size '224x1'"),
    ("--resize-size", "16385", "invalid --resize-size '16385'"),
    ("--channels", "2", "invalid --channels '2'"),
    ("--mean", "0.5,x", "invalid --mean '0.5,x'"),
    ("--mean", "1,2,3,4", "invalid --mean '1,2,3,4'"),
    ("--std", "0.5,0,0.5", "value 2 is not > 0"),
    ("--class-names", "a,,b", "invalid --class-names 'a,,b'"),
])
def test_bad_values_are_usage_errors(option, value, needle):
    r = run("single", "--image", "x.png", option, value)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr


# Combinations where one option would be silently ignored: refused before any
# model loads, each message naming both options (as fxcam.Model refuses
# bits_stored/window/resize_size with another intensity or resize mode).
@pytest.mark.parametrize("extra,needles", [
    (["--bits", "12", "--intensity", "minmax"], ["--bits 12", "--intensity minmax"]),
    (["--intensity", "container", "--bits", "12"], ["--bits 12", "--intensity container"]),
    (["--bits", "12", "--intensity", "window", "--window", "2048,4096"], ["--bits 12", "--intensity window"]),
    (["--window", "2048,4096", "--intensity", "bits"], ["--window 2048,4096", "--intensity bits"]),
    (["--window", "2048,4096", "--intensity", "minmax"], ["--window 2048,4096", "--intensity minmax"]),
    (["--window", "2048,4096", "--intensity", "container"], ["--window", "--intensity container"]),
    (["--window", "2048,4096", "--bits", "12"], ["--window", "--bits"]),
    (["--window", "2048,4096", "--bits", "12", "--intensity", "auto"], ["--window", "--bits"]),
    (["--resize-size", "256", "--resize-mode", "stretch"], ["--resize-size 256", "--resize-mode stretch"]),
    (["--resize-mode", "letterbox", "--resize-size", "256"], ["--resize-size 256", "--resize-mode letterbox"]),
])
def test_ignored_combinations_are_usage_errors(extra, needles):
    for command in ("single", "info"):
        r = run(command, "--image", "x.png", *extra) if command == "single" else run(command, *extra)
        assert r.returncode == 2, (command, r.stderr)
        for needle in needles:
            assert needle in r.stderr, (command, needle, r.stderr)


@pytest.mark.parametrize("extra", [
    ["--bits", "12", "--intensity", "bits"], ["--bits", "12", "--intensity", "auto"], ["--bits", "12"],
    ["--window", "2048,4096", "--intensity", "window"], ["--window", "2048,4096"],
    ["--resize-size", "80", "--resize-mode", "shorter-side-crop"],
])
@pytest.mark.torch
def test_compatible_combinations_are_used(radiographs, extra):
    r = run("info", "--model", str(radiographs / "model.pt"), "--device", "cpu", *extra)
    assert r.returncode == 0, r.stderr


@pytest.mark.torch
def test_options_the_metadata_would_ignore_are_refused_after_load(radiographs, tmp_path):
    """fxcam.json decides the intensity rule and resize mode when the command
    line does not: --bits under a metadata "minmax", --resize-size under the
    default stretch are refused (exit 2), naming the option and the model's choice."""
    import json
    import torch
    jit = torch.jit.load(str(radiographs / "model.pt"))
    torch.jit.save(jit, str(tmp_path / "minmax.pt"), _extra_files={"fxcam.json": json.dumps(
        {"input_size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.5], "target_layer": "3",
         "intensity": "minmax"})})
    r = run("info", "--model", str(tmp_path / "minmax.pt"), "--device", "cpu", "--bits", "12")
    assert r.returncode == 2, r.stderr
    assert "--bits 12" in r.stderr and "'minmax'" in r.stderr and "--intensity bits" in r.stderr
    r = run("info", "--model", str(tmp_path / "minmax.pt"), "--device", "cpu", "--bits", "12", "--intensity", "bits")
    assert r.returncode == 0, r.stderr
    r = run("single", "--model", str(radiographs / "model.pt"), "--image", str(radiographs / "x08.png"),
            "--output", str(tmp_path / "o.png"), "--device", "cpu", "--resize-size", "80")
    assert r.returncode == 2, r.stderr
    assert "--resize-size 80" in r.stderr and "'stretch'" in r.stderr and "shorter-side-crop" in r.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.torch
def test_input_size_limits_are_the_librarys(radiographs):
    """The library takes input sides 2..16384 (lib/engine.c; Python's
    input_size too): the command line accepts the same range."""
    r = run("info", "--model", str(radiographs / "model.pt"), "--device", "cpu", "--input-size", "16384x2")
    assert r.returncode == 0, r.stderr
    assert "16384" in r.stdout
    r = run("info", "--model", str(radiographs / "model.pt"), "--device", "cpu", "--input-size", "2x16385")
    assert r.returncode == 2 and "2 to 16384" in r.stderr


def test_help_lists_the_options():
    r = run("single", "--help")
    assert r.returncode == 0
    for option in ("--intensity MODE", "--bits N", "--window C,W", "--resize-mode MODE", "--resize-size N",
                   "--input-size HxW", "--channels N", "--mean a,b,c", "--std a,b,c", "--class-names A,B"):
        assert option in r.stdout, option


def info_lines(d, *extra):
    r = run("info", "--model", str(d / "model.pt"), "--device", "cpu", *extra)
    assert r.returncode == 0, r.stderr
    return {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
            if ":" in line}


@pytest.mark.torch
def test_info_shows_the_intensity_rule_and_resize_mode(radiographs):
    d = radiographs
    lines = info_lines(d)
    assert lines["intensity"].startswith("auto: v / (2^bits - 1)"), lines
    assert lines["resize"] == "stretch: bilinear to 64 x 64, aspect not kept, no antialias"
    lines = info_lines(d, "--bits", "12")
    assert lines["intensity"] == f"auto: v / {2 ** 12 - 1} (12 bits stored)"
    lines = info_lines(d, "--intensity", "container")
    assert lines["intensity"] == "container: v / 255 (8-bit), v / 65535 (16-bit)"
    lines = info_lines(d, "--intensity", "minmax")
    assert lines["intensity"].startswith("minmax: (v - min) / (max - min)")
    lines = info_lines(d, "--window", "2048,4096")
    assert lines["intensity"] == f"window: center 2048, width 4096 (sample units): (v - {2048 - 4096 // 2}) / 4096 " \
                                 "clipped to [0,1]"
    lines = info_lines(d, "--resize-mode", "shorter-side-crop", "--resize-size", "80")
    assert lines["resize"] == "shorter-side-crop: shorter side to 80, then the center 64 x 64 crop"
    lines = info_lines(d, "--resize-mode", "shorter-side-crop")
    assert lines["resize"] == f"shorter-side-crop: shorter side to {64 * 256 // 224}, then the center 64 x 64 crop"
    lines = info_lines(d, "--resize-mode", "letterbox", "--input-size", "48x40")
    assert lines["resize"] == "letterbox: aspect kept, fitted inside 40 x 48 and centered, the rest black"


# ---- batch and evaluate read each file's bits stored, as single does ----------------------------

def brightness_model(d):
    """The fixture's network with a head that reads two of its channels (3:
    bright ridges, 6: the dark background), so the class and confidence move
    well past rounding when the intensity rule changes (the fixture's random
    head gives 0.508 for v / 4095 and 0.505 for v / 65535). fxcam.json as
    model.pt's; saved as bright.pt next to it."""
    import json
    import torch
    import torch.nn as nn
    torch.manual_seed(5)  # the same convolutions as model.pt
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
    with torch.no_grad():
        net[6].weight.zero_()
        net[6].bias.zero_()
        net[6].weight[0, 3], net[6].weight[0, 6] = 30.0, -30.0
    jit = torch.jit.trace(net, torch.zeros(1, 1, 64, 64))
    torch.jit.save(jit, str(d / "bright.pt"), _extra_files={"fxcam.json": json.dumps(
        {"input_size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.5], "target_layer": "3"})})
    return d / "bright.pt"


def single_prediction(model, image, out):
    """(class name, confidence) as `fxcam single` prints them: "name (12.3%)  ->  out"."""
    r = run("single", "--model", str(model), "--image", str(image), "--output", str(out), "--device", "cpu",
            "--overlay-only")
    assert r.returncode == 0, r.stderr
    name, percent = re.fullmatch(r"(.*) \(([0-9.]+)%\)", r.stdout.split("->")[0].strip()).groups()
    return name, float(percent) / 100.0


def torch_probabilities(model_path, unit):
    """The model on a [0,1] gray image by torch itself: bilinear stretch to
    64x64 (fxcam's default resize: no antialias, half-pixel centers), then
    (x - 0.5) / 0.5 as fxcam.json says, softmax."""
    import torch
    import torch.nn.functional as F
    model = torch.jit.load(str(model_path)).eval()
    x = torch.from_numpy(unit.astype(np.float32))[None, None]
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=False)
    with torch.no_grad():
        return torch.softmax(model((x - 0.5) / 0.5), dim=1)[0].numpy()


@pytest.mark.torch
def test_batch_and_evaluate_read_bits_stored_like_single(radiographs, tmp_path):
    """A folder with a 12-bit radiograph in a 16-bit PNG (sBIT 12) and its
    8-bit twin: batch (pipelined) gives each file the class and confidence
    fxcam single gives it and torch computes on v / 4095 (not v / 65535);
    evaluate (and its faithfulness copies) agree with batch; the twins agree
    within 8-bit rounding, in the numbers and in the pictures."""
    d = radiographs
    model = brightness_model(d)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x12.png", "x08.png"):
        shutil.copy(d / name, folder / name)
    v12 = np.asarray(Image.open(d / "x12.png")).astype(np.float64)
    assert v12.max() <= 4095 and v12.max() > 3000  # the fixture really is 12-bit data unscaled in 16 bits
    v8 = np.asarray(Image.open(d / "x08.png")).astype(np.float64)

    # The independent reference, and proof that the test can tell the rules apart.
    p12 = torch_probabilities(model, v12 / 4095.0)
    p8 = torch_probabilities(model, v8 / 255.0)
    p_container = torch_probabilities(model, v12 / 65535.0)
    assert abs(p12[0] - p_container[0]) > 0.2, "the fixture cannot tell v / 4095 from v / 65535"
    assert p12.argmax() == p8.argmax() and abs(p12.max() - p8.max()) < 0.005

    out = tmp_path / "out"
    r = run("batch", "--model", str(model), "--image-dir", str(folder), "--output-dir", str(out),
            "--device", "cpu", "--batch-size", "2", "--io-threads", "1", "--overlay-only", "--report")
    assert r.returncode == 0, r.stderr
    with open(out / "summary.csv", newline="") as f:
        rows = {row["file"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"x12.png", "x08.png"}
    reference = {"x12.png": p12, "x08.png": p8}
    for name, row in rows.items():
        assert row["status"] == "ok", row
        cls, conf = single_prediction(model, folder / name, tmp_path / ("single_" + name))
        assert row["predicted_class"] == cls, (name, row, cls)
        assert abs(float(row["confidence"]) - conf) <= 0.0005 + 1e-9, (name, row, conf)  # single prints 0.1 %
        assert row["predicted_class"] == f"class {reference[name].argmax()}"
        assert abs(float(row["confidence"]) - reference[name].max()) < 1e-3, (name, row, reference[name])
        # The batch overlay is the single overlay: the same image view and map.
        batch_overlay = np.asarray(Image.open(row["output"])).astype(np.float64)
        single_overlay = np.asarray(Image.open(tmp_path / ("single_" + name))).astype(np.float64)
        assert np.abs(batch_overlay - single_overlay).max() <= 1.0, name
    assert abs(float(rows["x12.png"]["confidence"]) - float(rows["x08.png"]["confidence"])) < 0.005
    o12 = np.asarray(Image.open(rows["x12.png"]["output"])).astype(np.float64)
    o8 = np.asarray(Image.open(rows["x08.png"]["output"])).astype(np.float64)
    assert np.abs(o12 - o8).mean() < 1.0  # the 12-bit overlay is not 16x darker than its twin
    t12 = np.asarray(Image.open(str(rows["x12.png"]["output"])[:-4] + "_thumb.png")).astype(np.float64)
    t8 = np.asarray(Image.open(str(rows["x08.png"]["output"])[:-4] + "_thumb.png")).astype(np.float64)
    assert np.abs(t12 - t8).mean() < 1.5  # the report's thumbnails too

    # evaluate (with --faithfulness, whose float copies must score as the heatmap call did)
    r = run("evaluate", "--model", str(model), "--image-dir", str(folder), "--device", "cpu",
            "--faithfulness", "--method", "gradcam", "--batch-size", "2", "--csv", str(tmp_path / "eval.csv"))
    assert r.returncode == 0, r.stderr
    assert "may not describe the same input" not in r.stderr, r.stderr
    with open(tmp_path / "eval.csv", newline="") as f:
        evaluated = {row["file"]: row for row in csv.DictReader(f)}
    assert set(evaluated) == set(rows)
    for name, row in evaluated.items():
        assert row["status"] == "ok", row
        assert row["predicted_class"] == rows[name]["predicted_class"], (name, row, rows[name])
        assert row["confidence"] == rows[name]["confidence"], (name, row, rows[name])
