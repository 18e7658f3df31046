/* Models and Grad-CAM: options, preprocessing, prediction and results in
 * plain C. Everything that touches libtorch sits behind engine_shim.h. */
#include "engine_shim.h"
#include "cam_free.h"
#include "cam_refine.h"
#include "guided.h"
#include "layers.h"
#include "preprocess.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX_DEFAULT_INPUT_SIZE 224
#define FX_MAX_INPUT_SIZE 16384
#define FX_DEFAULT_BATCH 8
#define FX_DEFAULT_CHANNEL_BATCH 32 /* Score-CAM/Ablation-CAM inputs per forward (pytorch-grad-cam's
                                     * AblationCAM default; its ScoreCAM uses 16) */
#define FX_MIN_IMAGE_SIZE 2
#define FX_DEFAULT_SMOOTH_SAMPLES 8  /* Smooth Grad-CAM++ noisy copies */
#define FX_MAX_SMOOTH_SAMPLES 256
#define FX_DEFAULT_SMOOTH_NOISE 0.15f /* SmoothGrad's 10-20 % of the input range */
#define FX_MAX_SMOOTH_NOISE 10.0f

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/* Warnings travel with the model or result they concern (fxcam.h, Warnings). */
typedef struct fx__warning {
    int32_t code;    /* FX_WARN_* */
    int64_t image;   /* image index, -1 for the whole call or the model */
    char *message;
} fx__warning;

typedef struct warning_list {
    fx__warning *items;
    size_t count, capacity;
} warning_list;

static fx_status warning_add(warning_list *list, int32_t code, int64_t image, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 4;
        fx__warning *items = realloc(list->items, capacity * sizeof *items);
        if (!items)
            return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot record a warning");
        list->items = items;
        list->capacity = capacity;
    }
    size_t len = strlen(text) + 1;
    char *message = malloc(len);
    if (!message)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot record a warning");
    memcpy(message, text, len);
    list->items[list->count++] = (fx__warning){code, image, message};
    return FX_OK;
}

static void warning_list_free(warning_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].message);
    free(list->items);
    memset(list, 0, sizeof *list);
}

static const fx__warning *warning_at(const warning_list *list, size_t index)
{
    return index < list->count ? &list->items[index] : NULL;
}

struct fx_model {
    fx__shim_model *shim;
    uint32_t width, height, channels;
    float mean[3], std[3];
    uint32_t logit_count;  /* model outputs */
    uint32_t result_count; /* 2 for a single-logit model */
    char **class_names;    /* result_count names */
    int32_t positive_class;
    const char *default_layer; /* owned by the shim model */
    int32_t output_kind;       /* FX_OUTPUT_LOGITS or FX_OUTPUT_PROBABILITIES */
    int32_t activation;        /* FX__ACTIVATION_* removed from the graph; NONE with
                                * FX_OUTPUT_PROBABILITIES: the outputs are used as they are */
    warning_list warnings;
    fx_intensity intensity; /* how training data was brought to [0,1] (lib/intensity.c) */
    int32_t resize_mode;    /* FX_RESIZE_*, never _DEFAULT */
    uint32_t resize_size;   /* shorter side for FX_RESIZE_SHORTER_SIDE_CROP */
};

struct fx_result {
    size_t n;
    uint32_t method_count;
    int32_t *methods; /* [method_count] FX_CAM_* ids, in the order requested */
    char *layer;
    uint32_t logit_count, result_count;
    float *logits;        /* [n][logit_count] */
    float *probabilities; /* [n][result_count] */
    int32_t *predicted, *target;
    fx_image *heatmaps, *raw, *lowres; /* [n][method_count] */
    fx_image *saliency; /* [n][method_count]: guided methods' input-space maps (lib/guided.c), else empty */
    warning_list warnings;
    uint32_t *seen; /* [n][4]: x, y, width, height of the part the model saw */
};

/* ---- Options ------------------------------------------------------------ */

void fx_model_options_init(fx_model_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->device = "auto";
}

void fx_gradcam_options_init(fx_gradcam_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->target_class = -1;
}

static fx_status check_size_option(const char *what, uint32_t value)
{
    if (value != 0 && (value < FX_MIN_IMAGE_SIZE || value > FX_MAX_INPUT_SIZE))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: %s %u out of range; valid: 0 (from metadata) or %d..%d",
                         what, value, FX_MIN_IMAGE_SIZE, FX_MAX_INPUT_SIZE);
    return FX_OK;
}

/* The intensity and resize options (fxcam.h, fx_model_options, 0.2). */
static fx_status check_training_options(const fx_model_options *o)
{
    if (!fx_intensity_name(o->intensity))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: intensity %d; valid: FX_INTENSITY_AUTO (0), "
                                                  "_CONTAINER (1), _BITS (2), _MINMAX (3), _WINDOW (4)",
                         (int)o->intensity);
    if (o->bits_stored > 16)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: bits_stored %u; valid: 0 (from metadata or the image) "
                                                  "or 1..16", o->bits_stored);
    if (o->window_width != 0.0f && (!isfinite(o->window_center) || !(o->window_width > 0.0f) ||
                                    !isfinite(o->window_width)))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: window center %g, width %g; the center must be "
                                                  "finite and the width > 0 (0 = from metadata)",
                         (double)o->window_center, (double)o->window_width);
    if (o->intensity == FX_INTENSITY_WINDOW && o->window_width == 0.0f)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: intensity is FX_INTENSITY_WINDOW but window_width is "
                                                  "0; give the window (center, width) in the image's sample units");
    if (!fx_resize_mode_name(o->resize_mode))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: resize_mode %d; valid: FX_RESIZE_DEFAULT (0), "
                                                  "_STRETCH (1), _STRETCH_ANTIALIAS (2), _LETTERBOX (3), "
                                                  "_SHORTER_SIDE_CROP (4)",
                         (int)o->resize_mode);
    return check_size_option("resize_size", o->resize_size);
}

static fx_status check_model_options(const fx_model_options *o)
{
    if (o->threads < -1)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_model_load: threads %d; valid: -1 (leave the process's setting), 0 (all CPUs) or >= 1",
                         (int)o->threads);
    if ((o->mean_count && !o->mean) || (o->std_count && !o->std))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: %s_count is %u but %s is NULL",
                         o->mean_count && !o->mean ? "mean" : "std",
                         o->mean_count && !o->mean ? o->mean_count : o->std_count,
                         o->mean_count && !o->mean ? "mean" : "std");
    fx_status st = check_size_option("input_width", o->input_width);
    if (st == FX_OK)
        st = check_size_option("input_height", o->input_height);
    if (st != FX_OK)
        return st;
    if (o->input_channels != 0 && o->input_channels != 1 && o->input_channels != 3)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: input_channels %u; valid: 0 (from metadata), 1 or 3",
                         o->input_channels);
    return check_training_options(o);
}

/* A caller's mean/std must have one value per input channel; count 0 is a
 * caller that predates the counts (input_channels values are read). */
static fx_status check_option_counts(const fx_model_options *o, uint32_t channels)
{
    if (o->mean && o->mean_count && o->mean_count != channels)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_model_load: mean has %u values but the model takes %u input channels; pass %u", o->mean_count,
                         channels, channels);
    if (o->std && o->std_count && o->std_count != channels)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_model_load: std has %u values but the model takes %u input channels; pass %u", o->std_count,
                         channels, channels);
    return FX_OK;
}

/* Picks each preprocessing value from the options, else the metadata, else
 * the ImageNet defaults. */
static fx_status resolve_input(fx_model *m, const fx_model_options *o, const fx__shim_metadata *md)
{
    m->width = o->input_width ? o->input_width : md->input_width ? md->input_width : FX_DEFAULT_INPUT_SIZE;
    m->height = o->input_height ? o->input_height : md->input_height ? md->input_height : FX_DEFAULT_INPUT_SIZE;
    m->channels = o->input_channels ? o->input_channels : md->channels ? md->channels : 3;
    uint32_t c = m->channels;
    fx_status st = check_option_counts(o, c);
    if (st != FX_OK)
        return st;
    for (uint32_t i = 0; i < c; i++) {
        m->mean[i] = c == 3 ? imagenet_mean[i] : 0.5f;
        m->std[i] = c == 3 ? imagenet_std[i] : 0.5f;
    }
    if (!o->mean && md->mean_count) {
        if (md->mean_count != c)
            return fx__error(FX_ERR_MODEL, "fxcam.json: \"mean\" has %u values but the model takes %u channels",
                             md->mean_count, c);
        memcpy(m->mean, md->mean, c * sizeof(float));
    }
    if (!o->std && md->std_count) {
        if (md->std_count != c)
            return fx__error(FX_ERR_MODEL, "fxcam.json: \"std\" has %u values but the model takes %u channels",
                             md->std_count, c);
        memcpy(m->std, md->std, c * sizeof(float));
    }
    for (uint32_t i = 0; i < c; i++) {
        if (o->mean)
            m->mean[i] = o->mean[i];
        if (o->std)
            m->std[i] = o->std[i];
        if (!isfinite(m->mean[i]) || !isfinite(m->std[i]) || !(m->std[i] > 0.0f))
            return fx__error(FX_ERR_INVALID_ARGUMENT,
                             "fx_model_load: channel %u has mean %g and std %g; both must be finite and std > 0", i,
                             (double)m->mean[i], (double)m->std[i]);
    }
    return FX_OK;
}

static char *copy_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = malloc(len);
    if (p)
        memcpy(p, s, len);
    return p;
}

static fx_status name_classes(fx_model *m, const fx_model_options *o, const fx__shim_metadata *md)
{
    m->result_count = m->logit_count == 1 ? 2 : m->logit_count;
    if (o->class_names && o->class_name_count != m->result_count)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: class_names has %u names but the model has %u "
                         "classes%s; give %u (CLI --class-names a,b,...)", o->class_name_count, m->result_count,
                         m->logit_count == 1 ? " (a single-logit model has 2: negative, positive)" : "",
                         m->result_count);
    for (uint32_t i = 0; o->class_names && i < o->class_name_count; i++)
        if (!o->class_names[i] || !o->class_names[i][0])
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: class_names[%u] is %s; every class needs a "
                             "name", i, o->class_names[i] ? "empty" : "NULL");
    if (md->class_name_count && md->class_name_count != m->result_count)
        return fx__error(FX_ERR_MODEL, "fxcam.json: \"class_names\" has %u names but the model has %u classes%s",
                         md->class_name_count, m->result_count,
                         m->logit_count == 1 ? " (a single-logit model has 2: negative, positive)" : "");
    if (md->positive_class >= (int32_t)m->result_count)
        return fx__error(FX_ERR_MODEL, "fxcam.json: \"positive_class\" is %d; valid: 0..%u", (int)md->positive_class,
                         m->result_count - 1);
    m->positive_class = md->positive_class;
    m->class_names = calloc(m->result_count, sizeof *m->class_names);
    if (!m->class_names)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_model_load: cannot allocate %u class names", m->result_count);
    for (uint32_t i = 0; i < m->result_count; i++) {
        char fallback[32];
        if (m->logit_count == 1)
            snprintf(fallback, sizeof fallback, "%s", i ? "positive" : "negative");
        else
            snprintf(fallback, sizeof fallback, "class %u", i);
        m->class_names[i] = copy_string(o->class_names        ? o->class_names[i]
                                        : md->class_name_count ? md->class_names[i]
                                                               : fallback);
        if (!m->class_names[i])
            return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_model_load: cannot allocate class names");
    }
    return FX_OK;
}

