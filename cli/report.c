/* index.html of `fxcam batch --report` (report.h): rendering, thumbnails, and
 * the file names it owns. */
#include "report.h"
#include "annotations.h"
#include "lib/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Marks a page fxcam wrote, so that a rerun may replace it and nothing else. */
#define REPORT_GENERATOR "<meta name=\"generator\" content=\"fxcam batch report\">"

/* ---- Escaping ----------------------------------------------------------- */

/* Text for HTML content and quoted attributes: first made printable as the
 * terminal sees it (control bytes and invalid UTF-8 as \xNN, cli_name), then
 * the five HTML metacharacters as entities. */
static void put_text(cli_text *html, const char *text)
{
    for (const char *p = cli_name(text ? text : ""); *p; p++) {
        switch (*p) {
        case '&': cli_text_printf(html, "&amp;"); break;
        case '<': cli_text_printf(html, "&lt;"); break;
        case '>': cli_text_printf(html, "&gt;"); break;
        case '"': cli_text_printf(html, "&quot;"); break;
        case '\'': cli_text_printf(html, "&#39;"); break;
        default: cli_text_printf(html, "%c", *p); break;
        }
    }
}

/* A link relative to the report's folder: path without the "<dir>/" prefix,
 * every byte other than an RFC 3986 unreserved character or '/'
 * percent-encoded (so '#', '?', '%', quotes and spaces in names stay part of
 * the path). False when path is not below dir. */
static bool put_link(cli_text *html, const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (!path || strncmp(path, dir, n) != 0 || path[n] != '/') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)path + n + 1; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                     *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '/';
        if (plain) {
            cli_text_printf(html, "%c", *p);
        } else {
            cli_text_printf(html, "%%%02X", *p);
        }
    }
    return true;
}

/* ---- The page ------------------------------------------------------------ */

static const char style[] =
    "<style>\n"
    ":root{--fg:#1b1f24;--muted:#5b6470;--line:#d5dae1;--bg:#f6f7f9;--warn:#b45309;--bad:#b91c1c}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);"
    "background:var(--bg)}\n"
    "header{padding:16px 24px;background:#fff;border-bottom:1px solid var(--line)}\n"
    "h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px}\n"
    ".meta{color:var(--muted);font-size:13px;word-break:break-all}\n"
    ".counts{margin-top:6px}.counts b{margin-right:4px}.counts span{margin-right:16px}\n"
    ".caveat{margin-top:6px;font-size:13px;color:var(--muted)}\n"
    ".controls{position:sticky;top:0;z-index:1;display:flex;flex-wrap:wrap;gap:10px 18px;align-items:center;"
    "padding:10px 24px;background:#fff;border-bottom:1px solid var(--line)}\n"
    ".controls button{font:inherit;padding:4px 10px;border:1px solid var(--line);border-radius:6px;"
    "background:#fff;cursor:pointer}\n"
    ".controls button[aria-pressed=true]{background:#1f4e8c;color:#fff;border-color:#1f4e8c}\n"
    ".controls select,.controls input{font:inherit}\n"
    "#shown{color:var(--muted)}\n"
    "main{padding:16px 24px 40px}\n"
    "#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:14px}\n"
    ".card{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden;"
    "display:flex;flex-direction:column}\n"
    ".card.flagged{border-color:var(--warn);box-shadow:0 0 0 1px var(--warn)}\n"
    ".card a.thumb{display:block;aspect-ratio:1/1;background:#111}\n"
    ".card img{width:100%;height:100%;object-fit:contain;display:block}\n"
    ".card .nothumb{display:flex;height:100%;align-items:center;justify-content:center;color:#bbb;"
    "font-size:13px;padding:8px;text-align:center}\n"
    ".card figcaption{padding:8px 10px}\n"
    ".name{font-size:13px;word-break:break-all;color:var(--muted)}\n"
    ".pred{font-size:17px;margin-top:2px}.pred b{margin-right:6px}\n"
    ".flags{margin-top:4px;display:flex;flex-wrap:wrap;gap:4px}\n"
    ".flag{font-size:12px;padding:1px 6px;border-radius:10px;background:#fde7c7;color:#7a3b00}\n"
    ".flag[hidden]{display:none}\n"
    ".note{font-size:12px;color:var(--muted);margin-top:3px}\n"
    "table{border-collapse:collapse;background:#fff;width:100%}\n"
    "td,th{border:1px solid var(--line);padding:4px 8px;text-align:left;font-size:14px;vertical-align:top;"
    "word-break:break-all}\n"
    "td.err{color:var(--bad)}\n"
    "</style>\n";

