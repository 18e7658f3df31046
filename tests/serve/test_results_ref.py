"""Results by reference: POST /api/v1/explain?return=ref keeps the PNGs for
GET /api/v1/results/<id>/<name>.png, bounded in count, bytes and time."""
import base64
import io
import re
import time

import numpy as np
import pytest
from PIL import Image

from conftest import Server

pytestmark = pytest.mark.torch

FIXED_TIME = {"SOURCE_DATE_EPOCH": "1700000000"}  # figures of two requests then equal byte for byte


def png(data):
    return np.array(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def keeper():
    s = Server("--results", "2", "--results-ttl", "120", env=FIXED_TIME)
    yield s
    s.stop()


def get(server, url, headers=None):
    status, hdrs, data = server.request("GET", url, headers=headers)
    return status, hdrs.get("Content-Type"), data


def test_ref_answer_files_equal_the_inline_answer(keeper, sample_bytes):
    inline = keeper.json("POST", "/api/v1/explain", body=sample_bytes)
    ref = keeper.json("POST", "/api/v1/explain?return=ref", body=sample_bytes)
    assert re.fullmatch(r"[0-9a-f]{32}", ref["result"]["id"])
    assert ref["result"]["expires_in_s"] == 120
    # nothing inline: every PNG is a URL under the id
    assert "image_png" not in ref and "figure_png" not in ref and "png" not in ref["heatmaps"][0]
    base = "/api/v1/results/%s/" % ref["result"]["id"]
    assert ref["image_png_url"] == base + "image.png"
    assert ref["figure_png_url"] == base + "figure.png"
    assert ref["heatmaps"][0]["png_url"] == base + "heatmap-gradcam.png"
    assert ref["heatmaps"][0]["overlay_png_url"] == base + "overlay-gradcam.png"
    assert sorted(ref["result"]["files"]) == ["figure", "heatmap-gradcam", "image", "overlay-gradcam"]
    assert ref["prediction"] == inline["prediction"] and ref["probabilities"] == inline["probabilities"]
    files = {}
    for name, url in ref["result"]["files"].items():
        status, ctype, data = get(keeper, url)
        assert status == 200 and ctype == "image/png", (name, status)
        files[name] = data
    # both requests ran alone (batch of one): the same bytes as inline
    assert inline["timing"]["batch_size"] == ref["timing"]["batch_size"] == 1
    assert files["image"] == base64.b64decode(inline["image_png"])
    assert files["heatmap-gradcam"] == base64.b64decode(inline["heatmaps"][0]["png"])
    assert files["figure"] == base64.b64decode(inline["figure_png"])
    # "heatmap" and "overlay" name the first method's files
    assert get(keeper, base + "heatmap.png")[2] == files["heatmap-gradcam"]
    assert get(keeper, base + "overlay.png")[2] == files["overlay-gradcam"]


def test_overlay_is_the_documented_blend(keeper, sample_bytes):
    """overlay = round((1 - alpha) * image + alpha * table[heatmap]) where
    heatmap >= threshold (fxcam.h, fx_overlay), recomputed with numpy from the
    served image, heatmap and the colormap table of /api/v1/colormaps."""
    ref = keeper.json("POST", "/api/v1/explain?return=ref&alpha=0.7&threshold=0.5&colormap=viridis&figure=0",
                      body=sample_bytes)
    assert "figure" not in ref["result"]["files"] and "figure_png_url" not in ref
    image = png(get(keeper, ref["image_png_url"])[2]).astype(float)
    heat = png(get(keeper, ref["heatmaps"][0]["png_url"])[2])
    overlay = png(get(keeper, ref["heatmaps"][0]["overlay_png_url"])[2]).astype(int)
    table = {c["name"]: c["table"] for c in keeper.json("GET", "/api/v1/colormaps")["colormaps"]}["viridis"]
    colors = np.array(table, dtype=float).reshape(256, 3)[heat]
    # heat is round(v * 255); v >= 0.5 <=> round(v * 255) >= 128 except at v in [127.5/255, 0.5)
    blend = np.floor(0.3 * image + 0.7 * colors + 0.5)
    want = np.where((heat >= 128)[..., None], blend, image)
    unsure = heat == 128
    diff = np.abs(overlay - want)[~unsure]
    assert diff.max() <= 1, diff.max()
    assert (overlay != image.astype(int)).any(axis=2).sum() > 100  # the blend changed the image somewhere


def test_least_recently_used_goes_first_and_unknown_ids_are_404(keeper, sample_bytes):
    """--results 2: A, B kept; A read again; C evicts B (the least recently used)."""
    ids = []
    for _ in range(2):
        ids.append(keeper.json("POST", "/api/v1/explain?return=ref&figure=0", body=sample_bytes)["result"]["id"])
    a, b = ids
    assert a != b
    assert get(keeper, "/api/v1/results/%s/image.png" % a)[0] == 200
    c = keeper.json("POST", "/api/v1/explain?return=ref&figure=0", body=sample_bytes)["result"]["id"]
    assert get(keeper, "/api/v1/results/%s/image.png" % b)[0] == 404
    assert get(keeper, "/api/v1/results/%s/image.png" % a)[0] == 200
    assert get(keeper, "/api/v1/results/%s/image.png" % c)[0] == 200
    for url in ["/api/v1/results/%s/image.png" % ("0" * 32), "/api/v1/results/%s/figure.png" % c,
                "/api/v1/results/%s/../../image.png" % c, "/api/v1/results/%s/image.png" % c.upper(),
                "/api/v1/results/%s/image" % c, "/api/v1/results/%s" % c, "/api/v1/results/"]:
        status, ctype, data = get(keeper, url)
        assert status == 404 and ctype == "application/json", (url, status)
    assert keeper.request("POST", "/api/v1/results/%s/image.png" % c)[0] == 405


def test_bad_return_value_is_400(keeper, sample_bytes):
    status, _, data = keeper.request("POST", "/api/v1/explain?return=url", body=sample_bytes)
    assert status == 400 and b"'inline'" in data and b"'ref'" in data


def test_expired_results_are_404_and_the_token_guards_them(sample_bytes):
    s = Server("--results-ttl", "3", "--token", "s3cret")
    try:
        auth = {"Authorization": "Bearer s3cret"}
        ref = s.json("POST", "/api/v1/explain?return=ref&figure=0", body=sample_bytes, headers=auth)
        t0 = time.monotonic()
        url = ref["image_png_url"]
        assert get(s, url)[0] == 401
        assert get(s, url, {"Authorization": "Bearer s3cre"})[0] == 401
        assert get(s, url, auth)[0] == 200
        assert time.monotonic() - t0 < 2.5, "too slow to check before the expiry"
        time.sleep(3.2 - (time.monotonic() - t0))
        assert get(s, url, auth)[0] == 404
    finally:
        s.stop()


def test_store_stays_within_its_bytes(sample_bytes):
    """--results-mb 1: older results go so that the kept PNGs fit in 1 MiB;
    the newest is always kept and what is kept is a run of the newest."""
    s = Server("--results-mb", "1", env=FIXED_TIME)
    try:
        ids = [s.json("POST", "/api/v1/explain?return=ref", body=sample_bytes)["result"]
               for _ in range(8)]
        kept, sizes = [], []
        for r in ids:
            got = [get(s, url) for url in r["files"].values()]
            statuses = {g[0] for g in got}
            assert len(statuses) == 1, statuses  # a result is kept or dropped whole
            kept.append(statuses == {200})
            sizes.append(sum(len(g[2]) for g in got))
        assert kept[-1] and not kept[0], kept
        first = kept.index(True)
        assert all(kept[first:]), kept
        assert sum(sz for sz, k in zip(sizes, kept) if k) <= 1 << 20
        # one more would not have fitted: the store dropped only what it had to
        # (every result is the same image at a fixed time: the same bytes)
        kept_sizes = {sz for sz, k in zip(sizes, kept) if k}
        assert len(kept_sizes) == 1, kept_sizes
        assert (len(kept) - first + 1) * kept_sizes.pop() > 1 << 20
    finally:
        s.stop()


def test_two_methods_each_have_their_files(keeper, sample_bytes):
    inline = keeper.json("POST", "/api/v1/explain?methods=gradcam,gradcam%2B%2B&figure=0", body=sample_bytes)
    ref = keeper.json("POST", "/api/v1/explain?methods=gradcam,gradcam%2B%2B&figure=0&return=ref",
                      body=sample_bytes)
    assert sorted(ref["result"]["files"]) == ["heatmap-gradcam", "heatmap-gradcam++", "image", "overlay-gradcam",
                                              "overlay-gradcam++"]
    for k, h in enumerate(ref["heatmaps"]):
        for url in (h["png_url"], h["png_url"].replace("+", "%2B")):
            status, ctype, data = get(keeper, url)
            assert status == 200 and data == base64.b64decode(inline["heatmaps"][k]["png"]), url


def test_timing_adds_up_within_the_clients_clock(keeper, sample_bytes):
    """Every stage of `timing` is a part of total_ms, and total_ms is within
    the round trip the client measured itself."""
    t0 = time.monotonic()
    r = keeper.json("POST", "/api/v1/explain", body=sample_bytes)
    client_ms = (time.monotonic() - t0) * 1000.0
    t = r["timing"]
    stages = ["upload_ms", "decode_ms", "queue_ms", "compute_ms", "handoff_ms", "view_ms", "figure_ms",
              "overlay_ms", "png_ms", "answer_ms", "total_ms"]
    assert all(t[k] >= 0 for k in stages), t
    assert t["figure_ms"] + t["png_ms"] <= t["answer_ms"] + 0.01, t
    assert t["upload_ms"] + t["decode_ms"] + t["queue_ms"] + t["compute_ms"] + t["answer_ms"] <= t["total_ms"] + 0.01, t
    assert t["total_ms"] <= client_ms, (t, client_ms)