/* ---- Models ------------------------------------------------------------- */

void fx_model_free(fx_model *model)
{
    if (!model)
        return;
    if (model->class_names)
        for (uint32_t i = 0; i < model->result_count; i++)
            free(model->class_names[i]);
    free(model->class_names);
    warning_list_free(&model->warnings);
    fx__shim_free(model->shim);
    free(model);
}

/* ---- What the output holds, and training-mode exports ------------------- */

#define FX_PROBE_IMAGES 4

/* Black, white, mid-gray and a smooth pattern at the input size, normalized
 * like real images: their outputs tell probabilities from logits, and the
 * pattern, run a second time, shows whether the model is deterministic. */
static float *probe_inputs(const fx_model *m)
{
    size_t plane = (size_t)m->width * m->height, per_image = plane * m->channels;
    float *input = malloc(per_image * FX_PROBE_IMAGES * sizeof(float));
    if (!input)
        return NULL;
    for (uint32_t i = 0; i < FX_PROBE_IMAGES; i++)
        for (uint32_t c = 0; c < m->channels; c++)
            for (uint32_t y = 0; y < m->height; y++)
                for (uint32_t x = 0; x < m->width; x++) {
                    float v = i == 0 ? 0.0f
                              : i == 1 ? 1.0f
                              : i == 2 ? 0.5f
                                       : 0.5f + 0.5f * sinf(0.37f * (float)x + (float)c) * cosf(0.23f * (float)y);
                    input[i * per_image + c * plane + (size_t)y * m->width + x] = (v - m->mean[c]) / m->std[c];
                }
    return input;
}

/* Every row in [0,1] summing to 1 (>= 2 outputs), or a single output
 * strictly inside (0,1) for every probe image. */
static int looks_like_probabilities(const float *rows, uint32_t n, uint32_t classes)
{
    for (uint32_t i = 0; i < n; i++) {
        const float *row = rows + (size_t)i * classes;
        double sum = 0.0;
        for (uint32_t c = 0; c < classes; c++) {
            if (!(row[c] >= 0.0f && row[c] <= 1.0f))
                return 0;
            sum += row[c];
        }
        if (classes == 1 ? !(row[0] > 0.0f && row[0] < 1.0f) : !(fabs(sum - 1.0) <= 1e-3))
            return 0;
    }
    return 1;
}

static const char *activation_name(int32_t activation)
{
    switch (activation) {
    case FX__ACTIVATION_SOFTMAX: return "softmax";
    case FX__ACTIVATION_LOG_SOFTMAX: return "log_softmax";
    case FX__ACTIVATION_SIGMOID: return "sigmoid";
    default: return "nothing";
    }
}

/* The option decides; else the graph (a final softmax/log_softmax/sigmoid:
 * its input is taken as the logits); else fxcam.json's "output"; else the
 * probe's values, with a warning. */
static fx_status decide_output_kind(fx_model *m, const fx_model_options *o, const fx__shim_metadata *md,
                                    const float *rows, uint32_t n)
{
    int32_t graph = fx__shim_output_activation(m->shim);
    if (graph != FX__ACTIVATION_NONE && graph != FX__ACTIVATION_SIGMOID && m->logit_count == 1)
        return fx__error(FX_ERR_MODEL, "fx_model_load: the model ends in %s over a single output, which is the same "
                                       "whatever the image; a one-output binary classifier ends in sigmoid (or "
                                       "returns the logit)",
                         activation_name(graph));
    int32_t kind = o->output_kind;
    fx_status st = FX_OK;
    if (kind == FX_OUTPUT_AUTO) {
        if (graph != FX__ACTIVATION_NONE) {
            kind = FX_OUTPUT_PROBABILITIES;
            if (md->output_kind == FX_OUTPUT_LOGITS)
                st = warning_add(&m->warnings, FX_WARN_OUTPUT_KIND, -1,
                                 "fxcam.json says \"output\": \"logits\", but the model's graph ends in %s: fxcam "
                                 "takes the %s's input as the logits; set \"output\" to \"probabilities\" or "
                                 "remove it",
                                 activation_name(graph), activation_name(graph));
        } else if (md->output_kind != FX_OUTPUT_AUTO) {
            kind = md->output_kind;
        } else if (looks_like_probabilities(rows, n, m->logit_count)) {
            kind = FX_OUTPUT_PROBABILITIES;
            st = warning_add(&m->warnings, FX_WARN_OUTPUT_KIND, -1,
                             "the model's outputs look like probabilities (%s for %u probe images) but its graph "
                             "shows no final softmax or sigmoid: fxcam guessed \"probabilities\", reports them as "
                             "they are and differentiates the probability; state what the model returns with "
                             "\"output\": \"probabilities\" or \"logits\" in fxcam.json, or the output-kind "
                             "option",
                             m->logit_count == 1 ? "always inside (0, 1)" : "each row in [0, 1], summing to 1", n);
        } else {
            kind = FX_OUTPUT_LOGITS;
        }
    }
    m->output_kind = kind;
    m->activation = kind == FX_OUTPUT_PROBABILITIES ? graph : FX__ACTIVATION_NONE;
    if (st == FX_OK && m->activation != FX__ACTIVATION_NONE)
        st = fx__shim_strip_activation(m->shim, 1);
    return st;
}

/* A model saved in training mode (modules still flagged `training`, or
 * BatchNorm/Dropout traced in training mode) is evaluated in eval mode by the
 * shim; what remains is to say so, or refuse with the strict option. Two
 * forwards of the same input that differ mean randomness fxcam could not
 * remove. */
static fx_status check_training_mode(fx_model *m, const fx_model_options *o, const float *first,
                                     const float *second)
{
    size_t modules = fx__shim_training_module_count(m->shim), ops = fx__shim_training_ops_fixed(m->shim);
    double diff = 0.0;
    for (uint32_t c = 0; c < m->logit_count; c++) {
        double d = fabs((double)first[c] - second[c]) / fmax(1.0, fabs((double)first[c]));
        if (d > diff)
            diff = d;
    }
    int varies = diff > 1e-4;
    if (!modules && !ops && !varies)
        return FX_OK;
    char seen[384] = "", message[900];
    if (modules) {
        const char *name = fx__shim_training_module(m->shim, modules > 1 ? 1 : 0);
        snprintf(seen, sizeof seen, "%zu module%s flagged training=True, e.g. '%s'", modules, modules > 1 ? "s" : "",
                 name && *name ? name : "(the top module)");
    }
    if (ops)
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%zu BatchNorm/Dropout operation%s traced in "
                 "training mode", modules ? "; " : "", ops, ops > 1 ? "s" : "");
    if (!varies)
        snprintf(message, sizeof message,
                 "the model was saved in training mode (%s): fxcam evaluates it in eval mode (BatchNorm uses its "
                 "running statistics, Dropout is off), as model.eval() would; call model.eval() before "
                 "torch.jit.trace/torch.jit.script and save it again",
                 seen);
    else
        snprintf(message, sizeof message,
                 "two forward passes of the same image gave different outputs (largest relative difference %.3g%s%s): "
                 "predictions and maps would change from run to run; call model.eval() before "
                 "torch.jit.trace/torch.jit.script and remove any other randomness from forward",
                 diff, *seen ? "; " : "", seen);
    if (o->strict)
        return fx__error(FX_ERR_MODEL, "fx_model_load (strict): %s", message);
    return warning_add(&m->warnings, FX_WARN_TRAINING_MODE, -1, "%s", message);
}

/* Runs the probe images (plus the pattern once more, alone) and decides
 * training mode and output kind from the outputs. */
static fx_status inspect_outputs(fx_model *m, const fx_model_options *o, const fx__shim_metadata *md)
{
    float *input = probe_inputs(m);
    if (!input)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_model_load: cannot allocate %d probe images", FX_PROBE_IMAGES);
    size_t per_image = (size_t)m->channels * m->width * m->height;
    fx__shim_capture all = {0}, again = {0};
    fx_status st = fx__shim_forward(m->shim, input, FX_PROBE_IMAGES, NULL, 0, &all);
    if (st == FX_OK)
        st = fx__shim_forward(m->shim, input + (FX_PROBE_IMAGES - 1) * per_image, 1, NULL, 0, &again);
    if (st == FX_OK)
        st = check_training_mode(m, o, all.logits + (size_t)(FX_PROBE_IMAGES - 1) * m->logit_count, again.logits);
    if (st == FX_OK)
        st = decide_output_kind(m, o, md, all.logits, FX_PROBE_IMAGES);
    fx__shim_capture_free(&all);
    fx__shim_capture_free(&again);
    free(input);
    return st;
}

/* How training data was brought to [0,1] and to the input size: the
 * option, else fxcam.json, else fxcam 0.1's behaviour (container range unless
 * the image says how many bits it holds; stretch). */
static fx_status resolve_training(fx_model *m, const fx_model_options *o, const fx__shim_metadata *md)
{
    fx_intensity_init(&m->intensity);
    fx_intensity *r = &m->intensity;
    r->mode = o->intensity != FX_INTENSITY_AUTO ? o->intensity : md->intensity;
    r->bits_stored = o->bits_stored ? o->bits_stored : md->bits_stored;
    if (o->window_width > 0.0f) {
        r->window_center = o->window_center;
        r->window_width = o->window_width;
        if (o->intensity == FX_INTENSITY_AUTO)
            r->mode = FX_INTENSITY_WINDOW;
    } else {
        r->window_center = md->window_center;
        r->window_width = md->window_width;
    }
    if (r->mode == FX_INTENSITY_WINDOW && !(r->window_width > 0.0f))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: intensity \"window\" needs a window; give "
                                                  "window_center/window_width (CLI --window C,W) or \"window\" in "
                                                  "fxcam.json");
    m->resize_mode = o->resize_mode ? o->resize_mode : md->resize_mode ? md->resize_mode : FX_RESIZE_STRETCH;
    m->resize_size = 0;
    if (m->resize_mode == FX_RESIZE_SHORTER_SIDE_CROP) {
        uint32_t shorter = m->width < m->height ? m->width : m->height;
        m->resize_size = o->resize_size ? o->resize_size : md->resize_size ? md->resize_size : shorter * 256u / 224u;
        if (m->resize_size < shorter)
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: resize_size %u is smaller than the input's shorter "
                                                      "side %u: the center crop would pad the image; use >= %u (the "
                                                      "ImageNet recipe resizes to 256 for a 224 crop)",
                             m->resize_size, shorter, shorter);
    }
    return FX_OK;
}

