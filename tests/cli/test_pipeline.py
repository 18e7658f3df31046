"""fxcam batch with its stages overlapped (--io-threads 1, the default) against
the same run one step after another (--io-threads 0, the reference: the
serial code path), and a full disk during a pipelined batch (a real tmpfs of
a chosen size, mounted for the test: it needs root and fails, never skips,
without it)."""
import csv
import os
import shutil
import subprocess

import pytest

from test_cli import FXCAM, SAMPLES, run

torch_only = pytest.mark.torch
PAGE = 4096


@pytest.fixture(autouse=True)
def fixed_figure_time(monkeypatch):
    """Figures show the time in their caption; runs compared byte for byte
    fix it (SOURCE_DATE_EPOCH), else two runs a second apart differ."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796059800")


def sample_dir(tmp_path, copies=1):
    """The bundled samples (copies times, renamed), one unreadable .png and
    one file that is not an image, so that failed and ignored rows are in
    the comparison too."""
    d = tmp_path / "in"
    d.mkdir()
    names = sorted(n for n in os.listdir(SAMPLES) if n.endswith(".png"))
    for c in range(copies):
        for n in names:
            shutil.copy(os.path.join(SAMPLES, n), d / ("c%d_%s" % (c, n)))
    (d / "c0_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (d / "notes.txt").write_text("not an image\n")
    return d


def summary_rows(out_dir):
    """summary.csv rows with the output folder taken out of the paths."""
    with open(out_dir / "summary.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    prefix = str(out_dir) + "/"
    return [[f.replace(prefix, "") for f in row] for row in rows]


def batch(in_dir, out_dir, *extra):
    return run("batch", "--image-dir", str(in_dir), "--output-dir", str(out_dir), *extra)


@torch_only
@pytest.mark.parametrize("extra", [("--batch-size", "4"), ("--batch-size", "8", "--batch-memory", "700K")])
def test_overlap_equals_one_after_another(tmp_path, extra):
    in_dir = sample_dir(tmp_path)
    serial, piped = tmp_path / "serial", tmp_path / "piped"
    a = batch(in_dir, serial, "--io-threads", "0", *extra)
    b = batch(in_dir, piped, "--io-threads", "1", *extra)
    assert a.returncode == b.returncode == 1, a.stderr + b.stderr  # the broken image fails
    rows = summary_rows(serial)
    assert rows == summary_rows(piped)
    status = {r[0]: r[6] for r in rows[1:]}
    assert status["c0_broken.png"].startswith("failed: cannot read the image")
    assert status["notes.txt"].startswith("ignored")
    figures = sorted(n for n in os.listdir(serial) if n.endswith(".png"))
    assert len(figures) == 9 and figures == sorted(n for n in os.listdir(piped) if n.endswith(".png"))
    for n in figures:
        assert (serial / n).read_bytes() == (piped / n).read_bytes(), n
    # progress lines (one per image) come in input order in both
    lines = lambda r: [l.split(": ")[0] for l in r.stderr.splitlines() if l.startswith("[")]
    assert lines(a) == lines(b) and len(lines(a)) == 10


def pages(n):
    return (n + PAGE - 1) // PAGE * PAGE


@torch_only
@pytest.mark.parametrize("io_threads", ["0", "1"])
def test_full_disk_stops_cleanly(tmp_path, io_threads):
    in_dir = sample_dir(tmp_path, copies=2)
    reference = tmp_path / "reference"
    r = batch(in_dir, reference, "--io-threads", "0", "--batch-size", "4")
    assert r.returncode == 1, r.stderr
    order = [row[0] for row in summary_rows(reference)[1:] if row[6] == "ok"]
    sizes = [os.path.getsize(reference / (os.path.splitext(n)[0] + "_gradcam.png")) for n in order]
    # A disk that holds the first 5 figures, the summaries, and not the 6th.
    keep = 5
    room = 48 * 1024
    assert sizes[keep] > room + PAGE, "the 6th figure must not fit in the room left for the summaries"
    size_k = (sum(pages(s) for s in sizes[:keep]) + room) // 1024
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size_k, "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail("this test mounts a small tmpfs to fill a disk and needs root: mount said: %s" %
                    mounted.stderr.strip())
    try:
        out = disk / "out"
        r = batch(in_dir, out, "--io-threads", io_threads, "--batch-size", "4")
        assert r.returncode == 1
        assert "stopped at %s" % order[keep] in r.stderr, r.stderr
        rows = summary_rows(out)
        status = {row[0]: row[6] for row in rows[1:]}
        for n in order[:keep]:
            assert status[n] == "ok"
            name = os.path.splitext(n)[0] + "_gradcam.png"
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
        assert "No space left on device" in status[order[keep]], status[order[keep]]
        for n in order[keep + 1:]:
            assert status[n] == "not processed", n
        assert sorted(os.listdir(out)) == sorted(
            [os.path.splitext(n)[0] + "_gradcam.png" for n in order[:keep]] + ["summary.csv", "summary.txt"])
        assert "stopped:      stopped at %s" % order[keep] in (out / "summary.txt").read_text()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("value", ["2", "-1", "x"])
def test_io_threads_refused(tmp_path, value):
    r = run("batch", "--image-dir", str(tmp_path), "--output-dir", str(tmp_path / "o"), "--io-threads", value)
    assert r.returncode == 2
    assert "invalid --io-threads '%s'; expected 0 (no overlap) or 1" % value in r.stderr
