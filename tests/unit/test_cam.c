/* CAM math: every formula against numbers computed by hand (the arithmetic is
 * written out next to each expected value), batching, upsampling,
 * normalization and argument checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "fx_internal.h"

/* Absolute tolerance for results whose only inexactness is the 1e-7 eps
 * term or float rounding of values of order 1. */
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
    /* alpha = G^2 / (2 G^2 + S G^3 + 1e-7), weight = sum ReLU(G) * alpha.
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
     *   p1 G=0.5:  0.25 / (0.5 + (-2)(0.125))        = 0.25 / 0.25    = 1;   times 0.5  = 0.5
     *   p2 G=0.25: 0.0625 / (0.125 + (-2)(0.015625)) = 0.0625/0.09375 = 2/3; times 0.25 = 1/6
     *   w0 = 0.5 + 1/6 = 2/3
     * Channel 1: A = [100, 100, 100], G = 0 everywhere: alpha = 0, w1 = 0
     *   (a formula without the G == 0 rule would still be 0/eps = 0 here,
     *   but must not turn into NaN).
     * map = 2/3 * [2, -5, 1] = [4/3, -10/3, 2/3] -> ReLU [1.333333, 0, 0.666667] */
    const float A[6] = {2, -5, 1, 100, 100, 100};
    const float G[6] = {0, 0.5f, 0.25f, 0, 0, 0};
    float got[3];
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM_PLUSPLUS, A, G, 1, 2, 1, 3, got), FX_OK);
    const float want[3] = {1.333333f, 0.0f, 0.666667f};
    /* the eps term is 1e-7 against denominators of 0.25: relative 4e-7 */
    assert_map(got, want, 3, 2e-6f);
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
    for (int32_t m = 0; m < FX_CAM_METHOD_COUNT; m++) {
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
    assert_int_equal(fx_cam_lowres(5, one, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "unknown method 5"));
    assert_non_null(strstr(fx_last_error(), "FX_CAM_LAYERCAM (4)"));
    assert_int_equal(fx_cam_lowres(-1, one, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "unknown method -1"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, NULL, one, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "activations is NULL"));
    assert_int_equal(fx_cam_lowres(FX_CAM_GRADCAM, one, NULL, 1, 1, 1, 1, out), FX_ERR_INVALID_ARGUMENT);
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
    const char *names[FX_CAM_METHOD_COUNT] = {"gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"};
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
    assert_int_equal(fx_cam_method_from_name("scorecam", &parsed), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "'scorecam'"));
    assert_non_null(strstr(fx_last_error(), "gradcam++"));
    assert_non_null(strstr(fx_last_error(), "layercam"));
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

static void test_upsample_normalizes(void **state)
{
    (void)state;
    /* min 0, max 12/16 = 0.75: y = x / (0.75 + 1e-7); the top value is
     * 0.75 / 0.7500001 = 0.99999987 < 1 */
    fx_image out = {.width = 4, .height = 4};
    assert_int_equal(fx_cam_upsample(UP_LOW, 2, 2, 1, &out), FX_OK);
    const float *px = out.data;
    for (int i = 0; i < 16; i++)
        assert_float_equal(px[i], UP_RAW[i] / 12.0f, TOL);
    float mn = px[0], mx = px[0];
    for (int i = 0; i < 16; i++) {
        mn = fminf(mn, px[i]);
        mx = fmaxf(mx, px[i]);
    }
    assert_true(mn == 0.0f);
    assert_true(mx < 1.0f);
    assert_true(mx > 0.9999995f);
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

static void test_all_zero_and_constant_maps_stay_zero(void **state)
{
    (void)state;
    const float zeros[6] = {0};
    const float fives[6] = {5, 5, 5, 5, 5, 5};
    const float *maps[2] = {zeros, fives};
    for (int m = 0; m < 2; m++) {
        fx_image out = {.width = 7, .height = 5};
        assert_int_equal(fx_cam_upsample(maps[m], 2, 3, 1, &out), FX_OK);
        const float *px = out.data;
        for (int i = 0; i < 35; i++)
            assert_true(px[i] == 0.0f); /* (5 - 5) / (0 + 1e-7) = 0, never NaN */
        fx_image_free(&out);
    }
}

static void test_map_normalize_in_place(void **state)
{
    (void)state;
    /* 3x2 map with a padded stride (4 floats a row):
     *   row 0: [-1, 1, 3]   row 1: [0, 2, -1]
     * min -1, max 3, y = (x + 1) / (4 + 1e-7):
     *   row 0: [0, 0.5, 0.99999998 (rounds to 1.0f - 2^-24 or 1.0f)]
     *   row 1: [0.25, 0.75, 0]                                           */
    float buf[8] = {-1, 1, 3, 99, 0, 2, -1, 99};
    fx_image map = {.data = buf, .stride = 16, .width = 3, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_F32};
    assert_int_equal(fx_map_normalize(&map), FX_OK);
    const float want[8] = {0, 0.5f, 1.0f, 99, 0.25f, 0.75f, 0, 99};
    assert_map(buf, want, 8, TOL);
    assert_true(buf[2] <= 1.0f);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcam_by_hand),
        cmocka_unit_test(test_gradcam_plusplus_by_hand),
        cmocka_unit_test(test_gradcam_plusplus_zero_gradient_and_relu),
        cmocka_unit_test(test_hirescam_by_hand),
        cmocka_unit_test(test_xgradcam_by_hand),
        cmocka_unit_test(test_layercam_by_hand),
        cmocka_unit_test(test_batch_equals_per_sample),
        cmocka_unit_test(test_lowres_rejects_non_finite_input),
        cmocka_unit_test(test_lowres_rejects_results_beyond_float),
        cmocka_unit_test(test_lowres_rejects_bad_arguments),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_upsample_raw_keeps_values),
        cmocka_unit_test(test_upsample_normalizes),
        cmocka_unit_test(test_upsample_downsamples_and_fills_caller_buffer),
        cmocka_unit_test(test_all_zero_and_constant_maps_stay_zero),
        cmocka_unit_test(test_map_normalize_in_place),
        cmocka_unit_test(test_map_normalize_rejects_bad_maps),
        cmocka_unit_test(test_upsample_rejects_bad_arguments),
    };
    return cmocka_run_group_tests_name("cam", tests, NULL, NULL);
}
