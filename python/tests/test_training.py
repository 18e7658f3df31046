"""Model(...) keyword arguments that say how the model was trained (the CLI's
--intensity, --bits, --window, --resize-mode, --resize-size, --input-size,
--channels, --mean, --std, --class-names), Model.predict, image files' bits
stored, and the progress/cancel callback, against independent references:
torch on the tensor torchvision's transforms make, and the intensity rules
of docs/algorithms.md evaluated in NumPy."""
import struct
import zlib

import numpy as np
import pytest

pytestmark = pytest.mark.torch


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, gray, sbit=None):
    """16-bit gray PNG with the samples as they are (not scaled) and an
    optional sBIT chunk, written by hand (PIL and cv2 cannot write sBIT)."""
    h, w = gray.shape
    raw = b"".join(b"\0" + gray[y].astype(">u2").tobytes() for y in range(h))
    chunks = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
    if sbit is not None:
        chunks += png_chunk(b"sBIT", bytes([sbit]))
    data = b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IDAT", zlib.compress(raw, 6)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def twelve_bit(h, w, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.35 * np.sin(xx / 5.0) * np.cos(yy / 4.0) + rng.normal(0, 0.05, (h, w))
    return np.clip(np.round(base * 4095), 0, 4095).astype(np.uint16)


def rgb_image(h, w, seed=5):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([np.sin(xx / 9.0), np.cos(yy / 7.0), np.sin((xx + yy) / 11.0)], -1) * 0.4 + 0.5
    return np.clip(rgb * 255 + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def torch_logits(module, x):
    import torch
    with torch.no_grad():
        return module(x).double().numpy()


def gray_logits(models, unit):
    """The 1-channel tiny model (32x32, mean 0.5, std 0.25) on [0,1] images of its own size."""
    import torch
    _, module, _ = models["tiny_gray"]
    x = torch.from_numpy(np.stack(unit).astype(np.float32))[:, None]
    return torch_logits(module, (x - 0.5) / 0.25)


def imagenet(x):
    import torchvision.transforms.functional as TF
    return TF.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


# ---- intensity: NumPy references of docs/algorithms.md's rules ----------------------------------------

def test_intensity_rules_against_numpy(models, fxcam):
    path = models["tiny_gray"][0]
    v = twelve_bit(32, 32).astype(np.float64)
    img = v.astype(np.uint16)
    cases = [
        (dict(), v / 65535),                                   # auto, no bits known: the container
        (dict(intensity="container"), v / 65535),
        (dict(bits_stored=12), v / 4095),                     # auto + bits: v / (2^12 - 1)
        (dict(intensity="bits", bits_stored=12), v / 4095),
        (dict(intensity="bits", bits_stored=10), np.minimum(v / 1023, 1)),  # clipped to 1
        (dict(intensity="minmax"), (v - v.min()) / (v.max() - v.min())),
        (dict(window=(2048, 1024)), np.clip((v - (2048 - 512)) / 1024, 0, 1)),  # window alone means "window"
        (dict(intensity="window", window=(1000.0, 3000.0)), np.clip((v - (1000 - 1500)) / 3000, 0, 1)),
    ]
    for options, unit in cases:
        model = fxcam.Model(path, device="cpu", **options)
        probabilities, logits = model.predict([img], return_logits=True)
        ref = gray_logits(models, [unit])
        assert np.abs(logits - ref).max() < 1e-4, options
        p = 1 / (1 + np.exp(-ref[0, 0]))
        assert np.abs(probabilities[0] - [1 - p, p]).max() < 1e-5, options


def test_intensity_properties(models, fxcam):
    path = models["tiny_gray"][0]
    model = fxcam.Model(path, device="cpu")
    assert (model.intensity, model.bits_stored, model.window) == ("auto", None, None)
    model = fxcam.Model(path, device="cpu", bits_stored=12)
    assert (model.intensity, model.bits_stored, model.window) == ("auto", 12, None)
    model = fxcam.Model(path, device="cpu", intensity="bits", bits_stored=10)
    assert (model.intensity, model.bits_stored) == ("bits", 10)
    model = fxcam.Model(path, device="cpu", window=(2048, 1024))
    assert (model.intensity, model.window) == ("window", (2048.0, 1024.0))
    assert fxcam.Model(path, device="cpu", intensity="MinMax").intensity == "minmax"


def test_png_sbit_is_read_by_path(models, fxcam, tmp_path):
    """A 12-bit radiograph in a 16-bit PNG with sBIT 12, given by path, is read
    as v / 4095 by the default rule (the loader's fx_image_info reaches the
    compute); the same file without sBIT, an array, or the container rule: v / 65535."""
    path = models["tiny_gray"][0]
    v = twelve_bit(32, 32)
    sbit = write_png16(tmp_path / "sbit12.png", v, sbit=12)
    plain = write_png16(tmp_path / "plain.png", v)
    model = fxcam.Model(path, device="cpu")
    by_bits, by_container = gray_logits(models, [v / 4095.0, v / 65535.0])
    assert abs(by_bits[0] - by_container[0]) > 1e-3  # the two readings differ for this model
    _, logits = model.predict([sbit, plain, fxcam.load_image(sbit)], return_logits=True)
    assert np.abs(logits[0] - by_bits).max() < 1e-4
    assert np.abs(logits[1] - by_container).max() < 1e-4
    assert np.abs(logits[2] - by_container).max() < 1e-4  # an array has no bits stored
    result = fxcam.GradCAM(model).compute(sbit)
    assert np.abs(np.array(result.logits()) - by_bits).max() < 1e-4
    container = fxcam.Model(path, device="cpu", intensity="container")
    assert np.abs(container.predict([sbit], return_logits=True)[1][0] - by_container).max() < 1e-4


# ---- resize modes and input size: torch on torchvision's tensor ---------------------------------------

def rgb_tensor(img):
    import torch
    return torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def test_shorter_side_crop_equals_torchvision(models, fxcam):
    import torchvision.transforms.functional as TF
    path, module, _ = models["resnet"]
    img = rgb_image(97, 150)
    model = fxcam.Model(path, device="cpu", input_size=(48, 64), resize_mode="shorter-side-crop", resize_size=56)
    assert model.input_size == (48, 64)
    assert (model.resize_mode, model.resize_size) == ("shorter-side-crop", 56)
    # torchvision's recipe: Resize(56) (antialiased) + CenterCrop((48, 64)) + Normalize.
    x = imagenet(TF.center_crop(TF.resize(rgb_tensor(img), 56, antialias=True), [48, 64]))
    ref = torch_logits(module, x)
    with pytest.warns(fxcam.FxcamWarning):  # the model sees only the crop (WARN_NOT_SEEN)
        result = fxcam.GradCAM(model).compute(img)
    assert np.abs(np.array(result.logits()) - ref[0]).max() < 1e-4
    _, logits = model.predict([img], return_logits=True)
    assert np.abs(logits[0] - ref[0]).max() < 1e-4


def test_input_size_is_height_width(models, fxcam):
    """input_size=(height, width) on a non-square input: stretch-antialias is
    torchvision's Resize((h, w)); plain stretch is bilinear without antialias."""
    import torch.nn.functional as F
    import torchvision.transforms.functional as TF
    path, module, _ = models["resnet"]
    img = rgb_image(90, 70)
    x = rgb_tensor(img)
    model = fxcam.Model(path, device="cpu", input_size=(40, 56), resize_mode="stretch-antialias")
    assert model.input_size == (40, 56) and model.resize_mode == "stretch-antialias" and model.resize_size is None
    ref = torch_logits(module, imagenet(TF.resize(x, [40, 56], antialias=True)))
    assert np.abs(model.predict([img], return_logits=True)[1] - ref).max() < 1e-4
    model = fxcam.Model(path, device="cpu", input_size=(40, 56))
    assert model.resize_mode == "stretch"
    ref = torch_logits(module, imagenet(F.interpolate(x, size=(40, 56), mode="bilinear", align_corners=False)))
    assert np.abs(model.predict([img], return_logits=True)[1] - ref).max() < 1e-4
    assert "40x56" in repr(model)


def test_letterbox_equals_torch(models, fxcam):
    """Aspect kept and fitted, sizes rounded, centred (offset floor), the rest 0
    before normalization (docs/algorithms.md), built here with torch."""
    import torch
    import torch.nn.functional as F
    path, module, _ = models["resnet"]
    img = rgb_image(97, 150)
    H, W = 64, 48
    model = fxcam.Model(path, device="cpu", input_size=(H, W), resize_mode="letterbox")
    ih, iw = img.shape[:2]
    s = min(W / iw, H / ih)
    rw, rh = round(iw * s), round(ih * s)
    ox, oy = (W - rw) // 2, (H - rh) // 2
    x = torch.zeros(1, 3, H, W)
    x[:, :, oy:oy + rh, ox:ox + rw] = F.interpolate(rgb_tensor(img), size=(rh, rw), mode="bilinear",
                                                    align_corners=False, antialias=True)
    ref = torch_logits(module, imagenet(x))
    assert np.abs(model.predict([img], return_logits=True)[1] - ref).max() < 1e-4


def test_channels_mean_std_class_names(models, fxcam):
    import torch
    path, module, _ = models["resnet"]
    img = rgb_image(64, 64)
    names = ["a", "b", "c"]
    model = fxcam.Model(path, device="cpu", mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3], class_names=names)
    assert model.class_names == names
    assert model.mean == pytest.approx([0.4, 0.5, 0.6]) and model.std == pytest.approx([0.2, 0.25, 0.3])
    m = torch.tensor([0.4, 0.5, 0.6])[None, :, None, None]
    s = torch.tensor([0.2, 0.25, 0.3])[None, :, None, None]
    ref = torch_logits(module, (rgb_tensor(img) - m) / s)
    assert np.abs(model.predict([img], return_logits=True)[1] - ref).max() < 1e-4
    assert fxcam.GradCAM(model).compute(img).predicted_name() == names[int(ref[0].argmax())]
    # channels=1 on the gray model is what its metadata says; 3 is refused by name at load
    gray = fxcam.Model(models["tiny_gray"][0], device="cpu", channels=1)
    assert gray.channels == 1
    with pytest.raises(fxcam.FxError, match="channel"):
        fxcam.Model(models["tiny_gray"][0], device="cpu", channels=3, mean=[0.5] * 3, std=[0.5] * 3)


