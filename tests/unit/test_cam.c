/* CAM math: every formula against numbers computed by hand (the arithmetic is
 * written out next to each expected value), batching, upsampling,
 * normalization and argument checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fx_internal.h"
#include "cam_free.h"

/* Absolute tolerance for results of order 1 whose only inexactness is float
 * rounding (eps terms are worked into the expected values). */
#define TOL 1e-6f

/* The shared example: n=1, k=2, h=2, w=2, positions in row-major order
 * p0=(0,0) p1=(1,0) p2=(0,1) p3=(1,1).
 *   A0 = [1, 2, 3, 4]      S0 = 1+2+3+4 = 10
 *   A1 = [4, 0, 1, 1]      S1 = 4+0+1+1 = 6
 *   G0 = [1, -1, 2, 0]
 *   G1 = [-1, -1, -1, 1]                                                   */
static const float EX_A[8] = {1, 2, 3, 4, 4, 0, 1, 1};
static const float EX_G[8] = {1, -1, 2, 0, -1, -1, -1, 1};

static void lowres_example(int32_t method, float out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = -7.0f; /* sentinel: every value must be written */
    assert_int_equal(fx_cam_lowres(method, EX_A, EX_G, 1, 2, 2, 2, out), FX_OK);
}

static void assert_map(const float *got, const float *want, int count, float tol)
{
    for (int i = 0; i < count; i++) {
        if (fabsf(got[i] - want[i]) > tol)
            fail_msg("value %d: got %.9g, want %.9g (tolerance %g)", i, got[i], want[i], tol);
    }
}

static void test_gradcam_by_hand(void **state)
{
    (void)state;
    /* w0 = mean(G0) = (1 - 1 + 2 + 0) / 4 = 0.5
     * w1 = mean(G1) = (-1 - 1 - 1 + 1) / 4 = -0.5
     * sum = 0.5*A0 - 0.5*A1:
     *   p0: 0.5 - 2   = -1.5 -> ReLU 0
     *   p1: 1   - 0   =  1
     *   p2: 1.5 - 0.5 =  1
     *   p3: 2   - 0.5 =  1.5                                           */
    float got[4];
    lowres_example(FX_CAM_GRADCAM, got);
    const float want[4] = {0.0f, 1.0f, 1.0f, 1.5f};
    assert_map(got, want, 4, TOL);
}

static void test_gradcam_plusplus_by_hand(void **state)
{
    (void)state;
    /* alpha = G^2 / (2 G^2 + S G^3 + 1e-6), weight = sum ReLU(G) * alpha
     * (the 1e-6 is below 1e-7 of these denominators: left out here).
     * Channel 0 (S0 = 10):
     *   p0 G=1:  1 / (2 + 10)      = 1/12; ReLU(G)*alpha = 1/12
     *   p1 G=-1: ReLU(G) = 0
     *   p2 G=2:  4 / (8 + 10*8)    = 4/88 = 1/22; times 2 = 1/11
     *   p3 G=0:  alpha = 0
     *   w0 = 1/12 + 1/11 = 23/132
     * Channel 1 (S1 = 6): only p3 has G > 0:
     *   p3 G=1:  1 / (2 + 6) = 1/8; w1 = 1/8
     * map = 23/132 * A0 + 1/8 * A1:
     *   p0: 23/132 + 4/8  = 0.174242 + 0.5   = 0.674242
     *   p1: 46/132 + 0    = 0.348485
     *   p2: 69/132 + 1/8  = 0.522727 + 0.125 = 0.647727
     *   p3: 92/132 + 1/8  = 0.696970 + 0.125 = 0.821970                */
    float got[4];
    lowres_example(FX_CAM_GRADCAM_PLUSPLUS, got);
    const float want[4] = {0.674242f, 0.348485f, 0.647727f, 0.821970f};
    assert_map(got, want, 4, 2e-6f);
}

static void test_gradcam_plusplus_zero_gradient_and_relu(void **state)
{
    (void)state;
    /* k=2, h=1, w=3.
     * Channel 0: A = [2, -5, 1] (S = -2), G = [0, 0.5, 0.25]
     *   p0 G=0:    alpha = 0
     *   p1 G=0.5:  0.25 / (0.5 + (-2)(0.125) + 1e-6)         = 0.25 / 0.250001
     *              = 0.999996000016;                      times 0.5  = 0.499998000008
     *   p2 G=0.25: 0.0625 / (0.125 + (-2)(0.015625) + 1e-6)  = 0.0625 / 0.093751
     *              = 0.666659555631;                      times 0.25 = 0.166664888908
     *   w0 = 0.666662888916
     * Channel 1: A = [100, 100, 100], G = 0 everywhere: alpha = 0, w1 = 0
     *   (a formula without the G == 0 rule would still be 0/eps = 0 here,
     *   but must not turn into NaN).
     * map = w0 * [2, -5, 1] = [1.333325778, -3.33, 0.666662889] -> ReLU
     * (with pytorch-grad-cam's former 1e-7 it would be 1.333332593: the
     * tolerance below tells the two apart) */
    const float A[6] = {2, -5, 1, 100, 100, 100};
    const float G[6] = {0, 0.5f, 0.25f, 0, 0, 0};
    float got[3];
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM_PLUSPLUS, A, G, 1, 2, 1, 3, got), FX_OK);
    const float want[3] = {1.333325778f, 0.0f, 0.666662889f};
    assert_map(got, want, 3, 5e-7f);
}

/* Relative comparison for maps of any scale. */
static void assert_map_relative(const float *got, const double *want, int count, double rel)
{
    for (int i = 0; i < count; i++) {
        if (fabs(got[i] - want[i]) > rel * fabs(want[i]))
            fail_msg("value %d: got %.9g, want %.9g (relative tolerance %g)", i, got[i], want[i], rel);
    }
}

