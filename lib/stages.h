/* An ordered three-stage pipeline: load the next unit of work, compute the
 * current one, write the previous one. Units pass through each stage in the
 * order load() made them, one at a time per stage. Used by fx_pipeline_run
 * (lib/pipeline.c) and by fxcam batch and evaluate (the CLI compiles this
 * file in, as it does atomic_file.c: its symbols are hidden in libfxcam).
 * Internal. */
#ifndef FX_STAGES_H
#define FX_STAGES_H

#include <stdbool.h>

typedef struct fx__stages {
    void *user;
    /* The next unit, or NULL when there is none (or the run is stopping).
     * Runs on the reading thread. */
    void *(*load)(void *user);
    /* Runs on the calling thread, for every unit until it returns false (a
     * fatal error): from then on nothing more is loaded, and the units
     * already loaded go to write() without compute() (the unit records
     * whether it was computed). */
    bool (*compute)(void *user, void *unit);
    /* Runs on the writing thread; owns and frees the unit. */
    void (*write)(void *user, void *unit);
} fx__stages;

/* overlap false: load, compute, write, one unit after another on this
 * thread. true: one reading and one writing thread beside this one; at most
 * one unit is loaded ahead, one waits for the writer and one is being
 * written, so at most four units exist at once (load() may bound them
 * further: fxcam batch keeps their bytes within --batch-memory). When no
 * thread can be started the same work runs one step after another. */
void fx__stages_run(const fx__stages *p, bool overlap);

#endif
