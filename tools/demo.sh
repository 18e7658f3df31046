#!/usr/bin/env bash
# Sets everything up, builds fxcam and runs the main job on the embedded
# default: figures written into ./fxcam-demo/ (or the directory given).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$PWD/fxcam-demo}"
bash "$here/tools/setup.sh"
cd "$here"
[ -d build ] || meson setup build
ninja -C build
./build/examples/pipeline_demo "$out"
echo "demo: open the PNG files in $out"
