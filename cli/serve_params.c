/* The query parameters of POST /api/v1/explain (docs/serve.md), parsed from
 * plain key/value pairs so that the rules are one function, fuzzed by
 * tests/fuzz/fuzz_serve.c without libmicrohttpd or a model. */
#include "serve.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const explain_keys[] = {"method", "methods", "layer", "class", "alpha", "threshold", "colormap",
                                           "figure", "return", NULL};

static bool parse_unit(const char *text, float *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v) || v < 0.0 || v > 1.0) {
        return false;
    }
    *out = (float)v;
    return true;
}

/* "gradcam++" arrives as "gradcam  " when a client does not encode '+'
 * (a '+' in a query string means a space). */
static bool parse_method(const char *name, size_t len, int32_t *method)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) {
        return false;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        buf[i] = buf[i] == ' ' ? '+' : buf[i];
    }
    return fx_cam_method_from_name(buf, method) == FX_OK;
}

static bool parse_methods(const char *text, explain_params *p, char *why, size_t why_size)
{
    p->method_count = 0;
    for (const char *s = text;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        int32_t m = 0;
        if (!parse_method(s, len, &m)) {
            snprintf(why, why_size, "unknown method '%.*s'; see GET /api/v1/methods", (int)(len > 60 ? 60 : len), s);
            return false;
        }
        for (uint32_t j = 0; j < p->method_count; j++) {
            if (p->methods[j] == m) {
                snprintf(why, why_size, "method '%s' given twice", fx_cam_method_name(m));
                return false;
            }
        }
        if (p->method_count == FX_CAM_METHOD_COUNT) {
            snprintf(why, why_size, "too many methods");
            return false;
        }
        p->methods[p->method_count++] = m;
        if (!comma) {
            return true;
        }
        s = comma + 1;
    }
}

static bool parse_class(const char *const *class_names, uint32_t count, const char *text, int32_t *target)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (end != text && !*end && !errno && text[0] >= '0' && text[0] <= '9' && v < count) {
        *target = (int32_t)v;
        return true;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (class_names[i] && strcasecmp(text, class_names[i]) == 0) {
            *target = (int32_t)i;
            return true;
        }
    }
    return false;
}

/* The value of key, "" for a key without "=value"; NULL when absent. */
static const char *value_of(const serve_param *params, size_t count, const char *key)
{
    for (size_t i = 0; i < count; i++) {
        if (params[i].key && strcmp(params[i].key, key) == 0) {
            return params[i].value ? params[i].value : "";
        }
    }
    return NULL;
}

/* Every key known and given once. */
static bool check_keys(const serve_param *params, size_t count, char *why, size_t why_size)
{
    for (size_t i = 0; i < count; i++) {
        const char *key = params[i].key ? params[i].key : "";
        bool known = false;
        for (size_t k = 0; explain_keys[k] && !known; k++) {
            known = strcmp(key, explain_keys[k]) == 0;
        }
        if (!known) {
            snprintf(why, why_size, "unknown parameter '%.60s'; valid: method, methods, layer, class, alpha, "
                     "threshold, colormap, figure, return", key);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (params[j].key && strcmp(params[j].key, key) == 0) {
                snprintf(why, why_size, "parameter '%s' given twice", key);
                return false;
            }
        }
    }
    return true;
}

bool serve_parse_explain(const serve_param *params, size_t count, const char *const *class_names,
                         uint32_t class_count, explain_params *p, char *why, size_t why_size)
{
    memset(p, 0, sizeof *p);
    p->methods[0] = FX_CAM_GRADCAM;
    p->method_count = 1;
    p->target_class = -1;
    p->alpha = 0.4f;
    p->colormap = FX_COLORMAP_JET;
    p->figure = true;
    if (!check_keys(params, count, why, why_size)) {
        return false;
    }
    const char *method = value_of(params, count, "method");
    const char *methods = value_of(params, count, "methods");
    if (method && methods) {
        snprintf(why, why_size, "give either method or methods, not both");
        return false;
    }
    if ((method || methods) && !parse_methods(method ? method : methods, p, why, why_size)) {
        return false;
    }
    if (method && p->method_count > 1) {
        snprintf(why, why_size, "method takes one name; use methods=A,B for several");
        return false;
    }
    const char *layer = value_of(params, count, "layer");
    if (layer) {
        if (!layer[0] || strlen(layer) >= sizeof p->layer) {
            snprintf(why, why_size, "layer must be 1..%zu characters; see GET /api/v1/model", sizeof p->layer - 1);
            return false;
        }
        snprintf(p->layer, sizeof p->layer, "%s", layer);
    }
    const char *klass = value_of(params, count, "class");
    if (klass && !parse_class(class_names, class_count, klass, &p->target_class)) {
        snprintf(why, why_size, "unknown class; give an index 0..%u or a class name (GET /api/v1/model)",
                 class_count ? class_count - 1 : 0);
        return false;
    }
    const char *alpha = value_of(params, count, "alpha");
    if (alpha && !parse_unit(alpha, &p->alpha)) {
        snprintf(why, why_size, "alpha must be a number in [0,1]");
        return false;
    }
    const char *threshold = value_of(params, count, "threshold");
    if (threshold && !parse_unit(threshold, &p->threshold)) {
        snprintf(why, why_size, "threshold must be a number in [0,1]");
        return false;
    }
    const char *colormap = value_of(params, count, "colormap");
    if (colormap && fx_colormap_from_name(colormap, &p->colormap) != FX_OK) {
        snprintf(why, why_size, "unknown colormap; see GET /api/v1/colormaps");
        return false;
    }
    const char *figure = value_of(params, count, "figure");
    if (figure) {
        if (strcmp(figure, "0") != 0 && strcmp(figure, "1") != 0) {
            snprintf(why, why_size, "figure must be 0 or 1");
            return false;
        }
        p->figure = figure[0] == '1';
    }
    const char *answer = value_of(params, count, "return");
    if (answer) {
        if (strcmp(answer, "inline") != 0 && strcmp(answer, "ref") != 0) {
            snprintf(why, why_size, "return must be 'inline' (PNGs as base64 in the answer, the default) or 'ref' "
                     "(PNGs kept for GET /api/v1/results/<id>/<name>.png)");
            return false;
        }
        p->by_ref = strcmp(answer, "ref") == 0;
    }
    return true;
}
