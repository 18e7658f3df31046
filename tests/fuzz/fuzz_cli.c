/* libFuzzer target: the fxcam command's argument parser (cli_parse in
 * cli/args.c) with every option accepted. The input is split at NUL bytes
 * and newlines into at most 32 arguments. Usage errors go to stderr: run with
 * -close_fd_mask=2 (tests/fuzz/run.sh does). */
#include "cli.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int all_options[OPT_COUNT + 1];
    for (int i = 0; i < OPT_COUNT; i++)
        all_options[i] = i;
    all_options[OPT_COUNT] = -1;
    static const cli_command command = {"fuzz", "fuzz target", "fxcam fuzz [options]", NULL, all_options, NULL,
                                        NULL};

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    char *start = text;
    for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
        if (i == size || text[i] == '\0' || text[i] == '\n') {
            text[i] = '\0';
            argv[argc++] = start;
            start = text + i + 1;
        }
    }
    argv[argc] = NULL;
    cli_settings settings;
    int rc = cli_parse(&command, argc, argv, &settings);
    if (rc != CLI_EXIT_OK && rc != CLI_EXIT_USAGE)
        abort();
    free(text);
    return 0;
}
