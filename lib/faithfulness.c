/* Faithfulness metrics of a heatmap (docs/evaluation.md): Average Drop and
 * Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++ §5.2),
 * deletion and insertion AUC (Petsiuk et al. 2018, RISE §4.1) and ROAD with
 * noisy linear imputation (Rong et al. 2022). The model is reached through a
 * callback that scores a batch of images; everything here is plain C. */
#include "faithfulness.h"

#include "fx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEPS_MAX 1024u
#define ROAD_STEPS_MAX 100u
#define BATCH_MAX 1024u
/* ROAD's solver stops at ||r|| <= CG_TOLERANCE * ||b||. */
#ifndef CG_TOLERANCE
#define CG_TOLERANCE 1e-6
#endif

/* ---- Small pieces (faithfulness.h) ------------------------------------- */

typedef struct ranked {
    float value;
    uint32_t position;
} ranked;

static int by_decreasing_value(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    return x->position < y->position ? -1 : (x->position > y->position);
}

fx_status fx__faith_rank(const float *heat, size_t count, uint32_t *order)
{
    ranked *r = malloc(count * sizeof *r);
    if (!r)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "faithfulness: cannot allocate the ranking of %zu pixels", count);
    for (size_t p = 0; p < count; p++) {
        if (isnan(heat[p])) {
            free(r);
            return fx__error(FX_ERR_NUMERIC, "faithfulness: heatmap value at pixel %zu is NaN", p);
        }
        r[p].value = heat[p];
        r[p].position = (uint32_t)p;
    }
    qsort(r, count, sizeof *r, by_decreasing_value);
    for (size_t p = 0; p < count; p++)
        order[p] = r[p].position;
    free(r);
    return FX_OK;
}

size_t fx__faith_step_pixels(size_t k, size_t steps, size_t count)
{
    return k * count / steps;
}

double fx__faith_auc(const float *y, size_t points)
{
    double sum = 0.0;
    for (size_t i = 0; i + 1 < points; i++)
        sum += 0.5 * ((double)y[i] + (double)y[i + 1]);
    return sum / (double)(points - 1);
}

static size_t clamp_index(int64_t i, size_t n)
{
    return i < 0 ? 0 : (size_t)i >= n ? n - 1 : (size_t)i;
}

fx_status fx__faith_blur(const float *src, uint32_t width, uint32_t height, uint32_t channels, float sigma,
                         float *dst)
{
    int64_t radius = (int64_t)ceilf(sigma);
    size_t taps = (size_t)(2 * radius + 1);
    size_t samples = (size_t)width * height * channels;
    double *kernel = malloc(taps * sizeof *kernel);
    float *rows = malloc(samples * sizeof *rows);
    if (!kernel || !rows) {
        free(kernel);
        free(rows);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "faithfulness: cannot allocate the blur buffers");
    }
    double total = 0.0;
    for (int64_t d = -radius; d <= radius; d++) {
        kernel[d + radius] = exp(-(double)(d * d) / (2.0 * (double)sigma * (double)sigma));
        total += kernel[d + radius];
    }
    for (size_t t = 0; t < taps; t++)
        kernel[t] /= total;
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++)
            for (uint32_t c = 0; c < channels; c++) {
                double acc = 0.0;
                for (int64_t d = -radius; d <= radius; d++) {
                    size_t xs = clamp_index((int64_t)x + d, width);
                    acc += kernel[d + radius] * src[((size_t)y * width + xs) * channels + c];
                }
                rows[((size_t)y * width + x) * channels + c] = (float)acc;
            }
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++)
            for (uint32_t c = 0; c < channels; c++) {
                double acc = 0.0;
                for (int64_t d = -radius; d <= radius; d++) {
                    size_t ys = clamp_index((int64_t)y + d, height);
                    acc += kernel[d + radius] * rows[(ys * width + x) * channels + c];
                }
                dst[((size_t)y * width + x) * channels + c] = (float)acc;
            }
    free(kernel);
    free(rows);
    return FX_OK;
}

