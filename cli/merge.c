/* fxcam merge: joins the summaries of the shards of a `fxcam batch --shard
 * K/N` job array into one summary.csv and summary.txt.
 *
 * It refuses, naming the files: a summary that is not a shard's, shards of
 * different N, a shard given twice, missing shards, shards computed with a
 * different model (bytes) or options, a file listed by two shards, and a row
 * that does not belong to the shard that lists it (its hash says another). */
#include "batch.h"
#include "shard.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char cli_merge_summary[] = "Join the summaries of 'fxcam batch --shard K/N' runs into one summary.csv and "
                                 "summary.txt.";

static const char merge_help[] =
    "Usage: fxcam merge --output-dir OUT PATH...\n\n"
    "Joins the summaries of the N shards of 'fxcam batch --shard K/N' into one\n"
    "OUT/summary.csv and OUT/summary.txt (written atomically). PATH is a folder\n"
    "(every summary.shard-K-of-N.csv in it) or one shard's summary.shard-K-of-N.csv;\n"
    "each shard's summary.shard-K-of-N.txt beside it says which shard, model and\n"
    "options it was computed with.\n\n"
    "The rows are sorted as one unsharded run sorts them: the inputs by path, then\n"
    "the ignored files by path. The merge is refused, with the reason, when a shard\n"
    "is missing or given twice, when the shards differ in N, in the model's bytes\n"
    "or in an option that changes the results, or when a file is listed twice.\n"
    "Exit status: 0 merged, 1 refused or unreadable, 2 usage error.\n\n"
    "Options:\n"
    "      --output-dir DIR      folder for summary.csv and summary.txt (created if missing)\n"
    "  -h, --help                show this help and exit\n\n"
    "Example (a Slurm array of 8 tasks wrote into cams/):\n"
    "  fxcam merge cams/ --output-dir cams/\n";

#define COMMAND "merge"

/* One shard: where its summaries are and what they say. */
typedef struct shard_summary {
    char *csv_path;
    char *txt_path;
    uint32_t index, count;
    char *model, *method, *layer, *device, *image_dir, *model_id, *options;
    double seconds;
    previous_summary rows;
} shard_summary;

typedef struct merge_run {
    shard_summary *shards;
    size_t count;
    const char *output_dir;
} merge_run;

static void shard_free(shard_summary *sh)
{
    free(sh->csv_path);
    free(sh->txt_path);
    free(sh->model);
    free(sh->method);
    free(sh->layer);
    free(sh->device);
    free(sh->image_dir);
    free(sh->model_id);
    free(sh->options);
    batch_free_previous(&sh->rows);
}

static shard_summary *add_shard(merge_run *m, const char *csv_path)
{
    shard_summary *grown = realloc(m->shards, (m->count + 1) * sizeof *grown);
    if (!grown) {
        fputs("fxcam merge: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    m->shards = grown;
    shard_summary *sh = &m->shards[m->count++];
    memset(sh, 0, sizeof *sh);
    sh->csv_path = cli_strdup_printf("%s", csv_path);
    size_t len = strlen(csv_path);
    sh->txt_path = cli_strdup_printf("%.*s.txt", (int)(len > 4 ? len - 4 : len), csv_path);
    return sh;
}

static bool has_csv_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".csv") == 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The shard summaries of a folder, in sorted order; false (after a message)
 * when it holds none. */
static bool add_folder(merge_run *m, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        cli_error(COMMAND, "cannot open the folder '%s': %s", cli_name(dir), strerror(errno));
        return false;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (cli_shard_is_summary_name(e->d_name) && has_csv_suffix(e->d_name)) {
            char **grown = realloc(names, (n + 1) * sizeof *names);
            if (!grown) {
                exit(CLI_EXIT_FAILURE);
            }
            names = grown;
            names[n++] = cli_strdup_printf("%s", e->d_name);
        }
    }
    closedir(d);
    if (n == 0) {
        cli_error(COMMAND, "'%s' holds no shard summary (summary.shard-K-of-N.csv, written by 'fxcam batch "
                  "--shard K/N')", cli_name(dir));
        free(names);
        return false;
    }
    qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 0; i < n; i++) {
        char *path = cli_strdup_printf("%s/%s", dir, names[i]);
        add_shard(m, path);
        free(path);
        free(names[i]);
    }
    free(names);
    return true;
}

