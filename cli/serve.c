/* `fxcam serve`: an HTTP service over the library (GNU libmicrohttpd) and the
 * page that uses it (docs/serve.md).
 *
 * Threads ("continuous batching"): libmicrohttpd's pool reads a request,
 * checks and decodes the upload, puts it in a bounded queue and suspends its
 * connection. One model thread only runs passes: when it is idle, it takes
 * the requests at the head of the queue that share method(s), layer and class
 * (at most MAX_BATCH) at once, without waiting for more; requests that arrive
 * while a pass runs are what the next pass takes. After a pass it resumes the
 * connections in arrival order, and each connection's HTTP thread composes
 * its own answer (figure, PNG encodings, base64, JSON) from the shared result
 * while the model thread runs the next pass. A full queue is answered 503 +
 * Retry-After. The model is loaded once; its getters are thread-safe
 * (fxcam.h), and so are fx_result's getters on a result no one frees.
 * Answers asked with return=ref leave their PNGs in a bounded store
 * (serve_results.c) for GET /api/v1/results/<id>/<name>.png. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

#ifndef FXCAM_HAVE_MHD

const char cli_serve_summary[] = "HTTP service and web page (not in this build: needs libmicrohttpd).";

int cli_run_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("serve", "this fxcam was built without libmicrohttpd; install libmicrohttpd-dev (tools/setup.sh) "
              "and rebuild");
    return CLI_EXIT_FAILURE;
}

#else

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

const char cli_serve_summary[] = "HTTP service and web page: upload a radiograph, see where the model looks.";

/* The page (cli/serve_page.html), embedded by serve_embed_page.py. */
extern const unsigned char cli_serve_page[];
extern const size_t cli_serve_page_size;

#define MAX_BATCH 8

typedef struct serve_config {
    cli_settings model;      /* --model, --device, --threads for cli_load_model */
    const char *host;
    unsigned port;
    unsigned workers;        /* libmicrohttpd threads */
    uint64_t max_upload;     /* bytes */
    const char *token;       /* NULL = none */
    unsigned queue_capacity;
    unsigned timeout;        /* seconds of client inactivity */
    unsigned results_max;    /* results kept for return=ref */
    unsigned results_mb;     /* their PNG bytes, MB */
    unsigned results_ttl;    /* seconds a kept result is served */
} serve_config;

enum route { ROUTE_PAGE, ROUTE_HEALTH, ROUTE_MODEL, ROUTE_METHODS, ROUTE_COLORMAPS, ROUTE_EXPLAIN, ROUTE_RESULT };

typedef struct server server;

/* One forward pass, shared by the requests it computed: each request's HTTP
 * thread reads its row of the result; the last one to finish frees it. */
typedef struct pass {
    fx_result *result;
    size_t size;             /* images in the pass */
    double started;          /* cli_now() when the pass began */
    double compute_ms;
    atomic_size_t users;
} pass;

typedef struct request {
    server *srv;
    struct MHD_Connection *conn;
    enum route route;
    /* cli_now() at: first call, body complete, decoded, queued, resumed
     * after its pass (the "timing" of an answer, docs/serve.md) */
    double start, received, decoded, queued, resumed;
    /* upload */
    serve_bytes body;
    bool too_large;
    struct MHD_PostProcessor *post;
    unsigned file_parts;
    bool bad_field;
    /* decoded by the HTTP thread before queueing */
    explain_params params;
    fx_image image;
    fx_image_info info; /* what the loader found (bits stored): the pass and the view both read it */
    /* made by the HTTP thread after queueing, while the pass runs; the
     * model thread never touches them */
    fx_image view;
    serve_bytes view_png;
    double view_ms;
    /* set by the model thread before it resumes the connection: either a
     * pass and this request's row in it, or an error answer */
    pass *pass;
    size_t row;
    bool ready;
    unsigned status;
    cli_text answer;
    bool retry_after;
} request;

struct server {
    serve_config cfg;
    fx_model *model;
    struct MHD_Daemon *daemon;
    cli_text model_json, methods_json, colormaps_json;
    const char **class_names; /* the model's, for serve_parse_explain */
    serve_results *results;  /* PNGs of return=ref answers */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    request **queue;         /* ring of cfg.queue_capacity */
    size_t head, count;
    bool stopping;
    pthread_t worker;
};

/* ---- Answers ----------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *type, char *data,
                                 size_t size, enum MHD_ResponseMemoryMode mode, bool retry_after)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(size, data, mode);
    if (!response) {
        if (mode == MHD_RESPMEM_MUST_FREE) {
            free(data);
        }
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    if (retry_after) {
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    if (status == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc;
}

static void error_json(cli_text *t, const char *message)
{
    cli_text_printf(t, "{");
    serve_json_key(t, "error", true);
    serve_json_string(t, message);
    cli_text_printf(t, "}\n");
}

static enum MHD_Result send_json(struct MHD_Connection *conn, request *r, unsigned status, cli_text *t,
                                 bool retry_after)
{
    r->status = status;
    char *data = t->data ? t->data : calloc(1, 1);
    size_t size = t->size;
    memset(t, 0, sizeof *t); /* MHD owns the text now */
    return send_text(conn, status, "application/json", data, size, MHD_RESPMEM_MUST_FREE, retry_after);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, request *r, unsigned status, const char *message)
{
    cli_text t = {0};
    error_json(&t, message);
    return send_json(conn, r, status, &t, status == MHD_HTTP_SERVICE_UNAVAILABLE);
}

/* A copy of a precomputed JSON text (MHD frees what it sends). */
static enum MHD_Result send_copy(struct MHD_Connection *conn, request *r, const cli_text *t)
{
    cli_text copy = {0};
    cli_text_printf(&copy, "%s", t->data);
    return send_json(conn, r, MHD_HTTP_OK, &copy, false);
}

/* ---- Static descriptions: model, methods, colormaps -------------------- */

