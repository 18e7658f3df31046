/* Class-activation-map math: low-resolution maps from activations and
 * gradients, upsampling and min-max normalization. The formulas and their
 * papers are in docs/algorithms.md. */
#include "cam_refine.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Constants of pytorch-grad-cam (jacobgil/pytorch-grad-cam), which fxcam's
 * maps equal (docs/algorithms.md): grad_cam_plusplus.py adds 1e-6
 * ("eps = 0.000001") to the alpha denominator, xgrad_cam.py adds 1e-7 to the
 * channel's activation sum. With small gradients the Grad-CAM++ term
 * dominates alpha, so its value matters: 1e-7 gave maps 0.006 to 0.4 away. */
#define GRADCAM_PLUSPLUS_EPS 1e-6
#define XGRADCAM_EPS 1e-7


/* Jacobi sweeps for the principal component: cyclic Jacobi converges
 * quadratically, so 60 sweeps is far beyond what any real matrix needs. */
#define EIGEN_MAX_SWEEPS 60

/* ---- Low-resolution maps ------------------------------------------------ */

/* Reports the first NaN or infinity of an [n][k][h][w] tensor, so that the
 * caller can tell a broken model (NaN everywhere) from one bad channel. */
static fx_status check_finite(const float *t, const char *what, uint32_t k, uint32_t h, uint32_t w, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (isfinite(t[i]))
            continue;
        size_t x = i % w, y = (i / w) % h, c = (i / w / h) % k, s = i / w / h / k;
        return fx__error(FX_ERR_NUMERIC,
                         "fx_cam_lowres: %s[%zu][%zu][%zu][%zu] (flat index %zu) is %s; activations and gradients "
                         "must be finite",
                         what, s, c, y, x, i, isnan(t[i]) ? "NaN" : "infinite");
    }
    return FX_OK;
}

static double channel_sum(const float *v, size_t hw)
{
    double s = 0.0;
    for (size_t j = 0; j < hw; j++)
        s += v[j];
    return s;
}

/* Grad-CAM: the spatial mean of the gradient. */
static double weight_gradcam(const float *a, const float *g, size_t hw)
{
    (void)a;
    return channel_sum(g, hw) / (double)hw;
}

/* Grad-CAM++ with the closed-form alpha of Chattopadhay et al. (eq. 19) for an
 * exponential score, as pytorch-grad-cam's grad_cam_plusplus.py computes it:
 * alpha = G^2 / (2 G^2 + sum(A) G^3 + 1e-6), set to 0 where G == 0, and
 * weight = sum over positions of ReLU(G) * alpha. */
static double weight_gradcam_plusplus(const float *a, const float *g, size_t hw)
{
    double s = channel_sum(a, hw);
    double weight = 0.0;
    for (size_t j = 0; j < hw; j++) {
        double gj = g[j];
        if (gj <= 0.0) /* ReLU(G) is 0 there, and G == 0 has alpha = 0 by definition */
            continue;
        double g2 = gj * gj;
        double alpha = g2 / (2.0 * g2 + s * g2 * gj + GRADCAM_PLUSPLUS_EPS);
        weight += gj * alpha;
    }
    return weight;
}

/* XGrad-CAM: the gradient averaged with the activation as weight,
 * sum(G * A) / (sum(A) + 1e-7) as in pytorch-grad-cam's xgrad_cam.py. */
static double weight_xgradcam(const float *a, const float *g, size_t hw)
{
    double s = channel_sum(a, hw);
    double weight = 0.0;
    for (size_t j = 0; j < hw; j++)
        weight += (double)g[j] * a[j];
    return weight / (s + XGRADCAM_EPS);
}

typedef double (*channel_weight_fn)(const float *a, const float *g, size_t hw);

/* One channel's term of the map at one position: methods with one weight
 * per channel scale A_k; HiResCAM, LayerCAM and Grad-CAM element-wise weight
 * every position. The plain map sums the terms over the channels;
 * eigen_smooth projects them on their first principal component. */
