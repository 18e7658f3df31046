/* `fxcam evaluate --faithfulness` (cli/faithfulness.c): the library's
 * faithfulness metrics (fx_faithfulness_compute) for each method's map of
 * each image, scored by the model's forward pass (fx_model_predict), next to
 * those of a random map as the chance baseline; the table and the ranking. */
#ifndef FXCAM_CLI_FAITHFULNESS_H
#define FXCAM_CLI_FAITHFULNESS_H

#include "annotations.h"

/* One row per method, and a last row for the random map. */
typedef struct cli_faith_row {
    int32_t method;            /* FX_CAM_*, or -1 for the random map */
    fx_faithfulness *items;    /* one per image scored */
    size_t count, capacity;
} cli_faith_row;

typedef struct cli_faith {
    fx_faithfulness_options options;
    cli_faith_row *rows;
    uint32_t row_count;        /* methods + 1 */
    size_t failed;             /* images whose metrics could not be computed */
} cli_faith;

void cli_faith_init(cli_faith *f, const int32_t *methods, uint32_t method_count, uint32_t batch_size);
void cli_faith_free(cli_faith *f);
/* Scores image i of result (the image as loaded, named name; info: what
 * the loader reported of it, may be NULL) for every method and the random
 * map. The image is read as [0,1] by the model's intensity rule with info
 * (a 12-bit PNG with sBIT 12: v / 4095), as the heatmap call read it. The
 * random map and ROAD's noise are seeded from the name, so a file gets the
 * same numbers in any batch or shard.
 * Prints the reason and returns false when it cannot. */
bool cli_faith_add(cli_faith *f, const cli_settings *s, fx_model *model, const fx_image *image,
                   const fx_image_info *info, const fx_result *result, size_t i, const char *name);
/* What the maps were of, for the reports (malloc'ed): "class 'fracture'",
 * "the weighted classes normal=0.3, fracture=0.7" (--class-weights: opts'
 * target_class is then -1, which is not a class index) or "each image's
 * predicted class". */
char *cli_maps_of(const fx_model *model, const fx_gradcam_options *opts);
/* The table and the ranking on stdout; maps_of from cli_maps_of. */
void cli_faith_print(const cli_faith *f, const char *maps_of);
/* The images of --image-dir (not recursive, sorted by name; the names
 * cli_is_image_name accepts) as annotations without labels (label -1) or
 * boxes, for evaluate without --boxes. Prints why and returns false when the
 * folder cannot be read or holds no image. */
bool cli_faith_list_images(const char *command, const char *dir, cli_annotations *out);

#endif