/* Sorting and filtering reorder and hide the cards the C code wrote; the
 * "low confidence" flags follow the threshold control. No network, no
 * storage: the page works from file://. */
static const char script[] =
    "<script>\n"
    "(function () {\n"
    "  'use strict';\n"
    "  var grid = document.getElementById('grid');\n"
    "  var cards = Array.prototype.slice.call(grid.children);\n"
    "  var sortKey = 'name';\n"
    "  function conf(c) { return parseFloat(c.dataset.confidence); }\n"
    "  function byName(a, b) { var x = a.dataset.name, y = b.dataset.name; return x < y ? -1 : x > y ? 1 : 0; }\n"
    "  function byConf(sign) {\n"
    "    return function (a, b) {\n"
    "      var x = conf(a), y = conf(b);\n"
    "      if ((x < 0) !== (y < 0)) return x < 0 ? 1 : -1;  /* unknown confidence last */\n"
    "      return sign * (x - y) || byName(a, b);\n"
    "    };\n"
    "  }\n"
    "  var orders = {name: byName, confDesc: byConf(-1), confAsc: byConf(1)};\n"
    "  function lowThreshold() {\n"
    "    var el = document.getElementById('lowThreshold'), t = parseFloat(el.value);\n"
    "    return isFinite(t) ? t : parseFloat(el.defaultValue);\n"
    "  }\n"
    "  function update() {\n"
    "    var want = document.getElementById('classFilter').value;\n"
    "    var onlyFlagged = document.getElementById('onlyFlagged').checked;\n"
    "    var t = lowThreshold(), shown = 0, low = 0;\n"
    "    cards.sort(orders[sortKey]);\n"
    "    cards.forEach(function (c) {\n"
    "      var isLow = conf(c) >= 0 && conf(c) < t;\n"
    "      c.querySelector('.flag.low').hidden = !isLow;\n"
    "      var flagged = isLow || c.dataset.peak === 'outside';\n"
    "      c.classList.toggle('flagged', flagged);\n"
    "      low += isLow;\n"
    "      var visible = (want === '*' || c.dataset.class === want) && (!onlyFlagged || flagged);\n"
    "      c.hidden = !visible;\n"
    "      shown += visible;\n"
    "      grid.appendChild(c);\n"
    "    });\n"
    "    document.getElementById('shown').textContent = 'showing ' + shown + ' of ' + cards.length;\n"
    "    document.getElementById('lowCount').textContent = low;\n"
    "    Array.prototype.forEach.call(document.querySelectorAll('[data-sort]'), function (b) {\n"
    "      b.setAttribute('aria-pressed', b.dataset.sort === sortKey ? 'true' : 'false');\n"
    "    });\n"
    "  }\n"
    "  Array.prototype.forEach.call(document.querySelectorAll('[data-sort]'), function (b) {\n"
    "    b.addEventListener('click', function () { sortKey = b.dataset.sort; update(); });\n"
    "  });\n"
    "  ['classFilter', 'onlyFlagged', 'lowThreshold'].forEach(function (id) {\n"
    "    document.getElementById(id).addEventListener('input', update);\n"
    "    document.getElementById(id).addEventListener('change', update);\n"
    "  });\n"
    "  update();\n"
    "  document.body.dataset.ready = '1';\n"
    "})();\n"
    "</script>\n";

typedef struct report_counts {
    size_t results, failed, ignored, low, outside, *per_class, unknown_class;
} report_counts;

static void count_entries(const report_page *page, report_counts *n)
{
    for (size_t i = 0; i < page->count; i++) {
        const report_entry *e = &page->entries[i];
        if (e->kind == REPORT_FAILED) {
            n->failed++;
            continue;
        }
        if (e->kind == REPORT_IGNORED) {
            n->ignored++;
            continue;
        }
        n->results++;
        n->low += e->confidence >= 0 && e->confidence < REPORT_LOW_CONFIDENCE;
        n->outside += e->peak == REPORT_PEAK_OUTSIDE;
        bool known = false;
        for (uint32_t c = 0; e->class_name && c < page->class_count; c++) {
            if (strcmp(e->class_name, page->classes[c]) == 0) {
                n->per_class[c]++;
                known = true;
                break;
            }
        }
        n->unknown_class += !known;
    }
}

