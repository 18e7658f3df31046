"""fxcam over a Dask cluster (Debian's python3-distributed): explain a list of
image files on the workers of a distributed.Client and get one row per image.

    from distributed import Client
    import fxcam.dask
    client = Client("scheduler-host:8786")            # or Client(LocalCluster(...))
    rows = fxcam.dask.explain_files(client, paths, "/shared/cams", model="/shared/model.pt")

- The model is loaded once per worker process, not once per task: a
  worker-local cache (an attribute of distributed.get_worker(), keyed by the
  model path and the load options) keeps it for every later task there; the
  worker's `_fxcam_model_loads` counts the loads.
- Each task explains a chunk of files (one forward pass per `batch_size`)
  and writes one figure per image with fx_image_save, which writes a
  temporary file and renames it: a figure on the shared folder is whole or
  absent, never partial, even when a worker dies in the middle of a write.
- A worker that dies mid-task: the scheduler runs its tasks again on another
  worker (Dask's allowed-failures, default 3); `retries` re-runs a task that
  raised. Rewriting a figure is harmless (same bytes, atomic rename).
- A bad image is a row with status "error" and its message, never an
  exception; a problem of the whole run (a wrong layer, the device, a model
  that cannot be loaded) raises.
- libtorch gets `threads` CPU threads per worker (default 1): with one
  thread per Dask worker thread, N workers on N cores do not oversubscribe.

Output names are those of `fxcam batch` for the same folder
(<path below image_root without extension>_<method slug>.png, with the same
rule for names that clash), so the rows match its summary.csv.
"""
import math
import os
import threading

from . import image as _image
from ._arrays import as_input
from .batch import _peak
from .cam import compute, method_id, method_title
from .cam import model_view as cam_view
from .errors import DeviceError, FxError, LayerError, ModelError, NotAvailableError
from ._lib import lib

# Errors of the whole run (cli/batch.c is_fatal()): they raise.
_FATAL = (LayerError, DeviceError, NotAvailableError, ModelError)
_IMAGE_ERRORS = (FxError, ValueError, TypeError, OSError)
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
ROW_KEYS = ("file", "path", "status", "predicted_class", "confidence", "peak_x", "peak_y", "output", "message")

# Per process: the cache when no Dask worker runs the call (tests, a plain
# function call), and the lock that makes one load per key per process.
_local_state = {}
_load_lock = threading.Lock()


def _state_holder():
    """The current Dask worker (its attributes live as long as the worker
    process), or this module's dict outside a worker."""
    try:
        from distributed import get_worker
        return get_worker()
    except (ImportError, ValueError):
        return None


def _worker_model(model_path, load_options):
    """The model for (path, options), loaded at most once in this worker."""
    from .model import Model
    holder = _state_holder()
    key = (model_path, tuple(sorted(load_options.items())))
    with _load_lock:
        cache = _local_state.setdefault("models", {}) if holder is None else getattr(holder, "_fxcam_models", None)
        if cache is None:
            cache = {}
            holder._fxcam_models = cache
        if key not in cache:
            cache[key] = (Model(model_path, **load_options), threading.Lock())
            if holder is None:
                _local_state["loads"] = _local_state.get("loads", 0) + 1
            else:
                holder._fxcam_model_loads = getattr(holder, "_fxcam_model_loads", 0) + 1
        return cache[key]


def _is_image_name(name):
    return name.lower().endswith(_IMAGE_EXTENSIONS)


def _leveled_name(rel, whole_name, level, suffix):
    """cli/batch.c output_name(): level 0 '<stem><suffix>', 1
    '<stem>_<ext><suffix>', k >= 2 '<stem>_<ext>_<k><suffix>'."""
    base = rel.rsplit("/", 1)[-1]
    dot = -1 if whole_name else base.rfind(".")
    if dot > 0:
        stem, ext = rel[:len(rel) - len(base) + dot], base[dot + 1:]
    else:
        stem, ext = rel, ""
    if level == 0:
        return f"{stem}{suffix}"
    if level == 1:
        return f"{stem}_{ext}{suffix}"
    return f"{stem}_{ext}_{level}{suffix}"


