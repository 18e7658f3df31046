/* --shard K/N for `fxcam batch` and `fxcam evaluate`, and what `fxcam merge`
 * needs to check that shards fit together (cli/shard.c).
 *
 * The partition: an input belongs to shard K of N when
 *     FNV-1a-64(path below --image-dir, its bytes as on disk, '/' between folders) mod N == K
 * (FNV-1a 64: offset basis 14695981039346656037, prime 1099511628211;
 * Fowler, Noll, Vo, IETF draft-eastlake-fnv). The shard of a file depends on
 * its own name only, so adding files to the folder never moves another file
 * to another shard, and N jobs with K = 0..N-1 (Slurm: --array=0-(N-1) and
 * K = $SLURM_ARRAY_TASK_ID) cover the folder exactly once. */
#ifndef FXCAM_CLI_SHARD_H
#define FXCAM_CLI_SHARD_H

#include "cli.h"

/* Largest N accepted (a job array of a million tasks is beyond any
 * scheduler's default limit; the bound keeps messages and names short). */
#define CLI_SHARD_MAX_COUNT 1000000u

/* FNV-1a 64 of the bytes of text (NUL-terminated). */
uint64_t cli_fnv1a64(const char *text);
/* FNV-1a 64 continued over size bytes from hash (start with CLI_FNV1A64_BASIS). */
#define CLI_FNV1A64_BASIS 14695981039346656037ull
uint64_t cli_fnv1a64_update(uint64_t hash, const void *data, size_t size);

/* Parses "K/N" (decimal, 0 <= K < N <= CLI_SHARD_MAX_COUNT, nothing else).
 * On failure returns false and writes the reason (what is wrong with the
 * value and the valid form) into why. */
bool cli_shard_parse(const char *text, uint32_t *index, uint32_t *count, char *why, size_t why_size);

/* Whether the file rel (path below --image-dir) is in the settings' shard;
 * always true without --shard. */
bool cli_shard_contains(const cli_settings *s, const char *rel);

/* "summary.csv" or, with --shard K/N, "summary.shard-K-of-N.csv" (ext "csv"
 * or "txt"), so that the N shards of a job array can share one output
 * folder. malloc'ed. */
char *cli_shard_summary_name(const cli_settings *s, const char *ext);

/* --shard for evaluate: keeps the annotations of this shard's files (by the
 * name in boxes.csv, relative to --image-dir), freeing the others. Returns
 * how many there were before. */
struct cli_annotations;
size_t cli_shard_keep_annotations(const cli_settings *s, struct cli_annotations *a);

/* Whether a file name is one of the shard summaries above. */
bool cli_shard_is_summary_name(const char *name);

/* The options: value of summary.txt (malloc'ed): "key=value" pairs of every
 * option that changes which files are inputs or what their rows and outputs
 * hold; the refinements (layers, class-weights, target-classes, aug-smooth,
 * eigen-smooth, smooth-samples, smooth-noise) only when given. */
char *cli_options_value(const cli_settings *s);
/* Whether two options: values name the same options with the same values
 * (an option absent from one differs), leaving out the keys of skip
 * (NULL-terminated; may be NULL). When not, why says the first difference,
 * a's first: "alpha=0.5 vs alpha=0.7", "aug-smooth=1 vs no aug-smooth". The one
 * comparison of `fxcam merge` (shards) and `fxcam batch --resume`. */
bool cli_options_match(const char *a, const char *b, const char *const *skip, char *why, size_t why_size);
/* The value of a "key: value" line of summary.txt's header (malloc'ed), or NULL. */
char *cli_summary_value(const char *text, const char *key);

/* Appends to summary.txt's header the options: line (always: --resume
 * reads it) and, with --shard, the lines `fxcam merge` reads to check that
 * shards fit together:
 *   shard:        K/N (FNV-1a 64 of the path below the image dir, mod N)
 *   model id:     <bytes> bytes, fnv1a64 <16 hex digits>
 *   options:      <every option that changes which files are inputs or what
 *                 their rows hold, canonical form>
 * Returns false (after printing why) when the model file cannot be read. */
bool cli_shard_describe(const cli_settings *s, cli_text *txt);

/* fxcam merge DIR|CSV... --output-dir OUT (cli/merge.c): parses its own
 * arguments; returns the exit status. */
extern const char cli_merge_summary[];
int cli_run_merge(int argc, char **argv);

#endif
