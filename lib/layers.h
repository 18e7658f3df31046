/* Target-layer policy over the probe's facts (fx__shim_layer, lib/engine_shim.h):
 * the automatic layer, and whether a name is a valid target with "closest:"
 * suggestions when it is not. Pure C, so it is unit-tested without libtorch
 * (tests/unit/test_layers.c). Internal, not exported. */
#ifndef FX_LAYERS_H
#define FX_LAYERS_H

#include "engine_shim.h"

/* 1 when the layer's output is a feature map that can be a target: 4-D
 * [batch, channels, height, width] with height x width > 1 (a 1x1 map, e.g.
 * after global pooling, has no spatial information); 0 otherwise. */
int fx__layers_is_target(const fx__shim_layer *layer);

/* The automatic target layer among table[0..count): the feature map
 * (fx__layers_is_target) whose output is produced last in the forward graph
 * (greatest call_position); on a tie the shallower module (smaller depth),
 * e.g. the block "layer4" over its last child "layer4.1" that returns the same
 * tensor; on a further tie the first in the table. Returns its name (owned by
 * the table), or NULL when no layer is a feature map or table is NULL. */
const char *fx__layers_auto(const fx__shim_layer *table, size_t count);

/* FX_OK when name is a layer of the table whose output is a feature map
 * (fx__layers_is_target).
 * Otherwise FX_ERR_LAYER with fx_last_error() saying why: not called by forward
 * (rank 0), a 1x1 4-D map (names the automatic layer), not 4-D (gives the
 * shape), or not found: then the closest feature-map layers, at most 5, ranked
 * by 4 x edit distance minus shared prefix length (then by name).
 * FX_ERR_OUT_OF_MEMORY when scratch space cannot be allocated;
 * FX_ERR_INVALID_ARGUMENT when name is NULL. */
fx_status fx__layers_check(const fx__shim_layer *table, size_t count, const char *name);

#endif
