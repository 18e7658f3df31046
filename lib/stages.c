/* The ordered pipeline of stages.h: two one-slot hand-overs between three
 * threads, so that memory stays bounded by a few units whatever the number
 * of inputs, and every stage sees the units in the order they were loaded. */
#include "stages.h"

#include <pthread.h>
#include <stddef.h>

/* A hand-over of at most one unit from one stage to the next. */
typedef struct slot {
    void *unit;
    bool closed; /* the producer has finished */
} slot;

typedef struct pipeline_run {
    const fx__stages *p;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    slot loaded;   /* reader -> this thread */
    slot computed; /* this thread -> writer */
    bool halt;     /* a fatal error: load no more */
} pipeline_run;

/* Waits until the slot is free, then fills it; false when halted first
 * (the unit is then not taken). */
static bool put(pipeline_run *r, slot *s, void *unit, bool halt_applies)
{
    pthread_mutex_lock(&r->lock);
    while (s->unit && !(halt_applies && r->halt)) {
        pthread_cond_wait(&r->changed, &r->lock);
    }
    bool placed = !(halt_applies && r->halt);
    if (placed) {
        s->unit = unit;
        pthread_cond_broadcast(&r->changed);
    }
    pthread_mutex_unlock(&r->lock);
    return placed;
}

/* The next unit of the slot, or NULL once it is closed and empty. */
static void *take(pipeline_run *r, slot *s)
{
    pthread_mutex_lock(&r->lock);
    while (!s->unit && !s->closed) {
        pthread_cond_wait(&r->changed, &r->lock);
    }
    void *unit = s->unit;
    s->unit = NULL;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return unit;
}

static void close_slot(pipeline_run *r, slot *s)
{
    pthread_mutex_lock(&r->lock);
    s->closed = true;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

/* Waits until the slot is empty (the last unit was taken), so that the next
 * unit is loaded only while the previous one computes: one unit ahead. */
static bool wait_empty(pipeline_run *r, slot *s)
{
    pthread_mutex_lock(&r->lock);
    while (s->unit && !r->halt) {
        pthread_cond_wait(&r->changed, &r->lock);
    }
    bool go = !r->halt;
    pthread_mutex_unlock(&r->lock);
    return go;
}

static void halt(pipeline_run *r)
{
    pthread_mutex_lock(&r->lock);
    r->halt = true;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static void *reader(void *arg)
{
    pipeline_run *r = arg;
    while (wait_empty(r, &r->loaded)) {
        void *unit = r->p->load(r->p->user);
        if (!unit) {
            break;
        }
        if (!put(r, &r->loaded, unit, false)) {
            break;
        }
    }
    close_slot(r, &r->loaded);
    return NULL;
}

static void *writer(void *arg)
{
    pipeline_run *r = arg;
    void *unit;
    while ((unit = take(r, &r->computed)) != NULL) {
        r->p->write(r->p->user, unit);
    }
    return NULL;
}

static void run_serial(const fx__stages *p)
{
    void *unit;
    bool go = true;
    while (go && (unit = p->load(p->user)) != NULL) {
        go = p->compute(p->user, unit);
        p->write(p->user, unit);
    }
}

void fx__stages_run(const fx__stages *p, bool overlap)
{
    pipeline_run r = {.p = p};
    pthread_t read_thread, write_thread;
    if (!overlap || pthread_mutex_init(&r.lock, NULL) != 0) {
        run_serial(p);
        return;
    }
    if (pthread_cond_init(&r.changed, NULL) != 0) {
        pthread_mutex_destroy(&r.lock);
        run_serial(p);
        return;
    }
    bool reading = pthread_create(&read_thread, NULL, reader, &r) == 0;
    bool writing = reading && pthread_create(&write_thread, NULL, writer, &r) == 0;
    if (!writing) {
        /* No threads to be had: the same work, one step after another,
         * starting with the unit the reader may have loaded. */
        bool go = true;
        if (reading) {
            halt(&r);
            pthread_join(read_thread, NULL);
            void *unit = r.loaded.unit;
            if (unit) {
                go = p->compute(p->user, unit);
                p->write(p->user, unit);
            }
        }
        pthread_cond_destroy(&r.changed);
        pthread_mutex_destroy(&r.lock);
        if (go) {
            run_serial(p);
        }
        return;
    }
    void *unit;
    bool go = true;
    while ((unit = take(&r, &r.loaded)) != NULL) {
        if (go && !p->compute(p->user, unit)) {
            go = false;
            halt(&r);
        }
        put(&r, &r.computed, unit, false);
    }
    close_slot(&r, &r.computed);
    pthread_join(read_thread, NULL);
    pthread_join(write_thread, NULL);
    pthread_cond_destroy(&r.changed);
    pthread_mutex_destroy(&r.lock);
}