/* Whether name is a valid target layer of m (lib/layers.c decides, over the
 * probe's table); FX_ERR_LAYER with suggestions otherwise. */
static fx_status check_layer(const fx_model *m, const char *name)
{
    return fx__layers_check(fx__shim_layer_table(m->shim), fx__shim_layer_count(m->shim), name);
}

/* The probe forward at the input size. A model whose first layer takes the
 * other channel count (1 vs 3) would fail inside TorchScript with a cut-short
 * traceback: try the other count and, if it runs, name the mismatch. */
static fx_status probe_channels(fx_model *m, const fx_model_options *o, const fx__shim_metadata *md)
{
    fx_status st = fx__shim_probe(m->shim, m->channels, m->height, m->width);
    if (st == FX_OK)
        return st;
    char first[768];
    snprintf(first, sizeof first, "%s", fx_last_error());
    uint32_t other = m->channels == 3 ? 1 : 3;
    if (fx__shim_probe(m->shim, other, m->height, m->width) != FX_OK)
        return fx__error(st, "%s", first);
    const char *source = o->input_channels ? "the input_channels option (CLI --channels)"
                         : md->channels    ? "fxcam.json's \"channels\""
                                           : "the default (no \"channels\" in fxcam.json)";
    return fx__error(FX_ERR_MODEL,
                     "fx_model_load: the model takes %u input channel%s, but fxcam was told %u by %s; set channels "
                     "%u (fxcam.json \"channels\": %u, CLI --channels %u, Python channels=%u) with the mean and std "
                     "the model was trained with",
                     other, other == 1 ? "" : "s", m->channels, source, other, other, other, other);
}

static fx_status finish_load(fx_model *m, const fx_model_options *o)
{
    const fx__shim_metadata *md = fx__shim_get_metadata(m->shim);
    fx_status st = resolve_input(m, o, md);
    if (st == FX_OK)
        st = resolve_training(m, o, md);
    if (st == FX_OK)
        st = probe_channels(m, o, md);
    if (st != FX_OK)
        return st;
    m->logit_count = fx__shim_class_count(m->shim);
    st = inspect_outputs(m, o, md);
    if (st == FX_OK)
        st = name_classes(m, o, md);
    if (st != FX_OK)
        return st;
    m->default_layer = fx__layers_auto(fx__shim_layer_table(m->shim), fx__shim_layer_count(m->shim));
    if (md->target_layer) {
        st = check_layer(m, md->target_layer);
        if (st != FX_OK) {
            char why[768];
            snprintf(why, sizeof why, "%s", fx_last_error());
            return fx__error(FX_ERR_MODEL, "fxcam.json: \"target_layer\": %s", why);
        }
        m->default_layer = md->target_layer;
    }
    return FX_OK;
}

static fx_status load_model(const fx__shim_source *source, const fx_model_options *opts, fx_model **out)
{
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: out is NULL");
    fx_model_options o;
    fx_model_options_init(&o);
    fx_status st = fx__options_merge(&o, sizeof o, opts, "fx_model_load: options");
    if (st == FX_OK)
        st = check_model_options(&o);
    if (st == FX_OK && (o.output_kind < FX_OUTPUT_AUTO || o.output_kind > FX_OUTPUT_PROBABILITIES))
        st = fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: output_kind %d; valid: FX_OUTPUT_AUTO (0), "
                                                "FX_OUTPUT_LOGITS (1), FX_OUTPUT_PROBABILITIES (2)",
                       (int)o.output_kind);
    if (st != FX_OK)
        return st;
    fx_model *m = calloc(1, sizeof *m);
    if (!m)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_model_load: cannot allocate the model");
    st = fx__shim_load(source, o.device ? o.device : "auto", o.threads, &m->shim);
    if (st == FX_OK)
        st = finish_load(m, &o);
    if (st != FX_OK) {
        fx_model_free(m);
        return st;
    }
    *out = m;
    return FX_OK;
}

fx_status fx_model_load(const char *path, const fx_model_options *opts, fx_model **out)
{
    if (!path)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: path is NULL");
    fx__shim_source source = {.path = path, .label = path};
    return load_model(&source, opts, out);
}

fx_status fx_model_load_memory(const void *data, size_t size, const fx_model_options *opts, fx_model **out)
{
    if (!data || size == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load_memory: %s; pass the bytes of a TorchScript archive",
                         data ? "size is 0" : "data is NULL");
    fx__shim_source source = {.data = data, .size = size, .label = "<memory>"};
    return load_model(&source, opts, out);
}

const char *fx_model_device(const fx_model *model)
{
    return model ? fx__shim_device(model->shim) : "";
}

fx_status fx_model_input_size(const fx_model *model, uint32_t *width, uint32_t *height, uint32_t *channels)
{
    if (!model)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_input_size: model is NULL");
    if (width)
        *width = model->width;
    if (height)
        *height = model->height;
    if (channels)
        *channels = model->channels;
    return FX_OK;
}

uint32_t fx_model_class_count(const fx_model *model)
{
    return model ? model->logit_count : 0;
}

uint32_t fx_model_result_class_count(const fx_model *model)
{
    return model ? model->result_count : 0;
}

const char *fx_model_class_name(const fx_model *model, uint32_t index)
{
    return model && index < model->result_count ? model->class_names[index] : NULL;
}

int32_t fx_model_positive_class(const fx_model *model)
{
    return model ? model->positive_class : -1;
}

fx_status fx_model_normalization(const fx_model *model, float *mean, float *std)
{
    if (!model)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_normalization: model is NULL");
    for (uint32_t c = 0; c < model->channels; c++) {
        if (mean)
            mean[c] = model->mean[c];
        if (std)
            std[c] = model->std[c];
    }
    return FX_OK;
}

const char *fx_model_default_layer(const fx_model *model)
{
    return model ? model->default_layer : NULL;
}

size_t fx_model_layer_count(const fx_model *model)
{
    return model ? fx__shim_layer_count(model->shim) : 0;
}

fx_status fx_model_layer(const fx_model *model, size_t index, fx_layer_info *info)
{
    if (!model || !info)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_layer: %s is NULL", model ? "info" : "model");
    /* An output struct grows at the end: a caller built against an older,
     * smaller fx_layer_info gets the fields it knows and nothing past them. */
    if (info->struct_size < offsetof(fx_layer_info, name))
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_model_layer: info->struct_size is %u; set it to sizeof(fx_layer_info) (%zu)",
                         info->struct_size, sizeof *info);
    size_t count = fx__shim_layer_count(model->shim);
    if (index >= count)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_layer: index %zu out of range; valid: 0..%zu", index,
                         count ? count - 1 : 0);
    const fx__shim_layer *l = fx__shim_layer_at(model->shim, index);
    fx_layer_info full;
    memset(&full, 0, sizeof full);
    full.struct_size = info->struct_size;
    full.name = l->name;
    full.type = l->type;
    full.rank = l->rank;
    for (uint32_t d = 0; d < l->rank && d < FX_LAYER_MAX_RANK; d++)
        full.shape[d] = l->shape[d];
    full.is_feature_map = fx__layers_is_target(l);
    size_t known = info->struct_size < sizeof full ? info->struct_size : sizeof full;
    memcpy(info, &full, known);
    return FX_OK;
}

/* ---- Preprocessing ------------------------------------------------------ */

/* Writes one image as normalized NCHW planes into dst (channels*h*w floats):
 * the model's intensity rule (with the loader's info, may be NULL) and
 * resize mode (lib/preprocess.c). */
static fx_status preprocess(const fx_model *m, const fx_image *img, const fx_image_info *info, float *dst)
{
    fx__unit_map map;
    fx__geometry g;
    fx_status st = fx__intensity_resolve(&m->intensity, img, info, "fx_gradcam_compute: intensity", &map);
    if (st == FX_OK)
        st = fx__geometry_plan(m->resize_mode, m->resize_size, img->width, img->height, m->width, m->height, &g);
    if (st == FX_OK)
        st = fx__preprocess_image(img, &map, &g, m->channels, m->mean, m->std, dst);
    return st;
}

/* ---- Results ------------------------------------------------------------ */

static void free_images(fx_image *images, size_t count)
{
    if (!images)
        return;
    for (size_t i = 0; i < count; i++)
        fx_image_free(&images[i]);
    free(images);
}

void fx_result_free(fx_result *r)
{
    if (!r)
        return;
    size_t maps = r->n * r->method_count;
    free_images(r->heatmaps, maps);
    free_images(r->raw, maps);
    free_images(r->lowres, maps);
    free_images(r->saliency, maps);
    free(r->methods);
    free(r->layer);
    free(r->logits);
    free(r->probabilities);
    free(r->predicted);
    free(r->target);
    free(r->seen);
    warning_list_free(&r->warnings);
    free(r);
}

static fx_result *result_new(const fx_model *m, size_t n, const int32_t *methods, uint32_t method_count,
                             const char *layer, int keep_raw)
{
    fx_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->n = n;
    r->method_count = method_count;
    r->methods = malloc(method_count * sizeof *methods);
    if (r->methods)
        memcpy(r->methods, methods, method_count * sizeof *methods);
    r->logit_count = m->logit_count;
    r->result_count = m->result_count;
    size_t maps = n * method_count;
    r->layer = copy_string(layer);
    r->logits = calloc(n * m->logit_count, sizeof(float));
    r->probabilities = calloc(n * m->result_count, sizeof(float));
    r->predicted = calloc(n, sizeof(int32_t));
    r->target = calloc(n, sizeof(int32_t));
    r->seen = calloc(n * 4, sizeof(uint32_t));
    r->heatmaps = calloc(maps, sizeof(fx_image));
    r->lowres = calloc(maps, sizeof(fx_image));
    r->saliency = calloc(maps, sizeof(fx_image));
    r->raw = keep_raw ? calloc(maps, sizeof(fx_image)) : NULL;
    if (!r->methods || !r->layer || !r->logits || !r->probabilities || !r->predicted || !r->target || !r->seen || !r->heatmaps || !r->lowres || !r->saliency ||
        (keep_raw && !r->raw)) {
        fx_result_free(r);
        return NULL;
    }
    return r;
}

/* ---- Prediction and target score ---------------------------------------- */

