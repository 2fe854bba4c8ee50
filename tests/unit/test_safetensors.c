/* io/safetensors: write/read round trips, layout of written files, misaligned data, sharded directories, and
 * allocation failure at every step. Bad headers are in test_safetensors_bad.c; the Python cross-check is the
 * io_ref ctest (tests/io). */
#include <string.h>

#include "base/file.h"
#include "check.h"
#include "io/safetensors.h"
#include "test_safetensors_util.h"

static float f32v[6] = {1, -2, 3.5f, 1e-3f, 0, -0.0f};
static uint16_t bf16v[4] = {0x3f80, 0xbf80, 0x7f80, 0x0001};
static uint16_t f16v[3] = {0x3c00, 0x8000, 0x7bff};
static int32_t i32v[2] = {-7, 1 << 30};
static int64_t i64v[3] = {INT64_MIN, 0, INT64_MAX};
static uint8_t u8v[5] = {0, 1, 127, 128, 255};

/* Tensors of every writable dtype, one scalar and one with no elements. */
static size_t sample(mt_st_tensor *t) {
    size_t n = 0;
    t[n++] = (mt_st_tensor){.name = "w.f32", .dtype = MT_F32, .ndim = 2, .shape = {2, 3}, .data = f32v, .nbytes = 24};
    t[n++] = (mt_st_tensor){.name = "a.bf16", .dtype = MT_BF16, .ndim = 1, .shape = {4}, .data = bf16v, .nbytes = 8};
    t[n++] = (mt_st_tensor){.name = "b.f16", .dtype = MT_F16, .ndim = 3, .shape = {3, 1, 1}, .data = f16v, .nbytes = 6};
    t[n++] = (mt_st_tensor){.name = "ids", .dtype = MT_I32, .ndim = 1, .shape = {2}, .data = i32v, .nbytes = 8};
    t[n++] = (mt_st_tensor){.name = "pos", .dtype = MT_I64, .ndim = 1, .shape = {3}, .data = i64v, .nbytes = 24};
    t[n++] = (mt_st_tensor){.name = "mask \"q\"\n", .dtype = MT_U8, .ndim = 1, .shape = {5}, .data = u8v, .nbytes = 5};
    t[n++] = (mt_st_tensor){.name = "scalar", .dtype = MT_F32, .ndim = 0, .data = f32v + 2, .nbytes = 4};
    t[n++] = (mt_st_tensor){.name = "empty", .dtype = MT_BF16, .ndim = 2, .shape = {0, 7}, .data = NULL, .nbytes = 0};
    return n;
}

static void check_same(const mt_safetensors *st, const mt_st_tensor *want, size_t n) {
    CHECK(mt_safetensors_count(st) == n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const mt_st_tensor *t = mt_safetensors_find(st, want[i].name);
        CHECK_MSG(t != NULL, "missing %s", want[i].name);
        if (!t) continue;
        total += want[i].nbytes;
        CHECK(t->dtype == want[i].dtype && t->ndim == want[i].ndim && t->nbytes == want[i].nbytes);
        CHECK(strcmp(t->st_dtype, mt_dtype_name(want[i].dtype)) == 0);
        for (int d = 0; d < t->ndim; d++) CHECK(t->shape[d] == want[i].shape[d]);
        CHECK(t->nbytes == 0 || memcmp(t->data, want[i].data, t->nbytes) == 0);
        CHECK_MSG((uintptr_t)t->data % mt_dtype_size(t->dtype) == 0, "%s misaligned", t->name);
    }
    CHECK(mt_safetensors_total_bytes(st) == total);
    CHECK(mt_safetensors_find(st, "nope") == NULL);
}

static void test_round_trip(void) {
    mt_st_tensor t[8];
    size_t n = sample(t);
    char path[256];
    st_path(path, sizeof path, "rt.safetensors");
    mt_err err;
    const char *meta[] = {"format", "pt", "note", "a \"quoted\" value", NULL};
    CHECK(mt_safetensors_write(path, t, n, meta, &err) == MT_OK);

    mt_mapping m;
    CHECK(mt_file_map(path, &m, &err) == MT_OK);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | m.data[i];
    CHECK(hlen % 8 == 0);
    size_t last = 8 + hlen - 1;
    while (m.data[last] == ' ') last--;
    CHECK(m.data[8] == '{' && m.data[last] == '}');
    mt_file_unmap(&m);

    mt_safetensors *st;
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_OK);
    check_same(st, t, n);
    CHECK(strcmp(mt_safetensors_meta(st, "format"), "pt") == 0);
    CHECK(strcmp(mt_safetensors_meta(st, "note"), "a \"quoted\" value") == 0);
    CHECK(mt_safetensors_meta(st, "none") == NULL);
    /* Layout as the Rust writer: element size descending, then name; offsets contiguous. */
    const char *order[] = {"pos", "ids", "scalar", "w.f32", "a.bf16", "b.f16", "empty", "mask \"q\"\n"};
    for (size_t i = 0; i < n; i++) CHECK_MSG(strcmp(mt_safetensors_at(st, i)->name, order[i]) == 0, "at %zu", i);
    const mt_st_tensor *got;
    CHECK(mt_safetensors_get(st, "pos", &got, &err) == MT_OK && got->nbytes == 24);
    CHECK(mt_safetensors_get(st, "missing.weight", &got, &err) == MT_ERR_FORMAT);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "missing.weight"));
    CHECK(mt_safetensors_at(st, n) == NULL);
    mt_safetensors_close(st);
    mt_safetensors_close(NULL);

    /* No tensors at all is a valid file. */
    CHECK(mt_safetensors_write(path, NULL, 0, NULL, &err) == MT_OK);
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_OK && mt_safetensors_count(st) == 0);
    mt_safetensors_close(st);
}

