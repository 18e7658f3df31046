/* fxcam: the command-line tool. Dispatches to one function per subcommand,
 * prints the tool's help and version. */
#include "cli.h"
#include "serve.h"
#include "shard.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define GLOBAL_OPTIONS OPT_METHOD, OPT_LAYER, OPT_CLASS, OPT_ALPHA, OPT_COLORMAP, OPT_DEVICE, OPT_THREADS

#define FIGURE_OPTIONS OPT_THRESHOLD, OPT_PANEL_HEIGHT, OPT_BOXES, OPT_MAX_PIXELS, OPT_MAX_SIDE, OPT_FRAME

/* How a --model is read (fx_model_options.output_kind, .strict) and how it
 * was trained (intensity, resize, input size, channels, mean/std, class names). */
#define MODEL_OPTIONS OPT_OUTPUT_KIND, OPT_STRICT, OPT_INTENSITY, OPT_BITS, OPT_WINDOW, OPT_RESIZE_MODE, \
    OPT_RESIZE_SIZE, OPT_INPUT_SIZE, OPT_CHANNELS, OPT_MEAN, OPT_STD, OPT_CLASS_NAMES

/* Refinements and method settings of the computing commands (cli_cam_options). */
#define CAM_OPTIONS OPT_LAYERS, OPT_CLASS_WEIGHTS, OPT_AUG_SMOOTH, OPT_EIGEN_SMOOTH, OPT_SMOOTH_SAMPLES, \
    OPT_SMOOTH_NOISE, OPT_CHANNEL_BATCH_SIZE

static const int single_options[] = {OPT_HELP, OPT_MODEL, OPT_IMAGE, OPT_OUTPUT, OPT_HEATMAP_ONLY,
                                     OPT_OVERLAY_ONLY, GLOBAL_OPTIONS, CAM_OPTIONS, MODEL_OPTIONS, FIGURE_OPTIONS, -1};
static const int batch_options[] = {OPT_HELP, OPT_MODEL, OPT_IMAGE_DIR, OPT_OUTPUT_DIR, OPT_MAX_IMAGES,
                                    OPT_BATCH_SIZE, OPT_BATCH_MEMORY, OPT_RECURSIVE, OPT_RESUME, OPT_HEATMAP_ONLY,
                                    OPT_OVERLAY_ONLY, OPT_SHARD, OPT_REPORT, OPT_IO_THREADS, GLOBAL_OPTIONS, MODEL_OPTIONS, FIGURE_OPTIONS,
                                    CAM_OPTIONS, OPT_TARGET_CLASSES, -1};
static const int compare_options[] = {OPT_HELP, OPT_MODEL, OPT_IMAGE, OPT_OUTPUT, OPT_METHODS, OPT_LAYER,
                                      OPT_CLASS, OPT_ALPHA, OPT_COLORMAP, OPT_DEVICE, OPT_THREADS,
                                      MODEL_OPTIONS, FIGURE_OPTIONS, CAM_OPTIONS, -1};
static const int layers_options[] = {OPT_HELP, OPT_MODEL, OPT_FEATURE_MAPS, OPT_DEVICE, OPT_THREADS,
                                     MODEL_OPTIONS, -1};
static const int info_options[] = {OPT_HELP, OPT_MODEL, OPT_DEVICE, OPT_THREADS, MODEL_OPTIONS, -1};
static const int methods_options[] = {OPT_HELP, -1};
static const int demo_options[] = {OPT_HELP, OPT_OUTPUT_DIR, OPT_DEVICE, OPT_THREADS, -1};
static const int evaluate_options[] = {OPT_HELP, OPT_MODEL, OPT_IMAGE_DIR, OPT_BOXES, OPT_CSV, OPT_METHOD,
                                       OPT_LAYER, OPT_CLASS, OPT_BATCH_SIZE, OPT_MAX_IMAGES, OPT_DEVICE,
                                       OPT_THREADS, OPT_MAX_PIXELS, OPT_MAX_SIDE, OPT_FRAME, OPT_SHARD, MODEL_OPTIONS,
                                       OPT_METHODS, OPT_FAITHFULNESS, OPT_REPORT, OPT_OUTPUT_DIR, OPT_IO_THREADS,
                                       CAM_OPTIONS, -1};

