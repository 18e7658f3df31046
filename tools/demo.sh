#!/usr/bin/env bash
# Sets everything up, builds fxcam and runs the main job on the embedded
# default: the embedded fracture model on the bundled sample radiographs,
# figures written into ./fxcam-demo/ (of the directory you run it from).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/tools/setup.sh"
(cd "$here" && { [ -d build ] || meson setup build -Dtorch=enabled; } && ninja -C build)
"$here/build/cli/fxcam" demo
