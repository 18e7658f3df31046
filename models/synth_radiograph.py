#!/usr/bin/python3
"""Synthetic long-bone radiographs with annotated fractures.

Each image is rendered from a small physical model: the attenuation of one or
two long bones (hollow cylinders: the projected path through the cortex makes
the bright edges, the medullary canal is darker) inside a soft-tissue limb,
turned into a transmitted intensity, corrupted by quantum noise, blurred by
the detector, and mapped to a display value with a random exposure (window,
gain, offset, gamma). About half of the images carry a fracture: a thin lucent
line across one bone, at a random angle to its axis, sometimes with a displaced
or angulated fragment, sometimes with a second fracture.

Values are 12-bit (0..4095) stored in a 16-bit PNG with an sBIT chunk of 12, as real radiographs are.
The same (seed, index) always gives the same image, box for box.

Any size: the scene is defined in physical units (mm on a FOV_MM field of
view, attenuation per mm, dose per mm^2; see the constants below), so --size
only sets how finely it is sampled. The image of (seed, index) at 2048 px,
downscaled with antialiasing to 256 px, equals the 256 px image within noise,
and its boxes are the 256 px boxes times 8 (within a pixel).

    /usr/bin/python3 models/synth_radiograph.py --out DIR --count N --seed S --size 256

writes DIR/synth_SSSS_NNNNN.png and DIR/boxes.csv with the columns
file,label,x0,y0,x1,y1 (label 0 = normal, 1 = fracture; one row per fracture
box, one row with an empty box per normal image; boxes are inclusive pixel
coordinates).
"""

import argparse
import csv
import math
import os
import struct
import sys
import zlib

import cv2
import numpy as np

MAX_VALUE = 4095  # 12-bit detector range
FRACTURE_PROBABILITY = 0.5

# Physical units. Every length below is in millimetres on the detector; the
# field of view is FOV_MM on a side whatever the pixel count, so a pixel is
# FOV_MM / size mm wide and pixel (i, j) samples the point
# ((j + 0.5) * pitch, (i + 0.5) * pitch). Attenuation coefficients are per mm
# and dose is photons per mm^2, so the image of one (seed, index) is the same
# scene at every size: only the sampling and the quantum noise per pixel differ
# (an image at 2048 px, averaged down to 256 px, matches the 256 px image within
# noise). FOV_MM = 256 makes one pixel of a 256 px image 1 mm.
FOV_MM = 256.0
BOX_PAD_MM = 4.0  # around the lucent line's extent across the bone
CORTEX_MU = 0.05  # per mm of cortical bone
MARROW_MU = 0.012  # per mm of medullary canal (before its texture)
SOFT_TISSUE_MU = 0.006  # per mm of soft tissue
TEXTURE_CELLS = 512  # the trabecular pattern is drawn on a fixed 0.5 mm grid, then resampled
TEXTURE_FINE_MM, TEXTURE_COARSE_MM = 0.8, 3.0  # band of the trabecular pattern
DOSE_LOG10 = (2.3, 3.6)  # log10 photons per mm^2 reaching the detector unattenuated
DETECTOR_BLUR_MM = (0.5, 1.1)  # Gaussian sigma of the detector's point spread


def _rng(seed, index, stream=0):
    """Independent stream per image, so an image never depends on its neighbours.
    Stream 0 draws the scene (every scalar and the coarse fields, the same
    draws at every size); stream 1 the trabecular texture (drawn on a fixed
    grid, also size-independent); stream 2 the quantum noise, whose count of
    draws depends on the pixel count."""
    key = [int(seed), int(index), 0x5F7AD] + ([stream] if stream else [])
    return np.random.default_rng(np.random.SeedSequence(key))


def _resample(field, size):
    """A field sampled on a cells x cells grid over the field of view, at size x
    size pixel centres (cv2's pixel-centre convention): area average when
    shrinking, bicubic when enlarging."""
    cells = field.shape[0]
    mode = cv2.INTER_AREA if size < cells else cv2.INTER_CUBIC
    return cv2.resize(field, (size, size), interpolation=mode)