static void describe_model(server *srv)
{
    cli_text *t = &srv->model_json;
    fx_model *m = srv->model;
    uint32_t width = 0, height = 0, channels = 0;
    fx_model_input_size(m, &width, &height, &channels);
    cli_text_printf(t, "{");
    serve_json_key(t, "name", true);
    serve_json_string(t, cli_model_name(&srv->cfg.model));
    serve_json_key(t, "device", false);
    serve_json_string(t, fx_model_device(m));
    cli_text_printf(t, ",\"input\":{\"width\":%u,\"height\":%u,\"channels\":%u}", width, height, channels);
    cli_text_printf(t, ",\"output_kind\":\"%s\"",
                    fx_model_output_kind(m) == FX_OUTPUT_PROBABILITIES ? "probabilities" : "logits");
    cli_text_printf(t, ",\"classes\":[");
    for (uint32_t i = 0; i < fx_model_result_class_count(m); i++) {
        cli_text_printf(t, "%s{\"index\":%u,\"name\":", i ? "," : "", i);
        serve_json_string(t, fx_model_class_name(m, i));
        cli_text_printf(t, "}");
    }
    cli_text_printf(t, "],\"positive_class\":%d", fx_model_positive_class(m));
    serve_json_key(t, "default_layer", false);
    if (fx_model_default_layer(m)) {
        serve_json_string(t, fx_model_default_layer(m));
    } else {
        cli_text_printf(t, "null");
    }
    cli_text_printf(t, ",\"layers\":[");
    bool first = true;
    for (size_t i = 0; i < fx_model_layer_count(m); i++) {
        fx_layer_info info = {.struct_size = sizeof info};
        if (fx_model_layer(m, i, &info) != FX_OK || !info.is_feature_map) {
            continue;
        }
        cli_text_printf(t, "%s{\"name\":", first ? "" : ",");
        serve_json_string(t, info.name);
        serve_json_key(t, "type", false);
        serve_json_string(t, info.type);
        cli_text_printf(t, ",\"shape\":[");
        for (uint32_t d = 0; d < info.rank && d < FX_LAYER_MAX_RANK; d++) {
            cli_text_printf(t, "%s%lld", d ? "," : "", (long long)info.shape[d]);
        }
        cli_text_printf(t, "]}");
        first = false;
    }
    cli_text_printf(t, "],\"warnings\":[");
    for (size_t i = 0; i < fx_model_warning_count(m); i++) {
        int32_t code = 0;
        const char *msg = fx_model_warning(m, i, &code);
        cli_text_printf(t, "%s{\"code\":%d,\"message\":", i ? "," : "", code);
        serve_json_string(t, msg);
        cli_text_printf(t, "}");
    }
    cli_text_printf(t, "],\"max_upload_bytes\":%llu,\"max_batch\":%d,\"library_version\":",
                    (unsigned long long)srv->cfg.max_upload, MAX_BATCH);
    serve_json_string(t, fx_version_string());
    cli_text_printf(t, "}\n");
}

/* The library's method registry (fx_cam_method_count/at): the one list. */
static void describe_methods(server *srv)
{
    cli_text *t = &srv->methods_json;
    cli_text_printf(t, "{\"methods\":[");
    for (size_t i = 0; i < fx_cam_method_count(); i++) {
        const fx_cam_method_info *m = fx_cam_method_at(i);
        cli_text_printf(t, "%s{\"id\":%d,\"name\":", i ? "," : "", m->id);
        serve_json_string(t, m->name);
        serve_json_key(t, "title", false);
        serve_json_string(t, m->title);
        serve_json_key(t, "description", false);
        serve_json_string(t, m->description);
        cli_text_printf(t, ",\"needs_gradients\":%s}", m->needs & FX_CAM_NEEDS_GRADIENTS ? "true" : "false");
    }
    cli_text_printf(t, "],\"default\":");
    serve_json_string(t, fx_cam_method_name(FX_CAM_GRADCAM));
    cli_text_printf(t, "}\n");
}

static void describe_colormaps(server *srv)
{
    cli_text *t = &srv->colormaps_json;
    cli_text_printf(t, "{\"colormaps\":[");
    for (uint32_t i = 0; i < fx_colormap_count(); i++) {
        int32_t id = fx_colormap_at(i);
        uint8_t rgb[768];
        if (fx_colormap_table(id, rgb) != FX_OK) {
            continue;
        }
        cli_text_printf(t, "%s{\"id\":%d,\"name\":", i ? "," : "", id);
        serve_json_string(t, fx_colormap_name(id));
        cli_text_printf(t, ",\"table\":[");
        for (int k = 0; k < 768; k++) {
            cli_text_printf(t, "%s%u", k ? "," : "", rgb[k]);
        }
        cli_text_printf(t, "]}");
    }
    cli_text_printf(t, "],\"default\":\"%s\"}\n", fx_colormap_name(FX_COLORMAP_JET));
}

/* ---- Request parameters ------------------------------------------------ */

typedef struct query_params {
    serve_param items[SERVE_MAX_PARAMS];
    size_t count;
    bool too_many;
} query_params;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    query_params *q = cls;
    if (q->count == SERVE_MAX_PARAMS) {
        q->too_many = true;
        return MHD_NO;
    }
    q->items[q->count].key = key;
    q->items[q->count].value = value;
    q->count++;
    return MHD_YES;
}

/* Reads and checks the query parameters of an explain request
 * (serve_params.c). Returns false with the reason in why. */
static bool parse_explain(server *srv, struct MHD_Connection *conn, explain_params *p, char *why, size_t why_size)
{
    query_params q = {.count = 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, &q);
    if (q.too_many) {
        snprintf(why, why_size, "more than %d query parameters", SERVE_MAX_PARAMS);
        return false;
    }
    return serve_parse_explain(q.items, q.count, srv->class_names, fx_model_result_class_count(srv->model), p, why,
                               why_size);
}

/* Requests are computed together when these agree. */
static bool same_compute(const explain_params *a, const explain_params *b)
{
    return a->method_count == b->method_count &&
           memcmp(a->methods, b->methods, a->method_count * sizeof a->methods[0]) == 0 &&
           strcmp(a->layer, b->layer) == 0 && a->target_class == b->target_class;
}

/* ---- Answers from a pass (on the request's HTTP thread) ---------------- */

static void answer_error(request *r, unsigned status, const char *message)
{
    cli_text_free(&r->answer);
    r->status = status;
    error_json(&r->answer, message);
}

static unsigned status_for_load(fx_status status)
{
    return status == FX_ERR_LIMIT ? 413 : status == FX_ERR_OUT_OF_MEMORY
               ? MHD_HTTP_SERVICE_UNAVAILABLE : status == FX_ERR_NOT_AVAILABLE ? 415 : MHD_HTTP_BAD_REQUEST;
}