@pytest.mark.parametrize("options, error, pattern", [
    (dict(intensity="linear"), ValueError, "intensity='linear' is unknown; valid: 'auto'"),
    (dict(intensity=2), TypeError, "intensity must be one of"),
    (dict(bits_stored=0), ValueError, "bits_stored must be 1..16"),
    (dict(bits_stored=17), ValueError, "bits_stored must be 1..16"),
    (dict(bits_stored=12.0), TypeError, "bits_stored must be an int"),
    (dict(intensity="minmax", bits_stored=12), ValueError, "bits_stored=12 applies to intensity 'bits'"),
    (dict(window=2048), TypeError, r"window must be a pair \(center, width\)"),
    (dict(window=(2048, 0)), ValueError, "width > 0"),
    (dict(window=(float("nan"), 10)), ValueError, "finite center"),
    (dict(intensity="container", window=(1, 2)), ValueError, "applies to intensity 'window'"),
    (dict(window=(2048, 4096), bits_stored=12), ValueError, "either window"),
    (dict(resize_mode="crop"), ValueError, "resize_mode='crop' is unknown; valid: 'stretch'"),
    (dict(resize_mode="default"), ValueError, "give one of"),
    (dict(resize_size=0), ValueError, "resize_size must be 1..16384"),
    (dict(resize_mode="letterbox", resize_size=80), ValueError, "shorter-side-crop"),
    (dict(resize_size=80), ValueError, "this model resizes by 'stretch'"),  # decided after the load
    (dict(input_size=64), TypeError, r"input_size must be a pair \(height, width\)"),
    (dict(input_size=(1, 64)), ValueError, "input_size height must be 2..16384"),
    (dict(input_size=(64, 20000)), ValueError, "input_size width must be 2..16384"),
    (dict(input_size=(64.0, 64)), TypeError, "input_size height must be an int"),
    (dict(channels=2), ValueError, "channels must be 1 or 3"),
    (dict(std=[0.2, 0, 0.2]), ValueError, "std must be > 0"),
    (dict(mean=[0.5]), ValueError, "mean has 1 value but the model takes 3"),
    (dict(class_names="normal,fracture"), TypeError, "not a single string"),
    (dict(class_names=["a", ""]), ValueError, r"class_names\[1\]"),
    (dict(class_names=["a", 2]), TypeError, r"class_names\[1\] must be a str"),
    (dict(class_names=["a", "b"]), ValueError, "class_names has 2 names but the model has 3 classes"),
])
def test_bad_options_are_named(models, fxcam, options, error, pattern):
    with pytest.raises(error, match=pattern):
        fxcam.Model(models["resnet"][0], device="cpu", **options)