def _smooth_field(rng, size, cells, amplitude):
    """Low-frequency random field (soft-tissue density, exposure unevenness)."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return 1.0 + amplitude * field / max(float(np.abs(coarse).max()), 1e-6)


def _trabecular_texture(rng, size):
    """Band-passed noise, zero mean, peak about 1: the trabecular pattern of
    marrow, drawn on the fixed TEXTURE_CELLS grid so every size shows the same
    pattern, scaled by its standard deviation (a peak-normalization would
    depend on the number of samples)."""
    cell_mm = FOV_MM / TEXTURE_CELLS
    white = rng.standard_normal((TEXTURE_CELLS, TEXTURE_CELLS)).astype(np.float32)
    band = cv2.GaussianBlur(white, (0, 0), TEXTURE_FINE_MM / cell_mm) - \
        cv2.GaussianBlur(white, (0, 0), TEXTURE_COARSE_MM / cell_mm)
    band = band / (4.5 * max(float(band.std()), 1e-6))
    return _resample(band, size)


class Bone:
    """A slightly curved, tapered hollow cylinder seen from the side.

    Coordinates along the axis (t) and across it (s) are in mm from the bone's
    centre point; curvature bends the axis as s = kappa * t^2 (kappa per mm).
    """

    def __init__(self, cx, cy, angle, radius, taper, inner_ratio, kappa, end_t):
        self.cx, self.cy = cx, cy
        self.ux, self.uy = math.cos(angle), math.sin(angle)
        self.radius, self.taper = radius, taper
        self.inner_ratio, self.kappa = inner_ratio, kappa
        self.end_t = end_t  # None: the bone runs out of the frame on both sides

    def local(self, x, y):
        dx, dy = x - self.cx, y - self.cy
        t = dx * self.ux + dy * self.uy
        s = -dx * self.uy + dy * self.ux
        return t, s - self.kappa * t * t

    def radii(self, t):
        outer = self.radius * (1.0 + self.taper * t / 128.0)  # taper: relative change per 128 mm
        inner = outer * self.inner_ratio
        if self.end_t is not None:
            # Metaphyseal flare over the last 45 mm towards the in-frame end, with a thinner cortex.
            flare = np.clip((t - (self.end_t - 45.0)) / 45.0, 0.0, 1.0)
            flare = flare * flare * (3.0 - 2.0 * flare)
            outer = outer * (1.0 + 0.55 * flare)
            inner = outer * (self.inner_ratio + (0.88 - self.inner_ratio) * flare)
        return outer, inner

    def paths(self, x, y):
        """Projected path lengths (mm) through cortex and marrow at each point."""
        t, s = self.local(x, y)
        outer, inner = self.radii(t)
        s2 = s * s
        through_outer = 2.0 * np.sqrt(np.maximum(outer * outer - s2, 0.0))
        through_inner = 2.0 * np.sqrt(np.maximum(inner * inner - s2, 0.0))
        if self.end_t is not None:
            # Rounded end: an ellipsoidal cap over the last 20 mm of the bone.
            cap = np.clip((t - (self.end_t - 20.0)) / 20.0, 0.0, 1.0)
            shrink = np.sqrt(np.maximum(1.0 - cap * cap, 0.0))
            through_outer = through_outer * shrink
            through_inner = through_inner * shrink
        return through_outer - through_inner, through_inner

    def axis_point(self, t):
        s = self.kappa * t * t
        return (self.cx + t * self.ux - s * self.uy, self.cy + t * self.uy + s * self.ux)

    def axis_normal(self, t):
        """Unit normal of the curved axis at t (the local 'across the bone')."""
        slope = 2.0 * self.kappa * t
        tx, ty = self.ux - slope * self.uy, self.uy + slope * self.ux
        norm = math.hypot(tx, ty)
        tx, ty = tx / norm, ty / norm
        return -ty, tx


def _random_bone(rng, main=None):
    """The main bone crosses the frame; a companion runs beside it (radius/ulna).
    Positions and sizes in mm, as fractions of the field of view."""
    if main is None:
        angle = rng.uniform(0.0, math.pi)
        cx = FOV_MM * rng.uniform(0.38, 0.62)
        cy = FOV_MM * rng.uniform(0.38, 0.62)
        radius = FOV_MM * rng.uniform(0.065, 0.10)
        end_t = FOV_MM * rng.uniform(0.32, 0.45) if rng.random() < 0.35 else None
        if end_t is not None and rng.random() < 0.5:
            angle += math.pi  # the in-frame end on either side
    else:
        angle = math.atan2(main.uy, main.ux) + rng.uniform(-0.12, 0.12)
        radius = main.radius * rng.uniform(0.5, 0.75)
        gap = main.radius + radius + FOV_MM * rng.uniform(0.03, 0.09)
        side = 1.0 if rng.random() < 0.5 else -1.0
        cx = main.cx - side * gap * main.uy
        cy = main.cy + side * gap * main.ux
        end_t = None
    return Bone(cx, cy, angle, radius,
                taper=rng.uniform(-0.18, 0.18),
                inner_ratio=rng.uniform(0.5, 0.68),
                kappa=rng.uniform(-1.0, 1.0) * 2.5e-4,
                end_t=end_t)


class Fracture:
    """A lucent line crossing a bone at axis position t (mm), tilted by tilt
    from the perpendicular; the fragment on the positive side may be displaced."""

    def __init__(self, bone, t, tilt, width, depth, shift, angulation):
        self.bone = bone
        self.t = t
        self.px, self.py = bone.axis_point(t)
        nx, ny = bone.axis_normal(t)
        c, s = math.cos(tilt), math.sin(tilt)
        self.dx, self.dy = c * nx - s * ny, s * nx + c * ny  # along the line
        self.mx, self.my = -self.dy, self.dx  # across the line
        self.width, self.depth = width, depth  # width: Gaussian sigma in mm
        self.shift = shift  # (along-line, across-line) displacement of one fragment, mm
        self.angulation = angulation

    def signed_distance(self, x, y):
        return (x - self.px) * self.mx + (y - self.py) * self.my

    def fragment_coords(self, x, y):
        """Where a point of the displaced fragment sat before the injury."""
        a, b = self.shift
        x = x - a * self.dx - b * self.mx - self.px
        y = y - a * self.dy - b * self.my - self.py
        c, s = math.cos(-self.angulation), math.sin(-self.angulation)
        return c * x - s * y + self.px, s * x + c * y + self.py

    def lucency(self, x, y):
        """1 on the line, fading to 0 within a few widths."""
        e = self.signed_distance(x, y)
        return np.exp(-0.5 * (e / self.width) ** 2)

    def extent_mm(self):
        """Tight box (mm) around the line's extent across the bone (both
        fragments), padded by BOX_PAD_MM plus the line's width."""
        xs, ys = [], []
        for v in np.arange(-4.0 * self.bone.radius, 4.0 * self.bone.radius, 0.25):
            for side in (-1.0, 1.0):
                e = side * 1.2 * self.width
                x = self.px + v * self.dx + e * self.mx
                y = self.py + v * self.dy + e * self.my
                bx, by = (self.fragment_coords(x, y) if side > 0 else (x, y))
                t, s = self.bone.local(np.float64(bx), np.float64(by))
                outer, _ = self.bone.radii(t)
                if abs(float(s)) <= float(outer):
                    xs.append(x)
                    ys.append(y)
        pad = BOX_PAD_MM + self.width
        return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad

    def box(self, size):
        """The extent in inclusive pixel coordinates of a size x size image,
        clipped to it: the same region of the scene at every size."""
        pitch = FOV_MM / size
        x0, y0, x1, y1 = self.extent_mm()
        to_px = lambda v: v / pitch - 0.5  # noqa: E731 (pixel centres at (j + 0.5) * pitch)
        return (max(int(math.floor(to_px(x0))), 0), max(int(math.floor(to_px(y0))), 0),
                min(int(math.ceil(to_px(x1))), size - 1), min(int(math.ceil(to_px(y1))), size - 1))


