/* `fxcam methods` and the method lists of the help texts and messages: all
 * from the library's method registry (fx_cam_method_at), never a copy. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

const char *cli_method_names(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < fx_cam_method_count() && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", fx_cam_method_at(i)->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *cli_colormap_names(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < fx_colormap_count() && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", fx_colormap_name(fx_colormap_at(i)));
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *cli_method_title(int32_t method)
{
    const char *title = fx_cam_method_title(method);
    return title ? title : "CAM";
}

const char *cli_method_slug(int32_t method)
{
    const fx_cam_method_info *info = fx_cam_method_find(method);
    return info ? info->slug : "cam";
}

/* What the method asks of the model, in words. */
static const char *needs_text(uint32_t needs)
{
    if (needs & FX_CAM_NEEDS_INPUT_GRADIENTS)
        return "input gradients";
    if (needs & FX_CAM_NEEDS_EXTRA_FORWARDS)
        return "extra forward passes";
    if (needs & FX_CAM_NEEDS_GRADIENTS)
        return "gradients";
    return "forward only";
}

static int wider(int width, const char *text)
{
    int n = (int)strlen(text);
    return n > width ? n : width;
}

/* One line per method: name, title, needs, description, aliases, in columns
 * as wide as their widest entry (a fixed width broke the alignment when the
 * registry grew, e.g. "extra forward passes"). */
int cli_run_methods(const cli_settings *s)
{
    (void)s;
    int name_w = 0, title_w = 0, needs_w = 0;
    for (size_t i = 0; i < fx_cam_method_count(); i++) {
        const fx_cam_method_info *m = fx_cam_method_at(i);
        name_w = wider(name_w, m->name);
        title_w = wider(title_w, m->title);
        needs_w = wider(needs_w, needs_text(m->needs));
    }
    for (size_t i = 0; i < fx_cam_method_count(); i++) {
        const fx_cam_method_info *m = fx_cam_method_at(i);
        printf("%-*s  %-*s  %-*s  %s", name_w, m->name, title_w, m->title, needs_w, needs_text(m->needs),
               m->description);
        if (m->aliases[0]) {
            char aliases[128];
            snprintf(aliases, sizeof aliases, "%s", m->aliases);
            for (char *c = aliases; *c; c++)
                *c = *c == ',' ? ' ' : *c;
            printf(" (aliases: %s)", aliases);
        }
        printf("\n");
    }
    return CLI_EXIT_OK;
}
