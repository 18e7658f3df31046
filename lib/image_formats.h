/* Image formats read by fx_image_load / fx_image_load_memory, recognised by
 * their first bytes (never by the file name):
 *   PNG    89 50 4e 47 0d 0a 1a 0a             lib/image.c
 *   JPEG   ff d8 ff                            lib/jpeg.c (libjpeg-turbo)
 *   DICOM  "DICM" at byte 128 (Part 10 file),  dicom/dicom_reader.cpp (DCMTK)
 *          or a bare little-endian dataset (lib/dicom_sniff.h)
 * lib/image_load.c holds the recognition and the dispatch. Internal: nothing
 * here is exported. */
#ifndef FX_IMAGE_FORMATS_H
#define FX_IMAGE_FORMATS_H

#include "fx_internal.h"

#include <stdio.h>

typedef enum fx__format {
    FX__FORMAT_UNKNOWN = 0,
    FX__FORMAT_PNG,
    FX__FORMAT_JPEG,
    FX__FORMAT_DICOM,
} fx__format;

/* Bytes needed to recognise every format (the DICOM preamble is 128 bytes,
 * followed by "DICM"). */
#define FX__FORMAT_HEAD_BYTES 132u

/* The format of a source whose first n bytes are head (n may be shorter than
 * FX__FORMAT_HEAD_BYTES for short sources). */
fx__format fx__format_detect(const uint8_t *head, size_t n);

/* Called by fx_image_load / fx_image_load_memory in lib/image.c once the
 * arguments are checked and the options resolved: file (positioned at its
 * start) or data/size is the source; path is NULL for memory. Recognises the
 * format; for a JPEG or DICOM source (or a request the format cannot honour,
 * such as frame > 0 of a PNG) it loads or refuses it, stores the status in
 * *status and returns true. Returns false for PNG and unrecognised sources,
 * with file rewound to its start: lib/image.c then reads the PNG (or says
 * why it is not one). */
bool fx__image_load_dispatch(FILE *file, const void *data, size_t size, const char *path,
                             const fx_load_options *limits, fx_image *out, fx_status *status);

/* The format loaders. label names the source in messages ("'scan.jpg'", "the
 * JPEG in memory (1234 bytes)"). Each checks the declared size against limits
 * before decoding; on error *out is untouched. */
fx_status fx__jpeg_load(FILE *file, const void *data, size_t size, const char *label,
                        const fx_load_options *limits, fx_image *out);

/* Shared size check with the message of every loader: names the size, the
 * limit and the fx_load_options field to raise. */
fx_status fx__load_limits_check(const char *label, uint32_t width, uint32_t height,
                                const fx_load_options *limits);

#endif
