#!/bin/sh
# fxcam batch against the pytorch-grad-cam-style baseline (bench/baseline_gradcam.py)
# on the same folders, alternately in one run (docs/performance.md).
#   bench/compare_batch.sh [BUILD_DIR] [IMAGES] [REPS] [IO_THREADS]
# Makes IMAGES 16-bit radiographs at 256x256 (models/synth_radiograph.py) and
# the same upscaled to 2048x2048 (cv2.resize, cubic), exports one random
# DenseNet-121 (2 classes) as eager weights and as a traced model, and for
# each size runs baseline, fxcam, baseline, fxcam, ... (REPS each), batch 8,
# one Grad-CAM figure per image with panels 512 px high (--panel-height 512,
# as the baseline). Times are whole processes (imports, model
# load, every file written); the ratio is of the medians.
set -eu
build=${1:-build}
count=${2:-32}
reps=${3:-2}
io=${4:-1}
fxcam=$build/cli/fxcam
py=/usr/bin/python3
root=$(cd "$(dirname "$0")/.." && pwd)
work=${FXCAM_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
[ -f "$work/densenet121.pt" ] || $py "$root/bench/baseline_gradcam.py" export "$work"
[ -d "$work/in2048" ] || $py - "$root" "$work" "$count" <<'PY'
import os, sys
import cv2, numpy as np
root, work, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, os.path.join(root, "models"))
import synth_radiograph
for size in (256, 2048):
    os.makedirs(os.path.join(work, "in%d" % size), exist_ok=True)
for i in range(count):
    image, _, _ = synth_radiograph.generate(i, seed=3, size=256)
    big = cv2.resize(image.astype(np.float32), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big * 16.0 + np.random.default_rng(i).normal(0, 40, big.shape), 0, 65535).astype(np.uint16)
    cv2.imwrite(os.path.join(work, "in256", "r%03d.png" % i), (image.astype(np.uint32) * 16).astype(np.uint16))
    cv2.imwrite(os.path.join(work, "in2048", "r%03d.png" % i), big)
PY

seconds() {
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)  $count images, batch 8, --io-threads $io"
for size in 256 2048; do
  base="" fx=""
  r=0
  while [ "$r" -lt "$reps" ]; do
    rm -rf "$work/out_base" "$work/out_fx"
    base="$base $(seconds $py "$root/bench/baseline_gradcam.py" run "$work/densenet121.pth" "$work/in$size" "$work/out_base")"
    fx="$fx $(seconds "$fxcam" batch --model "$work/densenet121.pt" --image-dir "$work/in$size" \
                --output-dir "$work/out_fx" --batch-size 8 --panel-height 512 --io-threads "$io")"
    r=$((r + 1))
  done
  mb=$(echo $base | median)
  mf=$(echo $fx | median)
  echo "${size}x${size}: baseline s:$base  fxcam s:$fx  fxcam/baseline $(echo "$mf $mb" | awk '{printf "%.2f", $1 / $2}')"
done
[ -n "${FXCAM_BENCH_DIR:-}" ] || rm -rf "$work"
