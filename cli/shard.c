/* --shard K/N: which inputs a shard takes, and the lines of its summary that
 * let `fxcam merge` check the shards fit together (cli/shard.h). */
#include "shard.h"
#include "annotations.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FNV1A64_PRIME 1099511628211ull

uint64_t cli_fnv1a64_update(uint64_t hash, const void *data, size_t size)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++) {
        hash ^= p[i];
        hash *= FNV1A64_PRIME;
    }
    return hash;
}

uint64_t cli_fnv1a64(const char *text)
{
    return cli_fnv1a64_update(CLI_FNV1A64_BASIS, text, strlen(text));
}

/* A decimal number of 1 to 7 digits (up to CLI_SHARD_MAX_COUNT) from
 * [p, end); no sign, no spaces. */
static bool parse_part(const char *p, const char *end, uint32_t *out)
{
    size_t len = (size_t)(end - p);
    if (len == 0 || len > 7) {
        return false;
    }
    uint32_t v = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
        v = v * 10u + (uint32_t)(*p - '0');
    }
    *out = v;
    return true;
}

bool cli_shard_parse(const char *text, uint32_t *index, uint32_t *count, char *why, size_t why_size)
{
    static const char form[] = "expected K/N, two whole numbers with 0 <= K < N <= 1000000 (K is 0-based, "
                               "as SLURM_ARRAY_TASK_ID of --array=0-(N-1)), e.g. --shard 0/4";
    const char *slash = strchr(text, '/');
    uint32_t k = 0, n = 0;
    if (!slash || strchr(slash + 1, '/')) {
        snprintf(why, why_size, "invalid --shard '%s': %s", cli_name(text), form);
        return false;
    }
    const char *end = text + strlen(text);
    if (!parse_part(text, slash, &k) || !parse_part(slash + 1, end, &n)) {
        snprintf(why, why_size, "invalid --shard '%s': %s", cli_name(text), form);
        return false;
    }
    if (n == 0 || n > CLI_SHARD_MAX_COUNT) {
        snprintf(why, why_size, "invalid --shard '%s': N (the number of shards) must be 1 to %u; %s",
                 cli_name(text), CLI_SHARD_MAX_COUNT, form);
        return false;
    }
    if (k >= n) {
        snprintf(why, why_size, "invalid --shard '%s': K must be less than N (shards are numbered 0 to %u); %s",
                 cli_name(text), n - 1, form);
        return false;
    }
    *index = k;
    *count = n;
    return true;
}

bool cli_shard_contains(const cli_settings *s, const char *rel)
{
    return s->shard_count == 0 || cli_fnv1a64(rel) % s->shard_count == s->shard_index;
}

char *cli_shard_summary_name(const cli_settings *s, const char *ext)
{
    if (s->shard_count == 0) {
        return cli_strdup_printf("summary.%s", ext);
    }
    return cli_strdup_printf("summary.shard-%u-of-%u.%s", s->shard_index, s->shard_count, ext);
}

size_t cli_shard_keep_annotations(const cli_settings *s, cli_annotations *a)
{
    size_t before = a->count, kept = 0;
    for (size_t i = 0; i < a->count; i++) {
        if (cli_shard_contains(s, a->items[i].file)) {
            a->items[kept++] = a->items[i];
        } else {
            free(a->items[i].file);
            free(a->items[i].boxes);
        }
    }
    a->count = kept;
    return before;
}

bool cli_shard_is_summary_name(const char *name)
{
    unsigned k = 0, n = 0;
    char ext[4] = "";
    int used = 0;
    return sscanf(name, "summary.shard-%u-of-%u.%3[a-z]%n", &k, &n, ext, &used) == 3 && name[used] == '\0' &&
           (strcmp(ext, "csv") == 0 || strcmp(ext, "txt") == 0);
}

/* Size and FNV-1a 64 of the model's bytes (the --model file or the embedded
 * model): two shards computed with different weights under one file name
 * must not merge. */