static void test_gradcam_plusplus_tiny_gradients(void **state)
{
    (void)state;
    /* Small gradients, where pytorch-grad-cam's eps = 1e-6 is of the order of
     * 2 G^2 and decides alpha. k=1, h=1, w=2: A = [1, 3] (S = 4),
     * G = [1e-3, 2e-3].
     *   p0: G^2 = 1e-6, G^3 = 1e-9:  alpha = 1e-6 / (2e-6 + 4e-9 + 1e-6)
     *       = 1e-6 / 3.004e-6 = 0.332889481; times G = 3.32889481e-4
     *   p1: G^2 = 4e-6, G^3 = 8e-9:  alpha = 4e-6 / (8e-6 + 32e-9 + 1e-6)
     *       = 4e-6 / 9.032e-6 = 0.442869796; times G = 8.85739593e-4
     *   w = 1.218629074e-3; map = w * [1, 3] = [1.218629074e-3, 3.655887222e-3]
     * (eps 1e-7 would give w = 1.459053e-3, 20 % more). */
    const float A[2] = {1, 3}, G[2] = {1e-3f, 2e-3f};
    float got[2];
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM_PLUSPLUS, A, G, 1, 1, 1, 2, got), FX_OK);
    const double want[2] = {1.218629074e-3, 3.655887222e-3};
    assert_map_relative(got, want, 2, 1e-6); /* the float inputs are within 3e-8 of 1e-3, 2e-3 */
}

static void test_xgradcam_tiny_activations(void **state)
{
    (void)state;
    /* XGradCAM's eps = 1e-7 (pytorch-grad-cam's xgrad_cam.py) matters when
     * the activations are small. k=1, h=1, w=2: A = [1e-7, 3e-7] (S = 4e-7),
     * G = [1, 1]:  w = (1e-7 + 3e-7) / (4e-7 + 1e-7) = 0.8;
     * map = 0.8 * A = [8e-8, 2.4e-7]. */
    const float A[2] = {1e-7f, 3e-7f}, G[2] = {1, 1};
    float got[2];
    assert_int_equal(fx_cam_lowres(FX_CAM_XGRADCAM, A, G, 1, 1, 1, 2, got), FX_OK);
    const double want[2] = {8e-8, 2.4e-7};
    assert_map_relative(got, want, 2, 1e-6);
}

static void test_gradcam_tiny_gradients_keep_scale(void **state)
{
    (void)state;
    /* Grad-CAM and HiResCAM have no eps: tiny gradients give a tiny map of
     * the same shape. k=1, h=1, w=3: A = [1, 2, 4], G = [1e-9, 2e-9, 3e-9]:
     *   Grad-CAM: w = mean(G) = 2e-9; map = [2e-9, 4e-9, 8e-9]
     *   HiResCAM: G * A = [1e-9, 4e-9, 1.2e-8]                            */
    const float A[3] = {1, 2, 4}, G[3] = {1e-9f, 2e-9f, 3e-9f};
    float got[3];
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, A, G, 1, 1, 1, 3, got), FX_OK);
    const double want_gradcam[3] = {2e-9, 4e-9, 8e-9};
    assert_map_relative(got, want_gradcam, 3, 1e-6);
    assert_int_equal(fx_cam_lowres(FX_CAM_HIRESCAM, A, G, 1, 1, 1, 3, got), FX_OK);
    const double want_hirescam[3] = {1e-9, 4e-9, 1.2e-8};
    assert_map_relative(got, want_hirescam, 3, 1e-6);
}

static void test_hirescam_by_hand(void **state)
{
    (void)state;
    /* sum_k G_k * A_k per position:
     *   p0: 1*1   + (-1)*4 = -3 -> 0
     *   p1: -1*2  + (-1)*0 = -2 -> 0
     *   p2: 2*3   + (-1)*1 =  5
     *   p3: 0*4   +   1*1  =  1                                          */
    float got[4];
    lowres_example(FX_CAM_HIRESCAM, got);
    const float want[4] = {0.0f, 0.0f, 5.0f, 1.0f};
    assert_map(got, want, 4, TOL);
}

static void test_xgradcam_by_hand(void **state)
{
    (void)state;
    /* w_k = sum(G_k * A_k) / (S_k + 1e-7):
     *   w0 = (1*1 - 1*2 + 2*3 + 0*4) / 10 = 5/10 = 0.5
     *   w1 = (-1*4 - 1*0 - 1*1 + 1*1) / 6 = -4/6 = -2/3
     * map = 0.5*A0 - 2/3*A1:
     *   p0: 0.5 - 8/3 = -2.166667 -> 0
     *   p1: 1   - 0   =  1
     *   p2: 1.5 - 2/3 =  0.833333
     *   p3: 2   - 2/3 =  1.333333                                        */
    float got[4];
    lowres_example(FX_CAM_XGRADCAM, got);
    const float want[4] = {0.0f, 1.0f, 0.833333f, 1.333333f};
    assert_map(got, want, 4, 2e-6f);
}

static void test_layercam_by_hand(void **state)
{
    (void)state;
    /* ReLU(G0) = [1, 0, 2, 0], ReLU(G1) = [0, 0, 0, 1]
     *   p0: 1*1 + 0*4 = 1
     *   p1: 0*2 + 0*0 = 0
     *   p2: 2*3 + 0*1 = 6
     *   p3: 0*4 + 1*1 = 1                                                */
    float got[4];
    lowres_example(FX_CAM_LAYERCAM, got);
    const float want[4] = {1.0f, 0.0f, 6.0f, 1.0f};
    assert_map(got, want, 4, TOL);
}

