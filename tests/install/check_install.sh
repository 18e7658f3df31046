#!/usr/bin/env bash
# meson install into a temporary DESTDIR, then build and run every example
# against that installation only (pkg-config with PKG_CONFIG_SYSROOT_DIR,
# CMake with CMAKE_PREFIX_PATH, Python with PYTHONPATH and no FXCAM_LIBRARY).
# Also checks that an example configured against a missing fxcam fails at
# configure time with a clear message.
#
# Usage: check_install.sh BUILD_DIR SOURCE_DIR HAS_TORCH PREFIX LIBDIR PYTHONDIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) has_torch=$3 prefix=$4 libdir=$5 pydir=$6
python=/usr/bin/python3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage
root=$stage$prefix
[[ $libdir = /* ]] && lib=$stage$libdir || lib=$root/$libdir
[[ $pydir = /* ]] || pydir=$prefix/$pydir
step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "meson install --destdir $stage"
meson install -C "$build" --destdir "$stage" --no-rebuild --quiet
for f in "$lib/libfxcam.so.0" "$lib/pkgconfig/fxcam.pc" "$lib/cmake/fxcam/fxcamConfig.cmake" \
         "$lib/cmake/fxcam/fxcamConfigVersion.cmake" "$root/include/fxcam.h" "$root/include/fxcam_version.h" \
         "$stage$pydir/fxcam/__init__.py" "$stage$pydir/fxcam/_install_paths.py" "$stage$pydir/fxcam/_export.py" \
         "$root/bin/fxcam-export"; do
  [ -e "$f" ] || fail "not installed: $f"
done
[ -x "$root/bin/fxcam-export" ] || fail "not executable: $root/bin/fxcam-export"

# Only the staged installation is visible: no source or build folder.
export PKG_CONFIG_LIBDIR=$lib/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=$stage
export LD_LIBRARY_PATH=$lib
unset FXCAM_LIBRARY FXCAM_MODEL PYTHONPATH || true
cflags=$(pkg-config --cflags --libs fxcam)
[[ $cflags == *"$stage"* ]] || fail "pkg-config does not point into the staged install: $cflags"

step "test inputs"
export PYTHONPATH=$stage$pydir PYTHONDONTWRITEBYTECODE=1
$python - "$tmp" <<'PY'
import sys, fxcam
assert fxcam.library_path.startswith(sys.argv[1]), fxcam.library_path
yy = [[(x * 7 + y * 3) % 256 for x in range(48)] for y in range(40)]
fxcam.save_image(sys.argv[1] + "/xray.png", yy)
fxcam.save_image(sys.argv[1] + "/xray16.png", [[v * 257 for v in row] for row in yy])
print("bindings from", fxcam.library_path)
PY
model=$tmp/model.pt
if [ "$has_torch" = 1 ]; then
  $python - "$model" <<'PY'
import json, sys, torch, torch.nn as nn
torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
meta = {"input_size": [32, 32], "channels": 1, "class_names": ["normal", "fracture"], "target_layer": "3"}
torch.jit.save(torch.jit.trace(m, torch.zeros(1, 1, 32, 32)), sys.argv[1], _extra_files={"fxcam.json": json.dumps(meta)})
PY
else
  echo "not a TorchScript model" > "$model"
fi

# Runs an example: with the engine it must succeed; without, it must stop
# with the library's FX_ERR_NOT_AVAILABLE message.
run_example() {
  local log=$tmp/run.log
  if "$@" >"$log" 2>&1; then
    cat "$log"
    [ "$has_torch" = 1 ] || fail "$1 succeeded without the engine"
  else
    cat "$log"
    [ "$has_torch" = 0 ] || fail "$1 failed"
    grep -q "FX_ERR_NOT_AVAILABLE" "$log" || fail "$1: no FX_ERR_NOT_AVAILABLE message"
  fi
}

if [ "$has_torch" = 1 ]; then
  step "fxcam-export (installed command, finds the installed fxcam/_export.py)"
  PATH=/usr/bin:$PATH "$root/bin/fxcam-export" "$model" "$tmp/exported.pt" --input-size 32 48 --channels 1 \
    --class-names normal fracture >/dev/null || fail "fxcam-export failed"
  $python - "$tmp/exported.pt" <<'PY'
import json, sys, torch
files = {"fxcam.json": ""}
torch.jit.load(sys.argv[1], _extra_files=files)
meta = json.loads(files["fxcam.json"])
assert meta["input_size"] == [32, 48] and meta["channels"] == 1, meta
assert meta["class_names"] == ["normal", "fracture"], meta
PY
fi

step "examples/c (meson + pkg-config)"
meson setup "$tmp/c" "$src/examples/c" >/dev/null
ninja -C "$tmp/c" >/dev/null
run_example "$tmp/c/gradcam" "$model" "$tmp/xray16.png" "$tmp/figure_c.png"

step "examples/cpp (meson + pkg-config)"
meson setup "$tmp/cpp" "$src/examples/cpp" >/dev/null
ninja -C "$tmp/cpp" >/dev/null
run_example "$tmp/cpp/overlay" "$model" "$tmp/overlay_cpp_" "$tmp/xray.png" "$tmp/xray16.png"

step "examples/cmake (find_package)"
cmake -S "$src/examples/cmake" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$root" >"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log"; fail "cmake configure"; }
grep -q "fxcam 0\." "$tmp/cmake.log" || fail "cmake did not report the fxcam version"
cmake --build "$tmp/cmake" >/dev/null
run_example "$tmp/cmake/layers" "$model"

step "examples/python"
run_example $python "$src/examples/python/gradcam_example.py" --model "$model" "$tmp/py" "$tmp/xray.png"
if [ "$has_torch" = 1 ]; then
  for f in figure_c.png overlay_cpp_0.png overlay_cpp_1.png py/xray_gradcam.png py/xray_gradcam++_overlay.png; do
    $python -c "import fxcam, sys; a = fxcam.load_image(sys.argv[1]); assert a.shape[2] == 3 and a.max() > 0" \
      "$tmp/$f" || fail "bad output $f"
  done
  $python "$src/examples/python/train_and_visualize.py" --epochs 1 --samples 64 --show 2 "$tmp/train"
  [ -f "$tmp/train/epoch_1.pt" ] && [ -f "$tmp/train/epoch_1/image_0001_gradcam.png" ] || fail "training example output"
fi

step "a missing fxcam fails at configure time"
expect_configure_failure() {  # name, expected text, command...
  local name=$1 text=$2
  shift 2
  if "$@" >"$tmp/neg.log" 2>&1; then fail "$name configured without fxcam"; fi
  grep -q "$text" "$tmp/neg.log" || { cat "$tmp/neg.log"; fail "$name: message lacks '$text'"; }
  echo "$name: failed as expected: $(grep -m1 "$text" "$tmp/neg.log")"
}
PKG_CONFIG_LIBDIR=$tmp/nowhere expect_configure_failure "examples/c" "fxcam was not found by pkg-config" \
  meson setup "$tmp/c-missing" "$src/examples/c"
PKG_CONFIG_LIBDIR=$tmp/nowhere expect_configure_failure "examples/cpp" "fxcam was not found by pkg-config" \
  meson setup "$tmp/cpp-missing" "$src/examples/cpp"
expect_configure_failure "examples/cmake (bogus prefix)" 'provided by "fxcam"' \
  cmake -S "$src/examples/cmake" -B "$tmp/cmake-missing" -DCMAKE_PREFIX_PATH="$tmp/nowhere" -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF -Dfxcam_DIR=fxcam_DIR-NOTFOUND -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY -DCMAKE_FIND_ROOT_PATH="$tmp/nowhere"
# A package file whose library was removed: our own message.
cp -a "$stage" "$tmp/broken"
rm -f "${lib/#$stage/$tmp/broken}"/libfxcam.so*
expect_configure_failure "examples/cmake (library removed)" "reinstall fxcam" \
  cmake -S "$src/examples/cmake" -B "$tmp/cmake-broken" -DCMAKE_PREFIX_PATH="$tmp/broken$prefix"
echo "install check: all examples built and ran against $root"
