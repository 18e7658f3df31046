/* lib/layers.c: the automatic target layer and the layer refusals, over
 * hand-made probe tables (what the shim reports for a model). Expected names,
 * scores and messages are worked out by hand in the comments: the suggestion
 * score is 4 x Levenshtein distance - shared prefix length, lowest first, ties
 * by name, at most 5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "layers.h"

/* A table row: rank 0..4 shape, call position, depth. */
static fx__shim_layer row(const char *name, const char *type, uint32_t rank, const int64_t *shape,
                          uint64_t position, uint32_t depth)
{
    fx__shim_layer l;
    memset(&l, 0, sizeof l);
    l.name = name;
    l.type = type;
    l.rank = rank;
    for (uint32_t i = 0; i < rank; i++)
        l.shape[i] = shape[i];
    l.call_position = position;
    l.depth = depth;
    return l;
}

static const int64_t map16[4] = {1, 64, 16, 16}, map2[4] = {1, 512, 2, 2}, map1[4] = {1, 512, 1, 1},
                     logits[2] = {1, 10};

/* A ResNet-like probe: layer4 (a Sequential) and its last child layer4.1
 * return the same tensor (same position); avgpool is 1x1; fc is 2-D; dropout
 * is never called. */
static size_t resnet_table(fx__shim_layer *t)
{
    size_t n = 0;
    t[n++] = row("conv1", "Conv2d", 4, map16, 2, 1);
    t[n++] = row("layer4", "Sequential", 4, map2, 20, 1);
    t[n++] = row("layer4.1", "BasicBlock", 4, map2, 20, 2);
    t[n++] = row("avgpool", "AdaptiveAvgPool2d", 4, map1, 21, 1);
    t[n++] = row("fc", "Linear", 2, logits, 23, 1);
    t[n++] = row("dropout", "Dropout", 0, NULL, 0, 1);
    return n;
}

static void expect_refusal(const fx__shim_layer *t, size_t n, const char *name, const char *message)
{
    assert_int_equal(fx__layers_check(t, n, name), FX_ERR_LAYER);
    assert_string_equal(fx_last_error(), message);
}

static void test_is_target(void **state)
{
    (void)state;
    static const int64_t wide[4] = {1, 8, 1, 2}, three[3] = {1, 8, 8};
    fx__shim_layer l = row("a", "Conv2d", 4, wide, 1, 1);
    assert_int_equal(fx__layers_is_target(&l), 1); /* 1 x 2 pixels */
    l = row("a", "AdaptiveAvgPool2d", 4, map1, 1, 1);
    assert_int_equal(fx__layers_is_target(&l), 0); /* 1 x 1 */
    l = row("a", "Conv1d", 3, three, 1, 1);
    assert_int_equal(fx__layers_is_target(&l), 0);
    l = row("a", "Dropout", 0, NULL, 0, 1);
    assert_int_equal(fx__layers_is_target(&l), 0);
}

static void test_auto_latest_shallowest(void **state)
{
    (void)state;
    fx__shim_layer t[8];
    size_t n = resnet_table(t);
    /* avgpool (21) and fc (23) come later but are no feature maps; layer4 and
     * layer4.1 tie at 20: the shallower block wins. */
    assert_string_equal(fx__layers_auto(t, n), "layer4");
    /* Table order does not matter for the depth tie. */
    fx__shim_layer swapped[2] = {t[2], t[1]};
    assert_string_equal(fx__layers_auto(swapped, 2), "layer4");
    /* A greater position wins over table order and depth. */
    fx__shim_layer later[3] = {row("deep.block.conv", "Conv2d", 4, map16, 30, 3), t[0], t[1]};
    assert_string_equal(fx__layers_auto(later, 3), "deep.block.conv");
}

static void test_auto_none(void **state)
{
    (void)state;
    fx__shim_layer t[3] = {row("avgpool", "AdaptiveAvgPool2d", 4, map1, 5, 1), row("fc", "Linear", 2, logits, 6, 1),
                           row("dropout", "Dropout", 0, NULL, 0, 1)};
    assert_null(fx__layers_auto(t, 3));
    assert_null(fx__layers_auto(NULL, 0));
}

static void test_check_valid(void **state)
{
    (void)state;
    fx__shim_layer t[8];
    size_t n = resnet_table(t);
    assert_int_equal(fx__layers_check(t, n, "conv1"), FX_OK);
    assert_int_equal(fx__layers_check(t, n, "layer4.1"), FX_OK);
    assert_int_equal(fx__layers_check(t, n, NULL), FX_ERR_INVALID_ARGUMENT);
}

