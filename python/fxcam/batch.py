"""batch_visualize: one figure per image, unreadable images skipped and
reported in summary.txt / summary.csv as `fxcam batch` does (cli/batch.c)."""
import os
import tempfile
import time

from . import image as _image
from ._arrays import HAVE_NUMPY, as_input, is_path, wrap_borrowed
from .cam import _check_layer, _check_model, compute, fill_cam_options, method_id, method_title, model_view
from .errors import DeviceError, FxError, LayerError, NotAvailableError
from ._lib import lib

# Errors that concern the whole run (the model, the layer, the device), not
# one image: they stop the batch, as in the CLI (cli/batch.c is_fatal()).
_FATAL = (LayerError, DeviceError, NotAvailableError)
# What a bad image raises: library errors and the bindings' checks of arrays.
_IMAGE_ERRORS = (FxError, ValueError, TypeError, OSError)
# The CLI's summary.csv columns, in its order.
CSV_COLUMNS = ("file", "predicted_class", "confidence", "peak_x", "peak_y", "output", "status")


class _Item:
    """One input: its label in the summaries, what to compute on, what to
    draw on, and how it went."""

    def __init__(self, label, source, original=None, state="pending", reason=""):
        self.label, self.source, self.original = label, source, original
        self.state, self.reason = state, reason
        self.output = ""
        self.predicted, self.confidence, self.peak = None, 0.0, (0, 0)

    def fail(self, reason):
        self.state, self.reason = "failed", reason


def _is_png_name(name):
    return name.lower().endswith(".png")


def _scan_folder(folder, own_suffix, output_dir):
    """(pending .png items, ignored items) of a folder, sorted by name. Only
    regular files are inputs: a FIFO named x.png would block the read
    forever. The run's own outputs are left out when they land in the folder."""
    same_dir = os.path.realpath(folder) == os.path.realpath(output_dir)
    pngs, ignored = [], []
    with os.scandir(folder) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            if same_dir and (e.name.endswith(own_suffix) or e.name in ("summary.txt", "summary.csv")):
                continue
            if e.is_dir():
                continue
            if not e.is_file():
                ignored.append(_Item(e.name, e.path, state="ignored", reason="not a regular file"))
            elif not _is_png_name(e.name):
                ignored.append(_Item(e.name, e.path, state="ignored", reason="not a .png file"))
            else:
                pngs.append(_Item(e.name, e.path))
    if not pngs:
        raise FileNotFoundError(f"no .png file in {os.fsdecode(folder)}")
    return pngs, ignored


def _collect(images, own_suffix, output_dir):
    if is_path(images) and os.path.isdir(images):
        return _scan_folder(os.fsdecode(images), own_suffix, output_dir)
    if is_path(images):
        return [_Item(os.fsdecode(images), images)], []
    try:
        images = list(images)
    except TypeError:
        raise TypeError(f"images must be a folder, a path or a sequence of images, "
                        f"not {type(images).__name__}") from None
    return [_Item(os.fsdecode(img) if is_path(img) else f"images[{k}]", img) for k, img in enumerate(images)], []


def _attach_originals(items, original_images, from_folder):
    """original_images: a sequence with one entry per image (same order), or,
    for a folder of images, a folder holding files of the same names."""
    if original_images is None:
        return
    if is_path(original_images) and os.path.isdir(original_images):
        if not from_folder:
            raise ValueError("original_images is a folder: give images as a folder too (files are matched by "
                             "name), or give original_images as a sequence with one entry per image")
        for item in items:
            item.original = os.path.join(os.fsdecode(original_images), item.label)
        return
    if is_path(original_images):
        original_images = [original_images]
    try:
        originals = list(original_images)
    except TypeError:
        raise TypeError(f"original_images must be a sequence of images or a folder, "
                        f"not {type(original_images).__name__}") from None
    if len(originals) != len(items):
        raise ValueError(f"original_images has {len(originals)} entries for {len(items)} images; give one "
                         f"original per image, in the same order")
    for item, original in zip(items, originals):
        item.original = original


def _output_names(items, suffix):
    """Unique output names: '<stem>_<suffix>.png', numbered when two inputs
    share a stem (a.png and a.PNG, or arrays)."""
    seen = set()
    for k, item in enumerate(items):
        stem = os.path.splitext(os.path.basename(os.fsdecode(item.source)))[0] if is_path(item.source) else \
            f"image_{k:04d}"
        name = f"{stem}_{suffix}.png"
        n = k
        while name.lower() in seen:
            name = f"{stem}_{n}_{suffix}.png"
            n += 1
        seen.add(name.lower())
        item.output = name


