/* io/gguf: the writer's files read back key for key and byte for byte (every value type, every dtype, odd shapes,
 * streamed tensors, a custom alignment), the writer's refusals, the typed getters' messages, every prefix of a
 * valid file refused cleanly, and allocation failures at every step. Files the format allows but no correct
 * writer makes are in test_gguf_bad.c; llama.cpp's own reader and writer are in tests/io (gguf_ref). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "check.h"
#include "io/gguf.h"
#include "test_safetensors_util.h"

static uint8_t pool[1 << 16]; /* tensor bytes, pseudo-random */

typedef struct spec {
    const char *name;
    mt_dtype dtype;
    int ndim;
    int64_t shape[4];
} spec;

/* Every dtype GGUF can hold, with shapes whose rows are whole blocks, and 1-d and 4-d ones. */
static const spec specs[] = {
    {"f32.odd", MT_F32, 2, {3, 5}},  {"f32.vec", MT_F32, 1, {7}},       {"f16.4d", MT_F16, 4, {2, 1, 3, 5}},
    {"bf16", MT_BF16, 3, {1, 3, 9}}, {"q8_0", MT_Q8_0, 2, {3, 64}},     {"q4_0", MT_Q4_0, 1, {32}},
    {"q4_k", MT_Q4_K, 2, {5, 256}},  {"q6_k", MT_Q6_K, 3, {2, 1, 512}}, {"i32", MT_I32, 1, {11}},
    {"i64", MT_I64, 2, {1, 1}},
};

static size_t spec_bytes(const spec *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
    return mt_dtype_row_bytes(s->dtype, s->shape[s->ndim - 1]) * (size_t)(n / s->shape[s->ndim - 1]);
}

/* A fill that streams its bytes in pieces of 7. */
static mt_status fill_pieces(void *user, const char *name, mt_gguf_sink *sink, mt_err *err) {
    const size_t *n = user;
    (void)name;
    for (size_t i = 0; i < *n; i += 7) {
        mt_status s = mt_gguf_sink_write(sink, pool + 100 + i, MT_MIN((size_t)7, *n - i), err);
        if (s) return s;
    }
    return MT_OK;
}

static mt_status fill_short(void *user, const char *name, mt_gguf_sink *sink, mt_err *err) {
    (void)name;
    return mt_gguf_sink_write(sink, pool, *(const size_t *)user - 1, err);
}

static mt_status fill_long(void *user, const char *name, mt_gguf_sink *sink, mt_err *err) {
    (void)name;
    return mt_gguf_sink_write(sink, pool, *(const size_t *)user + 1, err);
}

static const uint8_t v_u8 = 250;
static const int8_t v_i8 = -120;
static const uint16_t v_u16 = 65000;
static const int16_t v_i16 = -32000;
static const uint32_t v_u32 = 4000000000u;
static const int32_t v_i32 = -2000000000;
static const uint64_t v_u64 = 18000000000000000000ull;
static const int64_t v_i64 = -9000000000000000000ll;
static const float v_f32 = -1.5e-7f;
static const double v_f64 = 3.141592653589793;
static const bool v_bool = true;
static const int16_t a_i16[] = {-1, 2, -32768, 32767};
static const float a_f32[] = {0.5f, -2.0f, 1e30f};
static const bool a_bool[] = {true, false, true};
static const uint64_t a_u64[] = {1, UINT64_MAX};
static const double a_f64[] = {-0.25};
static const char *const a_str[] = {"", "hello", "tab\tand \xe2\x9c\x93"};
static const char nul_str[] = "a\0b";