def _place_fracture(rng, bone, others):
    """A fracture whose whole line lies inside the frame, away from others."""
    for _ in range(200):
        limit = FOV_MM * 0.42
        if bone.end_t is not None:
            t = rng.uniform(-limit, bone.end_t - 55.0)
        else:
            t = rng.uniform(-limit, limit)
        px, py = bone.axis_point(t)
        margin = bone.radius * 2.2 + 6.0
        if not (margin <= px <= FOV_MM - margin and margin <= py <= FOV_MM - margin):
            continue
        if any(f.bone is bone and abs(t - f.t) < 3.0 * bone.radius for f in others):
            continue
        tilt = rng.uniform(-1.0, 1.0) * math.radians(55)
        width = rng.uniform(0.9, 1.7)
        depth = rng.uniform(0.45, 0.85)
        displaced = rng.random() < 0.4
        shift = (rng.uniform(-1.0, 1.0) * bone.radius * 0.35, rng.uniform(0.0, 2.0)) if displaced else (0.0, 0.0)
        angulation = rng.uniform(-1.0, 1.0) * math.radians(6) if displaced and rng.random() < 0.5 else 0.0
        return Fracture(bone, t, tilt, width, depth, shift, angulation)
    return None


def _bone_attenuation(bone, fractures, x, y, marrow_texture, lucency=True):
    """Line integral of attenuation (dimensionless: mu per mm x path in mm)
    through one bone, with its fractures cut in."""

    def render(bx, by):
        cortex, marrow = bone.paths(bx, by)
        return CORTEX_MU * cortex + MARROW_MU * marrow * (1.0 + 0.35 * marrow_texture)

    mu = render(x, y)
    for f in fractures:
        if f.shift != (0.0, 0.0) or f.angulation != 0.0:
            fx, fy = f.fragment_coords(x, y)
            mu = np.where(f.signed_distance(x, y) > 0, render(fx, fy), mu)
    for f in fractures if lucency else []:
        mu = mu * (1.0 - f.depth * f.lucency(x, y))
    return mu


