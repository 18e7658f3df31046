"""The ctypes declarations against include/fxcam.h (every function declared,
struct layouts equal to the C compiler's), library lookup and version check."""
import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import PYTHON_DIR, SOURCE_ROOT

HEADER = os.path.join(SOURCE_ROOT, "include", "fxcam.h")


def header_functions():
    text = open(HEADER).read()
    return set(re.findall(r"FX_API\s+[^;(]*?\b(fx_\w+)\s*\(", text))


def test_every_public_function_has_a_prototype():
    from fxcam import _lib
    declared = header_functions()
    assert len(declared) >= 50
    assert declared - set(_lib.PROTOTYPES) == set(), "functions of fxcam.h without argtypes/restype"
    assert set(_lib.PROTOTYPES) - declared <= _lib.OPTIONAL
    for name in declared:
        if name in _lib.OPTIONAL and not _lib.has(name):
            continue  # an older library; the bindings do without it
        fn = getattr(_lib.lib, name)
        restype, argtypes = _lib.PROTOTYPES[name]
        assert fn.restype is restype and fn.argtypes == argtypes, name


STRUCTS = {
    "fx_image": ("FxImage", ["data", "stride", "width", "height", "channels", "pixel_type"]),
    "fx_image_info": ("ImageInfo", ["struct_size", "bits_stored", "significant_bits", "format"]),
    "fx_load_options": ("LoadOptions", ["struct_size", "max_width", "max_height", "max_pixels", "frame", "info"]),
    "fx_intensity": ("Intensity", ["struct_size", "mode", "bits_stored", "window_center", "window_width"]),
    "fx_save_options": ("SaveOptions", ["struct_size", "compression_level"]),
    "fx_overlay_options": ("OverlayOptions", ["struct_size", "alpha", "colormap", "threshold"]),
    "fx_figure_options": ("FigureOptions", ["struct_size", "label", "confidence", "method", "layer", "timestamp",
                                            "alpha", "colormap", "threshold", "panel_height", "source",
                                            "saliency"]),
    "fx_model_options": ("ModelOptions", ["struct_size", "device", "threads", "input_width", "input_height",
                                          "input_channels", "mean", "std", "mean_count", "std_count",
                                          "output_kind", "strict", "intensity", "bits_stored", "window_center",
                                          "window_width", "resize_mode", "resize_size", "class_names",
                                          "class_name_count"]),
    "fx_layer_info": ("LayerInfoC", ["struct_size", "name", "type", "rank", "shape", "is_feature_map"]),
    "fx_cam_method_info": ("CamMethodInfo", ["struct_size", "id", "name", "aliases", "title", "slug", "description",
                                             "reference", "needs"]),
    "fx_gradcam_options": ("GradcamOptions", ["struct_size", "layer", "target_class", "methods", "method_count",
                                              "batch_size", "keep_raw", "image_info", "channel_batch_size",
                                              "progress", "progress_user", "target_classes", "class_weights",
                                              "class_weight_count", "smooth_samples", "smooth_noise",
                                              "smooth_seed", "aug_smooth", "eigen_smooth", "layers",
                                              "layer_count"]),
    "fx_faithfulness_options": ("FaithfulnessOptions", ["struct_size", "steps", "deletion_baseline", "blur_sigma",
                                                        "road_steps", "road_noise", "seed", "batch_size"]),
    "fx_faithfulness": ("Faithfulness", ["struct_size", "score", "explanation_score", "average_drop", "increase",
                                         "deletion_auc", "insertion_auc", "road_morf", "road_lerf"]),
    "fx_faithfulness_summary": ("FaithfulnessSummary", ["struct_size", "images", "average_drop",
                                                        "increase_in_confidence", "deletion_auc", "insertion_auc",
                                                        "road_morf", "road_lerf"]),
}


