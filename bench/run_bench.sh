#!/bin/sh
# Engine benchmark: Grad-CAM against a plain no-grad forward of the same
# TorchScript model, on this machine's CPUs (docs/performance.md).
#   bench/run_bench.sh BUILD_DIR [REPS]
# BUILD_DIR: a meson build configured with -Dtorch=enabled (Debian libtorch).
set -eu
build=$1
reps=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
work=$build/bench
mkdir -p "$work"
/usr/bin/python3 - "$work" <<'PY'
import sys, json, torch, torchvision
out = sys.argv[1]
for name, ctor in (("densenet121", torchvision.models.densenet121), ("resnet50", torchvision.models.resnet50)):
    torch.manual_seed(0)
    m = ctor(num_classes=2).eval()
    with torch.no_grad():
        t = torch.jit.trace(m, torch.zeros(1, 3, 224, 224))
    torch.jit.save(t, f"{out}/{name}.pt", _extra_files={"fxcam.json": json.dumps({"input_size": [224, 224]})})
PY
gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$here/../include" -I"$here/../lib" -I"$build" \
    -c "$here/bench_engine.c" -o "$work/bench_engine.o"
g++ -o "$work/bench_engine" "$work/bench_engine.o" "$build/shim/libfxcam_internal.a" \
    -ltorch -ltorch_cpu -lc10 -lpng -lm -lpthread
for model in densenet121 resnet50; do
  for batch in 1 8; do
    for mode in forward gradcam gradcampp both; do
      printf '%s ' "$model"
      "$work/bench_engine" "$work/$model.pt" "$mode" "$batch" "$reps"
    done
  done
done
