/* base/hashmap: string and pointer keys through growth, replacement, misses, and a failed allocation. */
#include <stdio.h>

#include "base/hashmap.h"
#include "check.h"

static void test_strings(void) {
    static char names[5000][32];
    mt_hashmap h = {0};
    mt_err err;
    for (size_t i = 0; i < 5000; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%zu.mlp.experts.%zu", i / 64, i % 64);
        CHECK(mt_hashmap_put_str(&h, names[i], i, &err) == MT_OK);
    }
    CHECK(h.count == 5000 && h.cap >= 10000);
    size_t v = 0, ok = 0;
    for (size_t i = 0; i < 5000; i++) {
        char probe[32];
        snprintf(probe, sizeof probe, "model.layers.%zu.mlp.experts.%zu", i / 64, i % 64);
        ok += mt_hashmap_get_str(&h, probe, &v) && v == i;
    }
    CHECK(ok == 5000);
    CHECK(!mt_hashmap_get_str(&h, "model.layers.0.mlp.experts.64", &v));
    CHECK(mt_hashmap_put_str(&h, names[7], 42, &err) == MT_OK && h.count == 5000);
    CHECK(mt_hashmap_get_str(&h, names[7], &v) && v == 42);
    mt_hashmap_free(&h);
    CHECK(!mt_hashmap_get_str(&h, "x", &v));
}

static void test_pointers(void) {
    static int cells[3000];
    mt_hashmap h = {0};
    mt_err err;
    for (size_t i = 0; i < 3000; i++) CHECK(mt_hashmap_put_ptr(&h, &cells[i], i * 3, &err) == MT_OK);
    size_t v, ok = 0;
    for (size_t i = 0; i < 3000; i++) ok += mt_hashmap_get_ptr(&h, &cells[i], &v) && v == i * 3;
    CHECK(ok == 3000 && !mt_hashmap_get_ptr(&h, &h, &v));
    mt_hashmap_free(&h);
}

static void test_oom(void) {
    mt_hashmap h = {0};
    mt_err err;
    CHECK(mt_hashmap_put_str(&h, "a", 1, &err) == MT_OK);
    for (size_t i = 0; i < 31; i++) {
        static char keys[31][8];
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        CHECK(mt_hashmap_put_str(&h, keys[i], i, &err) == MT_OK);
    }
    mt_alloc_fail_after(1); /* the next growth fails: the map keeps what it had */
    CHECK(mt_hashmap_put_str(&h, "grow", 9, &err) == MT_ERR_NOMEM);
    mt_alloc_fail_after(0);
    size_t v;
    CHECK(h.count == 32 && mt_hashmap_get_str(&h, "a", &v) && v == 1 && !mt_hashmap_get_str(&h, "grow", &v));
    mt_hashmap_free(&h);
}

int main(void) {
    test_strings();
    test_pointers();
    test_oom();
    return check_report();
}