static void test_gradcam_elementwise_by_hand(void **state)
{
    (void)state;
    /* sum_k ReLU(G_k * A_k) per position:
     *   p0: ReLU(1*1)  + ReLU(-1*4) = 1 + 0 = 1   (HiResCAM: -3 -> 0)
     *   p1: ReLU(-1*2) + ReLU(-1*0) = 0
     *   p2: ReLU(2*3)  + ReLU(-1*1) = 6           (HiResCAM: 5)
     *   p3: ReLU(0*4)  + ReLU(1*1)  = 1                                   */
    float got[4];
    lowres_example(FX_CAM_GRADCAM_ELEMENTWISE, got);
    const float want[4] = {1.0f, 0.0f, 6.0f, 1.0f};
    assert_map(got, want, 4, TOL);
}

/* Eigen-CAM, k=2 channels < hw=3 positions: the channels' k x k Gram path.
 * A: channel 0 = [1, 2, 3], channel 1 = [2, 4, 6] (h=1, w=3). Centred per
 * channel: [-1, 0, 1] and [-2, 0, 2]; X (positions x channels) has rank 1,
 * v = (1, 2)/sqrt(5), p = X v = [-sqrt5, 0, sqrt5]. The channel sum
 * r = [3, 6, 9] has dot(p, r) = 6 sqrt5 > 0: no flip; ReLU -> [0, 0, sqrt5].
 * With the channels reversed in position the sign flips the other way. */
static void test_eigencam_rank_one_by_hand(void **state)
{
    (void)state;
    const float rising[6] = {1, 2, 3, 2, 4, 6}, falling[6] = {3, 2, 1, 6, 4, 2};
    float got[3] = {-7, -7, -7};
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENCAM, rising, NULL, 1, 2, 1, 3, got), FX_OK);
    const float want_rising[3] = {0.0f, 0.0f, sqrtf(5.0f)};
    assert_map(got, want_rising, 3, 1e-5f);
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENCAM, falling, NULL, 1, 2, 1, 3, got), FX_OK);
    const float want_falling[3] = {sqrtf(5.0f), 0.0f, 0.0f};
    assert_map(got, want_falling, 3, 1e-5f);
}

/* hw=2 <= k=3: the positions' Gram path. Channels [1, 3], [0, 0], [5, 1];
 * centred [-1, 1], [0, 0], [2, -2]; X X^T = [[5, -5], [-5, 5]], lambda 10,
 * u = (1, -1)/sqrt2, p = sqrt(10) u = sqrt5 (1, -1) up to sign; r = [6, 4],
 * dot = 2 sqrt5 > 0 keeps it: ReLU -> [sqrt5, 0]. */
static void test_eigencam_position_gram_by_hand(void **state)
{
    (void)state;
    const float a[6] = {1, 3, 0, 0, 5, 1};
    float got[2] = {-7, -7};
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENCAM, a, NULL, 1, 3, 1, 2, got), FX_OK);
    const float want[2] = {sqrtf(5.0f), 0.0f};
    assert_map(got, want, 2, 1e-5f);
}

/* Two components, not aligned with the channels (Jacobi must rotate), and
 * a projection orthogonal to the channel sum (the tie-break rule decides).
 * With a = [1, -1, 0, 0] and b = [1, 1, 2, -4] (orthogonal, mean 0), the
 * channels are a + b = [2, 0, 2, -4] and a - b = [0, -2, -2, 4]: X^T X =
 * [[24, -20], [-20, 24]], eigenvalues 44 (v = (1, -1)/sqrt2) and 4, so
 * p = X v = sqrt2 b = sqrt2 [1, 1, 2, -4] up to sign. r = 2a is orthogonal
 * to p, so the largest |p| (position 3) is made positive:
 * p = sqrt2 [-1, -1, -2, 4], ReLU -> [0, 0, 0, 4 sqrt2]. */
static void test_eigencam_rotation_and_tie_break(void **state)
{
    (void)state;
    const float a[8] = {2, 0, 2, -4, 0, -2, -2, 4};
    float got[4];
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENCAM, a, NULL, 1, 2, 2, 2, got), FX_OK);
    const float want[4] = {0.0f, 0.0f, 0.0f, 4.0f * sqrtf(2.0f)};
    assert_map(got, want, 4, 1e-5f);
}

/* EigenGrad-CAM decomposes G * A: with A constant (Eigen-CAM of it is flat:
 * the centred activations are 0) and G = the rank-one example's
 * activations, G * A is that example: [0, 0, sqrt5]. */
static void test_eigengradcam_by_hand(void **state)
{
    (void)state;
    const float a[6] = {1, 1, 1, 1, 1, 1}, g[6] = {1, 2, 3, 2, 4, 6};
    float got[3] = {-7, -7, -7};
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENGRADCAM, a, g, 1, 2, 1, 3, got), FX_OK);
    const float want[3] = {0.0f, 0.0f, sqrtf(5.0f)};
    assert_map(got, want, 3, 1e-5f);
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENCAM, a, g, 1, 2, 1, 3, got), FX_OK);
    const float flat[3] = {0.0f, 0.0f, 0.0f};
    assert_map(got, flat, 3, 0.0f);
}

/* The registry: dense ids in order, complete entries, names and aliases
 * that parse back to their id, unique names, titles as the papers spell them. */
