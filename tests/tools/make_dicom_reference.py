#!/usr/bin/python3
"""DICOM fixtures and independent reference pixels for tests/unit/test_dicom.c.

Usage: make_dicom_reference.py DIR

1. Writes small synthetic DX radiographs made with pydicom into DIR (good
   ones and ones with missing or contradictory attributes).
2. For every case of CASES (real files Debian ships in octave-dicom and
   python3-pydicom, used in place, and the synthetic ones) computes the pixels
   fx_image_load must give, with pydicom as the independent reference:
       gray:  apply_modality_lut, then apply_windowing with the first window
              or, without a window, (v - min) / (max - min) of the modality
              values; the
              VOI output range [y_min, y_max] (pydicom's, from BitsStored,
              PixelRepresentation and the rescale) mapped onto 0..65535;
              MONOCHROME1 inverted (65535 - v).
       color: apply_color_lut for PALETTE COLOR (16-bit entries -> v * 255 /
              65535), RGB samples as stored.
   and writes DIR/<case>.ref:
       uint32 width, height, channels, bits (8 or 16), little-endian
       then the samples row by row (float64, to keep the reference unrounded)
   and DIR/cases.txt, one "name frame path" line per case (the file fxcam
   loads). The test compares within the tolerance it documents.
"""
import pathlib
import struct
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.dataelem import DataElement
from pydicom.pixel_data_handlers.util import (apply_color_lut, apply_modality_lut, apply_voi_lut, apply_windowing,
                                              convert_color_space)
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "models"))
import synth_radiograph  # noqa: E402  (the project's synthetic radiograph generator)

OCTAVE = "/usr/share/octave/packages/dicom-0.5.1/imdata/"
PYDICOM = "/usr/lib/python3/dist-packages/pydicom/data/test_files/"

# name -> (path, frame). The JPEG-LS file is the lossless twin of MR_small:
# pydicom here has no JPEG-LS decoder, so its reference is MR_small's pixels.
REAL = {
    "ct_ankle": (OCTAVE + "CT-MONO2-16-ankle.dcm", 0),
    "us_palette_f0": (OCTAVE + "US-PAL-8-10x-echo.dcm", 0),
    "us_palette_f7": (OCTAVE + "US-PAL-8-10x-echo.dcm", 7),
    "ct_small": (PYDICOM + "CT_small.dcm", 0),
    "mr_small": (PYDICOM + "MR_small.dcm", 0),
    "mr_small_rle": (PYDICOM + "MR_small_RLE.dcm", 0),
    "mr_small_bigendian": (PYDICOM + "MR_small_bigendian.dcm", 0),
    "mr_small_implicit": (PYDICOM + "MR_small_implicit.dcm", 0),
    "mr_small_jpeg_ls": (PYDICOM + "MR_small.dcm", 0),
    "sc_rgb_rle": (PYDICOM + "SC_rgb_rle.dcm", 0),
    "sc_ybr_full_422": (PYDICOM + "SC_ybr_full_422_uncompressed.dcm", 0),
    "explicit_big_endian_rgb": (PYDICOM + "ExplVR_BigEnd.dcm", 0),
}


def dx_dataset(rows, cols, pixels, bits_stored, photometric, **extra):
    """A minimal Digital X-Ray image, uncompressed explicit VR little endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientName = "Secret^Patient"  # must never appear in a message
    ds.PatientID = "PID-4711-SECRET"
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = pixels
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    return ds


def radiograph12(rows=48, cols=40):
    """12-bit values over the whole 0..4095 range, with structure."""
    y, x = np.mgrid[0:rows, 0:cols]
    v = (x * 97 + y * 61 + (x * y) % 37 * 11) % 4096
    v[0, 0], v[0, 1] = 0, 4095
    return v.astype(np.uint16)


def synthetic_radiograph(size=64):
    """A radiograph of the project's generator (12-bit, 0..4095)."""
    image, _, _ = synth_radiograph.generate(index=3, seed=0, size=size)
    return image.astype(np.uint16)


