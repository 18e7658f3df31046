"""cli/serve_results.c on its own (results_store_check.c), built here with
AddressSanitizer and UBSan: a leak, a use after free or a wrong eviction
fails the test. Needs only a C compiler (no libmicrohttpd, no model)."""
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_results_store_under_sanitizers():
    cc = os.environ.get("CC", "cc").split()[0]
    assert shutil.which(cc), "no C compiler (%s) to build results_store_check.c" % cc
    build = os.environ.get("FXCAM_BUILD_DIR")  # BUILD/cli: its parent holds fxcam_version.h
    includes = [os.path.join(ROOT, "cli"), os.path.join(ROOT, "include")]
    if build:
        includes += [build, os.path.dirname(build)]
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "results_store_check")
        cmd = [cc, "-std=c11", "-D_GNU_SOURCE", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
        cmd += ["-I" + i for i in includes]
        cmd += [os.path.join(HERE, "results_store_check.c"), os.path.join(ROOT, "cli", "serve_results.c"),
                "-o", exe, "-lpthread"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        p = subprocess.run([exe], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
        assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr
