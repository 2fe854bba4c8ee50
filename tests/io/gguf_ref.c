/* gguf_ref: mitten's GGUF reader and writer against llama.cpp's own (ggml's gguf API in libggml-base.so, from the
 * npm package @node-llama-cpp/linux-x64 that package.json installs).
 *
 *     gguf_ref LIBGGML_BASE_SO SCRATCH_DIR
 *
 * 1. mitten writes a file with a key of every value type and a tensor of every dtype; ggml reads it and every key,
 *    type, value, tensor name, ggml type, ne, offset and the data offset are compared, and the bytes at ggml's
 *    offsets with the tensors' data.
 * 2. ggml writes a file the same way (gguf_set_*, ggml_new_tensor + gguf_add_tensor + gguf_set_tensor_data,
 *    gguf_write_to_file), plus a Q5_K tensor mitten does not compute with; mitten reads it and compares the same.
 *    ggml keeps only ggml_n_dims dims, so a shape (1, 2, 1, 256) comes back as (2, 1, 256).
 * Both files hold general.alignment 64 except where ggml writes: its writer lays tensors out by its default 32
 * whatever the key says (and its own reader then refuses the file), so the key is left out there.
 * A missing library is a failure, not a skip: run npm install at the repository root.
 *
 * The few ggml functions used are declared here by hand from their documented signatures (ggml's gguf.h): plain
 * pointers and integers, enums as int, and ggml_init_params as the three fields ggml_init takes by value.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "io/gguf.h"

struct ggml_init_params {
    size_t mem_size;
    void *mem_buffer;
    bool no_alloc;
};
struct gguf_init_params {
    bool no_alloc;
    void **ctx;
};

static struct {
    void *(*init_from_file)(const char *, struct gguf_init_params);
    void *(*init_empty)(void);
    void (*free)(void *);
    int64_t (*n_kv)(const void *);
    const char *(*key)(const void *, int64_t);
    int (*kv_type)(const void *, int64_t);
    int (*arr_type)(const void *, int64_t);
    size_t (*arr_n)(const void *, int64_t);
    const void *(*arr_data)(const void *, int64_t);
    const char *(*arr_str)(const void *, int64_t, size_t);
    const void *(*val_data)(const void *, int64_t);
    const char *(*val_str)(const void *, int64_t);
    int64_t (*n_tensors)(const void *);
    const char *(*tensor_name)(const void *, int64_t);
    int (*tensor_type)(const void *, int64_t);
    size_t (*tensor_offset)(const void *, int64_t);
    size_t (*tensor_size)(const void *, int64_t);
    const int64_t *(*tensor_ne)(const void *, int64_t);
    size_t (*data_offset)(const void *);
    size_t (*alignment)(const void *);
    uint32_t (*version)(const void *);
    void (*set_u8)(void *, const char *, uint8_t);
    void (*set_i8)(void *, const char *, int8_t);
    void (*set_u16)(void *, const char *, uint16_t);
    void (*set_i16)(void *, const char *, int16_t);
    void (*set_u32)(void *, const char *, uint32_t);
    void (*set_i32)(void *, const char *, int32_t);
    void (*set_u64)(void *, const char *, uint64_t);
    void (*set_i64)(void *, const char *, int64_t);
    void (*set_f32)(void *, const char *, float);
    void (*set_f64)(void *, const char *, double);
    void (*set_bool)(void *, const char *, bool);
    void (*set_str)(void *, const char *, const char *);
    void (*set_arr_data)(void *, const char *, int, const void *, size_t);
    void (*set_arr_str)(void *, const char *, const char **, size_t);
    void (*add_tensor)(void *, const void *);
    void (*set_tensor_data)(void *, const char *, const void *);
    bool (*write_to_file)(const void *, const char *, bool);
    void *(*ggml_init)(struct ggml_init_params);
    void (*ggml_free)(void *);
    void *(*new_tensor)(void *, int, int, const int64_t *);
    void *(*set_name)(void *, const char *);
} gg;

static int failures;
#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "gguf_ref:%d: %s: ", __LINE__, #cond);                                                     \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

static bool load(const char *lib) {
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "gguf_ref: FAIL: cannot load llama.cpp's %s (%s); run npm install at the repository root\n",
                lib, dlerror());
        return false;
    }
    struct {
        void **fn;
        const char *name;
    } syms[] = {
#define SYM(field, name) {(void **)&gg.field, name}
        SYM(init_from_file, "gguf_init_from_file"),
        SYM(init_empty, "gguf_init_empty"),
        SYM(free, "gguf_free"),
        SYM(n_kv, "gguf_get_n_kv"),
        SYM(key, "gguf_get_key"),
        SYM(kv_type, "gguf_get_kv_type"),
        SYM(arr_type, "gguf_get_arr_type"),
        SYM(arr_n, "gguf_get_arr_n"),
        SYM(arr_data, "gguf_get_arr_data"),
        SYM(arr_str, "gguf_get_arr_str"),
        SYM(val_data, "gguf_get_val_data"),
        SYM(val_str, "gguf_get_val_str"),
        SYM(n_tensors, "gguf_get_n_tensors"),
        SYM(tensor_name, "gguf_get_tensor_name"),
        SYM(tensor_type, "gguf_get_tensor_type"),
        SYM(tensor_offset, "gguf_get_tensor_offset"),
        SYM(tensor_size, "gguf_get_tensor_size"),
        SYM(tensor_ne, "gguf_get_tensor_ne"),
        SYM(data_offset, "gguf_get_data_offset"),
        SYM(alignment, "gguf_get_alignment"),
        SYM(version, "gguf_get_version"),
        SYM(set_u8, "gguf_set_val_u8"),
        SYM(set_i8, "gguf_set_val_i8"),
        SYM(set_u16, "gguf_set_val_u16"),
        SYM(set_i16, "gguf_set_val_i16"),
        SYM(set_u32, "gguf_set_val_u32"),
        SYM(set_i32, "gguf_set_val_i32"),
        SYM(set_u64, "gguf_set_val_u64"),
        SYM(set_i64, "gguf_set_val_i64"),
        SYM(set_f32, "gguf_set_val_f32"),
        SYM(set_f64, "gguf_set_val_f64"),
        SYM(set_bool, "gguf_set_val_bool"),
        SYM(set_str, "gguf_set_val_str"),
        SYM(set_arr_data, "gguf_set_arr_data"),
        SYM(set_arr_str, "gguf_set_arr_str"),
        SYM(add_tensor, "gguf_add_tensor"),
        SYM(set_tensor_data, "gguf_set_tensor_data"),
        SYM(write_to_file, "gguf_write_to_file"),
        SYM(ggml_init, "ggml_init"),
        SYM(ggml_free, "ggml_free"),
        SYM(new_tensor, "ggml_new_tensor"),
        SYM(set_name, "ggml_set_name"),
#undef SYM
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            fprintf(stderr, "gguf_ref: FAIL: %s has no %s\n", lib, syms[i].name);
            return false;
        }
    return true;
}

/* One key of every value type, in a fixed order both writers follow. */
static const uint8_t v_u8 = 200;
static const int8_t v_i8 = -100;
static const uint16_t v_u16 = 60000;
static const int16_t v_i16 = -30000;
static const uint32_t v_u32 = 3000000000u;
/* Not the default 32, in mitten's file: ggml must find the tensors by it. ggml's writer lays tensors out by its
 * default whatever gguf_set_val_u32 says (its own reader then refuses the file), so its file keeps the default. */