def voi_lut_item(entries, first_mapped, bits, data, vr, descriptor_vr="US"):
    """One VOI LUT Sequence item (PS3.3 C.11.2.1.1): LUT Descriptor = entries
    (0 for 65536), first mapped input value, bits per entry; LUT Data as US or
    OW (both allowed; IHE requires readers to take either)."""
    item = Dataset()
    item.add(DataElement(0x00283002, descriptor_vr, [entries % 65536, first_mapped, bits]))
    item.LUTExplanation = "fxcam test curve"
    values = np.asarray(data, dtype=np.uint16)
    if vr == "OW":
        item.add(DataElement(0x00283006, "OW", values.astype("<u2").tobytes()))
    else:
        item.add(DataElement(0x00283006, "US", [int(v) for v in values]))
    return item


def voi_lut_cases(rows=64):
    """DX radiographs from the synthetic generator with a VOI LUT Sequence.
    An S-shaped curve that does not reach the ends of its entry range, so the
    test pins the mapping of LUT output onto 0..65535 (the descriptor's
    0..2^bits-1, PS3.4 N.2.4.1), not the curve's own minimum and maximum."""
    img = synthetic_radiograph(rows)
    raw = img.tobytes()
    x = np.arange(4096, dtype=np.float64)
    curve16 = np.rint(3000 + 58000 / (1 + np.exp(-(x - 2000) / 400)))
    # 12-bit entries, 3000 entries from input 600: inputs below 600 take the
    # first entry, inputs from 3600 the last (PS3.3 C.11.2.1.1).
    x12 = np.arange(3000, dtype=np.float64)
    curve12 = np.rint(200 + 3700 * (x12 / 2999) ** 0.6)
    lut16 = voi_lut_item(4096, 0, 16, curve16, "OW")
    lut12 = voi_lut_item(3000, 600, 12, curve12, "US")
    return {
        "dx12_voi_lut16": dx_dataset(rows, rows, raw, 12, "MONOCHROME2", VOILUTSequence=Sequence([lut16])),
        "dx12_voi_lut12_mono1": dx_dataset(rows, rows, raw, 12, "MONOCHROME1",
                                           VOILUTSequence=Sequence([lut12])),
        # The LUT Descriptor may be SS (PS3.3 C.11.2.1.1: US or SS).
        "dx12_voi_lut12_ss": dx_dataset(rows, rows, raw, 12, "MONOCHROME2",
                                        VOILUTSequence=Sequence([voi_lut_item(3000, 600, 12, curve12, "OW", "SS")])),
        # Both a VOI LUT and a window (alternative views, PS3.3 C.11.2.1.2):
        # fxcam applies the first VOI LUT, pydicom's apply_voi_lut default.
        "dx12_voi_lut_and_window": dx_dataset(rows, rows, raw, 12, "MONOCHROME2",
                                              VOILUTSequence=Sequence([voi_lut_item(3000, 600, 12, curve12, "OW")]),
                                              WindowCenter="1000", WindowWidth="400"),
    }


def bad_voi_lut_cases(rows=16):
    """VOI LUTs whose descriptor contradicts their data, or with no entries."""
    img = radiograph12(rows, rows)
    raw = img.tobytes()
    ramp = np.arange(4096) * 16

    def one(entries, first, bits, data, vr="OW"):
        return dx_dataset(rows, rows, raw, 12, "MONOCHROME2",
                          VOILUTSequence=Sequence([voi_lut_item(entries, first, bits, data, vr)]))

    cases = {
        "bad_voi_lut_short": one(4096, 0, 16, ramp[:1000]),  # 4096 declared, 1000 given
        "bad_voi_lut_long": one(1000, 0, 16, ramp),  # 1000 declared, 4096 given
        "bad_voi_lut_empty": one(4096, 0, 16, []),  # no LUT Data
        "bad_voi_lut_bits": one(4096, 0, 20, ramp),  # 20 bits per entry
        "bad_voi_lut_values": one(4096, 0, 12, ramp),  # 12-bit entries up to 65520
    }
    # Descriptor 0 means 65536 entries (PS3.3 C.11.2.1.1); a 3-value
    # descriptor cannot say more, so "> 65536 entries" is LUT Data longer than
    # 65536 entries.
    cases["bad_voi_lut_over_65536"] = one(65536, 0, 16, np.zeros(70000))
    return cases


