/* The small internal C interface between lib/engine.c and the libtorch shim
 * (the C++ files in shim/, or shim/shim_stub.c when fxcam is built without libtorch).
 * Nothing C++ crosses it. Every function reports failures with fx__error()
 * and a status; no exception escapes. Not installed, not exported. */
#ifndef FX_ENGINE_SHIM_H
#define FX_ENGINE_SHIM_H

#include "fx_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fx__shim_model fx__shim_model;

#define FX__SHIM_MAX_RANK 8

/* What the optional fxcam.json inside the archive said (docs/model-format.md).
 * A zero count or size means "not given". Owned by the shim model. */
typedef struct fx__shim_metadata {
    uint32_t input_height, input_width; /* 0 = not given */
    uint32_t channels;                  /* 0 = not given */
    uint32_t mean_count, std_count;
    float mean[4], std[4];
    uint32_t class_name_count;
    const char *const *class_names;
    int32_t positive_class; /* -1 = not given */
    const char *target_layer; /* NULL = not given */
    int32_t output_kind;      /* "output": FX_OUTPUT_LOGITS or FX_OUTPUT_PROBABILITIES; FX_OUTPUT_AUTO = not given */
    int32_t intensity;        /* "intensity": FX_INTENSITY_*; FX_INTENSITY_AUTO = not given */
    uint32_t bits_stored;     /* "bits_stored": 1..16; 0 = not given */
    float window_center, window_width; /* "window": [center, width]; width 0 = not given */
    int32_t resize_mode;      /* "resize_mode": FX_RESIZE_*; FX_RESIZE_DEFAULT = not given */
    uint32_t resize_size;     /* "resize_size": 0 = not given */
} fx__shim_metadata;

typedef struct fx__shim_layer {
    const char *name; /* dotted path, e.g. "layer4.1.conv2" */
    const char *type; /* short class name, e.g. "Conv2d" */
    uint32_t rank;    /* 0: not called by forward, or output is not a tensor */
    int64_t shape[FX__SHIM_MAX_RANK];
    int32_t is_feature_map; /* 4-D output: a valid target layer */
} fx__shim_layer;

/* Where a TorchScript archive comes from: a file (path) or bytes in memory
 * (data, size; path == NULL). label names it in messages. */
typedef struct fx__shim_source {
    const char *path;
    const void *data;
    size_t size;
    const char *label;
} fx__shim_source;

/* Loads a TorchScript archive onto device ("auto", "cpu", "cuda", "cuda:N")
 * and reads its fxcam.json. threads > 0 sets libtorch's intra-op thread count
 * (process-wide), 0 sets it to the online CPUs, -1 leaves it alone. */
fx_status fx__shim_load(const fx__shim_source *source, const char *device, int32_t threads, fx__shim_model **out);
void fx__shim_free(fx__shim_model *model);
const fx__shim_metadata *fx__shim_get_metadata(const fx__shim_model *model);
const char *fx__shim_device(const fx__shim_model *model);

/* One forward of a zero batch of 1 x channels x height x width: checks that
 * the output is [batch, classes], records the class count and every module's
 * output shape, and picks the automatic target layer. */
fx_status fx__shim_probe(fx__shim_model *model, uint32_t channels, uint32_t height, uint32_t width);
uint32_t fx__shim_class_count(const fx__shim_model *model);
size_t fx__shim_layer_count(const fx__shim_model *model);
const fx__shim_layer *fx__shim_layer_at(const fx__shim_model *model, size_t index);
/* The automatic target layer, NULL when no module qualifies. */
const char *fx__shim_auto_layer(const fx__shim_model *model);
/* FX_OK when name is a module whose output is a 4-D feature map; otherwise
 * FX_ERR_LAYER naming the closest valid layers or the actual shape. */
fx_status fx__shim_check_layer(const fx__shim_model *model, const char *name);

/* Called between the forward and the backward pass with the logits
 * ([n][classes], on the CPU): fills weights ([n][classes]) so that the score
 * to differentiate is sum(logits * weights). Returns FX_OK or an fx__error
 * status that aborts the run. */
typedef fx_status (*fx__shim_score_fn)(void *user, const float *logits, uint32_t n, uint32_t classes,
                                       float *weights);

typedef struct fx__shim_capture {
    float *logits;      /* [n][classes], malloc'd */
    float *activations; /* [n][k][h][w], malloc'd; NULL without a layer */
    float *gradients;   /* same shape */
    uint32_t n, classes, k, h, w;
} fx__shim_capture;

/* Runs input ([n][c][h][w] floats, the probe's size) through the model. With
 * layer == NULL: a plain no-grad forward, only logits. With a layer: captures
 * its output and the gradient of the score chosen by score_fn. Thread-safe on
 * one model. On success the caller releases with fx__shim_capture_free. */
fx_status fx__shim_run(fx__shim_model *model, const float *input, uint32_t n, const char *layer,
                       fx__shim_score_fn score_fn, void *user, fx__shim_capture *out);
void fx__shim_capture_free(fx__shim_capture *capture);

/* Validates fxcam.json text (size bytes, need not be NUL-terminated) exactly
 * as loading does, without libtorch: FX_OK, or FX_ERR_MODEL naming the key
 * and the limit (docs/model-format.md). For the fuzz target and tests. */
fx_status fx__shim_metadata_check(const char *text, size_t size);

/* For tests: libtorch's intra-op thread count (process-wide); 0 without libtorch. */
int fx__shim_thread_count(void);

/* ---- Facts for the output-kind and training-mode decisions (engine.c decides) ---- */

/* The activation that produces the model's output, found by the probe in the
 * inlined forward graph: the output is (possibly through shape-only ops such
 * as view/flatten/contiguous) the result of aten::softmax or aten::log_softmax
 * over dim 1, or aten::sigmoid. */
#define FX__ACTIVATION_NONE 0
#define FX__ACTIVATION_SOFTMAX 1
#define FX__ACTIVATION_LOG_SOFTMAX 2
#define FX__ACTIVATION_SIGMOID 3
int32_t fx__shim_output_activation(const fx__shim_model *model);
/* strip != 0: every later run returns the activation's input (the logits)
 * instead of the model's output; cached graphs are rebuilt. FX_ERR_INTERNAL
 * when the model has no such activation. */
fx_status fx__shim_strip_activation(fx__shim_model *model, int strip);
/* Modules whose `training` flag was set in the archive (fxcam evaluates every
 * module with it off): how many, and the dotted name of the i-th ("" for the
 * top module). */
size_t fx__shim_training_module_count(const fx__shim_model *model);
const char *fx__shim_training_module(const fx__shim_model *model, size_t index);
/* Operations of the archive's graphs that had training mode fixed in by
 * tracing (aten::batch_norm with training=True, aten::dropout & co. with
 * train=True) and that fxcam switched to evaluation at load. */
size_t fx__shim_training_ops_fixed(const fx__shim_model *model);

/* For tests: whether libtorch's graph-executor optimizations are on for the
 * calling thread (the setting is thread-local); 0 without libtorch. */
int fx__shim_executor_optimized(void);

/* For the benchmark: the shim model behind a public model. */
fx__shim_model *fx__model_shim(fx_model *model);

/* For tests: preprocesses one image like fx_gradcam_compute and returns the
 * raw capture (logits, activations, gradients) of layer for target_class
 * (-1 = predicted). Release with fx__shim_capture_free. */
fx_status fx__model_capture(fx_model *model, const fx_image *image, const char *layer, int32_t target_class,
                            fx__shim_capture *out);

#ifdef __cplusplus
}
#endif

#endif