static void test_method_registry(void **state)
{
    (void)state;
    assert_int_equal(fx_cam_method_count(), FX_CAM_METHOD_COUNT);
    assert_null(fx_cam_method_at(fx_cam_method_count()));
    assert_null(fx_cam_method_find(-1));
    assert_null(fx_cam_method_find(FX_CAM_METHOD_COUNT));
    assert_null(fx_cam_method_title(FX_CAM_METHOD_COUNT));
    assert_null(fx_cam_method_description(-1));
    for (size_t i = 0; i < fx_cam_method_count(); i++) {
        const fx_cam_method_info *m = fx_cam_method_at(i);
        assert_non_null(m);
        assert_int_equal(m->struct_size, sizeof *m);
        assert_int_equal(m->id, (int32_t)i);
        assert_ptr_equal(fx_cam_method_find(m->id), m);
        assert_string_equal(fx_cam_method_name(m->id), m->name);
        assert_string_equal(fx_cam_method_title(m->id), m->title);
        assert_string_equal(fx_cam_method_description(m->id), m->description);
        assert_true(m->name[0] && m->title[0] && m->description[0] && m->reference[0] && m->slug[0]);
        assert_null(strchr(m->description, '\n'));
        for (const char *c = m->slug; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
        int32_t parsed = -1;
        assert_int_equal(fx_cam_method_from_name(m->name, &parsed), FX_OK);
        assert_int_equal(parsed, m->id);
        char aliases[128];
        snprintf(aliases, sizeof aliases, "%s", m->aliases);
        for (char *tok = strtok(aliases, ","); tok; tok = strtok(NULL, ",")) {
            parsed = -1;
            assert_int_equal(fx_cam_method_from_name(tok, &parsed), FX_OK);
            assert_int_equal(parsed, m->id);
        }
        assert_true((m->needs & ~(FX_CAM_NEEDS_GRADIENTS | FX_CAM_NEEDS_EXTRA_FORWARDS |
                                  FX_CAM_NEEDS_INPUT_GRADIENTS)) == 0);
        for (size_t j = 0; j < i; j++) {
            assert_true(strcmp(fx_cam_method_at(j)->name, m->name) != 0);
            assert_true(strcmp(fx_cam_method_at(j)->slug, m->slug) != 0);
        }
    }
    assert_string_equal(fx_cam_method_title(FX_CAM_XGRADCAM), "XGrad-CAM"); /* Fu et al. 2020 */
    assert_string_equal(fx_cam_method_title(FX_CAM_EIGENCAM), "Eigen-CAM"); /* Muhammad & Yeasin 2020 */
    assert_int_equal(fx_cam_method_find(FX_CAM_EIGENCAM)->needs, 0);
    assert_int_equal(fx_cam_method_find(FX_CAM_GRADCAM)->needs, FX_CAM_NEEDS_GRADIENTS);
    int32_t parsed = -1;
    assert_int_equal(fx_cam_method_from_name("Gradcam_ElementWise", &parsed), FX_OK);
    assert_int_equal(parsed, FX_CAM_GRADCAM_ELEMENTWISE);
    /* an alias prefix is not an alias */
    assert_int_equal(fx_cam_method_from_name("gradcamp", &parsed), FX_ERR_INVALID_ARGUMENT);
}

static void test_batch_equals_per_sample(void **state)
{
    (void)state;
    /* Sample 0 is the shared example, sample 1 other values; the batch call
     * must give each sample exactly what a call on that sample alone gives. */
    float A[16], G[16];
    memcpy(A, EX_A, sizeof EX_A);
    memcpy(G, EX_G, sizeof EX_G);
    const float A1[8] = {0.5f, 3, -1, 2, 1, 1, 2, 0.25f};
    const float G1[8] = {0.2f, 0.4f, -0.3f, 1, 2, -2, 0.5f, 0.1f};
    memcpy(A + 8, A1, sizeof A1);
    memcpy(G + 8, G1, sizeof G1);
    for (int32_t m = 0; m <= FX_CAM_EIGENCAM; m++) { /* the methods computed from A and G alone */
        float batch[8], one[4];
        assert_int_equal(fx_cam_lowres(m, A, G, 2, 2, 2, 2, batch), FX_OK);
        assert_int_equal(fx_cam_lowres(m, EX_A, EX_G, 1, 2, 2, 2, one), FX_OK);
        assert_memory_equal(batch, one, sizeof one);
        assert_int_equal(fx_cam_lowres(m, A1, G1, 1, 2, 2, 2, one), FX_OK);
        assert_memory_equal(batch + 4, one, sizeof one);
    }
    /* and sample 1 by hand for Grad-CAM, so that it is not just "equal":
     *   w0 = (0.2 + 0.4 - 0.3 + 1) / 4 = 0.325, w1 = (2 - 2 + 0.5 + 0.1) / 4 = 0.15
     *   p0: 0.325*0.5 + 0.15*1    = 0.1625 + 0.15   = 0.3125
     *   p1: 0.325*3   + 0.15*1    = 0.975  + 0.15   = 1.125
     *   p2: 0.325*-1  + 0.15*2    = -0.325 + 0.3    = -0.025 -> 0
     *   p3: 0.325*2   + 0.15*0.25 = 0.65   + 0.0375 = 0.6875               */
    float batch[8];
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, A, G, 2, 2, 2, 2, batch), FX_OK);
    const float want[4] = {0.3125f, 1.125f, 0.0f, 0.6875f};
    assert_map(batch + 4, want, 4, TOL);
}

static void test_lowres_rejects_non_finite_input(void **state)
{
    (void)state;
    /* n=2, k=2, h=2, w=2: element [1][0][1][0] is flat index 8 + 0 + 2 + 0 = 10 */
    float A[16], G[16], out[8];
    for (int i = 0; i < 16; i++) {
        A[i] = 1.0f;
        G[i] = 0.5f;
    }
    for (int i = 0; i < 8; i++)
        out[i] = -7.0f;
    A[10] = NAN;
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, A, G, 2, 2, 2, 2, out), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "activations[1][0][1][0]"));
    assert_non_null(strstr(fx_last_error(), "flat index 10"));
    assert_non_null(strstr(fx_last_error(), "NaN"));
    A[10] = 1.0f;
    /* [0][1][0][1] is flat index 0 + 4 + 0 + 1 = 5 */
    G[5] = -INFINITY;
    assert_int_equal(fx_cam_lowres(FX_CAM_LAYERCAM, A, G, 2, 2, 2, 2, out), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "gradients[0][1][0][1]"));
    assert_non_null(strstr(fx_last_error(), "infinite"));
    for (int i = 0; i < 8; i++)
        assert_true(out[i] == -7.0f); /* untouched on error */
}