/* Reads a shard's summary.txt header and its summary.csv rows. */
static bool read_shard(shard_summary *sh)
{
    char *text = NULL;
    size_t size = 0;
    if (!cli_read_regular_file(sh->txt_path, &text, &size)) {
        cli_error(COMMAND, "cannot read '%s' (the shard's description beside '%s'): %s", cli_name(sh->txt_path),
                  cli_name(sh->csv_path), errno == EINVAL ? "not a regular file" : strerror(errno));
        return false;
    }
    char *shard = cli_summary_value(text, "shard");
    sh->model = cli_summary_value(text, "model");
    sh->method = cli_summary_value(text, "method");
    sh->layer = cli_summary_value(text, "layer");
    sh->device = cli_summary_value(text, "device");
    sh->image_dir = cli_summary_value(text, "image dir");
    sh->model_id = cli_summary_value(text, "model id");
    sh->options = cli_summary_value(text, "options");
    char *time = cli_summary_value(text, "time");
    sh->seconds = time ? strtod(time, NULL) : 0.0;
    free(time);
    free(text);
    char why[512];
    char *space = shard ? strchr(shard, ' ') : NULL;
    if (space) {
        *space = '\0';
    }
    bool ok = shard && sh->model && sh->method && sh->model_id && sh->options;
    if (!ok) {
        cli_error(COMMAND, "'%s' is not the summary of a shard (no shard:, model id: or options: line); it must "
                  "come from 'fxcam batch --shard K/N'", cli_name(sh->txt_path));
    } else if (!cli_shard_parse(shard, &sh->index, &sh->count, why, sizeof why)) {
        cli_error(COMMAND, "'%s': %s", cli_name(sh->txt_path), why);
        ok = false;
    }
    free(shard);
    if (!ok) {
        return false;
    }
    if (!cli_read_regular_file(sh->csv_path, &text, &size)) {
        cli_error(COMMAND, "cannot read '%s': %s", cli_name(sh->csv_path),
                  errno == EINVAL ? "not a regular file" : strerror(errno));
        return false;
    }
    size_t header = strlen(BATCH_CSV_HEADER);
    if (size < header + 1 || memcmp(text, BATCH_CSV_HEADER, header) != 0 ||
        (text[header] != '\n' && text[header] != '\r')) {
        cli_error(COMMAND, "'%s' is not an fxcam batch summary: its first line is not '%s'", cli_name(sh->csv_path),
                  BATCH_CSV_HEADER);
        free(text);
        return false;
    }
    size_t malformed = batch_parse_summary_rows(&sh->rows, text, size);
    free(text);
    if (malformed) {
        cli_error(COMMAND, "'%s': %zu record%s without the 7 fields of '%s'; the file is damaged", cli_name(sh->csv_path),
                  malformed, malformed == 1 ? "" : "s", BATCH_CSV_HEADER);
        return false;
    }
    return true;
}

static bool same_field(const shard_summary *a, const shard_summary *b, const char *what, const char *x,
                       const char *y)
{
    if (strcmp(x, y) == 0) {
        return true;
    }
    cli_error(COMMAND, "the shards differ in %s: '%s' (%s) vs '%s' (%s); shards of one job must use the same model "
              "and options", what, cli_name(x), cli_name(a->txt_path), cli_name(y), cli_name(b->txt_path));
    return false;
}

/* cli_options_match, so that merge and batch --resume compare alike. */
static bool same_options(const shard_summary *a, const shard_summary *b)
{
    char why[1024];
    if (cli_options_match(a->options, b->options, NULL, why, sizeof why)) {
        return true;
    }
    cli_error(COMMAND, "the shards differ in options: %s ('%s' vs '%s'); shards of one job must use the same "
              "model and options: recompute the odd shard with the options of the others", cli_name(why),
              cli_name(a->txt_path), cli_name(b->txt_path));
    return false;
}