def test_bits_stored_the_metadata_would_ignore_is_refused(models, fxcam, tmp_path):
    """bits_stored under a model whose fxcam.json names another intensity rule
    would be ignored: refused after the load (as the CLI's --bits), naming the
    model's rule; with intensity='bits' it is used."""
    import json
    import torch
    path, _, meta = models["tiny_gray"]
    minmax = str(tmp_path / "minmax.pt")
    torch.jit.save(torch.jit.load(path), minmax,
                   _extra_files={"fxcam.json": json.dumps(dict(meta, intensity="minmax"))})
    assert fxcam.Model(minmax, device="cpu").intensity == "minmax"
    with pytest.raises(ValueError, match="bits_stored=12 applies to intensity 'bits' or 'auto'; this model's "
                                         "fxcam.json says 'minmax'"):
        fxcam.Model(minmax, device="cpu", bits_stored=12)
    model = fxcam.Model(minmax, device="cpu", bits_stored=12, intensity="bits")
    assert (model.intensity, model.bits_stored) == ("bits", 12)


# ---- predict, progress and cancellation ---------------------------------------------------------------

def test_predict_equals_gradcam(models, fxcam, tmp_path):
    path, module, _ = models["resnet"]
    model = fxcam.Model(path, device="cpu")
    images = [rgb_image(64, 64, seed=k) for k in range(3)]
    file = str(tmp_path / "rgb.png")
    fxcam.save_image(file, images[0])
    inputs = images + [file]
    probabilities = model.predict(inputs, batch_size=2)
    assert probabilities.shape == (4, 3) and probabilities.dtype == np.float32
    result = fxcam.compute(model, inputs)
    for k in range(4):
        assert np.abs(probabilities[k] - np.array(result.probabilities(k), np.float32)).max() <= 1e-6
    ref = torch_logits(module, imagenet(rgb_tensor(images[1])))
    assert np.abs(model.predict([images[1]], return_logits=True)[1] - ref).max() < 1e-4
    with pytest.raises(TypeError, match="list of images"):
        model.predict(images[0])
    with pytest.raises(ValueError, match="empty"):
        model.predict([])


