/* The CAM method registry: the one list of methods, their names, aliases,
 * titles, file slugs, descriptions, papers and needs. The CLI, Python and
 * the help texts enumerate it; the math lives in cam.c. Adding a method is
 * one entry here, its formula in cam.c and its tests. */
#include "fx_internal.h"

#include <stdio.h>
#include <string.h>

/* Indexed by id: entry i has id i (ids are dense and pinned, fxcam.h). */
static const fx_cam_method_info registry[] = {
    {sizeof(fx_cam_method_info), FX_CAM_GRADCAM, "gradcam", "", "Grad-CAM", "gradcam",
     "channel weights = spatial mean of the gradient; map = ReLU(sum_k w_k A_k)",
     "Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV 2017",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_GRADCAM_PLUSPLUS, "gradcam++", "gradcampp,gradcam_plusplus", "Grad-CAM++",
     "gradcampp", "channel weights = sum of ReLU(G) times closed-form alpha (higher-order terms); better for several objects",
     "Chattopadhay et al., Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep Convolutional "
     "Networks, WACV 2018",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_HIRESCAM, "hirescam", "", "HiResCAM", "hirescam",
     "map = ReLU(sum_k G_k * A_k), element-wise: provably faithful to the score for CNNs ending in one linear layer",
     "Draelos & Carin, Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural "
     "networks, arXiv:2011.08891 (2020)",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_XGRADCAM, "xgradcam", "", "XGrad-CAM", "xgradcam",
     "channel weights = sum(G A) / sum(A): the gradient averaged with the activation as weight",
     "Fu et al., Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs, BMVC 2020",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_LAYERCAM, "layercam", "", "LayerCAM", "layercam",
     "map = ReLU(sum_k ReLU(G_k) * A_k): positive gradients weight every position; works on early layers",
     "Jiang et al., LayerCAM: Exploring Hierarchical Class Activation Maps for Localization, IEEE TIP 2021",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_GRADCAM_ELEMENTWISE, "gradcam-elementwise",
     "gradcamelementwise,gradcam_elementwise", "Grad-CAM element-wise", "gradcam_elementwise",
     "map = sum_k ReLU(G_k * A_k): HiResCAM with a ReLU on each channel's product before the sum",
     "Gildenblat et al., pytorch-grad-cam (GradCAMElementWise), github.com/jacobgil/pytorch-grad-cam, 2021",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_EIGENGRADCAM, "eigengradcam", "eigen-gradcam,eigen_gradcam",
     "EigenGrad-CAM", "eigengradcam",
     "first principal component of G * A over the positions (Eigen-CAM of the gradient-weighted activations)",
     "Gildenblat et al., pytorch-grad-cam (EigenGradCAM), github.com/jacobgil/pytorch-grad-cam, 2021; after "
     "Muhammad & Yeasin 2020",
     FX_CAM_NEEDS_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_EIGENCAM, "eigencam", "eigen-cam,eigen_cam", "Eigen-CAM", "eigencam",
     "first principal component of the activations over the positions; gradient-free, class-agnostic",
     "Muhammad & Yeasin, Eigen-CAM: Class Activation Map using Principal Components, IJCNN 2020", 0},
    {sizeof(fx_cam_method_info), FX_CAM_SCORECAM, "scorecam", "score-cam,score_cam", "Score-CAM", "scorecam",
     "channel weights = softmax over channels of the target score of the input masked by each upsampled, "
     "min-max normalized channel; one forward per channel",
     "Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, CVPR "
     "Workshops 2020",
     FX_CAM_NEEDS_EXTRA_FORWARDS},
    {sizeof(fx_cam_method_info), FX_CAM_ABLATIONCAM, "ablationcam", "ablation-cam,ablation_cam", "Ablation-CAM",
     "ablationcam",
     "channel weights = (y - y_k) / y, the relative drop of the target score when channel k is ablated; one "
     "forward per channel",
     "Desai & Ramaswamy, Ablation-CAM: Visual Explanations for Deep Convolutional Network via Gradient-free "
     "Localization, WACV 2020",
     FX_CAM_NEEDS_EXTRA_FORWARDS},
    {sizeof(fx_cam_method_info), FX_CAM_SMOOTH_GRADCAM_PLUSPLUS, "smoothgradcam++",
     "smooth-gradcam++,smoothgradcampp,smooth_gradcampp", "Smooth Grad-CAM++", "smoothgradcampp",
     "Grad-CAM++ with the gradient averaged over noisy copies of the input (SmoothGrad); smooth_samples extra "
     "forward and backward passes",
     "Omeiza et al., Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique for Deep "
     "Convolutional Neural Network Models, arXiv:1908.01224 (2019)",
     FX_CAM_NEEDS_GRADIENTS | FX_CAM_NEEDS_EXTRA_FORWARDS},
    {sizeof(fx_cam_method_info), FX_CAM_GUIDED_BACKPROP, "guided-backprop", "guidedbackprop,guided_backprop",
     "Guided Backpropagation", "guided_backprop",
     "input gradient through ReLUs that pass only positive gradients at positive inputs; an RGB saliency image "
     "(fx_result_saliency), not a layer map",
     "Springenberg et al., Striving for Simplicity: The All Convolutional Net, ICLR Workshop 2015",
     FX_CAM_NEEDS_INPUT_GRADIENTS},
    {sizeof(fx_cam_method_info), FX_CAM_GUIDED_GRADCAM, "guided-gradcam", "guidedgradcam,guided_gradcam",
     "Guided Grad-CAM", "guided_gradcam",
     "guided backpropagation times the upsampled Grad-CAM map: pixel-fine and class-discriminative; an RGB "
     "saliency image (fx_result_saliency)",
     "Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV "
     "2017 (section 3)",
     FX_CAM_NEEDS_GRADIENTS | FX_CAM_NEEDS_INPUT_GRADIENTS},
};

