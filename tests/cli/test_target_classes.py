"""`fxcam batch --target-classes FILE` (issue 11, "Targets: one target class
per image in a batch"): each image is explained for the class its line names
(e.g. its ground-truth label), within one pass of several images; malformed
lines, unknown classes and files that do not match the folder are usage
errors that name the line and what would be valid. The maps are checked
against the tiny model's Grad-CAM recomputed with OpenCV (test_cli.py)."""
import cv2
import numpy as np
import pytest

from test_cli import expected_heatmap, image_dir, jet_rgb, make_image, read_rgb, run, tiny_model  # noqa: F401

pytestmark = pytest.mark.torch

# img00..img05: even indexes carry the bright box (predicted fracture), odd ones not.
CLASSES = {"img00.png": "normal", "img01.png": "fracture", "img02.png": "1", "img03.png": "NORMAL",
           "img04.png": "fracture", "img05.png": "0"}
IS_FRACTURE = {"normal": False, "0": False, "NORMAL": False, "fracture": True, "1": True}


def write_classes(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def batch(model, image_dir, out, classes, *extra):
    return run("batch", "--model", model, "--image-dir", str(image_dir), "--output-dir", str(out),
               "--heatmap-only", "--batch-size", "4", "--target-classes", classes, *extra)


def test_each_image_is_explained_for_its_own_class(tiny_model, image_dir, tmp_path):
    # header, a comment, a blank line, "./" and a Windows line end are accepted
    lines = ["file,class", "# ground truth", ""] + ["./%s,%s\r" % (f, c) for f, c in CLASSES.items()]
    classes = write_classes(tmp_path / "classes.csv", lines)
    r = batch(tiny_model, image_dir, tmp_path / "out", classes)
    assert r.returncode == 0, r.stderr
    for i, (name, cls) in enumerate(CLASSES.items()):
        got = read_rgb(tmp_path / "out" / name.replace(".png", "_gradcam_heatmap.png")).astype(int)
        if IS_FRACTURE[cls]:
            # Grad-CAM of "fracture": the normalized upsampled brightness (OpenCV), whatever the prediction
            want = jet_rgb(expected_heatmap(make_image(i, i % 2 == 0))).astype(int)
            diff = np.abs(got - want)
            assert np.mean(diff) < 1.0 and np.percentile(diff, 99) <= 8, (name, np.mean(diff), diff.max())
        else:
            # "normal": every channel weight is negative -> ReLU -> zero map -> jet(0)
            assert np.all(got == jet_rgb(np.zeros((1, 1)))[0, 0].astype(int)), name


def rows(**changes):
    """The six lines of CLASSES with some files' classes changed (None drops the line)."""
    out = []
    for name, cls in CLASSES.items():
        cls = changes.get(name.replace(".png", ""), cls)
        if cls is not None:
            out.append("%s,%s" % (name, cls))
    return out


@pytest.mark.parametrize("lines,extra,message", [
    (rows(img02="broken"), [],
     "invalid --target-classes '{f}': line 3: unknown class 'broken' for 'img02.png'; this model's classes are "
     "0 (normal), 1 (fracture)"),
    (rows(img02="2"), [], "line 3: unknown class '2' for 'img02.png'"),
    (rows() + ["img05.png"], [], "line 7: expected 2 fields 'file,class', found 'img05.png'"),
    (rows(img00="normal,fracture"), [], "line 1: expected 2 fields 'file,class', found 'img00.png,normal,fracture'"),
    (rows(img01=""), [], "line 2: expected a file name and a class, found 'img01.png' and ''"),
    (rows() + ["img03.png,fracture"], [], "line 7: 'img03.png' is listed again (first on line 4)"),
    (rows() + ["../img00.png,normal"], [], "line 7: '../img00.png' is not a path relative to --image-dir"),
    (["file,class", "# nothing"], [], "invalid --target-classes '{f}': no 'file,class' rows"),
    (rows() + ["ghost.png,normal"], [],
     "--target-classes '{f}' line 7: 'ghost.png' is not an image of '{d}' (subfolders need --recursive) "
     "(1 listed file not found)"),
    (rows(img05=None, img03=None), [],
     "--target-classes '{f}' has no class for 'img03.png' (2 images of '{d}' not listed); add a line "
     "'img03.png,CLASS' for each"),
    (rows(), ["--class", "fracture"], "give --target-classes or --class, not both"),
    (rows(), ["--class-weights", "fracture=1"], "give --target-classes or --class-weights, not both"),
])
def test_bad_files_are_usage_errors(tiny_model, image_dir, tmp_path, lines, extra, message):
    classes = write_classes(tmp_path / "classes.csv", lines)
    out = tmp_path / "out"
    r = batch(tiny_model, image_dir, out, classes, *extra)
    assert r.returncode == 2, r.stderr
    assert message.format(f=classes, d=image_dir) in r.stderr, r.stderr
    assert not out.exists() or not list(out.glob("*.png"))  # nothing computed


def test_max_images_needs_only_the_computed_images(tiny_model, image_dir, tmp_path):
    classes = write_classes(tmp_path / "classes.csv", rows(img05=None))
    r = batch(tiny_model, image_dir, tmp_path / "out", classes, "--max-images", "5")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*_heatmap.png")) == \
        ["img%02d_gradcam_heatmap.png" % i for i in range(5)]


def test_unreadable_file(tiny_model, image_dir, tmp_path):
    r = batch(tiny_model, image_dir, tmp_path / "out", str(tmp_path / "missing.csv"))
    assert r.returncode == 1, r.stderr
    assert "cannot read --target-classes '%s': No such file or directory" % (tmp_path / "missing.csv") in r.stderr


def test_single_has_class_instead(tmp_path):
    r = run("single", "--image", str(tmp_path / "x.png"), "--target-classes", str(tmp_path / "c.csv"))
    assert r.returncode == 2, r.stderr
    assert "this command has no option '--target-classes'" in r.stderr, r.stderr