static inline double channel_term(int32_t method, float a, float g, double weight)
{
    switch (method) {
    case FX_CAM_HIRESCAM: return (double)g * a;
    case FX_CAM_LAYERCAM: return (g > 0.0f ? (double)g : 0.0) * a;
    case FX_CAM_GRADCAM_ELEMENTWISE: { /* pytorch-grad-cam's GradCAMElementWise: ReLU before the channel sum */
        double ga = (double)g * a;
        return ga > 0.0 ? ga : 0.0;
    }
    default: return weight * a;
    }
}

static channel_weight_fn weight_function(int32_t method)
{
    switch (method) {
    case FX_CAM_GRADCAM: return weight_gradcam;
    case FX_CAM_GRADCAM_PLUSPLUS: return weight_gradcam_plusplus;
    case FX_CAM_XGRADCAM: return weight_xgradcam;
    default: return NULL;
    }
}

/* ---- Eigen-CAM and EigenGrad-CAM ------------------------------------------ */

/* Cyclic Jacobi on the symmetric m x m matrix a (row-major, destroyed):
 * writes the unit eigenvector of its largest eigenvalue to vec and returns
 * that eigenvalue. v is m*m scratch. Exact enough for float maps (the
 * rotations are orthogonal; off-diagonal mass falls quadratically). */
static double top_eigenvector(double *a, double *v, size_t m, double *vec)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++)
            v[i * m + j] = i == j ? 1.0 : 0.0;
    double total = 0.0;
    for (size_t i = 0; i < m * m; i++)
        total += a[i] * a[i];
    for (int sweep = 0; sweep < EIGEN_MAX_SWEEPS; sweep++) {
        double off = 0.0;
        for (size_t p = 0; p < m; p++)
            for (size_t q = p + 1; q < m; q++)
                off += a[p * m + q] * a[p * m + q];
        if (off <= 1e-30 * total || off == 0.0)
            break;
        for (size_t p = 0; p < m; p++) {
            for (size_t q = p + 1; q < m; q++) {
                double apq = a[p * m + q];
                if (apq == 0.0)
                    continue;
                double theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                double t = fabs(theta) > 1e150 ? 0.5 / theta
                                               : (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t r = 0; r < m; r++) { /* A J */
                    double x = a[r * m + p], y = a[r * m + q];
                    a[r * m + p] = c * x - s * y;
                    a[r * m + q] = s * x + c * y;
                }
                for (size_t r = 0; r < m; r++) { /* J^T (A J) */
                    double x = a[p * m + r], y = a[q * m + r];
                    a[p * m + r] = c * x - s * y;
                    a[q * m + r] = s * x + c * y;
                }
                for (size_t r = 0; r < m; r++) { /* V J: the eigenvectors are V's columns */
                    double x = v[r * m + p], y = v[r * m + q];
                    v[r * m + p] = c * x - s * y;
                    v[r * m + q] = s * x + c * y;
                }
            }
        }
    }
    size_t best = 0;
    for (size_t i = 1; i < m; i++)
        if (a[i * m + i] > a[best * m + best])
            best = i;
    for (size_t i = 0; i < m; i++)
        vec[i] = v[i * m + best];
    return a[best * m + best];
}

/* Projection of the rows of X (hw positions x k channels, stored channel-major
 * as x[c * hw + j], columns already centred) on the first right singular
 * vector v: p = X v, as pytorch-grad-cam's get_2d_projection computes it.
 * Solved on the smaller Gram matrix: X^T X (k x k) gives v directly; X X^T
 * (hw x hw) gives u with X v = sigma u, sigma = sqrt(lambda). */