static const cli_option_help single_help[] = {
    {OPT_BOXES, "draw the image's boxes from this CSV (file,label,x0,y0,x1,y1) in green"},
    {-1, NULL},
};
static const cli_option_help batch_help[] = {
    {OPT_BOXES, "draw each image's boxes from this CSV (file,label,x0,y0,x1,y1; file relative to "
                "--image-dir) in green"},
    {OPT_RESUME, "skip images a previous run finished; summaries then cover both runs"},
    {-1, NULL},
};
static const cli_option_help compare_help[] = {
    {OPT_OUTPUT, "output PNG; default: <image name>_compare.png"},
    {OPT_BOXES, "draw the image's boxes from this CSV (file,label,x0,y0,x1,y1) in green"},
    {-1, NULL},
};
static const cli_option_help demo_help[] = {
    {OPT_OUTPUT_DIR, "folder for the figures (default: ./fxcam-demo)"},
    {-1, NULL},
};
static const cli_option_help evaluate_help[] = {
    {OPT_METHOD, "methods to score, comma-separated or repeated (default: gradcam,gradcam++)"},
    {OPT_METHODS, "methods to score, comma-separated (replaces the list; default: gradcam,gradcam++)"},
    {OPT_CLASS, "class whose map is scored, by index or name; default: the positive class"},
    {OPT_MAX_IMAGES, "evaluate only the first N images listed in --boxes"},
    {-1, NULL},
};

static const cli_command commands[] = {
    {"single", "Heatmap of one image: a figure (original | heatmap | overlay) with the prediction.",
     "fxcam single --image PATH [--output PATH] [--model PATH] [options]",
     "Writes a figure with the original image, the heatmap and the overlay, a caption\n"
     "(predicted class, confidence, method, layer, input file and model, time) and a\n"
     "color bar, and prints the prediction, e.g.\n"
     "\"fracture (93.4%)  ->  xray_gradcam.png\".\n"
     "With --heatmap-only or --overlay-only it writes that single image instead.\n\n"
     "Example:\n"
     "  fxcam single --image wrist.png --output wrist_cam.png --method gradcam++\n",
     single_options, single_help, cli_run_single},
    {"batch", "Heatmap figures for every image (PNG, JPEG, DICOM) of a folder, with summary.txt and summary.csv.",
     "fxcam batch --image-dir DIR --output-dir DIR [--model PATH] [options]",
     "Processes every image of --image-dir in sorted order (subfolders with\n"
     "--recursive): files named .png, .jpg, .jpeg, .dcm or .dicom (any case), and\n"
     "other files whose first bytes are PNG, JPEG or DICOM (DICOM from a PACS often\n"
     "has no extension); the decoder goes by the content. Several images go through\n"
     "each forward pass, and it writes one figure per image\n"
     "as <name>_<method>.png into --output-dir, plus summary.txt (counts per class,\n"
     "mean confidence, failures, timings) and summary.csv (file, predicted_class,\n"
     "confidence, peak_x, peak_y, output, status). Files are written atomically.\n"
     "An image that cannot be read is reported and skipped; other files and anything\n"
     "but regular files (FIFOs, sockets, devices) are listed, with the reason, and\n"
     "ignored. Exit status 1 when any image failed.\n"
     "Output names: <name>_<method>.png; when names differ only in their extension\n"
     "(a.png, a.PNG, a.jpg), the others keep it: a_PNG_<method>.png, a_jpg_<method>.png.\n"
     "Images are decoded as their forward pass needs them; a pass holds at most\n"
     "--batch-size images and --batch-memory bytes of decoded images and maps.\n"
     "The underscore spellings --image_dir, --output_dir, --max_images also work.\n\n"
     "Example:\n"
     "  fxcam batch --image-dir xrays/ --output-dir cams/ --batch-size 16 --resume\n",
     batch_options, batch_help, cli_run_batch},
    {"compare", "Two methods (default Grad-CAM and Grad-CAM++) of one image side by side, with their difference.",
     "fxcam compare --image PATH [--output PATH] [--methods A,B] [--model PATH] [options]",
     "Both maps come from one pass through the model. The figure shows the original,\n"
     "the two overlays and |A - B| on its own scale.\n\n"
     "Example:\n"
     "  fxcam compare --image wrist.png --output wrist_compare.png\n",
     compare_options, compare_help, cli_run_compare},
    {"layers", "List the model's layers with type and output shape; * marks the default target.",
     "fxcam layers [--model PATH] [--feature-maps]",
     "Layers whose output is a feature map [batch, channels, h, w] are valid --layer\n"
     "values; --feature-maps lists only those.\n",
     layers_options, NULL, cli_run_layers},
    {"info", "Show the model: classes, input size, device, default target layer.",
     "fxcam info [--model PATH]", NULL, info_options, NULL, cli_run_info},
    {"demo", "Run the embedded fracture model on the bundled sample radiographs.",
     "fxcam demo [--output-dir DIR]",
     "Needs no files: writes one Grad-CAM figure and one Grad-CAM / Grad-CAM++\n"
     "comparison per sample into ./fxcam-demo/ (or --output-dir) and prints where.\n"
     "Annotated fracture boxes are drawn in green.\n",
     demo_options, demo_help, cli_run_demo},
    {"evaluate", "Check maps against annotated boxes: accuracy, pointing game, energy in box.",
     "fxcam evaluate --image-dir DIR --boxes CSV [--model PATH] [--method M[,M...]] [--csv PATH]\n"
     "                [--report --output-dir DIR]",
     "Reads the annotations (file,label,x0,y0,x1,y1; label 1 = the model's positive\n"
     "class, 0 = normal; inclusive pixel boxes) and reports, per method:\n"
     "  accuracy       predicted class == labelled class, over every image\n"
     "  pointing game  share of boxed images whose heatmap peak lies inside a box\n"
     "  energy in box  heatmap sum inside the boxes / heatmap sum, averaged\n"
     "Maps are computed for the positive class (--class overrides). Default\n"
     "methods: gradcam,gradcam++.\n"
     "With --report --output-dir DIR it also writes each image's figure of the first\n"
     "method, a thumbnail and index.html (as batch --report; the peak-outside-box flag\n"
     "for images with boxes).\n\n"
     "Example:\n"
     "  fxcam evaluate --image-dir heldout/ --boxes heldout/boxes.csv --csv eval.csv\n",
     evaluate_options, evaluate_help, cli_run_evaluate},
    {"methods", "List the CAM methods: name, title, what it needs, one-line description, aliases.",
     "fxcam methods",
     "One line per method of the library's registry (the names --method takes):\n"
     "name, display title, what it needs from the model (gradients, forward only,\n"
     "...), a description and other accepted spellings. The papers are in\n"
     "docs/algorithms.md.\n",
     methods_options, NULL, cli_run_methods},
};