static void test_check_refusals(void **state)
{
    (void)state;
    fx__shim_layer t[8];
    size_t n = resnet_table(t);
    expect_refusal(t, n, "dropout",
                   "layer 'dropout' (Dropout) has no recorded output: forward never calls it, calls it only inside "
                   "control flow (scripted if/loop), or it does not return a tensor; pick a layer with a 4-D output "
                   "(see fx_model_layer)");
    expect_refusal(t, n, "avgpool",
                   "layer 'avgpool' (AdaptiveAvgPool2d) outputs shape [1, 512, 1, 1]: its map is 1x1, with no "
                   "spatial information for a heatmap; pick a layer before the pooling, e.g. the default layer "
                   "'layer4'");
    expect_refusal(t, n, "fc",
                   "layer 'fc' (Linear) outputs shape [1, 10], not a 4-D [batch, channels, height, width] feature "
                   "map; pick a convolutional layer (see fx_model_layer)");
    /* No automatic layer to name. */
    expect_refusal(&t[3], 1, "avgpool",
                   "layer 'avgpool' (AdaptiveAvgPool2d) outputs shape [1, 512, 1, 1]: its map is 1x1, with no "
                   "spatial information for a heatmap; pick a layer before the pooling, e.g. the default layer "
                   "'(none)'");
}

static void test_not_found_suggestions(void **state)
{
    (void)state;
    fx__shim_layer t[8];
    size_t n = resnet_table(t);
    /* "layer5": layer4 1*4-5 = -1; layer4.1 3*4-5 = 7; conv1 (no letter in
     * common, 6 edits) 6*4-0 = 24; avgpool, fc, dropout are no targets. */
    expect_refusal(t, n, "layer5", "layer 'layer5' not found; closest: layer4, layer4.1, conv1 (fx_model_layer lists all 6)");
}

static void test_suggestions_weighting(void **state)
{
    (void)state;
    static const int64_t m[4] = {1, 4, 2, 2};
    /* "abcdefgh": abcdefgX 1*4-7 = -3; abcdefghXY 2*4-8 = 0; Xbcdefgh 1*4-0 = 4:
     * a long shared prefix beats one edit less. */
    fx__shim_layer t[3] = {row("Xbcdefgh", "Conv2d", 4, m, 1, 1), row("abcdefghXY", "Conv2d", 4, m, 2, 1),
                           row("abcdefgX", "Conv2d", 4, m, 3, 1)};
    expect_refusal(t, 3, "abcdefgh",
                   "layer 'abcdefgh' not found; closest: abcdefgX, abcdefghXY, Xbcdefgh (fx_model_layer lists all 3)");
}

static void test_suggestions_at_most_five(void **state)
{
    (void)state;
    fx__shim_layer t[8];
    size_t n = 0;
    t[n++] = row("conv1", "Conv2d", 4, map16, 1, 1);
    t[n++] = row("layer1", "Sequential", 4, map16, 2, 1);
    t[n++] = row("layer2", "Sequential", 4, map16, 3, 1);
    t[n++] = row("layer3", "Sequential", 4, map16, 4, 1);
    t[n++] = row("layer4", "Sequential", 4, map2, 6, 1);
    t[n++] = row("layer4.0", "BasicBlock", 4, map2, 5, 2);
    t[n++] = row("layer4.1", "BasicBlock", 4, map2, 6, 2);
    /* "layer4.": layer4.0 and layer4.1 1*4-7 = -3 (then by name); layer4
     * 1*4-6 = -2; layer1..3 2*4-5 = 3; conv1 7*4 = 28. Five kept. */
    expect_refusal(t, n, "layer4.",
                   "layer 'layer4.' not found; closest: layer4.0, layer4.1, layer4, layer1, layer2 (fx_model_layer "
                   "lists all 7)");
}

static void test_no_feature_maps_and_empty(void **state)
{
    (void)state;
    fx__shim_layer t[2] = {row("fc", "Linear", 2, logits, 2, 1), row("avgpool", "AdaptiveAvgPool2d", 4, map1, 1, 1)};
    expect_refusal(t, 2, "conv", "layer 'conv' not found, and the model has no layer with a 4-D output");
    expect_refusal(NULL, 0, "conv", "layer 'conv' not found, and the model has no layer with a 4-D output");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_target),
        cmocka_unit_test(test_auto_latest_shallowest),
        cmocka_unit_test(test_auto_none),
        cmocka_unit_test(test_check_valid),
        cmocka_unit_test(test_check_refusals),
        cmocka_unit_test(test_not_found_suggestions),
        cmocka_unit_test(test_suggestions_weighting),
        cmocka_unit_test(test_suggestions_at_most_five),
        cmocka_unit_test(test_no_feature_maps_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