static const uint32_t v_align = 64;
static const int32_t v_i32 = -2000000000;
static const uint64_t v_u64 = 17000000000000000000ull;
static const int64_t v_i64 = -8000000000000000000ll;
static const float v_f32 = 0.1f;
static const double v_f64 = -2.5e300;
static const bool v_bool = true;
static const char v_str[] = "Qwen2.5 \xe2\x9c\x93";
static const int32_t a_i32[] = {1, -2, 2147483647};
static const float a_f32[] = {0.25f, -1e-20f};
static const uint8_t a_u8[] = {0, 255, 7, 9};
static const char *a_str[] = {"<|im_start|>", "", "\xc4\xa0the"};

/* Bytes of a scalar in C and in the file (bool is one byte in both). */
static size_t vsize(mt_gguf_type t) {
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return sizes[t];
}

typedef struct key_spec {
    const char *key;
    mt_gguf_type type, elem;
    const void *v;
    size_t n;
} key_spec;

static const key_spec keys[] = {
    {"general.architecture", MT_GGUF_STR, 0, v_str, 0},
    {"general.alignment", MT_GGUF_U32, 0, &v_align, 0},
    {"k.u8", MT_GGUF_U8, 0, &v_u8, 0},
    {"k.i8", MT_GGUF_I8, 0, &v_i8, 0},
    {"k.u16", MT_GGUF_U16, 0, &v_u16, 0},
    {"k.i16", MT_GGUF_I16, 0, &v_i16, 0},
    {"k.u32", MT_GGUF_U32, 0, &v_u32, 0},
    {"k.i32", MT_GGUF_I32, 0, &v_i32, 0},
    {"k.u64", MT_GGUF_U64, 0, &v_u64, 0},
    {"k.i64", MT_GGUF_I64, 0, &v_i64, 0},
    {"k.f32", MT_GGUF_F32, 0, &v_f32, 0},
    {"k.f64", MT_GGUF_F64, 0, &v_f64, 0},
    {"k.bool", MT_GGUF_BOOL, 0, &v_bool, 0},
    {"a.i32", MT_GGUF_ARRAY, MT_GGUF_I32, a_i32, 3},
    {"a.f32", MT_GGUF_ARRAY, MT_GGUF_F32, a_f32, 2},
    {"a.u8", MT_GGUF_ARRAY, MT_GGUF_U8, a_u8, 4},
    {"a.str", MT_GGUF_ARRAY, MT_GGUF_STR, a_str, 3},
};

