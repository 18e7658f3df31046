"""`fxcam batch --report`: index.html opened from file:// in Debian's
headless Chromium (python3-selenium), as the serve page is. The expected
values come from elsewhere than the page: the predictions from summary.csv
(checked against torch by the cli suite), the sort orders, filter counts,
flags and thumbnail sizes recomputed here in Python, the links resolved to
files on disk. A screenshot is saved into the build folder."""
import csv
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import FXCAM, SOURCE_ROOT

pytestmark = pytest.mark.torch

SAMPLES = os.path.join(SOURCE_ROOT, "models", "samples")
XSS_SCRIPT = "<script>x.png"
XSS_IMG = "<img src=x onerror=window.pwned=1>.png"
ODD = "odd #1 & 'q' %41.png"


def make_inputs(folder):
    """Seven images (two named to inject HTML, one with URL metacharacters, one
    1000 x 700 to exercise thumbnail shrinking), a truncated PNG and a text
    file. Returns the boxes: one far from every peak, one over the whole image."""
    from PIL import Image
    names = {"a.png": "synth_2000_00000.png", "b.png": "synth_2000_00002.png",
             "c.png": "synth_2000_00006.png", XSS_SCRIPT: "synth_2000_00008.png",
             XSS_IMG: "synth_2000_00001.png", ODD: "synth_2000_00003.png"}
    for name, source in names.items():
        shutil.copy(os.path.join(SAMPLES, source), os.path.join(folder, name))
    big = Image.open(os.path.join(SAMPLES, "synth_2000_00004.png")).convert("L").resize((1000, 700))
    big.save(os.path.join(folder, "big.png"))
    with open(os.path.join(SAMPLES, "synth_2000_00005.png"), "rb") as fh:
        data = fh.read()
    with open(os.path.join(folder, "broken.png"), "wb") as fh:
        fh.write(data[:len(data) // 3])
    with open(os.path.join(folder, "notes.txt"), "w") as fh:
        fh.write("not an image\n")


def run_batch(image_dir, out_dir, *extra):
    proc = subprocess.run([FXCAM, "batch", "--image-dir", image_dir, "--output-dir", out_dir, "--report",
                           "--threads", "1", *extra], capture_output=True, text=True, timeout=600)
    return proc


def read_summary(out_dir):
    with open(os.path.join(out_dir, "summary.csv"), newline="") as fh:
        return list(csv.DictReader(fh))


def in_box(x, y, box):
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Runs the batch once; a second run with boxes placed from the first
    run's peaks gives one "peak outside" and one "inside"."""
    base = tmp_path_factory.mktemp("report")
    images, out = str(base / "images"), str(base / "out")
    os.mkdir(images)
    make_inputs(images)
    first = run_batch(images, out)
    assert first.returncode == 1, first.stderr  # broken.png fails
    rows = {r["file"]: r for r in read_summary(out)}
    ax, ay = int(rows["a.png"]["peak_x"]), int(rows["a.png"]["peak_y"])
    # a 10 x 10 box in the corner farthest from a.png's peak; b.png boxed whole
    fx, fy = (0 if ax > 127 else 246), (0 if ay > 127 else 246)
    boxes = {"a.png": (fx, fy, fx + 9, fy + 9), "b.png": (0, 0, 255, 255)}
    with open(str(base / "boxes.csv"), "w") as fh:
        fh.write("file,label,x0,y0,x1,y1\n")
        for name, b in boxes.items():
            fh.write("%s,1,%d,%d,%d,%d\n" % ((name,) + b))
        fh.write("c.png,0,,,,\n")
    second = run_batch(images, out, "--boxes", str(base / "boxes.csv"))
    assert second.returncode == 1, second.stderr
    assert "report: " in second.stdout
    return {"images": images, "out": out, "rows": {r["file"]: r for r in read_summary(out)}, "boxes": boxes}


def card_data(browser):
    return browser.execute_script("""
        return Array.from(document.querySelectorAll('#grid .card')).map(c => ({
            name: c.dataset.name, cls: c.dataset.class, conf: parseFloat(c.dataset.confidence),
            shownName: c.querySelector('.name').textContent, hidden: c.hidden,
            href: c.querySelector('a.thumb').href,
            img: c.querySelector('img') ? c.querySelector('img').src : null,
            low: !c.querySelector('.flag.low').hidden, peak: !!c.querySelector('.flag.peak'),
            pred: c.querySelector('.pred b').textContent, confText: c.querySelector('.conf').textContent}));""")


def file_path(url):
    assert url.startswith("file://"), url
    return urllib.request.url2pathname(urllib.parse.urlparse(url).path)


def test_report_in_browser(report, browser):
    out, rows, boxes = report["out"], report["rows"], report["boxes"]
    ok = {name: r for name, r in rows.items() if r["status"] == "ok"}
    assert len(ok) == 7 and rows["broken.png"]["status"].startswith("failed")
    assert rows["notes.txt"]["status"].startswith("ignored")

    browser.get("file://" + os.path.join(out, "index.html"))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert browser.execute_script("return window.pwned") is None, "a file name was executed as HTML"
    assert len(browser.find_elements(By.CSS_SELECTOR, "script")) == 1

    cards = card_data(browser)
    assert len(cards) == 7
    assert sorted(c["name"] for c in cards) == sorted(ok)
    for c in cards:
        row = ok[c["name"]]
        assert c["shownName"] == c["name"]  # the malicious names appear as text
        assert c["pred"] == row["predicted_class"]
        assert abs(c["conf"] - float(row["confidence"])) < 5e-5
        assert c["confText"] == "%.1f%%" % (100 * c["conf"])
        assert c["low"] == (c["conf"] < 0.6)
        peak = (int(row["peak_x"]), int(row["peak_y"]))
        assert c["peak"] == (c["name"] in boxes and not in_box(*peak, boxes[c["name"]]))
        figure = file_path(c["href"])
        assert os.path.realpath(figure) == os.path.realpath(row["output"])
        assert os.path.isfile(figure)
        assert os.path.isfile(file_path(c["img"]))
    assert [c["peak"] for c in cards if c["name"] == "a.png"] == [True]
    assert [c["peak"] for c in cards if c["name"] == "b.png"] == [False]

    # Every thumbnail decoded in the browser, at most 256 px, the input's aspect ratio.
    sizes = browser.execute_script("""
        return Promise.all(Array.from(document.querySelectorAll('#grid img')).map(i => { i.loading = 'eager';
            return i.decode().then(() => [i.closest('.card').dataset.name, i.naturalWidth, i.naturalHeight]); }));""")
    sizes = {name: (w, h) for name, w, h in sizes}
    assert sizes["big.png"] == (256, 700 * 256 // 1000)
    assert sizes["a.png"] == (256, 256)

    # Sort by file name (code point order), by confidence both ways.
    browser.find_element(By.ID, "sortName").click()
    assert [c["name"] for c in card_data(browser)] == sorted(ok)
    browser.find_element(By.ID, "sortConfDesc").click()
    # Ties broken by name: by the page's own confidences (full precision; the
    # CSV's 6 decimals tie saturated ones such as 0.99999994 and 0.99999997,
    # and the page was checked against the CSV within 5e-5 above).
    shown = {c["name"]: c["conf"] for c in card_data(browser)}
    expected = sorted(ok, key=lambda n: (-shown[n], n))
    order = card_data(browser)
    assert [c["name"] for c in order] == expected
    assert all(a["conf"] >= b["conf"] for a, b in zip(order, order[1:]))
    browser.find_element(By.ID, "sortConfAsc").click()
    assert [c["conf"] for c in card_data(browser)] == sorted(c["conf"] for c in order)

    # Filter by predicted class: the visible count is that class's rows.
    select = browser.find_element(By.ID, "classFilter")
    for option in select.find_elements(By.TAG_NAME, "option"):
        option.click()
        value = option.get_attribute("value")
        visible = [c for c in card_data(browser) if not c["hidden"]]
        want = [n for n, r in ok.items() if value == "*" or r["predicted_class"] == value]
        assert sorted(c["name"] for c in visible) == sorted(want), value
        assert browser.find_element(By.ID, "shown").text == "showing %d of 7" % len(want)
        assert all(c["cls"] == value for c in visible) or value == "*"
    select.find_elements(By.TAG_NAME, "option")[0].click()

    # The low-confidence threshold control re-flags in the page.
    threshold = browser.find_element(By.ID, "lowThreshold")
    threshold.clear()
    threshold.send_keys("1")
    assert all(c["low"] for c in card_data(browser))
    assert browser.find_element(By.ID, "lowCount").text == "7"
    threshold.clear()
    threshold.send_keys("0.6")

    # Failures and ignored files, with their reasons, names escaped.
    failed = browser.find_element(By.ID, "failedTable").text
    assert "broken.png" in failed and "cannot read the image" in failed
    ignored = browser.find_element(By.ID, "ignoredTable").text
    assert "notes.txt" in ignored and "not an image" in ignored

    # Nothing but this file, its thumbnails and nothing from the network.
    with open(os.path.join(out, "index.html"), encoding="utf-8") as fh:
        html = fh.read()
    assert "http://" not in html and "https://" not in html
    assert XSS_SCRIPT not in html and XSS_IMG not in html
    assert "&lt;script&gt;x.png" in html

    browser.find_element(By.ID, "sortConfDesc").click()
    shot = os.path.join(os.environ.get("FXCAM_BUILD_DIR", out), "report_page.png")
    browser.save_screenshot(shot)
    assert os.path.getsize(shot) > 10000


def test_report_never_replaces_a_foreign_index(tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    out.mkdir()
    shutil.copy(os.path.join(SAMPLES, "synth_2000_00000.png"), str(images / "a.png"))
    (out / "index.html").write_text("<p>the user's own page</p>")
    proc = run_batch(str(images), str(out))
    assert proc.returncode == 1
    assert "index.html' exists and was not written by fxcam; not replaced" in proc.stderr
    assert (out / "index.html").read_text() == "<p>the user's own page</p>"
    # fxcam's own page is replaced by the next run
    (out / "index.html").unlink()
    assert run_batch(str(images), str(out)).returncode == 0
    assert run_batch(str(images), str(out)).returncode == 0
    assert "fxcam batch report" in (out / "index.html").read_text()