def test_progress_and_cancel_scorecam(models, fxcam):
    model = fxcam.Model(models["tiny_gray"][0], device="cpu")
    images = [twelve_bit(32, 32, seed=k) for k in range(2)]
    calls = []
    full = fxcam.compute(model, images, methods=("scorecam",), progress=lambda d, t: calls.append((d, t)))
    total = 2 * 8  # images x channels of layer "3" (Conv2d(4, 8)) x one method
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert all(a[0] <= b[0] and a[1] == total for a, b in zip(calls, calls[1:]))
    assert len(full) == 2

    seen = []
    with pytest.raises(fxcam.CancelledError) as caught:
        fxcam.compute(model, images, methods=("scorecam",), progress=lambda d, t: seen.append(d) or True)
    assert caught.value.status == -13 and seen == [0]

    class Stop(Exception):
        pass

    def boom(done, total):
        raise Stop("from the callback")

    with pytest.raises(Stop, match="from the callback"):
        fxcam.compute(model, images, methods=("ablationcam",), progress=boom)
    with pytest.raises(TypeError, match="progress must be a callable"):
        fxcam.compute(model, images, methods=("scorecam",), progress=5)
    # gradient methods have no per-channel passes: the callback is never asked to stop them
    fxcam.compute(model, images, methods=("gradcam",), progress=lambda d, t: True)


def test_resize_takes_height_width(fxcam):
    img = rgb_image(20, 30)
    import cv2
    ref = cv2.resize(img, (11, 7), interpolation=cv2.INTER_LINEAR)  # cv2's dsize is (width, height)
    assert np.abs(fxcam.resize(img, (7, 11)).astype(int) - ref).max() <= 1
    assert np.array_equal(fxcam.resize(img, height=7, width=11), fxcam.resize(img, (7, 11)))
    with pytest.raises(TypeError, match=r"now resize\(image, \(height, width\)\)"):
        fxcam.resize(img, 11, 7)
    with pytest.raises(TypeError, match=r"size must be \(height, width\)"):
        fxcam.resize(img, 11)