static void test_lowres_rejects_results_beyond_float(void **state)
{
    (void)state;
    /* 3e38 * 3e38 = 9e76 is finite in double but not in float */
    const float A[1] = {3e38f}, G[1] = {3e38f};
    float out[1] = {-7.0f};
    assert_int_equal(fx_cam_lowres(FX_CAM_HIRESCAM, A, G, 1, 1, 1, 1, out), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "beyond the float range"));
    assert_true(out[0] == -7.0f);
}

static void test_lowres_rejects_bad_arguments(void **state)
{
    (void)state;
    const float one[1] = {1.0f};
    float out[1] = {-7.0f};
    assert_int_equal(fx_cam_lowres(FX_CAM_METHOD_COUNT, one, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    char unknown[32];
    snprintf(unknown, sizeof unknown, "unknown method %d", FX_CAM_METHOD_COUNT);
    assert_non_null(strstr(fx_last_error(), unknown));
    assert_non_null(strstr(fx_last_error(), "4 (layercam)"));
    assert_non_null(strstr(fx_last_error(), "7 (eigencam)"));
    /* The guided methods are registry entries without a layer map. */
    assert_int_equal(fx_cam_lowres(FX_CAM_GUIDED_GRADCAM, one, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "fx_result_saliency"));
    assert_int_equal(fx_cam_lowres(-1, one, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "unknown method -1"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, NULL, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "activations is NULL"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, NULL, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "gradients is NULL"));
    assert_int_equal(fx_cam_lowres(FX_CAM_EIGENGRADCAM, one, NULL, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "gradients is NULL"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, one, 1, 1, 1, 1, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out_maps is NULL"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, one, 0, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "n=0"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, one, 1, 0, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "k=0"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, one, 1, 1, 0, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "h=0"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, one, 1, 1, 1, 0, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "w=0"));
    /* 2^16 ^ 4 = 2^64 elements: the size check must fire before any read */
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, one, 65536, 65536, 65536, 65536, out),
                     FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "overflows"));
    assert_true(out[0] == -7.0f);
}

static void test_method_names(void **state)
{
    (void)state;
    const char *names[FX_CAM_METHOD_COUNT] = {"gradcam",  "gradcam++",           "hirescam",     "xgradcam",
                                              "layercam", "gradcam-elementwise", "eigengradcam", "eigencam",
                                              "scorecam", "ablationcam", "smoothgradcam++", "guided-backprop",
                                              "guided-gradcam"};
    for (int32_t m = 0; m < FX_CAM_METHOD_COUNT; m++) {
        assert_string_equal(fx_cam_method_name(m), names[m]);
        int32_t parsed = -1;
        assert_int_equal(fx_cam_method_from_name(names[m], &parsed), FX_OK);
        assert_int_equal(parsed, m);
    }
    assert_null(fx_cam_method_name(-1));
    assert_null(fx_cam_method_name(FX_CAM_METHOD_COUNT));

    const char *aliases[] = {"GradCAM++", "GRADCAMPP", "gradcampp", "Gradcam_PlusPlus"};
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++) {
        int32_t parsed = -1;
        assert_int_equal(fx_cam_method_from_name(aliases[i], &parsed), FX_OK);
        assert_int_equal(parsed, FX_CAM_GRADCAM_PLUSPLUS);
    }
    int32_t parsed = 3;
    assert_int_equal(fx_cam_method_from_name("LayerCAM", &parsed), FX_OK);
    assert_int_equal(parsed, FX_CAM_LAYERCAM);

    parsed = 42;
    assert_int_equal(fx_cam_method_from_name("rise", &parsed), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "'rise'"));
    for (size_t i = 0; i < fx_cam_method_count(); i++) { /* every registry name and alias is listed */
        assert_non_null(strstr(fx_last_error(), fx_cam_method_at(i)->name));
        assert_non_null(strstr(fx_last_error(), fx_cam_method_at(i)->aliases));
    }
    assert_int_equal(parsed, 42);
    assert_int_equal(fx_cam_method_from_name("gradcam+", &parsed), FX_ERR_INVALID_ARGUMENT);
    assert_int_equal(fx_cam_method_from_name("", &parsed), FX_ERR_INVALID_ARGUMENT);
    assert_int_equal(fx_cam_method_from_name(NULL, &parsed), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "name is NULL"));
    assert_int_equal(fx_cam_method_from_name("gradcam", NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "method is NULL"));
    assert_int_equal(parsed, 42);
}

/* ---- Upsampling and normalization -------------------------------------- */

/* 2x2 map [[0, 4], [8, 12]] / 16 upsampled to 4x4 with half-pixel centres:
 * source x (and y) = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped
 * to [0, 1], so the weights of the second column (row) are 0, .25, .75, 1.
 *   row 0 (y weight 0):    [0, 1, 3, 4]      / 16
 *   row 3 (y weight 1):    [8, 9, 11, 12]    / 16
 *   row 1 = .75 r0 + .25 r3 = [2, 3, 5, 6]   / 16
 *   row 2 = .25 r0 + .75 r3 = [6, 7, 9, 10]  / 16                       */
static const float UP_LOW[4] = {0.0f, 4.0f / 16, 8.0f / 16, 12.0f / 16};
static const float UP_RAW[16] = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};

static void test_upsample_raw_keeps_values(void **state)
{
    (void)state;
    fx_image out = {.width = 4, .height = 4};
    assert_int_equal(fx_cam_upsample(UP_LOW, 2, 2, 0, &out), FX_OK);
    assert_int_equal(out.channels, 1);
    assert_int_equal(out.pixel_type, FX_PIXEL_F32);
    float want[16];
    for (int i = 0; i < 16; i++)
        want[i] = UP_RAW[i] / 16;
    for (uint32_t y = 0; y < 4; y++)
        assert_map((const float *)fx__row(&out, y), want + 4 * y, 4, TOL);
    fx_image_free(&out);
}