typedef struct score_context {
    const fx_model *model;
    fx_result *result;
    size_t first; /* index of the batch's first image */
    int32_t target_class;
    const int32_t *target_classes; /* NULL, or one per image of the call (overrides target_class) */
    const float *class_weights;    /* NULL, or logit_count weights: the score is their weighted sum */
} score_context;

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* Probabilities from the model's outputs (logits unless the model returns
 * probabilities fxcam could not trace back to logits: those are used as they
 * are). One output: [1 - p, p]; a final sigmoid over several outputs
 * (multi-label): each class's own sigmoid; else softmax. */
static void predict(const fx_model *m, const float *logits, float *probs, int32_t *predicted)
{
    uint32_t count = m->logit_count;
    int as_is = m->output_kind == FX_OUTPUT_PROBABILITIES && m->activation == FX__ACTIVATION_NONE;
    if (count == 1) {
        double p = as_is ? (double)logits[0] : sigmoid((double)logits[0]);
        probs[0] = (float)(1.0 - p);
        probs[1] = (float)p;
        *predicted = p >= 0.5 ? 1 : 0;
        return;
    }
    if (as_is || m->activation == FX__ACTIVATION_SIGMOID) {
        uint32_t best = 0;
        for (uint32_t c = 0; c < count; c++) {
            probs[c] = as_is ? logits[c] : (float)sigmoid((double)logits[c]);
            if (probs[c] > probs[best])
                best = c;
        }
        *predicted = (int32_t)best;
        return;
    }
    double top = logits[0], sum = 0.0;
    uint32_t best = 0;
    for (uint32_t c = 1; c < count; c++)
        if (logits[c] > top) {
            top = logits[c];
            best = c;
        }
    for (uint32_t c = 0; c < count; c++)
        sum += exp((double)logits[c] - top);
    for (uint32_t c = 0; c < count; c++)
        probs[c] = (float)(exp((double)logits[c] - top) / sum);
    *predicted = (int32_t)best;
}

/* Outputs used as probabilities must lie in [0,1]: otherwise the model is
 * not what it was declared (or guessed) to be. */
static fx_status check_probability_range(const fx_model *m, const float *out, size_t image, fx_result *r)
{
    if (m->output_kind != FX_OUTPUT_PROBABILITIES || m->activation != FX__ACTIVATION_NONE)
        return FX_OK;
    float lo = out[0], hi = out[0];
    for (uint32_t c = 1; c < m->logit_count; c++) {
        lo = fminf(lo, out[c]);
        hi = fmaxf(hi, out[c]);
    }
    if (lo >= 0.0f && hi <= 1.0f)
        return FX_OK;
    return warning_add(&r->warnings, FX_WARN_OUTPUT_KIND, (int64_t)image,
                       "image %zu: the model is taken to output probabilities, but its outputs range over [%g, %g]; "
                       "if they are logits, say \"output\": \"logits\" in fxcam.json or with the output-kind option",
                       image, (double)lo, (double)hi);
}

static fx_status choose_scores(void *user, const float *logits, uint32_t n, uint32_t classes, float *weights)
{
    score_context *ctx = user;
    fx_result *r = ctx->result;
    for (uint32_t i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * classes;
        size_t image = ctx->first + i;
        for (uint32_t c = 0; c < classes; c++)
            if (!isfinite(l[c]))
                return fx__error(FX_ERR_NUMERIC, "fx_gradcam_compute: logit %u of image %zu is %g; the model "
                                                 "produced a non-finite value",
                                 c, image, (double)l[c]);
        memcpy(r->logits + image * classes, l, classes * sizeof(float));
        fx_status st = check_probability_range(ctx->model, l, image, r);
        if (st != FX_OK)
            return st;
        predict(ctx->model, l, r->probabilities + image * r->result_count, &r->predicted[image]);
        if (ctx->class_weights) { /* a weighted sum of classes: no single target */
            r->target[image] = -1;
            memcpy(weights + (size_t)i * classes, ctx->class_weights, classes * sizeof(float));
            continue;
        }
        int32_t asked = ctx->target_classes ? ctx->target_classes[image] : ctx->target_class;
        int32_t target = asked >= 0 ? asked : r->predicted[image];
        r->target[image] = target;
        if (classes == 1)
            weights[i] = target == 1 ? 1.0f : -1.0f;
        else
            weights[(size_t)i * classes + (uint32_t)target] = 1.0f;
    }
    return FX_OK;
}

/* ---- Grad-CAM ----------------------------------------------------------- */

/* Float images must hold [0,1]: 0..255 data passed as float would be fed to
 * the model 255 times too bright, without an error. */
static fx_status check_float_range(const fx_image *img, size_t index, const char *fn)
{
    if (img->pixel_type != FX_PIXEL_F32)
        return FX_OK;
    float lo = INFINITY, hi = -INFINITY;
    size_t samples = (size_t)img->width * img->channels;
    for (uint32_t y = 0; y < img->height; y++) {
        const float *row = (const float *)(const void *)fx__row(img, y);
        for (size_t i = 0; i < samples; i++) {
            if (isnan(row[i]))
                return fx__error(FX_ERR_INVALID_ARGUMENT,
                                 "%s: image %zu: float sample at x %zu, y %u, channel %zu is NaN; "
                                 "fxcam expects values in [0,1]",
                                 fn, index, i / img->channels, y, i % img->channels);
            lo = fminf(lo, row[i]);
            hi = fmaxf(hi, row[i]);
        }
    }
    if (lo < 0.0f || hi > 1.0f)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: image %zu: float samples range over [%g, %g]; fxcam expects [0,1]: "
                         "divide by 255 (8-bit data) or 65535 (16-bit)",
                         fn, index, (double)lo, (double)hi);
    return FX_OK;
}

/* An image far smaller or larger than the model input is answered, but the
 * answer deserves doubt: say so. */
static fx_status add_scale_warnings(const fx_model *m, const fx_image *images, size_t n, fx_result *r)
{
    fx_status st = FX_OK;
    for (size_t i = 0; i < n && st == FX_OK; i++) {
        const fx_image *img = &images[i];
        double up = fmax((double)m->width / img->width, (double)m->height / img->height);
        double down = fmax((double)img->width / m->width, (double)img->height / m->height);
        if (up > 4.0)
            st = warning_add(&r->warnings, FX_WARN_UPSCALE, (int64_t)i,
                             "image %zu (%ux%u) is upscaled %.1fx to the model input %ux%u: the model sees "
                             "interpolated pixels and the map has no detail finer than the image; use an image of at "
                             "least %ux%u or check the model's input size",
                             i, img->width, img->height, up, m->width, m->height, (m->width + 3) / 4,
                             (m->height + 3) / 4);
        if (st == FX_OK && down > 16.0 && m->resize_mode == FX_RESIZE_STRETCH)
            st = warning_add(&r->warnings, FX_WARN_DOWNSCALE, (int64_t)i,
                             "image %zu (%ux%u) is downscaled %.1fx to the model input %ux%u: bilinear resizing "
                             "without antialiasing skips most pixels, so small findings can vanish; use the resize "
                             "mode the model was trained with (e.g. stretch-antialias, as torchvision's Resize) or "
                             "crop the region of interest",
                             i, img->width, img->height, down, m->width, m->height);
    }
    return st;
}

/* Largest color sample of a U16 image (alpha ignored). */
static uint32_t u16_color_max(const fx_image *img)
{
    uint32_t colors = img->channels >= 3 ? 3 : 1, top = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint16_t *row = (const uint16_t *)(const void *)fx__row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < colors; c++)
                top = row[(size_t)x * img->channels + c] > top ? row[(size_t)x * img->channels + c] : top;
    }
    return top;
}

/* 12-bit radiographs are often stored in 16-bit PNGs without an sBIT chunk;
 * read as v / 65535 they reach the model and the figure as 0..0.06. Say so
 * rather than guess: the data may also be a dark 16-bit image. */
static fx_status warn_narrow_range(const fx__unit_map *map, const fx_image *img, size_t i, fx_result *r)
{
    if (img->pixel_type != FX_PIXEL_U16 || map->mode != FX_INTENSITY_BITS || map->bits != 16)
        return FX_OK;
    uint32_t top = u16_color_max(img);
    if (top == 0 || top > 4095)
        return FX_OK;
    return warning_add(&r->warnings, FX_WARN_NARROW_RANGE, (int64_t)i,
                       "image %zu: its 16-bit samples reach only %u (they fit in 12 bits) and no bit depth is known "
                       "(no PNG sBIT chunk), so it is read as v / 65535 and the model and the figure see under "
                       "%.0f%% of the range; if the data is 12-bit, set bits_stored 12 (CLI --bits 12, fxcam.json "
                       "\"bits_stored\": 12) or store an sBIT chunk",
                       i, top, 100.0 * top / 65535.0 + 0.5);
}

/* What the geometry and the intensity rule did to each image: the part the
 * model saw (a crop: FX_WARN_NOT_SEEN), samples clipped by the rule and
 * 12-bit data read as 16-bit (FX_WARN_NARROW_RANGE). */
static fx_status add_input_warnings(const fx_model *m, const fx_image *images, size_t n, const fx_gradcam_options *o,
                                    fx_result *r)
{
    fx_status st = FX_OK;
    for (size_t i = 0; i < n && st == FX_OK; i++) {
        const fx_image *img = &images[i];
        fx__geometry g;
        fx__unit_map map;
        st = fx__geometry_plan(m->resize_mode, m->resize_size, img->width, img->height, m->width, m->height, &g);
        if (st == FX_OK)
            st = fx__intensity_resolve(&m->intensity, img, o->image_info ? &o->image_info[i] : NULL,
                                       "fx_gradcam_compute: intensity", &map);
        if (st != FX_OK)
            break;
        uint32_t *seen = r->seen + i * 4;
        seen[0] = g.seen_x, seen[1] = g.seen_y, seen[2] = g.seen_w, seen[3] = g.seen_h;
        if (g.seen_w != img->width || g.seen_h != img->height)
            st = warning_add(&r->warnings, FX_WARN_NOT_SEEN, (int64_t)i,
                             "image %zu (%ux%u): the model saw only x %u..%u, y %u..%u (resize to %ux%u, center crop "
                             "%ux%u); the heatmap is 0 outside it, which means 'not seen', not 'no evidence'",
                             i, img->width, img->height, g.seen_x, g.seen_x + g.seen_w - 1, g.seen_y,
                             g.seen_y + g.seen_h - 1, g.resized_w, g.resized_h, m->width, m->height);
        uint64_t low, high;
        fx__intensity_clipped(&map, img, &low, &high);
        if (st == FX_OK && (low || high))
            st = warning_add(&r->warnings, FX_WARN_CLIPPED, (int64_t)i,
                             "image %zu: the intensity rule '%s'%s clipped %llu samples to 1 and %llu to 0: the "
                             "image holds values outside the range the model was trained on; check --bits/--window "
                             "or fxcam.json's \"intensity\"",
                             i, fx_intensity_name(map.mode), map.mode == FX_INTENSITY_BITS ? " (bits)" : "",
                             (unsigned long long)high, (unsigned long long)low);
        if (st == FX_OK)
            st = warn_narrow_range(&map, img, i, r);
    }
    return st;
}