def _peak(heatmap):
    """(x, y) of the first maximum in row-major order (the CLI's rule)."""
    if HAVE_NUMPY and not isinstance(heatmap, list):
        import numpy as np
        y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        return int(x), int(y)
    best, where = None, (0, 0)
    for y, row in enumerate(heatmap):
        for x, v in enumerate(row):
            if best is None or v > best:
                best, where = v, (x, y)
    return where


def _shape_of(image):
    img = image.image
    return img.height, img.width


def _load(item, layout, channel_order):
    """(input, original input) of an item, or None after recording why not."""
    try:
        src = as_input(item.source, item.label, layout=layout, channel_order=channel_order)
    except _IMAGE_ERRORS as e:
        item.fail(f"cannot read the image: {e}")
        return None
    if item.original is None:
        return src, src
    try:
        original = as_input(item.original, f"original of {item.label}", layout=layout, channel_order=channel_order)
    except _IMAGE_ERRORS as e:
        item.fail(f"cannot read the original image: {e}")
        return None
    return src, original


class _Run:
    def __init__(self, model, mid, title, layer_name, target_class, batch_size, figure_options, output_dir,
                 load_args):
        self.model, self.mid, self.title = model, mid, title
        self.layer_name, self.target_class, self.batch_size = layer_name, target_class, batch_size
        self.figure_options, self.output_dir, self.load_args = figure_options, output_dir, load_args
        self.layer = None

    def compute(self, inputs):
        return compute(self.model, inputs, (self.mid,), self.layer_name, self.target_class, self.batch_size)

    def finish(self, item, result, k, src, original):
        heatmap = result.heatmap(k)
        if _shape_of(original) != _shape_of(src):
            height, width = _shape_of(original)
            heatmap = _image.resize(heatmap, (height, width))  # the map on the image it is drawn on
        self.layer = result.layer
        path = os.path.join(self.output_dir, item.output)
        try:
            # the image as the model read it (its intensity rule), as the CLI draws it
            figure = _image.compose_figure(model_view(self.model, original), heatmap, label=result.predicted_name(k),
                                           confidence=result.confidence(k), method=self.title, layer=result.layer,
                                           **self.figure_options)
            _image.save_image(path, figure)
        except _FATAL:
            raise
        except _IMAGE_ERRORS as e:
            item.fail(f"cannot draw or write the figure: {e}")
            return
        item.state, item.output = "ok", path
        item.predicted, item.confidence = result.predicted_name(k), result.confidence(k)
        item.peak = _peak(heatmap)

    def process(self, chunk):
        loaded = [(item, _load(item, *self.load_args)) for item in chunk]
        loaded = [(item, pair) for item, pair in loaded if pair is not None]
        if not loaded:
            return
        try:
            result = self.compute([pair[0] for _, pair in loaded])
        except _FATAL:
            raise
        except _IMAGE_ERRORS:
            # One bad image fails the whole call: compute each alone to find it.
            for item, (src, original) in loaded:
                try:
                    self.finish(item, self.compute([src]), 0, src, original)
                except _FATAL:
                    raise
                except _IMAGE_ERRORS as e:
                    item.fail(str(e))
            return
        for k, (item, (src, original)) in enumerate(loaded):
            self.finish(item, result, k, src, original)


def _csv_field(text):
    """The CLI's quoting (cli_text_csv_field): quoted only when needed."""
    text = str(text)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv(items):
    lines = [",".join(CSV_COLUMNS)]
    for item in items:
        if item.state == "ok":
            fields = [item.label, item.predicted, f"{item.confidence:.4f}", item.peak[0], item.peak[1], item.output,
                      "ok"]
        else:
            fields = [item.label, "", "", "", "", "", f"{item.state}: {item.reason}"]
        lines.append(",".join(_csv_field(f) for f in fields))
    return "\n".join(lines) + "\n"


