"""The page in a real browser: Debian's headless Chromium driven by
python3-selenium. Uploads the sample radiograph, waits for the overlay, moves
the alpha slider (the canvas must change without a new request), switches to
the compare view, downloads the figure, and saves a screenshot."""
import os
import tempfile
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import SAMPLE

pytestmark = pytest.mark.torch

CANVAS_SUM = """
const c = document.getElementById(arguments[0]);
if (!c.width) return -1;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7;
return s;"""


def test_page_upload_blend_compare_download(server, browser):
    browser.get(server.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Ready"))
    methods = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#method option")]
    assert "gradcam" in methods and "gradcam++" in methods
    browser.execute_script("document.getElementById('file').hidden = false;")
    browser.find_element(By.ID, "file").send_keys(os.path.abspath(SAMPLE))
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert browser.find_element(By.ID, "prediction").text in ("fracture", "normal")
    assert "%" in browser.find_element(By.ID, "confidence").text
    before = browser.execute_script(CANVAS_SUM, "overlay")
    assert before > 0

    slider = browser.find_element(By.ID, "alpha")
    ActionChains(browser).click_and_hold(slider).move_by_offset(int(slider.size["width"] * 0.4), 0).release().perform()
    assert float(slider.get_attribute("value")) > 0.5
    after = browser.execute_script(CANVAS_SUM, "overlay")
    assert after != before, "moving alpha did not re-blend the overlay"
    assert browser.execute_script("return document.body.dataset.ready") == "1", "alpha must not send a request"

    browser.find_element(By.ID, "compare").click()
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "2")
    assert browser.find_element(By.ID, "compareView").is_displayed()
    assert browser.find_element(By.ID, "titleB").text == "Grad-CAM++"
    assert browser.execute_script(CANVAS_SUM, "overlayA") != browser.execute_script(CANVAS_SUM, "overlayB")

    browser.find_element(By.ID, "downloadFigure").click()
    path = os.path.join(browser.downloads, "fxcam_figure.png")
    for _ in range(100):
        if os.path.exists(path):
            break
        time.sleep(0.1)
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

    browser.find_element(By.ID, "compare").click()  # back to the single view for the screenshot
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "3")
    shot = os.path.join(os.environ.get("FXCAM_BUILD_DIR", tempfile.gettempdir()), "serve_page.png")
    browser.save_screenshot(shot)
    assert os.path.getsize(shot) > 10000