static int all_zero(const float *map, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (map[i] != 0.0f)
            return 0;
    return 1;
}

/* The images of a call (fn names the public function in messages). */
static fx_status check_images(const fx_image *images, size_t n, const char *fn)
{
    if (n == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: n is 0; pass at least one image", fn);
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s: images[%zu]", fn, i);
        fx_status st = fx__image_check(&images[i], what);
        if (st != FX_OK)
            return st;
        if (images[i].width < FX_MIN_IMAGE_SIZE || images[i].height < FX_MIN_IMAGE_SIZE)
            return fx__error(FX_ERR_INVALID_ARGUMENT, "%s is %ux%u; images must be at least %dx%d pixels", what,
                             images[i].width, images[i].height, FX_MIN_IMAGE_SIZE, FX_MIN_IMAGE_SIZE);
        st = check_float_range(&images[i], i, fn);
        if (st != FX_OK)
            return st;
    }
    return FX_OK;
}

/* target_classes and class_weights (fxcam.h, fx_gradcam_options, 0.2):
 * each entry in range, weights finite and not all zero, and never two ways
 * of naming the target at once. */
static fx_status check_targets(const fx_model *m, size_t n, const fx_gradcam_options *o)
{
    int32_t last = m->logit_count == 1 ? 1 : (int32_t)m->logit_count - 1;
    const char *single = m->logit_count == 1 ? " (single-logit model: 0 = negative, 1 = positive)" : "";
    for (size_t i = 0; o->target_classes && i < n; i++)
        if (o->target_classes[i] < -1 || o->target_classes[i] > last)
            return fx__error(FX_ERR_INVALID_ARGUMENT,
                             "fx_gradcam_compute: target_classes[%zu] = %d out of range; valid: -1 (that image's "
                             "predicted class) or 0..%d%s; target_classes needs one entry per image (%zu)",
                             i, (int)o->target_classes[i], (int)last, single, n);
    if (!o->class_weights) {
        if (o->class_weight_count)
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: class_weight_count is %u but class_weights "
                                                      "is NULL", o->class_weight_count);
        return FX_OK;
    }
    if (o->target_classes || o->target_class != -1)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_gradcam_compute: class_weights is given together with %s; the score is either one "
                         "class or a weighted sum of classes: pass one of them",
                         o->target_classes ? "target_classes" : "target_class");
    if (o->class_weight_count != m->logit_count)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_gradcam_compute: class_weights has %u values but the model has %u logits "
                         "(fx_model_class_count); pass one weight per logit",
                         o->class_weight_count, m->logit_count);
    int any = 0;
    for (uint32_t c = 0; c < o->class_weight_count; c++) {
        if (!isfinite(o->class_weights[c]))
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: class_weights[%u] is %g; weights must be "
                                                      "finite", c, (double)o->class_weights[c]);
        any |= o->class_weights[c] != 0.0f;
    }
    if (!any)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: class_weights are all 0: the score would be "
                                                  "constant and every map blank; give at least one non-zero weight");
    return FX_OK;
}

/* Smooth Grad-CAM++'s sample count and noise level. */
static fx_status check_smooth(const fx_gradcam_options *o)
{
    if (o->smooth_samples > FX_MAX_SMOOTH_SAMPLES)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: smooth_samples %u; valid: 0 (default %d) or "
                                                  "1..%d", o->smooth_samples, FX_DEFAULT_SMOOTH_SAMPLES,
                         FX_MAX_SMOOTH_SAMPLES);
    if (!(o->smooth_noise >= 0.0f && o->smooth_noise <= FX_MAX_SMOOTH_NOISE))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: smooth_noise %g; valid: 0 (default %g) or a "
                                                  "fraction of the input's range in (0, %g]",
                         (double)o->smooth_noise, (double)FX_DEFAULT_SMOOTH_NOISE, (double)FX_MAX_SMOOTH_NOISE);
    return FX_OK;
}

static fx_status check_gradcam_request(const fx_model *m, const fx_image *images, size_t n,
                                       const fx_gradcam_options *o)
{
    fx_status images_ok = check_images(images, n, "fx_gradcam_compute");
    if (images_ok != FX_OK)
        return images_ok;
    int32_t last = m->logit_count == 1 ? 1 : (int32_t)m->logit_count - 1;
    if (o->target_class < -1 || o->target_class > last)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_gradcam_compute: target_class %d out of range; valid: -1 (predicted) or 0..%d%s",
                         (int)o->target_class, (int)last,
                         m->logit_count == 1 ? " (single-logit model: 0 = negative, 1 = positive)" : "");
    fx_status targets_ok = check_targets(m, n, o);
    if (targets_ok == FX_OK)
        targets_ok = check_smooth(o);
    if (targets_ok != FX_OK)
        return targets_ok;
    if (o->method_count > FX_MAX_METHODS_PER_CALL)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: method_count %u; at most %d (repeats count)",
                         o->method_count, FX_MAX_METHODS_PER_CALL);
    for (uint32_t j = 0; o->methods && j < o->method_count; j++) {
        char valid[FX__CAM_VALID_NAMES_MAX];
        if (!fx_cam_method_find(o->methods[j]))
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: methods[%u] = %d is not a method; valid: %s",
                             j, (int)o->methods[j], fx__cam_valid_ids(valid, sizeof valid));
    }
    return FX_OK;
}

static fx_status store_lowres(const float *map, uint32_t h, uint32_t w, fx_image *out)
{
    fx_status st = fx_image_alloc(out, w, h, 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    for (uint32_t y = 0; y < h; y++)
        memcpy(fx__row(out, y), map + (size_t)y * w, w * sizeof(float));
    return FX_OK;
}

/* ---- Gradient-free methods with one forward per channel ------------------ */

/* Progress of the per-channel forwards of one fx_gradcam_compute call, and
 * the batch's score weights ([n][classes], from choose_scores). */
typedef struct channel_work {
    const fx_gradcam_options *o;
    const float *weights;
    uint32_t classes;
    uint64_t done, total;
    int pending;     /* methods with channel passes, until the total is known after the first
                      * forward (it needs the layer's channel count); then 0 */
    size_t images;   /* images of the call */
    float *smooth_gradients; /* [n][k][h][w]: the batch's noise-averaged gradients (Smooth Grad-CAM++), or NULL */
    const char *const *layers; /* the call's target layers (refinements: several layers) */
    uint32_t layer_count;
    int refined;     /* aug_smooth or several layers: maps are combined at the model input size */
    float *combined; /* refined only: [count][method_count][H][W], the batch's maps being averaged */
    fx__shim_guided *guided; /* the batch's guided pass (lib/guided.c), or NULL */
} channel_work;

static uint32_t methods_needs(const fx_result *r)
{
    uint32_t needs = 0;
    for (uint32_t j = 0; j < r->method_count; j++)
        needs |= fx_cam_method_find(r->methods[j])->needs;
    return needs;
}

/* The methods with one forward per channel of the layer (their extra
 * forwards are masked or ablated copies); Smooth Grad-CAM++'s extra
 * forwards are noisy copies of the input instead. */
static bool is_channel_method(int32_t method)
{
    return method == FX_CAM_SCORECAM || method == FX_CAM_ABLATIONCAM;
}

static uint32_t channel_method_count(const fx_result *r)
{
    uint32_t count = 0;
    for (uint32_t j = 0; j < r->method_count; j++)
        count += is_channel_method(r->methods[j]);
    return count;
}

static bool wants_method(const fx_result *r, int32_t method)
{
    for (uint32_t j = 0; j < r->method_count; j++)
        if (r->methods[j] == method)
            return true;
    return false;
}

/* Tells the caller's progress callback; a non-zero answer cancels. */
static fx_status report_progress(const channel_work *work)
{
    if (!work->o->progress || work->o->progress(work->o->progress_user, work->done, work->total) == 0)
        return FX_OK;
    return fx__error(FX_ERR_CANCELLED,
                     "fx_gradcam_compute: cancelled by the progress callback after %llu of %llu per-channel "
                     "forward passes",
                     (unsigned long long)work->done, (unsigned long long)work->total);
}

/* Score-CAM or Ablation-CAM of image i of the capture: the channel passes
 * in batches of channel_batch_size, then the weights and the map (cam_free.c). */
static fx_status channel_map(int32_t method, fx__shim_capture *cap, uint32_t i, channel_work *work, float *map)
{
    uint32_t k = cap->k;
    size_t hw = (size_t)cap->h * cap->w;
    if (work->pending) {
        work->total = (uint64_t)work->images * k * work->pending;
        work->pending = 0;
        fx_status st = report_progress(work);
        if (st != FX_OK)
            return st;
    }
    const float *w = work->weights + (size_t)i * work->classes;
    float *scores = malloc(k * sizeof(float));
    double *channel_weights = malloc(k * sizeof(double));
    fx_status st = scores && channel_weights ? FX_OK
                                             : fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate "
                                                                               "%u channel scores", k);
    uint32_t batch = work->o->channel_batch_size ? work->o->channel_batch_size : FX_DEFAULT_CHANNEL_BATCH;
    int32_t kind = method == FX_CAM_SCORECAM ? FX__CHANNELS_SCORE : FX__CHANNELS_ABLATION;
    for (uint32_t first = 0; first < k && st == FX_OK; first += batch) {
        uint32_t count = k - first < batch ? k - first : batch;
        st = fx__shim_channel_scores(cap, kind, i, first, count, w, scores + first);
        work->done += count;
        if (st == FX_OK)
            st = report_progress(work);
    }
    if (st == FX_OK && method == FX_CAM_SCORECAM)
        st = fx__score_cam_weights(scores, k, channel_weights);
    if (st == FX_OK && method == FX_CAM_ABLATIONCAM) {
        double original = 0.0; /* the target score of the unmodified image */
        for (uint32_t c = 0; c < work->classes; c++)
            original += (double)w[c] * cap->logits[(size_t)i * work->classes + c];
        st = fx__ablation_cam_weights(original, scores, k, channel_weights);
    }
    if (st == FX_OK && work->o->eigen_smooth)
        st = fx__cam_eigen_from_weights(cap->activations + (size_t)i * k * hw, channel_weights, k, hw, map);
    else if (st == FX_OK)
        st = fx__cam_from_weights(cap->activations + (size_t)i * k * hw, channel_weights, k, hw, map);
    free(scores);
    free(channel_weights);
    return st;
}