typedef struct tensor_spec {
    const char *name;
    mt_dtype dtype;
    uint32_t ggml_type;
    int ndim;
    int64_t shape[4]; /* mitten order */
} tensor_spec;

static const tensor_spec tensors[] = {
    {"token_embd.weight", MT_BF16, 30, 2, {5, 3}},
    {"blk.0.attn_q.weight", MT_Q8_0, 8, 2, {3, 64}},
    {"blk.0.attn_k.weight", MT_Q4_0, 2, 3, {2, 1, 32}},
    {"blk.0.ffn_up.weight", MT_Q4_K, 12, 2, {2, 256}},
    {"blk.0.ffn_down.weight", MT_Q6_K, 14, 4, {1, 2, 1, 256}},
    {"blk.0.attn_norm.weight", MT_F32, 0, 1, {7}},
    {"output.weight", MT_F16, 1, 2, {3, 3}},
    {"pos.i32", MT_I32, 26, 1, {3}},
    {"pos.i64", MT_I64, 27, 2, {2, 1}},
    {"q5k.weight", MT_GGUF_UNSUPPORTED, 13, 2, {1, 256}}, /* ggml's writer only: mitten cannot write it */
};
#define N_TENSORS (sizeof tensors / sizeof tensors[0])

static uint8_t pool[1 << 15];

static size_t tensor_bytes(const tensor_spec *t, size_t block_elems, size_t block_bytes) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return (size_t)n / block_elems * block_bytes;
}

static const struct {
    uint32_t id;
    size_t elems, bytes;
} blocks[] = {{30, 1, 2}, {8, 32, 34}, {2, 32, 18}, {12, 256, 144}, {14, 256, 210},
              {0, 1, 4},  {1, 1, 2},   {26, 1, 4},  {27, 1, 8},     {13, 256, 176}};

static size_t spec_bytes(size_t i) { return tensor_bytes(&tensors[i], blocks[i].elems, blocks[i].bytes); }
static const uint8_t *spec_data(size_t i) { return pool + 64 * i; }

