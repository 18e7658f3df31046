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
    /* Probe facts behind the automatic layer rule (lib/layers.c), from the
     * module's last call that returned a tensor: */
    uint64_t call_position; /* 1 + index of the node producing the output in the
                             * inlined forward graph (later = larger); 0 = unknown */
    uint32_t depth;         /* dots in name + 1: a parent is shallower than its children */
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
 * output shape with its call position and depth (fx__shim_layer). */
fx_status fx__shim_probe(fx__shim_model *model, uint32_t channels, uint32_t height, uint32_t width);
uint32_t fx__shim_class_count(const fx__shim_model *model);
size_t fx__shim_layer_count(const fx__shim_model *model);
const fx__shim_layer *fx__shim_layer_at(const fx__shim_model *model, size_t index);
/* Every submodule in definition order, fx__shim_layer_count entries, contiguous
 * (NULL before the probe). The shim only reports facts: the automatic layer and
 * layer validity are decided in C (lib/layers.h). */
const fx__shim_layer *fx__shim_layer_table(const fx__shim_model *model);

/* What a forward keeps on the model's device for the calls that follow it
 * on the same input (fx__shim_backward, fx__shim_channel_scores). Owned by
 * the capture; released by fx__shim_capture_free. */
typedef struct fx__shim_pass fx__shim_pass;

typedef struct fx__shim_capture {
    float *logits;      /* [n][classes], malloc'd */
    float *activations; /* [n][k][h][w], malloc'd; NULL without a layer */
    float *gradients;   /* same shape; NULL until fx__shim_backward */
    uint32_t n, classes, k, h, w;
    fx__shim_pass *pass; /* NULL unless a flag below asked to keep something */
} fx__shim_capture;

/* fx__shim_forward flags (with a layer only). */
#define FX__FORWARD_GRADIENTS 1u /* record the graph after the layer, for one fx__shim_backward */
#define FX__FORWARD_CHANNELS 2u  /* keep the input and the activations on the device, for
                                  * fx__shim_channel_scores (Score-CAM, Ablation-CAM) */

/* A plain sequence, no callbacks (DESIGN.md): forward -> the engine decides
 * the scores in C -> backward and/or channel passes -> maps in C.
 * Runs input ([n][c][h][w] floats, the probe's size) through the model. With
 * layer == NULL: a plain no-grad forward, only logits (flags ignored). With a
 * layer: also copies its output (the last call of the module) to the host,
 * and keeps what flags ask for in out->pass. Thread-safe on one model; a
 * capture belongs to the thread that made it. On success the caller releases
 * with fx__shim_capture_free. */
fx_status fx__shim_forward(fx__shim_model *model, const float *input, uint32_t n, const char *layer, uint32_t flags,
                           fx__shim_capture *out);
/* After a forward with FX__FORWARD_GRADIENTS: the gradient of
 * score = sum(logits * weights) (weights [n][classes], host floats) with
 * respect to the layer's output, into capture->gradients. Once per capture:
 * the recorded graph is released. FX_ERR_LAYER when the output does not
 * depend on the layer. */
fx_status fx__shim_backward(fx__shim_capture *capture, const float *weights);

/* Gradient-free per-channel passes (fx__shim_channel_scores kind). */
#define FX__CHANNELS_SCORE 1    /* Score-CAM: input * mask_j, mask_j = A_j upsampled to the input size
                                 * (bilinear, align_corners=True, as torch.nn.UpsamplingBilinear2d),
                                 * min-max normalized per channel: (U - min) / (max - min + 1e-8) */
#define FX__CHANNELS_ABLATION 2 /* Ablation-CAM: the layer's output with channel j set to 0 when
                                 * min(A) == 0 over the image's activations, else to min(A) - 1e7
                                 * (pytorch-grad-cam's AblationLayer), the rest of the network rerun */
/* After a forward with FX__FORWARD_CHANNELS: for image `image` of the
 * capture and channels first .. first + count - 1, runs one batch of count
 * modified inputs (built on the model's device) and writes
 * scores[j] = sum_c weights[c] * output_j[c] (weights: the image's [classes]
 * score weights, as for the backward). Peak memory grows with count, not
 * with the channel count. */
fx_status fx__shim_channel_scores(fx__shim_capture *capture, int32_t kind, uint32_t image, uint32_t first,
                                  uint32_t count, const float *weights, float *scores);
void fx__shim_capture_free(fx__shim_capture *capture);

/* For tests: libtorch's graph-executor optimization setting that the
 * calling thread's last fx__shim_forward/backward/channel call ran with
 * (-1 before any). */
int fx__shim_last_run_optimized(void);

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

/* ---- Guided backpropagation (shim/shim_guided.cpp; lib/guided.c decides) ----
 * The forward graph with every aten::relu / aten::relu_ (module ReLUs and
 * functional ones alike) replaced by fxcam::guided_relu, whose forward is
 * relu and whose backward is g * (x > 0) * (g > 0) (Springenberg et al.
 * 2015; pytorch-grad-cam's GuidedBackpropReLU). Other activations keep
 * their own gradients. One forward serves both the guided input gradient
 * and, with a layer, Grad-CAM's plain gradient at the layer: the network
 * after the layer runs twice, once with plain ReLUs from a detached copy of
 * the layer's output, once guided from the layer's output itself. */
typedef struct fx__shim_guided fx__shim_guided;

/* Runs input ([n][c][h][w], the probe's size) through the guided graph of
 * layer with the input requiring grad. capture (may be NULL) receives the
 * logits and the layer's activations as fx__shim_forward does (its pass
 * stays NULL: the layer's gradient comes from fx__shim_guided_backward).
 * Errors: FX_ERR_MODEL when the graph has no ReLU (the guided gradient would
 * be the plain input gradient) or the forward fails; FX_ERR_LAYER when the
 * network after the layer modifies in place a tensor computed before it. */
fx_status fx__shim_guided_forward(fx__shim_model *model, const float *input, uint32_t n, const char *layer,
                                  fx__shim_capture *capture, fx__shim_guided **out);
/* The guided gradient of score = sum(logits * weights) ([n][classes]) with
 * respect to the input, kept in the handle; with capture != NULL also the
 * plain gradient at the layer into capture->gradients. Once per forward. */
fx_status fx__shim_guided_backward(fx__shim_guided *guided, const float *weights, fx__shim_capture *capture);
/* [n][c][h][w] floats after fx__shim_guided_backward, owned by the handle; NULL before. */
const float *fx__shim_guided_input_gradients(const fx__shim_guided *guided);
/* Number of ReLUs the guided graph replaced (>= 1). */
size_t fx__shim_guided_relu_count(const fx__shim_guided *guided);
void fx__shim_guided_free(fx__shim_guided *guided);

#ifdef __cplusplus
}
#endif

#endif