/* All N shards, each once, with the same model and options. */
static bool check_shards(const merge_run *m)
{
    const shard_summary *first = &m->shards[0];
    uint32_t n = first->count;
    const shard_summary **by_index = calloc(n, sizeof *by_index);
    if (!by_index) {
        exit(CLI_EXIT_FAILURE);
    }
    bool ok = true;
    for (size_t i = 0; i < m->count && ok; i++) {
        const shard_summary *sh = &m->shards[i];
        if (sh->count != n) {
            cli_error(COMMAND, "'%s' is shard %u/%u but '%s' is shard %u/%u: every shard of one job has the same N",
                      cli_name(first->txt_path), first->index, n, cli_name(sh->txt_path), sh->index, sh->count);
            ok = false;
        } else if (by_index[sh->index]) {
            cli_error(COMMAND, "shard %u/%u is given twice: '%s' and '%s'", sh->index, n,
                      cli_name(by_index[sh->index]->csv_path), cli_name(sh->csv_path));
            ok = false;
        } else {
            by_index[sh->index] = sh;
            ok = same_field(first, sh, "model (bytes and hash)", first->model_id, sh->model_id) &&
                 same_field(first, sh, "method", first->method, sh->method) &&
                 same_options(first, sh);
        }
    }
    if (ok) {
        cli_text missing = {0};
        size_t absent = 0;
        for (uint32_t k = 0; k < n; k++) {
            if (!by_index[k] && absent++ < 20) {
                cli_text_printf(&missing, "%s%u", absent > 1 ? ", " : "", k);
            }
        }
        if (absent) {
            cli_error(COMMAND, "%zu of the %u shards %s missing: %s%s (each of K = 0..%u must be given once)", absent,
                      n, absent == 1 ? "is" : "are", missing.data, absent > 20 ? ", ..." : "", n - 1);
            ok = false;
        }
        cli_text_free(&missing);
    }
    free(by_index);
    return ok;
}

static bool is_ignored_row(const summary_row *row)
{
    return strncmp(row->field[COL_STATUS], "ignored", 7) == 0;
}

/* Inputs first, then ignored files; each by path (the order of an unsharded
 * run's summary.csv). */
static int compare_merged(const void *a, const void *b)
{
    const summary_row *x = *(summary_row *const *)a, *y = *(summary_row *const *)b;
    int c = is_ignored_row(x) - is_ignored_row(y);
    return c ? c : strcmp(x->field[COL_FILE], y->field[COL_FILE]);
}

/* Every row, sorted; refuses a file listed twice or by the wrong shard.
 * *owner[i] is the shard of rows[i]. */
static summary_row **collect_rows(const merge_run *m, size_t *count)
{
    size_t total = 0;
    for (size_t i = 0; i < m->count; i++) {
        total += m->shards[i].rows.count;
    }
    summary_row **rows = calloc(total ? total : 1, sizeof *rows);
    if (!rows) {
        exit(CLI_EXIT_FAILURE);
    }
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++) {
        shard_summary *sh = &m->shards[i];
        for (size_t r = 0; r < sh->rows.count; r++) {
            summary_row *row = &sh->rows.rows[r];
            uint32_t belongs = (uint32_t)(cli_fnv1a64(row->field[COL_FILE]) % sh->count);
            if (belongs != sh->index) {
                cli_error(COMMAND, "'%s' lists '%s', which belongs to shard %u/%u, not %u/%u: the summaries of "
                          "different jobs are mixed", cli_name(sh->csv_path), cli_name(row->field[COL_FILE]),
                          belongs, sh->count, sh->index, sh->count);
                free(rows);
                return NULL;
            }
            rows[n++] = row;
        }
    }
    qsort(rows, n, sizeof *rows, compare_merged);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(rows[i]->field[COL_FILE], rows[i - 1]->field[COL_FILE]) == 0) {
            cli_error(COMMAND, "'%s' is listed twice (the shards overlap)", cli_name(rows[i]->field[COL_FILE]));
            free(rows);
            return NULL;
        }
    }
    *count = n;
    return rows;
}

/* The class table of summary.txt, from the rows' class names (the model is not
 * loaded: classes appear in the order of their first row). */
