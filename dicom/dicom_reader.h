/* DICOM input through DCMTK, behind a plain C interface (the only C++ of the
 * image formats; like shim/, no exception crosses this boundary).
 *
 * Gray images: DCMTK's display pipeline, in the order of PS3.4 N.2 / PS3.3
 * C.11: stored values -> modality LUT (Modality LUT Sequence, or Rescale
 * Slope/Intercept) -> VOI (the first VOI LUT of the VOI LUT Sequence; else the
 * first Window Center/Width with the file's VOI LUT Function; else the
 * minimum..maximum of the modality values of the frame) -> MONOCHROME1 and
 * Presentation LUT Shape INVERSE invert -> FX_PIXEL_U16 spanning 0..65535
 * (VOI output minimum -> 0, maximum -> 65535, so higher is always brighter).
 * DCMTK holds modality values as integers: a fractional rescale is truncated
 * toward zero (slope 0.5 merges pairs of stored values), measured against
 * pydicom in tests/unit/test_dicom.c.
 * Color images (RGB, YBR_*, PALETTE COLOR) -> FX_PIXEL_U8 RGB.
 * Decoders: uncompressed (any byte order / VR), JPEG (baseline, extended,
 * lossless), JPEG-LS and RLE. Others (JPEG 2000, HTJ2K, ...) are refused with
 * the transfer syntax's name.
 * Messages name the file, attributes and values of the image geometry, never
 * a patient attribute. DCMTK's own logging is switched off (the library
 * prints nothing). */
#ifndef FX_DICOM_READER_H
#define FX_DICOM_READER_H

#include "fxcam.h"

#include <stddef.h>

#ifdef __cplusplus
#define FX_DICOM_NOEXCEPT noexcept
extern "C" {
#else
#define FX_DICOM_NOEXCEPT
#endif

/* Loads frame limits->frame of the DICOM file at path, or (path == NULL) of
 * the size bytes at data. label names the source in messages. Declared rows,
 * columns and frames are checked against limits before any pixel data is
 * decoded. Errors: FX_ERR_FORMAT (not an image, missing or contradictory
 * attributes, truncated), FX_ERR_UNSUPPORTED (transfer syntax or pixel layout
 * without a decoder), FX_ERR_LIMIT, FX_ERR_INVALID_ARGUMENT (frame out of
 * range), FX_ERR_IO, FX_ERR_OUT_OF_MEMORY, FX_ERR_NOT_AVAILABLE (built without
 * DCMTK). On error *out is untouched. */
fx_status fx__dicom_load(const char *path, const void *data, size_t size, const char *label,
                         const fx_load_options *limits, fx_image *out) FX_DICOM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