static fx_status principal_projection(const double *x, uint32_t k, size_t hw, double *p)
{
    size_t m = k < hw ? k : hw;
    double *gram = malloc(m * m * sizeof *gram), *v = malloc(m * m * sizeof *v), *vec = malloc(m * sizeof *vec);
    if (!gram || !v || !vec) {
        free(gram);
        free(v);
        free(vec);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_cam_lowres: cannot allocate a %zu x %zu matrix for the principal "
                                               "component", m, m);
    }
    if (m == k) {
        for (size_t a = 0; a < k; a++)
            for (size_t b = a; b < k; b++) {
                double d = 0.0;
                for (size_t j = 0; j < hw; j++)
                    d += x[a * hw + j] * x[b * hw + j];
                gram[a * m + b] = gram[b * m + a] = d;
            }
        top_eigenvector(gram, v, m, vec);
        for (size_t j = 0; j < hw; j++) {
            double d = 0.0;
            for (size_t c = 0; c < k; c++)
                d += x[c * hw + j] * vec[c];
            p[j] = d;
        }
    } else {
        memset(gram, 0, m * m * sizeof *gram);
        for (size_t c = 0; c < k; c++) {
            const double *row = x + c * hw;
            for (size_t i = 0; i < hw; i++)
                for (size_t j = i; j < hw; j++)
                    gram[i * m + j] += row[i] * row[j];
        }
        for (size_t i = 0; i < hw; i++)
            for (size_t j = 0; j < i; j++)
                gram[i * m + j] = gram[j * m + i];
        double lambda = top_eigenvector(gram, v, m, vec);
        double sigma = lambda > 0.0 ? sqrt(lambda) : 0.0;
        for (size_t j = 0; j < hw; j++)
            p[j] = sigma * vec[j];
    }
    free(gram);
    free(v);
    free(vec);
    return FX_OK;
}

/* The sign of a singular vector is arbitrary (LAPACK's choice decides it in
 * pytorch-grad-cam). fxcam pins it: the projection p is oriented so that it
 * agrees with the channel sum r of the uncentred matrix, dot(p, r) > 0, i.e.
 * the map is high where the activations (Eigen-CAM) or the evidence G*A
 * (EigenGrad-CAM) are high. When dot(p, r) is 0 within rounding, the largest
 * |p| (first such position) is made positive, as scikit-learn's svd_flip. */
static void orient_projection(double *p, const double *r, size_t hw)
{
    double dot = 0.0, pp = 0.0, rr = 0.0;
    for (size_t j = 0; j < hw; j++) {
        dot += p[j] * r[j];
        pp += p[j] * p[j];
        rr += r[j] * r[j];
    }
    int flip;
    if (fabs(dot) > 1e-9 * sqrt(pp * rr)) {
        flip = dot < 0.0;
    } else {
        size_t big = 0;
        for (size_t j = 1; j < hw; j++)
            if (fabs(p[j]) > fabs(p[big]))
                big = j;
        flip = p[big] < 0.0;
    }
    if (flip)
        for (size_t j = 0; j < hw; j++)
            p[j] = -p[j];
}

/* The first principal component of a k x hw matrix x (channel-major,
 * x[c * hw + j], destroyed), as pytorch-grad-cam's get_2d_projection: each
 * channel centred over the positions, projected on the first right singular
 * vector, then oriented (orient_projection) against the channel sum of the
 * uncentred x. acc receives the hw projection (before ReLU). */
static fx_status project_channels(double *x, uint32_t k, size_t hw, double *acc)
{
    double *r = acc; /* the channel sum r is kept in acc until the projection overwrites it */
    memset(r, 0, hw * sizeof *r);
    for (size_t c = 0; c < k; c++) {
        double *row = x + c * hw, mean = 0.0;
        for (size_t j = 0; j < hw; j++) {
            r[j] += row[j];
            mean += row[j];
        }
        mean /= (double)hw;
        for (size_t j = 0; j < hw; j++)
            row[j] -= mean;
    }
    double *p = malloc(hw * sizeof *p);
    fx_status st = p ? principal_projection(x, k, hw, p)
                     : fx__error(FX_ERR_OUT_OF_MEMORY, "fx_cam_lowres: cannot allocate a map of %zu doubles", hw);
    if (st == FX_OK) {
        orient_projection(p, r, hw);
        memcpy(acc, p, hw * sizeof *acc);
    }
    free(p);
    return st;
}