static void write_class_table(cli_text *txt, summary_row **rows, size_t n)
{
    const char **names = calloc(n + 1, sizeof *names);
    size_t *counts = calloc(n + 1, sizeof *counts);
    double *sums = calloc(n + 1, sizeof *sums);
    if (!names || !counts || !sums) {
        exit(CLI_EXIT_FAILURE);
    }
    size_t classes = 0, all = 0;
    double all_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(rows[i]->field[COL_STATUS], "ok", 2) != 0 || !rows[i]->field[COL_CLASS][0]) {
            continue;
        }
        size_t c = 0;
        while (c < classes && strcmp(names[c], rows[i]->field[COL_CLASS]) != 0) {
            c++;
        }
        if (c == classes) {
            names[classes++] = rows[i]->field[COL_CLASS];
        }
        double confidence = strtod(rows[i]->field[COL_CONFIDENCE], NULL);
        counts[c]++;
        sums[c] += confidence;
        all++;
        all_sum += confidence;
    }
    cli_text_printf(txt, "%-20s %7s  %s\n", "predicted class", "images", "mean confidence");
    for (size_t c = 0; c < classes; c++) {
        cli_text_printf(txt, "%-20s %7zu  %.1f%%\n", cli_name(names[c]), counts[c], 100.0 * sums[c] / (double)counts[c]);
    }
    if (all) {
        cli_text_printf(txt, "%-20s %7zu  %.1f%%\n", "all", all, 100.0 * all_sum / (double)all);
    } else {
        cli_text_printf(txt, "%-20s %7zu  -\n", "all", all);
    }
    free(names);
    free(counts);
    free(sums);
}

static void write_summary_text(cli_text *txt, const merge_run *m, summary_row **rows, size_t n)
{
    const shard_summary *first = &m->shards[0];
    const char *layer = first->layer ? first->layer : "(default)";
    double seconds = 0.0;
    for (size_t i = 0; i < m->count; i++) {
        /* a shard without images has not resolved the default layer */
        if (m->shards[i].layer && strcmp(layer, "(default)") == 0) {
            layer = m->shards[i].layer;
        }
        seconds += m->shards[i].seconds;
    }
    size_t images = 0, done = 0, failed = 0, skipped = 0, ignored = 0;
    for (size_t i = 0; i < n; i++) {
        const char *status = rows[i]->field[COL_STATUS];
        ignored += is_ignored_row(rows[i]);
        images += !is_ignored_row(rows[i]);
        done += strncmp(status, "ok", 2) == 0;
        failed += strncmp(status, "failed", 6) == 0;
        skipped += strncmp(status, "skipped", 7) == 0;
    }
    cli_text_printf(txt, "fxcam batch summary (merged from %zu shards)\n\n", m->count);
    cli_text_printf(txt, "model:        %s\n", cli_name(first->model));
    cli_text_printf(txt, "model id:     %s\n", cli_name(first->model_id));
    cli_text_printf(txt, "method:       %s\n", cli_name(first->method));
    cli_text_printf(txt, "layer:        %s\n", cli_name(layer));
    cli_text_printf(txt, "device:       %s\n", cli_name(first->device ? first->device : "-"));
    cli_text_printf(txt, "image dir:    %s\n", cli_name(first->image_dir ? first->image_dir : "-"));
    cli_text_printf(txt, "options:      %s\n", cli_name(first->options));
    cli_text_printf(txt, "shards:       %u, K = 0..%u (FNV-1a 64 of the path below the image dir, mod %u)\n",
                    first->count, first->count - 1, first->count);
    for (size_t i = 0; i < m->count; i++) {
        cli_text_printf(txt, "  %u/%u: %s (%zu rows)\n", m->shards[i].index, m->shards[i].count,
                        cli_name(m->shards[i].csv_path), m->shards[i].rows.count);
    }
    cli_text_printf(txt, "\nimages:       %zu files (PNG, JPEG, DICOM), %zu ok, %zu failed, %zu skipped (output existed)\n",
                    images, done, failed, skipped);
    cli_text_printf(txt, "ignored:      %zu files that are not images fxcam reads, or not regular files (listed "
                    "below)\n\n", ignored);
    write_class_table(txt, rows, n);
    cli_text_printf(txt, "\ntime:         %.2f s summed over the shards\n", seconds);
    cli_text_printf(txt, "\nfailures:     %zu\n", failed);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(rows[i]->field[COL_STATUS], "failed", 6) == 0) {
            cli_text_printf(txt, "  %s: %s\n", cli_name(rows[i]->field[COL_FILE]), cli_name(rows[i]->field[COL_STATUS]));
        }
    }
    if (ignored) {
        cli_text_printf(txt, "\nignored files:\n");
        for (size_t i = 0; i < n; i++) {
            if (is_ignored_row(rows[i])) {
                cli_text_printf(txt, "  %s: %s\n", cli_name(rows[i]->field[COL_FILE]),
                                cli_name(rows[i]->field[COL_STATUS]));
            }
        }
    }
}

