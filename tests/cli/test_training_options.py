"""The CLI options that say how a model was trained (issue 10): --intensity,
--bits, --window, --resize-mode, --resize-size, --input-size, --channels,
--mean, --std, --class-names; and the one intensity rule for the model and
the figure: a 12-bit radiograph in a 16-bit PNG (sBIT 12), its 8-bit twin and
its DICOM twin give the same prediction and near-identical pictures."""
import os
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
    ("--input-size", "224x9999", "invalid --input-size '224x9999'"),
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


def test_help_lists_the_options():
    r = run("single", "--help")
    assert r.returncode == 0
    for option in ("--intensity MODE", "--bits N", "--window C,W", "--resize-mode MODE", "--resize-size N",
                   "--input-size HxW", "--channels N", "--mean a,b,c", "--std a,b,c", "--class-names A,B"):
        assert option in r.stdout, option
