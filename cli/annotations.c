/* boxes.csv: reading it, and measuring heatmaps against its boxes. */
#include "annotations.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static void *grow(void *p, size_t count, size_t item_size)
{
    void *q = realloc(p, count * item_size);
    if (!q) {
        fputs("fxcam: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    return q;
}

/* Splits one line into at most `max` comma-separated fields, in place. CSV
 * quoting is not needed: file names in boxes.csv hold no commas. */
static size_t split_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) {
            break;
        }
        *comma = '\0';
        p = comma + 1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(fields[i]);
        while (len && (fields[i][len - 1] == '\r' || fields[i][len - 1] == ' ')) {
            fields[i][--len] = '\0';
        }
        while (*fields[i] == ' ') {
            fields[i]++;
        }
    }
    return n;
}

static bool parse_int(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

const cli_annotation *cli_annotations_find(const cli_annotations *a, const char *file)
{
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->items[i].file, file) == 0) {
            return &a->items[i];
        }
    }
    return NULL;
}

static bool parse_row(char **f, size_t n, size_t line_no, cli_annotations *out, char *err, size_t err_size)
{
    if (n != 6) {
        snprintf(err, err_size, "line %zu: expected 6 fields (file,label,x0,y0,x1,y1), found %zu", line_no, n);
        return false;
    }
    if (f[0][0] == '\0' || (strcmp(f[1], "0") != 0 && strcmp(f[1], "1") != 0)) {
        snprintf(err, err_size, "line %zu: expected a file name and label 0 or 1, found '%s' and '%s'", line_no,
                 cli_name(f[0]), cli_name(f[1]));
        return false;
    }
    int label = f[1][0] - '0';
    cli_annotation *a = (cli_annotation *)cli_annotations_find(out, f[0]);
    if (!a) {
        out->items = grow(out->items, out->count + 1, sizeof *out->items);
        a = &out->items[out->count++];
        memset(a, 0, sizeof *a);
        a->file = cli_strdup_printf("%s", f[0]);
        a->label = label;
    } else if (a->label != label) {
        snprintf(err, err_size, "line %zu: '%s' has label %d here and %d on an earlier line", line_no,
                 cli_name(f[0]), label, a->label);
        return false;
    }
    bool empty = f[2][0] == '\0' && f[3][0] == '\0' && f[4][0] == '\0' && f[5][0] == '\0';
    if (empty) {
        return true;
    }
    cli_box box;
    if (!parse_int(f[2], &box.x0) || !parse_int(f[3], &box.y0) || !parse_int(f[4], &box.x1) ||
        !parse_int(f[5], &box.y1) || box.x0 > box.x1 || box.y0 > box.y1 || box.x0 < 0 || box.y0 < 0) {
        snprintf(err, err_size, "line %zu: invalid box '%s,%s,%s,%s'; expected whole numbers with "
                 "0 <= x0 <= x1 and 0 <= y0 <= y1, or four empty fields", line_no, cli_name(f[2]), cli_name(f[3]),
                 cli_name(f[4]), cli_name(f[5]));
        return false;
    }
    a->boxes = grow(a->boxes, a->box_count + 1, sizeof *a->boxes);
    a->boxes[a->box_count++] = box;
    return true;
}

bool cli_annotations_parse(const char *text, size_t size, cli_annotations *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    char *copy = grow(NULL, size + 1, 1);
    memcpy(copy, text, size);
    copy[size] = '\0';
    bool ok = true;
    size_t line_no = 0;
    char *line = copy;
    while (ok && line && *line) {
        char *next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        line_no++;
        char *fields[8];
        size_t n = split_fields(line, fields, 8);
        bool blank = n == 1 && fields[0][0] == '\0';
        if (line_no == 1) {
            if (n < 2 || strcmp(fields[0], "file") != 0 || strcmp(fields[1], "label") != 0) {
                snprintf(err, err_size, "line 1: expected the header file,label,x0,y0,x1,y1");
                ok = false;
            }
        } else if (!blank) {
            ok = parse_row(fields, n, line_no, out, err, err_size);
        }
        line = next;
    }
    if (ok && out->count == 0) {
        snprintf(err, err_size, "no annotated images (only a header)");
        ok = false;
    }
    free(copy);
    if (!ok) {
        cli_annotations_free(out);
    }
    return ok;
}

void cli_annotations_free(cli_annotations *a)
{
    for (size_t i = 0; i < a->count; i++) {
        free(a->items[i].file);
        free(a->items[i].boxes);
    }
    free(a->items);
    memset(a, 0, sizeof *a);
}