/* A name or metadata value holding U+0000 ("\u0000" in the header) is written back as "\u0000", so the file opens
 * again with the same name (as Python's safetensors, whose json writes it that way too). */
static void test_nul_names(void) {
    char in[256], out[256];
    static const char header[] = "{\"__metadata__\":{\"k\":\"v\\u0000w\"},"
                                 "\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    st_raw(st_path(in, sizeof in, "nul_in.safetensors"), sizeof header - 1, header, u8v, 1);
    mt_safetensors *st = NULL, *again = NULL;
    mt_err err;
    CHECK_MSG(mt_safetensors_open_file(in, &st, &err) == MT_OK, "%s", err.msg);
    const mt_st_tensor *t = st ? mt_safetensors_at(st, 0) : NULL;
    const char *meta[] = {"k", st ? mt_safetensors_meta(st, "k") : NULL, NULL};
    CHECK(t && meta[1]);
    if (!t || !meta[1]) return mt_safetensors_close(st);
    CHECK_MSG(mt_safetensors_write(st_path(out, sizeof out, "nul_out.safetensors"), t, 1, meta, &err) == MT_OK, "%s",
              err.msg);
    char *text = NULL;
    size_t len = 0;
    CHECK(mt_file_read_all(out, 1 << 20, &text, &len, &err) == MT_OK);
    const char *h = text && len > 8 ? text + 8 : ""; /* the header holds no 0 byte; the data after it starts with one */
    CHECK_MSG(strstr(h, "\"a\\u0000b\"") && strstr(h, "\"v\\u0000w\""), "header: %s", h);
    CHECK_MSG(mt_safetensors_open_file(out, &again, &err) == MT_OK, "%s", err.msg);
    const mt_st_tensor *back = again ? mt_safetensors_at(again, 0) : NULL;
    CHECK(back && strcmp(back->name, t->name) == 0 && back->nbytes == 1);
    mt_free(text);
    mt_safetensors_close(again);
    mt_safetensors_close(st);
}

static void test_writer_rejects(void) {
    mt_st_tensor t[8];
    size_t n = sample(t);
    char path[256];
    st_path(path, sizeof path, "rej.safetensors");
    mt_err err;
    t[1].name = "w.f32";
    CHECK(mt_safetensors_write(path, t, n, NULL, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "twice"));
    n = sample(t);
    t[0].nbytes = 20;
    CHECK(mt_safetensors_write(path, t, n, NULL, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "w.f32"));
    n = sample(t);
    t[0].name = "__metadata__";
    CHECK(mt_safetensors_write(path, t, n, NULL, &err) == MT_ERR_INVALID_ARG);
    n = sample(t);
    t[2].shape[0] = -3;
    CHECK(mt_safetensors_write(path, t, n, NULL, &err) == MT_ERR_INVALID_ARG);
    n = sample(t);
    const char *odd[] = {"format", NULL};
    CHECK(mt_safetensors_write(path, t, n, odd, &err) == MT_ERR_INVALID_ARG);
    CHECK(!mt_file_exists(path));
    char bad[256];
    CHECK(mt_safetensors_write(st_path(bad, sizeof bad, "no/such/dir.safetensors"), t, n, NULL, &err) == MT_ERR_IO);
}

/* A U8 tensor of 3 bytes first puts the F32 one at data offset 3: it must come back aligned and intact. */
static void test_misaligned(void) {
    char path[256];
    st_path(path, sizeof path, "mis.safetensors");
    const char *h = "{\"m\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                    "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]}}";
    uint8_t data[11] = {9, 8, 7};
    float x[2] = {1.5f, -4};
    memcpy(data + 3, x, 8);
    st_raw(path, strlen(h), h, data, sizeof data);
    mt_safetensors *st;
    mt_err err;
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_OK);
    const mt_st_tensor *t = mt_safetensors_find(st, "x");
    CHECK(t && (uintptr_t)t->data % 4 == 0 && memcmp(t->data, x, 8) == 0);
    t = mt_safetensors_find(st, "m");
    CHECK(t && ((const uint8_t *)t->data)[2] == 7);
    mt_safetensors_close(st);
}