double fx__faith_normal(uint64_t *rng)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        /* splitmix64 (Steele, Lea, Flood 2014) */
        uint64_t z = (*rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        u[i] = ((double)(z >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* ROAD's neighbourhood: 1/6 for the 4 edge neighbours, 1/12 for the 4 diagonals. */
static const int NEIGHBOUR_DX[8] = {1, 0, -1, 1, 0, -1, 1, -1};
static const int NEIGHBOUR_DY[8] = {1, 1, 1, -1, -1, -1, 0, 0};
static const double NEIGHBOUR_W[8] = {1.0 / 12, 1.0 / 6, 1.0 / 12, 1.0 / 12, 1.0 / 6, 1.0 / 12, 1.0 / 6, 1.0 / 6};

typedef struct imputation {
    uint32_t width, height, channels;
    const uint8_t *missing;
    size_t unknowns;
    uint32_t *pixel;     /* pixel of unknown i */
    int64_t *unknown;    /* unknown index of each pixel, -1 when known */
    double *diagonal;    /* sum of the in-image neighbours' weights */
    double *x, *r, *d, *q;
} imputation;

/* y = A v over the unknowns: A_pp = diagonal, A_pq = -w for a missing neighbour q. */
static void system_times(const imputation *s, const double *v, double *y)
{
    for (size_t i = 0; i < s->unknowns; i++) {
        uint32_t p = s->pixel[i];
        int64_t px = p % s->width, py = p / s->width;
        double acc = s->diagonal[i] * v[i];
        for (int n = 0; n < 8; n++) {
            int64_t nx = px + NEIGHBOUR_DX[n], ny = py + NEIGHBOUR_DY[n];
            if (nx < 0 || ny < 0 || nx >= s->width || ny >= s->height)
                continue;
            int64_t j = s->unknown[(size_t)ny * s->width + (size_t)nx];
            if (j >= 0)
                acc -= NEIGHBOUR_W[n] * v[j];
        }
        y[i] = acc;
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Solves channel c by conjugate gradients; img's known samples form b. */
static void solve_channel(imputation *s, float *img, uint32_t c)
{
    size_t n = s->unknowns;
    double known_sum = 0.0;
    size_t known = 0;
    for (size_t p = 0; p < (size_t)s->width * s->height; p++)
        if (!s->missing[p]) {
            known_sum += img[p * s->channels + c];
            known++;
        }
    double start = known_sum / (double)known;
    /* b_p = sum over known neighbours of w * value; r = b - A x0 */
    for (size_t i = 0; i < n; i++)
        s->x[i] = start;
    system_times(s, s->x, s->q);
    double b_norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = s->pixel[i];
        int64_t px = p % s->width, py = p / s->width;
        double b = 0.0;
        for (int k = 0; k < 8; k++) {
            int64_t nx = px + NEIGHBOUR_DX[k], ny = py + NEIGHBOUR_DY[k];
            if (nx < 0 || ny < 0 || nx >= s->width || ny >= s->height)
                continue;
            size_t q = (size_t)ny * s->width + (size_t)nx;
            if (!s->missing[q])
                b += NEIGHBOUR_W[k] * img[q * s->channels + c];
        }
        b_norm += b * b;
        s->r[i] = b - s->q[i];
        s->d[i] = s->r[i];
    }
    double tolerance = CG_TOLERANCE * CG_TOLERANCE * (b_norm > 0 ? b_norm : 1.0); /* squared */
    double rr = dot(s->r, s->r, n);
    size_t max_iterations = 4 * ((size_t)s->width + s->height) + 100;
    for (size_t it = 0; it < max_iterations && rr > tolerance; it++) {
        system_times(s, s->d, s->q);
        double alpha = rr / dot(s->d, s->q, n);
        for (size_t i = 0; i < n; i++) {
            s->x[i] += alpha * s->d[i];
            s->r[i] -= alpha * s->q[i];
        }
        double rr_next = dot(s->r, s->r, n);
        double beta = rr_next / rr;
        for (size_t i = 0; i < n; i++)
            s->d[i] = s->r[i] + beta * s->d[i];
        rr = rr_next;
    }
    for (size_t i = 0; i < n; i++)
        img[(size_t)s->pixel[i] * s->channels + c] = (float)s->x[i];
}

fx_status fx__faith_impute(float *img, uint32_t width, uint32_t height, uint32_t channels,
                           const uint8_t *missing, float noise, uint64_t *rng)
{
    size_t pixels = (size_t)width * height;
    imputation s = {width, height, channels, missing, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    for (size_t p = 0; p < pixels; p++)
        s.unknowns += missing[p] != 0;
    if (s.unknowns == 0)
        return FX_OK;
    if (s.unknowns == pixels)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "faithfulness: ROAD imputation with every pixel removed "
                         "has no known pixel to impute from");
    s.pixel = malloc(s.unknowns * sizeof *s.pixel);
    s.unknown = malloc(pixels * sizeof *s.unknown);
    s.diagonal = malloc(s.unknowns * sizeof *s.diagonal);
    double *vectors = malloc(4 * s.unknowns * sizeof *vectors);
    if (!s.pixel || !s.unknown || !s.diagonal || !vectors) {
        free(s.pixel);
        free(s.unknown);
        free(s.diagonal);
        free(vectors);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "faithfulness: cannot allocate the imputation of %zu pixels",
                         s.unknowns);
    }
    s.x = vectors;
    s.r = vectors + s.unknowns;
    s.d = vectors + 2 * s.unknowns;
    s.q = vectors + 3 * s.unknowns;
    size_t i = 0;
    for (size_t p = 0; p < pixels; p++) {
        s.unknown[p] = missing[p] ? (int64_t)i : -1;
        if (!missing[p]) {
            continue;
        }
        s.pixel[i] = (uint32_t)p;
        int64_t px = (int64_t)(p % width), py = (int64_t)(p / width);
        double w = 0.0;
        for (int k = 0; k < 8; k++) {
            int64_t nx = px + NEIGHBOUR_DX[k], ny = py + NEIGHBOUR_DY[k];
            if (nx >= 0 && ny >= 0 && nx < width && ny < height)
                w += NEIGHBOUR_W[k];
        }
        s.diagonal[i++] = w;
    }
    for (uint32_t c = 0; c < channels; c++)
        solve_channel(&s, img, c);
    /* Noise, then [0,1]: the models' input contract (the weighted means of
     * [0,1] samples are inside it; only the noise can leave it). */
    for (size_t u = 0; u < s.unknowns; u++)
        for (uint32_t c = 0; c < channels; c++) {
            float *v = &img[(size_t)s.pixel[u] * channels + c];
            if (noise > 0)
                *v += (float)(noise * fx__faith_normal(rng));
            *v = *v < 0.0f ? 0.0f : *v > 1.0f ? 1.0f : *v;
        }
    free(s.pixel);
    free(s.unknown);
    free(s.diagonal);
    free(vectors);
    return FX_OK;
}

/* ---- The metrics ------------------------------------------------------- */

void fx_faithfulness_options_init(fx_faithfulness_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->steps = 32;
    opts->deletion_baseline = FX_DELETION_ZERO;
    opts->blur_sigma = 5.0f;
    opts->road_steps = 10;
    opts->road_noise = 0.01f;
    opts->seed = 0;
    opts->batch_size = 16;
}

/* The perturbed images, in the order of the scores array. */
enum job_kind { JOB_IMAGE, JOB_EXPLANATION, JOB_DELETION, JOB_INSERTION, JOB_MORF, JOB_LERF };

typedef struct job {
    enum job_kind kind;
    uint32_t k; /* step */
} job;

typedef struct metric_run {
    fx_faithfulness_options o;
    uint32_t width, height, channels;
    size_t pixels, samples;
    float *image;    /* tight copy of the input */
    const fx_image *heatmap;
    float *heat;     /* tight copy of the map */
    float *blurred;
    uint32_t *order;
    uint8_t *missing;
    uint64_t rng;
    job *jobs;
    size_t job_count;
} metric_run;

static void copy_pixel(float *dst, const float *src, size_t p, uint32_t channels)
{
    memcpy(dst + p * channels, src + p * channels, channels * sizeof *dst);
}

static fx_status build_job(metric_run *m, job j, float *dst)
{
    switch (j.kind) {
    case JOB_IMAGE:
        memcpy(dst, m->image, m->samples * sizeof *dst);
        return FX_OK;
    case JOB_EXPLANATION:
        for (size_t p = 0; p < m->pixels; p++)
            for (uint32_t c = 0; c < m->channels; c++)
                dst[p * m->channels + c] = m->image[p * m->channels + c] * m->heat[p];
        return FX_OK;
    case JOB_DELETION: {
        memcpy(dst, m->image, m->samples * sizeof *dst);
        size_t n = fx__faith_step_pixels(j.k, m->o.steps, m->pixels);
        for (size_t i = 0; i < n; i++) {
            if (m->o.deletion_baseline == FX_DELETION_BLUR)
                copy_pixel(dst, m->blurred, m->order[i], m->channels);
            else
                memset(dst + (size_t)m->order[i] * m->channels, 0, m->channels * sizeof *dst);
        }
        return FX_OK;
    }
    case JOB_INSERTION: {
        memcpy(dst, m->blurred, m->samples * sizeof *dst);
        size_t n = fx__faith_step_pixels(j.k, m->o.steps, m->pixels);
        for (size_t i = 0; i < n; i++)
            copy_pixel(dst, m->image, m->order[i], m->channels);
        return FX_OK;
    }
    case JOB_MORF:
    case JOB_LERF: {
        memcpy(dst, m->image, m->samples * sizeof *dst);
        memset(m->missing, 0, m->pixels);
        size_t n = fx__faith_step_pixels(j.k, m->o.road_steps, m->pixels);
        for (size_t i = 0; i < n; i++)
            m->missing[m->order[j.kind == JOB_MORF ? i : m->pixels - 1 - i]] = 1;
        return fx__faith_impute(dst, m->width, m->height, m->channels, m->missing, m->o.road_noise, &m->rng);
    }
    }
    return fx__error(FX_ERR_INTERNAL, "faithfulness: unknown perturbation %d", (int)j.kind);
}

static const char *job_name(enum job_kind kind)
{
    static const char *const names[] = {"the image", "the explanation map", "deletion", "insertion",
                                        "ROAD MoRF", "ROAD LeRF"};
    return names[kind];
}

/* Builds the jobs in batches and scores them into scores[job_count]. */
static fx_status score_jobs(metric_run *m, fx_score_batch_fn score, void *user, float *scores)
{
    size_t batch = m->o.batch_size < m->job_count ? m->o.batch_size : m->job_count;
    float *buffer = malloc(batch * m->samples * sizeof *buffer);
    fx_image *images = calloc(batch, sizeof *images);
    if (!buffer || !images) {
        free(buffer);
        free(images);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "faithfulness: cannot allocate a batch of %zu images of %ux%ux%u",
                         batch, m->width, m->height, m->channels);
    }
    fx_status st = FX_OK;
    for (size_t first = 0; first < m->job_count && st == FX_OK; first += batch) {
        size_t n = m->job_count - first < batch ? m->job_count - first : batch;
        for (size_t b = 0; b < n && st == FX_OK; b++) {
            float *dst = buffer + b * m->samples;
            st = build_job(m, m->jobs[first + b], dst);
            images[b] = (fx_image){dst, (size_t)m->width * m->channels * sizeof(float), m->width, m->height,
                                   m->channels, FX_PIXEL_F32};
        }
        if (st == FX_OK)
            st = score(user, images, n, scores + first);
        for (size_t b = 0; b < n && st == FX_OK; b++) {
            float s = scores[first + b];
            if (!(s >= 0.0f && s <= 1.0f)) {
                job j = m->jobs[first + b];
                st = fx__error(FX_ERR_NUMERIC, "faithfulness: the score callback returned %g for %s (step %u); "
                               "scores are probabilities in [0,1]", (double)s, job_name(j.kind), j.k);
            }
        }
    }
    free(buffer);
    free(images);
    return st;
}

static fx_status check_inputs(const fx_image *image, const fx_image *heatmap, fx_score_batch_fn score,
                              const fx_faithfulness_options *o, const fx_faithfulness *out)
{
    const char *fn = "fx_faithfulness_compute";
    if (!score || !out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !score ? "score" : "out");
    if (out->struct_size < sizeof out->struct_size)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: out->struct_size %u is too small; set it to "
                         "sizeof(fx_faithfulness)", fn, out->struct_size);
    fx_status st = fx__image_expect(image, "image", 0, FX_PIXEL_F32);
    if (st == FX_OK)
        st = fx__image_expect(heatmap, "heatmap", 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    if (image->width != heatmap->width || image->height != heatmap->height)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: heatmap is %ux%u, image %ux%u; they must be the same size",
                         fn, heatmap->width, heatmap->height, image->width, image->height);
    if (o->steps < 1 || o->steps > STEPS_MAX)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: steps %u is out of range; valid: 1..%u", fn, o->steps,
                         STEPS_MAX);
    if (o->deletion_baseline != FX_DELETION_ZERO && o->deletion_baseline != FX_DELETION_BLUR)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: deletion_baseline %d is unknown; valid: FX_DELETION_ZERO "
                         "(0), FX_DELETION_BLUR (1)", fn, o->deletion_baseline);
    if (!(o->blur_sigma > 0.0f && o->blur_sigma <= 100.0f))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: blur_sigma %g is out of range; valid: (0, 100] pixels", fn,
                         (double)o->blur_sigma);
    if (o->road_steps < 2 || o->road_steps > ROAD_STEPS_MAX)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: road_steps %u is out of range; valid: 2..%u", fn,
                         o->road_steps, ROAD_STEPS_MAX);
    if (!(o->road_noise >= 0.0f && o->road_noise <= 1.0f))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: road_noise %g is out of range; valid: [0, 1]", fn,
                         (double)o->road_noise);
    if (o->batch_size < 1 || o->batch_size > BATCH_MAX)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: batch_size %u is out of range; valid: 1..%u", fn,
                         o->batch_size, BATCH_MAX);
    return FX_OK;
}