def output_names(rels, suffix):
    """The output name (below the output folder) of each path below the image
    folder, as `fxcam batch` gives them (cli/batch.c assign_outputs(): within
    a clash the least changed name, then the exact '.png', then sorted order
    keeps the name; the others move on a level)."""
    slots = [{"rel": r, "whole": not _is_image_name(r), "level": 0} for r in rels]
    for s in slots:
        s["out"] = _leveled_name(s["rel"], s["whole"], 0, suffix)
    clash = True
    while clash:
        clash = False
        slots.sort(key=lambda s: (s["out"].encode(), s["level"], not s["rel"].endswith(".png"), s["rel"].encode()))
        i = 1
        while i < len(slots):
            if slots[i]["out"] != slots[i - 1]["out"]:
                i += 1
                continue
            j = i
            while j < len(slots) and slots[j]["out"] == slots[i - 1]["out"]:
                slots[j]["level"] = 1 if slots[j]["level"] == 0 else slots[j]["level"] + 1
                slots[j]["out"] = _leveled_name(slots[j]["rel"], slots[j]["whole"], slots[j]["level"], suffix)
                i = j
                j += 1
            clash = True
            i += 1
    by_rel = {s["rel"]: s["out"] for s in slots}
    return [by_rel[r] for r in rels]


def _row(rel, path, output):
    return {"file": rel, "path": path, "status": "error", "predicted_class": None, "confidence": None,
            "peak_x": None, "peak_y": None, "output": output, "message": ""}


def _finish(row, result, k, picture, title, figure_options):
    heatmap = result.heatmap(k)
    # the image as the model read it (its intensity rule), as the CLI draws it
    figure = _image.compose_figure(cam_view(result.model, picture), heatmap, label=result.predicted_name(k),
                                   confidence=result.confidence(k), method=title, layer=result.layer,
                                   **figure_options)
    os.makedirs(os.path.dirname(row["output"]) or ".", exist_ok=True)
    _image.save_image(row["output"], figure)  # fx_image_save: temporary file + rename
    x, y = _peak(heatmap)
    row.update(status="ok", predicted_class=result.predicted_name(k), confidence=float(result.confidence(k)),
               peak_x=int(x), peak_y=int(y))


def _fail(row, what, error):
    row.update(status="error", message=f"{what}: {error}")


def explain_chunk(items, model_path, load_options, method, layer_name, target_class, batch_size, figure_options):
    """One task: items are (file below the image folder, path, output path).
    Returns one row per item (dicts with ROW_KEYS), in order."""
    model, lock = _worker_model(model_path, load_options)
    title = method_title(lib.fx_cam_method_name(method_id(method)).decode())
    rows = [_row(*item) for item in items]
    loaded = []
    for row in rows:
        try:
            loaded.append((row, as_input(row["path"])))  # a file keeps its bits stored (fx_image_info)
        except _IMAGE_ERRORS as e:
            _fail(row, "cannot read the image", e)
    for first in range(0, len(loaded), batch_size):
        part = loaded[first:first + batch_size]
        try:
            with lock:
                result = compute(model, [p for _, p in part], (method,), layer_name, target_class, batch_size)
            results = [(result, k) for k in range(len(part))]
        except _FATAL:
            raise
        except _IMAGE_ERRORS:
            results = []  # one bad image fails the pass: each alone finds it
            for row, picture in part:
                try:
                    with lock:
                        results.append((compute(model, [picture], (method,), layer_name, target_class, 1), 0))
                except _FATAL:
                    raise
                except _IMAGE_ERRORS as e:
                    results.append((None, str(e)))
        for (row, picture), (result, k) in zip(part, results):
            if result is None:
                _fail(row, "cannot compute the heatmap", k)
                continue
            try:
                _finish(row, result, k, picture, title, figure_options)
            except _FATAL:
                raise
            except _IMAGE_ERRORS as e:
                _fail(row, "cannot draw or write the figure", e)
    for row in rows:
        if row["status"] != "ok":
            row["output"] = ""
    return rows