static void map_extremes(const fx_image *img, float *mn, float *mx)
{
    *mn = INFINITY;
    *mx = -INFINITY;
    for (uint32_t y = 0; y < img->height; y++) {
        const float *row = (const float *)fx__row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            *mn = fminf(*mn, row[x]);
            *mx = fmaxf(*mx, row[x]);
        }
    }
}

static void test_upsample_normalizes(void **state)
{
    (void)state;
    /* min 0, max 12/16: y = (x - 0) / (12/16), i.e. UP_RAW / 12, with the
     * peak exactly 1 and the minimum exactly 0 (no eps in the scale). The
     * same map scaled by 4e-8 (max 3e-8, a weakly trained model's) gives the
     * same heatmap: the normalization does not depend on the scale. */
    const float scales[3] = {1.0f, 4e-8f, 1e30f};
    for (int k = 0; k < 3; k++) {
        float low[4];
        for (int i = 0; i < 4; i++)
            low[i] = UP_LOW[i] * scales[k];
        fx_image out = {.width = 4, .height = 4};
        assert_int_equal(fx_cam_upsample(low, 2, 2, 1, &out), FX_OK);
        const float *px = out.data;
        for (int i = 0; i < 16; i++)
            assert_float_equal(px[i], UP_RAW[i] / 12.0f, TOL);
        float mn, mx;
        map_extremes(&out, &mn, &mx);
        assert_true(mn == 0.0f);
        assert_true(mx == 1.0f);
        fx_image_free(&out);
    }
}

static void test_upsample_peak_between_output_pixels(void **state)
{
    (void)state;
    /* A 7x7 map with one peak, upsampled 32x: no output pixel centre lands
     * on the low-resolution peak (source x = (i + 0.5) / 32 - 0.5 is never
     * 3), so the upsampled maximum is below the map's (0.969 of it, per
     * cv2.resize). The heatmap still peaks at exactly 1: it is scaled by the
     * upsampled map's own range, as pytorch-grad-cam does (min-max after
     * cv2.resize), and equals (U - min U) / (max U - min U) of the raw
     * upsampled map U within 1e-6, at any scale (here max 3e-8). */
    float low[49] = {0};
    low[3 * 7 + 3] = 3e-8f;
    low[2 * 7 + 3] = 1e-8f;
    fx_image raw = {.width = 224, .height = 224}, out = {.width = 224, .height = 224};
    assert_int_equal(fx_cam_upsample(low, 7, 7, 0, &raw), FX_OK);
    assert_int_equal(fx_cam_upsample(low, 7, 7, 1, &out), FX_OK);
    float rmin, rmax, mn, mx;
    map_extremes(&raw, &rmin, &rmax);
    assert_true(rmax < 3e-8f * 0.98f);
    map_extremes(&out, &mn, &mx);
    assert_true(mn == 0.0f);
    assert_true(mx == 1.0f);
    for (uint32_t y = 0; y < 224; y++) {
        const float *r = (const float *)fx__row(&raw, y), *o = (const float *)fx__row(&out, y);
        for (uint32_t x = 0; x < 224; x++) {
            double want = ((double)r[x] - rmin) / ((double)rmax - rmin);
            if (fabs(o[x] - want) > 1e-6)
                fail_msg("(%u, %u): got %.9g, want %.9g", x, y, o[x], want);
        }
    }
    fx_image_free(&raw);
    fx_image_free(&out);
}

static void test_upsample_downsamples_and_fills_caller_buffer(void **state)
{
    (void)state;
    /* 1x4 row [0, 1, 2, 3] -> 2x1: source x = (i + 0.5) * 2 - 0.5 = 0.5, 2.5:
     * 0.5 -> (0 + 1)/2 = 0.5, 2.5 -> (2 + 3)/2 = 2.5. A padded caller buffer
     * (stride 16 bytes for 2 floats) must be honoured. */
    const float low[4] = {0, 1, 2, 3};
    float buf[2 * 4];
    for (int i = 0; i < 8; i++)
        buf[i] = -7.0f;
    fx_image out = {.data = buf, .stride = 4 * sizeof(float), .width = 2, .height = 2, .channels = 1,
                    .pixel_type = FX_PIXEL_F32};
    /* 2 rows out of 1: both equal the interpolated row */
    assert_int_equal(fx_cam_upsample(low, 1, 4, 0, &out), FX_OK);
    assert_ptr_equal(out.data, buf);
    assert_float_equal(buf[0], 0.5f, TOL);
    assert_float_equal(buf[1], 2.5f, TOL);
    assert_float_equal(buf[4], 0.5f, TOL);
    assert_float_equal(buf[5], 2.5f, TOL);
    assert_true(buf[2] == -7.0f && buf[3] == -7.0f && buf[6] == -7.0f); /* padding untouched */
}

static void assert_all_zero(const fx_image *img)
{
    for (uint32_t y = 0; y < img->height; y++) {
        const float *row = (const float *)fx__row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            if (row[x] != 0.0f)
                fail_msg("(%u, %u) is %.9g; a constant map must give 0 everywhere", x, y, row[x]);
    }
}

