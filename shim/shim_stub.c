/* The engine interface when fxcam is built without libtorch (-Dtorch=disabled):
 * loading answers FX_ERR_NOT_AVAILABLE, so nothing else is ever reached. */
#include "engine_shim.h"

#include <stdlib.h>

fx_status fx__shim_load(const fx__shim_source *source, const char *device, int32_t threads, fx__shim_model **out)
{
    (void)source;
    (void)device;
    (void)threads;
    (void)out;
    return fx__error(FX_ERR_NOT_AVAILABLE,
                     "fx_model_load: this fxcam was built without libtorch (meson option -Dtorch=enabled)");
}

void fx__shim_free(fx__shim_model *model) { (void)model; }
int fx__shim_executor_optimized(void) { return 0; }
int fx__shim_thread_count(void) { return 0; }
const fx__shim_metadata *fx__shim_get_metadata(const fx__shim_model *model) { (void)model; return NULL; }
const char *fx__shim_device(const fx__shim_model *model) { (void)model; return ""; }
fx_status fx__shim_probe(fx__shim_model *model, uint32_t channels, uint32_t height, uint32_t width)
{
    (void)model;
    (void)channels;
    (void)height;
    (void)width;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}
uint32_t fx__shim_class_count(const fx__shim_model *model) { (void)model; return 0; }
size_t fx__shim_layer_count(const fx__shim_model *model) { (void)model; return 0; }
const fx__shim_layer *fx__shim_layer_at(const fx__shim_model *model, size_t index)
{
    (void)model;
    (void)index;
    return NULL;
}
const fx__shim_layer *fx__shim_layer_table(const fx__shim_model *model) { (void)model; return NULL; }
fx_status fx__shim_forward(fx__shim_model *model, const float *input, uint32_t n, const char *layer, uint32_t flags,
                           fx__shim_capture *out)
{
    (void)model;
    (void)input;
    (void)n;
    (void)layer;
    (void)flags;
    (void)out;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}
fx_status fx__shim_backward(fx__shim_capture *capture, const float *weights)
{
    (void)capture;
    (void)weights;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}
fx_status fx__shim_channel_scores(fx__shim_capture *capture, int32_t kind, uint32_t image, uint32_t first,
                                  uint32_t count, const float *weights, float *scores)
{
    (void)capture;
    (void)kind;
    (void)image;
    (void)first;
    (void)count;
    (void)weights;
    (void)scores;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}
int fx__shim_last_run_optimized(void) { return -1; }
void fx__shim_capture_free(fx__shim_capture *capture)
{
    if (!capture)
        return;
    free(capture->logits);
    free(capture->activations);
    free(capture->gradients);
}
int32_t fx__shim_output_activation(const fx__shim_model *model) { (void)model; return FX__ACTIVATION_NONE; }
fx_status fx__shim_strip_activation(fx__shim_model *model, int strip)
{
    (void)model;
    (void)strip;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}
size_t fx__shim_training_module_count(const fx__shim_model *model) { (void)model; return 0; }
const char *fx__shim_training_module(const fx__shim_model *model, size_t index)
{
    (void)model;
    (void)index;
    return NULL;
}
size_t fx__shim_training_ops_fixed(const fx__shim_model *model) { (void)model; return 0; }