def _plan(paths, output_dir, image_root, method):
    paths = [os.path.abspath(os.fsdecode(p)) for p in paths]
    if not paths:
        raise ValueError("paths is empty")
    if image_root is None:
        image_root = os.path.commonpath([os.path.dirname(p) for p in paths])
    image_root = os.path.abspath(os.fsdecode(image_root))
    rels = []
    for p in paths:
        rel = os.path.relpath(p, image_root).replace(os.sep, "/")
        if rel.startswith("../") or rel == "..":
            raise ValueError(f"{p} is not inside image_root {image_root}")
        rels.append(rel)
    if len(set(rels)) != len(rels):
        raise ValueError("paths lists a file twice")
    slug = lib.fx_cam_method_find(method_id(method)).contents.slug.decode()
    names = output_names(rels, f"_{slug}.png")
    output_dir = os.path.abspath(os.fsdecode(output_dir))
    return [(rel, p, os.path.join(output_dir, name)) for rel, p, name in zip(rels, paths, names)]


def submit_files(client, paths, output_dir, model=None, *, image_root=None, method="gradcam", layer_name=None,
                 target_class=None, batch_size=8, chunk_size=None, threads=1, device="cpu", retries=2, alpha=0.4,
                 colormap="jet", threshold=0.0, panel_height=None):
    """Submits the tasks of explain_files() and returns their futures (one per
    chunk; each gives a list of rows). See explain_files()."""
    if model is not None and not isinstance(model, (str, bytes, os.PathLike)):
        raise TypeError("model must be the path of a TorchScript file every worker can read (or None for the "
                        "default model), not a loaded Model: each worker loads its own")
    model_path = None if model is None else os.path.abspath(os.fsdecode(model))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an int >= 0 (0 = all CPUs), got {threads!r}")
    items = _plan(paths, output_dir, image_root, method)
    figure_options = dict(alpha=alpha, colormap=colormap, threshold=threshold)
    if panel_height is not None:
        figure_options["panel_height"] = panel_height
    _image.figure_options(**figure_options)  # a bad option concerns every image: raise here, not on the workers
    if chunk_size is None:
        workers = max(1, sum(client.nthreads().values()))
        chunk_size = max(1, min(batch_size, math.ceil(len(items) / (4 * workers))))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    load_options = {"device": device, "threads": threads}
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    return [client.submit(explain_chunk, chunk, model_path, load_options, method, layer_name, target_class,
                          batch_size, figure_options, retries=retries, pure=False) for chunk in chunks]


def explain_files(client, paths, output_dir, model=None, *, as_frame=None, **options):
    """Explains image files on the workers of a distributed.Client.

    paths: image files (PNG, JPEG, DICOM) on storage every worker can read.
    output_dir: folder on shared storage for the figures (created as needed).
    model: path of a TorchScript model every worker can read; None = the
    default model (fxcam.default_model_path() on each worker).
    Options: image_root (the folder the output names are relative to;
    default: the common folder of paths), method, layer_name, target_class,
    batch_size (images per forward pass, default 8), chunk_size (images per
    task; default: enough tasks to keep every worker thread busy), threads
    (libtorch threads per worker, default 1), device ("cpu"), retries (of a
    task that raised, default 2), alpha, colormap, threshold, panel_height.

    Returns one row per path, in the order of paths: dicts with ROW_KEYS
    (file below image_root, path, status "ok"/"error", predicted_class,
    confidence, peak_x, peak_y, output path, message), or a pandas DataFrame
    of them when pandas is installed and as_frame is not False."""
    futures = submit_files(client, paths, output_dir, model, **options)
    rows = [row for chunk in client.gather(futures) for row in chunk]
    if as_frame is not False:
        try:
            import pandas
        except ImportError:
            if as_frame:
                raise
        else:
            return pandas.DataFrame(rows, columns=ROW_KEYS)
    return rows


def model_loads(client):
    """{worker address: number of model loads in that worker process}."""
    return client.run(lambda dask_worker: getattr(dask_worker, "_fxcam_model_loads", 0))
