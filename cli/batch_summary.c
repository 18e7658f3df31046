/* summary.txt and summary.csv of `fxcam batch`, and, for --resume, the rows
 * of the previous summary.csv, so that the summaries describe every image of
 * the folder, not only those of the last run. */
#include "batch.h"
#include "lib/atomic_file.h"
#include "shard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EARLIER_OK "ok (earlier run)"

/* ---- The previous summary.csv ------------------------------------------- */

static void *grow(void *p, size_t count, size_t size)
{
    void *q = realloc(p, count * size);
    if (!q) {
        fputs("fxcam batch: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    return q;
}

/* One CSV record (RFC 4180: quoted fields, "" for a quote, newlines inside
 * quotes) from *p; advances *p past it. Returns the number of fields, up to
 * max; fields are malloc'ed. */
static size_t parse_record(const char **p, const char *end, char **fields, size_t max)
{
    size_t n = 0;
    const char *c = *p;
    for (;;) {
        cli_text field = {0};
        if (c < end && *c == '"') {
            for (c++; c < end; c++) {
                if (*c == '"' && c + 1 < end && c[1] == '"') {
                    cli_text_printf(&field, "\"");
                    c++;
                } else if (*c == '"') {
                    c++;
                    break;
                } else {
                    cli_text_printf(&field, "%c", *c);
                }
            }
        }
        while (c < end && *c != ',' && *c != '\n') {
            if (*c != '\r') {
                cli_text_printf(&field, "%c", *c);
            }
            c++;
        }
        char *text = field.data ? field.data : cli_strdup_printf("%s", "");
        if (n < max) {
            fields[n] = text;
        } else {
            free(text);
        }
        n++;
        if (c >= end || *c == '\n') {
            break;
        }
        c++; /* the comma */
    }
    *p = c < end ? c + 1 : end;
    return n;
}

static int compare_rows_by_file(const void *a, const void *b)
{
    return strcmp(((const summary_row *)a)->field[COL_FILE], ((const summary_row *)b)->field[COL_FILE]);
}

static int compare_rows_by_output(const void *a, const void *b)
{
    return strcmp((*(summary_row *const *)a)->field[COL_OUTPUT], (*(summary_row *const *)b)->field[COL_OUTPUT]);
}

/* Returns the number of records that are not 7 fields (left out). */
static size_t parse_rows(previous_summary *prev, const char *text, size_t size)
{
    size_t malformed = 0;
    const char *p = text, *end = text + size;
    char *fields[COL_COUNT];
    size_t n = parse_record(&p, end, fields, COL_COUNT);
    for (size_t i = 0; i < n && i < COL_COUNT; i++) {
        free(fields[i]);
    }
    size_t capacity = 0;
    while (p < end) {
        n = parse_record(&p, end, fields, COL_COUNT);
        if (n != COL_COUNT) {
            for (size_t i = 0; i < n && i < COL_COUNT; i++) {
                free(fields[i]);
            }
            malformed++;
            continue;
        }
        if (prev->count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            prev->rows = grow(prev->rows, capacity, sizeof *prev->rows);
        }
        memcpy(prev->rows[prev->count++].field, fields, sizeof fields);
    }
    return malformed;
}

size_t batch_parse_summary_rows(previous_summary *p, const char *text, size_t size)
{
    return parse_rows(p, text, size);
}

void batch_read_previous(batch_run *run)
{
    char *name = cli_shard_summary_name(run->s, "csv");
    char *path = cli_strdup_printf("%s/%s", run->s->output_dir, name);
    free(name);
    char *text = NULL;
    size_t size = 0;
    previous_summary *prev = &run->previous;
    if (!cli_read_regular_file(path, &text, &size)) {
        if (errno != ENOENT) {
            fprintf(stderr, "fxcam batch: note: cannot read the previous '%s' (%s); the summaries will describe "
                    "this run only\n", cli_name(path), errno == EINVAL ? "not a regular file" : strerror(errno));
        }
        free(path);
        return;
    }
    size_t header = strlen(BATCH_CSV_HEADER);
    if (size < header || memcmp(text, BATCH_CSV_HEADER, header) != 0) {
        fprintf(stderr, "fxcam batch: note: '%s' is not an fxcam batch summary; the summaries will describe "
                "this run only\n", cli_name(path));
    } else {
        parse_rows(prev, text, size);
    }
    free(text);
    free(path);
    if (prev->count) {
        qsort(prev->rows, prev->count, sizeof *prev->rows, compare_rows_by_file);
        prev->by_output = grow(NULL, prev->count, sizeof *prev->by_output);
        for (size_t i = 0; i < prev->count; i++) {
            prev->by_output[i] = &prev->rows[i];
        }
        qsort(prev->by_output, prev->count, sizeof *prev->by_output, compare_rows_by_output);
    }
}

bool batch_check_previous_options(const batch_run *run)
{
    const cli_settings *s = run->s;
    char *name = cli_shard_summary_name(s, "txt");
    char *path = cli_strdup_printf("%s/%s", s->output_dir, name);
    free(name);
    char *text = NULL;
    size_t size = 0;
    bool ok = true;
    if (!cli_read_regular_file(path, &text, &size)) {
        /* None: an interrupted run; its outputs are taken as they are. */
        free(path);
        return true;
    }
    char *previous = cli_summary_value(text, "options");
    free(text);
    if (!previous) {
        fprintf(stderr, "fxcam batch: note: '%s' has no options: line (written by an older fxcam); --resume "
                "cannot check that its outputs were computed with this run's options\n", cli_name(path));
    } else {
        /* --max-images may grow between runs: resuming is how a folder is
         * done in parts. */
        static const char *const may_change[] = {"max-images", NULL};
        char *current = cli_options_value(s);
        char why[1024];
        if (!cli_options_match(previous, current, may_change, why, sizeof why)) {
            cli_error(s->command, "--resume: the previous run in this folder (its '%s') used other options: "
                      "%s (previous vs now). Its outputs would be kept as if computed with this run's options: "
                      "give a new --output-dir, or drop --resume to recompute every image",
                      cli_name(path), cli_name(why));
            ok = false;
        }
        free(current);
        free(previous);
    }
    free(path);
    return ok;
}

void batch_free_previous(previous_summary *p)
{
    for (size_t i = 0; i < p->count; i++) {
        for (int c = 0; c < COL_COUNT; c++) {
            free(p->rows[i].field[c]);
        }
    }
    free(p->rows);
    free(p->by_output);
    memset(p, 0, sizeof *p);
}

const summary_row *batch_previous_by_file(const previous_summary *p, const char *file)
{
    summary_row key;
    key.field[COL_FILE] = (char *)file;
    return p->count ? bsearch(&key, p->rows, p->count, sizeof *p->rows, compare_rows_by_file) : NULL;
}

const summary_row *batch_previous_by_output(const previous_summary *p, const char *output)
{
    if (!p->count || !output[0]) {
        return NULL;
    }
    summary_row key;
    key.field[COL_OUTPUT] = (char *)output;
    const summary_row *k = &key;
    summary_row *const *found = bsearch(&k, p->by_output, p->count, sizeof *p->by_output, compare_rows_by_output);
    return found ? *found : NULL;
}

/* ---- Writing -------------------------------------------------------------- */

static bool carried_ok(const batch_item *item)
{
    return item->earlier && !item->output_missing && strncmp(item->earlier->field[COL_STATUS], "ok", 2) == 0;
}

static const char *state_text(const batch_item *item, char *buf, size_t size)
{
    if (carried_ok(item)) {
        return EARLIER_OK;
    }
    if (item->output_missing) {
        return MISSING_OUTPUT_NOTE;
    }
    switch (item->state) {
    case ITEM_DONE: return "ok";
    case ITEM_RESUMED: return "skipped: output exists (--resume)";
    case ITEM_PENDING: return "not processed";
    case ITEM_EARLIER: return item->earlier->field[COL_STATUS];
    default:
        snprintf(buf, size, "%s: %s", item->state == ITEM_IGNORED ? "ignored" : "failed", item->reason);
        return buf;
    }
}

static void append_csv_row(cli_text *csv, const batch_run *run, const batch_item *item)
{
    char buf[1200];
    cli_text_csv_field(csv, item->rel, false);
    if (item->state == ITEM_DONE) {
        cli_text_csv_field(csv, fx_model_class_name(run->model, (uint32_t)item->predicted), false);
        cli_text_printf(csv, "%.4f,%u,%u,", (double)item->confidence, item->peak_x, item->peak_y);
    } else if (item->earlier && !item->output_missing) {
        for (int c = COL_CLASS; c <= COL_PEAK_Y; c++) {
            cli_text_csv_field(csv, item->earlier->field[c], false);
        }
    } else {
        cli_text_printf(csv, ",,,,");
    }
    const char *output = item->state == ITEM_DONE || item->state == ITEM_RESUMED ? item->output
                         : item->earlier && !item->output_missing ? item->earlier->field[COL_OUTPUT] : "";
    cli_text_csv_field(csv, output, false);
    cli_text_csv_field(csv, state_text(item, buf, sizeof buf), true);
}

/* Per-class counts and summed confidences; index `classes` is "all". */
typedef struct class_stats {
    uint32_t classes;
    size_t *count;
    double *confidence;
} class_stats;

static void count_class(class_stats *st, int32_t c, double confidence)
{
    if (c >= 0 && (uint32_t)c < st->classes) {
        st->count[c]++;
        st->confidence[c] += confidence;
        st->count[st->classes]++;
        st->confidence[st->classes] += confidence;
    }
}

/* A carried row's class, by name (the model of this run names the classes). */
static void count_earlier(class_stats *st, const batch_run *run, const summary_row *row)
{
    for (uint32_t c = 0; c < st->classes; c++) {
        if (strcmp(fx_model_class_name(run->model, c), row->field[COL_CLASS]) == 0) {
            count_class(st, (int32_t)c, strtod(row->field[COL_CONFIDENCE], NULL));
            return;
        }
    }
}

/* False when the shard lines cannot be written (the model cannot be read
 * to identify it; the reason is printed). */
static bool write_header(cli_text *txt, const batch_run *run)
{
    const cli_settings *s = run->s;
    cli_text_printf(txt, "fxcam batch summary\n\n");
    cli_text_printf(txt, "model:        %s%s\n", s->model ? "" : "embedded ", cli_name(cli_model_name(s)));
    /* The refinements too: merge compares this line between shards. */
    char method[256];
    snprintf(method, sizeof method, "%s", cli_method_title(run->method));
    cli_append_refinements(s, method, sizeof method);
    cli_text_printf(txt, "method:       %s\n", method);
    cli_text_printf(txt, "layer:        %s\n",
                    cli_name(run->layer ? run->layer : (s->layer ? s->layer : "(default)")));
    cli_text_printf(txt, "device:       %s\n", fx_model_device(run->model));
    cli_text_printf(txt, "image dir:    %s%s\n", cli_name(s->image_dir), s->recursive ? " (recursive)" : "");
    cli_text_printf(txt, "output dir:   %s\n", cli_name(s->output_dir));
    if (!cli_shard_describe(s, txt)) {
        return false;
    }
    cli_text_printf(txt, "\n");
    return true;
}

static void write_class_table(cli_text *txt, const batch_run *run, const class_stats *st)
{
    cli_text_printf(txt, "%-20s %7s  %s\n", "predicted class", "images", "mean confidence");
    for (uint32_t c = 0; c <= st->classes; c++) {
        const char *name = c < st->classes ? cli_name(fx_model_class_name(run->model, c)) : "all";
        if (st->count[c]) {
            cli_text_printf(txt, "%-20s %7zu  %.1f%%\n", name, st->count[c],
                            100.0 * st->confidence[c] / (double)st->count[c]);
        } else {
            cli_text_printf(txt, "%-20s %7zu  -\n", name, st->count[c]);
        }
    }
}

int batch_write_summaries(batch_run *run, double total_seconds, size_t processed_limit)
{
    const cli_settings *s = run->s;
    const item_list *pngs = &run->pngs;
    size_t done = 0, failed = 0, resumed = 0, carried = 0, beyond = 0, missing = 0;
    class_stats st = {fx_model_result_class_count(run->model), NULL, NULL};
    st.count = calloc(st.classes + 1, sizeof *st.count);
    st.confidence = calloc(st.classes + 1, sizeof *st.confidence);
    if (!st.count || !st.confidence) {
        fputs("fxcam batch: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    for (size_t i = 0; i < pngs->count; i++) {
        const batch_item *item = &pngs->items[i];
        done += item->state == ITEM_DONE;
        failed += item->state == ITEM_FAILED;
        resumed += item->state == ITEM_RESUMED;
        carried += item->earlier != NULL && !item->output_missing;
        beyond += item->state == ITEM_EARLIER && !item->output_missing;
        missing += item->output_missing;
        if (item->state == ITEM_DONE) {
            count_class(&st, item->predicted, item->confidence);
        } else if (carried_ok(item)) {
            count_earlier(&st, run, item->earlier);
        }
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        failed += run->ignored.items[i].state == ITEM_FAILED;
    }
    size_t ignored = run->ignored.count;

    cli_text txt = {0};
    if (!write_header(&txt, run)) {
        cli_text_free(&txt);
        free(st.count);
        free(st.confidence);
        return CLI_EXIT_FAILURE;
    }
    /* The files counted are the rows of summary.csv (this run's plus the
     * earlier rows carried beyond --max-images), so that the two agree. */
    size_t listed = processed_limit + beyond + missing;
    cli_text_printf(&txt, "images:       %zu files (PNG, JPEG, DICOM), %zu processed, %zu failed, %zu skipped (output existed)\n",
                    listed, done, failed, resumed);
    if (listed != processed_limit) {
        cli_text_printf(&txt, "this run:     %zu files (--max-images); the other %zu rows come from the previous "
                        "summary\n", processed_limit, listed - processed_limit);
    }
    if (carried) {
        cli_text_printf(&txt, "earlier run:  %zu results of the previous summary included (%zu skipped now, %zu "
                        "beyond --max-images)\n", carried, carried - beyond, beyond);
    }
    if (missing) {
        cli_text_printf(&txt, "missing:      %zu results of the previous summary left out: their output files no "
                        "longer exist (listed as not processed)\n", missing);
    }
    if (run->stopped) {
        cli_text_printf(&txt, "stopped:      %s\n", cli_name(run->stopped));
    }
    cli_text_printf(&txt, "ignored:      %zu files that are not images fxcam reads, or not regular files (listed "
                    "below)\n\n", ignored);
    write_class_table(&txt, run, &st);
    char total[32];
    cli_format_duration(total_seconds, total, sizeof total);
    cli_text_printf(&txt, "\ntime:         %.2f s total (%s), %.3f s per processed image, batch size %u\n",
                    total_seconds, total, done ? total_seconds / (double)done : 0.0, s->batch_size);
    /* Wall time inside each stage (reading includes waiting for --batch-memory);
     * with --io-threads 1 the three overlap, so they may add up to more than the total. */
    cli_text_printf(&txt, "stages:       read + decode %.2f s, model %.2f s, figures + write %.2f s (--io-threads %u)\n",
                    run->read_seconds, run->compute_seconds, run->write_seconds, s->io_threads);
    cli_text_printf(&txt, "\nfailures:     %zu\n", failed);
    for (size_t i = 0; i < pngs->count; i++) {
        const batch_item *item = &pngs->items[i];
        if (item->state == ITEM_FAILED) {
            cli_text_printf(&txt, "  %s: %s\n", cli_name(item->rel), cli_name(item->reason));
        }
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        const batch_item *item = &run->ignored.items[i];
        if (item->state == ITEM_FAILED) {
            cli_text_printf(&txt, "  %s: %s\n", cli_name(item->rel), cli_name(item->reason));
        }
    }
    if (ignored) {
        cli_text_printf(&txt, "\nignored files:\n");
        for (size_t i = 0; i < run->ignored.count; i++) {
            cli_text_printf(&txt, "  %s: %s\n", cli_name(run->ignored.items[i].rel),
                            cli_name(run->ignored.items[i].reason));
        }
    }

    /* The CSV keeps names as they are (quoted): it is data, for programs. */
    cli_text csv = {0};
    cli_text_printf(&csv, "%s\n", BATCH_CSV_HEADER);
    for (size_t i = 0; i < pngs->count; i++) {
        if (i < processed_limit || pngs->items[i].state == ITEM_EARLIER) {
            append_csv_row(&csv, run, &pngs->items[i]);
        }
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        append_csv_row(&csv, run, &run->ignored.items[i]);
    }

    int rc = CLI_EXIT_OK;
    char *txt_name = cli_shard_summary_name(s, "txt"), *csv_name = cli_shard_summary_name(s, "csv");
    char *txt_path = cli_strdup_printf("%s/%s", s->output_dir, txt_name);
    char *csv_path = cli_strdup_printf("%s/%s", s->output_dir, csv_name);
    free(txt_name);
    free(csv_name);
    if (!cli_save_text(s->command, txt_path, &txt) || !cli_save_text(s->command, csv_path, &csv)) {
        rc = CLI_EXIT_FAILURE;
    } else {
        printf("%zu processed, %zu failed, %zu skipped, %zu ignored in %.1f s  ->  %s\n", done, failed, resumed,
               ignored, total_seconds, cli_name(s->output_dir));
        printf("summary: %s, %s\n", cli_name(txt_path), cli_name(csv_path));
    }
    if (failed) {
        rc = CLI_EXIT_FAILURE;
    }
    free(txt_path);
    free(csv_path);
    cli_text_free(&txt);
    cli_text_free(&csv);
    free(st.count);
    free(st.confidence);
    return rc;
}