def _soft_tissue(rng, size, x, y, main):
    """A limb: a thick cylinder of soft tissue around the bones, air outside."""
    angle = math.atan2(main.uy, main.ux) + rng.uniform(-0.1, 0.1)
    ux, uy = math.cos(angle), math.sin(angle)
    half_width = FOV_MM * rng.uniform(0.28, 0.6)
    offset = rng.uniform(-0.08, 0.08) * FOV_MM
    s = -(x - main.cx) * uy + (y - main.cy) * ux - offset
    thickness = 2.0 * np.sqrt(np.maximum(half_width * half_width - s * s, 0.0))
    density = _smooth_field(rng, size, 6, rng.uniform(0.05, 0.15))
    mu = SOFT_TISSUE_MU * thickness * density
    # An occasional fat plane: a faint lucent streak along the limb, not the bone.
    if rng.random() < 0.5:
        side = 1.0 if rng.random() < 0.5 else -1.0
        pos = side * (main.radius * rng.uniform(1.8, 3.0))
        streak = np.exp(-0.5 * ((s + offset - pos) / rng.uniform(1.5, 4.0)) ** 2)
        mu = mu * (1.0 - rng.uniform(0.05, 0.15) * streak)
    return mu


def pixel_centres_mm(size):
    """x, y (mm) of every pixel centre of a size x size image, float32."""
    centres = ((np.arange(size, dtype=np.float64) + 0.5) * (FOV_MM / size)).astype(np.float32)
    return centres[None, :].repeat(size, 0), centres[:, None].repeat(size, 1)


def scene(index, seed=0):
    """The geometry of image (seed, index), in mm, the same at every size:
    (the image's scene random stream, positioned after the geometry's draws;
    its bones, main bone first; its fractures)."""
    rng = _rng(seed, index)
    bones = [_random_bone(rng)]
    if rng.random() < 0.5:
        bones.append(_random_bone(rng, main=bones[0]))
    fractures = []
    if rng.random() < FRACTURE_PROBABILITY:
        count = 2 if rng.random() < 0.2 else 1
        for _ in range(count):
            bone = bones[0] if (len(bones) == 1 or rng.random() < 0.75) else bones[1]
            f = _place_fracture(rng, bone, fractures)
            if f is not None:
                fractures.append(f)
    return rng, bones, fractures