static int write_merged(const merge_run *m, summary_row **rows, size_t n)
{
    cli_text csv = {0}, txt = {0};
    cli_text_printf(&csv, "%s\n", BATCH_CSV_HEADER);
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < COL_COUNT; c++) {
            cli_text_csv_field(&csv, rows[i]->field[c], c == COL_COUNT - 1);
        }
    }
    write_summary_text(&txt, m, rows, n);
    int rc = CLI_EXIT_OK;
    char *csv_path = cli_strdup_printf("%s/summary.csv", m->output_dir);
    char *txt_path = cli_strdup_printf("%s/summary.txt", m->output_dir);
    if (cli_make_dirs(m->output_dir) != 0) {
        cli_error(COMMAND, "cannot create the output folder '%s': %s", cli_name(m->output_dir), strerror(errno));
        rc = CLI_EXIT_FAILURE;
    } else if (!cli_save_text(COMMAND, txt_path, &txt) || !cli_save_text(COMMAND, csv_path, &csv)) {
        rc = CLI_EXIT_FAILURE;
    } else {
        printf("%zu rows from %zu shards  ->  %s, %s\n", n, m->count, cli_name(csv_path), cli_name(txt_path));
    }
    free(csv_path);
    free(txt_path);
    cli_text_free(&csv);
    cli_text_free(&txt);
    return rc;
}

static int usage(const char *fmt, const char *arg)
{
    char message[256];
    snprintf(message, sizeof message, fmt, arg);
    return cli_usage_error(COMMAND, "%s", message);
}

/* Arguments: --output-dir DIR (or --output-dir=DIR), -h/--help, paths. */
static int parse_args(int argc, char **argv, merge_run *m, const char ***paths, size_t *path_count)
{
    *paths = calloc((size_t)argc + 1, sizeof **paths);
    if (!*paths) {
        exit(CLI_EXIT_FAILURE);
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(merge_help, stdout);
            return -1;
        }
        if (strcmp(a, "--output-dir") == 0 || strcmp(a, "--output_dir") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                return usage("option --output-dir needs a value (DIR)%s", "");
            }
            m->output_dir = argv[++i];
        } else if (strncmp(a, "--output-dir=", 13) == 0) {
            m->output_dir = a + 13;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage("unknown option '%s'; valid options: --output-dir, --help", cli_name(a));
        } else {
            (*paths)[(*path_count)++] = a;
        }
    }
    if (!m->output_dir || !m->output_dir[0]) {
        return usage("no output folder; give one with --output-dir DIR%s", "");
    }
    if (*path_count == 0) {
        return usage("no shard summaries; give the folders (or summary.shard-K-of-N.csv files) of the shards%s", "");
    }
    return CLI_EXIT_OK;
}

int cli_run_merge(int argc, char **argv)
{
    merge_run m;
    memset(&m, 0, sizeof m);
    const char **paths = NULL;
    size_t path_count = 0;
    int rc = parse_args(argc, argv, &m, &paths, &path_count);
    if (rc == -1) {
        free(paths);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < path_count && rc == CLI_EXIT_OK; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            cli_error(COMMAND, "cannot read '%s': %s", cli_name(paths[i]), strerror(errno));
            rc = CLI_EXIT_FAILURE;
        } else if (S_ISDIR(st.st_mode)) {
            rc = add_folder(&m, paths[i]) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        } else if (has_csv_suffix(paths[i])) {
            add_shard(&m, paths[i]);
        } else {
            cli_error(COMMAND, "'%s' is neither a folder nor a shard's summary.shard-K-of-N.csv", cli_name(paths[i]));
            rc = CLI_EXIT_FAILURE;
        }
    }
    for (size_t i = 0; i < m.count && rc == CLI_EXIT_OK; i++) {
        rc = read_shard(&m.shards[i]) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    }
    if (rc == CLI_EXIT_OK && !check_shards(&m)) {
        rc = CLI_EXIT_FAILURE;
    }
    size_t n = 0;
    summary_row **rows = rc == CLI_EXIT_OK ? collect_rows(&m, &n) : NULL;
    if (rc == CLI_EXIT_OK && !rows) {
        rc = CLI_EXIT_FAILURE;
    }
    if (rc == CLI_EXIT_OK) {
        rc = write_merged(&m, rows, n);
    }
    free(rows);
    for (size_t i = 0; i < m.count; i++) {
        shard_free(&m.shards[i]);
    }
    free(m.shards);
    free(paths);
    return rc;
}
