#!/usr/bin/python3
"""PNG speed: fxcam's writer and reader (fx_image_save / fx_image_load over
the Python binding) against OpenCV's cv2.imwrite / cv2.imread, on figures
fxcam wrote (docs/performance.md, "PNG").

    FXCAM_LIBRARY=build/lib/libfxcam.so PYTHONPATH=python \\
        /usr/bin/python3 bench/png_speed.py [--reps 5] FIGURE.png...

For each file: MB/s of raw pixels (width x height x channels bytes) for
encoding and decoding, best of REPS, and the encoded size. Writes go to
/dev/shm (memory), so the disk does not count. fxcam's write is its atomic
write (temporary file, rename) as fxcam batch does it; levels 1 and 3 are
fx_save_options.compression_level; cv2 is run with no parameters (its
default), IMWRITE_PNG_COMPRESSION 1 and 3.
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np

import fxcam


def best_time(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("figures", nargs="+")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    totals = {}
    for path in args.figures:
        rgb = np.ascontiguousarray(fxcam.load_image(path))
        raw = rgb.nbytes / 1e6
        if rgb.ndim != 3 or rgb.dtype != np.uint8:
            # an input (16-bit gray radiograph): reading only, as fxcam batch does
            t_fx = best_time(lambda: fxcam.load_image(path), args.reps)
            t_cv = best_time(lambda: cv2.imread(path, cv2.IMREAD_UNCHANGED), args.reps)
            print("%s: %s %s, %.2f MB raw, %d bytes: decode fxcam %.1f MB/s, cv2 %.1f MB/s"
                  % (os.path.basename(path), "x".join(map(str, rgb.shape)), rgb.dtype, raw,
                     os.path.getsize(path), raw / t_fx, raw / t_cv))
            t = totals.setdefault("inputs (decode only)", [0.0, 0, 0.0, 0.0, 0.0])
            t[1] += os.path.getsize(path)
            t[2] += t_fx
            t[3] += t_cv
            t[4] += raw
            continue
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        print("%s: %dx%d, %.2f MB raw" % (os.path.basename(path), rgb.shape[1], rgb.shape[0], raw))
        writers = [
            ("fxcam level 1 (default)", lambda out: fxcam.save_image(out, rgb, compression_level=1)),
            ("fxcam level 3", lambda out: fxcam.save_image(out, rgb, compression_level=3)),
            ("cv2 default", lambda out: cv2.imwrite(out, bgr)),
            ("cv2 compression 1", lambda out: cv2.imwrite(out, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])),
            ("cv2 compression 3", lambda out: cv2.imwrite(out, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])),
        ]
        for name, write in writers:
            out = os.path.join(tmp, "out.png")
            t_enc = best_time(lambda: write(out), args.reps)
            size = os.path.getsize(out)
            t_fx = best_time(lambda: fxcam.load_image(out), args.reps)
            t_cv = best_time(lambda: cv2.imread(out, cv2.IMREAD_UNCHANGED), args.reps)
            back = fxcam.load_image(out)
            assert np.array_equal(back, rgb), "%s did not round-trip" % name
            print("  %-24s encode %6.1f MB/s  %9d bytes  decode: fxcam %6.1f MB/s, cv2 %6.1f MB/s"
                  % (name, raw / t_enc, size, raw / t_fx, raw / t_cv))
            t = totals.setdefault(name, [0.0, 0, 0.0, 0.0, 0.0])
            t[0] += t_enc
            t[1] += size
            t[2] += t_fx
            t[3] += t_cv
            t[4] += raw
    print("all files:")
    for name, (t_enc, size, t_fx, t_cv, raw) in totals.items():
        encode = "encode %6.1f MB/s" % (raw / t_enc) if t_enc else "encode      -     "
        print("  %-24s %s  %9d bytes  decode: fxcam %6.1f MB/s, cv2 %6.1f MB/s"
              % (name, encode, size, raw / t_fx, raw / t_cv))
    if os.path.exists(os.path.join(tmp, "out.png")):
        os.remove(os.path.join(tmp, "out.png"))
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
