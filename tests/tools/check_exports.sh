#!/bin/sh
# Fails unless every dynamic symbol that libfxcam defines starts with "fx_"
# (and none with the internal prefix "fx__"), and the public API is present.
set -eu
lib="$1"
defined=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$defined" ] || { echo "not ok: no symbols exported from $lib"; exit 1; }
bad=$(printf '%s\n' "$defined" | grep -v '^fx_' | grep -v '^FXCAM_' || true)
internal=$(printf '%s\n' "$defined" | grep '^fx__' || true)
if [ -n "$bad$internal" ]; then
    echo "not ok: symbols outside the public fx_ namespace exported from $lib:"
    printf '%s\n' $bad $internal
    exit 1
fi
for must in fx_version fx_status_str fx_last_error fx_image_alloc fx_image_free; do
    printf '%s\n' "$defined" | grep -qx "$must" || { echo "not ok: $must missing from $lib"; exit 1; }
done
echo "ok: $(printf '%s\n' "$defined" | wc -l) symbols, all fx_*"