/* Tight copies of image (checked to lie in [0,1]) and heatmap. */
static fx_status copy_inputs(metric_run *m, const fx_image *image, const fx_image *heatmap)
{
    for (uint32_t y = 0; y < m->height; y++) {
        const float *row = (const float *)((const uint8_t *)image->data + y * image->stride);
        const float *heat_row = (const float *)((const uint8_t *)heatmap->data + y * heatmap->stride);
        for (size_t i = 0; i < (size_t)m->width * m->channels; i++) {
            if (!(row[i] >= 0.0f && row[i] <= 1.0f))
                return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_faithfulness_compute: image sample %g at (%zu, %u) "
                                 "is outside [0,1]; convert the image with fx_image_to_unit", (double)row[i],
                                 i / m->channels, y);
            m->image[(size_t)y * m->width * m->channels + i] = row[i];
        }
        memcpy(m->heat + (size_t)y * m->width, heat_row, m->width * sizeof *m->heat);
    }
    return FX_OK;
}

static void plan_jobs(metric_run *m)
{
    size_t n = 0;
    m->jobs[n++] = (job){JOB_IMAGE, 0};
    m->jobs[n++] = (job){JOB_EXPLANATION, 0};
    for (uint32_t k = 1; k <= m->o.steps; k++)
        m->jobs[n++] = (job){JOB_DELETION, k};
    for (uint32_t k = 0; k < m->o.steps; k++)
        m->jobs[n++] = (job){JOB_INSERTION, k};
    for (uint32_t k = 1; k < m->o.road_steps; k++)
        m->jobs[n++] = (job){JOB_MORF, k};
    for (uint32_t k = 1; k < m->o.road_steps; k++)
        m->jobs[n++] = (job){JOB_LERF, k};
    m->job_count = n;
}

