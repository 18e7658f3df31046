"""Fixtures for the `fxcam serve` tests: a server on a free loopback port,
started as a subprocess and stopped with SIGTERM (checking a clean exit)."""
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

FXCAM = os.environ.get("FXCAM", "fxcam")
SOURCE_ROOT = os.environ.get("FXCAM_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLE = os.path.join(SOURCE_ROOT, "models", "samples", "synth_2000_00000.png")


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs libfxcam built with libtorch (deselected otherwise)")


class Server:
    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([FXCAM, "serve", "--port", "0", "--threads", "1", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, **(env or {})))
        line = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            err = self.proc.stderr.read()
            self.proc.kill()
            raise AssertionError("fxcam serve did not print its URL: %r %r" % (line, err))
        self.port = int(match.group(1))
        self.url = "http://127.0.0.1:%d/" % self.port

    def request(self, method, path, body=None, headers=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), data
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, expect=200):
        status, hdrs, data = self.request(method, path, body, headers)
        assert status == expect, (status, data[:500])
        assert hdrs.get("Content-Type") == "application/json"
        return json.loads(data)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("fxcam serve did not stop on SIGTERM within 30 s")
            assert rc == 0, self.proc.stderr.read()[-2000:]
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def server():
    s = Server("--timeout", "2", "--max-upload", "2")
    yield s
    log = s.stop()
    # The log names no file and holds no file content.
    assert "synth_2000" not in log


@pytest.fixture(scope="session")
def sample_bytes():
    with open(SAMPLE, "rb") as fh:
        return fh.read()


@pytest.fixture
def browser():
    """Debian's headless Chromium through python3-selenium (no network, a
    fresh profile; downloads go to browser.downloads). Shared by the page test
    and the batch report test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="fxcam-chromium-")
    downloads = tempfile.mkdtemp(prefix="fxcam-downloads-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                "--user-data-dir=" + profile, "--window-size=1400,1000"]:
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()
