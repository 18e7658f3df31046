/* The results store of `fxcam serve` (cli/serve_results.c) on its own, built
 * with AddressSanitizer and UBSan by test_results_store.py: LRU order,
 * count, byte and age bounds, ownership of the moved PNG buffers. The
 * expected survivors are worked out by hand in the comments. */
#include "serve.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void serve_bytes_free(serve_bytes *b) { free(b->data); memset(b, 0, sizeof *b); }
static void mk(serve_result_file *f, const char *name, size_t n) {
    memset(f, 0, sizeof *f); snprintf(f->name, sizeof f->name, "%s", name);
    f->png.data = malloc(n); memset(f->png.data, name[0], n); f->png.size = f->png.capacity = n;
}
int main(void) {
    serve_results *s = serve_results_new(3, 1000, 10.0);
    char ids[6][SERVE_RESULT_ID_SIZE];
    for (int i = 0; i < 5; i++) {
        serve_result_file f[2]; mk(&f[0], "image", 100); mk(&f[1], "heatmap-gradcam", 50);
        assert(serve_results_put(s, f, 2, 1.0 + i, ids[i]) == SERVE_PUT_OK);
        assert(f[0].png.data == NULL && strcmp(f[1].name, "heatmap-gradcam") == 0);
    }
    for (int i = 0; i < 5; i++) {
        assert(strlen(ids[i]) == 32 && strspn(ids[i], "0123456789abcdef") == 32);
        for (int j = 0; j < i; j++) {
            assert(strcmp(ids[i], ids[j]) != 0);
        }
    }
    serve_bytes out; size_t c, b;
    serve_results_usage(s, &c, &b); assert(c == 3 && b == 450);
    assert(!serve_results_get(s, ids[0], "image", 6, &out) && !serve_results_get(s, ids[1], "image", 6, &out));
    assert(serve_results_get(s, ids[2], "heatmap", 6, &out) && out.size == 50 && out.data[0] == 'h'); serve_bytes_free(&out);
    /* LRU order now (oldest first): ids[3], ids[4], ids[2] (just read). 701
     * bytes: the count bound drops ids[3] (450 -> 300 bytes), 300 + 701 > 1000
     * drops ids[4] (150 + 701 fits): ids[2] stays. */
    serve_result_file big[1]; mk(&big[0], "figure", 701);
    assert(serve_results_put(s, big, 1, 7, ids[5]) == SERVE_PUT_OK);
    assert(serve_results_get(s, ids[2], "image", 7, &out)); serve_bytes_free(&out);
    assert(!serve_results_get(s, ids[3], "image", 7, &out) && !serve_results_get(s, ids[4], "image", 7, &out));
    assert(serve_results_get(s, ids[5], "figure", 7, &out) && out.size == 701); serve_bytes_free(&out);
    mk(&big[0], "figure", 1001); assert(serve_results_put(s, big, 1, 8, ids[0]) == SERVE_PUT_TOO_LARGE && !big[0].png.data);
    assert(!serve_results_get(s, ids[5], "figure", 17.0, &out)); /* expired: 10 s after its put at 7 */
    serve_results_usage(s, &c, &b); assert(c == 0 && b == 0);
    assert(!serve_results_get(s, "zz", "image", 1, &out));
    serve_results_free(s); serve_results_free(NULL);
    puts("ok"); return 0;
}
