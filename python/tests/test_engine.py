"""Model, GradCAM, GradCAMPlusPlus, batch_visualize and list_layers against an
independent hook-based PyTorch Grad-CAM (the formulas of docs/algorithms.md,
evaluated here in float64 torch)."""
import gc
import os

import numpy as np
import pytest

pytestmark = pytest.mark.torch
# pytorch-grad-cam's constant in the Grad-CAM++ alpha denominator
# (grad_cam_plusplus.py, "eps = 0.000001"; docs/algorithms.md).
GRADCAM_PLUSPLUS_EPS = 1e-6


def smooth_image(h, w, channels, dtype, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [np.sin(xx / 7.0 + c) * np.cos(yy / 9.0 - c) for c in range(channels)]
    base = np.stack(planes, -1) * 0.4 + 0.5 + rng.normal(0, 0.05, (h, w, channels))
    base = np.clip(base, 0, 1)
    if dtype == np.uint8:
        img = np.round(base * 255).astype(np.uint8)
    elif dtype == np.uint16:
        img = np.round(base * 65535).astype(np.uint16)
    else:
        img = base.astype(np.float32)
    return img[..., 0] if channels == 1 else img


def preprocess(img, meta):
    import torch
    import torch.nn.functional as F
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype, 1.0)
    x = torch.from_numpy(img.astype(np.float32) / np.float32(scale))
    if x.ndim == 2:
        x = x[..., None]
    channels = meta.get("channels", 3)
    if x.shape[-1] == 3 and channels == 1:
        x = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
    elif x.shape[-1] == 1 and channels == 3:
        x = x.repeat(1, 1, 3)
    x = x.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=tuple(meta["input_size"]), mode="bilinear", align_corners=False)
    mean = meta.get("mean", [0.485, 0.456, 0.406] if channels == 3 else [0.5])
    std = meta.get("std", [0.229, 0.224, 0.225] if channels == 3 else [0.5])
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (x - m) / s