/* The metrics from the scores, in plan_jobs' order. */
static fx_faithfulness metrics_from_scores(const metric_run *m, const float *s, float *curve)
{
    fx_faithfulness f;
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    uint32_t steps = m->o.steps, road = m->o.road_steps;
    float y = s[0], o = s[1];
    f.score = y;
    f.explanation_score = o;
    f.average_drop = y > 0.0f ? (float)(fmax(0.0, (double)y - o) / y * 100.0) : 0.0f;
    f.increase = o > y;
    const float *deletion = s + 2, *insertion = s + 2 + steps, *morf = s + 2 + 2 * steps;
    const float *lerf = morf + (road - 1);
    curve[0] = y; /* nothing deleted: the image */
    memcpy(curve + 1, deletion, steps * sizeof *curve);
    f.deletion_auc = (float)fx__faith_auc(curve, steps + 1);
    memcpy(curve, insertion, steps * sizeof *curve);
    curve[steps] = y; /* everything inserted: the image */
    f.insertion_auc = (float)fx__faith_auc(curve, steps + 1);
    double morf_drop = 0.0, lerf_drop = 0.0;
    for (uint32_t k = 0; k + 1 < road; k++) {
        morf_drop += (double)y - morf[k];
        lerf_drop += (double)y - lerf[k];
    }
    f.road_morf = (float)(morf_drop / (road - 1));
    f.road_lerf = (float)(lerf_drop / (road - 1));
    return f;
}