def test_struct_layouts_match_the_compiler(tmp_path):
    from fxcam import _lib
    build_dir = os.path.dirname(os.path.realpath(_lib.path))  # holds the generated fxcam_version.h
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "fxcam.h"', "int main(void) {"]
    for cname, (_, fields) in STRUCTS.items():
        lines.append(f'printf("{cname} size %zu\\n", sizeof({cname}));')
        for f in fields:
            lines.append(f'printf("{cname} {f} %zu\\n", offsetof({cname}, {f}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to check the struct layouts"
    subprocess.run([cc, "-std=c99", "-I", os.path.join(SOURCE_ROOT, "include"), "-I", build_dir, str(src), "-o",
                    str(exe)], check=True)
    measured = dict(line.rsplit(" ", 1) for line in subprocess.run([str(exe)], capture_output=True, text=True,
                                                                   check=True).stdout.splitlines())
    for cname, (pyname, fields) in STRUCTS.items():
        cls = getattr(_lib, pyname)
        assert [f[0] for f in cls._fields_] == fields, cname
        assert int(measured[f"{cname} size"]) == ctypes.sizeof(cls), cname
        for f in fields:
            assert int(measured[f"{cname} {f}"]) == getattr(cls, f).offset, f"{cname}.{f}"


def header_defines(prefix):
    """{NAME: value} of the header's integer #defines starting with prefix."""
    text = open(HEADER).read()
    return {m.group(1): int(m.group(2)) for m in re.finditer(rf"#define\s+({prefix}\w+)\s+(-?\d+)", text)}


def test_constants_match_the_header():
    """The few pinned values the bindings mirror equal fxcam.h's."""
    import fxcam
    from fxcam import _lib
    warn = header_defines("FX_WARN_")
    assert warn, "fxcam.h declares no FX_WARN_* codes"
    for name, value in warn.items():
        assert getattr(fxcam, name[3:]) == value, name
    output = header_defines("FX_OUTPUT_")
    assert (output["FX_OUTPUT_AUTO"], output["FX_OUTPUT_LOGITS"], output["FX_OUTPUT_PROBABILITIES"]) == \
        (_lib.OUTPUT_AUTO, _lib.OUTPUT_LOGITS, _lib.OUTPUT_PROBABILITIES)
    from fxcam.model import OUTPUT_KINDS
    assert OUTPUT_KINDS == {"auto": output["FX_OUTPUT_AUTO"], "logits": output["FX_OUTPUT_LOGITS"],
                            "probabilities": output["FX_OUTPUT_PROBABILITIES"]}
    pixel = header_defines("FX_PIXEL_")
    assert (pixel["FX_PIXEL_U8"], pixel["FX_PIXEL_U16"], pixel["FX_PIXEL_F32"]) == \
        (_lib.PIXEL_U8, _lib.PIXEL_U16, _lib.PIXEL_F32)
    needs = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define\s+(FX_CAM_NEEDS_\w+)\s+(\d+)u", open(HEADER).read())}
    assert needs == {"FX_CAM_NEEDS_GRADIENTS": _lib.CAM_NEEDS_GRADIENTS,
                     "FX_CAM_NEEDS_EXTRA_FORWARDS": _lib.CAM_NEEDS_EXTRA_FORWARDS,
                     "FX_CAM_NEEDS_INPUT_GRADIENTS": _lib.CAM_NEEDS_INPUT_GRADIENTS}


def test_methods_come_from_the_registry():
    """method_names()/methods() are the library's registry, and every name, alias and title round-trips."""
    import fxcam
    from fxcam import _lib
    registry = [_lib.lib.fx_cam_method_at(i).contents for i in range(_lib.lib.fx_cam_method_count())]
    assert fxcam.method_names() == [m.name.decode() for m in registry]
    assert len(registry) == header_defines("FX_CAM_METHOD_COUN")["FX_CAM_METHOD_COUNT"]
    for entry, m in zip(registry, fxcam.methods()):
        assert m["id"] == entry.id and m["title"] == entry.title.decode() == fxcam.method_title(m["name"])
        for alias in m["aliases"]:
            assert fxcam.cam.method_id(alias) == m["id"]
    with pytest.raises(fxcam.InvalidArgumentError) as e:
        fxcam.cam.method_id("scorecam-not-yet")
    for name in fxcam.method_names():
        assert name in e.value.message


def run_python(code, env_update, cwd=None):
    env = dict(os.environ)
    env.pop("FXCAM_LIBRARY", None)
    env.update(env_update)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)