static bool model_id(const cli_settings *s, uint64_t *size, uint64_t *hash)
{
    *hash = CLI_FNV1A64_BASIS;
    *size = 0;
    if (!s->model) {
        const cli_asset *m = cli_embedded_model();
        if (m) {
            *hash = cli_fnv1a64_update(*hash, m->data, m->size);
            *size = m->size;
        }
        return true;
    }
    FILE *f = fopen(s->model, "rb");
    if (!f) {
        cli_error(s->command, "cannot read the model '%s' to identify it in the shard's summary: %s",
                  cli_name(s->model), strerror(errno));
        return false;
    }
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        *hash = cli_fnv1a64_update(*hash, buf, got);
        *size += got;
    }
    bool ok = !ferror(f);
    fclose(f);
    if (!ok) {
        cli_error(s->command, "cannot read the model '%s' to identify it in the shard's summary",
                  cli_name(s->model));
    }
    return ok;
}

char *cli_options_value(const cli_settings *s)
{
    cli_text t = {0};
    /* Every option that changes which files are inputs or what a row holds;
     * batch size, threads, device and memory do not (beyond rounding). */
    cli_text_printf(&t, "layer=%s class=%s alpha=%g colormap=%s threshold=%g panel-height=%u output=%s "
                    "frame=%u output-kind=%d strict=%d recursive=%d max-images=%zu max-pixels=%llu "
                    "max-side=%u boxes=%s",
                    cli_name(s->layer ? s->layer : "default"), cli_name(s->class_name ? s->class_name : "predicted"), (double)s->alpha,
                    fx_colormap_name(s->colormap), (double)s->threshold, s->panel_height,
                    s->heatmap_only ? "heatmap" : s->overlay_only ? "overlay" : "figure", s->frame,
                    (int)s->output_kind, s->strict ? 1 : 0, s->recursive ? 1 : 0, s->max_images,
                    (unsigned long long)s->max_pixels, s->max_side, cli_name(s->boxes ? s->boxes : "-"));
    /* The refinements, only when given: summaries written before they were
     * recorded still equal those of runs without them. */
    if (s->layers) {
        cli_text_printf(&t, " layers=%s", cli_name(s->layers));
    }
    if (s->class_weights) {
        cli_text_printf(&t, " class-weights=%s", cli_name(s->class_weights));
    }
    if (s->target_classes) {
        cli_text_printf(&t, " target-classes=%s", cli_name(s->target_classes));
    }
    if (s->aug_smooth) {
        cli_text_printf(&t, " aug-smooth=1");
    }
    if (s->eigen_smooth) {
        cli_text_printf(&t, " eigen-smooth=1");
    }
    if (s->smooth_samples) {
        cli_text_printf(&t, " smooth-samples=%u", s->smooth_samples);
    }
    if (s->smooth_noise != 0.0f) {
        cli_text_printf(&t, " smooth-noise=%g", (double)s->smooth_noise);
    }
    /* How the model reads the images (fx_model_options overrides), only when
     * given: they change every map as much as the layer does. */
    if (s->intensity) {
        cli_text_printf(&t, " intensity=%s", fx_intensity_name(s->intensity));
    }
    if (s->bits) {
        cli_text_printf(&t, " bits=%u", s->bits);
    }
    if (s->window_width != 0.0f) {
        cli_text_printf(&t, " window=%g,%g", (double)s->window_center, (double)s->window_width);
    }
    if (s->resize_mode) {
        cli_text_printf(&t, " resize-mode=%s", fx_resize_mode_name(s->resize_mode));
    }
    if (s->resize_size) {
        cli_text_printf(&t, " resize-size=%u", s->resize_size);
    }
    if (s->input_width) {
        cli_text_printf(&t, " input-size=%ux%u", s->input_height, s->input_width);
    }
    if (s->channels) {
        cli_text_printf(&t, " channels=%u", s->channels);
    }
    for (uint32_t k = 0; k < s->mean_count; k++) {
        cli_text_printf(&t, "%s%g", k ? "," : " mean=", (double)s->mean[k]);
    }
    for (uint32_t k = 0; k < s->std_count; k++) {
        cli_text_printf(&t, "%s%g", k ? "," : " std=", (double)s->std[k]);
    }
    return t.data;
}

