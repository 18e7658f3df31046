/* The refinements' math (lib/cam.c, cam_refine.h) on hand cases: eigen_smooth
 * projections with their sign convention, pytorch-grad-cam's scale_cam_image,
 * the flip and the augmentation list. The arithmetic is written out next to
 * each expected value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "cam_refine.h"

#define TOL 1e-6f

/* k = 2 channels over 3 positions (h = 1, w = 3); A0 = A1 = [1, 2, 3],
 * G0 = [1, 1, 1], G1 = [2, 2, 2]. Every method below has the terms
 *   T0 = [1, 2, 3], T1 = [2, 4, 6]
 * (Grad-CAM: w0 = mean G0 = 1, w1 = 2; HiResCAM: G * A). Centred: [-1, 0, 1],
 * [-2, 0, 2]: rank 1, v1 = [1, 2] / sqrt(5), p = X_c v1 = [-5, 0, 5] / sqrt(5)
 * = [-sqrt5, 0, sqrt5]; r = T0 + T1 = [3, 6, 9], p . r = 6 sqrt5 > 0: kept;
 * ReLU -> [0, 0, sqrt5]. */
static const float A[6] = {1, 2, 3, 1, 2, 3};
static const float G[6] = {1, 1, 1, 2, 2, 2};
#define SQRT5 2.2360679775f

static void test_eigen_smooth_projects_the_terms(void **state)
{
    (void)state;
    const int32_t methods[] = {FX_CAM_GRADCAM, FX_CAM_HIRESCAM};
    for (size_t i = 0; i < 2; i++) {
        float map[3];
        assert_int_equal(fx__cam_lowres_smooth(methods[i], A, G, 1, 2, 1, 3, 1, map), FX_OK);
        assert_float_equal(map[0], 0.0f, TOL);
        assert_float_equal(map[1], 0.0f, TOL);
        assert_float_equal(map[2], SQRT5, 1e-5f);
        /* Without it: the channel sum [3, 6, 9]. */
        assert_int_equal(fx__cam_lowres_smooth(methods[i], A, G, 1, 2, 1, 3, 0, map), FX_OK);
        assert_float_equal(map[0], 3.0f, TOL);
        assert_float_equal(map[2], 9.0f, TOL);
    }
}

/* Reversed positions: T0 = [3, 2, 1], T1 = [6, 4, 2]; the SVD gives +-[5, 0,
 * -5] / sqrt5; r = [9, 6, 3] pins p = [sqrt5, 0, -sqrt5]; ReLU -> [sqrt5, 0, 0]:
 * the map is high where the plain map is high, whatever LAPACK's sign. */
static void test_eigen_smooth_sign_follows_the_plain_map(void **state)
{
    (void)state;
    const float a[6] = {3, 2, 1, 3, 2, 1};
    float map[3];
    assert_int_equal(fx__cam_lowres_smooth(FX_CAM_HIRESCAM, a, G, 1, 2, 1, 3, 1, map), FX_OK);
    assert_float_equal(map[0], SQRT5, 1e-5f);
    assert_float_equal(map[1], 0.0f, TOL);
    assert_float_equal(map[2], 0.0f, TOL);
}

/* Score-CAM/Ablation-CAM weights [1, 2] on A: the same terms as above. */
static void test_eigen_from_weights(void **state)
{
    (void)state;
    const double w[2] = {1.0, 2.0};
    float map[3];
    assert_int_equal(fx__cam_eigen_from_weights(A, w, 2, 3, map), FX_OK);
    assert_float_equal(map[0], 0.0f, TOL);
    assert_float_equal(map[1], 0.0f, TOL);
    assert_float_equal(map[2], SQRT5, 1e-5f);
}

/* Eigen-CAM is a projection already: eigen_smooth changes nothing. */
static void test_eigen_smooth_leaves_eigencam(void **state)
{
    (void)state;
    const float a[8] = {1, 2, 3, 4, 4, 0, 1, 1};
    float plain[4], smooth[4];
    assert_int_equal(fx__cam_lowres_smooth(FX_CAM_EIGENCAM, a, NULL, 1, 2, 2, 2, 0, plain), FX_OK);
    assert_int_equal(fx__cam_lowres_smooth(FX_CAM_EIGENCAM, a, NULL, 1, 2, 2, 2, 1, smooth), FX_OK);
    assert_memory_equal(plain, smooth, sizeof plain);
}

/* scale_cam_image: [1, 3, 2] - 1 = [0, 2, 1], / (1e-7 + 2). */
static void test_map_scale(void **state)
{
    (void)state;
    float m[3] = {1, 3, 2};
    fx__map_scale(m, 3);
    assert_float_equal(m[0], 0.0f, TOL);
    assert_float_equal(m[1], 2.0f / (2.0f + 1e-7f), TOL);
    assert_float_equal(m[2], 1.0f / (2.0f + 1e-7f), TOL);
    float flat[2] = {5, 5}; /* 0 / 1e-7 */
    fx__map_scale(flat, 2);
    assert_float_equal(flat[0], 0.0f, 0.0f);
    assert_float_equal(flat[1], 0.0f, 0.0f);
}

/* [0, 2] scaled to [0, s], s = 2 / (2 + 1e-7), then resized 1x2 -> 1x4 with
 * half-pixel centres: source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
 * 1.25, clamped: [0, 0.25 s, 0.75 s, s] (cv2.resize INTER_LINEAR). */
static void test_map_scale_resize(void **state)
{
    (void)state;
    const float m[2] = {0, 2};
    float out[4];
    float s = 2.0f / (2.0f + 1e-7f);
    assert_int_equal(fx__map_scale_resize(m, 1, 2, 1, 4, out), FX_OK);
    assert_float_equal(out[0], 0.0f, TOL);
    assert_float_equal(out[1], 0.25f * s, TOL);
    assert_float_equal(out[2], 0.75f * s, TOL);
    assert_float_equal(out[3], s, TOL);
}

static void test_flip(void **state)
{
    (void)state;
    float p[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* 2 planes of 2 rows of 3 */
    const float want[12] = {3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10};
    fx__flip_horizontal(p, 2, 2, 3);
    assert_memory_equal(p, want, sizeof want);
    float even[4] = {1, 2, 3, 4};
    const float even_want[4] = {4, 3, 2, 1};
    fx__flip_horizontal(even, 1, 1, 4);
    assert_memory_equal(even, even_want, sizeof even_want);
}

/* ttach's HorizontalFlip x Multiply([0.9, 1, 1.1]): six distinct pairs, the
 * identity first. */
static void test_augmentations(void **state)
{
    (void)state;
    int seen[2][3] = {{0}};
    for (uint32_t i = 0; i < FX__AUG_COUNT; i++) {
        int flip;
        float factor;
        fx__augmentation(i, &flip, &factor);
        if (i == 0) {
            assert_int_equal(flip, 0);
            assert_true(factor == 1.0f);
        }
        int f = factor == 0.9f ? 0 : factor == 1.0f ? 1 : factor == 1.1f ? 2 : -1;
        assert_true(f >= 0 && (flip == 0 || flip == 1));
        seen[flip][f]++;
    }
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            assert_int_equal(seen[a][b], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eigen_smooth_projects_the_terms),
        cmocka_unit_test(test_eigen_smooth_sign_follows_the_plain_map),
        cmocka_unit_test(test_eigen_from_weights),
        cmocka_unit_test(test_eigen_smooth_leaves_eigencam),
        cmocka_unit_test(test_map_scale),
        cmocka_unit_test(test_map_scale_resize),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_augmentations),
    };
    return cmocka_run_group_tests_name("cam_refine", tests, NULL, NULL);
}