static void test_all_zero_and_constant_maps_stay_zero(void **state)
{
    (void)state;
    /* Constant maps carry no spatial information: 0 everywhere, never NaN,
     * and no speckle. 0.7f is not a sum of powers of two that bilinear
     * weights keep exact: the resize of the constant map varies in its last
     * bits, which a normalization against the upsampled range stretched to
     * [0, 1] (issue 8, case 6). 0.7f next to its neighbouring float differs
     * by 1 ulp (1.2e-7 relative), rounding noise too. */
    float zeros[6] = {0}, fives[6] = {5, 5, 5, 5, 5, 5}, sevens[9], ulp[9], tiny[9];
    for (int i = 0; i < 9; i++) {
        sevens[i] = 0.7f;
        ulp[i] = i % 2 ? nextafterf(0.7f, 1.0f) : 0.7f;
        tiny[i] = 1e-30f;
    }
    const struct {
        const float *map;
        uint32_t h, w;
    } cases[] = {{zeros, 2, 3}, {fives, 2, 3}, {sevens, 3, 3}, {ulp, 3, 3}, {tiny, 3, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx_image out = {.width = 227, .height = 131};
        assert_int_equal(fx_cam_upsample(cases[c].map, cases[c].h, cases[c].w, 1, &out), FX_OK);
        assert_all_zero(&out);
        fx_image_free(&out);
        /* and in place, without resize */
        float copy[9];
        memcpy(copy, cases[c].map, sizeof(float) * cases[c].h * cases[c].w);
        fx_image map = {.data = copy, .stride = cases[c].w * sizeof(float), .width = cases[c].w,
                        .height = cases[c].h, .channels = 1, .pixel_type = FX_PIXEL_F32};
        assert_int_equal(fx_map_normalize(&map), FX_OK);
        assert_all_zero(&map);
    }
}

static void test_relative_guard_keeps_real_maps(void **state)
{
    (void)state;
    /* The guard is relative (1e-5 of the magnitude): a map of 100 and 100.01
     * (1e-4 relative) is a map, normalized to [0, 1]; so is a map whose
     * values are all below 1e-30. */
    float offset[4] = {100.0f, 100.01f, 100.0f, 100.005f};
    fx_image map = {.data = offset, .stride = 16, .width = 4, .height = 1, .channels = 1, .pixel_type = FX_PIXEL_F32};
    assert_int_equal(fx_map_normalize(&map), FX_OK);
    /* (x - 100) / (100.01f - 100): 100.005f - 100 over 100.01f - 100 in float
     * values is 0.5 within 1e-3 (the float spacing at 100 is 7.6e-6) */
    assert_true(offset[0] == 0.0f && offset[1] == 1.0f && offset[2] == 0.0f);
    assert_float_equal(offset[3], 0.5f, 1e-3f);
    float small[3] = {0.0f, 2e-31f, 4e-31f};
    map.data = small;
    map.width = 3;
    assert_int_equal(fx_map_normalize(&map), FX_OK);
    assert_true(small[0] == 0.0f && small[2] == 1.0f);
    assert_float_equal(small[1], 0.5f, 1e-6f);
}

static void test_map_normalize_tiny_map(void **state)
{
    (void)state;
    /* Raw map max 3e-8 (issue 8, case 7): (x - min) / (max - min) with the
     * peak exactly 1; the former "+ 1e-7" in the denominator gave 0.23. */
    float px[5] = {0.0f, 1e-8f, 3e-8f, 2e-8f, 0.5e-8f};
    const double want[5] = {0.0, 1.0 / 3, 1.0, 2.0 / 3, 1.0 / 6};
    fx_image map = {.data = px, .stride = 20, .width = 5, .height = 1, .channels = 1, .pixel_type = FX_PIXEL_F32};
    assert_int_equal(fx_map_normalize(&map), FX_OK);
    assert_true(px[2] == 1.0f);
    assert_true(px[0] == 0.0f);
    for (int i = 0; i < 5; i++)
        assert_float_equal(px[i], want[i], 1e-6);
}

static void test_map_normalize_in_place(void **state)
{
    (void)state;
    /* 3x2 map with a padded stride (4 floats a row):
     *   row 0: [-1, 1, 3]   row 1: [0, 2, -1]
     * min -1, max 3, y = (x + 1) / 4:
     *   row 0: [0, 0.5, 1]
     *   row 1: [0.25, 0.75, 0]                                           */
    float buf[8] = {-1, 1, 3, 99, 0, 2, -1, 99};
    fx_image map = {.data = buf, .stride = 16, .width = 3, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_F32};
    assert_int_equal(fx_map_normalize(&map), FX_OK);
    const float want[8] = {0, 0.5f, 1.0f, 99, 0.25f, 0.75f, 0, 99};
    assert_map(buf, want, 8, TOL);
    assert_true(buf[2] == 1.0f);
    assert_true(buf[3] == 99.0f && buf[7] == 99.0f); /* padding untouched */
}

static void test_map_normalize_rejects_bad_maps(void **state)
{
    (void)state;
    float buf[4] = {0, 1, NAN, 3};
    fx_image map = {.data = buf, .stride = 8, .width = 2, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_F32};
    assert_int_equal(fx_map_normalize(&map), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "(x=0, y=1)"));
    assert_non_null(strstr(fx_last_error(), "NaN"));
    assert_true(buf[1] == 1.0f && buf[3] == 3.0f); /* untouched */

    buf[2] = 2;
    map.pixel_type = FX_PIXEL_U8;
    assert_int_equal(fx_map_normalize(&map), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "expected FX_PIXEL_F32"));
    map.pixel_type = FX_PIXEL_F32;
    map.channels = 3;
    map.stride = 24;
    assert_int_equal(fx_map_normalize(&map), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "expected 1"));
    assert_int_equal(fx_map_normalize(NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "NULL"));
}