static unsigned status_for_compute(fx_status status)
{
    return status == FX_ERR_LAYER || status == FX_ERR_INVALID_ARGUMENT ? MHD_HTTP_BAD_REQUEST
                                                                         : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* index -1 (a target that was a weighted sum of classes) is named
 * "weighted classes" (cli_target_name). */
static void json_class(cli_text *t, const fx_model *m, int32_t index)
{
    cli_text_printf(t, "{\"index\":%d,\"name\":", index);
    serve_json_string(t, cli_target_name(m, index));
}

/* The figure the CLI would write: one method as original | heatmap |
 * overlay, two as the compare figure. */
static fx_status compose_figure(server *srv, const request *r, const fx_image *image, const fx_result *res, size_t i,
                                fx_image *figure)
{
    const explain_params *p = &r->params;
    int32_t predicted = fx_result_predicted_class(res, i);
    char title[160], source[400];
    if (p->method_count >= 2) {
        snprintf(title, sizeof title, "%s vs %s", cli_method_title(p->methods[0]), cli_method_title(p->methods[1]));
    } else {
        snprintf(title, sizeof title, "%s", cli_method_title(p->methods[0]));
    }
    cli_source(&srv->cfg.model, NULL, source, sizeof source);
    fx_figure_options f;
    fx_figure_options_init(&f);
    f.alpha = p->alpha;
    f.colormap = p->colormap;
    f.threshold = p->threshold;
    f.label = fx_model_class_name(srv->model, (uint32_t)predicted);
    f.confidence = fx_result_confidence(res, i);
    f.method = title;
    f.source = source;
    f.layer = fx_result_layer(res);
    if (p->method_count >= 2) {
        return fx_figure_compare(image, fx_result_heatmap(res, i, 0), cli_method_title(p->methods[0]),
                                 fx_result_heatmap(res, i, 1), cli_method_title(p->methods[1]), &f, figure);
    }
    return fx_figure_compose(image, fx_result_heatmap(res, i, 0), &f, figure);
}

/* The PNGs of one answer, encoded once, then inlined as base64 or kept in
 * the results store. */
typedef struct answer_files {
    serve_result_file items[2 + 2 * FX_CAM_METHOD_COUNT];
    size_t count;
    double png_ms, figure_ms, overlay_ms; /* encoding all PNGs; composing figure and overlays */
} answer_files;

/* Encodes img as PNG under name; false (nothing added) when it cannot. */
static bool add_png(answer_files *f, const char *name, const char *suffix, const fx_image *img, bool drawn)
{
    serve_result_file *item = &f->items[f->count];
    memset(item, 0, sizeof *item);
    snprintf(item->name, sizeof item->name, "%s%s%s", name, suffix ? "-" : "", suffix ? suffix : "");
    double t0 = cli_now();
    bool ok = serve_png_encode(img, drawn, &item->png);
    f->png_ms += (cli_now() - t0) * 1000.0;
    f->count += ok;
    return ok;
}

static const serve_result_file *file_named(const answer_files *f, const char *name, const char *suffix)
{
    char full[48];
    snprintf(full, sizeof full, "%s%s%s", name, suffix ? "-" : "", suffix ? suffix : "");
    for (size_t i = 0; i < f->count; i++) {
        if (strcmp(f->items[i].name, full) == 0) {
            return &f->items[i];
        }
    }
    return NULL;
}

/* "key":"<base64>" inline, "key_url":"/api/v1/results/<id>/<name>.png" by
 * reference, null when the file could not be made. */
static void json_file(cli_text *t, const char *key, const answer_files *f, const char *name, const char *suffix,
                      const char *id)
{
    const serve_result_file *file = file_named(f, name, suffix);
    if (id) {
        char url_key[64];
        snprintf(url_key, sizeof url_key, "%s_url", key);
        serve_json_key(t, url_key, false);
        if (file) {
            cli_text_printf(t, "\"/api/v1/results/%s/%s.png\"", id, file->name);
        } else {
            cli_text_printf(t, "null");
        }
        return;
    }
    serve_json_key(t, key, false);
    if (file) {
        serve_json_base64(t, file->png.data, file->png.size);
    } else {
        cli_text_printf(t, "null");
    }
}

/* Every PNG of row i: the image as the model read it, each method's 8-bit
 * heatmap, its overlay (by reference only: the page blends its own), and the
 * figure when asked for. figure_error receives the library's message when
 * the figure could not be composed. */
static void encode_files(server *srv, request *r, const fx_image *rgb, answer_files *f, char *figure_error,
                         size_t error_size)
{
    const fx_result *res = r->pass->result;
    size_t i = r->row;
    f->count = 0;
    f->png_ms = f->figure_ms = f->overlay_ms = 0.0;
    if (r->view_png.data) {
        /* encoded while the pass ran (prepare_view) */
        serve_result_file *item = &f->items[f->count++];
        snprintf(item->name, sizeof item->name, "image");
        item->png = r->view_png;
        memset(&r->view_png, 0, sizeof r->view_png);
    }
    for (uint32_t j = 0; j < fx_result_method_count(res); j++) {
        const fx_image *map = fx_result_heatmap(res, i, j);
        const char *method = fx_cam_method_name(fx_result_method(res, j));
        fx_image gray = {0};
        if (serve_heatmap_gray8(map, &gray)) {
            add_png(f, "heatmap", method, &gray, false);
        }
        fx_image_free(&gray);
        if (r->params.by_ref && rgb->data) {
            fx_overlay_options o;
            fx_overlay_options_init(&o);
            o.alpha = r->params.alpha;
            o.colormap = r->params.colormap;
            o.threshold = r->params.threshold;
            fx_image overlay = {0};
            double t0 = cli_now();
            fx_status made = fx_overlay(rgb, map, &o, &overlay);
            f->overlay_ms += (cli_now() - t0) * 1000.0;
            if (made == FX_OK) {
                add_png(f, "overlay", method, &overlay, false);
            }
            fx_image_free(&overlay);
        }
    }
    if (r->params.figure) {
        fx_image figure = {0};
        double t0 = cli_now();
        fx_status made = compose_figure(srv, r, rgb, res, i, &figure);
        f->figure_ms = (cli_now() - t0) * 1000.0;
        if (made == FX_OK) {
            add_png(f, "figure", NULL, &figure, true);
        } else {
            snprintf(figure_error, error_size, "%s", fx_last_error());
        }
        fx_image_free(&figure);
    }
}

/* Keeps f's PNGs in the store (they move there) and writes the id; false
 * with r's error answer set when it cannot. */
static bool keep_files(server *srv, request *r, answer_files *f, char id[SERVE_RESULT_ID_SIZE])
{
    serve_put_status put = serve_results_put(srv->results, f->items, f->count, cli_now(), id);
    if (put == SERVE_PUT_OK) {
        return true;
    }
    answer_error(r, put == SERVE_PUT_TOO_LARGE ? 413 : MHD_HTTP_SERVICE_UNAVAILABLE,
                 put == SERVE_PUT_TOO_LARGE ? "this result's PNGs are larger than the results store "
                                              "(--results-mb): ask with return=inline"
                 : put == SERVE_PUT_NO_RANDOM ? "no random id could be made (getrandom failed)" : "out of memory");
    return false;
}

/* "result": the id, when it expires and the URL of every file. */
static void json_result_ref(cli_text *t, server *srv, const answer_files *f, const char *id)
{
    cli_text_printf(t, ",\"result\":{\"id\":\"%s\",\"expires_in_s\":%u,\"files\":{", id, srv->cfg.results_ttl);
    for (size_t k = 0; k < f->count; k++) {
        serve_json_key(t, f->items[k].name, k == 0);
        cli_text_printf(t, "\"/api/v1/results/%s/%s.png\"", id, f->items[k].name);
    }
    cli_text_printf(t, "}}");
}

/* Where the request's time went, in ms (docs/serve.md, "timing"). */
static void json_timing(cli_text *t, const request *r, const answer_files *f)
{
    const pass *p = r->pass;
    double now = cli_now();
    const struct { const char *key; double ms; } items[] = {
        {"upload_ms", (r->received - r->start) * 1000.0},
        {"decode_ms", (r->decoded - r->received) * 1000.0},
        {"queue_ms", (p->started - r->queued) * 1000.0},
        {"compute_ms", p->compute_ms},
        {"handoff_ms", (r->resumed - p->started) * 1000.0 - p->compute_ms},
        {"view_ms", r->view_ms},
        {"figure_ms", f->figure_ms},
        {"overlay_ms", f->overlay_ms},
        {"png_ms", f->png_ms},
        {"answer_ms", (now - r->resumed) * 1000.0},
        {"total_ms", (now - r->start) * 1000.0},
    };
    cli_text_printf(t, ",\"timing\":{");
    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
        serve_json_key(t, items[k].key, k == 0);
        serve_json_number(t, items[k].ms);
    }
    cli_text_printf(t, ",\"batch_size\":%zu}}\n", p->size);
}