static bool is_eigen_method(int32_t method)
{
    return method == FX_CAM_EIGENCAM || method == FX_CAM_EIGENGRADCAM;
}

/* The k x hw matrix whose channel sum is the method's map: Eigen-CAM's A,
 * EigenGrad-CAM's G * A, else each channel's terms (channel_term). NULL
 * (with the error set) when out of memory or a channel weight is not finite. */
static double *channel_terms(int32_t method, const float *A, const float *G, uint32_t sample, uint32_t k, size_t hw,
                             fx_status *st)
{
    double *x = malloc((size_t)k * hw * sizeof *x);
    if (!x) {
        *st = fx__error(FX_ERR_OUT_OF_MEMORY, "fx_cam_lowres: cannot allocate %u x %zu doubles for %s", k, hw,
                        fx_cam_method_name(method));
        return NULL;
    }
    channel_weight_fn weight_of = weight_function(method);
    for (uint32_t c = 0; c < k; c++) {
        const float *a = A + (size_t)c * hw;
        const float *g = G ? G + (size_t)c * hw : NULL;
        double *row = x + (size_t)c * hw;
        if (method == FX_CAM_EIGENCAM) {
            for (size_t j = 0; j < hw; j++)
                row[j] = a[j];
            continue;
        }
        if (method == FX_CAM_EIGENGRADCAM) {
            for (size_t j = 0; j < hw; j++)
                row[j] = (double)g[j] * a[j];
            continue;
        }
        double weight = weight_of ? weight_of(a, g, hw) : 0.0;
        if (!isfinite(weight)) {
            free(x);
            *st = fx__error(FX_ERR_NUMERIC,
                            "fx_cam_lowres: %s weight of sample %u, channel %u is not finite (a denominator "
                            "is ~0: the activations of that channel sum to about minus the eps term)",
                            fx_cam_method_name(method), sample, c);
            return NULL;
        }
        for (size_t j = 0; j < hw; j++)
            row[j] = channel_term(method, a[j], g[j], weight);
    }
    *st = FX_OK;
    return x;
}

/* ReLU, and the float range: the map's last step for every method. */
static fx_status finish_map(const double *acc, size_t hw, int32_t method, uint32_t sample, float *map)
{
    for (size_t j = 0; j < hw; j++) {
        double v = acc[j] > 0.0 ? acc[j] : 0.0;
        if (!(v <= FLT_MAX))
            return fx__error(FX_ERR_NUMERIC,
                             "fx_cam_lowres: %s map of sample %u at flat index %zu is %g, beyond the float range",
                             fx_cam_method_name(method), sample, j, v);
        map[j] = (float)v;
    }
    return FX_OK;
}

/* One sample: A and G point at its [k][h][w] block, map receives h*w floats.
 * The channel terms are summed, or (Eigen-CAM, EigenGrad-CAM, eigen_smooth)
 * projected on their first principal component. Fails, writing nothing
 * useful, when a weight or a map value is not a finite float (a Grad-CAM++
 * or XGradCAM denominator that cancels to ~0, or a sum beyond FLT_MAX). */
static fx_status cam_sample(int32_t method, const float *A, const float *G, uint32_t sample, uint32_t k, size_t hw,
                            int eigen_smooth, double *acc, float *map)
{
    fx_status st;
    double *x = channel_terms(method, A, G, sample, k, hw, &st);
    if (!x)
        return st;
    if (is_eigen_method(method) || eigen_smooth) {
        st = project_channels(x, k, hw, acc);
    } else {
        memset(acc, 0, hw * sizeof *acc);
        for (uint32_t c = 0; c < k; c++)
            for (size_t j = 0; j < hw; j++)
                acc[j] += x[(size_t)c * hw + j];
    }
    free(x);
    return st == FX_OK ? finish_map(acc, hw, method, sample, map) : st;
}

