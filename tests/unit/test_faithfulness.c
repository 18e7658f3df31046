/* Faithfulness metrics (lib/faithfulness.c) against hand computations and
 * independent reference code written here: a direct (non-separable) 2-D
 * Gaussian for the blur, Gauss-Seidel sweeps for ROAD's linear system, and a
 * fake "model" whose probability is the mean intensity of the image, so that
 * every score is a sum a person can check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "faithfulness.h"
#include "fx_internal.h"

/* ---- A fake model -------------------------------------------------------- */

typedef struct fake_model {
    int invert;          /* score = 1 - mean instead of mean */
    float constant;      /* >= 0: always this score (out-of-range tests) */
    fx_status fail_with; /* != FX_OK: fail on the first call */
    size_t calls, images, largest_batch;
} fake_model;

static fx_status mean_score(void *user, const fx_image *images, size_t n, float *scores)
{
    fake_model *m = user;
    m->calls++;
    m->images += n;
    if (n > m->largest_batch)
        m->largest_batch = n;
    if (m->fail_with != FX_OK)
        return fx__error(m->fail_with, "fake model: refused");
    for (size_t k = 0; k < n; k++) {
        const fx_image *im = &images[k];
        double sum = 0.0;
        for (uint32_t y = 0; y < im->height; y++) {
            const float *row = (const float *)((const uint8_t *)im->data + y * im->stride);
            for (uint32_t i = 0; i < im->width * im->channels; i++)
                sum += row[i];
        }
        double mean = sum / ((double)im->width * im->height * im->channels);
        scores[k] = m->constant >= 0 ? m->constant : (float)(m->invert ? 1.0 - mean : mean);
    }
    return FX_OK;
}

/* The 4x4 ramp: pixel p = y * 4 + x holds p / 15; the heatmap ranks the
 * same way (brightest = most relevant). */
static fx_image ramp_image(float *data)
{
    for (int p = 0; p < 16; p++)
        data[p] = (float)p / 15.0f;
    return (fx_image){data, 4 * sizeof(float), 4, 4, 1, FX_PIXEL_F32};
}

static fx_faithfulness_options plain_options(void)
{
    fx_faithfulness_options o;
    fx_faithfulness_options_init(&o);
    o.steps = 4;
    o.road_steps = 2;
    o.road_noise = 0.0f;
    return o;
}

/* ---- Pieces --------------------------------------------------------------- */

static void test_rank_orders_by_decreasing_heat_ties_by_position(void **state)
{
    (void)state;
    const float heat[5] = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f};
    uint32_t order[5];
    assert_int_equal(fx__faith_rank(heat, 5, order), FX_OK);
    const uint32_t want[5] = {1, 4, 0, 2, 3};
    assert_memory_equal(order, want, sizeof want);
    const float nan_heat[2] = {0.5f, NAN};
    assert_int_equal(fx__faith_rank(nan_heat, 2, order), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "pixel 1 is NaN"));
}

static void test_step_pixels_and_auc(void **state)
{
    (void)state;
    assert_int_equal(fx__faith_step_pixels(0, 32, 16), 0);
    assert_int_equal(fx__faith_step_pixels(2, 32, 16), 1);  /* 32 / 32 */
    assert_int_equal(fx__faith_step_pixels(32, 32, 16), 16);
    assert_int_equal(fx__faith_step_pixels(1, 3, 16), 5);   /* floor(16 / 3) */
    /* trapezoids of width 1/2: (1 + 0.5) / 2 * 0.5 + (0.5 + 0) / 2 * 0.5 = 0.5 */
    const float line[3] = {1.0f, 0.5f, 0.0f};
    assert_float_equal(fx__faith_auc(line, 3), 0.5, 1e-12);
    /* width 1/4: (1+1)/2 + (1+0)/2 + 0 + 0 = 1.5, * 1/4 = 0.375 */
    const float step[5] = {1, 1, 0, 0, 0};
    assert_float_equal(fx__faith_auc(step, 5), 0.375, 1e-12);
}

static double gauss(double d, double sigma)
{
    return exp(-d * d / (2 * sigma * sigma));
}