static void render_header(const report_page *page, const report_counts *n, cli_text *html)
{
    cli_text_printf(html, "<header>\n<h1>fxcam %s report</h1>\n<div class=\"meta\">model ", page->command);
    put_text(html, page->model);
    cli_text_printf(html, " &middot; method ");
    put_text(html, page->method);
    cli_text_printf(html, " &middot; layer ");
    put_text(html, page->layer);
    cli_text_printf(html, " &middot; images from ");
    put_text(html, page->image_dir);
    cli_text_printf(html, "</div>\n<div class=\"counts\">"
                    "<span><b id=\"resultCount\">%zu</b>results</span>"
                    "<span><b id=\"lowCount\">%zu</b>low confidence</span>", n->results, n->low);
    if (page->has_boxes) {
        cli_text_printf(html, "<span><b id=\"outsideCount\">%zu</b>map peak outside the box</span>", n->outside);
    }
    cli_text_printf(html, "<span><b id=\"failedCount\">%zu</b>failed</span>"
                    "<span><b id=\"ignoredCount\">%zu</b>ignored</span></div>\n", n->failed, n->ignored);
    cli_text_printf(html, "<div class=\"caveat\">A heatmap shows where the model looked for its prediction, not "
                    "where the finding is. Confidence is the model's probability of the predicted class "
                    "(as in summary.csv); &ldquo;low confidence&rdquo; means below the threshold set here "
                    "(default %.2f).%s</div>\n</header>\n", REPORT_LOW_CONFIDENCE,
                    page->has_boxes ? " &ldquo;Map peak outside the box&rdquo;: the heatmap's maximum lies "
                                      "outside every annotated box of the image." : "");
}

static void render_controls(const report_page *page, const report_counts *n, cli_text *html)
{
    cli_text_printf(html, "<div class=\"controls\">\n<span>Sort: "
                    "<button type=\"button\" id=\"sortName\" data-sort=\"name\">file name</button> "
                    "<button type=\"button\" id=\"sortConfDesc\" data-sort=\"confDesc\">confidence, high first"
                    "</button> "
                    "<button type=\"button\" id=\"sortConfAsc\" data-sort=\"confAsc\">confidence, low first"
                    "</button></span>\n");
    cli_text_printf(html, "<label>Predicted class: <select id=\"classFilter\"><option value=\"*\">all (%zu)"
                    "</option>", n->results);
    for (uint32_t c = 0; c < page->class_count; c++) {
        cli_text_printf(html, "<option value=\"");
        put_text(html, page->classes[c]);
        cli_text_printf(html, "\">");
        put_text(html, page->classes[c]);
        cli_text_printf(html, " (%zu)</option>", n->per_class[c]);
    }
    if (n->unknown_class) {
        cli_text_printf(html, "<option value=\"\">not known (%zu)</option>", n->unknown_class);
    }
    cli_text_printf(html, "</select></label>\n"
                    "<label>Low confidence below <input type=\"number\" id=\"lowThreshold\" min=\"0\" max=\"1\" "
                    "step=\"0.05\" value=\"%.2f\" style=\"width:5em\"></label>\n"
                    "<label><input type=\"checkbox\" id=\"onlyFlagged\"> flagged only</label>\n"
                    "<span id=\"shown\"></span>\n</div>\n", REPORT_LOW_CONFIDENCE);
}