fx_status fx__cam_eigen_from_weights(const float *activations, const double *weights, uint32_t k, size_t hw,
                                     float *map)
{
    double *x = malloc((size_t)k * hw * sizeof *x), *acc = malloc(hw * sizeof *acc);
    fx_status st = x && acc ? FX_OK
                            : fx__error(FX_ERR_OUT_OF_MEMORY, "eigen_smooth: cannot allocate %u x %zu doubles", k, hw);
    for (uint32_t c = 0; c < k && st == FX_OK; c++)
        for (size_t j = 0; j < hw; j++)
            x[(size_t)c * hw + j] = weights[c] * activations[(size_t)c * hw + j];
    if (st == FX_OK)
        st = project_channels(x, k, hw, acc);
    if (st == FX_OK)
        st = finish_map(acc, hw, FX_CAM_GRADCAM, 0, map);
    free(x);
    free(acc);
    return st;
}

/* n*k*h*w elements of 4 bytes must be addressable; h*w maps of doubles too. */
static fx_status check_tensor_size(uint32_t n, uint32_t k, uint32_t h, uint32_t w, size_t *count)
{
    size_t limit = SIZE_MAX / sizeof(double);
    size_t c = n;
    if (c > limit / k || (c *= k) > limit / h || (c *= h) > limit / w)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_cam_lowres: tensor of %u x %u x %u x %u elements overflows the address space", n, k,
                         h, w);
    *count = c * w;
    return FX_OK;
}

fx_status fx_cam_lowres(int32_t method, const float *activations, const float *gradients, uint32_t n, uint32_t k,
                        uint32_t h, uint32_t w, float *out_maps)
{
    return fx__cam_lowres_smooth(method, activations, gradients, n, k, h, w, 0, out_maps);
}

fx_status fx__cam_lowres_smooth(int32_t method, const float *activations, const float *gradients, uint32_t n,
                                uint32_t k, uint32_t h, uint32_t w, int eigen_smooth, float *out_maps)
{
    const fx_cam_method_info *info = fx_cam_method_find(method);
    char valid[FX__CAM_VALID_NAMES_MAX];
    if (!info)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_lowres: unknown method %d; valid: %s", (int)method,
                         fx__cam_valid_ids(valid, sizeof valid));
    if (info->needs & FX_CAM_NEEDS_EXTRA_FORWARDS)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_cam_lowres: %s needs forward passes of the model (one per channel, or per "
                         "noisy copy), not only activations and gradients; compute it with fx_gradcam_compute",
                         info->title);
    if (info->needs & FX_CAM_NEEDS_INPUT_GRADIENTS)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_cam_lowres: %s gives an input-space saliency from the input gradient, not a layer map; "
                         "compute it with fx_gradcam_compute and read fx_result_saliency",
                         info->title);
    bool needs_gradients = (info->needs & FX_CAM_NEEDS_GRADIENTS) != 0;
    if (!activations || (!gradients && needs_gradients) || !out_maps)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_lowres: %s is NULL%s",
                         !activations ? "activations" : !out_maps ? "out_maps" : "gradients",
                         !activations || !out_maps ? "" : " (the method needs them; only gradient-free methods take NULL)");
    if (n == 0 || k == 0 || h == 0 || w == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_cam_lowres: shape n=%u k=%u h=%u w=%u has a zero dimension; all must be >= 1", n, k, h,
                         w);
    size_t count = 0;
    fx_status st = check_tensor_size(n, k, h, w, &count);
    if (st != FX_OK)
        return st;
    st = check_finite(activations, "activations", k, h, w, count);
    if (st == FX_OK && needs_gradients)
        st = check_finite(gradients, "gradients", k, h, w, count);
    if (st != FX_OK)
        return st;

    /* Maps are staged so that out_maps stays untouched if a later sample
     * fails; they are small (n * h * w floats). */
    size_t hw = (size_t)h * w;
    double *acc = malloc(hw * sizeof *acc);
    float *maps = malloc((size_t)n * hw * sizeof *maps);
    if (!acc || !maps) {
        free(acc);
        free(maps);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_cam_lowres: cannot allocate %zu bytes of scratch for %u maps of %ux%u",
                         hw * sizeof *acc + (size_t)n * hw * sizeof *maps, n, w, h);
    }
    size_t block = (size_t)k * hw;
    for (uint32_t s = 0; s < n && st == FX_OK; s++)
        st = cam_sample(method, activations + s * block, needs_gradients ? gradients + s * block : NULL, s, k, hw,
                        eigen_smooth, acc, maps + s * hw);
    if (st == FX_OK)
        memcpy(out_maps, maps, (size_t)n * hw * sizeof *maps);
    free(acc);
    free(maps);
    return st;
}

