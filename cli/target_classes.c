/* --target-classes FILE (target_classes.h). */
#include "target_classes.h"

#include "annotations.h" /* cli_read_regular_file */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A label file of a million images is ~40 MB; the bound keeps the
 * int-sized copy below safe. */
#define MAX_FILE_BYTES (64 << 20)

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const cli_target_class *)a)->file, ((const cli_target_class *)b)->file);
}

/* Trims spaces and a trailing \r (a CSV written on Windows). */
static char *trim(char *text)
{
    while (*text == ' ' || *text == '\t') {
        text++;
    }
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t')) {
        text[--len] = '\0';
    }
    return text;
}

/* One "file,class" row into out->items[out->count]. */
static bool parse_row(char *line, size_t line_no, const fx_model *model, cli_target_classes *out, char *err,
                      size_t err_size)
{
    char *comma = strchr(line, ',');
    if (!comma || strchr(comma + 1, ',')) {
        snprintf(err, err_size, "line %zu: expected 2 fields 'file,class', found '%s'", line_no, cli_name(line));
        return false;
    }
    *comma = '\0';
    char *file = trim(line), *name = trim(comma + 1);
    while (strncmp(file, "./", 2) == 0) {
        file += 2;
    }
    if (*file == '\0' || *name == '\0') {
        snprintf(err, err_size, "line %zu: expected a file name and a class, found '%s' and '%s'", line_no,
                 cli_name(file), cli_name(name));
        return false;
    }
    if (!cli_is_inside_name(file)) {
        snprintf(err, err_size, "line %zu: '%s' is not a path relative to --image-dir (no leading '/', no '..')",
                 line_no, cli_name(file));
        return false;
    }
    int32_t target = -1;
    if (!cli_class_from_text(model, name, &target)) {
        char *valid = cli_class_list(model);
        snprintf(err, err_size, "line %zu: unknown class '%s' for '%s'; this model's classes are %s", line_no,
                 cli_name(name), cli_name(file), cli_message(valid));
        free(valid);
        return false;
    }
    cli_target_class *grown = realloc(out->items, (out->count + 1) * sizeof *grown);
    if (!grown) {
        fputs("fxcam: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    out->items = grown;
    out->items[out->count++] = (cli_target_class){cli_strdup_printf("%s", file), target, line_no};
    return true;
}

bool cli_target_classes_parse(const char *text, size_t size, const fx_model *model, cli_target_classes *out,
                              char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (size > MAX_FILE_BYTES) {
        snprintf(err, err_size, "%zu bytes; at most %d MiB (about a million lines) are read", size,
                 MAX_FILE_BYTES >> 20);
        return false;
    }
    char *copy = cli_strdup_printf("%.*s", (int)size, text);
    bool ok = strlen(copy) == size;
    if (!ok) {
        snprintf(err, err_size, "it holds a NUL byte; expected a text file of 'file,class' lines");
    }
    /* Excel's "CSV UTF-8" starts the file with a UTF-8 byte order mark;
     * it is not part of the first file name. */
    char *start = copy;
    if (ok && strncmp(start, "\xEF\xBB\xBF", 3) == 0) {
        start += 3;
    }
    size_t line_no = 0;
    for (char *line = start, *next = NULL; ok && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        line_no++;
        char *t = trim(line);
        bool header = line_no == 1 && (strcmp(t, "file,class") == 0 || strcmp(t, "file, class") == 0);
        if (*t != '\0' && *t != '#' && !header) {
            ok = parse_row(t, line_no, model, out, err, err_size);
        }
    }
    free(copy);
    if (ok && out->count == 0) {
        snprintf(err, err_size, "no 'file,class' rows");
        ok = false;
    }
    if (ok) {
        qsort(out->items, out->count, sizeof *out->items, compare_files);
        for (size_t i = 1; i < out->count; i++) {
            if (strcmp(out->items[i - 1].file, out->items[i].file) == 0) {
                const cli_target_class *a = &out->items[i - 1], *b = &out->items[i];
                snprintf(err, err_size, "line %zu: '%s' is listed again (first on line %zu)",
                         a->line > b->line ? a->line : b->line, cli_name(a->file), a->line < b->line ? a->line : b->line);
                ok = false;
                break;
            }
        }
    }
    if (!ok) {
        cli_target_classes_free(out);
    }
    return ok;
}

int cli_target_classes_load(const cli_settings *s, const fx_model *model, cli_target_classes *out)
{
    memset(out, 0, sizeof *out);
    if (s->class_name || s->class_weights) {
        return cli_usage_error(s->command, "give --target-classes or %s, not both: each image's class comes from "
                               "the file", s->class_name ? "--class" : "--class-weights");
    }
    char *text = NULL;
    size_t size = 0;
    if (!cli_read_regular_file(s->target_classes, &text, &size)) {
        cli_error(s->command, "cannot read --target-classes '%s': %s", cli_name(s->target_classes),
                  errno == EINVAL ? "not a regular file" : strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    char err[1400];
    bool ok = cli_target_classes_parse(text, size, model, out, err, sizeof err);
    free(text);
    if (!ok) {
        return cli_usage_error(s->command, "invalid --target-classes '%s': %s", cli_name(s->target_classes), err);
    }
    return CLI_EXIT_OK;
}

const cli_target_class *cli_target_classes_find(const cli_target_classes *t, const char *file)
{
    if (!t || t->count == 0) {
        return NULL;
    }
    cli_target_class key = {(char *)file, 0, 0};
    return bsearch(&key, t->items, t->count, sizeof *t->items, compare_files);
}

int cli_target_classes_check_listed(const cli_settings *s, const cli_target_classes *t, const void *items,
                                    size_t count, cli_file_at file_at)
{
    bool *found = calloc(t->count ? t->count : 1, sizeof *found);
    if (!found) {
        fputs("fxcam: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    for (size_t i = 0; i < count; i++) {
        const cli_target_class *e = cli_target_classes_find(t, file_at(items, i));
        if (e) {
            found[e - t->items] = true;
        }
    }
    const cli_target_class *first = NULL; /* the earliest line not found */
    size_t missing = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (!found[i]) {
            missing++;
            first = first && first->line < t->items[i].line ? first : &t->items[i];
        }
    }
    free(found);
    if (missing == 0) {
        return CLI_EXIT_OK;
    }
    return cli_usage_error(s->command, "--target-classes '%s' line %zu: '%s' is not an image of '%s'%s (%zu listed "
                           "file%s not found); file names are relative to --image-dir", cli_name(s->target_classes),
                           first->line, cli_name(first->file), cli_name(s->image_dir),
                           s->recursive ? "" : " (subfolders need --recursive)", missing, missing == 1 ? "" : "s");
}

int cli_target_classes_check_covered(const cli_settings *s, const cli_target_classes *t, const void *items,
                                     size_t count, cli_file_at file_at)
{
    const char *first = NULL;
    size_t missing = 0;
    for (size_t i = 0; i < count; i++) {
        if (!cli_target_classes_find(t, file_at(items, i)) && missing++ == 0) {
            first = file_at(items, i);
        }
    }
    if (missing == 0) {
        return CLI_EXIT_OK;
    }
    return cli_usage_error(s->command, "--target-classes '%s' has no class for '%s' (%zu image%s of '%s' not "
                           "listed); add a line '%s,CLASS' for each", cli_name(s->target_classes), cli_name(first),
                           missing, missing == 1 ? "" : "s", cli_name(s->image_dir), cli_name(first));
}

void cli_target_classes_free(cli_target_classes *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->items[i].file);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}