/* The image as the model read it (its intensity rule and the loader's bits),
 * as the CLI's figures show it, and its PNG. Needs only the upload, so the
 * request's HTTP thread does it while the model thread runs the pass. */
static void prepare_view(server *srv, request *r)
{
    double t0 = cli_now();
    if (cli_model_view(srv->model, &r->image, &r->info, &r->view) == FX_OK) {
        (void)serve_png_encode(&r->view, false, &r->view_png);
    }
    r->view_ms = (cli_now() - t0) * 1000.0;
}

/* Writes request r's answer from row i of its pass. */
static void answer_result(server *srv, request *r)
{
    const fx_model *m = srv->model;
    const fx_image *image = &r->image;
    const fx_result *res = r->pass->result;
    size_t i = r->row;
    /* The image as the model read it (its intensity rule and the loader's
     * bits), as the CLI's figures show it. */
    if (!r->view.data) {
        prepare_view(srv, r);
    }
    answer_files files;
    char figure_error[512] = "";
    encode_files(srv, r, &r->view, &files, figure_error, sizeof figure_error);
    fx_image_free(&r->view);
    char id_text[SERVE_RESULT_ID_SIZE] = "";
    const char *id = NULL;
    if (r->params.by_ref) {
        if (!keep_files(srv, r, &files, id_text)) {
            return;
        }
        id = id_text;
    }
    cli_text *t = &r->answer;
    cli_text_free(t);
    r->status = MHD_HTTP_OK;
    cli_text_printf(t, "{\"prediction\":");
    json_class(t, m, fx_result_predicted_class(res, i));
    cli_text_printf(t, ",\"confidence\":");
    serve_json_number(t, fx_result_confidence(res, i));
    cli_text_printf(t, "},\"target_class\":");
    json_class(t, m, fx_result_target_class(res, i));
    cli_text_printf(t, "},\"probabilities\":[");
    uint32_t count = 0;
    const float *prob = fx_result_probabilities(res, i, &count);
    for (uint32_t k = 0; prob && k < count; k++) {
        cli_text_printf(t, "%s", k ? "," : "");
        json_class(t, m, (int32_t)k);
        cli_text_printf(t, ",\"probability\":");
        serve_json_number(t, prob[k]);
        cli_text_printf(t, "}");
    }
    cli_text_printf(t, "]");
    serve_json_key(t, "layer", false);
    serve_json_string(t, fx_result_layer(res));
    cli_text_printf(t, ",\"image\":{\"width\":%u,\"height\":%u,\"channels\":%u}", image->width, image->height,
                    image->channels);
    serve_json_key(t, "colormap", false);
    serve_json_string(t, fx_colormap_name(r->params.colormap));
    cli_text_printf(t, ",\"alpha\":");
    serve_json_number(t, r->params.alpha);
    cli_text_printf(t, ",\"threshold\":");
    serve_json_number(t, r->params.threshold);
    json_file(t, "image_png", &files, "image", NULL, id);
    cli_text_printf(t, ",\"heatmaps\":[");
    for (uint32_t j = 0; j < fx_result_method_count(res); j++) {
        const fx_image *map = fx_result_heatmap(res, i, j);
        int32_t method = fx_result_method(res, j);
        uint32_t px = 0, py = 0;
        cli_heatmap_peak(map, &px, &py);
        cli_text_printf(t, "%s{\"method\":", j ? "," : "");
        serve_json_string(t, fx_cam_method_name(method));
        serve_json_key(t, "title", false);
        serve_json_string(t, cli_method_title(method));
        cli_text_printf(t, ",\"peak\":{\"x\":%u,\"y\":%u}", px, py);
        json_file(t, "png", &files, "heatmap", fx_cam_method_name(method), id);
        if (id) {
            json_file(t, "overlay_png", &files, "overlay", fx_cam_method_name(method), id);
        }
        cli_text_printf(t, "}");
    }
    cli_text_printf(t, "],\"warnings\":[");
    bool first = true;
    for (size_t w = 0; w < fx_result_warning_count(res); w++) {
        int32_t code = 0;
        int64_t about = -1;
        const char *msg = fx_result_warning(res, w, &code, &about);
        if (!msg || (about != -1 && about != (int64_t)i)) {
            continue;
        }
        cli_text_printf(t, "%s{\"code\":%d,\"message\":", first ? "" : ",", code);
        serve_json_string(t, msg);
        cli_text_printf(t, "}");
        first = false;
    }
    cli_text_printf(t, "]");
    if (r->params.figure && figure_error[0]) {
        serve_json_key(t, "figure_error", false);
        serve_json_string(t, figure_error);
    } else if (r->params.figure) {
        json_file(t, "figure_png", &files, "figure", NULL, id);
    }
    if (id) {
        json_result_ref(t, srv, &files, id);
    }
    for (size_t k = 0; k < files.count; k++) {
        serve_bytes_free(&files.items[k].png); /* already moved (zeroed) when kept */
    }
    json_timing(t, r, &files);
}

/* Lets go of r's pass; the last request of a pass frees its result. Called
 * once the answer is written, and when a connection closes before that. */
static void release_pass(request *r)
{
    pass *p = r->pass;
    r->pass = NULL;
    if (p && atomic_fetch_sub(&p->users, 1) == 1) {
        fx_result_free(p->result);
        free(p);
    }
}

/* ---- The model thread: passes only ------------------------------------- */

/* Runs one pass over the decoded images of group[0..n) and hands each
 * request its row (or its error). */
