#!/bin/sh
# Engine benchmark (docs/performance.md): Grad-CAM against a plain no-grad
# forward of the same TorchScript model, on this machine's CPUs.
#   bench/run_bench.sh [BUILD_DIR] [REPS]
# BUILD_DIR: a meson build configured with -Dtorch=enabled (default: build).
set -eu
build=${1:-build}
reps=${2:-15}
ninja -C "$build" bench/bench_engine bench/plain_forward >/dev/null
work=$build/bench
/usr/bin/python3 - "$work" <<'PY'
import json, os, sys
import torch, torchvision
out = sys.argv[1]
for name, ctor in (("densenet121", torchvision.models.densenet121), ("resnet50", torchvision.models.resnet50)):
    path = f"{out}/{name}.pt"
    if os.path.exists(path):
        continue
    torch.manual_seed(0)
    m = ctor(num_classes=2).eval()
    with torch.no_grad():
        t = torch.jit.trace(m, torch.zeros(1, 3, 224, 224))
    torch.jit.save(t, path, _extra_files={"fxcam.json": json.dumps({"input_size": [224, 224]})})
PY
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in densenet121 resnet50; do
  for batch in 1 8; do
    echo "## $model, 224x224, batch $batch"
    # fxcam's modes, interleaved in one process
    "$work/bench_engine" "$work/$model.pt" "$batch" "$reps"
    # the baseline without fxcam: plain libtorch, default executor settings
    "$build/bench/plain_forward" "$work/$model.pt" "$batch" "$reps"
    "$build/bench/plain_forward" "$work/$model.pt" "$batch" "$reps" noopt
    # peak RSS, one process per mode
    for mode in load forward gradcam gradcampp both; do
      "$work/bench_engine" "$work/$model.pt" "$batch" 2 "$mode"
    done
  done
done
# The allocator: glibc gives large freed blocks back to the kernel, so every
# pass page-faults its activations anew. The same runs with them kept in the
# heap (what the fxcam program sets for itself; docs/performance.md).
tuned="MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824"
for model in densenet121 resnet50; do
  echo "## $model, 224x224, batch 8, $tuned"
  env $tuned "$work/bench_engine" "$work/$model.pt" 8 "$reps"
  env $tuned "$build/bench/plain_forward" "$work/$model.pt" 8 "$reps"
  env $tuned "$build/bench/plain_forward" "$work/$model.pt" 8 "$reps" noopt
done
