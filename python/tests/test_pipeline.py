"""fxcam.batch.run_pipeline (fx_pipeline_run): rows in input order, one per
path; unreadable files are failed rows with the loader's message; every ok
row equals fxcam.compute() on that file alone (same class, confidence and
map); the callback's stop and exceptions; run-wide errors raise."""
import os

import pytest

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Eight inputs: PNGs of several sizes and depths, one missing file and one
    that is not an image, in between, so that passes of 3 hold failures."""
    import numpy as np
    from PIL import Image

    out = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(7)
    paths = []
    for k, (h, w, bits) in enumerate([(64, 64, 8), (80, 50, 16), (40, 90, 8), (64, 64, 16), (33, 71, 8),
                                      (120, 100, 16)]):
        path = out / f"img{k}.png"
        if bits == 8:
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        else:
            Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)).save(path)
        paths.append(str(path))
    bad = out / "not_an_image.png"
    bad.write_bytes(b"this is text, not a PNG\n" * 4)
    paths.insert(2, str(out / "missing.png"))
    paths.insert(5, str(bad))
    return paths


@pytest.mark.parametrize("io_threads,batch_size,batch_memory", [(1, 3, None), (0, 3, None), (1, 8, 1)])
def test_rows_in_order_equal_single_compute(fxcam, models, files, io_threads, batch_size, batch_memory):
    import numpy as np

    model = fxcam.Model(models["resnet"][0])
    rows = fxcam.batch.run_pipeline(model, files, methods=("gradcam", "gradcam++"), batch_size=batch_size,
                                    batch_memory=batch_memory, io_threads=io_threads, keep_heatmaps=True)
    assert [r["index"] for r in rows] == list(range(len(files)))
    assert [r["path"] for r in rows] == files
    for row in rows:
        name = os.path.basename(row["path"])
        if name in ("missing.png", "not_an_image.png"):
            assert row["status"] == "failed"
            assert row["predicted_class"] is None and "heatmaps" not in row
            assert name in row["error"] or "PNG" in row["error"] or "not" in row["error"], row["error"]
            continue
        assert row["status"] == "ok", row["error"]
        alone = fxcam.compute(model, [row["path"]], methods=("gradcam", "gradcam++"))
        assert row["predicted_class"] == alone.predicted_class(0)
        assert row["predicted_name"] == model.class_names[alone.predicted_class(0)]
        assert row["confidence"] == pytest.approx(alone.confidence(0), abs=1e-6)
        for j in range(2):
            np.testing.assert_allclose(row["heatmaps"][j], alone.heatmap(0, j), atol=1e-5)
        y, x = np.unravel_index(int(np.argmax(alone.heatmap(0, 0))), alone.heatmap(0, 0).shape)
        assert row["peak"] == (int(x), int(y))


def test_missing_file_message_names_it(fxcam, models, files):
    model = fxcam.Model(models["resnet"][0])
    rows = fxcam.batch.run_pipeline(model, [files[2]])
    assert rows[0]["status"] == "failed" and "missing.png" in rows[0]["error"]


def test_callback_in_order_and_stop(fxcam, models, files):
    model = fxcam.Model(models["resnet"][0])
    seen = []

    def on_item(row):
        seen.append(row["index"])
        return len(seen) == 3  # stop after the third row

    with pytest.raises(fxcam.CancelledError):
        fxcam.batch.run_pipeline(model, files, batch_size=2, on_item=on_item)
    assert seen == [0, 1, 2]


def test_callback_exception_is_raised(fxcam, models, files):
    model = fxcam.Model(models["resnet"][0])

    def on_item(row):
        raise RuntimeError(f"boom at {row['index']}")

    with pytest.raises(RuntimeError, match="boom at 0"):
        fxcam.batch.run_pipeline(model, files, on_item=on_item)


def test_run_wide_errors(fxcam, models, files):
    model = fxcam.Model(models["resnet"][0])
    with pytest.raises(fxcam.LayerError):
        fxcam.batch.run_pipeline(model, files, layer_name="no_such_layer")
    for bad in ({"batch_size": 0}, {"io_threads": 2}, {"batch_memory": 0}, {"io_threads": True}):
        with pytest.raises((ValueError, fxcam.FxError)):
            fxcam.batch.run_pipeline(model, files, **bad)
    with pytest.raises(TypeError):
        fxcam.batch.run_pipeline(model, files[0])
    assert fxcam.batch.run_pipeline(model, []) == []


def test_cam_keywords_reach_the_pipeline(fxcam, models, files):
    """run_pipeline takes compute()'s CAM keywords (several layers, class_weights,
    aug_smooth, eigen_smooth) and each ok row equals compute() with them on that
    file alone; target_classes is refused with a message that says why."""
    import numpy as np

    model = fxcam.Model(models["resnet"][0])
    keywords = dict(layer_name=["layer4", "layer3"], class_weights={"normal": 0.5, "implant": 1.0},
                    aug_smooth=True, eigen_smooth=True)
    ok = [p for p in files if "missing" not in p and "not_an_image" not in p][:3]
    rows = fxcam.batch.run_pipeline(model, ok, batch_size=2, keep_heatmaps=True, **keywords)
    assert [r["status"] for r in rows] == ["ok"] * len(ok)
    plain = fxcam.batch.run_pipeline(model, ok[:1], keep_heatmaps=True)
    assert not np.allclose(plain[0]["heatmaps"][0], rows[0]["heatmaps"][0], atol=1e-3)  # the keywords took effect
    for row in rows:
        alone = fxcam.compute(model, [row["path"]], **keywords)
        assert alone.layer == "layer4,layer3" and alone.target_class(0) is None
        np.testing.assert_allclose(row["heatmaps"][0], alone.heatmap(0), atol=1e-5)
    with pytest.raises(ValueError, match="target_classes"):
        fxcam.batch.run_pipeline(model, ok, target_classes=[0, 1, 2])
    with pytest.raises(TypeError, match="sequence of floats"):
        fxcam.batch.run_pipeline(model, ok, class_weights="fracture")
