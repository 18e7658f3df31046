/* fxcam from C: Grad-CAM of one PNG with a TorchScript model, written as a
 * figure (original | heatmap | overlay with the prediction).
 *
 *   gradcam MODEL.pt IMAGE.png FIGURE.png [LAYER]
 *
 * Build against an installed fxcam (pkg-config):
 *   meson setup build && ninja -C build
 * or  cc gradcam.c $(pkg-config --cflags --libs fxcam) -o gradcam \
 *        -Wl,-rpath,$(pkg-config --variable=libdir fxcam)
 * The rpath lets the program find libfxcam.so when fxcam is installed under
 * a prefix the loader does not search (e.g. $HOME/.local); without it, run
 * it as  LD_LIBRARY_PATH=$(pkg-config --variable=libdir fxcam) ./gradcam ...
 */
#include <stdio.h>

#include <fxcam.h>

/* Prints the failing step with the library's own message. */
static int fail(const char *step, fx_status status)
{
    fprintf(stderr, "gradcam: %s failed: %s: %s\n", step, fx_status_str(status), fx_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL.pt IMAGE.png FIGURE.png [LAYER]\n", argv[0]);
        return 2;
    }
    printf("fxcam %s (header %s)\n", fx_version_string(), FX_VERSION_STRING);

    fx_image image = {0};
    fx_status st = fx_image_load(argv[2], NULL, &image);
    if (st != FX_OK)
        return fail("fx_image_load", st);

    fx_model *model = NULL;
    fx_model_options mopts;
    fx_model_options_init(&mopts);
    mopts.device = "cpu";
    st = fx_model_load(argv[1], &mopts, &model);
    if (st != FX_OK) {
        fx_image_free(&image);
        return fail("fx_model_load", st);
    }

    fx_gradcam_options gopts;
    fx_gradcam_options_init(&gopts);
    gopts.layer = argc == 5 ? argv[4] : NULL;
    fx_result *result = NULL;
    st = fx_gradcam_compute(model, &image, 1, &gopts, &result);
    if (st == FX_OK) {
        int32_t cls = fx_result_predicted_class(result, 0);
        fx_figure_options fopts;
        fx_figure_options_init(&fopts);
        fopts.label = fx_model_class_name(model, (uint32_t)cls);
        fopts.confidence = fx_result_confidence(result, 0);
        fopts.method = "Grad-CAM";
        fopts.layer = fx_result_layer(result);
        printf("prediction: %s (%.1f%%), layer %s\n", fopts.label, fopts.confidence * 100.0, fopts.layer);

        fx_image figure = {0};
        st = fx_figure_compose(&image, fx_result_heatmap(result, 0, 0), &fopts, &figure);
        if (st == FX_OK) {
            st = fx_image_save(argv[3], &figure, NULL);
            if (st == FX_OK)
                printf("wrote %s (%ux%u)\n", argv[3], figure.width, figure.height);
            else
                fail("fx_image_save", st);
            fx_image_free(&figure);
        } else {
            fail("fx_figure_compose", st);
        }
    } else {
        fail("fx_gradcam_compute", st);
    }
    fx_result_free(result);
    fx_model_free(model);
    fx_image_free(&image);
    return st == FX_OK ? 0 : 1;
}