def test_weighted_classes_have_no_target_index(models, fxcam):
    """With class_weights the score is a weighted sum of classes and
    fx_result_target_class is -1: CamResult.target_class() is None (never -1,
    which would index the last class name) and target_name() says "weighted
    classes". Weights (0, 1, 0) differentiate logit 1: the map of class 1."""
    import ctypes
    from fxcam import _lib
    from fxcam.cam import CamResult, _ResultHandle
    model = fxcam.Model(models["resnet"][0], device="cpu")
    img = rgb_image(64, 64)
    from fxcam._arrays import describe_batch
    inputs, array, _ = describe_batch([img])
    opts = _lib.GradcamOptions()
    _lib.lib.fx_gradcam_options_init(ctypes.byref(opts))
    methods = (ctypes.c_int32 * 1)(fxcam.cam.method_id("gradcam"))
    opts.methods, opts.method_count = methods, 1
    weights = (ctypes.c_float * 3)(0.0, 1.0, 0.0)
    opts.class_weights, opts.class_weight_count = weights, 3
    handle = _ResultHandle()
    _lib.check(_lib.lib.fx_gradcam_compute(model.handle, array, 1, ctypes.byref(opts), ctypes.byref(handle.ptr)))
    weighted = CamResult(handle, model)
    assert _lib.lib.fx_result_target_class(handle.ptr, 0) == -1
    assert weighted.target_class() is None and weighted.target_name() == "weighted classes"
    assert weighted.predicted_name() in model.class_names
    one = fxcam.compute(model, [img], target_class=1)
    assert one.target_class() == 1 and one.target_name() == model.class_names[1]
    assert np.abs(np.asarray(weighted.heatmap()) - np.asarray(one.heatmap())).max() < 1e-5


def intensity_rgb8(unit):
    """docs/algorithms.md: x in [0, 1] to 8 bits, round half up, gray replicated."""
    return np.repeat(np.floor(np.clip(unit, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.filterwarnings("ignore:.*fit in 12 bits")  # the container case's warning, meant
def test_figures_show_the_image_by_the_models_intensity_rule(models, fxcam, tmp_path):
    """GradCAM's overlay and figure draw a 16-bit image as the model read it
    (as the CLI does), not stretched over its own min..max: an array by the
    container rule (v / 65535), a PNG with sBIT 12 by v / 4095, under
    intensity="minmax" by (v - min) / (max - min), each computed in NumPy."""
    v12 = twelve_bit(32, 32)
    heat = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    png = write_png16(tmp_path / "x12.png", v12, sbit=12)
    cases = [(fxcam.Model(models["tiny_gray"][0], device="cpu"), v12, v12 / 65535.0),
             (fxcam.Model(models["tiny_gray"][0], device="cpu"), png, v12 / 4095.0),
             (fxcam.Model(models["tiny_gray"][0], device="cpu", intensity="minmax"), v12,
              (v12 - float(v12.min())) / float(v12.max() - v12.min()))]
    for model, image, unit in cases:
        expected = intensity_rgb8(unit)
        assert np.array_equal(fxcam.cam.model_view(model, image), expected)
        cam = fxcam.GradCAM(model)
        assert np.array_equal(cam.overlay_heatmap(heat, image), fxcam.overlay(expected, heat))
        assert np.array_equal(cam.overlay_heatmap(heat, image, alpha=0.0), expected)
        heatmap, overlay = cam.generate_visualization(image)
        assert np.array_equal(overlay, fxcam.overlay(expected, heatmap))
        figure = cam.visualize(image, timestamp="t")
        result = cam.last_result
        assert np.array_equal(figure, fxcam.compose_figure(
            expected, result.heatmap(), label=result.predicted_name(), confidence=result.confidence(),
            method=cam.method_title, layer=result.layer, timestamp="t"))
    # the standalone helper keeps its documented min..max window for 16-bit data
    stretched = (v12 - float(v12.min())) / float(v12.max() - v12.min())
    assert np.abs(fxcam.to_rgb8(v12).astype(int) - intensity_rgb8(stretched)).max() <= 1
