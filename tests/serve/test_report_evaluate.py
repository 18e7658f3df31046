"""`fxcam evaluate --report --output-dir DIR`: figures, thumbnails and the
same index.html as batch --report, opened from file:// in headless Chromium.
Expected values come from outside the page: predictions, confidences and
peaks from evaluate's own --csv rows (the cli suite checks evaluate's maps
against torch), the peak-outside-box flags recomputed here from those peaks
and boxes placed by this test, the links resolved to files on disk and the
figures and thumbnails decoded with PIL."""
import csv
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import FXCAM, SOURCE_ROOT

pytestmark = pytest.mark.torch

SAMPLES = os.path.join(SOURCE_ROOT, "models", "samples")
XSS = "<img src=x onerror=window.pwned=1>.png"


def run_evaluate(*args):
    return subprocess.run([FXCAM, "evaluate", "--threads", "1", *args], capture_output=True, text=True,
                          timeout=600)


def write_boxes(path, rows):
    with open(path, "w") as fh:
        fh.write("file,label,x0,y0,x1,y1\n")
        for name, label, box in rows:
            fh.write("%s,%d,%s\n" % (name, label, ",".join(str(v) for v in box) if box else ",,,"))


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def in_box(x, y, box):
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def file_path(url):
    assert url.startswith("file://"), url
    return urllib.request.url2pathname(urllib.parse.urlparse(url).path)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """A first run gives a.png's Grad-CAM peak; the second places a box far
    from it (peak outside), one over all of b.png (inside), none on c.png."""
    base = tmp_path_factory.mktemp("evaluate_report")
    images = base / "images"
    images.mkdir()
    for name, source in {"a.png": "synth_2000_00000.png", "b.png": "synth_2000_00002.png",
                         "c.png": "synth_2000_00006.png", XSS: "synth_2000_00008.png"}.items():
        shutil.copy(os.path.join(SAMPLES, source), str(images / name))
    with open(os.path.join(SAMPLES, "synth_2000_00005.png"), "rb") as fh:
        (images / "broken.png").write_bytes(fh.read()[:300])
    first_boxes = str(base / "first.csv")
    write_boxes(first_boxes, [("a.png", 1, (0, 0, 255, 255))])
    first = run_evaluate("--image-dir", str(images), "--boxes", first_boxes, "--csv", str(base / "first_rows.csv"))
    assert first.returncode == 0, first.stderr
    row = [r for r in read_csv(str(base / "first_rows.csv")) if r["method"] == "gradcam"][0]
    ax, ay = int(row["peak_x"]), int(row["peak_y"])
    fx, fy = (0 if ax > 127 else 246), (0 if ay > 127 else 246)
    boxes = {"a.png": (fx, fy, fx + 9, fy + 9), "b.png": (0, 0, 255, 255)}
    boxes_csv = str(base / "boxes.csv")
    write_boxes(boxes_csv, [("a.png", 1, boxes["a.png"]), ("b.png", 0, boxes["b.png"]), ("c.png", 0, None),
                            (XSS, 1, None), ("broken.png", 1, None)])
    out, rows_csv = str(base / "out"), str(base / "rows.csv")
    proc = run_evaluate("--image-dir", str(images), "--boxes", boxes_csv, "--csv", rows_csv, "--report",
                        "--output-dir", out)
    assert proc.returncode == 1, proc.stderr  # broken.png fails
    assert "report: " in proc.stdout
    rows = {r["file"]: r for r in read_csv(rows_csv) if r["method"] in ("gradcam", "")}  # "": failed
    return {"out": out, "rows": rows, "boxes": boxes}


def test_evaluate_report_in_browser(evaluation, browser):
    out, rows, boxes = evaluation["out"], evaluation["rows"], evaluation["boxes"]
    ok = {n: r for n, r in rows.items() if r["status"] == "ok"}
    assert sorted(ok) == sorted(["a.png", "b.png", "c.png", XSS])
    assert rows["broken.png"]["status"].startswith("failed")

    browser.get("file://" + os.path.join(out, "index.html"))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert browser.execute_script("return window.pwned") is None, "a file name was executed as HTML"
    cards = browser.execute_script("""
        return Array.from(document.querySelectorAll('#grid .card')).map(c => ({
            name: c.dataset.name, conf: parseFloat(c.dataset.confidence),
            href: c.querySelector('a.thumb').href, img: c.querySelector('img') ? c.querySelector('img').src : null,
            peak: !!c.querySelector('.flag.peak'), pred: c.querySelector('.pred b').textContent}));""")
    assert sorted(c["name"] for c in cards) == sorted(ok)
    for c in cards:
        row = ok[c["name"]]
        assert c["pred"] == row["predicted_class"]
        assert abs(c["conf"] - float(row["confidence"])) < 5e-5
        peak = (int(row["peak_x"]), int(row["peak_y"]))
        assert c["peak"] == (c["name"] in boxes and not in_box(*peak, boxes[c["name"]])), c
        figure, thumb = file_path(c["href"]), file_path(c["img"])
        assert os.path.dirname(figure) == out and os.path.basename(figure).endswith("_gradcam.png")
        with Image.open(figure) as f, Image.open(thumb) as t:
            assert f.mode == "RGB" and f.width > 256  # original | heatmap | overlay
            assert max(t.size) == 256 and t.size == (256, 256)  # the 256 x 256 inputs' overlay
    assert [c["peak"] for c in cards if c["name"] == "a.png"] == [True]
    assert [c["peak"] for c in cards if c["name"] == "b.png"] == [False]

    # Sorting by confidence works here too.
    browser.find_element(By.ID, "sortConfDesc").click()
    order = browser.execute_script(
        "return Array.from(document.querySelectorAll('#grid .card')).map(c => parseFloat(c.dataset.confidence));")
    assert order == sorted(order, reverse=True)
    failed = browser.find_element(By.ID, "failedTable").text
    assert "broken.png" in failed and "cannot read the image" in failed
    with open(os.path.join(out, "index.html"), encoding="utf-8") as fh:
        html = fh.read()
    assert XSS not in html and "Grad-CAM" in html


def test_evaluate_report_needs_output_dir(tmp_path):
    boxes = str(tmp_path / "boxes.csv")
    write_boxes(boxes, [("a.png", 1, None)])
    for args, word in ((["--report"], "--output-dir"), (["--output-dir", str(tmp_path / "o")], "--report")):
        proc = run_evaluate("--image-dir", str(tmp_path), "--boxes", boxes, *args)
        assert proc.returncode == 2 and word in proc.stderr, proc.stderr