static void test_upsample_rejects_bad_arguments(void **state)
{
    (void)state;
    const float low[4] = {0, 1, 2, 3};
    fx_image out = {.width = 4, .height = 4};
    assert_int_equal(fx_cam_upsample(NULL, 2, 2, 1, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "lowres is NULL"));
    assert_int_equal(fx_cam_upsample(low, 2, 2, 1, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out is NULL"));
    assert_int_equal(fx_cam_upsample(low, 0, 2, 1, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "empty"));
    fx_image no_size = {0};
    assert_int_equal(fx_cam_upsample(low, 2, 2, 1, &no_size), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out->width"));
    assert_null(no_size.data);

    const float bad[4] = {0, INFINITY, 2, 3};
    assert_int_equal(fx_cam_upsample(bad, 2, 2, 1, &out), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "(x=1, y=0)"));
    assert_non_null(strstr(fx_last_error(), "infinite"));
    assert_null(out.data);

    /* a caller buffer of the wrong type is refused and left alone */
    uint8_t bytes[16];
    memset(bytes, 0xAB, sizeof bytes);
    fx_image u8 = {.data = bytes, .stride = 4, .width = 4, .height = 4, .channels = 1, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_cam_upsample(low, 2, 2, 1, &u8), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "FX_PIXEL_F32"));
    for (int i = 0; i < 16; i++)
        assert_int_equal(bytes[i], 0xAB);
}

/* Score-CAM and Ablation-CAM weights and maps, by hand. */
static void test_channel_weight_methods(void **state)
{
    (void)state;
    /* softmax([1, 2, 3]) = e^(s - 3) / (e^-2 + e^-1 + 1) */
    const float scores[3] = {1.0f, 2.0f, 3.0f};
    double w[3];
    assert_int_equal(fx__score_cam_weights(scores, 3, w), FX_OK);
    double z = exp(-2.0) + exp(-1.0) + 1.0;
    assert_float_equal(w[0], exp(-2.0) / z, 1e-12);
    assert_float_equal(w[1], exp(-1.0) / z, 1e-12);
    assert_float_equal(w[2], 1.0 / z, 1e-12);
    /* large scores do not overflow: softmax([1000, 1000]) = [0.5, 0.5] */
    const float big[2] = {1000.0f, 1000.0f};
    assert_int_equal(fx__score_cam_weights(big, 2, w), FX_OK);
    assert_float_equal(w[0], 0.5, 1e-12);
    const float bad[2] = {1.0f, NAN};
    assert_int_equal(fx__score_cam_weights(bad, 2, w), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "channel 1"));
    /* (y - y_k) / y with y = 4: ablated [3, 5, 4] -> [0.25, -0.25, 0] */
    const float ablated[3] = {3.0f, 5.0f, 4.0f};
    assert_int_equal(fx__ablation_cam_weights(4.0, ablated, 3, w), FX_OK);
    assert_float_equal(w[0], 0.25, 1e-12);
    assert_float_equal(w[1], -0.25, 1e-12);
    assert_float_equal(w[2], 0.0, 1e-12);
    /* a negative score (class 0 of a single-logit model, -logit): same formula */
    assert_int_equal(fx__ablation_cam_weights(-2.0, ablated, 1, w), FX_OK);
    assert_float_equal(w[0], 2.5, 1e-12); /* (-2 - 3) / -2 */
    assert_int_equal(fx__ablation_cam_weights(0.0, ablated, 3, w), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "divide by it"));
    /* map = ReLU(0.5 A0 - 1 A1): A0 = [2, 0, 4, 1], A1 = [1, 1, 1, 3] -> [0, -1, 1, -2.5] -> [0, 0, 1, 0] */
    const float A[8] = {2, 0, 4, 1, 1, 1, 1, 3};
    const double cw[2] = {0.5, -1.0};
    float map[4];
    assert_int_equal(fx__cam_from_weights(A, cw, 2, 4, map), FX_OK);
    const float want[4] = {0.0f, 0.0f, 1.0f, 0.0f};
    assert_map(map, want, 4, TOL);
    /* fx_cam_lowres cannot compute them: they need forward passes */
    float out[4];
    assert_int_equal(fx_cam_lowres(FX_CAM_SCORECAM, A, NULL, 1, 2, 2, 2, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "Score-CAM needs forward passes"));
    assert_int_equal(fx_cam_lowres(FX_CAM_ABLATIONCAM, A, NULL, 1, 2, 2, 2, out), FX_ERR_INVALID_ARGUMENT);
    /* nor Smooth Grad-CAM++, which needs noisy forward and backward passes */
    assert_int_equal(fx_cam_lowres(FX_CAM_SMOOTH_GRADCAM_PLUSPLUS, A, A, 1, 2, 2, 2, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "Smooth Grad-CAM++ needs forward passes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcam_by_hand),
        cmocka_unit_test(test_gradcam_plusplus_by_hand),
        cmocka_unit_test(test_gradcam_plusplus_zero_gradient_and_relu),
        cmocka_unit_test(test_gradcam_plusplus_tiny_gradients),
        cmocka_unit_test(test_xgradcam_tiny_activations),
        cmocka_unit_test(test_gradcam_tiny_gradients_keep_scale),
        cmocka_unit_test(test_hirescam_by_hand),
        cmocka_unit_test(test_xgradcam_by_hand),
        cmocka_unit_test(test_layercam_by_hand),
        cmocka_unit_test(test_gradcam_elementwise_by_hand),
        cmocka_unit_test(test_eigencam_rank_one_by_hand),
        cmocka_unit_test(test_eigencam_position_gram_by_hand),
        cmocka_unit_test(test_eigencam_rotation_and_tie_break),
        cmocka_unit_test(test_eigengradcam_by_hand),
        cmocka_unit_test(test_method_registry),
        cmocka_unit_test(test_batch_equals_per_sample),
        cmocka_unit_test(test_lowres_rejects_non_finite_input),
        cmocka_unit_test(test_lowres_rejects_results_beyond_float),
        cmocka_unit_test(test_lowres_rejects_bad_arguments),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_upsample_raw_keeps_values),
        cmocka_unit_test(test_upsample_normalizes),
        cmocka_unit_test(test_upsample_downsamples_and_fills_caller_buffer),
        cmocka_unit_test(test_upsample_peak_between_output_pixels),
        cmocka_unit_test(test_all_zero_and_constant_maps_stay_zero),
        cmocka_unit_test(test_relative_guard_keeps_real_maps),
        cmocka_unit_test(test_map_normalize_tiny_map),
        cmocka_unit_test(test_map_normalize_in_place),
        cmocka_unit_test(test_map_normalize_rejects_bad_maps),
        cmocka_unit_test(test_upsample_rejects_bad_arguments),
        cmocka_unit_test(test_channel_weight_methods),
    };
    return cmocka_run_group_tests_name("cam", tests, NULL, NULL);
}
