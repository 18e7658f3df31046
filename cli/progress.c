/* Progress of a batch: on a terminal one line redrawn with \r (bar, count,
 * rate, time left); otherwise one plain line per image, for logs. */
#include "cli.h"

#include <stdarg.h>
#include <unistd.h>

void cli_format_duration(double seconds, char *buf, size_t size)
{
    long s = seconds > 0 && seconds < 1e9 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600) {
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    } else {
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    }
}

void cli_progress_start(cli_progress *p, FILE *to, size_t total)
{
    p->to = to;
    p->terminal = isatty(fileno(to)) == 1;
    p->total = total;
    p->done = 0;
    p->failed = 0;
    p->start = cli_now();
    p->line_drawn = false;
}

static void clear_line(cli_progress *p)
{
    if (p->line_drawn) {
        fputs("\r\033[K", p->to);
        p->line_drawn = false;
    }
}

static void draw_bar(cli_progress *p)
{
    enum { WIDTH = 30 };
    double elapsed = cli_now() - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
    size_t filled = p->total ? p->done * WIDTH / p->total : WIDTH;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++) {
        bar[i] = i < filled ? '#' : '.';
    }
    bar[WIDTH] = '\0';
    char eta[32];
    if (rate > 0) {
        cli_format_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
    } else {
        snprintf(eta, sizeof eta, "?");
    }
    fprintf(p->to, "\r[%s] %zu/%zu  %.1f img/s  ETA %s", bar, p->done, p->total, rate, eta);
    if (p->failed) {
        fprintf(p->to, "  (%zu failed)", p->failed);
    }
    fputs("\033[K", p->to);
    fflush(p->to);
    p->line_drawn = true;
}

void cli_progress_step(cli_progress *p, const char *name, const char *outcome, bool failed)
{
    /* Names come from the file system, outcomes quote them: escaped, so that
     * a file name cannot send control sequences to the terminal. */
    name = cli_name(name);
    outcome = cli_name(outcome);
    p->done++;
    p->failed += failed ? 1 : 0;
    if (p->terminal) {
        if (failed) {
            clear_line(p);
            fprintf(p->to, "%s: %s\n", name, outcome);
        }
        draw_bar(p);
        return;
    }
    fprintf(p->to, "[%zu/%zu] %s: %s\n", p->done, p->total, name, outcome);
    fflush(p->to);
}

void cli_progress_note(cli_progress *p, const char *fmt, ...)
{
    clear_line(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->to, fmt, ap);
    va_end(ap);
    fputc('\n', p->to);
    if (p->terminal && p->done > 0) {
        draw_bar(p);
    }
}

void cli_progress_finish(cli_progress *p)
{
    if (p->terminal && p->line_drawn) {
        fputc('\n', p->to);
        p->line_drawn = false;
    }
    fflush(p->to);
}