static void compute_group(server *srv, request **group, size_t n)
{
    const explain_params *p = &group[0]->params;
    fx_image images[MAX_BATCH];
    fx_image_info infos[MAX_BATCH];
    for (size_t k = 0; k < n; k++) {
        images[k] = group[k]->image; /* shallow: the requests keep ownership */
        infos[k] = group[k]->info;
    }
    fx_gradcam_options opts;
    fx_gradcam_options_init(&opts);
    opts.image_info = infos; /* 12-bit sBIT data read as the CLI reads it */
    opts.layer = p->layer[0] ? p->layer : NULL;
    opts.target_class = p->target_class;
    opts.methods = p->methods;
    opts.method_count = p->method_count;
    opts.batch_size = (uint32_t)n;
    fx_result *res = NULL;
    double t0 = cli_now();
    fx_status status = fx_gradcam_compute(srv->model, images, n, &opts, &res);
    double ms = (cli_now() - t0) * 1000.0;
    if (status != FX_OK && n > 1) {
        /* One bad image must not fail the others: answer each on its own. */
        for (size_t k = 0; k < n; k++) {
            compute_group(srv, group + k, 1);
        }
        return;
    }
    pass *shared = status == FX_OK ? calloc(1, sizeof *shared) : NULL;
    if (status == FX_OK && !shared) {
        fx_result_free(res);
        for (size_t k = 0; k < n; k++) {
            answer_error(group[k], MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        }
        return;
    }
    if (shared) {
        shared->result = res;
        shared->size = n;
        shared->started = t0;
        shared->compute_ms = ms;
        atomic_init(&shared->users, n);
    }
    for (size_t k = 0; k < n; k++) {
        if (shared) {
            group[k]->pass = shared;
            group[k]->row = k;
        } else {
            answer_error(group[k], status_for_compute(status), fx_last_error()[0] ? fx_last_error()
                                                                                  : fx_status_str(status));
        }
    }
}

/* Number of requests at the head of the queue that can share a pass. */
static size_t matching_head(server *srv)
{
    size_t n = 1, cap = srv->cfg.queue_capacity;
    const request *first = srv->queue[srv->head];
    while (n < srv->count && n < MAX_BATCH &&
           same_compute(&first->params, &srv->queue[(srv->head + n) % cap]->params)) {
        n++;
    }
    return n;
}

static void *worker_main(void *arg)
{
    server *srv = arg;
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        while (srv->count == 0 && !srv->stopping) {
            pthread_cond_wait(&srv->wake, &srv->lock);
        }
        if (srv->count == 0) {
            pthread_mutex_unlock(&srv->lock);
            return NULL;
        }
        /* No collection window: what waited while the last pass ran is this
         * pass; a request that finds the model idle starts at once. */
        request *batch[MAX_BATCH];
        size_t n = matching_head(srv);
        for (size_t k = 0; k < n; k++) {
            batch[k] = srv->queue[srv->head];
            srv->head = (srv->head + 1) % srv->cfg.queue_capacity;
            srv->count--;
        }
        bool stopping = srv->stopping;
        pthread_mutex_unlock(&srv->lock);
        if (stopping) {
            for (size_t k = 0; k < n; k++) {
                answer_error(batch[k], MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down");
                batch[k]->retry_after = true;
            }
        } else {
            compute_group(srv, batch, n);
        }
        for (size_t k = 0; k < n; k++) {
            batch[k]->ready = true;
            MHD_resume_connection(batch[k]->conn);
        }
    }
}

#define BUSY_MESSAGE "the server is busy (request queue full); retry after the time in Retry-After"

/* A hint only (the queue may fill before enqueue): saves decoding an upload
 * that would be refused. */
static bool queue_has_room(server *srv)
{
    pthread_mutex_lock(&srv->lock);
    bool room = !srv->stopping && srv->count < srv->cfg.queue_capacity;
    pthread_mutex_unlock(&srv->lock);
    return room;
}

/* Puts r in the queue with its connection suspended; false when full. */
static bool enqueue(server *srv, request *r)
{
    pthread_mutex_lock(&srv->lock);
    if (srv->stopping || srv->count == srv->cfg.queue_capacity) {
        pthread_mutex_unlock(&srv->lock);
        return false;
    }
    /* Suspended before the worker can see it, so resume always follows. */
    MHD_suspend_connection(r->conn);
    r->queued = cli_now();
    srv->queue[(srv->head + srv->count) % srv->cfg.queue_capacity] = r;
    srv->count++;
    pthread_cond_signal(&srv->wake);
    pthread_mutex_unlock(&srv->lock);
    return true;
}

/* ---- HTTP -------------------------------------------------------------- */

static bool constant_time_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) {
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    }
    return diff == 0;
}

static bool authorized(server *srv, struct MHD_Connection *conn)
{
    if (!srv->cfg.token) {
        return true;
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return auth && strncmp(auth, "Bearer ", 7) == 0 && constant_time_equal(auth + 7, srv->cfg.token);
}

static bool append_body(request *r, const char *data, size_t size)
{
    if (r->body.size + size > r->srv->cfg.max_upload) {
        r->too_large = true;
        return false;
    }
    if (r->body.size + size > r->body.capacity) {
        size_t cap = r->body.capacity ? r->body.capacity : 65536;
        while (cap < r->body.size + size) {
            cap *= 2;
        }
        cap = cap > r->srv->cfg.max_upload ? r->srv->cfg.max_upload : cap;
        uint8_t *grown = realloc(r->body.data, cap);
        if (!grown) {
            r->too_large = true;
            return false;
        }
        r->body.data = grown;
        r->body.capacity = cap;
    }
    memcpy(r->body.data + r->body.size, data, size);
    r->body.size += size;
    return true;
}

static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                    const char *content_type, const char *transfer_encoding, const char *data,
                                    uint64_t off, size_t size)
{
    (void)kind;
    (void)filename; /* may name the patient: never kept, logged or returned */
    (void)content_type;
    (void)transfer_encoding;
    request *r = cls;
    if (!key || strcmp(key, "file") != 0) {
        r->bad_field = true;
        return MHD_NO;
    }
    if (off == 0 && (r->file_parts == 0 || r->body.size > 0)) {
        r->file_parts++;
    }
    if (r->file_parts > 1) {
        return MHD_NO;
    }
    return size == 0 || append_body(r, data, size) ? MHD_YES : MHD_NO;
}

#define RESULTS_PREFIX "/api/v1/results/"

static enum route route_of(const char *url)
{
    static const struct { const char *path; enum route route; } routes[] = {
        {"/", ROUTE_PAGE},
        {"/healthz", ROUTE_HEALTH},
        {"/api/v1/model", ROUTE_MODEL},
        {"/api/v1/methods", ROUTE_METHODS},
        {"/api/v1/colormaps", ROUTE_COLORMAPS},
        {"/api/v1/explain", ROUTE_EXPLAIN},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path) == 0) {
            return routes[i].route;
        }
    }
    return strncmp(url, RESULTS_PREFIX, strlen(RESULTS_PREFIX)) == 0 ? ROUTE_RESULT : (enum route) - 1;
}

/* Splits "<id>/<name>.png" (after RESULTS_PREFIX) into id and name; false
 * unless the id is 32 lowercase hex digits and the name is letters, digits,
 * '-' and '+' (method names such as gradcam++): nothing else reaches the store. */
