/* --target-classes FILE: one target class per image of a batch (issue 11,
 * "Targets"), e.g. each image's ground-truth label. The file is CSV:
 *
 *     file,class              optional header
 *     left/wrist.png,fracture file relative to --image-dir, then a class
 *     right/hand.png,0        name (as --class: case-insensitive) or index
 *
 * Blank lines and lines starting with '#' are skipped. Every image the
 * command computes must be listed, and every listed file must be an image of
 * the folder: a mismatch is an error, never a silently predicted class. */
#ifndef FXCAM_CLI_TARGET_CLASSES_H
#define FXCAM_CLI_TARGET_CLASSES_H

#include "cli.h"

typedef struct cli_target_class {
    char *file;     /* as listed, without a leading "./" */
    int32_t target; /* class index */
    size_t line;    /* 1-based line in the file, for messages */
} cli_target_class;

typedef struct cli_target_classes {
    cli_target_class *items; /* sorted by file */
    size_t count;
} cli_target_classes;

/* Parses the text of a --target-classes file and resolves each class against
 * model. On error returns false and writes "line N: what was wrong" into err
 * (malformed line, unknown class with the valid ones, a file listed twice, no
 * rows); *out is then empty. */
bool cli_target_classes_parse(const char *text, size_t size, const fx_model *model, cli_target_classes *out,
                              char *err, size_t err_size);
/* Reads and parses s->target_classes (the caller checks it is set). Refuses
 * it with --class or --class-weights. Prints what was wrong and returns
 * CLI_EXIT_USAGE (bad content or option) or CLI_EXIT_FAILURE (unreadable). */
int cli_target_classes_load(const cli_settings *s, const fx_model *model, cli_target_classes *out);
/* The entry of file (a path relative to --image-dir), or NULL. */
const cli_target_class *cli_target_classes_find(const cli_target_classes *t, const char *file);
/* The files of a list of count items: file_at(items, i) is the i-th path
 * relative to --image-dir. */
typedef const char *(*cli_file_at)(const void *items, size_t i);
/* Every listed file is one of the folder's images (all of --image-dir, before
 * --shard and --max-images); else prints the first file that is not, how
 * many are not, and returns CLI_EXIT_USAGE. */
int cli_target_classes_check_listed(const cli_settings *s, const cli_target_classes *t, const void *items,
                                    size_t count, cli_file_at file_at);
/* Every image the command computes is listed; else prints the first that is
 * not, how many are not, and returns CLI_EXIT_USAGE. */
int cli_target_classes_check_covered(const cli_settings *s, const cli_target_classes *t, const void *items,
                                     size_t count, cli_file_at file_at);
void cli_target_classes_free(cli_target_classes *t);

#endif