/* ---- Upsampling and normalization --------------------------------------- */

/* Min and max of a validated 1-channel F32 map; fails on NaN or infinity,
 * which would turn the whole normalized map into NaN. */
static fx_status map_range(const fx_image *map, const char *fn, float *lo, float *hi)
{
    float mn = INFINITY, mx = -INFINITY;
    for (uint32_t y = 0; y < map->height; y++) {
        const float *row = (const float *)fx__row(map, y);
        for (uint32_t x = 0; x < map->width; x++) {
            float v = row[x];
            if (!isfinite(v))
                return fx__error(FX_ERR_NUMERIC, "%s: map value at (x=%u, y=%u) is %s; maps must be finite", fn, x,
                                 y, isnan(v) ? "NaN" : "infinite");
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
    *lo = mn;
    *hi = mx;
    return FX_OK;
}

/* True when a map with this range is constant up to float rounding (the
 * relative guard of fx_internal.h); an all-zero map (0 <= 0) included. */
static bool range_is_flat(double lo, double hi)
{
    double magnitude = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    return fx__spread_is_negligible(hi - lo, magnitude);
}

/* y = (x - lo) / (hi - lo) in double, rounded once to float, clamped to
 * [0, 1]; x == hi gives exactly 1 and x == lo exactly 0. flat: every value
 * becomes 0 (no speckle from the rounding of a constant map). */
static void map_rescale(fx_image *map, double lo, double hi, bool flat)
{
    double scale = flat ? 0.0 : 1.0 / (hi - lo);
    for (uint32_t y = 0; y < map->height; y++) {
        float *row = (float *)fx__row(map, y);
        for (uint32_t x = 0; x < map->width; x++) {
            double v = flat ? 0.0 : ((double)row[x] - lo) * scale;
            row[x] = (float)(v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v);
        }
    }
}

fx_status fx_map_normalize(fx_image *map)
{
    fx_status st = fx__image_expect(map, "fx_map_normalize: map", 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    float lo, hi;
    st = map_range(map, "fx_map_normalize", &lo, &hi);
    if (st != FX_OK)
        return st;
    map_rescale(map, lo, hi, range_is_flat(lo, hi));
    return FX_OK;
}

fx_status fx_cam_upsample(const float *lowres, uint32_t h, uint32_t w, int32_t normalize, fx_image *out)
{
    if (!lowres)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_upsample: lowres is NULL");
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_upsample: out is NULL");
    if (h == 0 || w == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_upsample: low-resolution map %ux%u (w x h) is empty; "
                                                  "width and height must be >= 1", w, h);
    if (out->width == 0 || out->height == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_upsample: out size %ux%u is empty; set out->width and "
                                                  "out->height to the heatmap size", out->width, out->height);
    if ((size_t)w > SIZE_MAX / sizeof(float) / h)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_cam_upsample: map of %ux%u overflows the address space", w, h);
    /* A view of the caller's floats; resize only reads it. */
    fx_image src = {.data = (void *)(uintptr_t)lowres, .stride = (size_t)w * sizeof(float), .width = w,
                    .height = h, .channels = 1, .pixel_type = FX_PIXEL_F32};
    float lo, hi;
    fx_status st = map_range(&src, "fx_cam_upsample", &lo, &hi);
    if (st != FX_OK)
        return st;
    st = fx_resize_bilinear(&src, out);
    if (st != FX_OK || !normalize)
        return st;
    /* Flatness is decided on the low-resolution map, whose values are the
     * layer's: the bilinear output lies inside its range, and a constant map
     * must give 0, not the rounding noise of the resize stretched to [0, 1].
     * A map that is not flat is scaled by the upsampled map's own range, as
     * pytorch-grad-cam does (min-max after cv2.resize): its peak is exactly 1
     * even where no output pixel lands on the low-resolution peak. */
    bool flat = range_is_flat(lo, hi);
    float up_lo = lo, up_hi = hi;
    if (!flat) {
        map_range(out, "fx_cam_upsample", &up_lo, &up_hi); /* finite: bilinear weights are convex */
        flat = range_is_flat(up_lo, up_hi); /* e.g. a map shrunk to one pixel */
    }
    map_rescale(out, up_lo, up_hi, flat);
    return FX_OK;
}

/* ---- Refinements: several layers, test-time augmentation ------------------ */

/* pytorch-grad-cam's augmentations (base_cam.py forward_augmentation_
 * smoothing: ttach's Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])]),
 * six products). fxcam runs the identity first so that the targets are
 * decided on the input as given; the mean does not depend on the order. */
static const struct {
    int flip;
    float factor;
} augmentations[FX__AUG_COUNT] = {{0, 1.0f}, {0, 1.1f}, {0, 0.9f}, {1, 1.0f}, {1, 1.1f}, {1, 0.9f}};

void fx__augmentation(uint32_t index, int *flip, float *factor)
{
    *flip = augmentations[index % FX__AUG_COUNT].flip;
    *factor = augmentations[index % FX__AUG_COUNT].factor;
}

void fx__flip_horizontal(float *planes, uint32_t count, uint32_t h, uint32_t w)
{
    for (size_t row = 0; row < (size_t)count * h; row++) {
        float *p = planes + row * w;
        for (uint32_t x = 0; x < w / 2; x++) {
            float t = p[x];
            p[x] = p[w - 1 - x];
            p[w - 1 - x] = t;
        }
    }
}

void fx__map_scale(float *map, size_t count)
{
    float lo = map[0], hi = map[0];
    for (size_t j = 1; j < count; j++) {
        lo = fminf(lo, map[j]);
        hi = fmaxf(hi, map[j]);
    }
    /* In float, as numpy does on pytorch-grad-cam's float32 maps. */
    float scale = 1e-7f + (hi - lo);
    for (size_t j = 0; j < count; j++)
        map[j] = (map[j] - lo) / scale;
}

fx_status fx__map_scale_resize(const float *map, uint32_t h, uint32_t w, uint32_t out_h, uint32_t out_w, float *out)
{
    size_t hw = (size_t)h * w;
    float *scaled = malloc(hw * sizeof *scaled);
    if (!scaled)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot allocate a %ux%u map", w, h);
    memcpy(scaled, map, hw * sizeof *scaled);
    fx__map_scale(scaled, hw);
    fx_image src = {.data = scaled, .stride = (size_t)w * sizeof(float), .width = w, .height = h, .channels = 1,
                    .pixel_type = FX_PIXEL_F32};
    fx_image dst = {.data = out, .stride = (size_t)out_w * sizeof(float), .width = out_w, .height = out_h,
                    .channels = 1, .pixel_type = FX_PIXEL_F32};
    fx_status st = fx_resize_bilinear(&src, &dst);
    free(scaled);
    return st;
}