static bool parse_result_path(const char *rest, char id[SERVE_RESULT_ID_SIZE], char name[48])
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash - rest != SERVE_RESULT_ID_SIZE - 1) {
        return false;
    }
    for (const char *p = rest; p < slash; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    const char *file = slash + 1;
    size_t len = strlen(file);
    if (len <= 4 || len - 4 >= 48 || strcmp(file + len - 4, ".png") != 0) {
        return false;
    }
    for (size_t i = 0; i < len - 4; i++) {
        char c = file[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '+')) {
            return false;
        }
    }
    memcpy(id, rest, SERVE_RESULT_ID_SIZE - 1);
    id[SERVE_RESULT_ID_SIZE - 1] = '\0';
    memcpy(name, file, len - 4);
    name[len - 4] = '\0';
    return true;
}

/* GET /api/v1/results/<id>/<name>.png: a kept PNG, or 404 once it expired
 * or was evicted (the same answer as for an id that never existed). */
static enum MHD_Result send_result_file(server *srv, struct MHD_Connection *conn, request *r, const char *url)
{
    char id[SERVE_RESULT_ID_SIZE], name[48];
    serve_bytes png = {0};
    if (!parse_result_path(url + strlen(RESULTS_PREFIX), id, name) ||
        !serve_results_get(srv->results, id, name, cli_now(), &png)) {
        return send_error(conn, r, MHD_HTTP_NOT_FOUND, "no such result file: results are kept for --results-ttl "
                          "seconds and while fewer than --results newer ones (and --results-mb) fill the store; "
                          "ask POST /api/v1/explain again");
    }
    r->status = MHD_HTTP_OK;
    return send_text(conn, MHD_HTTP_OK, "image/png", (char *)png.data, png.size, MHD_RESPMEM_MUST_FREE, false);
}

static enum MHD_Result send_page(struct MHD_Connection *conn, request *r)
{
    r->status = MHD_HTTP_OK;
    struct MHD_Response *response = MHD_create_response_from_buffer(cli_serve_page_size, (void *)cli_serve_page,
                                                                    MHD_RESPMEM_PERSISTENT);
    if (!response) {
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    /* Nothing outside this server: no CDN, no fonts, no analytics. */
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return rc;
}

/* First call of a request: route, token, and for an upload the declared size. */
static enum MHD_Result start_request(server *srv, request *r, struct MHD_Connection *conn, const char *url,
                                     const char *method)
{
    int route = (int)route_of(url);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (strncmp(url, "/api/", 5) == 0 && !authorized(srv, conn)) {
        return send_error(conn, r, MHD_HTTP_UNAUTHORIZED, "missing or wrong token: send 'Authorization: Bearer "
                          "<token>' as given to fxcam serve --token");
    }
    if (route < 0) {
        return send_error(conn, r, MHD_HTTP_NOT_FOUND, "no such resource; see docs/serve.md for the API");
    }
    r->route = (enum route)route;
    if (r->route != ROUTE_EXPLAIN ? !get : !post) {
        return send_error(conn, r, MHD_HTTP_METHOD_NOT_ALLOWED,
                          r->route == ROUTE_EXPLAIN ? "use POST with the image as the body"
                                                    : "use GET");
    }
    switch (r->route) {
    case ROUTE_PAGE: return send_page(conn, r);
    case ROUTE_HEALTH: {
        cli_text t = {0};
        cli_text_printf(&t, "{\"status\":\"ok\"}\n");
        return send_json(conn, r, MHD_HTTP_OK, &t, false);
    }
    case ROUTE_MODEL: return send_copy(conn, r, &srv->model_json);
    case ROUTE_METHODS: return send_copy(conn, r, &srv->methods_json);
    case ROUTE_COLORMAPS: return send_copy(conn, r, &srv->colormaps_json);
    case ROUTE_RESULT: return send_result_file(srv, conn, r, url);
    case ROUTE_EXPLAIN: break;
    }
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        char *end = NULL;
        errno = 0;
        unsigned long long declared = strtoull(length, &end, 10);
        if (errno == ERANGE || (declared > srv->cfg.max_upload && end != length)) {
            char why[200];
            snprintf(why, sizeof why, "the upload is larger than this server's limit of %llu bytes (--max-upload)",
                     (unsigned long long)srv->cfg.max_upload);
            return send_error(conn, r, 413, why);
        }
    }
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && strncasecmp(type, "multipart/form-data", 19) == 0) {
        r->post = MHD_create_post_processor(conn, 16 * 1024, on_form_part, r);
        if (!r->post) {
            return send_error(conn, r, MHD_HTTP_BAD_REQUEST, "multipart/form-data without a usable boundary (RFC 2046: 1..70 characters)");
        }
    }
    return MHD_YES;
}

/* Last call of an upload: check it, then queue it. */
static enum MHD_Result finish_upload(server *srv, request *r, struct MHD_Connection *conn)
{
    if (r->too_large) {
        char why[200];
        snprintf(why, sizeof why, "the upload is larger than this server's limit of %llu bytes (--max-upload)",
                 (unsigned long long)srv->cfg.max_upload);
        return send_error(conn, r, 413, why);
    }
    if (r->post) {
        bool complete = MHD_destroy_post_processor(r->post) == MHD_YES;
        r->post = NULL;
        if (r->bad_field || r->file_parts > 1) {
            return send_error(conn, r, MHD_HTTP_BAD_REQUEST, "the form must hold exactly one part, named 'file'");
        }
        if (!complete || r->file_parts == 0) {
            return send_error(conn, r, MHD_HTTP_BAD_REQUEST, "truncated or malformed multipart body: expected one "
                              "complete part named 'file'");
        }
    }
    if (r->body.size == 0) {
        return send_error(conn, r, MHD_HTTP_BAD_REQUEST, "empty upload: send the image (PNG, JPEG or DICOM) as the "
                          "body, or as the form part 'file'");
    }
    char why[600];
    if (!parse_explain(srv, conn, &r->params, why, sizeof why)) {
        return send_error(conn, r, MHD_HTTP_BAD_REQUEST, why);
    }
    /* Decoding here, on this connection's HTTP thread, keeps the model
     * thread for passes; a full queue is refused before the work. */
    if (!queue_has_room(srv)) {
        return send_error(conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, BUSY_MESSAGE);
    }
    fx_load_options limits;
    fx_load_options_init(&limits);
    memset(&r->info, 0, sizeof r->info);
    r->info.struct_size = sizeof r->info;
    limits.info = &r->info;
    fx_status status = fx_image_load_memory(r->body.data, r->body.size, &limits, &r->image);
    serve_bytes_free(&r->body); /* the upload is not kept past decoding */
    r->decoded = cli_now();
    if (status != FX_OK) {
        snprintf(why, sizeof why, "the upload is not an image fxcam can read: %s",
                 fx_last_error()[0] ? fx_last_error() : fx_status_str(status));
        return send_error(conn, r, status_for_load(status), why);
    }
    if (!enqueue(srv, r)) {
        return send_error(conn, r, MHD_HTTP_SERVICE_UNAVAILABLE, BUSY_MESSAGE);
    }
    /* The connection is suspended; if the pass ends first, libmicrohttpd
     * resumes it on this thread only after this function returns. */
    prepare_view(srv, r);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    server *srv = cls;
    request *r = *state;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) {
            return MHD_NO;
        }
        r->srv = srv;
        r->conn = conn;
        r->start = cli_now();
        r->status = 0;
        *state = r;
        return start_request(srv, r, conn, url, method);
    }
    if (r->ready) {
        r->ready = false;
        r->resumed = cli_now();
        if (r->pass) {
            answer_result(srv, r);
            release_pass(r);
        }
        fx_image_free(&r->image);
        return send_json(conn, r, r->status, &r->answer, r->retry_after);
    }
    if (r->status != 0) {
        /* Already answered (an error before the body): discard the rest. */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t size = *upload_size;
        *upload_size = 0;
        /* MHD's timeout counts idle time only; a client trickling a byte now
         * and then would hold its connection for ever. */
        if (cli_now() - r->start > 2.0 * srv->cfg.timeout) {
            return MHD_NO;
        }
        if (r->too_large) {
            /* Past the limit without a declared length (chunked): stop reading. */
            return r->body.size + size > 2 * srv->cfg.max_upload ? MHD_NO : MHD_YES;
        }
        if (r->post) {
            /* A refused part sets bad_field, file_parts or too_large;
             * finish_upload answers it. */
            (void)MHD_post_process(r->post, upload_data, size);
        } else {
            append_body(r, upload_data, size);
        }
        return MHD_YES;
    }
    r->received = cli_now();
    return finish_upload(srv, r, conn);
}