static void test_blur_equals_a_direct_2d_gaussian(void **state)
{
    (void)state;
    /* 1-D by hand: sigma 1, 3 taps e^-0.5, 1, e^-0.5 over 1 + 2 e^-0.5 */
    const float impulse[5] = {0, 0, 1, 0, 0};
    float out[5];
    assert_int_equal(fx__faith_blur(impulse, 5, 1, 1, 1.0f, out), FX_OK);
    double w0 = 1.0 / (1.0 + 2.0 * exp(-0.5)), w1 = exp(-0.5) * w0;
    const double want1[5] = {0, w1, w0, w1, 0};
    for (int i = 0; i < 5; i++)
        assert_float_equal(out[i], want1[i], 1e-6);
    /* A 7x5 two-channel image against a direct 2-D sum with clamped edges. */
    enum { W = 7, H = 5, C = 2 };
    float src[W * H * C], dst[W * H * C];
    for (int i = 0; i < W * H * C; i++)
        src[i] = (float)((i * 37) % 11) / 10.0f;
    const float sigma = 1.5f;
    int radius = 2; /* ceil(1.5) */
    assert_int_equal(fx__faith_blur(src, W, H, C, sigma, dst), FX_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                double acc = 0, total = 0;
                for (int dy = -radius; dy <= radius; dy++)
                    for (int dx = -radius; dx <= radius; dx++) {
                        int sx = x + dx < 0 ? 0 : x + dx >= W ? W - 1 : x + dx;
                        int sy = y + dy < 0 ? 0 : y + dy >= H ? H - 1 : y + dy;
                        double w = gauss(dx, sigma) * gauss(dy, sigma);
                        acc += w * src[(sy * W + sx) * C + c];
                        total += w;
                    }
                assert_float_equal(dst[(y * W + x) * C + c], acc / total, 1e-5);
            }
}

/* Reference: Gauss-Seidel sweeps of x_p = sum w x_q / sum w over the in-image
 * neighbours, for the missing pixels only. */
static void reference_impute(float *img, int w, int h, const uint8_t *missing)
{
    static const int dx[8] = {-1, 0, 1, -1, 1, -1, 0, 1}, dy[8] = {-1, -1, -1, 0, 0, 1, 1, 1};
    double x[64];
    for (int p = 0; p < w * h; p++)
        x[p] = img[p];
    for (int sweep = 0; sweep < 20000; sweep++)
        for (int p = 0; p < w * h; p++) {
            if (!missing[p])
                continue;
            double acc = 0, total = 0;
            for (int n = 0; n < 8; n++) {
                int qx = p % w + dx[n], qy = p / w + dy[n];
                if (qx < 0 || qy < 0 || qx >= w || qy >= h)
                    continue;
                double weight = (dx[n] != 0 && dy[n] != 0) ? 1.0 / 12 : 1.0 / 6;
                acc += weight * x[qy * w + qx];
                total += weight;
            }
            x[p] = acc / total;
        }
    for (int p = 0; p < w * h; p++)
        img[p] = (float)x[p];
}

static void test_impute_by_hand_and_against_gauss_seidel(void **state)
{
    (void)state;
    uint64_t rng = 1;
    /* 3x3, centre missing: edges 0.6 (4 x 1/6), corners 0.3 (4 x 1/12):
     * x = (4/6 * 0.6 + 4/12 * 0.3) / 1 = 0.4 + 0.1 = 0.5 */
    float img[9] = {0.3f, 0.6f, 0.3f, 0.6f, 0.9f, 0.6f, 0.3f, 0.6f, 0.3f};
    uint8_t centre[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(fx__faith_impute(img, 3, 3, 1, centre, 0.0f, &rng), FX_OK);
    assert_float_equal(img[4], 0.5, 1e-6);
    assert_float_equal(img[0], 0.3, 0); /* known pixels untouched */
    /* 4x1 row [0, ?, ?, 0.9]: x1 = (0 + x2) / 2, x2 = (x1 + 0.9) / 2 -> 0.3, 0.6 */
    float row[4] = {0.0f, 0.7f, 0.7f, 0.9f};
    uint8_t middle[4] = {0, 1, 1, 0};
    assert_int_equal(fx__faith_impute(row, 4, 1, 1, middle, 0.0f, &rng), FX_OK);
    assert_float_equal(row[1], 0.3, 1e-6);
    assert_float_equal(row[2], 0.6, 1e-6);
    /* The 4x4 ramp with its brightest half missing, and an irregular hole
     * in an 8x8 image, against Gauss-Seidel. */
    float ramp[16], want[16];
    ramp_image(ramp);
    memcpy(want, ramp, sizeof ramp);
    uint8_t top[16] = {0};
    for (int p = 8; p < 16; p++)
        top[p] = 1;
    reference_impute(want, 4, 4, top);
    assert_int_equal(fx__faith_impute(ramp, 4, 4, 1, top, 0.0f, &rng), FX_OK);
    for (int p = 0; p < 16; p++)
        assert_float_equal(ramp[p], want[p], 1e-5);
    float big[64], big_want[64];
    uint8_t hole[64];
    for (int p = 0; p < 64; p++) {
        big[p] = (float)((p * 13) % 17) / 16.0f;
        hole[p] = (p % 3 == 0) || (p > 20 && p < 40);
    }
    memcpy(big_want, big, sizeof big);
    reference_impute(big_want, 8, 8, hole);
    assert_int_equal(fx__faith_impute(big, 8, 8, 1, hole, 0.0f, &rng), FX_OK);
    for (int p = 0; p < 64; p++)
        assert_float_equal(big[p], big_want[p], 1e-5);
    /* Nothing known: refused. */
    uint8_t all[4] = {1, 1, 1, 1};
    assert_int_equal(fx__faith_impute(row, 4, 1, 1, all, 0.0f, &rng), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "every pixel removed"));
}

