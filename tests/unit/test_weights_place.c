/* models/weights: mt_weights_place on the shipped model. By default every weight read from the checkpoint's file
 * mappings moves into the model's huge pages (and none is left reading a mapping); with mmap every one stays in its
 * mapping. Both hold the same bytes under the same module tensors. */
#include <string.h>

#include "check.h"
#include "models/model.h"

static const char *const k_dir = MT_SOURCE_DIR "/models/mitten-tiny";

static size_t weight_bytes(const mt_tensor *t) {
    int64_t rows = 1;
    for (int d = 0; d + 1 < t->ndim; d++) rows *= t->shape[d];
    return mt_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) * (size_t)rows;
}

static bool in_pages(const mt_model *m, const void *p) {
    const uint8_t *a = p, *b = m->pages;
    return b && a >= b && a < b + m->pages_bytes;
}

int main(void) {
    mt_err err;
    mt_model *copied = NULL, *mapped = NULL;
    mt_model_params mp = {.mmap = true};
    CHECK(mt_model_open(k_dir, &copied, &err) == MT_OK);
    CHECK(mt_model_open_params(k_dir, &mp, &mapped, &err) == MT_OK);
    if (!copied || !mapped) return check_report();
    CHECK(copied->n_weights == mapped->n_weights && copied->n_weights > 0);
    CHECK(copied->pages && copied->pages_bytes > 0 && !mapped->pages);
    size_t moved = 0, in_file = 0;
    for (size_t i = 0; i < copied->n_weights && i < mapped->n_weights; i++) {
        const mt_weight *wc = &copied->weights[i], *wm = &mapped->weights[i];
        const mt_tensor *tc = mt_weight_whole(wc), *tm = mt_weight_whole(wm);
        CHECK_MSG(tc && tm && !strcmp(wc->name, wm->name), "weight %zu", i);
        if (!tc || !tm) continue;
        size_t n = weight_bytes(tm);
        bool was_mapped = mt_safetensors_mapping_of(mapped->st, tm->data, n) != NULL;
        in_file += was_mapped;
        CHECK_MSG(tc->dtype == tm->dtype && weight_bytes(tc) == n && !memcmp(tc->data, tm->data, n),
                  "%s: bytes differ between the copied and the mapped model", wc->name);
        CHECK_MSG(!mt_safetensors_mapping_of(copied->st, tc->data, n), "%s still reads the file mapping", wc->name);
        CHECK_MSG(!was_mapped || in_pages(copied, tc->data), "%s: mapped, but not moved to the pages", wc->name);
        moved += in_pages(copied, tc->data);
        for (size_t u = 0; u < wc->n_uses; u++) /* views (a tied head, split rows) moved with their weight */
            CHECK_MSG(in_pages(copied, wc->uses[u].t->data) == in_pages(copied, tc->data), "%s use %zu", wc->name, u);
    }
    CHECK_MSG(moved == in_file && moved > 0, "%zu weights moved, %zu were in the file", moved, in_file);
    printf("%zu of %zu weights read the file mapping with mmap; all moved to %.2f MiB of pages by default\n", in_file,
           copied->n_weights, (double)copied->pages_bytes / (1 << 20));
    mt_model_close(copied);
    mt_model_close(mapped);
    return check_report();
}