/* Log line without file content or names that could identify a patient:
 * the method, the path (printable ASCII only), the status and the time. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    request *r = *state;
    if (!r) {
        return;
    }
    fprintf(stderr, "fxcam serve: %s %.0f ms%s\n",
            r->status ? (r->status == 200 ? "200" : r->status == 400 ? "400" : r->status == 401 ? "401"
                         : r->status == 404 ? "404" : r->status == 405 ? "405" : r->status == 413 ? "413"
                         : r->status == 503 ? "503" : "5xx") : "---",
            (cli_now() - r->start) * 1000.0,
            why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : why == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                ? " (client timed out)" : " (connection closed)");
    if (r->post) {
        MHD_destroy_post_processor(r->post);
    }
    serve_bytes_free(&r->body);
    release_pass(r);
    fx_image_free(&r->image);
    fx_image_free(&r->view);
    serve_bytes_free(&r->view_png);
    cli_text_free(&r->answer);
    free(r);
    *state = NULL;
}

/* ---- Options and main loop --------------------------------------------- */

static void print_serve_help(FILE *to)
{
    fprintf(to,
            "Usage: fxcam serve [--model PATH] [--host 127.0.0.1] [--port 8080] [--workers N]\n"
            "                   [--max-upload MB] [--token T] [--queue N] [--timeout S]\n"
            "                   [--results N] [--results-mb MB] [--results-ttl S]\n\n"
            "Serves the page (upload a radiograph, see the prediction and where the model\n"
            "looks) and the JSON API under /api/v1 (docs/serve.md). The model is loaded once.\n"
            "Binds to loopback unless --host says otherwise; any other address needs --token\n"
            "(or FXCAM_SERVE_TOKEN), then every /api call needs 'Authorization: Bearer T'.\n\n"
            "  --model PATH      TorchScript model (default: the embedded fracture model)\n"
            "  --host ADDR       IPv4 or IPv6 address to bind (default 127.0.0.1)\n"
            "  --port N          TCP port, 0 = any free one (default 8080)\n"
            "  --workers N       HTTP threads (default 4); the model runs on one worker\n"
            "                    that batches concurrent requests (up to %d per pass)\n"
            "  --max-upload MB   largest upload, 1..4096 (default 64); larger: 413\n"
            "  --token T         required bearer token for /api calls\n"
            "  --queue N         requests waiting for the model, 1..1024 (default 32);\n"
            "                    more: 503 with Retry-After\n"
            "  --timeout S       close connections idle for S seconds, and uploads not\n"
            "                    finished after 2 x S seconds (default 30)\n"
            "  --results N       results kept for explain?return=ref, 1..4096 (default 64);\n"
            "                    the least recently used goes first\n"
            "  --results-mb MB   PNG bytes those may hold, 1..65536 (default 256)\n"
            "  --results-ttl S   seconds a kept result is served, 1..86400 (default 300);\n"
            "                    after that GET /api/v1/results/... answers 404\n"
            "  --device DEV      auto (default), cpu, cuda, cuda:N\n"
            "  --threads N       CPU threads (default: all)\n"
            "SIGINT or SIGTERM stops the server cleanly.\n", MAX_BATCH);
}

