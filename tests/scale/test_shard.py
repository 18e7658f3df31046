"""fxcam batch/evaluate --shard K/N and fxcam merge: N shards cover the folder
exactly once, each file in the shard FNV-1a 64 (written in conftest.py from
the specification) says; adding a file moves no other; the merge of the
shards equals one unsharded run's summary.csv; bad specs and mismatched
shards are refused with the value named."""
import csv
import os
import shutil

import pytest

from conftest import SAMPLES, fnv1a64, run

torch_only = pytest.mark.torch


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def shard_of(rel, n):
    return fnv1a64(rel.encode()) % n


def test_fnv1a64_reference_vectors():
    # Published test vectors of FNV-1a 64 (draft-eastlake-fnv, appendix C).
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


@pytest.mark.parametrize("spec, part", [
    ("3/2", "K must be less than N"), ("2/2", "K must be less than N"), ("0/0", "N (the number of shards)"),
    ("x/y", "expected K/N"), ("1/", "expected K/N"), ("/2", "expected K/N"), ("-1/2", "expected K/N"),
    ("1/-2", "expected K/N"), ("99999999999999999999/2", "expected K/N"), ("0/1000001", "N (the number of shards)"),
    ("1/2/3", "expected K/N"), ("1", "expected K/N"), ("+1/2", "expected K/N"), ("1 /2", "expected K/N"),
])
@pytest.mark.parametrize("command", ["batch", "evaluate"])
def test_bad_shard_specs_are_refused(tmp_path, command, spec, part):
    r = run(command, "--image-dir", tmp_path, "--boxes", "b.csv", "--shard", spec)
    assert r.returncode == 2, r.stderr
    assert f"invalid --shard '{spec}'" in r.stderr and part in r.stderr and "K/N" in r.stderr
    assert "SLURM_ARRAY_TASK_ID" in r.stderr


def batch_shards(folder, out, n, *extra):
    for k in range(n):
        r = run("batch", "--image-dir", folder, "--output-dir", out, "--shard", f"{k}/{n}", "--recursive",
                "--threads", "1", *extra)
        assert r.returncode == 0, r.stderr
    return {k: read_csv(os.path.join(out, f"summary.shard-{k}-of-{n}.csv")) for k in range(n)}


def all_files(folder):
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


@torch_only
def test_shards_cover_the_folder_once_and_merge_equals_one_run(tmp_path, folder):
    n = 3
    shards = batch_shards(folder, tmp_path / "sharded", n)
    listed = [row["file"] for rows in shards.values() for row in rows]
    assert sorted(listed) == all_files(folder)  # every file (ignored ones too), exactly once
    for k, rows in shards.items():
        assert all(shard_of(row["file"], n) == k for row in rows)
        with open(tmp_path / "sharded" / f"summary.shard-{k}-of-{n}.txt") as f:
            assert f"shard:        {k}/{n} " in f.read()
    # The whole folder in one run, for the reference.
    r = run("batch", "--image-dir", folder, "--output-dir", tmp_path / "whole", "--recursive", "--threads", "1")
    assert r.returncode == 0, r.stderr
    r = run("merge", tmp_path / "sharded", "--output-dir", tmp_path / "merged")
    assert r.returncode == 0, r.stderr
    whole = read_csv(tmp_path / "whole" / "summary.csv")
    merged = read_csv(tmp_path / "merged" / "summary.csv")
    assert [row["file"] for row in merged] == [row["file"] for row in whole]  # same order, not re-sorted here
    for a, b in zip(merged, whole):
        for key in ("predicted_class", "confidence", "peak_x", "peak_y", "status"):
            assert a[key] == b[key], (a, b)
        assert (a["output"] == b["output"] == "") or \
            os.path.relpath(a["output"], tmp_path / "sharded") == os.path.relpath(b["output"], tmp_path / "whole")
    text = open(tmp_path / "merged" / "summary.txt").read()
    assert "merged from 3 shards" in text and "notes.txt" in text
    ok = [row for row in whole if row["status"] == "ok"]
    assert f"{len(ok)} ok, 0 failed" in text