static void run_free(metric_run *m)
{
    free(m->image);
    free(m->heat);
    free(m->blurred);
    free(m->order);
    free(m->missing);
    free(m->jobs);
}

fx_status fx_faithfulness_compute(const fx_image *image, const fx_image *heatmap, fx_score_batch_fn score,
                                  void *user, const fx_faithfulness_options *opts, fx_faithfulness *out)
{
    metric_run m;
    memset(&m, 0, sizeof m);
    fx_faithfulness_options_init(&m.o);
    fx_status st = fx__options_merge(&m.o, sizeof m.o, opts, "fx_faithfulness_compute: opts");
    if (st == FX_OK)
        st = check_inputs(image, heatmap, score, &m.o, out);
    if (st != FX_OK)
        return st;
    m.width = image->width;
    m.height = image->height;
    m.channels = image->channels;
    m.pixels = (size_t)m.width * m.height;
    m.samples = m.pixels * m.channels;
    m.rng = m.o.seed;
    m.image = malloc(m.samples * sizeof *m.image);
    m.heat = malloc(m.pixels * sizeof *m.heat);
    m.blurred = malloc(m.samples * sizeof *m.blurred);
    m.order = malloc(m.pixels * sizeof *m.order);
    m.missing = malloc(m.pixels);
    m.jobs = malloc((2 + 2 * (size_t)m.o.steps + 2 * (size_t)m.o.road_steps) * sizeof *m.jobs);
    float *scores = malloc((2 + 2 * (size_t)m.o.steps + 2 * (size_t)m.o.road_steps) * sizeof *scores);
    float *curve = malloc(((size_t)m.o.steps + 1) * sizeof *curve);
    if (!m.image || !m.heat || !m.blurred || !m.order || !m.missing || !m.jobs || !scores || !curve)
        st = fx__error(FX_ERR_OUT_OF_MEMORY, "fx_faithfulness_compute: cannot allocate the buffers of a %ux%u image",
                       m.width, m.height);
    if (st == FX_OK)
        st = copy_inputs(&m, image, heatmap);
    if (st == FX_OK)
        st = fx__faith_rank(m.heat, m.pixels, m.order);
    if (st == FX_OK)
        st = fx__faith_blur(m.image, m.width, m.height, m.channels, m.o.blur_sigma, m.blurred);
    if (st == FX_OK) {
        plan_jobs(&m);
        st = score_jobs(&m, score, user, scores);
    }
    if (st == FX_OK) {
        fx_faithfulness f = metrics_from_scores(&m, scores, curve);
        size_t size = out->struct_size < sizeof f ? out->struct_size : sizeof f;
        uint32_t caller_size = out->struct_size;
        memcpy(out, &f, size);
        out->struct_size = caller_size;
    }
    free(scores);
    free(curve);
    run_free(&m);
    return st;
}