def _summary_text(run, source, items, ignored, seconds):
    done = [i for i in items if i.state == "ok"]
    failed = [i for i in items + ignored if i.state == "failed"]
    names = run.model.class_names
    lines = ["fxcam batch summary", "",
             f"model:        {run.model.path or '(from memory)'}",
             f"method:       {run.title}",
             f"layer:        {run.layer or run.layer_name or '(default)'}",
             f"device:       {run.model.device}",
             f"image dir:    {source}",
             f"output dir:   {run.output_dir}", "",
             f"images:       {len(items)} images, {len(done)} processed, {len(failed)} failed",
             f"ignored:      {len(ignored)} files without the .png extension or not regular files", "",
             f"{'predicted class':<20} {'images':>7}  mean confidence"]
    for name in names + ["all"]:
        chosen = [i.confidence for i in done if name == "all" or i.predicted == name]
        mean = f"{100.0 * sum(chosen) / len(chosen):.1f}%" if chosen else "-"
        lines.append(f"{name:<20} {len(chosen):>7}  {mean}")
    per_image = seconds / len(done) if done else 0.0
    lines += ["", f"time:         {seconds:.2f} s total, {per_image:.3f} s per processed image, batch size "
                  f"{run.batch_size}", "", f"failures:     {len(failed)}"]
    lines += [f"  {i.label}: {i.reason}" for i in failed]
    if ignored:
        lines += ["", "ignored files:"] + [f"  {i.label}: {i.reason}" for i in ignored]
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    """Writes a text file whole or not at all: a new file of a unique name
    (O_EXCL, so no planted link is followed) renamed over the target (a link
    at the target is replaced, not written through)."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".fxcam-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def batch_visualize(model, images, output_dir, layer_name=None, method="gradcam", target_class=None, alpha=0.4,
                    colormap="jet", batch_size=8, timestamp=None, original_images=None, channel_order="rgb",
                    layout=None):
    """Writes one figure per image into output_dir (created if needed) as
    <name>_<method>.png, and summary.txt and summary.csv (the columns of
    `fxcam batch`: file, predicted_class, confidence, peak_x, peak_y, output,
    status). Returns the paths of the figures written.

    images: a folder (its regular *.png files, any case; other files are
    listed as ignored), a path, or a sequence of paths/arrays. An image that
    cannot be read or computed is skipped and reported with its reason; a
    problem of the whole run (a wrong layer, the device) raises.
    original_images: what to draw on when `images` were preprocessed for the
    model (the original tool's argument): a sequence, one per image in the
    same order, or a folder of files named as those in the `images` folder;
    the heatmap is resized to each original. channel_order="bgr" for arrays
    from cv2.imread; layout "hwc"/"chw" for ambiguous array shapes.
    Images are processed batch_size at a time."""
    model = _check_model(model)
    layer_name = _check_layer(model, layer_name)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    mid = method_id(method)
    name = lib.fx_cam_method_name(mid).decode()
    suffix = lib.fx_cam_method_find(mid).contents.slug.decode()  # the registry's file-name slug
    output_dir = os.fsdecode(output_dir)
    items, ignored = _collect(images, f"_{suffix}.png", output_dir)
    if not items:
        raise ValueError("images is empty")
    from_folder = is_path(images) and os.path.isdir(images)
    _attach_originals(items, original_images, from_folder)
    os.makedirs(output_dir, exist_ok=True)
    _output_names(items, suffix)
    options = dict(timestamp=timestamp, alpha=alpha, colormap=colormap)
    _image.figure_options(**options)  # a bad option concerns every image: raise now, not once per image
    if target_class is not None and model.class_index(target_class) >= len(model.class_names):
        raise ValueError(f"target_class {target_class} is not a class of the model: valid 0.."
                         f"{len(model.class_names) - 1} ({', '.join(model.class_names)})")
    run = _Run(model, mid, method_title(name), layer_name, target_class, batch_size, options, output_dir,
               (layout, channel_order))
    start = time.monotonic()
    for first in range(0, len(items), batch_size):
        run.process(items[first:first + batch_size])
    source = os.fsdecode(images) if is_path(images) else f"{len(items)} images given"
    write_atomic(os.path.join(output_dir, "summary.txt"),
                 _summary_text(run, source, items, ignored, time.monotonic() - start))
    write_atomic(os.path.join(output_dir, "summary.csv"), _csv(items + ignored))
    return [item.output for item in items if item.state == "ok"]


# ---- fx_pipeline_run: files in, one row per file in input order ----------------

def run_pipeline(model, paths, methods=("gradcam",), layer_name=None, target_class=None, batch_size=8,
                  batch_memory=None, io_threads=1, on_item=None, keep_heatmaps=False, *, target_classes=None,
                  class_weights=None, aug_smooth=False, eigen_smooth=False, smooth_samples=0, smooth_noise=0.0,
                  smooth_seed=0, channel_batch_size=0):
    """Explain image files with the library's pipeline (fx_pipeline_run): the
    next pass is read and decoded and the previous pass handed over while the
    model runs the current one, memory bounded by four passes of at most
    batch_size images (and batch_memory decoded bytes, default 1 GiB) however
    many paths there are.

    Returns one dict per path, in the order of paths: index, path, status
    ("ok" or "failed"), error (the library's message, "" when ok),
    predicted_class, predicted_name, confidence, peak ((x, y) of the first
    maximum of the first method's map, as the CLI's summary.csv), and with
    keep_heatmaps=True "heatmaps" (one HxW float32 copy per method). An image
    that cannot be read or computed is a "failed" row; the run goes on.

    on_item: None, or a callable on_item(row) called for each row as soon as
    it is ready, in input order, on a thread of the pipeline when
    io_threads=1 (the rows are then not kept: returns []). Returning True
    stops the run with fxcam.CancelledError; an exception raised inside it
    stops the run and is raised again here. Errors of the whole run (a wrong
    layer) raise fxcam.LayerError and so on, as compute() does.

    methods, layer_name (a name or a list of names), target_class and the
    keywords class_weights, aug_smooth, eigen_smooth, smooth_samples,
    smooth_noise, smooth_seed and channel_batch_size mean what
    they mean in compute() and are set by the same code (cam.fill_cam_options).
    target_classes (one class per image) is refused: the pipeline forms its
    passes from the images it could read, so a per-image list cannot follow
    them; use target_class, or compute() on the images."""
    model = _check_model(model)
    if isinstance(paths, (str, bytes)) or is_path(paths):
        raise TypeError("paths must be a sequence of file paths, not one path")
    paths = [os.fsencode(p) for p in paths]
    if target_classes is not None:
        raise ValueError("run_pipeline does not take target_classes (one class per image): its passes are "
                         "formed from the images it could read, so a per-image list cannot follow them; give "
                         "target_class (one class for all), or use fxcam.compute() for per-image classes")
    for name, value, low in (("batch_size", batch_size, 1), ("io_threads", io_threads, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2 ** 32:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if batch_memory is not None and (isinstance(batch_memory, bool) or not isinstance(batch_memory, int)
                                     or not 1 <= batch_memory < 2 ** 64):
        raise ValueError(f"batch_memory must be None (1 GiB) or an int >= 1 (bytes), got {batch_memory!r}")
    _check_layer(model, layer_name)

    from ._lib import GradcamOptions, PipelineCallback, PipelineOptions, check
    import ctypes
    gradcam = GradcamOptions()
    lib.fx_gradcam_options_init(ctypes.byref(gradcam))
    keep = fill_cam_options(gradcam, model, methods, layer_name=layer_name, target_class=target_class,  # noqa: F841
                            class_weights=class_weights, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth,
                            smooth_samples=smooth_samples, smooth_noise=smooth_noise, smooth_seed=smooth_seed,
                            channel_batch_size=channel_batch_size)
    ids = list(gradcam.methods[:gradcam.method_count])
    opts = PipelineOptions()
    lib.fx_pipeline_options_init(ctypes.byref(opts))
    opts.batch_size = batch_size
    opts.io_threads = io_threads
    if batch_memory is not None:
        opts.batch_memory = batch_memory
    opts.gradcam = ctypes.pointer(gradcam)
    path_array = (ctypes.c_char_p * max(len(paths), 1))(*paths)
    rows, raised = [], []

    def row_of(item):
        row = {"index": item.index, "path": os.fsdecode(item.path), "status": "ok", "error": "",
               "predicted_class": None, "predicted_name": None, "confidence": None, "peak": None}
        if item.status != 0:
            row["status"], row["error"] = "failed", item.error.decode("utf-8", "replace")
            return row
        result, i = item.result, item.result_index
        predicted = lib.fx_result_predicted_class(result, i)
        maps = []
        for j in range(len(ids)):
            heatmap = wrap_borrowed(lib.fx_result_heatmap(result, i, j), None)
            maps.append(heatmap.copy() if hasattr(heatmap, "copy") else [list(r) for r in heatmap])
        row.update(predicted_class=predicted, predicted_name=model.class_names[predicted],
                   confidence=float(lib.fx_result_confidence(result, i)), peak=_peak(maps[0]))
        if keep_heatmaps:
            row["heatmaps"] = maps
        return row

    def deliver(user, item_ptr):
        try:
            row = row_of(item_ptr.contents)
            if on_item is None:
                rows.append(row)
                return 0
            return 1 if on_item(row) is True else 0
        except BaseException as e:  # re-raised on the calling thread
            raised.append(e)
            return 1

    callback = PipelineCallback(deliver)
    status = lib.fx_pipeline_run(model.handle, path_array, len(paths), ctypes.byref(opts), callback, None)
    if raised:
        raise raised[0]
    check(status)
    return rows