/* The option of `options` (a "key=value key=value" line) that starts at
 * *p: its key and value lengths; a value runs to the next " key=". */
static bool next_option(const char **p, const char **key, size_t *key_len, const char **value, size_t *value_len)
{
    const char *c = *p;
    while (*c == ' ') {
        c++;
    }
    if (!*c) {
        return false;
    }
    const char *eq = strchr(c, '=');
    if (!eq) {
        eq = c + strlen(c);
    }
    *key = c;
    *key_len = (size_t)(eq - c);
    const char *v = *eq ? eq + 1 : eq, *end = v;
    for (;;) {
        end = strchr(end, ' ');
        if (!end) {
            end = v + strlen(v);
            break;
        }
        const char *k = end + 1;
        while (*k == '-' || (*k >= 'a' && *k <= 'z')) {
            k++;
        }
        if (*k == '=' && k > end + 1) {
            break;
        }
        end++;
    }
    *value = v;
    *value_len = (size_t)(end - v);
    *p = end;
    return true;
}

/* The value of option `key` in `options`, or NULL (not set). */
static char *option_value(const char *options, const char *key, size_t key_len)
{
    const char *p = options, *k, *v;
    size_t kl, vl;
    while (next_option(&p, &k, &kl, &v, &vl)) {
        if (kl == key_len && strncmp(k, key, kl) == 0) {
            return cli_strdup_printf("%.*s", (int)vl, v);
        }
    }
    return NULL;
}

static bool skipped(const char *key, size_t len, const char *const *skip)
{
    for (; skip && *skip; skip++) {
        if (strlen(*skip) == len && strncmp(*skip, key, len) == 0) {
            return true;
        }
    }
    return false;
}

/* Compares every key of `from` against `to`; the first difference into why. */
static bool options_cover(const char *from, const char *to, const char *const *skip, bool from_is_a, char *why,
                          size_t why_size)
{
    const char *p = from, *k, *v;
    size_t kl, vl;
    while (next_option(&p, &k, &kl, &v, &vl)) {
        if (skipped(k, kl, skip)) {
            continue;
        }
        char *mine = cli_strdup_printf("%.*s", (int)vl, v);
        char *other = option_value(to, k, kl);
        bool same = other && strcmp(mine, other) == 0;
        if (!same) {
            char *given = cli_strdup_printf("%.*s=%s", (int)kl, k, mine);
            char *found = other ? cli_strdup_printf("%.*s=%s", (int)kl, k, other)
                                : cli_strdup_printf("no %.*s", (int)kl, k);
            snprintf(why, why_size, "%s vs %s", from_is_a ? given : found, from_is_a ? found : given);
            free(given);
            free(found);
        }
        free(mine);
        free(other);
        if (!same) {
            return false;
        }
    }
    return true;
}

bool cli_options_match(const char *a, const char *b, const char *const *skip, char *why, size_t why_size)
{
    return options_cover(a, b, skip, true, why, why_size) && options_cover(b, a, skip, false, why, why_size);
}

char *cli_summary_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1;
            while (*v == ' ') {
                v++;
            }
            const char *end = strchr(v, '\n');
            return cli_strdup_printf("%.*s", (int)(end ? end - v : (long)strlen(v)), v);
        }
    }
    return NULL;
}

bool cli_shard_describe(const cli_settings *s, cli_text *txt)
{
    char *options = cli_options_value(s);
    if (s->shard_count == 0) {
        cli_text_printf(txt, "options:      %s\n", options);
        free(options);
        return true;
    }
    uint64_t size = 0, hash = 0;
    if (!model_id(s, &size, &hash)) {
        free(options);
        return false;
    }
    cli_text_printf(txt, "shard:        %u/%u (FNV-1a 64 of the path below the image dir, mod %u)\n",
                    s->shard_index, s->shard_count, s->shard_count);
    cli_text_printf(txt, "model id:     %llu bytes, fnv1a64 %016llx\n", (unsigned long long)size,
                    (unsigned long long)hash);
    cli_text_printf(txt, "options:      %s\n", options);
    free(options);
    return true;
}