fx_status fx_faithfulness_summarize(const fx_faithfulness *items, size_t n, fx_faithfulness_summary *out)
{
    if (!items || !out || n == 0 || n > UINT32_MAX)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_faithfulness_summarize: %s",
                         !items ? "items is NULL" : !out ? "out is NULL" : n == 0 ? "n is 0" : "n is over 2^32 - 1");
    if (out->struct_size < sizeof(fx_faithfulness_summary))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_faithfulness_summarize: out->struct_size %u is smaller than "
                         "sizeof(fx_faithfulness_summary) %zu", out->struct_size, sizeof(fx_faithfulness_summary));
    double drop = 0, increase = 0, deletion = 0, insertion = 0, morf = 0, lerf = 0;
    for (size_t i = 0; i < n; i++) {
        drop += items[i].average_drop;
        increase += items[i].increase != 0;
        deletion += items[i].deletion_auc;
        insertion += items[i].insertion_auc;
        morf += items[i].road_morf;
        lerf += items[i].road_lerf;
    }
    double count = (double)n;
    out->images = (uint32_t)n;
    out->average_drop = (float)(drop / count);
    out->increase_in_confidence = (float)(100.0 * increase / count);
    out->deletion_auc = (float)(deletion / count);
    out->insertion_auc = (float)(insertion / count);
    out->road_morf = (float)(morf / count);
    out->road_lerf = (float)(lerf / count);
    return FX_OK;
}
