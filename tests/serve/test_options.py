"""`fxcam serve` options checked before any model loads (run in every build,
with or without libtorch)."""
import os
import subprocess

from conftest import FXCAM

HAS_MHD = os.environ.get("FXCAM_HAS_MHD") != "0"


def run(*args):
    return subprocess.run([FXCAM, "serve", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_the_options():
    p = run("--help")
    if HAS_MHD:
        assert p.returncode == 0 and "--max-upload" in p.stdout and "--token" in p.stdout
    else:
        assert p.returncode == 1 and "libmicrohttpd" in p.stderr


def test_other_host_without_token_is_refused():
    p = run("--host", "0.0.0.0", "--port", "0")
    assert p.returncode == (2 if HAS_MHD else 1)
    assert ("--token" if HAS_MHD else "libmicrohttpd") in p.stderr


def test_bad_values_are_usage_errors():
    if not HAS_MHD:
        return
    for args in (["--port", "70000"], ["--max-upload", "0"], ["--host", "not-an-address"], ["--bogus"],
                 ["--results", "0"], ["--results-mb", "65537"], ["--results-ttl", "-1"], ["--results-ttl"]):
        p = run(*args)
        assert p.returncode == 2, (args, p.stderr)