@torch_only
def test_adding_a_file_moves_no_other(tmp_path, folder):
    n = 4
    before = batch_shards(folder, tmp_path / "before", n, "--heatmap-only")
    shutil.copy(os.path.join(SAMPLES, "synth_2000_00001.png"), os.path.join(folder, "added_later.png"))
    after = batch_shards(folder, tmp_path / "after", n, "--heatmap-only")
    for k in range(n):
        old = {row["file"] for row in before[k]}
        new = {row["file"] for row in after[k]}
        assert old <= new, f"shard {k} lost {old - new}"
        assert new - old <= {"added_later.png"}
    assert any("added_later.png" in {r["file"] for r in after[k]} for k in range(n))


@torch_only
def test_merge_refuses_missing_duplicate_and_mismatched_shards(tmp_path, folder):
    n = 2
    batch_shards(folder, tmp_path / "a", n, "--heatmap-only")
    r = run("merge", tmp_path / "a" / "summary.shard-0-of-2.csv", "--output-dir", tmp_path / "m")
    assert r.returncode == 1 and "1 of the 2 shards is missing: 1" in r.stderr, r.stderr
    r = run("merge", tmp_path / "a", tmp_path / "a" / "summary.shard-0-of-2.csv", "--output-dir", tmp_path / "m")
    assert r.returncode == 1 and "shard 0/2 is given twice" in r.stderr, r.stderr
    # Shard 1 again with another alpha: the figures differ, so the merge must not pass.
    r = run("batch", "--image-dir", folder, "--output-dir", tmp_path / "b", "--shard", "1/2", "--recursive",
            "--heatmap-only", "--alpha", "0.7")
    assert r.returncode == 0, r.stderr
    r = run("merge", tmp_path / "a" / "summary.shard-0-of-2.csv", tmp_path / "b", "--output-dir", tmp_path / "m")
    assert r.returncode == 1 and "the shards differ in options" in r.stderr and "alpha=0.7" in r.stderr, r.stderr
    # Another N.
    r = run("batch", "--image-dir", folder, "--output-dir", tmp_path / "c", "--shard", "1/3", "--recursive",
            "--heatmap-only")
    assert r.returncode == 0, r.stderr
    r = run("merge", tmp_path / "a" / "summary.shard-0-of-2.csv", tmp_path / "c", "--output-dir", tmp_path / "m")
    assert r.returncode == 1 and "every shard of one job has the same N" in r.stderr, r.stderr
    # A row moved into the wrong shard's file (summaries of different jobs mixed).
    path = tmp_path / "a" / "summary.shard-0-of-2.csv"
    other = open(tmp_path / "a" / "summary.shard-1-of-2.csv").read().splitlines()[1]
    with open(path, "a") as f:
        f.write(other + "\n")
    r = run("merge", tmp_path / "a", "--output-dir", tmp_path / "m")
    assert r.returncode == 1 and "which belongs to shard 1/2, not 0/2" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "m" / "summary.csv")
    r = run("merge", tmp_path / "empty-does-not-exist", "--output-dir", tmp_path / "m")
    assert r.returncode == 1 and "cannot read" in r.stderr
    r = run("merge", tmp_path / "a")
    assert r.returncode == 2 and "--output-dir" in r.stderr


@torch_only
def test_evaluate_shards_partition_the_annotations(tmp_path):
    boxes = os.path.join(SAMPLES, "boxes.csv")
    with open(boxes, newline="") as f:
        names = sorted({row["file"] for row in csv.DictReader(f)})
    n, seen = 3, []
    for k in range(n):
        out = tmp_path / f"eval{k}.csv"
        r = run("evaluate", "--image-dir", SAMPLES, "--boxes", boxes, "--shard", f"{k}/{n}", "--csv", out,
                "--method", "gradcam", "--threads", "1")
        assert r.returncode == 0, r.stderr
        mine = [name for name in names if shard_of(name, n) == k]
        assert f"shard:     {k}/{n}: {len(mine)} of the {len(names)} images listed" in r.stdout
        files = [row["file"] for row in read_csv(out)]
        assert sorted(files) == mine
        seen += files
    assert sorted(seen) == names
