"""Review fixes: batch summaries record the refinements (--aug-smooth,
--layers, --class-weights, --target-classes, ...), so that `fxcam merge`
refuses shards computed with different ones and `batch --resume` refuses to
keep outputs computed with other options; evaluate names weighted classes;
--class-weights refuses a class named twice; a --target-classes file may
start with a UTF-8 byte order mark (Excel's "CSV UTF-8"). Fixtures come from
test_cli.py (the tiny model whose Grad-CAM is known in closed form)."""
import numpy as np
import pytest

from test_cli import BOX, expected_heatmap, image_dir, jet_rgb, make_image, read_rgb, run, tiny_model  # noqa: F401

pytestmark = pytest.mark.torch


def batch(model, images, out, *extra):
    return run("batch", "--model", model, "--image-dir", str(images), "--output-dir", str(out), "--heatmap-only",
               *extra)


def test_merge_refuses_shards_with_different_aug_smooth(tiny_model, image_dir, tmp_path):  # noqa: F811
    assert batch(tiny_model, image_dir, tmp_path / "a", "--shard", "0/2").returncode == 0
    r = batch(tiny_model, image_dir, tmp_path / "b", "--shard", "1/2", "--aug-smooth")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "b" / "summary.shard-1-of-2.txt").read_text()
    assert "aug-smooth=1" in text and "Grad-CAM, aug-smooth" in text
    r = run("merge", str(tmp_path / "a"), str(tmp_path / "b"), "--output-dir", str(tmp_path / "m"))
    assert r.returncode == 1 and "the shards differ in" in r.stderr and "aug-smooth" in r.stderr, r.stderr
    assert not (tmp_path / "m" / "summary.csv").exists()
    # Options alone (not the method line): --class-weights on both shards, different weights.
    for k, weights in ((0, "fracture=1"), (1, "fracture=2")):
        r = batch(tiny_model, image_dir, tmp_path / ("w%d" % k), "--shard", "%d/2" % k, "--class-weights", weights)
        assert r.returncode == 0, r.stderr
    r = run("merge", str(tmp_path / "w0"), str(tmp_path / "w1"), "--output-dir", str(tmp_path / "m"))
    assert r.returncode == 1, r.stderr
    assert "the shards differ in options: class-weights=fracture=1 vs class-weights=fracture=2" in r.stderr
    # The same refinement on every shard merges.
    r = batch(tiny_model, image_dir, tmp_path / "a2", "--shard", "0/2", "--aug-smooth")
    assert r.returncode == 0, r.stderr
    r = run("merge", str(tmp_path / "a2"), str(tmp_path / "b"), "--output-dir", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("first,then,why", [
    (["--class", "normal"], ["--class", "fracture"], "class=normal vs class=fracture"),
    ([], ["--layers", "features,features.conv"], "no layers vs layers=features,features.conv"),
    (["--target-classes", "normal.csv"], ["--target-classes", "fracture.csv"],
     "target-classes=normal.csv vs target-classes=fracture.csv"),
    # How the model reads the images changes every map as much as the layer.
    (["--bits", "12"], ["--bits", "16"], "bits=12 vs bits=16"),
    ([], ["--resize-mode", "letterbox"], "no resize-mode vs resize-mode=letterbox"),
])
def test_resume_refuses_other_options(tiny_model, image_dir, tmp_path, monkeypatch, first, then, why):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    for cls in ("normal", "fracture"):
        (tmp_path / ("%s.csv" % cls)).write_text("".join("img%02d.png,%s\n" % (i, cls) for i in range(6)))
    out = tmp_path / "out"
    r = batch(tiny_model, image_dir, out, *first)
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = batch(tiny_model, image_dir, out, "--resume", *then)
    assert r.returncode == 2, r.stderr
    assert why in r.stderr and "new --output-dir" in r.stderr and "drop --resume" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing was skipped, redone or rewritten
    # The same options (a larger --max-images is how a folder is done in parts) resume.
    r = batch(tiny_model, image_dir, out, "--resume", "--max-images", "100", *first)
    assert r.returncode == 0, r.stderr
    assert "6 skipped" in r.stdout, r.stdout
    # An interrupted run (no summary yet): its outputs are taken as they are, as before.
    (out / "summary.txt").unlink()
    r = batch(tiny_model, image_dir, out, "--resume", *then)
    assert r.returncode == 0, r.stderr


def test_evaluate_names_the_weighted_classes(tiny_model, image_dir, tmp_path):  # noqa: F811
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\n" + "".join(
        "img%02d.png,1,%d,%d,%d,%d\n" % ((i,) + BOX) if i % 2 == 0 else "img%02d.png,0,,,,\n" % i for i in range(6)))
    r = run("evaluate", "--model", tiny_model, "--image-dir", str(image_dir), "--boxes", str(boxes),
            "--class-weights", "0.3,0.7")
    assert r.returncode == 0, r.stderr
    assert "maps of the weighted classes normal=0.3, fracture=0.7, layer" in r.stdout, r.stdout
    assert "(null)" not in r.stdout + r.stderr


def test_class_agnostic_method_warns_about_class_options(tiny_model, image_dir, tmp_path):  # noqa: F811
    image = str(next(iter(sorted(image_dir.iterdir()))))
    for extra in (["--class", "fracture"], ["--class-weights", "0.3,0.7"]):
        r = run("single", "--model", tiny_model, "--image", image, "--method", "eigencam", *extra,
                "--output", str(tmp_path / "e.png"))
        assert r.returncode == 0, r.stderr
        assert "Eigen-CAM is class-agnostic" in r.stderr and extra[0] + " does not change its map" in r.stderr, r.stderr
    r = run("single", "--model", tiny_model, "--image", image, "--method", "gradcam", "--class", "fracture",
            "--output", str(tmp_path / "g.png"))
    assert r.returncode == 0 and "class-agnostic" not in r.stderr, r.stderr


@pytest.mark.parametrize("weights,message", [
    ("fracture=1,fracture=2", "class 'fracture' is given twice"),
    ("1=1,fracture=2", "class 'fracture' is given twice"),
    ("tumour=1", "this model's classes are 0 (normal), 1 (fracture)"),
])
def test_class_weights_refuses_duplicates_and_lists_classes(tiny_model, tmp_path, weights, message):  # noqa: F811
    img = tmp_path / "x.png"
    import cv2
    cv2.imwrite(str(img), make_image(0, True))
    r = run("single", "--model", tiny_model, "--image", str(img), "--output", str(tmp_path / "o.png"),
            "--class-weights", weights)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "o.png").exists()


def test_target_classes_with_a_utf8_bom(tiny_model, image_dir, tmp_path):  # noqa: F811
    classes = tmp_path / "classes.csv"
    text = "file,class\r\n" + "".join("img%02d.png,fracture\r\n" % i for i in range(6))
    classes.write_bytes(b"\xef\xbb\xbf" + text.encode())
    r = batch(tiny_model, image_dir, tmp_path / "out", "--target-classes", str(classes))
    assert r.returncode == 0, r.stderr
    for i in range(6):
        got = read_rgb(tmp_path / "out" / ("img%02d_gradcam_heatmap.png" % i)).astype(int)
        want = jet_rgb(expected_heatmap(make_image(i, i % 2 == 0))).astype(int)
        assert np.mean(np.abs(got - want)) < 1.0, i
