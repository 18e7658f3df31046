#!/bin/sh
# Steadiness under load (docs/performance.md): `fxcam batch` on an idle CPU
# and beside one CPU-bound busy loop, in one run, for fxcam's own OpenMP
# setting (OMP_WAIT_POLICY=PASSIVE, set by the program) and for libgomp's
# default (GOMP_SPINCOUNT=300000, which stops fxcam from changing it).
#   bench/load_steadiness.sh [BUILD_DIR] [IMAGES] [REPS]
# Inputs: the bundled 256x256 samples, copied up to IMAGES files; embedded
# model, batch size 8. Prints each wall time and loaded/idle per setting
# (median of REPS runs each, alternating).
set -eu
build=${1:-build}
count=${2:-32}
reps=${3:-3}
fxcam=$build/cli/fxcam
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
busy=
cleanup() { [ -z "$busy" ] || kill "$busy" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir "$work/in"
i=0
while [ "$i" -lt "$count" ]; do
  for f in "$root"/models/samples/*.png; do
    [ "$i" -lt "$count" ] || break
    cp "$f" "$work/in/img_$i.png"
    i=$((i + 1))
  done
done

# seconds of one batch run with the given environment assignments
one_run() {
  rm -rf "$work/out"
  t0=$(date +%s.%N)
  env "$@" "$fxcam" batch --image-dir "$work/in" --output-dir "$work/out" --batch-size 8 >/dev/null 2>&1 || {
    echo "fxcam batch failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}

median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)  $count images 256x256"
for setting in "fxcam (PASSIVE)" "libgomp default"; do
  case $setting in
    fxcam*) envs="FXCAM_BENCH=1" ;;
    *) envs="GOMP_SPINCOUNT=300000" ;;
  esac
  idle="" loaded=""
  r=0
  while [ "$r" -lt "$reps" ]; do
    idle="$idle $(one_run $envs)"
    timeout 120 sh -c 'while :; do :; done' &
    busy=$!
    loaded="$loaded $(one_run $envs)"
    kill "$busy" 2>/dev/null || true
    wait "$busy" 2>/dev/null || true
    busy=
    r=$((r + 1))
  done
  mi=$(echo $idle | median)
  ml=$(echo $loaded | median)
  echo "$setting: idle s:$idle  loaded s:$loaded  median $mi -> $ml  loaded/idle $(echo "$ml $mi" | awk '{printf "%.2f", $1 / $2}')"
done