def reference_cam(module, meta, img, layer, method="gradcam", target=None):
    """(heatmap at the image's size, target class, probabilities) by forward hook + autograd."""
    import torch
    import torch.nn.functional as F
    x = preprocess(img, meta)
    seen = {}
    handle = module.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.__setitem__("a", o))
    try:
        logits = module(x)
    finally:
        handle.remove()
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[0, 0])
        t = (1 if p.item() >= 0.5 else 0) if target is None else target
        score = logits[0, 0] if t == 1 else -logits[0, 0]
        probs = [1 - p.item(), p.item()]
    else:
        t = int(logits[0].argmax()) if target is None else target
        score = logits[0, t]
        probs = torch.softmax(logits[0], 0).tolist()
    (grad,) = torch.autograd.grad(score, seen["a"])
    A, G = seen["a"].detach().double(), grad.double()
    if method == "gradcam":
        cam = (G.mean(dim=(2, 3), keepdim=True) * A).sum(1)
    else:
        g2, g3 = G ** 2, G ** 3
        alpha = g2 / (2 * g2 + A.sum(dim=(2, 3), keepdim=True) * g3 + GRADCAM_PLUSPLUS_EPS)
        alpha = torch.where(G != 0, alpha, torch.zeros_like(alpha))
        cam = ((torch.clamp(G, min=0) * alpha).sum(dim=(2, 3), keepdim=True) * A).sum(1)
    low = torch.clamp(cam, min=0)[0]
    h, w = img.shape[:2]
    # pytorch-grad-cam (scale_cam_image, applied again after the resize by
    # aggregate_multi_layers): the resized map min-max scaled by its own range.
    # A map constant up to float rounding (decided on the layer's own values)
    # has no peak and becomes 0 (docs/algorithms.md).
    lo, hi = float(low.min()), float(low.max())
    up = F.interpolate(low.float()[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].double()
    if hi - lo <= 1e-5 * max(abs(lo), abs(hi)):
        heat = torch.zeros_like(up)
    else:
        heat = (up - up.min()) / (up.max() - up.min())
    return heat.numpy(), t, probs, low.numpy()


@pytest.fixture(scope="module")
def resnet(models, fxcam):
    path, module, meta = models["resnet"]
    return fxcam.Model(path, device="cpu"), module, meta


def test_model_properties(resnet, models, fxcam):
    model, _, _ = resnet
    assert model.path == models["resnet"][0]
    assert model.device == "cpu"
    assert model.input_size == (64, 64)
    assert model.channels == 3
    assert model.logit_count == 3
    assert model.class_names == ["normal", "fracture", "implant"]
    assert model.positive_class is None
    assert model.default_layer == "layer4"
    assert "fxcam.Model" in repr(model)

    gray = fxcam.Model(models["tiny_gray"][0], device="cpu", threads=1)
    assert gray.channels == 1 and gray.input_size == (32, 32)
    assert gray.logit_count == 1
    assert gray.class_names == ["normal", "fracture"]
    assert gray.positive_class == 1
    assert gray.default_layer == "3"


def test_options_override_metadata(models, fxcam):
    model = fxcam.Model(models["resnet"][0], device="cpu", input_size=(48, 40), mean=[0.5] * 3, std=[0.2] * 3)
    assert model.input_size == (48, 40)
    from fxcam import _lib
    if _lib.has("fx_model_normalization"):
        mean, std = model.normalization
        assert mean == pytest.approx([0.5] * 3) and std == pytest.approx([0.2] * 3)
        gray = fxcam.Model(models["tiny_gray"][0], device="cpu")
        assert gray.normalization == ([0.5], [0.25])


def test_list_layers(resnet, fxcam, models):
    model, _, _ = resnet
    layers = fxcam.list_layers(model)
    by_name = {l.name: l for l in layers}
    assert by_name["layer4"].type == "Sequential"
    assert by_name["layer4"].shape == (1, 512, 2, 2) and by_name["layer4"].is_feature_map
    assert by_name["fc"].shape == (1, 3) and not by_name["fc"].is_feature_map
    assert by_name["conv1"].type == "Conv2d"
    maps = fxcam.list_layers(model, feature_maps_only=True)
    assert all(l.is_feature_map for l in maps) and "layer3" in [l.name for l in maps]
    assert [l.name for l in fxcam.list_layers(models["resnet"][0])] == [l.name for l in layers]
    with pytest.raises(TypeError, match="fxcam.Model or a path"):
        fxcam.list_layers(42)


@pytest.mark.parametrize("cls_name,method", [("GradCAM", "gradcam"), ("GradCAMPlusPlus", "gradcam++")])
@pytest.mark.parametrize("layer", [None, "layer3"])
def test_heatmap_matches_pytorch_hooks(resnet, fxcam, cls_name, method, layer):
    model, module, meta = resnet
    img = smooth_image(53, 71, 3, np.uint8)
    cam = getattr(fxcam, cls_name)(model, layer_name=layer)
    heat = cam.compute_heatmap(img)
    ref, target, probs, low = reference_cam(module, meta, img, layer or "layer4", method)
    assert heat.dtype == np.float32 and heat.shape == (53, 71)
    assert np.abs(heat - ref).max() < 1e-4
    result = cam.last_result
    assert result.layer == (layer or "layer4")
    assert result.methods == [method]
    assert result.predicted_class() == target == result.target_class()
    assert np.allclose(result.probabilities(), probs, atol=1e-5)
    assert result.confidence() == pytest.approx(max(probs), abs=1e-5)
    assert result.predicted_name() == model.class_names[target]
    assert len(result.logits()) == 3
    assert np.allclose(result.lowres(), low, rtol=1e-4, atol=1e-6 * max(1.0, float(low.max())))


def test_target_class_and_gray16(models, fxcam):
    path, module, meta = models["tiny_gray"]
    model = fxcam.Model(path, device="cpu")
    img = smooth_image(45, 37, 1, np.uint16, seed=3)
    cam = fxcam.GradCAM(model)
    for target in (0, 1):
        heat = cam.compute_heatmap(img, target_class=target)
        ref, t, _, _ = reference_cam(module, meta, img, "3", target=target)
        assert t == target and cam.last_result.target_class() == target
        assert np.abs(heat - ref).max() < 1e-4
    by_name = cam.compute_heatmap(img, target_class="fracture")
    assert np.array_equal(by_name, cam.compute_heatmap(img, target_class=1))
    with pytest.raises(ValueError, match="not one of the model's classes: normal, fracture"):
        cam.compute_heatmap(img, target_class="femur")
    with pytest.raises(fxcam.InvalidArgumentError) as err:
        cam.compute_heatmap(img, target_class=5)
    assert err.value.status == -1 and "5" in err.value.message
    with pytest.raises(TypeError, match="target_class"):
        cam.compute_heatmap(img, target_class=1.5)


def test_rgb_float_image_on_gray_model(models, fxcam):
    path, module, meta = models["tiny_gray"]
    img = smooth_image(30, 41, 3, np.float32, seed=5)
    heat = fxcam.GradCAMPlusPlus(fxcam.Model(path, device="cpu")).compute_heatmap(img)
    ref, _, _, _ = reference_cam(module, meta, img, "3", "gradcam++")
    assert np.abs(heat - ref).max() < 1e-4


def test_heatmap_is_zero_copy_and_keeps_result_alive(resnet, fxcam):
    model, _, _ = resnet
    cam = fxcam.GradCAM(model)
    result = cam.compute(smooth_image(40, 40, 3, np.uint8))
    heat = result.heatmap()
    assert heat.ctypes.data == result.heatmap_address()
    assert not heat.flags.owndata
    expected = heat.copy()
    del result
    cam.last_result = None
    gc.collect()
    assert np.array_equal(heat, expected)  # the result is freed only with its last array


def test_paths_and_batches(resnet, fxcam, tmp_path):
    model, module, meta = resnet
    imgs = [smooth_image(50, 60, 3, np.uint8, seed=s) for s in range(3)]
    paths = []
    for k, img in enumerate(imgs):
        paths.append(str(tmp_path / f"xray{k}.png"))
        fxcam.save_image(paths[-1], img)
    cam = fxcam.GradCAM(model, batch_size=2)
    from_path = cam.compute_heatmap(paths[1])
    assert np.array_equal(from_path, cam.compute_heatmap(imgs[1]))
    batch = cam.compute_batch(paths)
    assert len(batch) == 3
    for k in range(3):
        ref, _, _, _ = reference_cam(module, meta, imgs[k], "layer4")
        assert np.abs(batch.heatmap(k) - ref).max() < 1e-4
    with pytest.raises(IndexError):
        batch.heatmap(3)
    with pytest.raises(ValueError, match="keep_raw"):
        batch.raw_heatmap(0)
    raw = cam.compute(imgs[0], keep_raw=True).raw_heatmap()
    assert raw.shape == (50, 60) and raw.max() > 0
    many = fxcam.compute(model, imgs[:2], methods=("gradcam", "gradcam++", "layercam"))
    assert many.methods == ["gradcam", "gradcam++", "layercam"]
    assert np.array_equal(many.heatmap(1, 0), batch.heatmap(1))


def test_generate_visualization_and_overlay(resnet, fxcam):
    model, _, _ = resnet
    cam = fxcam.GradCAM(model)
    img = smooth_image(33, 47, 3, np.uint8)
    heat, over = cam.generate_visualization(img, alpha=0.5, colormap="viridis")
    assert heat.shape == (33, 47) and over.shape == (33, 47, 3) and over.dtype == np.uint8
    assert np.array_equal(over, fxcam.overlay(img, heat, alpha=0.5, colormap="viridis"))
    assert np.array_equal(cam.overlay_heatmap(heat, img), fxcam.overlay(img, heat))


def test_visualize_writes_figure(resnet, fxcam, tmp_path):
    import cv2
    model, _, _ = resnet
    cam = fxcam.GradCAMPlusPlus(model, layer_name="layer3")
    img = smooth_image(64, 80, 3, np.uint8)
    out = tmp_path / "fig.png"
    fig = cam.visualize(img, save_path=out, timestamp="2024-01-01T00:00:00Z")
    on_disk = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert np.array_equal(on_disk, fig)
    heat = cam.last_result.heatmap()
    expected = fxcam.compose_figure(img, heat, label=cam.last_result.predicted_name(),
                                    confidence=cam.last_result.confidence(), method="Grad-CAM++", layer="layer3",
                                    timestamp="2024-01-01T00:00:00Z")
    assert np.array_equal(fig, expected)
    assert fig.shape[1] > 3 * 64


def test_batch_visualize(resnet, fxcam, tmp_path):
    import cv2
    model, _, _ = resnet
    src = tmp_path / "val"
    src.mkdir()
    for k in range(3):
        fxcam.save_image(src / f"case{k}.png", smooth_image(40 + k, 50, 1, np.uint16, seed=k))
    written = fxcam.batch_visualize(model, src, tmp_path / "out", batch_size=2, timestamp="t")
    assert [os.path.basename(p) for p in written] == [f"case{k}_gradcam.png" for k in range(3)]
    cam = fxcam.GradCAM(model)
    for k, p in enumerate(written):
        fig = cv2.imread(p, cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.int32)
        # A batched forward pass differs from a single one in the last float
        # bits (libtorch's kernels), which can move a pixel to the next colormap entry (jet: up to 4 levels).
        diff = np.abs(fig - cam.visualize(src / f"case{k}.png", timestamp="t"))
        assert diff.max() <= 8 and np.count_nonzero(diff) <= diff.size // 1000
    arrays = [smooth_image(30, 30, 3, np.uint8, seed=9)] * 2
    written = fxcam.batch_visualize(model, arrays, tmp_path / "arr", method="gradcam++")
    assert [os.path.basename(p) for p in written] == ["image_0000_gradcampp.png", "image_0001_gradcampp.png"]
    with pytest.raises(FileNotFoundError, match="no .png"):
        fxcam.batch_visualize(model, tmp_path / "out" / "..", tmp_path / "x")  # holds folders only
    with pytest.raises(ValueError, match="batch_size"):
        fxcam.batch_visualize(model, arrays, tmp_path / "y", batch_size=0)
    with pytest.raises(fxcam.InvalidArgumentError, match="gradcam"):  # lists the valid names
        fxcam.batch_visualize(model, arrays, tmp_path / "y", method="nosuchcam")


def test_model_errors(models, fxcam, tmp_path):
    with pytest.raises(fxcam.FileError) as err:
        fxcam.Model(tmp_path / "missing.pt")
    assert isinstance(err.value, OSError) and "missing.pt" in str(err.value) and err.value.status == -3
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip archive at all" * 10)
    with pytest.raises(fxcam.FormatError, match="junk.pt"):
        fxcam.Model(junk)
    with pytest.raises(TypeError, match="model path"):
        fxcam.Model(123)
    with pytest.raises(TypeError, match="device"):
        fxcam.Model(models["resnet"][0], device=0)
    with pytest.raises(fxcam.InvalidArgumentError) as err:
        fxcam.Model(models["resnet"][0], device="tpu")
    assert "tpu" in err.value.message
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        fxcam.Model(models["resnet"][0], channels=2)
    with pytest.raises(ValueError, match="input_size"):
        fxcam.Model(models["resnet"][0], input_size=(0, 10))


def test_gradcam_errors(resnet, fxcam):
    model, _, _ = resnet
    with pytest.raises(TypeError, match="fxcam.Model"):
        fxcam.GradCAM("model.pt")
    with pytest.raises(fxcam.LayerError) as err:
        fxcam.GradCAM(model, layer_name="layer5")
    assert "layer4" in str(err.value)
    with pytest.raises(TypeError, match="layer_name"):
        fxcam.GradCAM(model, layer_name=4)
    cam = fxcam.GradCAM(model, layer_name="fc")  # exists, but not a feature map: the library says so
    with pytest.raises(fxcam.LayerError) as err:
        cam.compute_heatmap(smooth_image(20, 20, 3, np.uint8))
    assert "fc" in err.value.message and err.value.status == -8
    cam = fxcam.GradCAM(model)
    with pytest.raises(TypeError, match="float64"):
        cam.compute_heatmap(np.zeros((20, 20), np.float64))
    with pytest.raises(ValueError, match="4 dimensions"):
        cam.compute_heatmap(np.zeros((1, 20, 20, 3), np.uint8))
    with pytest.raises(fxcam.InvalidArgumentError, match="2x2"):
        cam.compute_heatmap(np.zeros((1, 1), np.uint8))
    with pytest.raises(fxcam.FileError):
        cam.compute_heatmap("/nonexistent/xray.png")
    with pytest.raises(TypeError):
        cam.compute_heatmap(object())
    with pytest.raises(ValueError, match="empty"):
        cam.compute_batch([])


def test_from_bytes_close_and_default_model(models, fxcam, monkeypatch):
    path = models["tiny_gray"][0]
    with open(path, "rb") as f:
        model = fxcam.Model.from_bytes(f.read(), device="cpu")
    assert model.class_names == ["normal", "fracture"] and model.path is None
    model.close()
    with pytest.raises(ValueError, match="closed"):
        model.device
    assert "closed" in repr(model)
    with pytest.raises(TypeError):
        fxcam.Model.from_bytes("text")
    monkeypatch.setenv("FXCAM_MODEL", path)
    assert fxcam.default_model_candidates()[0] == path
    with fxcam.Model() as default:
        assert default.path == path
    monkeypatch.setenv("FXCAM_MODEL", "/nonexistent/model.pt")
    places = fxcam.default_model_candidates()
    assert places[0] == "/nonexistent/model.pt"
    assert any(p.endswith(os.path.join("share", "fxcam", "fracture_densenet.pt")) for p in places)
    if not any(os.path.isfile(p) for p in places):
        with pytest.raises(FileNotFoundError, match="/nonexistent/model.pt"):
            fxcam.Model()