def write_synthetic(out):
    img = radiograph12()
    raw = img.tobytes()
    rows, cols = img.shape
    cases = {
        "dx12_mono2": dx_dataset(rows, cols, raw, 12, "MONOCHROME2"),
        "dx12_mono1": dx_dataset(rows, cols, raw, 12, "MONOCHROME1"),
        "dx12_rescale": dx_dataset(rows, cols, raw, 12, "MONOCHROME2", RescaleSlope="0.5",
                                   RescaleIntercept="-100", RescaleType="US"),
        "dx12_window": dx_dataset(rows, cols, raw, 12, "MONOCHROME2", WindowCenter="1500",
                                  WindowWidth="1000"),
        "dx12_rescale_window_mono1": dx_dataset(rows, cols, raw, 12, "MONOCHROME1", RescaleSlope="2",
                                                RescaleIntercept="-1000", RescaleType="US",
                                                WindowCenter="2000", WindowWidth="3001"),
        **voi_lut_cases(),
        # Bad input.
        "bad_bits_stored": dx_dataset(rows, cols, raw, 12, "MONOCHROME2"),
        "bad_zero_rows": dx_dataset(rows, cols, raw, 12, "MONOCHROME2"),
        "bad_short_pixels": dx_dataset(rows, cols, raw[: len(raw) // 2], 12, "MONOCHROME2"),
        "bad_window_width": dx_dataset(rows, cols, raw, 12, "MONOCHROME2", WindowCenter="1000",
                                       WindowWidth="0"),
        "bad_huge": dx_dataset(rows, cols, raw, 12, "MONOCHROME2"),
        "bad_no_pixels": dx_dataset(rows, cols, raw, 12, "MONOCHROME2"),
    }
    cases["bad_bits_stored"].BitsStored = 20
    cases["bad_bits_stored"].HighBit = 19
    cases["bad_zero_rows"].Rows = 0
    cases["bad_huge"].Rows = 30000
    cases["bad_huge"].Columns = 30000
    del cases["bad_no_pixels"].PixelData
    cases.update(bad_voi_lut_cases())
    for name, ds in cases.items():
        ds.save_as(out / (name + ".dcm"), write_like_original=False)
    good = {n: (str(out / (n + ".dcm")), 0) for n in cases if not n.startswith("bad_")}
    good.update(write_bare(out, dx_dataset(rows, cols, raw, 12, "MONOCHROME2"), out / "dx12_mono2.dcm"))
    return good


# Bare datasets -> their Part 10 twin, which pydicom decodes for the reference.
TWINS = {}


def write_bare(out, ds, twin):
    """The same image as dx12_mono2, stored as a bare dataset: no preamble,
    no "DICM", no file meta group (pydicom write_like_original=True), in
    implicit and explicit VR little endian, with no file name extension; and
    one with the file meta group but no preamble (it starts with (0002,0000))."""
    written = {}
    for name, implicit, meta in [("bare_implicit", True, False), ("bare_explicit", False, False),
                                 ("bare_with_meta", False, True)]:
        bare = pydicom.Dataset(ds)
        bare.file_meta = FileMetaDataset(ds.file_meta) if meta else FileMetaDataset()
        if implicit:
            bare.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        bare.preamble = None
        bare.is_little_endian, bare.is_implicit_VR = True, implicit
        path = out / name
        if meta:
            with open(path, "wb") as fh:
                fp = pydicom.filebase.DicomFileLike(fh)
                fp.is_little_endian, fp.is_implicit_VR = True, False
                pydicom.filewriter.write_file_meta_info(fp, bare.file_meta, enforce_standard=True)
                pydicom.filewriter.write_dataset(fp, bare)
        else:
            bare.file_meta = FileMetaDataset()
            bare.save_as(path, write_like_original=True)
        head = path.read_bytes()[:132]
        assert head[128:132] != b"DICM" and head[:2] == (b"\x02\x00" if meta else b"\x08\x00"), name
        back = pydicom.dcmread(path, force=True)
        assert back.Rows == ds.Rows and back.PixelData == ds.PixelData, name
        written[name] = (str(path), 0)
        TWINS[name] = str(twin)
    return written


def voi_range(ds):
    """pydicom's apply_windowing output range, before its windowing."""
    bits = ds.BitsStored
    if ds.PixelRepresentation == 0:
        y_min, y_max = 0.0, 2.0 ** bits - 1
    else:
        y_min, y_max = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    if "ModalityLUTSequence" not in ds and "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        y_min, y_max = y_min * slope + intercept, y_max * slope + intercept
    return y_min, y_max


def expected(path, frame):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[frame]
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds).astype(np.float64)
        return rgb * 255.0 / 65535.0, 3, 8
    if ds.SamplesPerPixel == 3:
        if pi.startswith("YBR_FULL"):
            # pydicom returns the YBR samples (4:2:2 upsampled); DCMTK converts
            # to RGB (PS3.3 C.7.6.3.1.2's YBR_FULL equations).
            arr = convert_color_space(arr, "YBR_FULL", "RGB")
        return arr.astype(np.float64), 3, 8
    # DCMTK keeps modality values as integers: a fractional rescale (slope
    # 0.5) is truncated toward zero (a C cast), so two stored values can share one output
    # level. Documented in dicom_reader.h; modelled here, not hidden by a
    # tolerance.
    modality = np.trunc(apply_modality_lut(arr, ds).astype(np.float64))
    if "VOILUTSequence" in ds:
        # The first VOI LUT, also when a window is present (prefer_lut=True);
        # its output range is the descriptor's 0..2^bits-1 (PS3.4 N.2.4.1).
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        voi = apply_voi_lut(modality.astype(np.int64), ds, index=0, prefer_lut=True).astype(np.float64)
        out = voi / (2.0 ** bits - 1) * 65535.0
    elif "WindowCenter" in ds:
        y_min, y_max = voi_range(ds)
        voi = apply_windowing(modality, ds, index=0).astype(np.float64)
        out = (voi - y_min) / (y_max - y_min) * 65535.0
    else:
        lo, hi = modality.min(), modality.max()
        out = (modality - lo) / (hi - lo) * 65535.0
    if pi == "MONOCHROME1" or ds.get("PresentationLUTShape", "") == "INVERSE":
        out = 65535.0 - out
    return out[:, :, None], 1, 16


def write_reference(path, pixels, channels, bits):
    h, w = pixels.shape[:2]
    with open(path, "wb") as f:
        f.write(struct.pack("<4I", w, h, channels, bits))
        f.write(np.ascontiguousarray(pixels, dtype="<f8").tobytes())


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    cases = dict(REAL)
    cases.update(write_synthetic(out))
    with open(out / "cases.txt", "w") as listing:
        for name, (path, frame) in cases.items():
            pixels, channels, bits = expected(TWINS.get(name, path), frame)
            write_reference(out / (name + ".ref"), pixels, channels, bits)
            if name == "mr_small_jpeg_ls":
                path = PYDICOM + "MR_small_jpeg_ls_lossless.dcm"
            listing.write("%s %d %s\n" % (name, frame, path))


if __name__ == "__main__":
    main()