static void render_card(const report_page *page, const report_entry *e, cli_text *html)
{
    bool low = e->confidence >= 0 && e->confidence < REPORT_LOW_CONFIDENCE;
    const char *peak = e->peak == REPORT_PEAK_OUTSIDE ? "outside" : e->peak == REPORT_PEAK_INSIDE ? "inside" : "none";
    cli_text_printf(html, "<figure class=\"card%s\" data-name=\"", low || e->peak == REPORT_PEAK_OUTSIDE ? " flagged" : "");
    put_text(html, e->file);
    cli_text_printf(html, "\" data-class=\"");
    put_text(html, e->class_name ? e->class_name : "");
    cli_text_printf(html, "\" data-confidence=\"%.6f\" data-peak=\"%s\">\n<a class=\"thumb\" href=\"",
                    e->confidence >= 0 ? e->confidence : -1.0, peak);
    if (!put_link(html, page->dir, e->figure)) {
        cli_text_printf(html, "#");
    }
    cli_text_printf(html, "\">");
    size_t mark = html->size;
    cli_text_printf(html, "<img loading=\"lazy\" alt=\"thumbnail\" src=\"");
    if (put_link(html, page->dir, e->thumbnail)) {
        cli_text_printf(html, "\">");
    } else {
        html->size = mark;
        cli_text_printf(html, "<span class=\"nothumb\">no thumbnail (the run that made this figure had no "
                        "--report); open the figure</span>");
    }
    cli_text_printf(html, "</a>\n<figcaption><div class=\"name\">");
    put_text(html, e->file);
    cli_text_printf(html, "</div>\n<div class=\"pred\"><b>");
    put_text(html, e->class_name ? e->class_name : "class not known");
    if (e->confidence >= 0) {
        cli_text_printf(html, "</b><span class=\"conf\">%.1f%%</span></div>\n", 100.0 * e->confidence);
    } else {
        cli_text_printf(html, "</b><span class=\"conf\">confidence not known</span></div>\n");
    }
    cli_text_printf(html, "<div class=\"flags\"><span class=\"flag low\"%s>low confidence</span>", low ? "" : " hidden");
    if (e->peak == REPORT_PEAK_OUTSIDE) {
        cli_text_printf(html, "<span class=\"flag peak\">map peak outside the box</span>");
    }
    cli_text_printf(html, "</div>\n");
    if (e->note) {
        cli_text_printf(html, "<div class=\"note\">");
        put_text(html, e->note);
        cli_text_printf(html, "</div>\n");
    }
    cli_text_printf(html, "</figcaption>\n</figure>\n");
}

static void render_table(const report_page *page, enum report_kind kind, size_t count, cli_text *html)
{
    bool failed = kind == REPORT_FAILED;
    cli_text_printf(html, "<h2 id=\"%s\">%s (%zu)</h2>\n", failed ? "failed" : "ignored",
                    failed ? "Images that failed" : "Files ignored (not images fxcam reads)", count);
    if (!count) {
        cli_text_printf(html, "<p>None.</p>\n");
        return;
    }
    cli_text_printf(html, "<table id=\"%sTable\"><tr><th>file</th><th>%s</th></tr>\n", failed ? "failed" : "ignored",
                    failed ? "error" : "reason");
    for (size_t i = 0; i < page->count; i++) {
        const report_entry *e = &page->entries[i];
        if (e->kind != kind) {
            continue;
        }
        cli_text_printf(html, "<tr><td>");
        put_text(html, e->file);
        cli_text_printf(html, "</td><td class=\"%s\">", failed ? "err" : "why");
        put_text(html, e->note);
        cli_text_printf(html, "</td></tr>\n");
    }
    cli_text_printf(html, "</table>\n");
}

void report_render(const report_page *page, cli_text *html)
{
    report_counts n = {0};
    n.per_class = calloc(page->class_count + 1, sizeof *n.per_class);
    if (!n.per_class) {
        fputs("fxcam: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    count_entries(page, &n);
    cli_text_printf(html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "%s\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    /* Nothing may load from elsewhere: only this file's own style and script, and
                     * images beside it. */
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
                    "<title>fxcam %s report</title>\n%s</head>\n<body>\n", REPORT_GENERATOR, page->command, style);
    render_header(page, &n, html);
    render_controls(page, &n, html);
    cli_text_printf(html, "<main>\n<div id=\"grid\">\n");
    for (size_t i = 0; i < page->count; i++) {
        if (page->entries[i].kind == REPORT_RESULT) {
            render_card(page, &page->entries[i], html);
        }
    }
    cli_text_printf(html, "</div>\n");
    render_table(page, REPORT_FAILED, n.failed, html);
    render_table(page, REPORT_IGNORED, n.ignored, html);
    cli_text_printf(html, "</main>\n%s</body>\n</html>\n", script);
    free(n.per_class);
}

/* Whether path may be replaced: absent, or a regular file fxcam wrote (its
 * first KiB holds the generator mark). */
static bool replaceable(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return errno == ENOENT;
    }
    if (!S_ISREG(st.st_mode)) {
        return false;
    }
    char head[1024] = {0};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return false;
    }
    ssize_t got = read(fd, head, sizeof head - 1);
    close(fd);
    return got > 0 && strstr(head, REPORT_GENERATOR) != NULL;
}