def generate(index, seed=0, size=256, lucency=True):
    """Returns (image uint16 HxW with values 0..4095, label 0/1, list of boxes).

    The scene (bones, fractures, exposure) depends on (seed, index) only; size
    sets how finely it is sampled (see FOV_MM). Boxes are in the pixels of
    this size. lucency=False renders the same image (same draws, same noise,
    fragments displaced alike) without the lucent fracture lines, still
    returning the label and boxes: the difference between the two is exactly
    the lines.
    """
    rng, bones, fractures = scene(index, seed)
    pitch = FOV_MM / size
    xx, yy = pixel_centres_mm(size)
    marrow_texture = _trabecular_texture(_rng(seed, index, 1), size)
    mu = _soft_tissue(rng, size, xx, yy, bones[0])
    for bone in bones:
        mine = [f for f in fractures if f.bone is bone]
        mu = mu + _bone_attenuation(bone, mine, xx, yy, marrow_texture, lucency)

    # Transmission with an uneven beam (heel effect); photon noise of a dose
    # per mm^2 (so per pixel it scales with the pixel's area: the noisier where
    # less gets through, behind bone); then the detector's blur, which spreads
    # the noise too, as a scintillator does.
    heel = _smooth_field(rng, size, 2, rng.uniform(0.05, 0.2))
    blur_mm = rng.uniform(*DETECTOR_BLUR_MM)
    photons = 10.0 ** rng.uniform(*DOSE_LOG10) * pitch * pitch
    low = rng.uniform(-0.4, 0.1)
    high = rng.uniform(3.0, 4.5)
    gamma = rng.uniform(0.7, 1.4)
    offset = rng.uniform(0.0, 0.12)
    gain = rng.uniform(0.6, 0.88)

    transmitted = np.exp(-mu) * heel
    noise = _rng(seed, index, 2).standard_normal((size, size), dtype=np.float32)
    noisy = (transmitted + np.sqrt(np.maximum(transmitted, 1e-6) / photons) * noise).astype(np.float32)
    detected = cv2.GaussianBlur(noisy, (0, 0), blur_mm / pitch)
    density = -np.log(np.clip(detected, 1e-4, None))

    # Exposure / display: window, gamma, gain, offset.
    value = np.clip((density - low) / (high - low), 0.0, 1.0)
    value = value ** gamma
    value = offset + gain * value
    image = np.clip(np.rint(value * MAX_VALUE), 0, MAX_VALUE).astype(np.uint16)

    boxes = [f.box(size) for f in fractures]
    return image, (1 if fractures else 0), boxes


def mark_significant_bits(path, bits):
    """Inserts a PNG sBIT chunk (significant bits per sample) right after IHDR,
    as the PNG standard prescribes for data of lower precision than its
    container: readers then know that 0..4095 is the full range, not 6 % of
    it. OpenCV cannot write the chunk itself. Gray images only."""
    with open(path, "rb") as fh:
        data = fh.read()
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, IHDR length, type, data, CRC
    if data[12:16] != b"IHDR" or data[25] != 0:
        raise ValueError("%s: not a gray PNG" % path)
    if b"sBIT" in data[ihdr_end:ihdr_end + 8]:
        return
    body = b"sBIT" + bytes([bits])
    chunk = struct.pack(">I", 1) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    with open(path, "wb") as fh:
        fh.write(data[:ihdr_end] + chunk + data[ihdr_end:])


def file_name(seed, index):
    return "synth_%04d_%05d.png" % (seed, index)


def write_dataset(out, count, seed, size, start=0):
    """Writes count images and out/boxes.csv; returns the CSV rows."""
    os.makedirs(out, exist_ok=True)
    rows = []
    for index in range(start, start + count):
        image, label, boxes = generate(index, seed, size)
        name = file_name(seed, index)
        if not cv2.imwrite(os.path.join(out, name), image):
            raise OSError("cannot write %s" % os.path.join(out, name))
        mark_significant_bits(os.path.join(out, name), 12)
        if boxes:
            rows.extend([name, label, *box] for box in boxes)
        else:
            rows.append([name, label, "", "", "", ""])
    with open(os.path.join(out, "boxes.csv"), "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "label", "x0", "y0", "x1", "y1"])
        writer.writerows(rows)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--count", type=int, default=16, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (>= 64)")
    parser.add_argument("--start", type=int, default=0, help="first image index")
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 64 or args.start < 0 or args.seed < 0:
        parser.error("need --count >= 1, --size >= 64, --start >= 0, --seed >= 0")
    rows = write_dataset(args.out, args.count, args.seed, args.size, args.start)
    fractured = len({r[0] for r in rows if r[1] == 1})
    print("wrote %d images (%d fractured) and boxes.csv to %s" % (args.count, fractured, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