/* The low-resolution map of one method for image i of the capture. */
static fx_status method_lowres(int32_t method, fx__shim_capture *cap, uint32_t i, channel_work *work, float *map)
{
    const fx_cam_method_info *info = fx_cam_method_find(method);
    if (is_channel_method(method))
        return channel_map(method, cap, i, work, map);
    size_t sample = (size_t)cap->k * cap->h * cap->w;
    int eigen = work->o->eigen_smooth != 0;
    if (method == FX_CAM_SMOOTH_GRADCAM_PLUSPLUS) /* Grad-CAM++ of the clean activations, averaged gradients */
        return fx__cam_lowres_smooth(FX_CAM_GRADCAM_PLUSPLUS, cap->activations + i * sample,
                                     work->smooth_gradients + i * sample, 1, cap->k, cap->h, cap->w, eigen, map);
    const float *g = info->needs & FX_CAM_NEEDS_GRADIENTS ? cap->gradients + i * sample : NULL;
    return fx__cam_lowres_smooth(method, cap->activations + i * sample, g, 1, cap->k, cap->h, cap->w, eigen, map);
}

/* Stores the final map of image `image`, method slot j: h x w floats at the
 * layer's size, or at the model input's for refined maps. Warns when it is
 * all zero, keeps it as the low-resolution map and brings it back into the
 * image's geometry: crops leave the unseen part 0, letterboxing drops the
 * padding (lib/preprocess.c). */
static fx_status store_map(const fx_model *m, fx_result *r, const fx_image *images, size_t image, uint32_t j,
                           const float *map, uint32_t h, uint32_t w, int keep_raw)
{
    fx_status st = FX_OK;
    size_t slot = image * r->method_count + j;
    if (all_zero(map, (size_t)h * w)) {
        int32_t target = r->target[image];
        char score[160];
        if (target >= 0)
            snprintf(score, sizeof score, "class %d ('%s')", (int)target, m->class_names[target]);
        else
            snprintf(score, sizeof score, "the weighted sum of classes (class_weights)");
        st = warning_add(&r->warnings, FX_WARN_ZERO_MAP, (int64_t)image,
                         "image %zu: the score of %s gets no positive evidence from layer '%s': "
                         "the %s map is all zero after ReLU, so its heatmap is blank; try another layer or "
                         "method",
                         image, score, r->layer, fx_cam_method_name(r->methods[j]));
    }
    if (st == FX_OK)
        st = store_lowres(map, h, w, &r->lowres[slot]);
    fx__geometry g;
    uint32_t iw = images[image].width, ih = images[image].height;
    if (st == FX_OK)
        st = fx__geometry_plan(m->resize_mode, m->resize_size, iw, ih, m->width, m->height, &g);
    if (st == FX_OK)
        st = fx__map_to_image(map, h, w, &g, iw, ih, 1, &r->heatmaps[slot]);
    if (st == FX_OK && keep_raw)
        st = fx__map_to_image(map, h, w, &g, iw, ih, 0, &r->raw[slot]);
    return st;
}

/* A guided method's maps of image `image`, slot j (lib/guided.c): an
 * input-space saliency, so the refinements, which average layer maps, do
 * not apply. */
static fx_status guided_slot(const fx_model *m, fx_result *r, const fx_image *images, size_t image, uint32_t j,
                             const fx__shim_capture *cap, uint32_t i, const channel_work *work)
{
    if (work->refined)
        return fx__error(FX_ERR_UNSUPPORTED, "fx_gradcam_compute: %s gives an input-space saliency image; "
                                             "aug_smooth and several layers average layer maps and do not apply: "
                                             "ask for it in a call without them",
                         fx_cam_method_name(r->methods[j]));
    size_t slot = image * r->method_count + j;
    uint32_t iw = images[image].width, ih = images[image].height;
    fx__geometry g;
    fx__guided_slot out = {&r->lowres[slot], &r->heatmaps[slot], work->o->keep_raw ? &r->raw[slot] : NULL,
                           &r->saliency[slot]};
    fx_status st = fx__geometry_plan(m->resize_mode, m->resize_size, iw, ih, m->width, m->height, &g);
    return st == FX_OK ? fx__guided_maps(r->methods[j], cap, i, work->guided, m->channels, &g, iw, ih, &out) : st;
}

/* Turns one batch's activations and gradients (or channel passes) into
 * every requested map: stored, or (refined) scaled, upsampled to the model
 * input size and added to work->combined (pytorch-grad-cam's
 * compute_cam_per_layer: scale_cam_image(cam, target_size)). */
static fx_status make_maps(const fx_model *m, fx_result *r, const fx_image *images, size_t first,
                           fx__shim_capture *cap, channel_work *work)
{
    size_t hw = (size_t)cap->h * cap->w, plane = (size_t)m->width * m->height;
    float *map = malloc(hw * sizeof(float));
    float *up = work->refined ? malloc(plane * sizeof(float)) : NULL;
    if (!map || (work->refined && !up)) {
        free(map);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate a %ux%u map", cap->w, cap->h);
    }
    fx_status st = FX_OK;
    for (uint32_t i = 0; i < cap->n && st == FX_OK; i++) {
        for (uint32_t j = 0; j < r->method_count && st == FX_OK; j++) {
            if (fx_cam_method_find(r->methods[j])->needs & FX_CAM_NEEDS_INPUT_GRADIENTS) {
                st = guided_slot(m, r, images, first + i, j, cap, i, work);
                continue;
            }
            st = method_lowres(r->methods[j], cap, i, work, map);
            if (st != FX_OK)
                break;
            if (!work->refined) {
                st = store_map(m, r, images, first + i, j, map, cap->h, cap->w, work->o->keep_raw);
                continue;
            }
            st = fx__map_scale_resize(map, cap->h, cap->w, m->height, m->width, up);
            float *sum = work->combined + ((size_t)i * r->method_count + j) * plane;
            for (size_t e = 0; e < plane && st == FX_OK; e++)
                sum[e] += up[e];
        }
    }
    free(map);
    free(up);
    return st;
}

/* The model input of count images: every entry point that runs the model
 * (fx_gradcam_compute, fx_model_predict) prepares its batches here, so that
 * they see the same numbers. */
static fx_status prepare_batch(const fx_model *m, const fx_image *images, size_t first, uint32_t count,
                               const fx_gradcam_options *o, float *input)
{
    size_t per_image = (size_t)m->channels * m->width * m->height;
    fx_status st = FX_OK;
    for (uint32_t i = 0; i < count && st == FX_OK; i++)
        st = preprocess(m, &images[first + i], o->image_info ? &o->image_info[first + i] : NULL,
                        input + i * per_image);
    return st;
}

/* ---- Smooth Grad-CAM++: gradients averaged over noisy copies ------------- */

/* SplitMix64 (Steele, Lea & Flood 2014; Vigna's reference constants): one
 * 64-bit draw, advancing *state by the golden-ratio increment. Chosen for
 * the noise because it is a few lines in any language (make_fixtures.py
 * reproduces it with numpy) and its n-th output depends only on state + n. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Adds the noise of image `image` (its index in the call), sample `sample`
 * to size floats of one normalized model input (docs/algorithms.md, Smooth
 * Grad-CAM++): stream state = seed XOR (image << 32 | sample); element e
 * takes draws 2e and 2e + 1: u1 = (d >> 11 + 1) / 2^53 in (0, 1], u2 =
 * (d >> 11) / 2^53, z = sqrt(-2 ln u1) cos(2 pi u2) (Box-Muller), and
 * becomes x + (float)(sigma z) with sigma = noise x (max x - min x). */
static void add_smooth_noise(const float *x, size_t size, uint64_t seed, uint64_t image, uint32_t sample, float noise,
                             float *out)
{
    float lo = x[0], hi = x[0];
    for (size_t e = 1; e < size; e++) {
        lo = fminf(lo, x[e]);
        hi = fmaxf(hi, x[e]);
    }
    double sigma = (double)noise * ((double)hi - (double)lo);
    uint64_t state = seed ^ (image << 32 | sample);
    const double unit = 1.0 / 9007199254740992.0; /* 2^-53 */
    for (size_t e = 0; e < size; e++) {
        double u1 = (double)((splitmix64(&state) >> 11) + 1) * unit;
        double u2 = (double)(splitmix64(&state) >> 11) * unit;
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
        out[e] = x[e] + (float)(sigma * z);
    }
}

/* Runs smooth_samples noisy copies of the batch's inputs forward and back
 * with the score weights chosen on the clean inputs, and keeps the mean
 * gradient at the layer in work->smooth_gradients. */
static fx_status smooth_gradients(fx_model *m, const char *layer, size_t first, uint32_t count, const float *input,
                                  const float *weights, const fx__shim_capture *clean, channel_work *work)
{
    uint32_t samples = work->o->smooth_samples ? work->o->smooth_samples : FX_DEFAULT_SMOOTH_SAMPLES;
    float noise = work->o->smooth_noise > 0.0f ? work->o->smooth_noise : FX_DEFAULT_SMOOTH_NOISE;
    size_t per_image = (size_t)m->channels * m->width * m->height;
    size_t grads = (size_t)count * clean->k * clean->h * clean->w;
    double *sum = calloc(grads, sizeof *sum);
    float *noisy = malloc(per_image * count * sizeof *noisy);
    work->smooth_gradients = malloc(grads * sizeof(float));
    fx_status st = sum && noisy && work->smooth_gradients
                       ? FX_OK
                       : fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate Smooth Grad-CAM++ "
                                                         "buffers for %u images", count);
    for (uint32_t s = 0; s < samples && st == FX_OK; s++) {
        for (uint32_t i = 0; i < count; i++)
            add_smooth_noise(input + i * per_image, per_image, work->o->smooth_seed, (uint64_t)(first + i), s, noise,
                             noisy + i * per_image);
        fx__shim_capture cap = {0};
        st = fx__shim_forward(m->shim, noisy, count, layer, FX__FORWARD_GRADIENTS, &cap);
        if (st == FX_OK)
            st = fx__shim_backward(&cap, weights);
        for (size_t e = 0; e < grads && st == FX_OK; e++)
            sum[e] += cap.gradients[e];
        fx__shim_capture_free(&cap);
    }
    for (size_t e = 0; e < grads && st == FX_OK; e++)
        work->smooth_gradients[e] = (float)(sum[e] / samples);
    free(sum);
    free(noisy);
    return st;
}

/* One pass of a batch's (possibly augmented) input through one layer, as a
 * plain sequence: forward (logits, activations) -> the targets and score
 * weights, decided here on the first pass (*weights NULL: allocated and
 * kept for the later passes) -> backward when a method needs gradients ->
 * per-channel passes for the gradient-free methods that need them -> maps. */
