"""Score-CAM and Ablation-CAM from the command line: the estimate printed
after the first batch of masked forwards, the progress lines (stderr not a
terminal), the bar (stderr a terminal), and Ctrl-C (SIGINT) cancelling
cleanly: exit status 130, a message saying so, and no output file.
No assertion on time: the estimate's number is only checked to be there."""
import os
import pty
import re
import select
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest

from test_cli import FXCAM, run

torch_only = pytest.mark.torch

CHANNELS = 96  # layer 'features' of the model below: 3 forwards of 32 (the library's default batch)


def wide_model(path, channels, stride=1):
    """A traced model whose target layer 'features' has `channels` channels
    (a 3x3 convolution of the 64x64 gray input, with this stride), then a 1x1
    convolution to 16 channels, pooling and a linear layer to 2 classes."""
    import json

    import torch
    from collections import OrderedDict
    from torch import nn

    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(1, channels, 3, stride=stride, padding=1), relu=nn.ReLU()))
            self.tail = nn.Conv2d(channels, 16, 1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(16, 2)

        def forward(self, x):
            return self.classifier(torch.flatten(self.pool(self.tail(self.features(x))), 1))

    torch.manual_seed(0)
    traced = torch.jit.trace(Wide().eval(), torch.zeros(1, 1, 64, 64))
    meta = {"input_size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.25],
            "class_names": ["normal", "fracture"], "target_layer": "features"}
    torch.jit.save(traced, str(path), _extra_files={"fxcam.json": json.dumps(meta)})
    return str(path)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "x.png"
    rng = np.random.default_rng(3)
    cv2.imwrite(str(path), rng.integers(0, 255, size=(64, 64)).astype(np.uint8))
    return str(path)


@torch_only
@pytest.mark.parametrize("method,title", [("scorecam", "Score-CAM"), ("ablationcam", "Ablation-CAM")])
def test_estimate_and_progress_lines(tmp_path, image, method, title):
    model = wide_model(tmp_path / "wide.pt", CHANNELS)
    out = tmp_path / "out.png"
    r = run("single", "--model", model, "--image", image, "--method", method, "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    # 96 channels in batches of 32: 3 forwards per image
    estimate = re.search(r"^fxcam single: %s on features: %d channels = 3 forwards of 32 per image; about "
                         r"\d+(\.\d)? (s|min|h) per image \(measured on the first batch\)$" % (title, CHANNELS),
                         r.stderr, re.M)
    assert estimate, r.stderr
    # stderr is a pipe: plain lines, one per tenth; the last one at 100 %
    lines = re.findall(r"^fxcam single: %s: (\d+)%% \((\d+)/(\d+) forwards of masked inputs\), \d+:\d\d left$"
                       % title, r.stderr, re.M)
    assert [(int(p), int(d), int(t)) for p, d, t in lines] == [(33, 32, 96), (66, 64, 96), (100, 96, 96)], r.stderr
    assert "\r" not in r.stderr


@torch_only
def test_compare_estimates_both_methods(tmp_path, image):
    model = wide_model(tmp_path / "wide.pt", CHANNELS)
    out = tmp_path / "cmp.png"
    r = run("compare", "--model", model, "--image", image, "--methods", "scorecam,ablationcam", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^fxcam compare: Score-CAM and Ablation-CAM on features: %d channels = 3 forwards of 32 per "
                     r"image each; about " % CHANNELS, r.stderr, re.M), r.stderr
    # one image, two methods: 2 x 96 forwards of masked inputs in all
    assert re.search(r"\(192/192 forwards of masked inputs\)", r.stderr), r.stderr


@torch_only
def test_estimate_counts_every_layer(tmp_path, image):
    """--layers features,tail: the library runs 96 + 16 channels per image
    (3 forwards of 32 for 'features', 1 of 16 for 'tail'); the estimate says
    so, and agrees with the library's progress total."""
    model = wide_model(tmp_path / "wide.pt", CHANNELS)
    out = tmp_path / "layers.png"
    r = run("single", "--model", model, "--image", image, "--method", "scorecam", "--layers", "features,tail",
            "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    assert re.search(r"^fxcam single: Score-CAM on features,tail: %d channels = 4 forwards of 32 per image; about "
                     r"\d+(\.\d)? (s|min|h) per image \(measured on the first batch\)$" % (CHANNELS + 16),
                     r.stderr, re.M), r.stderr
    counts = [(int(d), int(t)) for d, t in re.findall(r"\((\d+)/(\d+) forwards of masked inputs\)", r.stderr)]
    assert counts and counts[-1] == (CHANNELS + 16, CHANNELS + 16), r.stderr
    assert {t for _, t in counts} == {CHANNELS + 16}, r.stderr


@torch_only
def test_gradient_method_prints_no_estimate(tmp_path, image):
    model = wide_model(tmp_path / "wide.pt", CHANNELS)
    r = run("single", "--model", model, "--image", image, "--method", "gradcam", "--output", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    assert "forwards" not in r.stderr, r.stderr


@torch_only
def test_progress_bar_on_a_terminal(tmp_path, image):
    """stderr a terminal: one line redrawn with \\r, cleared at the end."""
    model = wide_model(tmp_path / "wide.pt", CHANNELS)
    out = tmp_path / "tty.png"
    master, slave = pty.openpty()
    proc = subprocess.Popen([FXCAM, "single", "--model", model, "--image", image, "--method", "scorecam",
                             "--output", str(out)], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        assert ready, "no output on the terminal for 120 s: %r" % seen
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed: the process ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0, seen
    text = seen.decode()
    assert re.search(r"\rScore-CAM \[#{10}\.{20}\] 32/96 forwards of masked inputs  33%  \d+:\d\d left\x1b\[K", text), text
    assert re.search(r"\rScore-CAM \[#{30}\] 96/96 forwards of masked inputs  100%", text), text
    last_bar = text.rindex("\rScore-CAM [")
    assert "\r\x1b[K" in text[last_bar + 1:], text  # the bar is cleared before anything else
    assert out.is_file()


def wait_for_line(stream, pattern, timeout):
    """Reads stream (binary pipe) until a line matches; returns what was read."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            if re.search(pattern, seen.decode(errors="replace"), re.M):
                return seen.decode(errors="replace")
    raise AssertionError("no line matching %r within %d s: %r" % (pattern, timeout, seen))


@torch_only
@pytest.mark.parametrize("command", ["single", "batch"])
def test_sigint_cancels_cleanly(tmp_path, image, command):
    # 2048 channels (16x16 maps): 64 forwards of 32 masked inputs, so that the
    # run is still going when the signal comes, right after the estimate
    model = wide_model(tmp_path / "slow.pt", 2048, stride=4)
    if command == "single":
        out = tmp_path / "out.png"
        args = ["single", "--model", model, "--image", image, "--method", "scorecam", "--output", str(out)]
    else:
        src = tmp_path / "in"
        src.mkdir()
        os.link(image, src / "x.png")
        out = tmp_path / "outdir"
        args = ["batch", "--model", model, "--image-dir", str(src), "--output-dir", str(out), "--method", "scorecam"]
    proc = subprocess.Popen([FXCAM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        before = wait_for_line(proc.stderr, r"^fxcam %s: Score-CAM on features: 2048 channels = 64 forwards of 32 "
                                            r"per image; about " % command, 300)
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read().decode(errors="replace")
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = before + rest
    assert rc == 130, stderr
    m = re.search(r"^fxcam %s: interrupted \(Ctrl-C\): cancelled by the progress callback after (\d+) of 2048 "
                  r"per-channel forward passes; no output file was written" % command, stderr, re.M)
    assert m, stderr
    assert 32 <= int(m.group(1)) < 2048, stderr
    if command == "single":
        assert not out.exists()
        assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*")), list(tmp_path.iterdir())
    else:
        produced = [p.name for p in out.rglob("*") if p.is_file()] if out.exists() else []
        assert not [p for p in produced if p.endswith(".png")], produced
