#!/bin/sh
# Gradient-free methods benchmark (docs/performance.md, "Gradient-free
# methods"): random-init torchvision DenseNet-121, 2 classes, traced, 224x224,
# one image, CPU.
#   bench/run_methods.sh [BUILD_DIR] [REPS]
# BUILD_DIR: a meson build configured with -Dtorch=enabled (default: build).
# REPS: Score-CAM runs per channel batch (each between two baselines; default
# 1: one Score-CAM of DenseNet-121 is 1024 masked forwards, minutes on 2 CPUs).
set -eu
build=${1:-build}
reps=${2:-1}
ninja -C "$build" bench/bench_methods >/dev/null
work=$build/bench
mkdir -p "$work"
/usr/bin/python3 - "$work" <<'PY'
import json, os, sys
import torch, torchvision
path = f"{sys.argv[1]}/densenet121.pt"
if not os.path.exists(path):
    torch.manual_seed(0)
    m = torchvision.models.densenet121(num_classes=2).eval()
    with torch.no_grad():
        t = torch.jit.trace(m, torch.zeros(1, 3, 224, 224))
    torch.jit.save(t, path, _extra_files={"fxcam.json": json.dumps({"input_size": [224, 224]})})
PY
model=$work/densenet121.pt
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/bench_methods" "$model" eigencam 15
for batch in 32 64; do
  "$work/bench_methods" "$model" scorecam "$batch" "$reps"
done
# peak RSS, one process per case: Score-CAM against one plain forward of its batch
for batch in 16 32 64; do
  "$work/bench_methods" "$model" rss "$batch" scorecam
  "$work/bench_methods" "$model" rss "$batch" forward
done
echo "# end $(date -u +%Y-%m-%dT%H:%M:%SZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
