/* libFuzzer target: the query parameters of POST /api/v1/explain
 * (serve_parse_explain in cli/serve_params.c), as libmicrohttpd hands them
 * over: the input is split at '&', NUL and newline bytes into at most
 * SERVE_MAX_PARAMS pairs, each at its first '=' into key and value (no '=':
 * a key without a value). Checks that an accepted request is in range and
 * that the message of a refused one is a terminated string. */
#include "serve.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const classes[] = {"normal", "fracture"};
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    serve_param params[SERVE_MAX_PARAMS];
    size_t count = 0;
    char *start = text;
    for (size_t i = 0; i <= size && count < SERVE_MAX_PARAMS; i++) {
        if (i == size || text[i] == '\0' || text[i] == '\n' || text[i] == '&') {
            text[i] = '\0';
            char *eq = strchr(start, '=');
            if (eq)
                *eq = '\0';
            params[count].key = start;
            params[count].value = eq ? eq + 1 : NULL;
            count++;
            start = text + i + 1;
        }
    }
    explain_params p;
    char why[400];
    memset(why, 'x', sizeof why);
    if (serve_parse_explain(params, count, classes, 2, &p, why, sizeof why)) {
        if (p.method_count < 1 || p.method_count > FX_CAM_METHOD_COUNT || p.target_class < -1 ||
            p.target_class > 1 || !(p.alpha >= 0.0f && p.alpha <= 1.0f) ||
            !(p.threshold >= 0.0f && p.threshold <= 1.0f) || memchr(p.layer, '\0', sizeof p.layer) == NULL)
            abort();
        for (uint32_t i = 0; i < p.method_count; i++)
            if (!fx_cam_method_name(p.methods[i]))
                abort();
    } else if (memchr(why, '\0', sizeof why) == NULL || why[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