#define REGISTRY_SIZE (sizeof registry / sizeof registry[0])

size_t fx_cam_method_count(void)
{
    return REGISTRY_SIZE;
}

const fx_cam_method_info *fx_cam_method_at(size_t index)
{
    return index < REGISTRY_SIZE ? &registry[index] : NULL;
}

const fx_cam_method_info *fx_cam_method_find(int32_t method)
{
    if (method < 0 || (size_t)method >= REGISTRY_SIZE)
        return NULL;
    return &registry[method];
}

const char *fx_cam_method_name(int32_t method)
{
    const fx_cam_method_info *m = fx_cam_method_find(method);
    return m ? m->name : NULL;
}

const char *fx_cam_method_title(int32_t method)
{
    const fx_cam_method_info *m = fx_cam_method_find(method);
    return m ? m->title : NULL;
}

const char *fx_cam_method_description(int32_t method)
{
    const fx_cam_method_info *m = fx_cam_method_find(method);
    return m ? m->description : NULL;
}

/* Whether name equals one comma-separated alias (ASCII, case-insensitive). */
static bool matches_alias(const char *name, const char *aliases)
{
    size_t len = strlen(name);
    for (const char *p = aliases; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len) {
            char alias[64];
            if (n < sizeof alias) {
                memcpy(alias, p, n);
                alias[n] = '\0';
                if (fx__ascii_equal_nocase(name, alias))
                    return true;
            }
        }
        p += n + (end ? 1 : 0);
    }
    return false;
}

const char *fx__cam_valid_names(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < REGISTRY_SIZE && used < cap; i++) {
        const fx_cam_method_info *m = &registry[i];
        int w = m->aliases[0] ? snprintf(buf + used, cap - used, "%s%s (or %s)", i ? ", " : "", m->name, m->aliases)
                              : snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", m->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *fx__cam_valid_ids(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < REGISTRY_SIZE && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%d (%s)", i ? ", " : "", (int)registry[i].id, registry[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

fx_status fx_cam_method_from_name(const char *name, int32_t *method)
{
    char valid[FX__CAM_VALID_NAMES_MAX];
    if (!name)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_method_from_name: name is NULL; valid: %s",
                         fx__cam_valid_names(valid, sizeof valid));
    if (!method)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_method_from_name: method is NULL");
    for (size_t i = 0; i < REGISTRY_SIZE; i++) {
        if (fx__ascii_equal_nocase(name, registry[i].name) || matches_alias(name, registry[i].aliases)) {
            *method = registry[i].id;
            return FX_OK;
        }
    }
    return fx__error(FX_ERR_INVALID_ARGUMENT, "unknown CAM method '%.64s'; valid: %s (see fxcam methods)", name,
                     fx__cam_valid_names(valid, sizeof valid));
}
