#!/usr/bin/python3
"""Regenerates lib/colormap_tables.c from OpenCV's applyColorMap.

Usage (from the repository root, with Debian's python3-opencv):
    /usr/bin/python3 tools/gen_colormaps.py [lib/colormap_tables.c]

Every COLORMAP_* constant of the installed OpenCV (4.6: 22 maps, numbered
0..21) becomes an entry whose id is OpenCV's own number and whose name is the
constant's suffix in lower case ("COLORMAP_TWILIGHT_SHIFTED" ->
"twilight_shifted"). Each map is applied to the ramp 0..255; OpenCV returns
BGR, the tables are stored RGB (the order of every color in fxcam). OpenCV has
no gray colormap: FX_COLORMAP_GRAY (fxcam's own, numbered outside OpenCV's
range) is the identity ramp and comes last.

The generated file checks at compile time that each FX_COLORMAP_* value of
include/fxcam.h equals OpenCV's number, so a header that drifts from OpenCV
does not build.
"""
import pathlib
import sys

import cv2
import numpy as np

# fxcam's own map, not in OpenCV: (name, FX_COLORMAP_* value in fxcam.h).
FX_GRAY = ("gray", 100)


def opencv_colormaps():
    """(name, OpenCV number) of every COLORMAP_* constant, by number."""
    maps = [(n[len("COLORMAP_"):].lower(), getattr(cv2, n)) for n in dir(cv2) if n.startswith("COLORMAP_")]
    maps.sort(key=lambda m: m[1])
    numbers = [value for _, value in maps]
    if numbers != list(range(len(numbers))):
        sys.exit("gen_colormaps.py: OpenCV's colormap numbers are not 0..N-1: %r" % (maps,))
    return maps


def rgb_table(number):
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 256)
    if number is None:
        return np.repeat(ramp.reshape(256, 1), 3, axis=1)
    bgr = cv2.applyColorMap(ramp, number).reshape(256, 3)
    return bgr[:, ::-1]


def c_rows(table):
    lines = []
    for start in range(0, 256, 4):
        entries = ", ".join("%3d, %3d, %3d" % tuple(int(v) for v in table[i]) for i in range(start, start + 4))
        lines.append("        %s," % entries)
    return "\n".join(lines)


def render():
    entries = [(name, number, number) for name, number in opencv_colormaps()]
    entries.append((FX_GRAY[0], FX_GRAY[1], None))
    parts = [
        "/* GENERATED DATA, do not edit: written by tools/gen_colormaps.py from\n"
        " * OpenCV %s (cv2.applyColorMap on the ramp 0..255, BGR converted to RGB).\n"
        " * Ids are OpenCV's COLORMAP_* numbers; FX_COLORMAP_GRAY is fxcam's own\n"
        " * identity ramp (OpenCV has no gray map). Rerun the script to regenerate. */\n" % cv2.__version__,
        '#include "fx_internal.h"\n',
        "/* The FX_COLORMAP_* values of fxcam.h are OpenCV's numbers. */",
    ]
    for name, value, _ in entries:
        parts.append('_Static_assert(FX_COLORMAP_%s == %d, "FX_COLORMAP_%s must be %d");'
                     % (name.upper(), value, name.upper(), value))
    parts += [
        "",
        "/* Declared again in colormap.c, which reads them; entry i of each array",
        " * describes the same map, in enumeration order (ascending ids). */",
        "extern const uint32_t fx__colormap_entry_count;",
        "extern const int32_t fx__colormap_ids[];",
        "extern const char *const fx__colormap_names[];",
        "extern const uint8_t fx__colormap_tables[][256 * 3];\n",
        "const uint32_t fx__colormap_entry_count = %d;\n" % len(entries),
        "const int32_t fx__colormap_ids[%d] = {" % len(entries),
    ]
    parts += ["    FX_COLORMAP_%s," % name.upper() for name, _, _ in entries]
    parts += ["};\n", "const char *const fx__colormap_names[%d] = {" % len(entries)]
    parts += ['    "%s",' % name for name, _, _ in entries]
    parts += ["};\n", "const uint8_t fx__colormap_tables[%d][256 * 3] = {" % len(entries)]
    for name, _, number in entries:
        source = "cv2.COLORMAP_%s" % name.upper() if number is not None else "identity ramp"
        parts.append("    { /* FX_COLORMAP_%s: %s */" % (name.upper(), source))
        parts.append(c_rows(rgb_table(number)))
        parts.append("    },")
    parts.append("};\n")
    return "\n".join(parts)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "lib/colormap_tables.c")
    out.write_text(render())


if __name__ == "__main__":
    main()
