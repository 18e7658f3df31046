"""fxcam.dask on a LocalCluster of 2 worker processes (1 thread each): the
rows equal `fxcam batch`'s summary.csv for the same folder (class, confidence
within 1e-4, peak, output name), the model is loaded once per worker, a bad
file is a row, and a worker killed mid-run leaves every figure whole and no
temporary file."""
import csv
import os
import signal

import pytest
from PIL import Image

from conftest import make_folder, run

torch_only = pytest.mark.torch

# A missing python3-distributed fails the suite (tools/setup.sh installs it); never a skip.
from distributed import Client, LocalCluster, wait  # noqa: E402

import fxcam.dask as fxdask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def files_of(folder):
    found = []
    for root, _, names in os.walk(folder):
        found += [os.path.join(root, n) for n in names]
    return sorted(found)


def temporaries(folder):
    return [p for p in files_of(folder) if os.path.basename(p).startswith(".fxcam-")]


@torch_only
def test_rows_equal_fxcam_batch_and_one_load_per_worker(tmp_path, client):
    folder = make_folder(str(tmp_path / "in"), 3)  # 12 radiographs (one in sub/) and notes.txt
    r = run("batch", "--image-dir", folder, "--output-dir", tmp_path / "batch", "--recursive", "--threads", "1")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "batch" / "summary.csv", newline="") as f:
        reference = {row["file"]: row for row in csv.DictReader(f)}
    paths = files_of(folder)
    rows = fxdask.explain_files(client, paths, tmp_path / "dask", image_root=folder, chunk_size=2, as_frame=False)
    assert [row["path"] for row in rows] == paths
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == 12
    for row in ok:
        ref = reference[row["file"]]
        assert ref["status"] == "ok"
        assert row["predicted_class"] == ref["predicted_class"]
        assert abs(row["confidence"] - float(ref["confidence"])) <= 1e-4
        assert (row["peak_x"], row["peak_y"]) == (int(ref["peak_x"]), int(ref["peak_y"]))
        assert os.path.relpath(row["output"], tmp_path / "dask") == os.path.relpath(ref["output"], tmp_path / "batch")
        with Image.open(row["output"]) as im:
            im.load()
    (bad,) = [row for row in rows if row["status"] != "ok"]
    assert bad["file"] == "notes.txt" and bad["status"] == "error" and bad["output"] == ""
    assert "not a PNG, JPEG or DICOM file" in bad["message"]
    assert reference["notes.txt"]["status"].startswith("ignored")
    # Once per worker process, however many tasks (6) each ran.
    assert sorted(fxdask.model_loads(client).values()) == [1, 1]
    # A DataFrame when pandas is there (python3-distributed depends on it).
    frame = fxdask.explain_files(client, paths[:2], tmp_path / "dask2", image_root=folder)
    assert list(frame.columns) == list(fxdask.ROW_KEYS) and list(frame["status"]) == ["ok", "ok"]
    assert sorted(fxdask.model_loads(client).values()) == [1, 1]


@torch_only
def test_a_worker_killed_mid_run_leaves_whole_figures(tmp_path, client):
    folder = make_folder(str(tmp_path / "in"), 7)  # 16 radiographs
    paths = [p for p in files_of(folder) if p.endswith(".png")]
    futures = fxdask.submit_files(client, paths, tmp_path / "out", image_root=folder, chunk_size=1)
    wait(futures, return_when="FIRST_COMPLETED")
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)  # the scheduler reruns its tasks on the other (or restarted) worker
    rows = [row for chunk in client.gather(futures) for row in chunk]
    assert [row["status"] for row in rows] == ["ok"] * len(paths)
    assert temporaries(tmp_path / "out") == []
    for row in rows:
        with Image.open(row["output"]) as im:  # whole PNGs: decoding reads every chunk and its CRC
            im.load()
