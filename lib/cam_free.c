/* Gradient-free CAMs with one forward pass per channel: channel weights from
 * the per-channel target scores, and the weighted map (cam_free.h). */
#include "cam_free.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static fx_status check_scores(const float *scores, uint32_t k, const char *method)
{
    for (uint32_t c = 0; c < k; c++)
        if (!isfinite(scores[c]))
            return fx__error(FX_ERR_NUMERIC, "%s: the target score with channel %u %s is %g; the model produced a "
                                             "non-finite value",
                             method, c, strcmp(method, "Score-CAM") == 0 ? "as mask" : "ablated", (double)scores[c]);
    return FX_OK;
}

fx_status fx__score_cam_weights(const float *scores, uint32_t k, double *weights)
{
    fx_status st = check_scores(scores, k, "Score-CAM");
    if (st != FX_OK)
        return st;
    double top = scores[0], sum = 0.0;
    for (uint32_t c = 1; c < k; c++)
        top = fmax(top, scores[c]);
    for (uint32_t c = 0; c < k; c++) {
        weights[c] = exp((double)scores[c] - top);
        sum += weights[c];
    }
    for (uint32_t c = 0; c < k; c++)
        weights[c] /= sum;
    return FX_OK;
}

fx_status fx__ablation_cam_weights(double original, const float *ablated, uint32_t k, double *weights)
{
    if (!isfinite(original) || original == 0.0)
        return fx__error(FX_ERR_NUMERIC, "Ablation-CAM: the target score of the image is %g; its weights divide by "
                                         "it ((y - y_k) / y), so the map is undefined; choose another target class or "
                                         "method",
                         original);
    fx_status st = check_scores(ablated, k, "Ablation-CAM");
    for (uint32_t c = 0; c < k && st == FX_OK; c++)
        weights[c] = (original - (double)ablated[c]) / original;
    return st;
}

fx_status fx__cam_from_weights(const float *activations, const double *weights, uint32_t k, size_t hw, float *map)
{
    double *acc = calloc(hw, sizeof *acc);
    if (!acc)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot allocate a map of %zu positions", hw);
    for (uint32_t c = 0; c < k; c++) {
        const float *a = activations + (size_t)c * hw;
        for (size_t j = 0; j < hw; j++)
            acc[j] += weights[c] * a[j];
    }
    fx_status st = FX_OK;
    for (size_t j = 0; j < hw && st == FX_OK; j++) {
        double v = acc[j] > 0.0 ? acc[j] : 0.0;
        if (!(v <= FLT_MAX))
            st = fx__error(FX_ERR_NUMERIC, "a weighted map value at flat index %zu is %g, beyond the float range", j, v);
        else
            map[j] = (float)v;
    }
    free(acc);
    return st;
}
