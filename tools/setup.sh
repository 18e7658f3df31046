#!/usr/bin/env bash
# Installs what fxcam needs to build and test, from Debian 12's packages.
# Safe to run again: it only calls apt-get when something is missing.
set -euo pipefail

packages=(
  meson ninja-build pkgconf gcc g++ cmake
  libpng-dev zlib1g-dev libcmocka-dev
  libjpeg62-turbo-dev libdcmtk-dev  # JPEG and DICOM input (features jpeg, dicom)
  octave-dicom python3-pydicom  # real DICOM test files used in place, pydicom reference (test_dicom)
  libtorch-dev nlohmann-json3-dev
  clang libclang-rt-14-dev  # libFuzzer targets (tests/fuzz/run.sh)
  python3-torch python3-torchvision python3-numpy python3-opencv python3-pil python3-pytest
  libmicrohttpd-dev  # fxcam serve
  chromium chromium-driver python3-selenium  # the page's browser test (tests/serve)
  python3-distributed  # fxcam.dask and its LocalCluster test (tests/scale)
)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
