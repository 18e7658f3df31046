/* Box annotations (boxes.csv), shared by evaluate and demo. */
#ifndef FXCAM_CLI_ANNOTATIONS_H
#define FXCAM_CLI_ANNOTATIONS_H

#include "cli.h"

typedef struct cli_box {
    int64_t x0, y0, x1, y1; /* inclusive pixel coordinates */
} cli_box;

typedef struct cli_annotation {
    char *file;
    int label;              /* 1 = positive class, 0 = normal */
    cli_box *boxes;
    size_t box_count;
} cli_annotation;

typedef struct cli_annotations {
    cli_annotation *items;  /* one per file, in first-appearance order */
    size_t count;
} cli_annotations;

/* Parses "file,label,x0,y0,x1,y1" rows (header line first; one row per box;
 * empty box fields for an image without boxes). On error returns false and
 * writes "line N: what was wrong" into err. */
bool cli_annotations_parse(const char *text, size_t size, cli_annotations *out, char *err, size_t err_size);
void cli_annotations_free(cli_annotations *a);
/* Reads and parses the annotations file at path; prints the reason and
 * returns false when it cannot. */
bool cli_annotations_load(const char *command, const char *path, cli_annotations *out);
/* The annotation of path (as listed, or by its last component); NULL when
 * none or when a is NULL. */
const cli_annotation *cli_annotations_lookup(const cli_annotations *a, const char *path);
/* Whether a name from boxes.csv stays inside the image folder: relative, and
 * no ".." component. */
bool cli_is_inside_name(const char *name);
/* Reads a whole regular file (never opens a FIFO or device for long: opened
 * non-blocking and checked). Returns false with errno set (EINVAL: not a
 * regular file). *data is malloc'ed and NUL-terminated. */
bool cli_read_regular_file(const char *path, char **data, size_t *size);
const cli_annotation *cli_annotations_find(const cli_annotations *a, const char *file);

/* Checks a's boxes against a width x height image (boxes are in its pixel
 * coordinates, 0..width-1, 0..height-1). Prints a warning naming each box that
 * is partly or entirely outside, prefixed "fxcam <command>: warning: <file>: ".
 * Returns false when a box lies entirely outside (it can score nothing: the
 * image should be refused), and then writes the first such box into why. */
bool cli_boxes_check_fit(const char *command, const cli_annotation *a, uint32_t width, uint32_t height,
                         char *why, size_t why_size);
/* Whether (x, y) lies inside one of the boxes. */
bool cli_point_in_boxes(const cli_annotation *a, uint32_t x, uint32_t y);
/* Share of the heatmap's sum that lies inside the union of the boxes; 0 for
 * an all-zero map. */
double cli_energy_in_boxes(const cli_annotation *a, const fx_image *heatmap);
/* Draws the boxes as 2-pixel outlines on an RGB8 image. */
void cli_draw_boxes(const cli_annotation *a, fx_image *rgb, uint8_t r, uint8_t g, uint8_t b);

#endif
