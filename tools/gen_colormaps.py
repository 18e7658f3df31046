#!/usr/bin/python3
"""Regenerates lib/colormap_tables.c from OpenCV's applyColorMap.

Usage (from the repository root, with Debian's python3-opencv):
    /usr/bin/python3 tools/gen_colormaps.py [lib/colormap_tables.c]

Each map is applied to the ramp 0..255; OpenCV returns BGR, the tables are
stored RGB (the order of every color in fxcam). OpenCV has no gray colormap:
FX_COLORMAP_GRAY is the identity ramp. The order of TABLES must follow the
FX_COLORMAP_* values pinned in include/fxcam.h.
"""
import pathlib
import sys

import cv2
import numpy as np

# (FX_COLORMAP_* name, OpenCV constant or None for the identity ramp)
TABLES = [
    ("JET", "COLORMAP_JET"),
    ("HOT", "COLORMAP_HOT"),
    ("VIRIDIS", "COLORMAP_VIRIDIS"),
    ("PLASMA", "COLORMAP_PLASMA"),
    ("INFERNO", "COLORMAP_INFERNO"),
    ("TURBO", "COLORMAP_TURBO"),
    ("MAGMA", "COLORMAP_MAGMA"),
    ("BONE", "COLORMAP_BONE"),
    ("GRAY", None),
]


def rgb_table(opencv_name):
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 256)
    if opencv_name is None:
        return np.repeat(ramp.reshape(256, 1), 3, axis=1)
    bgr = cv2.applyColorMap(ramp, getattr(cv2, opencv_name)).reshape(256, 3)
    return bgr[:, ::-1]


def c_rows(table):
    lines = []
    for start in range(0, 256, 4):
        entries = ", ".join("%3d, %3d, %3d" % tuple(int(v) for v in table[i]) for i in range(start, start + 4))
        lines.append("        %s," % entries)
    return "\n".join(lines)


def render():
    parts = [
        "/* GENERATED DATA, do not edit: written by tools/gen_colormaps.py from\n"
        " * OpenCV %s (cv2.applyColorMap on the ramp 0..255, BGR converted to RGB).\n"
        " * FX_COLORMAP_GRAY is the identity ramp (OpenCV has no gray map).\n"
        " * Rerun the script to regenerate. */\n" % cv2.__version__,
        '#include "fx_internal.h"\n',
        "/* Declared again in colormap.c, which reads the tables. */",
        "extern const uint8_t fx__colormap_tables[FX_COLORMAP_COUNT][256 * 3];\n",
        "const uint8_t fx__colormap_tables[FX_COLORMAP_COUNT][256 * 3] = {",
    ]
    for fx_name, opencv_name in TABLES:
        source = "cv2." + opencv_name if opencv_name else "identity ramp"
        parts.append("    [FX_COLORMAP_%s] = { /* %s */" % (fx_name, source))
        parts.append(c_rows(rgb_table(opencv_name)))
        parts.append("    },")
    parts.append("};\n")
    return "\n".join(parts)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "lib/colormap_tables.c")
    out.write_text(render())


if __name__ == "__main__":
    main()