static void write_mitten(const char *path) {
    mt_gguf_writer *w;
    mt_err err;
    mt_status s = mt_gguf_writer_new(&w, &err);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !s; i++) {
        const key_spec *k = &keys[i];
        if (k->type == MT_GGUF_STR)
            s = mt_gguf_writer_add_str(w, k->key, k->v, strlen(k->v), &err);
        else if (k->type != MT_GGUF_ARRAY)
            s = mt_gguf_writer_add(w, k->key, k->type, k->v, &err);
        else if (k->elem == MT_GGUF_STR)
            s = mt_gguf_writer_add_str_array(w, k->key, k->v, k->n, &err);
        else
            s = mt_gguf_writer_add_array(w, k->key, k->elem, k->v, k->n, &err);
    }
    for (size_t i = 0; i + 1 < N_TENSORS && !s; i++)
        s = mt_gguf_writer_add_tensor(w, tensors[i].name, tensors[i].dtype, tensors[i].ndim, tensors[i].shape,
                                      spec_data(i), spec_bytes(i), &err);
    if (!s) s = mt_gguf_write(w, path, true, &err);
    EXPECT(s == MT_OK, "mitten write: %s", err.msg);
    mt_gguf_writer_free(w);
}

static void write_ggml(const char *path) {
    void *g = gg.init_empty();
    gg.set_str(g, "general.architecture", v_str);
    gg.set_u8(g, "k.u8", v_u8);
    gg.set_i8(g, "k.i8", v_i8);
    gg.set_u16(g, "k.u16", v_u16);
    gg.set_i16(g, "k.i16", v_i16);
    gg.set_u32(g, "k.u32", v_u32);
    gg.set_i32(g, "k.i32", v_i32);
    gg.set_u64(g, "k.u64", v_u64);
    gg.set_i64(g, "k.i64", v_i64);
    gg.set_f32(g, "k.f32", v_f32);
    gg.set_f64(g, "k.f64", v_f64);
    gg.set_bool(g, "k.bool", v_bool);
    gg.set_arr_data(g, "a.i32", MT_GGUF_I32, a_i32, 3);
    gg.set_arr_data(g, "a.f32", MT_GGUF_F32, a_f32, 2);
    gg.set_arr_data(g, "a.u8", MT_GGUF_U8, a_u8, 4);
    gg.set_arr_str(g, "a.str", a_str, 3);
    void *ctx = gg.ggml_init((struct ggml_init_params){1 << 20, NULL, true});
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tensor_spec *t = &tensors[i];
        int64_t ne[4];
        for (int d = 0; d < t->ndim; d++) ne[d] = t->shape[t->ndim - 1 - d];
        void *gt = gg.new_tensor(ctx, (int)t->ggml_type, t->ndim, ne);
        gg.set_name(gt, t->name);
        gg.add_tensor(g, gt);
        gg.set_tensor_data(g, t->name, spec_data(i));
    }
    EXPECT(gg.write_to_file(g, path, false), "ggml could not write %s", path);
    gg.ggml_free(ctx);
    gg.free(g);
}

