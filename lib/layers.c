/* Target-layer policy (layers.h): decided in C over the shim's probe facts. */
#include "layers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX__LAYERS_SUGGESTIONS 5

int fx__layers_is_target(const fx__shim_layer *layer)
{
    /* A 1x1 map (global pooling) has no spatial information for a heatmap. */
    return layer->rank == 4 && layer->shape[2] * layer->shape[3] > 1;
}

const char *fx__layers_auto(const fx__shim_layer *table, size_t count)
{
    const fx__shim_layer *best = NULL;
    for (size_t i = 0; table && i < count; i++) {
        const fx__shim_layer *l = &table[i];
        if (!fx__layers_is_target(l))
            continue;
        if (!best || l->call_position > best->call_position ||
            (l->call_position == best->call_position && l->depth < best->depth))
            best = l;
    }
    return best ? best->name : NULL;
}

/* "[1, 512, 7, 7]" into out (size bytes, truncated if needed). */
static void shape_text(const fx__shim_layer *l, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (uint32_t i = 0; i < l->rank && i < FX__SHIM_MAX_RANK && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "", (long long)l->shape[i]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

/* Levenshtein distance (unit costs); row holds strlen(b) + 1 entries. */
static size_t edit_distance(const char *a, const char *b, size_t *row)
{
    size_t n = strlen(b);
    for (size_t j = 0; j <= n; j++)
        row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t up = row[j];
            size_t best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (diag + (a[i - 1] == b[j - 1] ? 0 : 1) < best)
                best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            row[j] = best;
            diag = up;
        }
    }
    return row[n];
}

static size_t shared_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n])
        n++;
    return n;
}

typedef struct suggestion {
    long score;
    const char *name;
} suggestion;

/* Whether x ranks before y: lower score, then name (bytes, as strcmp). */
static int ranks_before(const suggestion *x, const suggestion *y)
{
    return x->score < y->score || (x->score == y->score && strcmp(x->name, y->name) < 0);
}

static fx_status refuse_found(const fx__shim_layer *table, size_t count, const fx__shim_layer *l, const char *name)
{
    char shape[FX__SHIM_MAX_RANK * 22 + 4];
    shape_text(l, shape, sizeof shape);
    if (l->rank == 0)
        return fx__error(FX_ERR_LAYER,
                         "layer '%s' (%s) has no recorded output: forward never calls it, calls it only inside "
                         "control flow (scripted if/loop), or it does not return a tensor; pick a layer with "
                         "a 4-D output (see fx_model_layer)",
                         name, l->type);
    if (l->rank == 4) {
        const char *automatic = fx__layers_auto(table, count);
        return fx__error(FX_ERR_LAYER,
                         "layer '%s' (%s) outputs shape %s: its map is %lldx%lld, with no spatial "
                         "information for a heatmap; pick a layer before the pooling, e.g. the default "
                         "layer '%s'",
                         name, l->type, shape, (long long)l->shape[2], (long long)l->shape[3],
                         automatic ? automatic : "(none)");
    }
    return fx__error(FX_ERR_LAYER,
                     "layer '%s' (%s) outputs shape %s, not a 4-D [batch, channels, height, width] "
                     "feature map; pick a convolutional layer (see fx_model_layer)",
                     name, l->type, shape);
}

/* The name is not in the table: suggest the nearest feature-map layers. */
static fx_status refuse_missing(const fx__shim_layer *table, size_t count, const char *name)
{
    size_t longest = 0;
    for (size_t i = 0; i < count; i++)
        if (fx__layers_is_target(&table[i]) && strlen(table[i].name) > longest)
            longest = strlen(table[i].name);
    size_t *row = malloc((longest + 1) * sizeof *row);
    if (!row)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "layer lookup: cannot allocate %zu bytes",
                         (longest + 1) * sizeof *row);
    suggestion top[FX__LAYERS_SUGGESTIONS];
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (!fx__layers_is_target(&table[i]))
            continue;
        suggestion s = {(long)edit_distance(name, table[i].name, row) * 4 - (long)shared_prefix(name, table[i].name),
                        table[i].name};
        /* Insertion into the sorted top list, dropping the 6th. */
        size_t at = kept;
        while (at > 0 && ranks_before(&s, &top[at - 1]))
            at--;
        if (at >= FX__LAYERS_SUGGESTIONS)
            continue;
        size_t last = kept < FX__LAYERS_SUGGESTIONS ? kept : FX__LAYERS_SUGGESTIONS - 1;
        memmove(&top[at + 1], &top[at], (last - at) * sizeof top[0]);
        top[at] = s;
        if (kept < FX__LAYERS_SUGGESTIONS)
            kept++;
    }
    free(row);
    if (kept == 0)
        return fx__error(FX_ERR_LAYER, "layer '%s' not found, and the model has no layer with a 4-D output", name);
    /* Longer than fx_last_error()'s 1 KiB: the message is cut there either way. */
    char list[2048];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < kept && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", top[i].name);
    return fx__error(FX_ERR_LAYER, "layer '%s' not found; closest: %s (fx_model_layer lists all %zu)", name, list,
                     count);
}

fx_status fx__layers_check(const fx__shim_layer *table, size_t count, const char *name)
{
    if (!name)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "layer lookup: layer name is NULL");
    for (size_t i = 0; table && i < count; i++) {
        if (strcmp(table[i].name, name) != 0)
            continue;
        if (fx__layers_is_target(&table[i]))
            return FX_OK;
        return refuse_found(table, count, &table[i], name);
    }
    return refuse_missing(table ? table : NULL, table ? count : 0, name);
}