static const size_t command_count = sizeof commands / sizeof commands[0];

static void print_tool_help(FILE *to)
{
    char method_names[512], colormap_names[512];
    fprintf(to,
            "Usage: fxcam COMMAND [options]\n\n"
            "Grad-CAM heatmaps for TorchScript image classifiers: where does the network\n"
            "look when it decides? Without --model, fxcam uses its embedded fracture\n"
            "classifier (X-ray radiographs, classes normal / fracture).\n\n"
            "Commands:\n");
    for (size_t i = 0; i < command_count; i++) {
        fprintf(to, "  %-9s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(to, "  %-9s %s\n", "serve", cli_serve_summary);
    fprintf(to, "  %-9s %s\n", "merge", cli_merge_summary);
    fprintf(to,
            "\nOptions shared by the commands that compute heatmaps:\n"
            "  --method NAME      CAM method (default gradcam; see 'fxcam methods'): %s\n"
            "  --layer NAME       target layer (see 'fxcam layers')\n"
            "  --class K|NAME     class whose map is computed (default: the predicted one)\n"
            "  --alpha A          heatmap weight in the overlay, 0..1 (default 0.4)\n"
            "  --colormap NAME    colormap (default jet): %s\n"
            "  --device DEV       auto (default), cpu, cuda, cuda:N\n"
            "  --threads N        CPU threads (default: all)\n\n"
            "Run 'fxcam COMMAND --help' for a command's options. Try 'fxcam demo' first.\n"
            "Exit status: 0 success, 1 runtime error or some images failed, 2 usage error.\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version of fxcam and of the library\n",
            cli_method_names(method_names, sizeof method_names),
            cli_colormap_names(colormap_names, sizeof colormap_names));
}

static void print_version(void)
{
    const cli_asset *model = cli_embedded_model();
    printf("fxcam %s (libfxcam %s)\n", FX_VERSION_STRING, fx_version_string());
    if (model) {
        printf("embedded model: %s (%zu bytes), %zu sample files\n", model->name, model->size,
               cli_embedded_sample_count());
    } else {
        printf("embedded model: none in this build\n");
    }
}

/* A forward pass allocates and frees hundreds of MB of activations, every
 * batch. With glibc's defaults those blocks go back to the kernel (mmap, heap
 * trimming) and each pass page-faults its memory anew: about a third of a
 * DenseNet-121 batch-8 pass on a 2-core machine (docs/performance.md). This
 * program owns its process, so it keeps freed blocks (up to the run's peak) for
 * reuse; the library itself never changes malloc settings. Users who set
 * glibc's MALLOC_* variables keep their choice. */
static void keep_freed_memory_for_reuse(void)
{
#ifdef __GLIBC__
    if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") || getenv("GLIBC_TUNABLES"))
        return;
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024); /* glibc's maximum on 64-bit */
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
#endif
}

/* libgomp (libtorch's OpenMP on Debian) lets an idle worker spin up to 300000
 * rounds before it sleeps. On a CPU shared with other busy processes the
 * spinning threads steal the time the working ones need: a DenseNet batch
 * took up to 9x longer beside one busy loop on 2 cores (docs/performance.md).
 * OMP_WAIT_POLICY=PASSIVE makes them sleep at once. libgomp reads its
 * environment in its ELF constructor, which runs before main() (and before an
 * executable's .preinit_array can reach it: glibc resets environ after
 * .preinit_array runs), so the variable is set and the program re-executed
 * once. A user who sets OMP_WAIT_POLICY or GOMP_SPINCOUNT keeps the choice;
 * commands that compute nothing are not re-executed. */
static void sleep_idle_openmp_threads(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-' || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "merge") == 0 ||
        strcmp(argv[1], "methods") == 0 || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) {
        return;
    }
    /* The file's own path, not /proc/self/exe, so that ps and top still
     * show "fxcam". */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1 || setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0) {
        return;
    }
    self[n] = '\0';
    execv(self, argv);
    /* No /proc, or the file was replaced: run on with libgomp's default;
     * only the speed under load differs. */
}