/* ggml reads what mitten wrote. */
static void check_with_ggml(const char *path) {
    void *g = gg.init_from_file(path, (struct gguf_init_params){true, NULL});
    EXPECT(g, "ggml could not read %s", path);
    if (!g) return;
    EXPECT(gg.version(g) == 3, "version %u", gg.version(g));
    EXPECT(gg.alignment(g) == v_align, "alignment %zu", gg.alignment(g));
    size_t nk = sizeof keys / sizeof keys[0];
    EXPECT(gg.n_kv(g) == (int64_t)nk, "%lld keys", (long long)gg.n_kv(g));
    for (int64_t i = 0; i < gg.n_kv(g) && i < (int64_t)nk; i++) {
        const key_spec *k = &keys[i];
        EXPECT(strcmp(gg.key(g, i), k->key) == 0, "key %lld: %s, want %s", (long long)i, gg.key(g, i), k->key);
        EXPECT(gg.kv_type(g, i) == (int)k->type, "%s: type %d", k->key, gg.kv_type(g, i));
        if (gg.kv_type(g, i) != (int)k->type) continue;
        if (k->type == MT_GGUF_STR) {
            EXPECT(strcmp(gg.val_str(g, i), k->v) == 0, "%s: \"%s\"", k->key, gg.val_str(g, i));
        } else if (k->type != MT_GGUF_ARRAY) {
            EXPECT(memcmp(gg.val_data(g, i), k->v, vsize(k->type)) == 0, "%s: value differs", k->key);
        } else {
            EXPECT(gg.arr_type(g, i) == (int)k->elem && gg.arr_n(g, i) == k->n, "%s: array of %d x %zu", k->key,
                   gg.arr_type(g, i), gg.arr_n(g, i));
            if (gg.arr_type(g, i) != (int)k->elem || gg.arr_n(g, i) != k->n) continue;
            if (k->elem == MT_GGUF_STR) {
                for (size_t j = 0; j < k->n; j++)
                    EXPECT(strcmp(gg.arr_str(g, i, j), ((const char **)k->v)[j]) == 0, "%s[%zu]", k->key, j);
            } else {
                EXPECT(memcmp(gg.arr_data(g, i), k->v, k->n * vsize(k->elem)) == 0, "%s: values differ", k->key);
            }
        }
    }
    mt_mapping m;
    mt_err err;
    EXPECT(mt_file_map(path, &m, &err) == MT_OK, "%s", err.msg);
    size_t nt = N_TENSORS - 1, expect_off = 0;
    EXPECT(gg.n_tensors(g) == (int64_t)nt, "%lld tensors", (long long)gg.n_tensors(g));
    for (int64_t i = 0; i < gg.n_tensors(g) && i < (int64_t)nt; i++) {
        const tensor_spec *t = &tensors[i];
        size_t n = spec_bytes((size_t)i);
        EXPECT(strcmp(gg.tensor_name(g, i), t->name) == 0, "tensor %lld: %s", (long long)i, gg.tensor_name(g, i));
        EXPECT(gg.tensor_type(g, i) == (int)t->ggml_type, "%s: type %d", t->name, gg.tensor_type(g, i));
        const int64_t *ne = gg.tensor_ne(g, i);
        for (int d = 0; d < 4; d++) {
            int64_t want = d < t->ndim ? t->shape[t->ndim - 1 - d] : 1;
            EXPECT(ne[d] == want, "%s: ne[%d] = %lld, want %lld", t->name, d, (long long)ne[d], (long long)want);
        }
        EXPECT(gg.tensor_offset(g, i) == expect_off, "%s: offset %zu, want %zu", t->name, gg.tensor_offset(g, i),
               expect_off);
        EXPECT(gg.tensor_size(g, i) == n, "%s: %zu bytes, want %zu", t->name, gg.tensor_size(g, i), n);
        size_t at = gg.data_offset(g) + gg.tensor_offset(g, i);
        EXPECT(at + n <= m.size && memcmp(m.data + at, spec_data((size_t)i), n) == 0, "%s: bytes differ", t->name);
        expect_off += (n + v_align - 1) / v_align * v_align;
    }
    mt_gguf *mg = NULL;
    EXPECT(mt_gguf_open_file(path, &mg, &err) == MT_OK, "%s", err.msg);
    if (mg)
        EXPECT(mt_gguf_data_offset(mg) == gg.data_offset(g), "data offset %zu vs ggml's %zu", mt_gguf_data_offset(mg),
               gg.data_offset(g));
    mt_gguf_close(mg);
    mt_file_unmap(&m);
    gg.free(g);
}