bool cli_boxes_check_fit(const char *command, const cli_annotation *a, uint32_t width, uint32_t height,
                         char *why, size_t why_size)
{
    bool all_touch = true;
    for (size_t b = 0; b < a->box_count; b++) {
        const cli_box *box = &a->boxes[b];
        bool inside = box->x0 >= 0 && box->y0 >= 0 && box->x1 < (int64_t)width && box->y1 < (int64_t)height;
        if (inside) {
            continue;
        }
        bool disjoint = box->x1 < 0 || box->y1 < 0 || box->x0 >= (int64_t)width || box->y0 >= (int64_t)height;
        fprintf(stderr, "fxcam %s: warning: %s: box %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 " is %s the "
                "%ux%u image (boxes are in the image's pixel coordinates: x 0..%u, y 0..%u)%s\n", command,
                cli_name(a->file), box->x0, box->y0, box->x1, box->y1, disjoint ? "entirely outside" : "partly outside",
                width, height, width ? width - 1 : 0, height ? height - 1 : 0,
                disjoint ? "; the image is not scored" : "; only the part inside is scored");
        if (disjoint && all_touch) {
            snprintf(why, why_size, "box %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 " lies entirely outside the "
                     "%ux%u image (boxes are in the image's pixel coordinates)", box->x0, box->y0, box->x1, box->y1,
                     width, height);
            all_touch = false;
        }
    }
    return all_touch;
}

bool cli_point_in_boxes(const cli_annotation *a, uint32_t x, uint32_t y)
{
    for (size_t b = 0; b < a->box_count; b++) {
        const cli_box *box = &a->boxes[b];
        if ((int64_t)x >= box->x0 && (int64_t)x <= box->x1 && (int64_t)y >= box->y0 && (int64_t)y <= box->y1) {
            return true;
        }
    }
    return false;
}

double cli_energy_in_boxes(const cli_annotation *a, const fx_image *heatmap)
{
    double inside = 0.0, total = 0.0;
    for (uint32_t y = 0; y < heatmap->height; y++) {
        const float *row = (const float *)((const uint8_t *)heatmap->data + (size_t)y * heatmap->stride);
        for (uint32_t x = 0; x < heatmap->width; x++) {
            total += row[x];
            if (cli_point_in_boxes(a, x, y)) {
                inside += row[x];
            }
        }
    }
    return total > 0.0 ? inside / total : 0.0;
}

static void put(fx_image *rgb, int64_t x, int64_t y, const uint8_t color[3])
{
    if (x < 0 || y < 0 || x >= (int64_t)rgb->width || y >= (int64_t)rgb->height) {
        return;
    }
    uint8_t *p = (uint8_t *)rgb->data + (size_t)y * rgb->stride + (size_t)x * 3;
    memcpy(p, color, 3);
}

void cli_draw_boxes(const cli_annotation *a, fx_image *rgb, uint8_t r, uint8_t g, uint8_t b)
{
    const uint8_t color[3] = {r, g, b};
    for (size_t i = 0; i < a->box_count; i++) {
        const cli_box *box = &a->boxes[i];
        for (int64_t t = 0; t < 2; t++) {
            for (int64_t x = box->x0 - t; x <= box->x1 + t; x++) {
                put(rgb, x, box->y0 - t, color);
                put(rgb, x, box->y1 + t, color);
            }
            for (int64_t y = box->y0 - t; y <= box->y1 + t; y++) {
                put(rgb, box->x0 - t, y, color);
                put(rgb, box->x1 + t, y, color);
            }
        }
    }
}

bool cli_read_regular_file(const char *path, char **data, size_t *size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL : 0;
    if (e != 0) {
        close(fd);
        errno = e;
        return false;
    }
    /* Regular file: blocking reads from here on. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    cli_text t = {0};
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            cli_text_free(&t);
            errno = e;
            return false;
        }
        cli_text_printf(&t, "%.*s", (int)n, buf);
    }
    close(fd);
    *data = t.data ? t.data : cli_strdup_printf("%s", "");
    *size = t.size;
    return true;
}

bool cli_annotations_load(const char *command, const char *path, cli_annotations *out)
{
    char *text = NULL;
    size_t size = 0;
    char err[1200];
    bool ok = cli_read_regular_file(path, &text, &size);
    if (!ok) {
        cli_error(command, "cannot read the annotations '%s': %s", cli_name(path),
                  errno == EINVAL ? "not a regular file" : strerror(errno));
    } else if (!(ok = cli_annotations_parse(text, size, out, err, sizeof err))) {
        cli_error(command, "invalid annotations '%s': %s", cli_name(path), err);
    }
    free(text);
    return ok;
}

const cli_annotation *cli_annotations_lookup(const cli_annotations *a, const char *path)
{
    if (!a) {
        return NULL;
    }
    const cli_annotation *found = cli_annotations_find(a, path);
    const char *slash = strrchr(path, '/');
    return found ? found : slash ? cli_annotations_find(a, slash + 1) : NULL;
}

bool cli_is_inside_name(const char *name)
{
    if (name[0] == '/' || name[0] == '\0') {
        return false;
    }
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            return false;
        }
        p += len;
        p += *p == '/';
    }
    return true;
}
