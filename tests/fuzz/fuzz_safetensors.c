/* libFuzzer target for the checkpoint header parsers: safetensors (mt_safetensors_open_buffer) and, for inputs
 * starting with the .npy magic, mt_npy_parse.
 *
 * Inputs starting with '{' are a safetensors header text, then a NUL, then the data area: the target prepends the
 * true length. A mutation that grows or shrinks a raw file's header breaks its length prefix and dies at the first
 * check, and cJSON (a system library) carries no coverage to guide the fuzzer through JSON, so without this mode
 * few mutants reach the per-tensor checks. Other inputs are whole files, length prefix included. */
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "io/safetensors.h"

/* An accepted file must keep the promises of safetensors.h: every tensor is found by its name, its bytes lie inside
 * the input (or in its aligned copy) and are readable, and data of a supported dtype is aligned; a broken promise
 * traps, which libFuzzer reports as a crash. */
static void check_st(const mt_safetensors *st, const uint8_t *data, size_t size) {
    size_t total = 0;
    for (size_t i = 0; i < mt_safetensors_count(st); i++) {
        const mt_st_tensor *t = mt_safetensors_at(st, i);
        const mt_st_tensor *f = mt_safetensors_find(st, t->name);
        if (!f || strcmp(f->name, t->name) != 0 || f->nbytes != t->nbytes) __builtin_trap();
        if (t->ndim < 0 || t->ndim > MT_ST_MAX_DIMS) __builtin_trap();
        const uint8_t *p = t->data;
        bool inside = p >= data && p <= data + size && t->nbytes <= (size_t)(data + size - p);
        if (t->dtype != MT_ST_UNSUPPORTED) {
            if ((uintptr_t)p % mt_dtype_size(t->dtype)) __builtin_trap();
        } else if (!inside) {
            __builtin_trap();
        }
        volatile uint8_t sink = 0;
        if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1]; /* ASan checks both ends */
        (void)sink;
        total += t->nbytes;
        const mt_st_tensor *g;
        mt_err err;
        if (mt_safetensors_get(st, t->name, &g, &err) != (t->dtype == MT_ST_UNSUPPORTED ? MT_ERR_UNSUPPORTED : MT_OK))
            __builtin_trap();
    }
    if (total != mt_safetensors_total_bytes(st)) __builtin_trap();
    mt_safetensors_meta(st, "format");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        mt_npy a;
        if (mt_npy_parse(data, size, "fuzz.npy", &a, &err) == MT_OK) {
            volatile uint8_t sink = a.nbytes ? ((const uint8_t *)a.data)[a.nbytes - 1] : 0;
            (void)sink;
            mt_npy_free(&a);
        }
        return 0;
    }
    uint8_t *file = NULL;
    if (size > 0 && data[0] == '{') {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hlen = nul ? (size_t)(nul - data) : size;
        size_t rest = nul ? size - hlen - 1 : 0;
        file = malloc(8 + hlen + rest + 1); /* exact size (+1 for malloc(0)): ASan sees any over-read */
        if (!file) return 0;
        for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        memcpy(file + 8, data, hlen);
        if (rest) memcpy(file + 8 + hlen, nul + 1, rest);
        data = file;
        size = 8 + hlen + rest;
    }
    mt_safetensors *st;
    if (mt_safetensors_open_buffer(data, size, "fuzz.safetensors", &st, &err) == MT_OK) {
        check_st(st, data, size);
        mt_safetensors_close(st);
    }
    free(file);
    return 0;
}
