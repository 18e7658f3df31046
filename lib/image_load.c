/* Format recognition and dispatch for fx_image_load / fx_image_load_memory.
 *
 * The format is decided by the first bytes, never by the file name: a JPEG
 * saved as ".png" or a DICOM file without extension loads as what it is, and
 * so does a DICOM dataset stored without its Part 10 header.
 * PNG (and anything unrecognised, so that its message can say what the bytes
 * look like) stays with lib/image.c; JPEG goes to lib/jpeg.c, DICOM to the
 * DCMTK reader in dicom/. */
#include "image_formats.h"
#include "dicom/dicom_reader.h"
#include "dicom_sniff.h"

#include <errno.h>
#include <string.h>

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

fx__format fx__format_detect(const uint8_t *head, size_t n)
{
    if (n >= sizeof png_signature && memcmp(head, png_signature, sizeof png_signature) == 0)
        return FX__FORMAT_PNG;
    /* SOI followed by the first marker's 0xff. */
    if (n >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff)
        return FX__FORMAT_JPEG;
    /* DICOM Part 10: a 128-byte preamble, then "DICM" (PS3.10 section 7.1). */
    if (n >= 132 && memcmp(head + 128, "DICM", 4) == 0)
        return FX__FORMAT_DICOM;
    /* A bare dataset without that header (lib/dicom_sniff.h). */
    if (fx__dicom_bare_dataset_detect(head, n))
        return FX__FORMAT_DICOM;
    return FX__FORMAT_UNKNOWN;
}

fx_status fx__load_limits_check(const char *label, uint32_t width, uint32_t height, const fx_load_options *lim)
{
    if (width > lim->max_width)
        return fx__error(FX_ERR_LIMIT,
                         "%s is %ux%u pixels: its width exceeds the limit of %u "
                         "(raise fx_load_options.max_width to load it)",
                         label, width, height, lim->max_width);
    if (height > lim->max_height)
        return fx__error(FX_ERR_LIMIT,
                         "%s is %ux%u pixels: its height exceeds the limit of %u "
                         "(raise fx_load_options.max_height to load it)",
                         label, width, height, lim->max_height);
    uint64_t pixels = (uint64_t)width * height;
    if (pixels > lim->max_pixels)
        return fx__error(FX_ERR_LIMIT,
                         "%s is %ux%u = %llu pixels, over the limit of %llu "
                         "(raise fx_load_options.max_pixels to load it)",
                         label, width, height, (unsigned long long)pixels, (unsigned long long)lim->max_pixels);
    return FX_OK;
}

/* Reads up to FX__FORMAT_HEAD_BYTES from the start of file and rewinds it.
 * Returns 0 or an errno value. */
static int peek_file(FILE *file, uint8_t *head, size_t *n)
{
    *n = fread(head, 1, FX__FORMAT_HEAD_BYTES, file);
    if (ferror(file))
        return errno ? errno : EIO;
    /* fseek also clears the end-of-file indicator. A pipe cannot be rewound;
     * such sources are named in the caller's message. */
    if (fseek(file, 0, SEEK_SET) != 0)
        return errno ? errno : ESPIPE;
    return 0;
}

static const char *format_name(fx__format f)
{
    switch (f) {
    case FX__FORMAT_PNG: return "PNG";
    case FX__FORMAT_JPEG: return "JPEG";
    case FX__FORMAT_DICOM: return "DICOM";
    default: return "image";
    }
}

bool fx__image_load_dispatch(FILE *file, const void *data, size_t size, const char *path,
                             const fx_load_options *limits, fx_image *out, fx_status *status)
{
    uint8_t head[FX__FORMAT_HEAD_BYTES];
    size_t n = 0;
    if (file) {
        int err = peek_file(file, head, &n);
        if (err != 0) {
            char text[128];
            if (strerror_r(err, text, sizeof text) != 0)
                snprintf(text, sizeof text, "error %d", err);
            *status = fx__error(FX_ERR_IO, "cannot read '%s' (reading its first bytes to recognise the format, "
                                "then returning to its start): %s", path, text);
            return true;
        }
    } else {
        n = size < sizeof head ? size : sizeof head;
        memcpy(head, data, n);
    }
    fx__format format = fx__format_detect(head, n);
    if (format == FX__FORMAT_UNKNOWN)
        return false;

    char label[512];
    if (path)
        snprintf(label, sizeof label, "'%s'", path);
    else
        snprintf(label, sizeof label, "the %s in memory (%zu bytes)", format_name(format), size);

    if (format != FX__FORMAT_DICOM && limits->frame != 0) {
        *status = fx__error(FX_ERR_INVALID_ARGUMENT,
                            "%s: fx_load_options.frame is %u, but a %s file holds one image (frame 0); frames "
                            "are chosen in multi-frame DICOM files only",
                            label, limits->frame, format_name(format));
        return true;
    }
    switch (format) {
    case FX__FORMAT_JPEG:
        *status = fx__jpeg_load(file, data, size, label, limits, out);
        return true;
    case FX__FORMAT_DICOM:
        *status = fx__dicom_load(path, data, size, label, limits, out);
        return true;
    default:
        return false; /* PNG: lib/image.c */
    }
}