static void test_imputation_noise_is_standard_normal_times_noise(void **state)
{
    (void)state;
    /* Moments of the generator: mean 0, variance 1 (tolerances ~5 standard errors). */
    uint64_t rng = 42;
    double sum = 0, squares = 0;
    enum { N = 200000 };
    for (int i = 0; i < N; i++) {
        double z = fx__faith_normal(&rng);
        sum += z;
        squares += z * z;
    }
    assert_float_equal(sum / N, 0.0, 0.012);
    assert_float_equal(squares / N, 1.0, 0.016);
    /* With noise 0.05 the imputed centre is 0.5 + 0.05 z, z the seed's first draw. */
    float img[9] = {0.3f, 0.6f, 0.3f, 0.6f, 0.9f, 0.6f, 0.3f, 0.6f, 0.3f};
    uint8_t centre[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    uint64_t a = 7, b = 7;
    assert_int_equal(fx__faith_impute(img, 3, 3, 1, centre, 0.05f, &a), FX_OK);
    assert_float_equal(img[4], 0.5 + 0.05 * fx__faith_normal(&b), 1e-6);
    assert_float_equal(img[1], 0.6, 0);
}

/* ---- The metrics ----------------------------------------------------------- */

/* Mean of the 4x4 ramp with the pixels of rank < n (values 15, 14, ... / 15) set to 0. */
static double ramp_mean_without_top(int n)
{
    double sum = 0;
    for (int p = 0; p < 16 - n; p++)
        sum += p / 15.0;
    return sum / 16.0;
}

static void test_ad_ic_and_deletion_by_hand(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    fake_model model = {0, -1.0f, FX_OK, 0, 0, 0};
    fx_faithfulness_options o = plain_options();
    fx_faithfulness f = {.struct_size = sizeof f};
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_OK);
    /* Y = mean(p / 15) = 120 / 15 / 16 = 0.5. O = mean((p / 15)^2) = 1240 / 225 / 16
     * = 0.3444...; AD = (0.5 - 0.34444) / 0.5 * 100 = 31.111 %; no increase. */
    assert_float_equal(f.score, 0.5, 1e-6);
    assert_float_equal(f.explanation_score, 1240.0 / 225.0 / 16.0, 1e-6);
    assert_float_equal(f.average_drop, (0.5 - 1240.0 / 3600.0) / 0.5 * 100.0, 1e-4);
    assert_int_equal(f.increase, 0);
    /* Deletion, steps 4: the 4, 8, 12, 16 brightest pixels become 0:
     * means 0.5, 66/240 = 0.275, 28/240, 6/240, 0;
     * AUC = (0.5/2 + 0.275 + 0.116667 + 0.025 + 0/2) / 4 = 0.1666667 */
    assert_float_equal(ramp_mean_without_top(4), 0.275, 1e-12);
    assert_float_equal(f.deletion_auc, (0.25 + 0.275 + 28.0 / 240 + 6.0 / 240) / 4.0, 1e-6);
    /* 2 + 2 * 4 + 2 * 1 images, in one batch of 16 */
    assert_int_equal(model.images, 12);
    assert_int_equal(model.calls, 1);
}

/* Independent insertion: the blurred start image by a direct 2-D Gaussian,
 * the top k * 4 pixels put back, mean of each. */