static fx_status layer_pass(fx_model *m, fx_result *r, const fx_image *images, size_t first, uint32_t count,
                            const float *input, const char *layer, float **weights, channel_work *work)
{
    uint32_t needs = methods_needs(r);
    uint32_t flags = (needs & FX_CAM_NEEDS_GRADIENTS ? FX__FORWARD_GRADIENTS : 0u) |
                     (channel_method_count(r) ? FX__FORWARD_CHANNELS : 0u);
    fx__shim_capture cap = {0};
    fx__shim_guided *guided = NULL;
    fx_status st = fx__guided_forward(m->shim, input, count, layer, needs, flags, &cap, &guided);
    if (st == FX_OK && !*weights) {
        score_context ctx = {m, r, first, work->o->target_class, work->o->target_classes, work->o->class_weights};
        *weights = calloc((size_t)count * cap.classes, sizeof(float));
        st = *weights ? choose_scores(&ctx, cap.logits, count, cap.classes, *weights)
                      : fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate score weights");
    }
    if (st == FX_OK) /* fx__shim_backward, and the guided input gradients when asked (lib/guided.c) */
        st = fx__guided_backward(&cap, guided, *weights, needs);
    if (st == FX_OK && wants_method(r, FX_CAM_SMOOTH_GRADCAM_PLUSPLUS))
        st = smooth_gradients(m, layer, first, count, input, *weights, &cap, work);
    work->guided = guided;
    work->weights = *weights;
    work->classes = cap.classes;
    if (st == FX_OK)
        st = make_maps(m, r, images, first, &cap, work);
    work->weights = NULL;
    free(work->smooth_gradients);
    work->smooth_gradients = NULL;
    fx__shim_guided_free(guided);
    work->guided = NULL;
    fx__shim_capture_free(&cap);
    return st;
}

/* Refinements (docs/algorithms.md): for each augmentation (aug_smooth, else
 * the identity alone) the batch's input is multiplied and flipped, every
 * layer's maps are scaled, upsampled and averaged (pytorch-grad-cam's
 * aggregate_multi_layers: mean over the layers, then scale_cam_image), then
 * flipped back and averaged over the augmentations
 * (forward_augmentation_smoothing); the result, at the model input size,
 * is stored for each image and method. */
static fx_status refined_batch(fx_model *m, fx_result *r, const fx_image *images, size_t first, uint32_t count,
                               const float *input, channel_work *work)
{
    uint32_t augs = work->o->aug_smooth ? FX__AUG_COUNT : 1;
    size_t plane = (size_t)m->width * m->height, inputs = plane * m->channels * count;
    size_t slots = (size_t)count * r->method_count;
    float *augmented = malloc(inputs * sizeof(float));
    float *layer_sum = calloc(slots * plane, sizeof(float)), *total = calloc(slots * plane, sizeof(float));
    float *weights = NULL;
    fx_status st = augmented && layer_sum && total
                       ? FX_OK
                       : fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate the %u maps of "
                                                         "%ux%u being averaged", (unsigned)slots, m->width, m->height);
    work->combined = layer_sum;
    for (uint32_t a = 0; a < augs && st == FX_OK; a++) {
        int flip;
        float factor;
        fx__augmentation(a, &flip, &factor);
        for (size_t e = 0; e < inputs; e++)
            augmented[e] = input[e] * factor;
        if (flip)
            fx__flip_horizontal(augmented, count * m->channels, m->height, m->width);
        for (uint32_t l = 0; l < work->layer_count && st == FX_OK; l++)
            st = layer_pass(m, r, images, first, count, augmented, work->layers[l], &weights, work);
        for (size_t s = 0; s < slots && st == FX_OK; s++) {
            float *sum = layer_sum + s * plane;
            for (size_t e = 0; e < plane; e++)
                sum[e] /= (float)work->layer_count;
            fx__map_scale(sum, plane);
            if (flip)
                fx__flip_horizontal(sum, 1, m->height, m->width);
            for (size_t e = 0; e < plane; e++)
                total[s * plane + e] += sum[e];
            memset(sum, 0, plane * sizeof(float));
        }
    }
    for (size_t s = 0; s < slots && st == FX_OK; s++) {
        float *map = total + s * plane;
        for (size_t e = 0; e < plane; e++)
            map[e] /= (float)augs;
        st = store_map(m, r, images, first + s / r->method_count, (uint32_t)(s % r->method_count), map, m->height,
                       m->width, work->o->keep_raw);
    }
    work->combined = NULL;
    free(weights);
    free(augmented);
    free(layer_sum);
    free(total);
    return st;
}

/* Hands one prepared batch (count images from index first, normalized into
 * input) to the caller of for_each_batch. */
typedef fx_status (*batch_fn)(fx_model *m, const fx_image *images, size_t first, uint32_t count, const float *input,
                              void *user);

/* The loop every entry point that runs the model shares: the n images in
 * batches of o->batch_size (0 = 8), each prepared by prepare_batch (so that
 * they all see the same numbers) and handed to fn. fn_name names the public
 * function in messages. */
static fx_status for_each_batch(fx_model *m, const fx_image *images, size_t n, const fx_gradcam_options *o,
                                const char *fn_name, batch_fn fn, void *user)
{
    uint32_t batch = o->batch_size ? o->batch_size : FX_DEFAULT_BATCH;
    if (batch > n)
        batch = (uint32_t)n;
    size_t per_image = (size_t)m->channels * m->width * m->height;
    float *input = malloc(per_image * batch * sizeof(float));
    if (!input)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "%s: cannot allocate a batch of %u inputs", fn_name, batch);
    fx_status st = FX_OK;
    for (size_t first = 0; first < n && st == FX_OK; first += batch) {
        uint32_t count = (uint32_t)(n - first < batch ? n - first : batch);
        st = prepare_batch(m, images, first, count, o, input);
        if (st == FX_OK)
            st = fn(m, images, first, count, input, user);
    }
    free(input);
    return st;
}

typedef struct compute_job {
    fx_result *result;
    channel_work *work;
} compute_job;

static fx_status compute_batch(fx_model *m, const fx_image *images, size_t first, uint32_t count, const float *input,
                               void *user)
{
    compute_job *job = user;
    if (job->work->refined)
        return refined_batch(m, job->result, images, first, count, input, job->work);
    float *weights = NULL;
    fx_status st = layer_pass(m, job->result, images, first, count, input, job->work->layers[0], &weights, job->work);
    free(weights);
    return st;
}

/* The channels of a target layer (its probed shape), for the progress total. */
static uint32_t layer_channels(const fx_model *m, const char *layer)
{
    for (size_t i = 0; i < fx__shim_layer_count(m->shim); i++) {
        const fx__shim_layer *l = fx__shim_layer_at(m->shim, i);
        if (strcmp(l->name, layer) == 0 && l->rank == 4)
            return (uint32_t)l->shape[1];
    }
    return 0;
}

static fx_status run_batches(fx_model *m, const fx_image *images, size_t n, const fx_gradcam_options *o,
                             fx_result *r, const char *const *layers, uint32_t layer_count)
{
    channel_work work = {.o = o, .pending = (int)channel_method_count(r), .images = n, .layers = layers,
                         .layer_count = layer_count, .refined = o->aug_smooth || layer_count > 1};
    fx_status st = FX_OK;
    if (work.refined && work.pending) { /* every layer's channels, for every augmentation, known up front */
        uint64_t channels = 0;
        for (uint32_t l = 0; l < layer_count; l++)
            channels += layer_channels(m, layers[l]);
        work.total = (uint64_t)n * channels * (uint64_t)work.pending * (o->aug_smooth ? FX__AUG_COUNT : 1);
        work.pending = 0;
        st = report_progress(&work);
    }
    compute_job job = {r, &work};
    return st == FX_OK ? for_each_batch(m, images, n, o, "fx_gradcam_compute", compute_batch, &job) : st;
}

/* Guided methods' maps live in input space (lib/guided.c): fxcam does not
 * average them over augmentations or layers; say so rather than ignore it. */
static fx_status check_refinements(const fx_gradcam_options *o, const int32_t *methods, uint32_t method_count,
                                   uint32_t layer_count)
{
    if (!o->aug_smooth && layer_count < 2)
        return FX_OK;
    for (uint32_t j = 0; j < method_count; j++)
        if (fx_cam_method_find(methods[j])->needs & FX_CAM_NEEDS_INPUT_GRADIENTS)
            return fx__error(FX_ERR_UNSUPPORTED, "fx_gradcam_compute: %s with %s is not supported: its map is "
                                                 "in input space; drop %s or compute it in a separate call",
                             fx_cam_method_title(methods[j]), o->aug_smooth ? "aug_smooth" : "several layers",
                             o->aug_smooth ? "aug_smooth" : "the extra layers");
    return FX_OK;
}

/* The target layers of a call: options.layers (1..FX_MAX_LAYERS_PER_CALL
 * valid, distinct names), else options.layer, else the model's default.
 * *joined (malloc'd) names them joined by ',' for the result. */
static fx_status resolve_layers(const fx_model *model, const fx_gradcam_options *o, const char *const **layers,
                                uint32_t *count, const char **single, char **joined)
{
    *single = o->layer ? o->layer : model->default_layer;
    *layers = single;
    *count = 1;
    if (o->layers || o->layer_count) {
        if (!o->layers || o->layer_count == 0 || o->layer_count > FX_MAX_LAYERS_PER_CALL)
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: layers is %s with layer_count %u; give "
                                                      "1..%d layer names (or NULL and 0 for options.layer)",
                             o->layers ? "set" : "NULL", o->layer_count, FX_MAX_LAYERS_PER_CALL);
        if (o->layer)
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: both layer ('%.64s') and layers are "
                                                      "given; pass one of them", o->layer);
        *layers = o->layers;
        *count = o->layer_count;
    }
    if (!(*layers)[0])
        return fx__error(FX_ERR_LAYER, "fx_gradcam_compute: the model has no layer with a 4-D output of spatial "
                                       "size > 1; name one in options.layer");
    size_t length = 1;
    for (uint32_t l = 0; l < *count; l++) {
        const char *name = (*layers)[l];
        if (!name)
            return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: layers[%u] is NULL", l);
        for (uint32_t e = 0; e < l; e++)
            if (strcmp((*layers)[e], name) == 0)
                return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: layer '%.64s' is given twice "
                                                          "(layers[%u] and layers[%u]); give each layer once", name,
                                 e, l);
        fx_status st = check_layer(model, name);
        if (st != FX_OK)
            return st;
        length += strlen(name) + 1;
    }
    *joined = malloc(length);
    if (!*joined)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate layer names");
    (*joined)[0] = '\0';
    for (uint32_t l = 0; l < *count; l++) {
        if (l)
            strcat(*joined, ",");
        strcat(*joined, (*layers)[l]);
    }
    return FX_OK;
}