static bool parse_count(const char *text, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (end == text || *end || errno || text[0] == '-' || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static int parse_serve_args(int argc, char **argv, serve_config *c, bool *help)
{
    memset(c, 0, sizeof *c);
    c->model.command = "serve";
    c->model.device = "auto";
    c->host = "127.0.0.1";
    c->port = 8080;
    c->workers = 4;
    c->max_upload = 64ull << 20;
    c->queue_capacity = 32;
    c->timeout = 30;
    c->results_max = 64;
    c->results_mb = 256;
    c->results_ttl = 300;
    c->token = getenv("FXCAM_SERVE_TOKEN");
    if (c->token && !c->token[0]) {
        c->token = NULL;
    }
    *help = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            *help = true;
            return CLI_EXIT_OK;
        }
        static const char *const with_value[] = {"--model", "--host", "--port", "--workers", "--max-upload",
                                                 "--token", "--queue", "--timeout", "--device", "--threads",
                                                 "--results", "--results-mb", "--results-ttl", NULL};
        const char *name = NULL, *value = NULL;
        for (size_t k = 0; with_value[k]; k++) {
            size_t n = strlen(with_value[k]);
            if (strncmp(arg, with_value[k], n) == 0 && (arg[n] == '\0' || arg[n] == '=')) {
                name = with_value[k];
                value = arg[n] == '=' ? arg + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
            }
        }
        if (!name) {
            return cli_usage_error("serve", "unknown option '%s'", cli_name(arg));
        }
        if (!value) {
            return cli_usage_error("serve", "%s needs a value", name);
        }
        unsigned long v = 0;
        if (strcmp(name, "--model") == 0) {
            c->model.model = value;
        } else if (strcmp(name, "--host") == 0) {
            c->host = value;
        } else if (strcmp(name, "--token") == 0) {
            c->token = value[0] ? value : NULL;
        } else if (strcmp(name, "--device") == 0) {
            c->model.device = value;
        } else if (strcmp(name, "--port") == 0) {
            if (!parse_count(value, 0, 65535, &v)) {
                return cli_usage_error("serve", "--port '%s': give 0..65535 (0 = any free port)", cli_name(value));
            }
            c->port = (unsigned)v;
        } else if (strcmp(name, "--workers") == 0) {
            if (!parse_count(value, 1, 64, &v)) {
                return cli_usage_error("serve", "--workers '%s': give 1..64", cli_name(value));
            }
            c->workers = (unsigned)v;
        } else if (strcmp(name, "--max-upload") == 0) {
            if (!parse_count(value, 1, 4096, &v)) {
                return cli_usage_error("serve", "--max-upload '%s': give 1..4096 (MB)", cli_name(value));
            }
            c->max_upload = (uint64_t)v << 20;
        } else if (strcmp(name, "--queue") == 0) {
            if (!parse_count(value, 1, 1024, &v)) {
                return cli_usage_error("serve", "--queue '%s': give 1..1024", cli_name(value));
            }
            c->queue_capacity = (unsigned)v;
        } else if (strcmp(name, "--timeout") == 0) {
            if (!parse_count(value, 1, 3600, &v)) {
                return cli_usage_error("serve", "--timeout '%s': give 1..3600 seconds", cli_name(value));
            }
            c->timeout = (unsigned)v;
        } else if (strcmp(name, "--results") == 0) {
            if (!parse_count(value, 1, 4096, &v)) {
                return cli_usage_error("serve", "--results '%s': give 1..4096", cli_name(value));
            }
            c->results_max = (unsigned)v;
        } else if (strcmp(name, "--results-mb") == 0) {
            if (!parse_count(value, 1, 65536, &v)) {
                return cli_usage_error("serve", "--results-mb '%s': give 1..65536 (MB)", cli_name(value));
            }
            c->results_mb = (unsigned)v;
        } else if (strcmp(name, "--results-ttl") == 0) {
            if (!parse_count(value, 1, 86400, &v)) {
                return cli_usage_error("serve", "--results-ttl '%s': give 1..86400 seconds", cli_name(value));
            }
            c->results_ttl = (unsigned)v;
        } else if (strcmp(name, "--threads") == 0) {
            if (!parse_count(value, 0, 1024, &v)) {
                return cli_usage_error("serve", "--threads '%s': give 0..1024 (0 = all CPUs)", cli_name(value));
            }
            c->model.threads = (int32_t)v;
        }
    }
    return CLI_EXIT_OK;
}

typedef struct bind_address {
    struct sockaddr_storage storage;
    bool ipv6;
    bool loopback;
} bind_address;

static bool resolve_host(const char *host, unsigned port, bind_address *a)
{
    memset(a, 0, sizeof *a);
    if (strcmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->storage;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->storage;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        a->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        a->ipv6 = true;
        a->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        return true;
    }
    return false;
}

static void server_free(server *srv)
{
    fx_model_free(srv->model);
    cli_text_free(&srv->model_json);
    cli_text_free(&srv->methods_json);
    cli_text_free(&srv->colormaps_json);
    free(srv->queue);
    free(srv->class_names);
    serve_results_free(srv->results);
}

int cli_run_serve(int argc, char **argv)
{
    server srv;
    memset(&srv, 0, sizeof srv);
    bool help = false;
    int rc = parse_serve_args(argc, argv, &srv.cfg, &help);
    if (rc != CLI_EXIT_OK || help) {
        if (help) {
            print_serve_help(stdout);
        }
        return rc;
    }
    bind_address addr;
    if (!resolve_host(srv.cfg.host, srv.cfg.port, &addr)) {
        return cli_usage_error("serve", "--host '%s' is not an IPv4 or IPv6 address (or localhost)",
                               cli_name(srv.cfg.host));
    }
    if (!addr.loopback && !srv.cfg.token) {
        return cli_usage_error("serve", "--host %s is reachable from other machines: give --token T (or set "
                               "FXCAM_SERVE_TOKEN) so that only clients with the token can use the API",
                               cli_name(srv.cfg.host));
    }
    /* SIGINT/SIGTERM are taken by sigwait below: block them before any
     * thread starts (libtorch starts some when the model loads), so that
     * every thread inherits the mask and none dies of the default action. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = cli_load_model(&srv.cfg.model, &srv.model);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    uint32_t classes = fx_model_result_class_count(srv.model);
    srv.class_names = calloc(classes ? classes : 1, sizeof *srv.class_names);
    for (uint32_t c = 0; srv.class_names && c < classes; c++) {
        srv.class_names[c] = fx_model_class_name(srv.model, c);
    }
    describe_model(&srv);
    describe_methods(&srv);
    describe_colormaps(&srv);
    srv.queue = calloc(srv.cfg.queue_capacity, sizeof *srv.queue);
    srv.results = serve_results_new(srv.cfg.results_max, (size_t)srv.cfg.results_mb << 20, srv.cfg.results_ttl);
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.wake, NULL);

    if (!srv.queue || !srv.class_names || !srv.results || pthread_create(&srv.worker, NULL, worker_main, &srv) != 0) {
        cli_error("serve", "cannot start the worker thread");
        server_free(&srv);
        return CLI_EXIT_FAILURE;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr.ipv6) {
        flags |= MHD_USE_IPv6;
    }
    srv.daemon = MHD_start_daemon(flags, (uint16_t)srv.cfg.port, NULL, NULL, on_request, &srv,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr.storage,
                                  MHD_OPTION_THREAD_POOL_SIZE, srv.cfg.workers,
                                  MHD_OPTION_CONNECTION_TIMEOUT, srv.cfg.timeout,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
                                  MHD_OPTION_CONNECTION_LIMIT, 256u,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                  MHD_OPTION_END);
    bool started = srv.daemon != NULL;
    if (!started) {
        cli_error("serve", "cannot listen on %s port %u: %s", cli_name(srv.cfg.host), srv.cfg.port, strerror(errno));
        rc = CLI_EXIT_FAILURE;
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
        unsigned port = info ? info->port : srv.cfg.port;
        printf("fxcam serve: http://%s%s%s:%u/  (model %s on %s%s; Ctrl-C stops)\n", addr.ipv6 ? "[" : "",
               srv.cfg.host, addr.ipv6 ? "]" : "", port, cli_name(cli_model_name(&srv.cfg.model)),
               fx_model_device(srv.model), srv.cfg.token ? "; API needs the token" : "");
        fflush(stdout);
        int sig = 0;
        sigwait(&stop_signals, &sig);
        fprintf(stderr, "fxcam serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    pthread_mutex_lock(&srv.lock);
    srv.stopping = true;
    pthread_cond_broadcast(&srv.wake);
    pthread_mutex_unlock(&srv.lock);
    /* The worker answers what is queued (503) and resumes those
     * connections; no request is queued after stopping is set. */
    pthread_join(srv.worker, NULL);
    if (started) {
        MHD_stop_daemon(srv.daemon);
    }
    pthread_cond_destroy(&srv.wake);
    pthread_mutex_destroy(&srv.lock);
    server_free(&srv);
    return rc;
}

#endif
