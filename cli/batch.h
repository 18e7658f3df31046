/* Internal to `fxcam batch`: the items of a run (batch.c collects and
 * computes them; batch_summary.c reads the previous summary for --resume and
 * writes summary.txt / summary.csv). */
#ifndef FXCAM_CLI_BATCH_H
#define FXCAM_CLI_BATCH_H

#include "annotations.h"

#include <pthread.h>
#include <sys/types.h>

enum item_state {
    ITEM_PENDING,
    ITEM_DONE,
    ITEM_FAILED,
    ITEM_RESUMED, /* output exists; skipped (--resume) */
    ITEM_IGNORED,
    ITEM_EARLIER  /* not in this run; its row comes from the previous summary */
};

/* The status of an earlier ok row beyond --max-images whose output file is gone. */
#define MISSING_OUTPUT_NOTE "not processed: the output of the earlier run is missing (rerun with --resume " \
                            "and a --max-images that includes it)"

/* The 7 columns of summary.csv, in order. */
enum { COL_FILE, COL_CLASS, COL_CONFIDENCE, COL_PEAK_X, COL_PEAK_Y, COL_OUTPUT, COL_STATUS, COL_COUNT };
#define BATCH_CSV_HEADER "file,predicted_class,confidence,peak_x,peak_y,output,status"

typedef struct summary_row {
    char *field[COL_COUNT];
} summary_row;

/* Rows of a previous summary.csv, sorted by file and (a second index) by
 * output. */
typedef struct previous_summary {
    summary_row *rows;
    size_t count;
    summary_row **by_output;
} previous_summary;

typedef struct batch_item {
    char *rel;      /* path below --image-dir, e.g. "left/wrist.png" */
    char *input;
    char *output;
    enum item_state state;
    char *reason;   /* why it failed or was skipped */
    bool whole_name; /* an input found by content whose last dot does not start an image extension
                      * ("1.2.840.10008.5"): its output name keeps the whole name */
    int32_t predicted;
    float confidence;
    uint32_t peak_x, peak_y;
    const summary_row *earlier; /* the previous run's row of this file, when carried over */
    bool output_missing; /* ITEM_EARLIER: its row said ok, but that output file no longer exists */
} batch_item;

typedef struct item_list {
    batch_item *items;
    size_t count;
    size_t capacity;
} item_list;

typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id;

typedef struct batch_run {
    const cli_settings *s;
    fx_model *model;
    fx_gradcam_options opts;
    int32_t method;
    dir_id out_dir;       /* not descended into */
    bool same_dir;        /* outputs land among the inputs */
    char *suffix;         /* "_gradcam.png", "_gradcam_heatmap.png", ... */
    item_list pngs;
    item_list ignored;
    item_list linked_dirs; /* symlinks to folders, walked after the real tree */
    dir_id *visited;      /* folders already collected, sorted */
    size_t visited_count;
    cli_annotations boxes;
    bool has_boxes;
    const struct cli_target_classes *targets; /* --target-classes, or NULL */
    previous_summary previous;
    cli_progress progress;
    const char *layer;    /* from the first result */
    double compute_seconds; /* thread time of each stage (summary.txt's stages: line) */
    double read_seconds, write_seconds;
    size_t next, limit;   /* the reading stage's next item; items below limit are processed */
    fx_status fatal;      /* the status that stopped every image (a wrong layer), or FX_OK */
    pthread_mutex_t stop_lock;
    char *stopped;        /* why the run stopped early (a full disk), or NULL; under stop_lock */
    uint64_t in_flight;   /* bytes of the passes read and not yet written; under stop_lock */
    pthread_cond_t memory_freed;
} batch_run;

/* Reads <output-dir>/summary.csv when it exists and has fxcam's header;
 * prints a note and keeps nothing otherwise. */
void batch_read_previous(batch_run *run);
/* --resume: false (after printing which option differs and what to do) when
 * the previous summary.txt's options: line differs from this run's
 * (cli_options_match, leaving out --max-images); true when there is no
 * previous summary (an interrupted run). */
bool batch_check_previous_options(const batch_run *run);
void batch_free_previous(previous_summary *p);
/* Fills an empty p with the rows of a summary.csv text (its header line
 * skipped, not checked), unsorted; returns how many records were not 7 fields (left
 * out). Used by `fxcam merge` (cli/merge.c). */
size_t batch_parse_summary_rows(previous_summary *p, const char *text, size_t size);
const summary_row *batch_previous_by_file(const previous_summary *p, const char *file);
const summary_row *batch_previous_by_output(const previous_summary *p, const char *output);
/* Writes summary.txt and summary.csv; returns the command's exit status. */
int batch_write_summaries(batch_run *run, double total_seconds, size_t processed_limit);

#endif