fx_status fx_gradcam_compute(fx_model *model, const fx_image *images, size_t n, const fx_gradcam_options *opts,
                             fx_result **out)
{
    if (!model || !images || !out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_gradcam_compute: %s is NULL",
                         !model ? "model" : !images ? "images" : "out");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    fx_status st = fx__options_merge(&o, sizeof o, opts, "fx_gradcam_compute: options");
    if (st == FX_OK)
        st = check_gradcam_request(model, images, n, &o);
    if (st != FX_OK)
        return st;
    const char *const *layers = NULL, *single = NULL;
    uint32_t layer_count = 0;
    char *joined = NULL;
    st = resolve_layers(model, &o, &layers, &layer_count, &single, &joined);
    if (st != FX_OK) {
        free(joined);
        return st;
    }
    static const int32_t gradcam_only[1] = {FX_CAM_GRADCAM};
    const int32_t *methods = o.methods && o.method_count ? o.methods : gradcam_only;
    uint32_t method_count = o.methods && o.method_count ? o.method_count : 1;
    st = check_refinements(&o, methods, method_count, layer_count);
    fx_result *r = st == FX_OK ? result_new(model, n, methods, method_count, joined, o.keep_raw) : NULL;
    free(joined);
    if (st != FX_OK)
        return st;
    if (!r)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate results for %zu images", n);
    st = add_scale_warnings(model, images, n, r);
    if (st == FX_OK)
        st = add_input_warnings(model, images, n, &o, r);
    if (st == FX_OK)
        st = run_batches(model, images, n, &o, r, layers, layer_count);
    if (st != FX_OK) {
        fx_result_free(r);
        return st;
    }
    *out = r;
    return FX_OK;
}

/* ---- Forward only ------------------------------------------------------- */

/* Non-finite outputs are a broken model, not an answer (as in choose_scores). */
static fx_status check_finite_logits(const float *logits, uint32_t classes, size_t image, const char *fn)
{
    for (uint32_t c = 0; c < classes; c++)
        if (!isfinite(logits[c]))
            return fx__error(FX_ERR_NUMERIC, "%s: logit %u of image %zu is %g; the model produced a non-finite value",
                             fn, c, image, (double)logits[c]);
    return FX_OK;
}

typedef struct predict_job {
    float *probs, *logits; /* [n][result_count], [n][logit_count] */
} predict_job;

/* One batch of fx_model_predict: a forward without gradients; its logits
 * and probabilities go to the job's arrays at the batch's images. */
static fx_status predict_batch(fx_model *m, const fx_image *images, size_t first, uint32_t count, const float *input,
                               void *user)
{
    (void)images;
    predict_job *job = user;
    fx__shim_capture cap = {0};
    fx_status st = fx__shim_forward(m->shim, input, count, NULL, 0, &cap);
    for (uint32_t i = 0; i < count && st == FX_OK; i++) {
        const float *l = cap.logits + (size_t)i * m->logit_count;
        int32_t predicted;
        st = check_finite_logits(l, m->logit_count, first + i, "fx_model_predict");
        if (st != FX_OK)
            break;
        memcpy(job->logits + (first + i) * m->logit_count, l, m->logit_count * sizeof(float));
        predict(m, l, job->probs + (first + i) * m->result_count, &predicted);
    }
    fx__shim_capture_free(&cap);
    return st;
}

fx_status fx_model_predict(fx_model *model, const fx_image *images, size_t n, const fx_gradcam_options *opts,
                           float *probabilities, float *logits)
{
    if (!model || !images || !probabilities)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_predict: %s is NULL",
                         !model ? "model" : !images ? "images" : "probabilities");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    fx_status st = fx__options_merge(&o, sizeof o, opts, "fx_model_predict: options");
    if (st == FX_OK)
        st = check_images(images, n, "fx_model_predict");
    if (st != FX_OK)
        return st;
    /* Outputs are written only on success: compute into scratch first. */
    float *probs = malloc(n * model->result_count * sizeof(float));
    float *outs = malloc(n * model->logit_count * sizeof(float));
    if (!probs || !outs)
        st = fx__error(FX_ERR_OUT_OF_MEMORY, "fx_model_predict: cannot allocate outputs for %zu images", n);
    predict_job job = {probs, outs};
    if (st == FX_OK)
        st = for_each_batch(model, images, n, &o, "fx_model_predict", predict_batch, &job);
    if (st == FX_OK) {
        memcpy(probabilities, probs, n * model->result_count * sizeof(float));
        if (logits)
            memcpy(logits, outs, n * model->logit_count * sizeof(float));
    }
    free(probs);
    free(outs);
    return st;
}

fx__shim_model *fx__model_shim(fx_model *model)
{
    return model ? model->shim : NULL;
}

fx_status fx__model_capture(fx_model *model, const fx_image *image, const char *layer, int32_t target_class,
                            fx__shim_capture *out)
{
    static const int32_t gradcam_only[1] = {FX_CAM_GRADCAM};
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.target_class = target_class;
    fx_status st = check_gradcam_request(model, image, 1, &o);
    if (st == FX_OK)
        st = check_layer(model, layer);
    if (st != FX_OK)
        return st;
    fx_result *r = result_new(model, 1, gradcam_only, 1, layer, 0);
    float *input = malloc((size_t)model->channels * model->width * model->height * sizeof(float));
    if (!r || !input) {
        fx_result_free(r);
        free(input);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx__model_capture: out of memory");
    }
    st = preprocess(model, image, NULL, input);
    score_context ctx = {model, r, 0, target_class, NULL, NULL};
    fx__shim_capture cap = {0};
    float *weights = NULL;
    if (st == FX_OK)
        st = fx__shim_forward(model->shim, input, 1, layer, FX__FORWARD_GRADIENTS, &cap);
    if (st == FX_OK && !(weights = calloc(cap.classes, sizeof(float))))
        st = fx__error(FX_ERR_OUT_OF_MEMORY, "fx__model_capture: out of memory");
    if (st == FX_OK)
        st = choose_scores(&ctx, cap.logits, 1, cap.classes, weights);
    if (st == FX_OK)
        st = fx__shim_backward(&cap, weights);
    free(weights);
    if (st == FX_OK)
        *out = cap;
    else
        fx__shim_capture_free(&cap);
    fx_result_free(r);
    free(input);
    return st;
}

/* ---- Result getters ----------------------------------------------------- */

size_t fx_result_count(const fx_result *r)
{
    return r ? r->n : 0;
}

const char *fx_result_layer(const fx_result *r)
{
    return r ? r->layer : NULL;
}

uint32_t fx_result_method_count(const fx_result *r)
{
    return r ? r->method_count : 0;
}

int32_t fx_result_method(const fx_result *r, uint32_t j)
{
    return r && j < r->method_count ? r->methods[j] : -1;
}

int32_t fx_result_predicted_class(const fx_result *r, size_t i)
{
    return r && i < r->n ? r->predicted[i] : -1;
}

float fx_result_confidence(const fx_result *r, size_t i)
{
    return r && i < r->n ? r->probabilities[i * r->result_count + (uint32_t)r->predicted[i]] : NAN;
}

int32_t fx_result_target_class(const fx_result *r, size_t i)
{
    return r && i < r->n ? r->target[i] : -1;
}

const float *fx_result_probabilities(const fx_result *r, size_t i, uint32_t *count)
{
    if (!r || i >= r->n)
        return NULL;
    if (count)
        *count = r->result_count;
    return r->probabilities + i * r->result_count;
}

const float *fx_result_logits(const fx_result *r, size_t i, uint32_t *count)
{
    if (!r || i >= r->n)
        return NULL;
    if (count)
        *count = r->logit_count;
    return r->logits + i * r->logit_count;
}

static const fx_image *map_at(const fx_result *r, const fx_image *maps, size_t i, uint32_t j)
{
    if (!r || !maps || i >= r->n || j >= r->method_count)
        return NULL;
    return &maps[i * r->method_count + j];
}

const fx_image *fx_result_heatmap(const fx_result *r, size_t i, uint32_t j)
{
    return map_at(r, r ? r->heatmaps : NULL, i, j);
}

const fx_image *fx_result_raw_heatmap(const fx_result *r, size_t i, uint32_t j)
{
    return map_at(r, r ? r->raw : NULL, i, j);
}

const fx_image *fx_result_lowres(const fx_result *r, size_t i, uint32_t j)
{
    return map_at(r, r ? r->lowres : NULL, i, j);
}

const fx_image *fx_result_saliency(const fx_result *r, size_t i, uint32_t j)
{
    const fx_image *img = map_at(r, r ? r->saliency : NULL, i, j);
    return img && img->data ? img : NULL;
}

/* ---- Preprocessing getters ------------------------------------------------ */

fx_status fx_result_seen_region(const fx_result *result, size_t i, uint32_t *x, uint32_t *y, uint32_t *width,
                                uint32_t *height)
{
    if (!result || i >= result->n)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_result_seen_region: %s", result ? "image index out of range"
                                                                                      : "result is NULL");
    const uint32_t *seen = result->seen + i * 4;
    if (x)
        *x = seen[0];
    if (y)
        *y = seen[1];
    if (width)
        *width = seen[2];
    if (height)
        *height = seen[3];
    return FX_OK;
}

fx_status fx_model_intensity(const fx_model *model, fx_intensity *rule)
{
    if (!model || !rule)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_intensity: %s is NULL", model ? "rule" : "model");
    if (rule->struct_size < sizeof rule->struct_size)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_intensity: rule->struct_size is %u; set it to "
                                                  "sizeof(fx_intensity) (%zu)", rule->struct_size, sizeof *rule);
    fx_intensity full = model->intensity;
    full.struct_size = rule->struct_size;
    memcpy(rule, &full, rule->struct_size < sizeof full ? rule->struct_size : sizeof full);
    return FX_OK;
}

int32_t fx_model_resize_mode(const fx_model *model, uint32_t *size)
{
    if (!model)
        return -1;
    if (size)
        *size = model->resize_size;
    return model->resize_mode;
}

/* ---- Output kind and warnings ---------------------------------------------- */

int32_t fx_model_output_kind(const fx_model *model)
{
    return model ? model->output_kind : FX_OUTPUT_AUTO;
}

size_t fx_model_warning_count(const fx_model *model)
{
    return model ? model->warnings.count : 0;
}

const char *fx_model_warning(const fx_model *model, size_t index, int32_t *code)
{
    const fx__warning *w = model ? warning_at(&model->warnings, index) : NULL;
    if (!w)
        return NULL;
    if (code)
        *code = w->code;
    return w->message;
}

size_t fx_result_warning_count(const fx_result *result)
{
    return result ? result->warnings.count : 0;
}

const char *fx_result_warning(const fx_result *result, size_t index, int32_t *code, int64_t *image)
{
    const fx__warning *w = result ? warning_at(&result->warnings, index) : NULL;
    if (!w)
        return NULL;
    if (code)
        *code = w->code;
    if (image)
        *image = w->image;
    return w->message;
}