static void test_insertion_and_blur_baseline_against_reference(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    fx_faithfulness_options o = plain_options();
    o.blur_sigma = 1.0f;
    o.deletion_baseline = FX_DELETION_BLUR;
    double blurred[16];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            double acc = 0, total = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int sx = x + dx < 0 ? 0 : x + dx > 3 ? 3 : x + dx;
                    int sy = y + dy < 0 ? 0 : y + dy > 3 ? 3 : y + dy;
                    double w = gauss(dx, 1.0) * gauss(dy, 1.0);
                    acc += w * data[sy * 4 + sx];
                    total += w;
                }
            blurred[y * 4 + x] = acc / total;
        }
    double insertion[5], deletion[5];
    for (int k = 0; k <= 4; k++) {
        double ins = 0, del = 0;
        for (int p = 0; p < 16; p++) {
            bool top = p >= 16 - 4 * k; /* rank < 4k: the brightest */
            ins += top ? data[p] : blurred[p];
            del += top ? blurred[p] : data[p];
        }
        insertion[k] = ins / 16;
        deletion[k] = del / 16;
    }
    double ins_auc = 0, del_auc = 0;
    for (int k = 0; k < 4; k++) {
        ins_auc += (insertion[k] + insertion[k + 1]) / 2 / 4;
        del_auc += (deletion[k] + deletion[k + 1]) / 2 / 4;
    }
    fake_model model = {0, -1.0f, FX_OK, 0, 0, 0};
    fx_faithfulness f = {.struct_size = sizeof f};
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_OK);
    assert_float_equal(f.insertion_auc, ins_auc, 1e-6);
    assert_float_equal(f.deletion_auc, del_auc, 1e-6);
}

static void test_road_against_gauss_seidel(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    fx_faithfulness_options o = plain_options(); /* road_steps 2: 50 %, no noise */
    float morf[16], lerf[16];
    memcpy(morf, data, sizeof data);
    memcpy(lerf, data, sizeof data);
    uint8_t top[16] = {0}, bottom[16] = {0};
    for (int p = 0; p < 8; p++) {
        top[15 - p] = 1;
        bottom[p] = 1;
    }
    reference_impute(morf, 4, 4, top);
    reference_impute(lerf, 4, 4, bottom);
    double morf_mean = 0, lerf_mean = 0;
    for (int p = 0; p < 16; p++) {
        morf_mean += morf[p] / 16.0;
        lerf_mean += lerf[p] / 16.0;
    }
    fake_model model = {0, -1.0f, FX_OK, 0, 0, 0};
    fx_faithfulness f = {.struct_size = sizeof f};
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_OK);
    assert_float_equal(f.road_morf, 0.5 - morf_mean, 1e-5);
    assert_float_equal(f.road_lerf, 0.5 - lerf_mean, 1e-5);
    /* Removing the bright half and imputing from the dark one lowers the mean;
     * the reverse raises it. */
    assert_true(f.road_morf > 0.1f && f.road_lerf < -0.1f);
}

static void test_increase_in_confidence_and_summary(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    fake_model model = {1, -1.0f, FX_OK, 0, 0, 0}; /* score = 1 - mean */
    fx_faithfulness_options o = plain_options();
    fx_faithfulness f[2] = {{.struct_size = sizeof f[0]}, {.struct_size = sizeof f[0]}};
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f[0]), FX_OK);
    /* Y = 0.5, O = 1 - 0.34444 = 0.65556 > Y: an increase, no drop. */
    assert_float_equal(f[0].explanation_score, 1.0 - 1240.0 / 3600.0, 1e-6);
    assert_int_equal(f[0].increase, 1);
    assert_float_equal(f[0].average_drop, 0.0, 0);
    model.invert = 0;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f[1]), FX_OK);
    fx_faithfulness_summary s = {.struct_size = sizeof s};
    assert_int_equal(fx_faithfulness_summarize(f, 2, &s), FX_OK);
    assert_int_equal(s.images, 2);
    assert_float_equal(s.average_drop, (0.0 + 31.111111) / 2, 1e-4);
    assert_float_equal(s.increase_in_confidence, 50.0, 0);
    assert_float_equal(s.deletion_auc, (f[0].deletion_auc + f[1].deletion_auc) / 2, 1e-6);
    assert_float_equal(s.road_lerf, (f[0].road_lerf + f[1].road_lerf) / 2, 1e-6);
    assert_int_equal(fx_faithfulness_summarize(f, 0, &s), FX_ERR_INVALID_ARGUMENT);
    s.struct_size = 4;
    assert_int_equal(fx_faithfulness_summarize(f, 2, &s), FX_ERR_INVALID_ARGUMENT);
}