/* mitten reads what ggml wrote. */
static void check_with_mitten(const char *path) {
    mt_gguf *g = NULL;
    mt_err err;
    EXPECT(mt_gguf_open_file(path, &g, &err) == MT_OK, "%s", err.msg);
    if (!g) return;
    EXPECT(mt_gguf_version(g) == 3 && mt_gguf_alignment(g) == 32, "version %u, alignment %zu",
           mt_gguf_version(g), mt_gguf_alignment(g));
    size_t nk = sizeof keys / sizeof keys[0] - 1; /* all but general.alignment, keys[1] */
    EXPECT(mt_gguf_kv_count(g) == nk, "%zu keys", mt_gguf_kv_count(g));
    for (size_t i = 0; i < nk && i < mt_gguf_kv_count(g); i++) {
        const key_spec *k = &keys[i ? i + 1 : 0];
        const mt_gguf_kv *kv = mt_gguf_kv_at(g, i);
        EXPECT(strcmp(kv->key, k->key) == 0 && kv->type == k->type, "key %zu: %s (%s)", i, kv->key,
               mt_gguf_type_name(kv->type));
        EXPECT(mt_gguf_find_kv(g, k->key) == kv, "%s: find", k->key);
        if (kv->type != k->type) continue;
        if (k->type == MT_GGUF_STR) {
            mt_gguf_str s;
            EXPECT(mt_gguf_get_str(g, k->key, &s, &err) == MT_OK && s.len == strlen(k->v) && strcmp(s.s, k->v) == 0,
                   "%s", k->key);
        } else if (k->type != MT_GGUF_ARRAY) {
            uint8_t v[8] = {0};
            EXPECT(mt_gguf_get(g, k->key, k->type, v, &err) == MT_OK, "%s", err.msg);
            EXPECT(memcmp(v, k->v, vsize(k->type)) == 0, "%s: value differs", k->key);
        } else {
            const void *a;
            uint64_t n;
            EXPECT(mt_gguf_get_array(g, k->key, k->elem, &a, &n, &err) == MT_OK && n == k->n, "%s", err.msg);
            if (n != k->n) continue;
            if (k->elem == MT_GGUF_STR) {
                for (size_t j = 0; j < n; j++)
                    EXPECT(strcmp(((const mt_gguf_str *)a)[j].s, ((const char **)k->v)[j]) == 0, "%s[%zu]", k->key, j);
            } else {
                EXPECT(memcmp(a, k->v, n * vsize(k->elem)) == 0, "%s: values differ", k->key);
            }
        }
    }
    EXPECT(mt_gguf_tensor_count(g) == N_TENSORS, "%zu tensors", mt_gguf_tensor_count(g));
    for (size_t i = 0; i < N_TENSORS && i < mt_gguf_tensor_count(g); i++) {
        const tensor_spec *t = &tensors[i];
        const mt_gguf_tensor *mt = mt_gguf_tensor_at(g, i);
        EXPECT(strcmp(mt->name, t->name) == 0 && mt_gguf_find_tensor(g, t->name) == mt, "tensor %zu: %s", i, mt->name);
        /* ggml writes ggml_n_dims dims: the outer dims of 1 (leading, in mitten's order) are not in its file. */
        int lead = 0;
        while (lead < t->ndim - 1 && t->shape[lead] == 1) lead++;
        EXPECT(mt->dtype == t->dtype && mt->ggml_type == t->ggml_type && mt->ndim == t->ndim - lead,
               "%s: dtype %d type %u ndim %d", t->name, (int)mt->dtype, mt->ggml_type, mt->ndim);
        for (int d = 0; d < mt->ndim && d + lead < t->ndim; d++)
            EXPECT(mt->shape[d] == t->shape[d + lead], "%s: shape[%d] = %lld", t->name, d, (long long)mt->shape[d]);
        EXPECT(mt->nbytes == spec_bytes(i) && memcmp(mt->data, spec_data(i), mt->nbytes) == 0, "%s: bytes differ",
               t->name);
    }
    mt_gguf_close(g);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gguf_ref LIBGGML_BASE_SO SCRATCH_DIR\n");
        return 2;
    }
    if (!load(argv[1])) return 1;
    for (size_t i = 0; i < sizeof pool; i++) pool[i] = (uint8_t)(i * 2654435761u >> 11);
    /* Valid f16 scales in the quantized blocks are not needed: both sides move bytes, neither decodes them. */
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/gguf_ref_mitten.gguf", argv[2]);
    snprintf(b, sizeof b, "%s/gguf_ref_ggml.gguf", argv[2]);
    write_mitten(a);
    check_with_ggml(a);
    write_ggml(b);
    check_with_mitten(b);
    remove(a);
    remove(b);
    fprintf(stderr, "gguf_ref: %s\n", failures ? "FAILED" : "mitten and ggml agree on both files");
    return failures ? 1 : 0;
}
