"""API of `fxcam serve`: every endpoint, and explain equal to `fxcam single`."""
import base64
import io
import json
import os
import subprocess
import tempfile

import numpy as np
import pytest
from PIL import Image

from conftest import FXCAM, SAMPLE, Server

pytestmark = pytest.mark.torch

if os.environ.get("FXCAM_HAS_MHD") == "0":
    pytest.exit("fxcam was built without libmicrohttpd: install libmicrohttpd-dev (tools/setup.sh)", returncode=1)


def png_array(b64):
    return np.array(Image.open(io.BytesIO(base64.b64decode(b64))))


def run_single(*args):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.png")
        p = subprocess.run([FXCAM, "single", "--image", SAMPLE, "--output", out, "--threads", "1", *args],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout, np.array(Image.open(out).convert("RGB"))


def test_healthz(server):
    assert server.json("GET", "/healthz") == {"status": "ok"}


def test_model_matches_fxcam_info(server):
    m = server.json("GET", "/api/v1/model")
    info = subprocess.run([FXCAM, "info", "--threads", "1"], capture_output=True, text=True, timeout=300).stdout
    assert "%u x %u" % (m["input"]["width"], m["input"]["height"]) in info
    assert [c["name"] for c in m["classes"]] == ["normal", "fracture"]
    assert "default layer:  %s" % m["default_layer"] in info
    assert m["default_layer"] in [layer["name"] for layer in m["layers"]]
    assert all(len(layer["shape"]) == 4 for layer in m["layers"])


def test_methods_are_the_library_names(server):
    names = [m["name"] for m in server.json("GET", "/api/v1/methods")["methods"]]
    listed = subprocess.run([FXCAM, "methods"], capture_output=True, text=True, timeout=60).stdout
    assert names[:5] == ["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"]
    assert all(name in listed for name in names)


def test_colormaps_equal_opencv(server):
    import cv2  # python3-opencv (tools/setup.sh): the independent reference
    maps = {c["name"]: c["table"] for c in server.json("GET", "/api/v1/colormaps")["colormaps"]}
    assert len(maps) >= 23 and all(len(t) == 768 for t in maps.values())
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 256)
    for name, code in [("jet", cv2.COLORMAP_JET), ("viridis", cv2.COLORMAP_VIRIDIS), ("bone", cv2.COLORMAP_BONE)]:
        bgr = cv2.applyColorMap(ramp, code)[0]
        assert np.array_equal(np.array(maps[name]).reshape(256, 3), bgr[:, ::-1]), name
    assert maps["gray"] == [v for v in range(256) for _ in range(3)]


def test_explain_equals_fxcam_single(server, sample_bytes):
    """Same prediction as `fxcam single`, and the same heatmap bytes: the 8-bit
    map the server sends, colored with the server's own table, must equal the
    colored heatmap `single --heatmap-only` writes, pixel for pixel (both take
    one fx_gradcam_compute of the image alone; the 8-bit rule is the library's).
    With --colormap gray the CLI's file is the 8-bit map itself."""
    r = server.json("POST", "/api/v1/explain?method=gradcam&figure=1", body=sample_bytes)
    stdout, gray = run_single("--heatmap-only", "--colormap", "gray")
    assert stdout.startswith("%s (%.1f%%)" % (r["prediction"]["name"], 100 * r["prediction"]["confidence"]))
    heat = png_array(r["heatmaps"][0]["png"])
    assert heat.dtype == np.uint8 and heat.ndim == 2 and heat.shape == (256, 256)
    assert np.array_equal(heat, gray[:, :, 0])
    _, jet = run_single("--heatmap-only")
    table = np.array([c for c in server.json("GET", "/api/v1/colormaps")["colormaps"]
                      if c["name"] == "jet"][0]["table"], dtype=np.uint8).reshape(256, 3)
    assert np.array_equal(table[heat], jet)
    # the rest of the answer
    assert abs(sum(p["probability"] for p in r["probabilities"]) - 1) < 1e-5
    assert r["layer"] == server.json("GET", "/api/v1/model")["default_layer"]
    assert r["image"] == {"width": 256, "height": 256, "channels": 1}
    fig = Image.open(io.BytesIO(base64.b64decode(r["figure_png"])))
    assert fig.format == "PNG" and fig.width > 3 * 256
    assert heat[r["heatmaps"][0]["peak"]["y"], r["heatmaps"][0]["peak"]["x"]] == heat.max()


def test_explain_two_methods_multipart_and_options(server, sample_bytes):
    boundary = "fxcamBOUNDARY"
    body = (b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Doe^John.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + sample_bytes + b"\r\n--" + boundary.encode() + b"--\r\n")
    r = server.json("POST", "/api/v1/explain?methods=gradcam,gradcam%2B%2B&class=normal&colormap=hot&alpha=0.7"
                    "&threshold=0.2&figure=0", body=body,
                    headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    assert [h["method"] for h in r["heatmaps"]] == ["gradcam", "gradcam++"]
    assert r["target_class"]["name"] == "normal" and r["colormap"] == "hot" and "figure_png" not in r
    # The file name is nowhere in the answer (base64 PNG data may hold any
    # letters by chance: only the text fields count).
    text = {k: v for k, v in r.items() if k not in ("image_png", "heatmaps", "figure_png")}
    text["heatmaps"] = [{k: v for k, v in h.items() if k != "png"} for h in r["heatmaps"]]
    assert "Doe" not in json.dumps(text)
    _, pp = run_single("--heatmap-only", "--colormap", "gray", "--method", "gradcam++", "--class", "normal")
    assert np.array_equal(png_array(r["heatmaps"][1]["png"]), pp[:, :, 0])


@pytest.mark.parametrize("query,word", [("method=nope", "unknown method"), ("alpha=2", "alpha"),
                                        ("colormap=x", "colormap"), ("class=7", "class"), ("bogus=1", "bogus"),
                                        ("layer=features.nothere", "layer")])
def test_bad_parameters_are_400(server, sample_bytes, query, word):
    r = server.json("POST", "/api/v1/explain?" + query, body=sample_bytes, expect=400)
    assert word in r["error"]


def test_page_is_self_contained(server):
    status, headers, data = server.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = data.decode()
    assert "http://" not in page and "https://" not in page and "model's" in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_token_required_on_api():
    s = Server("--token", "s3cret")
    try:
        assert s.request("GET", "/api/v1/model")[0] == 401
        assert s.request("GET", "/api/v1/model", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert s.request("POST", "/api/v1/explain", body=b"x")[0] == 401
        assert s.request("GET", "/api/v1/model", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert s.request("GET", "/healthz")[0] == 200
    finally:
        s.stop()


def test_other_host_needs_token():
    p = subprocess.run([FXCAM, "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "--token" in p.stderr
