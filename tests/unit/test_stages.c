/* lib/stages.c: the ordered three-stage pipeline under fx_pipeline_run, fxcam
 * batch and evaluate. Each stage must see the units in the order load() made
 * them; at most four units exist at once (stages.h: one loaded ahead, one
 * computing, one waiting for the writer, one being written); after compute()
 * fails nothing more is computed and every loaded unit still reaches write()
 * exactly once (owned, freed there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "stages.h"

#define UNITS 40

typedef struct unit {
    int id;
    bool computed;
} unit;

typedef struct trace {
    pthread_mutex_t lock;
    int made, limit;
    int alive, max_alive;
    int computed[UNITS], computed_count;
    int written[UNITS], written_count;
    bool written_computed[UNITS];
    int fail_at;          /* compute() returns false for this id (-1: never) */
    long load_ns, compute_ns, write_ns;
} trace;

static void pause_ns(long ns)
{
    struct timespec t = {0, ns};
    if (ns > 0)
        nanosleep(&t, NULL);
}

static void *load(void *user)
{
    trace *t = user;
    pause_ns(t->load_ns);
    pthread_mutex_lock(&t->lock);
    unit *u = NULL;
    if (t->made < t->limit) {
        u = calloc(1, sizeof *u);
        u->id = t->made++;
        t->alive++;
        t->max_alive = t->alive > t->max_alive ? t->alive : t->max_alive;
    }
    pthread_mutex_unlock(&t->lock);
    return u;
}

static bool compute(void *user, void *p)
{
    trace *t = user;
    unit *u = p;
    pause_ns(t->compute_ns);
    u->computed = true;
    t->computed[t->computed_count++] = u->id; /* this thread only */
    return u->id != t->fail_at;
}

static void write_unit(void *user, void *p)
{
    trace *t = user;
    unit *u = p;
    pause_ns(t->write_ns);
    pthread_mutex_lock(&t->lock);
    t->written_computed[t->written_count] = u->computed;
    t->written[t->written_count++] = u->id;
    t->alive--;
    pthread_mutex_unlock(&t->lock);
    free(u);
}

static void run(trace *t, bool overlap)
{
    pthread_mutex_init(&t->lock, NULL);
    fx__stages s = {t, load, compute, write_unit};
    fx__stages_run(&s, overlap);
    pthread_mutex_destroy(&t->lock);
}

static void expect_in_order(const trace *t, int n)
{
    assert_int_equal(t->written_count, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(t->written[i], i);
    }
    for (int i = 0; i < t->computed_count; i++) {
        assert_int_equal(t->computed[i], i);
    }
    assert_int_equal(t->alive, 0);
}

/* Every unit computed and written, in load order, one step after another and
 * overlapped, whichever stage is the slow one. */
static void test_order(void **state)
{
    (void)state;
    const long slow[3][3] = {{200000, 0, 0}, {0, 200000, 0}, {0, 0, 200000}};
    for (int overlap = 0; overlap < 2; overlap++) {
        for (int k = 0; k < 3; k++) {
            trace t = {.limit = UNITS, .fail_at = -1, .load_ns = slow[k][0], .compute_ns = slow[k][1],
                       .write_ns = slow[k][2]};
            run(&t, overlap);
            expect_in_order(&t, UNITS);
            assert_int_equal(t.computed_count, UNITS);
        }
    }
}

/* A slow writer backs the queue up: at most four units alive (stages.h), and
 * more than one (the stages did overlap); one step after another, one. */
static void test_bounded(void **state)
{
    (void)state;
    trace t = {.limit = UNITS, .fail_at = -1, .write_ns = 2000000};
    run(&t, true);
    expect_in_order(&t, UNITS);
    assert_true(t.max_alive <= 4);
    assert_true(t.max_alive >= 3);
    trace serial = {.limit = UNITS, .fail_at = -1, .write_ns = 100000};
    run(&serial, false);
    assert_int_equal(serial.max_alive, 1);
}

/* compute() fails on unit 5: no later unit is computed, nothing more is
 * loaded beyond the few already ahead, and every loaded unit is written once
 * (the later ones marked not computed). */
static void test_halt(void **state)
{
    (void)state;
    for (int overlap = 0; overlap < 2; overlap++) {
        trace t = {.limit = UNITS, .fail_at = 5, .load_ns = 100000};
        run(&t, overlap);
        assert_int_equal(t.computed_count, 6);
        assert_true(t.made <= 6 + 2);
        expect_in_order(&t, t.made);
        for (int i = 0; i < t.written_count; i++) {
            assert_int_equal(t.written_computed[i], i <= 5);
        }
    }
}

/* Nothing to load: no call of compute() or write(). */
static void test_empty(void **state)
{
    (void)state;
    for (int overlap = 0; overlap < 2; overlap++) {
        trace t = {.limit = 0, .fail_at = -1};
        run(&t, overlap);
        assert_int_equal(t.computed_count, 0);
        assert_int_equal(t.written_count, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_halt),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests_name("stages", tests, NULL, NULL);
}
