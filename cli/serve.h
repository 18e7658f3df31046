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
    bool by_ref;             /* return=ref: PNGs kept for GET /api/v1/results/<id>/<name>.png */
} explain_params;

/* One query parameter as the HTTP layer decoded it; value NULL = a key
 * without "=value" (taken as ""). */
typedef struct serve_param {
    const char *key;
    const char *value;
} serve_param;
#define SERVE_MAX_PARAMS 32

/* Fills p from params[0..count): every key must be one of method, methods,
 * layer, class, alpha, threshold, colormap, figure, return, each at most once;
 * methods by the library's registry names ('+' may arrive as ' '), class by
 * index 0..class_count-1 or by name among class_names (case-insensitive),
 * alpha and threshold in [0,1], colormap by fx_colormap_from_name, figure 0
 * or 1, return inline or ref. Returns false with a message for the client in why (always
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
/* Encodes an FX_PIXEL_U8 image with 1 or 3 channels as PNG (zlib level 1;
 * UP filter for color and SUB for gray as lib/image.c's default, no filter
 * when drawn: a figure of flat panels and text; libpng through
 * png_set_write_fn into memory). Returns false on failure (out of memory,
 * unsupported image) with out freed. */
bool serve_png_encode(const fx_image *img, bool drawn, serve_bytes *out);
/* A [0,1] float heatmap as 8-bit gray with the library's one rule (NaN -> 0,
 * clamp to [0,1], floor(v * 255 + 0.5) in double; fxcam.h,
 * fx_colormap_apply), so that table[gray] is exactly the library's color. */
bool serve_heatmap_gray8(const fx_image *heatmap, fx_image *gray);
void serve_bytes_free(serve_bytes *b);

/* ---- Results kept for a following GET (serve_results.c) ----------------
 * A store of PNGs by result id, bounded three ways: at most max_count
 * results and max_bytes of PNG bytes (the least recently used result goes
 * first when a new one needs room), and none older than ttl_seconds (counted
 * from its put; expired results are dropped at every put and get). Ids are
 * 128 random bits from getrandom(2) as 32 lowercase hex digits. Thread-safe
 * (one mutex). */
typedef struct serve_results serve_results;
#define SERVE_RESULT_ID_SIZE 33 /* 32 hex digits and the NUL */
typedef struct serve_result_file {
    char name[48];           /* "image", "figure", "heatmap-<method>", "overlay-<method>" */
    serve_bytes png;
} serve_result_file;
typedef enum serve_put_status {
    SERVE_PUT_OK,
    SERVE_PUT_TOO_LARGE,     /* the PNGs alone exceed max_bytes */
    SERVE_PUT_NO_MEMORY,
    SERVE_PUT_NO_RANDOM,     /* getrandom failed: no id is made up instead */
} serve_put_status;
/* NULL when out of memory. */
serve_results *serve_results_new(size_t max_count, size_t max_bytes, double ttl_seconds);
void serve_results_free(serve_results *s);
/* Keeps files[0..count) under a new id (written to id): their PNG buffers
 * move into the store and files[i].png is zeroed (the names stay), on
 * success and on failure alike (nothing for the caller to free). now is
 * cli_now(). */
serve_put_status serve_results_put(serve_results *s, serve_result_file *files, size_t count, double now,
                                   char id[SERVE_RESULT_ID_SIZE]);
/* Copies the PNG called name ("heatmap"/"overlay" = the first method's) of
 * result id into out (free with serve_bytes_free) and marks the result as
 * used. false when the id is unknown, expired or evicted, or the name is not
 * one of its files (out zeroed). */
bool serve_results_get(serve_results *s, const char *id, const char *name, double now, serve_bytes *out);
/* Results and PNG bytes held now. */
void serve_results_usage(serve_results *s, size_t *count, size_t *bytes);

#endif