/* Other dtypes of the format open, are validated, and refuse mt_safetensors_get. */
static void test_unsupported_dtype(void) {
    char path[256];
    st_path(path, sizeof path, "f64.safetensors");
    const char *h = "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                    "\"f4\":{\"dtype\":\"F4\",\"shape\":[3,2],\"data_offsets\":[16,19]}}";
    uint8_t data[19] = {0};
    st_raw(path, strlen(h), h, data, sizeof data);
    mt_safetensors *st;
    mt_err err;
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_OK);
    const mt_st_tensor *t = mt_safetensors_find(st, "d");
    CHECK(t && t->dtype == MT_ST_UNSUPPORTED && strcmp(t->st_dtype, "F64") == 0 && t->nbytes == 16);
    CHECK(mt_safetensors_get(st, "d", &t, &err) == MT_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "\"d\"") && strstr(err.msg, "F64"));
    mt_safetensors_close(st);
}

static void test_sharded(void) {
    char dir[256], path[300];
    st_path(dir, sizeof dir, "model");
    CHECK(mkdir(dir, 0755) == 0);
    mt_st_tensor t[8];
    size_t n = sample(t);
    mt_err err;
    const char *meta[] = {"format", "pt", NULL};
    /* 24 + 8 + 6 | 8 + 24 + 5 | 4 + 0 with a 40-byte limit: three shards */
    CHECK(mt_safetensors_write_sharded(dir, t, n, 40, meta, &err) == MT_OK);
    snprintf(path, sizeof path, "%s/model-00003-of-00003.safetensors", dir);
    CHECK(mt_file_exists(path));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!mt_file_exists(path));
    mt_safetensors *st;
    CHECK(mt_safetensors_open_dir(dir, &st, &err) == MT_OK);
    check_same(st, t, n);
    CHECK(strcmp(mt_safetensors_meta(st, "format"), "pt") == 0);
    CHECK(strstr(mt_safetensors_find(st, "w.f32")->file, "model-00001-of-00003"));
    CHECK(strstr(mt_safetensors_find(st, "empty")->file, "model-00003-of-00003"));
    mt_safetensors_close(st);

    /* The index lists every tensor with its shard and the total size. */
    char *text;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(mt_file_read_all(path, 1 << 20, &text, NULL, &err) == MT_OK);
    CHECK(strstr(text, "\"total_size\": 79"));
    CHECK(strstr(text, "\"pos\": \"model-00002-of-00003.safetensors\""));
    mt_free(text);

    /* Saving again as one file replaces the sharded layout. */
    CHECK(mt_safetensors_write_sharded(dir, t, n, (size_t)1 << 30, meta, &err) == MT_OK);
    CHECK(!mt_file_exists(path));
    CHECK(mt_safetensors_open_dir(dir, &st, &err) == MT_OK);
    check_same(st, t, n);
    CHECK(strstr(mt_safetensors_at(st, 0)->file, "/model.safetensors"));
    mt_safetensors_close(st);

    char empty[256];
    st_path(empty, sizeof empty, "emptydir");
    CHECK(mkdir(empty, 0755) == 0);
    CHECK(mt_safetensors_open_dir(empty, &st, &err) == MT_ERR_IO && strstr(err.msg, empty));
}

/* Every allocation in open, find and write may fail: the result is NOMEM or success, and nothing leaks (the
 * MT_SANITIZE build checks the leaks). */
static void test_alloc_failures(void) {
    char path[256], dir[256];
    st_path(path, sizeof path, "oom.safetensors");
    st_path(dir, sizeof dir, "oomdir");
    CHECK(mkdir(dir, 0755) == 0);
    mt_st_tensor t[8];
    size_t n = sample(t);
    mt_err err;
    CHECK(mt_safetensors_write_sharded(dir, t, n, 40, NULL, &err) == MT_OK);
    int ok_open = 0, ok_write = 0;
    for (size_t k = 1; k < 200; k++) {
        mt_alloc_fail_after(k);
        mt_status s = mt_safetensors_write(path, t, n, NULL, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        ok_write += s == MT_OK;
        mt_safetensors *st = NULL;
        mt_alloc_fail_after(k);
        s = mt_safetensors_open_dir(dir, &st, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        if (s == MT_OK) {
            ok_open++;
            check_same(st, t, n);
        }
        mt_safetensors_close(st);
    }
    CHECK(ok_open > 0 && ok_write > 0);
}

int main(void) {
    test_round_trip();
    test_nul_names();
    test_writer_rejects();
    test_misaligned();
    test_unsupported_dtype();
    test_sharded();
    test_alloc_failures();
    st_scratch_remove();
    return check_report();
}