int main(int argc, char **argv)
{
    sleep_idle_openmp_threads(argc, argv);
    keep_freed_memory_for_reuse();
    if (argc < 2) {
        print_tool_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    /* serve parses its own options (cli/serve.c); "help serve" = "serve --help". */
    if (strcmp(name, "serve") == 0 || (strcmp(name, "help") == 0 && argc > 2 && strcmp(argv[2], "serve") == 0)) {
        return strcmp(name, "serve") == 0 ? cli_run_serve(argc - 2, argv + 2)
                                          : cli_run_serve(1, (char *[]){"--help", NULL});
    }
    /* merge takes folders as arguments (cli/merge.c). */
    if (strcmp(name, "merge") == 0 || (strcmp(name, "help") == 0 && argc > 2 && strcmp(argv[2], "merge") == 0)) {
        return strcmp(name, "merge") == 0 ? cli_run_merge(argc - 2, argv + 2)
                                          : cli_run_merge(1, (char *[]){"--help", NULL});
    }
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        if (strcmp(name, "help") == 0 && argc > 2) {
            for (size_t i = 0; i < command_count; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    cli_print_command_help(&commands[i], stdout);
                    return CLI_EXIT_OK;
                }
            }
            return cli_usage_error(NULL, "unknown command '%s'; valid commands: single, batch, compare, "
                                   "layers, info, demo, evaluate, methods", cli_name(argv[2]));
        }
        print_tool_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        print_version();
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < command_count; i++) {
        if (strcmp(name, commands[i].name) != 0) {
            continue;
        }
        cli_settings settings;
        int rc = cli_parse(&commands[i], argc - 2, argv + 2, &settings);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (settings.help) {
            cli_print_command_help(&commands[i], stdout);
            return CLI_EXIT_OK;
        }
        return commands[i].run(&settings);
    }
    return cli_usage_error(NULL, "unknown command '%s'; valid commands: single, batch, compare, layers, "
                           "info, demo, evaluate, methods", cli_name(name));
}
