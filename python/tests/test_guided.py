"""Guided Backpropagation through Python: CamResult.saliency on a gray
single-logit model (1 channel) against an eager PyTorch reference written
here (a guided ReLU autograd.Function patched over F.relu, pytorch-grad-cam's
deprocess_image), and the error for a method without a saliency image. The
three-channel torchvision cases are in tests/engine/test_guided.c."""
import numpy as np
import pytest

pytestmark = pytest.mark.torch


def guided_reference(module, x, score_sign):
    import torch
    import torch.nn.functional as F

    class GuidedReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return v.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g * (v > 0).type_as(g) * (g > 0).type_as(g)

    saved = F.relu
    F.relu = lambda v, inplace=False: GuidedReLU.apply(v)
    try:
        x = x.clone().requires_grad_(True)
        out = module(x)
        (g,) = torch.autograd.grad(score_sign * out[0, 0], x)
    finally:
        F.relu = saved
    p = g[0].double().numpy()
    return np.clip((p - p.mean()) / (p.std() + 1e-5) * 0.1 + 0.5, 0, 1)


def test_gray_saliency_equals_reference(models, fxcam):
    import torch
    path, module, _ = models["tiny_gray"]
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    model = fxcam.Model(path, device="cpu")
    r = fxcam.compute(model, [img], methods=("guided-backprop", "gradcam"))
    sal = r.saliency(0, 0)
    assert sal.shape == (32, 32) and sal.dtype == np.float32  # one channel, like the model input
    x = ((torch.from_numpy(img.astype(np.float32) / 255.0) - 0.5) / 0.25)[None, None]
    sign = 1.0 if r.target_class(0) == 1 else -1.0  # single logit: the negative class differentiates -logit
    ref = guided_reference(module.eval(), x, sign)[0]
    assert np.abs(sal - ref).max() < 1e-4
    assert np.abs(ref - 0.5).max() > 0.05  # a real map, not the flat 0.5 of a zero gradient
    with pytest.raises(ValueError, match="gives no saliency image"):
        r.saliency(0, 1)


def test_rgb_saliency_is_hxwx3(models, fxcam):
    """A 3-channel model's saliency is HxWx3 (the gray one's is HxW, above), as
    the docstring says: the package's rule for every image it returns."""
    model = fxcam.Model(models["resnet"][0], device="cpu")
    img = np.random.default_rng(4).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    sal = fxcam.compute(model, [img], methods=("guided-backprop",)).saliency()
    assert sal.shape == (40, 56, 3) and sal.dtype == np.float32
    assert 0.0 <= float(sal.min()) and float(sal.max()) <= 1.0
