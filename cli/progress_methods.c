/* Progress, estimate and Ctrl-C for the methods with one forward pass per
 * channel of the layer (Score-CAM, Ablation-CAM: 1024 forwards per image on
 * DenseNet-121's last block). Everything goes through the library's progress
 * callback (fx_gradcam_options.progress): the first call (done = 0) starts
 * the clock, the second (after the first batch of masked forwards) gives the
 * estimate, the later ones draw the bar; a SIGINT makes the next call return
 * non-zero, so the library stops with FX_ERR_CANCELLED and nothing is
 * written (cli_cancelled). */
#include "cli.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Set by the SIGINT handler, read by the callback: the only state shared
 * with a signal handler, hence sig_atomic_t. */
static volatile sig_atomic_t interrupted;
/* 1 once the library has called the callback, i.e. once a SIGINT will be
 * seen within one batch of forwards. Before that (model load, the first
 * forward, Smooth Grad-CAM++'s passes that never call back) a Ctrl-C ends
 * the process at once, as it does without this handler. */
static volatile sig_atomic_t armed;
static struct sigaction previous;
static bool installed;

static void on_sigint(int sig)
{
    if (!armed) {
        /* Only async-signal-safe calls here: back to the default action. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = 1;
}

bool cli_methods_need_channel_forwards(const int32_t *methods, uint32_t count)
{
    for (uint32_t j = 0; j < count; j++) {
        const fx_cam_method_info *m = fx_cam_method_find(methods[j]);
        if (m && (m->needs & FX_CAM_NEEDS_EXTRA_FORWARDS)) {
            return true;
        }
    }
    return false;
}

/* Channels of the layer's output (the number of forwards per image is this
 * divided by the channel batch), from the model's module table; 0 when the
 * layer is not listed. */
static uint32_t layer_channels(const fx_model *model, const char *layer)
{
    for (size_t i = 0; layer && i < fx_model_layer_count(model); i++) {
        fx_layer_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (fx_model_layer(model, i, &info) == FX_OK && strcmp(info.name, layer) == 0 && info.rank == 4) {
            return (uint32_t)info.shape[1];
        }
    }
    return 0;
}

void cli_channel_progress_init(cli_channel_progress *p, const cli_settings *s, const fx_model *model,
                               const int32_t *methods, uint32_t method_count, bool show_progress,
                               fx_gradcam_options *opts)
{
    memset(p, 0, sizeof *p);
    p->command = s->command;
    p->show_progress = show_progress;
    p->to = stderr;
    p->terminal = isatty(fileno(stderr)) == 1;
    /* --layers (cli_cam_options put them in opts): the library runs every
     * layer's channels, so the estimate counts them all (as the library's
     * progress total does). */
    if (opts->layers && opts->layer_count > 0) {
        p->layer = s->layers;
        for (uint32_t l = 0; l < opts->layer_count && l < FX_MAX_LAYERS_PER_CALL; l++) {
            p->layer_channels[l] = layer_channels(model, opts->layers[l]);
            p->channels += p->layer_channels[l];
            p->layer_count++;
        }
    } else {
        p->layer = s->layer ? s->layer : fx_model_default_layer(model);
        p->layer_channels[0] = layer_channels(model, p->layer);
        p->channels = p->layer_channels[0];
        p->layer_count = 1;
    }
    size_t used = 0;
    for (uint32_t j = 0; j < method_count && used < sizeof p->titles; j++) {
        const fx_cam_method_info *m = fx_cam_method_find(methods[j]);
        if (m && (m->needs & FX_CAM_NEEDS_EXTRA_FORWARDS) && !(m->needs & FX_CAM_NEEDS_GRADIENTS)) {
            int w = snprintf(p->titles + used, sizeof p->titles - used, "%s%s", used ? " and " : "", m->title);
            used += w > 0 ? (size_t)w : 0;
            p->method_count++;
        }
    }
    opts->progress = cli_channel_progress_callback;
    opts->progress_user = p;
}

void cli_channel_progress_begin(void)
{
    interrupted = 0;
    armed = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* A second Ctrl-C while the current batch of forwards finishes ends the
     * process the usual way. */
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    installed = sigaction(SIGINT, &sa, &previous) == 0;
}

void cli_channel_progress_end(cli_channel_progress *p)
{
    if (installed) {
        sigaction(SIGINT, &previous, NULL);
        installed = false;
    }
    armed = 0;
    if (p && p->line_drawn) {
        fputs("\r\033[K", p->to);
        fflush(p->to);
        p->line_drawn = false;
    }
}

bool cli_interrupted(void)
{
    return interrupted != 0;
}

/* "42 s", "3.5 min", "2.1 h": the estimate's unit follows its size. */
static void format_estimate(double seconds, char *buf, size_t size)
{
    if (seconds < 120) {
        snprintf(buf, size, "%.0f s", seconds < 1 ? 1.0 : seconds);
    } else if (seconds < 7200) {
        snprintf(buf, size, "%.1f min", seconds / 60);
    } else {
        snprintf(buf, size, "%.1f h", seconds / 3600);
    }
}

/* Forwards of batch masked inputs that one method runs per image: each
 * layer's channels are batched on their own (a layer is one pass). 0 when a
 * layer's channels are unknown. */
static uint64_t forwards_per_image(const cli_channel_progress *p, uint64_t batch)
{
    uint64_t forwards = 0;
    for (uint32_t l = 0; l < p->layer_count; l++) {
        if (p->layer_channels[l] == 0) {
            return 0;
        }
        forwards += (p->layer_channels[l] + batch - 1) / batch;
    }
    return forwards;
}

/* Printed once per command, after the first batch of forwards: how many
 * forwards of what size, and how long one image takes at the first batch's
 * rate. The batch size is what the library ran (the first batch's done). */
static void print_estimate(cli_channel_progress *p, uint64_t first_batch, double seconds)
{
    char when[32];
    uint64_t forwards = forwards_per_image(p, first_batch);
    if (forwards) {
        uint64_t per_image = (uint64_t)p->channels * p->method_count;
        format_estimate(seconds * (double)per_image / (double)first_batch, when, sizeof when);
        fprintf(p->to, "fxcam %s: %s on %s: %u channels = %llu forwards of %llu per image%s; about %s per image "
                "(measured on the first batch)\n", p->command, p->titles, cli_name(p->layer), p->channels,
                (unsigned long long)forwards, (unsigned long long)first_batch, p->method_count > 1 ? " each" : "",
                when);
    } else {
        format_estimate(seconds * (double)p->chunk_total / (double)first_batch, when, sizeof when);
        fprintf(p->to, "fxcam %s: %s on %s: %llu forwards of masked inputs in batches of %llu; about %s (measured "
                "on the first batch)\n", p->command, p->titles, cli_name(p->layer),
                (unsigned long long)p->chunk_total, (unsigned long long)first_batch, when);
    }
    fflush(p->to);
}

static void print_progress(cli_channel_progress *p, uint64_t done, uint64_t total, double elapsed)
{
    char left[32];
    cli_format_duration(elapsed * (double)(total - done) / (double)done, left, sizeof left);
    unsigned percent = (unsigned)(done * 100 / total);
    if (p->terminal) {
        enum { WIDTH = 30 };
        char bar[WIDTH + 1];
        size_t filled = (size_t)(done * WIDTH / total);
        for (size_t i = 0; i < WIDTH; i++) {
            bar[i] = i < filled ? '#' : '.';
        }
        bar[WIDTH] = '\0';
        fprintf(p->to, "\r%s [%s] %llu/%llu forwards of masked inputs  %u%%  %s left\033[K", p->titles, bar,
                (unsigned long long)done, (unsigned long long)total, percent, left);
        p->line_drawn = true;
    } else if (percent / 10 != p->last_decile || done == total) {
        /* For logs: one line per tenth, not per batch. */
        p->last_decile = percent / 10;
        fprintf(p->to, "fxcam %s: %s: %u%% (%llu/%llu forwards of masked inputs), %s left\n", p->command,
                p->titles, percent, (unsigned long long)done, (unsigned long long)total, left);
    }
    fflush(p->to);
}

int cli_channel_progress_callback(void *user, uint64_t done, uint64_t total)
{
    cli_channel_progress *p = user;
    armed = 1;
    if (interrupted) {
        return 1;
    }
    double now = cli_now();
    if (done == 0) {
        /* The total is known and the first batch starts now; a later call
         * with done = 0 is the next call of a batch run. */
        p->chunk_start = now;
        p->chunk_total = total;
        p->last_decile = 0;
        return 0;
    }
    double elapsed = now - p->chunk_start;
    if (!p->estimated) {
        print_estimate(p, done, elapsed);
        p->estimated = true;
    }
    if (p->show_progress && total > 0) {
        print_progress(p, done, total, elapsed);
    }
    return 0;
}

int cli_cancelled(const char *command)
{
    /* The library's message says after how many of how many forwards; its
     * function name means nothing to a shell user. */
    const char *why = fx_last_error();
    const char *prefix = "fx_gradcam_compute: ";
    if (strncmp(why, prefix, strlen(prefix)) == 0) {
        why += strlen(prefix);
    }
    fprintf(stderr, "fxcam %s: interrupted (Ctrl-C): %s; no output file was written for the image(s) being "
            "computed\n", command, cli_message(why));
    return CLI_EXIT_INTERRUPTED;
}
