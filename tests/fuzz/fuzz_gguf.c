/* libFuzzer target for the GGUF reader (mt_gguf_open_buffer). Each input is a whole file, copied into a buffer of
 * exactly its size so ASan reports any read past the end. */
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"

/* An accepted file must keep the promises of gguf.h: every key and tensor is found by its name, typed getters
 * agree with the key's type, arrays and strings are readable to their last element, and each tensor's bytes lie
 * in the input (or its aligned copy), aligned to the element; a broken promise traps, which libFuzzer reports. */
static void check(const mt_gguf *g, const uint8_t *data, size_t size) {
    volatile uint8_t sink = 0;
    mt_err err;
    for (size_t i = 0; i < mt_gguf_kv_count(g); i++) {
        const mt_gguf_kv *kv = mt_gguf_kv_at(g, i);
        if (mt_gguf_find_kv(g, kv->key) != kv) __builtin_trap();
        if (kv->type == MT_GGUF_ARRAY) {
            const void *a;
            uint64_t n;
            if (mt_gguf_get_array(g, kv->key, kv->elem, &a, &n, &err) || n != kv->n) __builtin_trap();
            if (n && kv->elem == MT_GGUF_STR) {
                const mt_gguf_str *s = a;
                sink ^= (uint8_t)s[n - 1].s[s[n - 1].len];
            } else if (n) {
                sink ^= ((const uint8_t *)a)[0];
            }
        } else {
            uint8_t v[sizeof(mt_gguf_str)];
            if (mt_gguf_get(g, kv->key, kv->type, v, &err)) __builtin_trap();
            if (kv->type == MT_GGUF_STR) sink ^= (uint8_t)kv->v.str.s[kv->v.str.len];
        }
    }
    for (size_t i = 0; i < mt_gguf_tensor_count(g); i++) {
        const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i);
        if (mt_gguf_find_tensor(g, t->name) != t) __builtin_trap();
        if (t->ndim < 1 || t->ndim > MT_GGUF_MAX_DIMS || t->nbytes == 0) __builtin_trap();
        const uint8_t *p = t->data;
        bool inside = p >= data && p <= data + size && t->nbytes <= (size_t)(data + size - p);
        if (t->dtype == MT_GGUF_UNSUPPORTED && !inside) __builtin_trap();
        if (t->dtype != MT_GGUF_UNSUPPORTED) {
            size_t align = mt_dtype_is_quant(t->dtype) ? 2 : mt_dtype_size(t->dtype);
            if ((uintptr_t)p % align) __builtin_trap();
            int64_t n = 1;
            for (int d = 0; d < t->ndim - 1; d++) n *= t->shape[d];
            if (mt_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) * (size_t)n != t->nbytes) __builtin_trap();
        }
        sink ^= p[0] ^ p[t->nbytes - 1]; /* ASan checks both ends */
        const mt_gguf_tensor *got;
        if (mt_gguf_get_tensor(g, t->name, &got, &err) !=
            (t->dtype == MT_GGUF_UNSUPPORTED ? MT_ERR_UNSUPPORTED : MT_OK))
            __builtin_trap();
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    mt_gguf *g;
    mt_err err;
    if (mt_gguf_open_buffer(copy, size, "fuzz.gguf", &g, &err) == MT_OK) {
        check(g, copy, size);
        mt_gguf_close(g);
    }
    free(copy);
    return 0;
}