def test_missing_library_lists_where_it_looked(tmp_path):
    r = run_python("import fxcam", {"FXCAM_LIBRARY": str(tmp_path / "nope.so"), "PYTHONPATH": PYTHON_DIR})
    assert r.returncode != 0
    assert "cannot load libfxcam; looked in" in r.stderr
    assert "FXCAM_LIBRARY: " + str(tmp_path / "nope.so") + " (no such file)" in r.stderr
    not_a_lib = tmp_path / "libfake.so"
    not_a_lib.write_text("text")
    r = run_python("import fxcam", {"FXCAM_LIBRARY": str(not_a_lib), "PYTHONPATH": PYTHON_DIR})
    assert r.returncode != 0 and "libfake.so" in r.stderr and "Set FXCAM_LIBRARY" in r.stderr


def test_library_next_to_the_package(tmp_path):
    from fxcam import _lib
    pkg = tmp_path / "site" / "fxcam"
    shutil.copytree(os.path.join(PYTHON_DIR, "fxcam"), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.realpath(_lib.path), pkg / "libfxcam.so.0")
    r = run_python("import fxcam; print(fxcam.library_path); print(fxcam.library_version())",
                   {"PYTHONPATH": str(tmp_path / "site")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(pkg / "libfxcam.so.0"), "0.1.0"]


def test_install_paths_are_relative_to_the_package(tmp_path):
    """A DESTDIR install: _install_paths records /usr/local, the package lies
    under a staging folder, the library is found relative to it."""
    from fxcam import _lib
    root = tmp_path / "stage" / "usr" / "local"
    pkg = root / "lib" / "python3" / "dist-packages" / "fxcam"
    shutil.copytree(os.path.join(PYTHON_DIR, "fxcam"), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "_install_paths.py").write_text(
        'PYTHONDIR = "/usr/local/lib/python3/dist-packages"\nLIBDIR = "/usr/local/lib/x86_64-linux-gnu"\n'
        'DATADIR = "/usr/local/share"\n')
    libdir = root / "lib" / "x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    shutil.copy(os.path.realpath(_lib.path), libdir / "libfxcam.so.0")
    r = run_python("import fxcam; print(fxcam.library_path); print(fxcam.default_model_candidates()[1:3])",
                   {"PYTHONPATH": str(pkg.parent), "FXCAM_MODEL": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(libdir / "libfxcam.so.0")
    assert str(root / "share" / "fxcam" / "fracture_densenet.pt") in r.stdout


def test_version_check_refuses_other_majors():
    from fxcam import _lib

    class Fake:
        def __init__(self, number):
            self.number = number

        def fx_version(self):
            return self.number

    assert _lib._check_version(Fake(102), "x") == (0, 1, 2)
    with pytest.raises(ImportError, match="version 1.0.0; these bindings need 0.x"):
        _lib._check_version(Fake(10000), "x")
    with pytest.raises(ImportError, match="at least 0.1.0"):
        _lib._check_version(Fake(9), "x")


def test_engine_availability(tmp_path):
    """Without libtorch the library says so; with it, a junk file is a format error."""
    import fxcam
    from conftest import HAS_TORCH_ENGINE
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk" * 64)
    expected = fxcam.FormatError if HAS_TORCH_ENGINE else fxcam.NotAvailableError
    with pytest.raises(expected) as err:
        fxcam.Model(junk)
    assert err.value.message