static void test_batches_do_not_change_the_numbers(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    heat_data[3] = 0.99f; /* another order than the image's */
    fx_faithfulness_options o = plain_options();
    o.road_steps = 4;
    o.road_noise = 0.01f;
    o.seed = 9;
    fake_model one = {0, -1.0f, FX_OK, 0, 0, 0}, many = one;
    fx_faithfulness a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
    o.batch_size = 1;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &one, &o, &a), FX_OK);
    o.batch_size = 5;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &many, &o, &b), FX_OK);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(one.images, 2 + 8 + 6);
    assert_int_equal(one.calls, 16);
    assert_int_equal(many.calls, 4); /* 5 + 5 + 5 + 1 */
    assert_int_equal(many.largest_batch, 5);
}

static void test_bad_input_is_refused_with_a_reason(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    fx_faithfulness_options o = plain_options();
    fake_model model = {0, -1.0f, FX_OK, 0, 0, 0};
    fx_faithfulness f = {.struct_size = sizeof f};
    data[5] = 1.5f;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "image sample 1.5 at (1, 1) is outside [0,1]"));
    data[5] = 5.0f / 15.0f;
    fx_image small = heat;
    small.width = 2;
    assert_int_equal(fx_faithfulness_compute(&image, &small, mean_score, &model, &o, &f), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap is 2x4, image 4x4"));
    o.steps = 0;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "steps 0 is out of range; valid: 1..1024"));
    o = plain_options();
    o.road_steps = 1;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_ERR_INVALID_ARGUMENT);
    o = plain_options();
    assert_int_equal(fx_faithfulness_compute(&image, &heat, NULL, &model, &o, &f), FX_ERR_INVALID_ARGUMENT);
    model.constant = 1.5f;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "returned 1.5 for the image"));
    model.constant = -1.0f;
    model.fail_with = FX_ERR_MODEL;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_ERR_MODEL);
    assert_string_equal(fx_last_error(), "fake model: refused");
    heat_data[2] = NAN;
    model.fail_with = FX_OK;
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_ERR_NUMERIC);
}

static void test_an_older_smaller_result_struct_gets_only_its_fields(void **state)
{
    (void)state;
    float data[16], heat_data[16];
    fx_image image = ramp_image(data);
    fx_image heat = ramp_image(heat_data);
    fx_faithfulness_options o = plain_options();
    fake_model model = {0, -1.0f, FX_OK, 0, 0, 0};
    fx_faithfulness f;
    memset(&f, 0x5a, sizeof f);
    f.struct_size = offsetof(fx_faithfulness, deletion_auc);
    assert_int_equal(fx_faithfulness_compute(&image, &heat, mean_score, &model, &o, &f), FX_OK);
    assert_int_equal(f.struct_size, offsetof(fx_faithfulness, deletion_auc));
    assert_float_equal(f.score, 0.5, 1e-6);
    unsigned char sentinel[sizeof f - offsetof(fx_faithfulness, deletion_auc)];
    memset(sentinel, 0x5a, sizeof sentinel);
    assert_memory_equal((unsigned char *)&f + offsetof(fx_faithfulness, deletion_auc), sentinel, sizeof sentinel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_orders_by_decreasing_heat_ties_by_position),
        cmocka_unit_test(test_step_pixels_and_auc),
        cmocka_unit_test(test_blur_equals_a_direct_2d_gaussian),
        cmocka_unit_test(test_impute_by_hand_and_against_gauss_seidel),
        cmocka_unit_test(test_imputation_noise_is_standard_normal_times_noise),
        cmocka_unit_test(test_ad_ic_and_deletion_by_hand),
        cmocka_unit_test(test_insertion_and_blur_baseline_against_reference),
        cmocka_unit_test(test_road_against_gauss_seidel),
        cmocka_unit_test(test_increase_in_confidence_and_summary),
        cmocka_unit_test(test_batches_do_not_change_the_numbers),
        cmocka_unit_test(test_bad_input_is_refused_with_a_reason),
        cmocka_unit_test(test_an_older_smaller_result_struct_gets_only_its_fields),
    };
    return cmocka_run_group_tests_name("faithfulness", tests, NULL, NULL);
}
