"""The refinement and target keywords of fxcam.compute / GradCAM (aug_smooth,
eigen_smooth, several layers, target_classes, class_weights, Smooth
Grad-CAM++ and Score-CAM settings). The maps themselves are checked against
a PyTorch reference in tests/engine/test_refine.c; here: what each keyword
reaches, an independent reference for the weighted score, and the messages
for bad values."""
import numpy as np
import pytest

pytestmark = pytest.mark.torch


def image(h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 7.0 + c) * np.cos(yy / 9.0 - c) for c in range(3)], -1) * 0.4 + 0.5
    return np.round(np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def resnet(models, fxcam):
    return fxcam.Model(models["resnet"][0], device="cpu")


def test_several_layers_and_refinements(resnet, fxcam):
    img = image()
    r = fxcam.compute(resnet, [img], layer_name=["layer4", "layer3"], aug_smooth=True, eigen_smooth=True)
    assert r.layer == "layer4,layer3"
    assert r.lowres().shape == (64, 64)  # the combined map, at the model input size
    heat = r.heatmap()
    assert heat.shape == (64, 64) and float(heat.max()) == 1.0
    plain = fxcam.compute(resnet, [img], layer_name="layer4")
    assert plain.lowres().shape != (64, 64)
    cam = fxcam.GradCAM(resnet, layer_name=["layer4", "layer3"], aug_smooth=True, eigen_smooth=True)
    np.testing.assert_array_equal(cam.compute_heatmap(img), heat)


def test_weighted_classes_equal_the_sum_of_one_hot_gradients(resnet, fxcam, models):
    """Grad-CAM is linear in the gradient before its ReLU: the class_weights
    map of s = (0.5, 0, 1) has the low-resolution values of the weighted sum of
    the per-class pre-ReLU maps, computed here with torch hooks."""
    import torch
    img = image(seed=3)
    a = fxcam.compute(resnet, [img], class_weights={"normal": 0.5, "implant": 1.0})
    b = fxcam.compute(resnet, [img], class_weights=[0.5, 0.0, 1.0])
    np.testing.assert_array_equal(a.lowres(), b.lowres())
    assert a.target_class() is None and a.target_name() == "weighted classes"
    module = models["resnet"][1]
    x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    x = (x - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    seen = {}
    handle = module.layer4.register_forward_hook(lambda m, i, o: seen.setdefault("a", o))
    try:
        logits = module(x)
    finally:
        handle.remove()
    (g,) = torch.autograd.grad(0.5 * logits[0, 0] + logits[0, 2], seen["a"])
    cam = torch.clamp((g.double().mean(dim=(2, 3), keepdim=True) * seen["a"].detach().double()).sum(1)[0], min=0)
    np.testing.assert_allclose(a.lowres(), cam.numpy(), rtol=1e-4, atol=1e-6)


def test_target_classes_per_image(resnet, fxcam):
    imgs = [image(seed=1), image(seed=2)]
    r = fxcam.compute(resnet, imgs, target_classes=["implant", None])
    assert r.target_class(0) == 2
    assert r.target_class(1) == r.predicted_class(1)


def test_bad_keywords(resnet, fxcam):
    img = image()
    with pytest.raises(ValueError, match="one per image"):
        fxcam.compute(resnet, [img], target_classes=[0, 1])
    with pytest.raises(ValueError, match="3 outputs"):
        fxcam.compute(resnet, [img], class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="not one of the model's classes"):
        fxcam.compute(resnet, [img], class_weights={"tumour": 1.0})
    with pytest.raises(ValueError, match="twice"):
        fxcam.compute(resnet, [img], layer_name=["layer4", "layer4"])
    with pytest.raises(ValueError, match="not both"):  # target_class would be ignored silently
        fxcam.compute(resnet, [img], target_classes=[1], target_class=0)
    for weights in ("fracture", 1.0, [1.0, "x", 0.0], {"normal": "heavy"}):
        with pytest.raises(TypeError, match=r"sequence of floats .* or a dict \{class: weight\}"):
            fxcam.compute(resnet, [img], class_weights=weights)
    with pytest.raises(fxcam.LayerError, match="closest"):
        fxcam.compute(resnet, [img], layer_name=["layer4", "layer9"])
    with pytest.raises(ValueError, match="smooth_samples"):
        fxcam.compute(resnet, [img], methods=("smoothgradcam++",), smooth_samples=300)
    with pytest.raises(ValueError, match="smooth_noise"):
        fxcam.compute(resnet, [img], smooth_noise=-1)
    with pytest.raises(ValueError, match="channel_batch_size"):
        fxcam.compute(resnet, [img], channel_batch_size=-2)
    with pytest.raises(fxcam.FxError, match="class_weights is given together with target_class"):
        fxcam.compute(resnet, [img], target_class=1, class_weights=[1.0, 0.0, 0.0])


def test_method_settings_reach_the_library(resnet, fxcam):
    img = image()
    # layer3 (8x8): Grad-CAM++'s weights depend on the gradient's signs, which
    # the noise changes at some of its 64 positions (layer4's 2x2 may keep them).
    def smooth(**kw):
        return fxcam.compute(resnet, [img], methods=("smoothgradcam++",), layer_name="layer3", **kw).lowres()
    assert not np.array_equal(smooth(smooth_samples=2, smooth_seed=7), smooth(smooth_samples=2, smooth_seed=8))
    assert not np.array_equal(smooth(smooth_samples=1), smooth(smooth_samples=3))
    np.testing.assert_array_equal(smooth(smooth_seed=5), smooth(smooth_seed=5))
    calls = []
    fxcam.compute(resnet, [img], methods=("scorecam",), channel_batch_size=256,
                  progress=lambda done, total: calls.append(done))
    assert calls == [0, 256, 512]  # layer4 of the ResNet has 512 channels: two passes of 256