bool report_write(const report_page *page)
{
    char *path = cli_strdup_printf("%s/%s", page->dir, page->file_name);
    bool ok = replaceable(path);
    if (!ok) {
        cli_error(page->command, "'%s' exists and was not written by fxcam; not replaced (move it away, or give "
                  "another --output-dir)", cli_name(path));
    } else {
        cli_text html = {0};
        report_render(page, &html);
        ok = cli_save_text(page->command, path, &html);
        cli_text_free(&html);
        if (ok) {
            printf("report: %s\n", cli_name(path));
        }
    }
    free(path);
    return ok;
}

char *report_file_name(const cli_settings *s)
{
    if (s->shard_count) {
        return cli_strdup_printf("index.shard-%u-of-%u.html", s->shard_index, s->shard_count);
    }
    return cli_strdup_printf("%s", REPORT_FILE_NAME);
}

/* ---- Thumbnails ---------------------------------------------------------- */

char *report_thumbnail_path(const char *figure)
{
    size_t n = strlen(figure);
    if (n > 4 && strcmp(figure + n - 4, ".png") == 0) {
        n -= 4;
    }
    return cli_strdup_printf("%.*s%s", (int)n, figure, REPORT_THUMB_SUFFIX);
}

/* Shrinks *img (RGB8) to at most side pixels on its longer side: halving
 * steps first (a 2:1 bilinear step with half-pixel centres averages 2 x 2
 * pixels, so a large radiograph does not alias), then one bilinear step. */
static fx_status shrink(fx_image *img, uint32_t side)
{
    while (img->width > 2 * side || img->height > 2 * side) {
        fx_image half = {0};
        half.width = img->width / 2 ? img->width / 2 : 1;
        half.height = img->height / 2 ? img->height / 2 : 1;
        fx_status st = fx_resize_bilinear(img, &half);
        if (st != FX_OK) {
            return st;
        }
        fx_image_free(img);
        *img = half;
    }
    uint32_t longer = img->width > img->height ? img->width : img->height;
    if (longer <= side) {
        return FX_OK;
    }
    fx_image out = {0};
    out.width = (uint32_t)((uint64_t)img->width * side / longer);
    out.height = (uint32_t)((uint64_t)img->height * side / longer);
    out.width = out.width ? out.width : 1;
    out.height = out.height ? out.height : 1;
    fx_status st = fx_resize_bilinear(img, &out);
    if (st == FX_OK) {
        fx_image_free(img);
        *img = out;
    }
    return st;
}

fx_status report_write_thumbnail(const cli_settings *s, const fx_model *model, const char *path,
                                 const fx_image *image, const fx_image_info *info, const fx_image *heatmap,
                                 const struct cli_annotation *boxes)
{
    fx_image pic = {0}, view = {0};
    fx_status st;
    if (s->heatmap_only) {
        st = fx_colormap_apply(heatmap, s->colormap, &pic);
    } else {
        fx_overlay_options o;
        fx_overlay_options_init(&o);
        o.alpha = s->alpha;
        o.colormap = s->colormap;
        o.threshold = s->threshold;
        /* Like the figure: the image as the model read it, not its own min..max. */
        st = cli_model_view(model, image, info, &view);
        if (st == FX_OK) {
            st = fx_overlay(&view, heatmap, &o, &pic);
        }
        fx_image_free(&view);
    }
    if (st == FX_OK && boxes) {
        cli_draw_boxes(boxes, &pic, 0, 220, 0);
    }
    if (st == FX_OK) {
        st = shrink(&pic, REPORT_THUMB_SIDE);
    }
    if (st == FX_OK) {
        st = fx_image_save(path, &pic, NULL);
    }
    fx_image_free(&pic);
    return st;
}

bool report_is_own_file(const cli_settings *s, const char *figure_suffix, const char *name)
{
    if (s->report) {
        char *own = report_file_name(s);
        bool same = strcmp(name, own) == 0;
        free(own);
        if (same) {
            return true;
        }
    }
    size_t n = strlen(name), m = strlen(figure_suffix), t = strlen(REPORT_THUMB_SUFFIX);
    if (m < 4 || n < m - 4 + t) {
        return false;
    }
    /* "_gradcam.png" -> the name ends in "_gradcam" + "_thumb.png" */
    return strcmp(name + n - t, REPORT_THUMB_SUFFIX) == 0 &&
           strncmp(name + n - t - (m - 4), figure_suffix, m - 4) == 0;
}
