/* Guided backpropagation's shim interface when fxcam is built without
 * libtorch: never reached (loading a model already answers
 * FX_ERR_NOT_AVAILABLE), present so that lib/ links. */
#include "engine_shim.h"

fx_status fx__shim_guided_forward(fx__shim_model *model, const float *input, uint32_t n, const char *layer,
                                  fx__shim_capture *capture, fx__shim_guided **out)
{
    (void)model;
    (void)input;
    (void)n;
    (void)layer;
    (void)capture;
    (void)out;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}

fx_status fx__shim_guided_backward(fx__shim_guided *guided, const float *weights, fx__shim_capture *capture)
{
    (void)guided;
    (void)weights;
    (void)capture;
    return fx__error(FX_ERR_NOT_AVAILABLE, "built without libtorch");
}

const float *fx__shim_guided_input_gradients(const fx__shim_guided *guided)
{
    (void)guided;
    return NULL;
}

size_t fx__shim_guided_relu_count(const fx__shim_guided *guided)
{
    (void)guided;
    return 0;
}

void fx__shim_guided_free(fx__shim_guided *guided)
{
    (void)guided;
}
