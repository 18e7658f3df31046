/* Internals of `fxcam serve` shared by its source files (serve.c: HTTP,
 * queue and worker; serve_encode.c: JSON text, base64, PNG in memory). */
#ifndef FXCAM_SERVE_H
#define FXCAM_SERVE_H

#include "cli.h"

/* Runs `fxcam serve` with its own options (argv after the command name). */
int cli_run_serve(int argc, char **argv);
extern const char cli_serve_summary[];

/* ---- JSON text (serve_encode.c) ----------------------------------------
 * Appends to a cli_text. Every string goes through serve_json_string: the
 * RFC 8259 escapes (\" \\ \b \f \n \r \t, other controls as \u00XX); bytes
 * that are not valid UTF-8 become U+FFFD, so the answer is always valid JSON
 * whatever a model's class names or a library message contain. */
void serve_json_string(cli_text *t, const char *s);
/* A finite number with 7 significant digits (float precision); NaN and
 * infinities, which JSON cannot hold, as null. */
void serve_json_number(cli_text *t, double v);
/* "key": with the separating comma when first is false. */
void serve_json_key(cli_text *t, const char *key, bool first);
/* Base64 (RFC 4648, with padding) of size bytes, as a JSON string. */
void serve_json_base64(cli_text *t, const uint8_t *data, size_t size);

/* ---- PNG in memory (serve_encode.c) ------------------------------------ */
typedef struct serve_bytes {
    uint8_t *data;
    size_t size;
    size_t capacity;
} serve_bytes;
/* Encodes an FX_PIXEL_U8 image with 1 or 3 channels as PNG (zlib level 3,
 * libpng through png_set_write_fn into memory). Returns false on failure
 * (out of memory, unsupported image) with out freed. */
bool serve_png_encode(const fx_image *img, serve_bytes *out);
/* A [0,1] float heatmap as 8-bit gray with the library's one rule (NaN -> 0,
 * clamp to [0,1], floor(v * 255 + 0.5) in double; fxcam.h,
 * fx_colormap_apply), so that table[gray] is exactly the library's color. */
bool serve_heatmap_gray8(const fx_image *heatmap, fx_image *gray);
void serve_bytes_free(serve_bytes *b);

#endif
