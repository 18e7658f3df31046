/* Internals of `fxcam serve` shared by its source files (serve.c: HTTP,
 * queue and worker; serve_encode.c: JSON text, base64, PNG in memory). */
#ifndef FXCAM_SERVE_H
#define FXCAM_SERVE_H

#include "cli.h"

/* Runs `fxcam serve` with its own options (argv after the command name). */
int cli_run_serve(int argc, char **argv);
extern const char cli_serve_summary[];

/* ---- Parameters of POST /api/v1/explain (serve_params.c) --------------- */
typedef struct explain_params {
    int32_t methods[FX_CAM_METHOD_COUNT];
    uint32_t method_count;
    char layer[256];         /* "" = the model's default */
    int32_t target_class;    /* -1 = predicted */
    float alpha;             /* [0, 1], default 0.4 */
    float threshold;         /* [0, 1], default 0 */
    int32_t colormap;        /* default FX_COLORMAP_JET */
    bool figure;             /* default true */
} explain_params;

/* One query parameter as the HTTP layer decoded it; value NULL = a key
 * without "=value" (taken as ""). */
typedef struct serve_param {
    const char *key;
    const char *value;
} serve_param;
#define SERVE_MAX_PARAMS 32

/* Fills p from params[0..count): every key must be one of method, methods,
 * layer, class, alpha, threshold, colormap, figure, each at most once;
 * methods by the library's registry names ('+' may arrive as ' '), class by
 * index 0..class_count-1 or by name among class_names (case-insensitive),
 * alpha and threshold in [0,1], colormap by fx_colormap_from_name, figure 0
 * or 1. Returns false with a message for the client in why (always
 * NUL-terminated). The layer name is checked later by the pass. */
bool serve_parse_explain(const serve_param *params, size_t count, const char *const *class_names,
                         uint32_t class_count, explain_params *p, char *why, size_t why_size);

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
/* Encodes an FX_PIXEL_U8 image with 1 or 3 channels as PNG (zlib level 1,
 * UP filter for color and SUB for gray as lib/image.c's default; libpng
 * through png_set_write_fn into memory). Returns false on failure
 * (out of memory, unsupported image) with out freed. */
bool serve_png_encode(const fx_image *img, serve_bytes *out);
/* A [0,1] float heatmap as 8-bit gray with the library's one rule (NaN -> 0,
 * clamp to [0,1], floor(v * 255 + 0.5) in double; fxcam.h,
 * fx_colormap_apply), so that table[gray] is exactly the library's color. */
bool serve_heatmap_gray8(const fx_image *heatmap, fx_image *gray);
void serve_bytes_free(serve_bytes *b);

#endif