/* Adds every kind of key and the tensors of specs (the first two streamed) to w. */
static void build(mt_gguf_writer *w, uint32_t alignment, size_t *fill_n) {
    mt_err err;
    if (alignment) CHECK(mt_gguf_writer_add(w, "general.alignment", MT_GGUF_U32, &alignment, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_str(w, "general.architecture", "qwen2", 5, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.u8", MT_GGUF_U8, &v_u8, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.i8", MT_GGUF_I8, &v_i8, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.u16", MT_GGUF_U16, &v_u16, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.i16", MT_GGUF_I16, &v_i16, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.u32", MT_GGUF_U32, &v_u32, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.i32", MT_GGUF_I32, &v_i32, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.u64", MT_GGUF_U64, &v_u64, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.i64", MT_GGUF_I64, &v_i64, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.f32", MT_GGUF_F32, &v_f32, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.f64", MT_GGUF_F64, &v_f64, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "t.bool", MT_GGUF_BOOL, &v_bool, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_str(w, "t.nul", nul_str, 3, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_str(w, "t.empty", "", 0, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_array(w, "a.i16", MT_GGUF_I16, a_i16, 4, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_array(w, "a.f32", MT_GGUF_F32, a_f32, 3, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_array(w, "a.bool", MT_GGUF_BOOL, a_bool, 3, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_array(w, "a.u64", MT_GGUF_U64, a_u64, 2, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_array(w, "a.f64", MT_GGUF_F64, a_f64, 1, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_array(w, "a.none", MT_GGUF_U8, NULL, 0, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_str_array(w, "a.str", a_str, 3, &err) == MT_OK);
    for (int t = 0; t < MT_GGUF_TYPE_COUNT; t++) {
        char key[32];
        snprintf(key, sizeof key, "e.%s", mt_gguf_type_name((mt_gguf_type)t));
        if (t != MT_GGUF_STR && t != MT_GGUF_ARRAY)
            CHECK(mt_gguf_writer_add_array(w, key, (mt_gguf_type)t, t == MT_GGUF_BOOL ? (const void *)a_bool : pool, 3,
                                           &err) == MT_OK);
    }
    size_t off = 0;
    for (size_t i = 0; i < MT_ARRAY_LEN(specs); i++) {
        const spec *s = &specs[i];
        size_t n = spec_bytes(s);
        mt_status st = i < 2 ? mt_gguf_writer_add_tensor_fill(w, s->name, s->dtype, s->ndim, s->shape, fill_pieces,
                                                              &fill_n[i], &err)
                             : mt_gguf_writer_add_tensor(w, s->name, s->dtype, s->ndim, s->shape, pool + off, n, &err);
        CHECK_MSG(st == MT_OK, "%s", err.msg);
        fill_n[i] = n;
        if (i >= 2) off += n;
    }
}

static void check_keys(const mt_gguf *g) {
    mt_err err;
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    mt_gguf_str str;
    CHECK(mt_gguf_get_u8(g, "t.u8", &u8, &err) == MT_OK && u8 == v_u8);
    CHECK(mt_gguf_get_i8(g, "t.i8", &i8, &err) == MT_OK && i8 == v_i8);
    CHECK(mt_gguf_get_u16(g, "t.u16", &u16, &err) == MT_OK && u16 == v_u16);
    CHECK(mt_gguf_get_i16(g, "t.i16", &i16, &err) == MT_OK && i16 == v_i16);
    CHECK(mt_gguf_get_u32(g, "t.u32", &u32, &err) == MT_OK && u32 == v_u32);
    CHECK(mt_gguf_get_i32(g, "t.i32", &i32, &err) == MT_OK && i32 == v_i32);
    CHECK(mt_gguf_get_u64(g, "t.u64", &u64, &err) == MT_OK && u64 == v_u64);
    CHECK(mt_gguf_get_i64(g, "t.i64", &i64, &err) == MT_OK && i64 == v_i64);
    CHECK(mt_gguf_get_f32(g, "t.f32", &f32, &err) == MT_OK && f32 == v_f32);
    CHECK(mt_gguf_get_f64(g, "t.f64", &f64, &err) == MT_OK && f64 == v_f64);
    CHECK(mt_gguf_get_bool(g, "t.bool", &b, &err) == MT_OK && b);
    CHECK(mt_gguf_get_str(g, "general.architecture", &str, &err) == MT_OK && strcmp(str.s, "qwen2") == 0);
    CHECK(mt_gguf_get_str(g, "t.nul", &str, &err) == MT_OK && str.len == 3 && memcmp(str.s, nul_str, 4) == 0);
    CHECK(mt_gguf_get_str(g, "t.empty", &str, &err) == MT_OK && str.len == 0 && str.s[0] == 0);
    const void *a;
    uint64_t n;
    CHECK(mt_gguf_get_array(g, "a.i16", MT_GGUF_I16, &a, &n, &err) == MT_OK && n == 4 &&
          memcmp(a, a_i16, sizeof a_i16) == 0);
    CHECK(mt_gguf_get_array(g, "a.f32", MT_GGUF_F32, &a, &n, &err) == MT_OK && n == 3 &&
          memcmp(a, a_f32, sizeof a_f32) == 0);
    CHECK(mt_gguf_get_array(g, "a.bool", MT_GGUF_BOOL, &a, &n, &err) == MT_OK && n == 3 &&
          memcmp(a, a_bool, sizeof a_bool) == 0);
    CHECK(mt_gguf_get_array(g, "a.u64", MT_GGUF_U64, &a, &n, &err) == MT_OK && n == 2 &&
          memcmp(a, a_u64, sizeof a_u64) == 0);
    CHECK(mt_gguf_get_array(g, "a.f64", MT_GGUF_F64, &a, &n, &err) == MT_OK && n == 1 &&
          memcmp(a, a_f64, sizeof a_f64) == 0);
    CHECK(mt_gguf_get_array(g, "a.none", MT_GGUF_U8, &a, &n, &err) == MT_OK && n == 0);
    CHECK(mt_gguf_get_array(g, "a.str", MT_GGUF_STR, &a, &n, &err) == MT_OK && n == 3);
    const mt_gguf_str *s = a;
    for (size_t i = 0; i < 3 && n == 3; i++) CHECK(s[i].len == strlen(a_str[i]) && strcmp(s[i].s, a_str[i]) == 0);

    static const size_t csize[] = {1, 1, 2, 2, 4, 4, 4, sizeof(bool), 0, 0, 8, 8, 8};
    for (int t = 0; t < MT_GGUF_TYPE_COUNT; t++) {
        char key[32];
        snprintf(key, sizeof key, "e.%s", mt_gguf_type_name((mt_gguf_type)t));
        if (t == MT_GGUF_STR || t == MT_GGUF_ARRAY) continue;
        const void *want = t == MT_GGUF_BOOL ? (const void *)a_bool : pool;
        CHECK_MSG(mt_gguf_get_array(g, key, (mt_gguf_type)t, &a, &n, &err) == MT_OK && n == 3 &&
                      memcmp(a, want, 3 * csize[t]) == 0 && (uintptr_t)a % csize[t] == 0,
                  "%s", key);
    }

    /* File order is the order added. */
    const char *order[] = {"general.architecture", "t.u8", "t.i8"};
    size_t first = mt_gguf_kv_count(g) == 33 ? 1 : 0; /* after general.alignment when it was added */
    for (size_t i = 0; i < 3; i++) CHECK(strcmp(mt_gguf_kv_at(g, first + i)->key, order[i]) == 0);
}

static void check_tensors(const mt_gguf *g, const uint8_t *file, size_t size, size_t alignment) {
    CHECK(mt_gguf_tensor_count(g) == MT_ARRAY_LEN(specs));
    CHECK(mt_gguf_alignment(g) == alignment && mt_gguf_data_offset(g) % alignment == 0);
    CHECK(size % alignment == 0);
    size_t off = 0;
    for (size_t i = 0; i < MT_ARRAY_LEN(specs) && i < mt_gguf_tensor_count(g); i++) {
        const spec *s = &specs[i];
        const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i), *f = mt_gguf_find_tensor(g, s->name), *got;
        mt_err err;
        CHECK(t == f && mt_gguf_get_tensor(g, s->name, &got, &err) == MT_OK && got == t);
        CHECK_MSG(strcmp(t->name, s->name) == 0 && t->dtype == s->dtype && t->ndim == s->ndim, "tensor %zu", i);
        for (int d = 0; d < s->ndim; d++) CHECK(t->shape[d] == s->shape[d]);
        size_t n = spec_bytes(s);
        CHECK(t->nbytes == n && t->offset % alignment == 0);
        CHECK((const uint8_t *)t->data == file + mt_gguf_data_offset(g) + t->offset);
        CHECK(memcmp(t->data, i < 2 ? pool + 100 : pool + off, n) == 0);
        uint32_t id;
        CHECK(mt_gguf_ggml_type_of(s->dtype, &id) && id == t->ggml_type);
        if (i >= 2) off += n;
    }
    CHECK(!mt_gguf_find_tensor(g, "nope"));
}

static void test_roundtrip(uint32_t alignment) {
    mt_gguf_writer *w;
    mt_err err;
    CHECK(mt_gguf_writer_new(&w, &err) == MT_OK);
    size_t fill_n[MT_ARRAY_LEN(specs)];
    build(w, alignment, fill_n);
    char path[256];
    snprintf(path, sizeof path, "%s/rt%u.gguf", st_scratch(), alignment);
    CHECK_MSG(mt_gguf_write(w, path, false, &err) == MT_OK, "%s", err.msg);
    mt_gguf_writer_free(w);

    mt_gguf *g = NULL;
    CHECK_MSG(mt_gguf_open_file(path, &g, &err) == MT_OK, "%s", err.msg);
    if (!g) return;
    mt_mapping m;
    CHECK(mt_file_map(path, &m, &err) == MT_OK);
    CHECK(mt_gguf_version(g) == 3 && mt_gguf_kv_count(g) == 32u + (alignment != 0));
    check_keys(g);
    mt_gguf_close(g);
    /* The same bytes through the buffer entry point, so data pointers can be compared with the file's. */
    CHECK(mt_gguf_open_buffer(m.data, m.size, "rt", &g, &err) == MT_OK);
    if (g) check_tensors(g, m.data, m.size, alignment ? alignment : MT_GGUF_DEFAULT_ALIGNMENT);
    mt_gguf_close(g);
    mt_file_unmap(&m);
}

static bool no_tmp_files(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp\\.'", st_scratch());
    return system(cmd) != 0;
}

static void test_writer_refusals(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/w.gguf", st_scratch());
    mt_gguf_writer *w;
    mt_err err;
    CHECK(mt_gguf_writer_new(&w, &err) == MT_OK);
    uint32_t u = 48;
    uint64_t big = 32;
    int64_t shape[] = {2, 33}, zero[] = {2, 0}, five[] = {1, 1, 1, 1, 1};
    CHECK(mt_gguf_writer_add(w, "general.alignment", MT_GGUF_U32, &u, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "power of two"));
    CHECK(mt_gguf_writer_add(w, "general.alignment", MT_GGUF_U64, &big, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_gguf_writer_add_str(w, "general.alignment", "32", 2, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_gguf_writer_add(w, "k", MT_GGUF_U32, &u, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_str(w, "k", "x", 1, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "\"k\" added twice"));
    CHECK(mt_gguf_writer_add(w, "", MT_GGUF_U32, &u, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_gguf_writer_add(w, "s", MT_GGUF_STR, "x", &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_gguf_writer_add_array(w, "arr", MT_GGUF_ARRAY, &u, 1, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_gguf_writer_add_tensor(w, "q", MT_Q4_0, 2, shape, pool, 36, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "\"q\"") && strstr(err.msg, "Q4_0 blocks of 32"));
    CHECK(mt_gguf_writer_add_tensor(w, "z", MT_F32, 2, zero, pool, 0, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "dimension 0"));
    CHECK(mt_gguf_writer_add_tensor(w, "5d", MT_F32, 5, five, pool, 4, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "5 dims"));
    CHECK(mt_gguf_writer_add_tensor(w, "u8", MT_U8, 1, shape, pool, 2, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "no GGUF type"));
    CHECK(mt_gguf_writer_add_tensor(w, "n", MT_F32, 1, shape, pool, 7, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "7 bytes, but its shape needs 8"));
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = 0;
    CHECK(mt_gguf_writer_add_tensor(w, longname, MT_F32, 1, shape, pool, 8, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "over 63 bytes"));
    CHECK(mt_gguf_writer_add_tensor(w, "a", MT_F32, 1, shape, pool, 8, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_tensor(w, "a", MT_F16, 1, shape, pool, 4, &err) == MT_OK);
    CHECK(mt_gguf_write(w, path, false, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "\"a\" added twice"));
    mt_gguf_writer_free(w);
    CHECK(!mt_file_exists(path));

    /* Fills that give too few or too many bytes: nothing is left on disk, not even the temporary file. */
    size_t n = 8;
    mt_gguf_fill_fn fills[] = {fill_short, fill_long};
    const char *want[] = {"fill wrote 7 of its 8 bytes", "fill wrote more than its 8 bytes"};
    for (int i = 0; i < 2; i++) {
        CHECK(mt_gguf_writer_new(&w, &err) == MT_OK);
        CHECK(mt_gguf_writer_add_tensor_fill(w, "t", MT_F32, 1, shape, fills[i], &n, &err) == MT_OK);
        CHECK(mt_gguf_write(w, path, false, &err) == MT_ERR_FORMAT && strstr(err.msg, want[i]));
        CHECK_MSG(no_tmp_files(), "a temporary file was left");
        CHECK(!mt_file_exists(path));
        mt_gguf_writer_free(w);
    }

    /* An existing file is kept unless overwrite is asked for. */
    st_bytes(path, "old", 3);
    CHECK(mt_gguf_writer_new(&w, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_tensor(w, "a", MT_F32, 1, shape, pool, 8, &err) == MT_OK);
    CHECK(mt_gguf_write(w, path, false, &err) == MT_ERR_IO && strstr(err.msg, "exists"));
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size == 3);
    CHECK(mt_gguf_write(w, path, true, &err) == MT_OK);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 96); /* a 57-byte header padded to 64, 8 bytes padded to 32 */
    mt_gguf_writer_free(w);
    unlink(path);
}

static void test_getters(void) {
    mt_gguf_writer *w;
    mt_err err;
    CHECK(mt_gguf_writer_new(&w, &err) == MT_OK);
    uint32_t u = 7;
    uint64_t big = UINT64_MAX;
    CHECK(mt_gguf_writer_add(w, "n.u32", MT_GGUF_U32, &u, &err) == MT_OK);
    CHECK(mt_gguf_writer_add(w, "n.big", MT_GGUF_U64, &big, &err) == MT_OK);
    CHECK(mt_gguf_writer_add_str_array(w, "n.strs", (const char *const[]){"x"}, 1, &err) == MT_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/get.gguf", st_scratch());
    CHECK(mt_gguf_write(w, path, false, &err) == MT_OK);
    mt_gguf_writer_free(w);
    mt_gguf *g = NULL;
    CHECK(mt_gguf_open_file(path, &g, &err) == MT_OK);
    unlink(path);
    if (!g) return;
    uint64_t u64;
    int64_t i64;
    float f;
    const void *a;
    uint64_t n;
    CHECK(mt_gguf_get_u64(g, "n.u32", &u64, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "key \"n.u32\" is u32, not u64") && strstr(err.msg, "get.gguf"), "%s", err.msg);
    CHECK(mt_gguf_get_f32(g, "n.missing", &f, &err) == MT_ERR_FORMAT && strstr(err.msg, "no key \"n.missing\""));
    CHECK(mt_gguf_get_array(g, "n.strs", MT_GGUF_U8, &a, &n, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "is an array of str, not an array of u8"), "%s", err.msg);
    CHECK(mt_gguf_get_array(g, "n.u32", MT_GGUF_U32, &a, &n, &err) == MT_ERR_FORMAT &&
          strstr(err.msg, "is u32, not an array of u32"));
    CHECK(mt_gguf_get_int(g, "n.u32", &i64, &err) == MT_OK && i64 == 7);
    CHECK(mt_gguf_get_int(g, "n.big", &i64, &err) == MT_ERR_FORMAT && strstr(err.msg, "over 2^63-1"));
    CHECK(mt_gguf_get_int(g, "n.strs", &i64, &err) == MT_ERR_FORMAT && strstr(err.msg, "not an integer"));
    CHECK(mt_gguf_get(g, "n.strs", MT_GGUF_ARRAY, &a, &err) == MT_ERR_INVALID_ARG);
    mt_gguf_close(g);
}

/* Every prefix of a valid file that cuts into its last tensor is refused with a message, never read past its end (ASan
 * checks). */
static void test_prefixes(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/rt0.gguf", st_scratch());
    mt_mapping m;
    mt_err err;
    CHECK(mt_file_map(path, &m, &err) == MT_OK);
    size_t needed = 0; /* the end of the last tensor: the padding after it may go */
    mt_gguf *g;
    if (mt_gguf_open_buffer(m.data, m.size, "full", &g, &err) == MT_OK) {
        for (size_t i = 0; i < mt_gguf_tensor_count(g); i++) {
            const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i);
            needed = MT_MAX(needed, mt_gguf_data_offset(g) + t->offset + t->nbytes);
        }
        mt_gguf_close(g);
    }
    int bad = 0;
    for (size_t n = 0; n < needed; n++) {
        uint8_t *copy = malloc(n + 1); /* exact size: ASan sees any over-read */
        memcpy(copy, m.data, n);
        g = NULL;
        mt_status s = mt_gguf_open_buffer(copy, n, "cut", &g, &err);
        bad += s != MT_ERR_FORMAT || !strstr(err.msg, "cut: ");
        if (s == MT_OK) mt_gguf_close(g);
        free(copy);
    }
    CHECK_MSG(bad == 0 && needed > 0 && needed < m.size, "%d prefixes not refused", bad);
    mt_file_unmap(&m);
}

static void test_alloc_failures(void) {
    char path[256], out[256];
    snprintf(path, sizeof path, "%s/rt64.gguf", st_scratch());
    snprintf(out, sizeof out, "%s/oom.gguf", st_scratch());
    int ok_open = 0, ok_write = 0;
    for (size_t k = 1; k < 200; k++) {
        mt_err err;
        mt_gguf *g = NULL;
        mt_alloc_fail_after(k);
        mt_status s = mt_gguf_open_file(path, &g, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        ok_open += s == MT_OK;
        mt_gguf_close(g);

        mt_gguf_writer *w = NULL;
        size_t fill_n[MT_ARRAY_LEN(specs)];
        mt_alloc_fail_after(k);
        s = mt_gguf_writer_new(&w, &err);
        for (size_t i = 0; i < MT_ARRAY_LEN(specs) && !s; i++) {
            const spec *sp = &specs[i];
            fill_n[i] = spec_bytes(sp);
            s = mt_gguf_writer_add_tensor(w, sp->name, sp->dtype, sp->ndim, sp->shape, pool, fill_n[i], &err);
        }
        if (!s) s = mt_gguf_writer_add_str_array(w, "a.str", a_str, 3, &err);
        if (!s) s = mt_gguf_write(w, out, true, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        ok_write += s == MT_OK;
        mt_gguf_writer_free(w);
    }
    CHECK(ok_open > 0 && ok_write > 0);
    unlink(out);
}

int main(void) {
    for (size_t i = 0; i < sizeof pool; i++) pool[i] = (uint8_t)(i * 2654435761u >> 13);
    test_roundtrip(0);
    test_roundtrip(64);
    test_writer_refusals();
    test_getters();
    test_prefixes();
    test_alloc_failures();
    st_scratch_remove();
    return check_report();
}
