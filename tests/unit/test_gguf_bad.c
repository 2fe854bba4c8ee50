/* io/gguf: files built byte by byte that no correct writer makes, one per refusal listed in gguf.h, each checked
 * for its status and the words of its message; and the files the reader must accept although mitten's writer never
 * makes them (version 2, gaps between tensors, ggml types mitten does not compute with, a misaligned buffer). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/gguf.h"

typedef struct img {
    uint8_t b[1 << 13];
    size_t n;
} img;

static void put(img *m, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) m->b[m->n++] = (uint8_t)(v >> (8 * i));
}
static void u32(img *m, uint32_t v) { put(m, v, 4); }
static void u64(img *m, uint64_t v) { put(m, v, 8); }
static void str(img *m, const char *s) {
    u64(m, strlen(s));
    memcpy(m->b + m->n, s, strlen(s));
    m->n += strlen(s);
}
static void header(img *m, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    m->n = 0;
    memcpy(m->b, "GGUF", 4);
    m->n = 4;
    u32(m, version);
    u64(m, n_tensors);
    u64(m, n_kv);
}
static void kv_u32(img *m, const char *key, uint32_t v) {
    str(m, key);
    u32(m, MT_GGUF_U32);
    u32(m, v);
}
/* ne in GGUF order (ne[0] first). */
static void tensor(img *m, const char *name, uint32_t ndim, const uint64_t *ne, uint32_t type, uint64_t offset) {
    str(m, name);
    u32(m, ndim);
    for (uint32_t i = 0; i < ndim; i++) u64(m, ne[i]);
    u32(m, type);
    u64(m, offset);
}
/* Pads to align, then n data bytes. */
static void data(img *m, size_t align, size_t n) {
    while (m->n % align) m->b[m->n++] = 0;
    for (size_t i = 0; i < n; i++) m->b[m->n++] = (uint8_t)i;
}

/* Opens m; CHECKs the status and that the message holds every one of the NULL-terminated words. */
static void refused(const img *m, mt_status want, const char *what, ...) {
    uint8_t *copy = malloc(m->n + 1); /* exact size: ASan sees any over-read */
    memcpy(copy, m->b, m->n);
    mt_gguf *g = NULL;
    mt_err err = {0};
    mt_status s = mt_gguf_open_buffer(copy, m->n, "bad.gguf", &g, &err);
    CHECK_MSG(s == want, "%s: status %d, want %d (%s)", what, (int)s, (int)want, err.msg);
    CHECK_MSG(strncmp(err.msg, "bad.gguf: ", 10) == 0, "%s: message does not name the file: %s", what, err.msg);
    va_list ap;
    va_start(ap, what);
    for (const char *w; (w = va_arg(ap, const char *));)
        CHECK_MSG(strstr(err.msg, w), "%s: \"%s\" not in: %s", what, w, err.msg);
    va_end(ap);
    if (s == MT_OK) mt_gguf_close(g);
    free(copy);
}

static void test_header(void) {
    img m;
    header(&m, 3, 0, 0);
    m.n = 10;
    refused(&m, MT_ERR_FORMAT, "short", "truncated", "header tensor count at byte 8", NULL);
    header(&m, 3, 0, 0);
    m.n = 20;
    refused(&m, MT_ERR_FORMAT, "short counts", "truncated", "key count", NULL);
    header(&m, 3, 0, 0);
    m.b[0] = 'g';
    refused(&m, MT_ERR_FORMAT, "magic", "not a GGUF file", NULL);
    header(&m, 1, 0, 0);
    refused(&m, MT_ERR_UNSUPPORTED, "v1", "version 1", NULL);
    header(&m, 0x03000000u, 0, 0);
    refused(&m, MT_ERR_UNSUPPORTED, "big-endian", "big-endian", NULL);
    header(&m, 3, 0, 1000);
    kv_u32(&m, "a", 1);
    refused(&m, MT_ERR_FORMAT, "kv count", "1000 keys", "cannot fit", NULL);
    header(&m, 3, UINT64_MAX / 2, 0);
    refused(&m, MT_ERR_FORMAT, "tensor count", "tensors cannot fit", NULL);
}

static void test_keys(void) {
    img m;
    header(&m, 3, 0, 1);
    u64(&m, 1u << 20);
    m.n += 40;
    refused(&m, MT_ERR_FORMAT, "key length", "key 0", "over the limit of 65535", NULL);
    header(&m, 3, 0, 1);
    u64(&m, 30);
    m.n += 20;
    refused(&m, MT_ERR_FORMAT, "key past end", "key 0", "30 bytes", "past the end", NULL);
    header(&m, 3, 0, 1);
    u64(&m, 3);
    m.b[m.n++] = 'a';
    m.b[m.n++] = 0;
    m.b[m.n++] = 'b';
    u32(&m, MT_GGUF_U8);
    m.b[m.n++] = 1;
    refused(&m, MT_ERR_FORMAT, "NUL in key", "NUL byte", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.t");
    u32(&m, 13);
    u32(&m, 0);
    refused(&m, MT_ERR_FORMAT, "value type", "\"k.t\"", "unknown value type 13", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.s");
    u32(&m, MT_GGUF_STR);
    u64(&m, 100);
    m.n += 10;
    refused(&m, MT_ERR_FORMAT, "string value", "\"k.s\"", "100 bytes", "past the end", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.b");
    u32(&m, MT_GGUF_BOOL);
    m.b[m.n++] = 2;
    refused(&m, MT_ERR_FORMAT, "bool", "\"k.b\"", "bool value 2", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.nest");
    u32(&m, MT_GGUF_ARRAY);
    u32(&m, MT_GGUF_ARRAY);
    u64(&m, 1);
    u32(&m, MT_GGUF_U8);
    u64(&m, 0);
    refused(&m, MT_ERR_UNSUPPORTED, "nested", "\"k.nest\"", "nested arrays", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.arr");
    u32(&m, MT_GGUF_ARRAY);
    u32(&m, MT_GGUF_U64);
    u64(&m, 1000);
    m.n += 64;
    refused(&m, MT_ERR_FORMAT, "array count", "\"k.arr\"", "array of 1000 u64 cannot fit", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.sarr");
    u32(&m, MT_GGUF_ARRAY);
    u32(&m, MT_GGUF_STR);
    u64(&m, 2);
    str(&m, "ok");
    u64(&m, 5);
    m.b[m.n++] = 'x';
    refused(&m, MT_ERR_FORMAT, "array string", "\"k.sarr\": array string", "past the end", NULL);
    header(&m, 3, 0, 1);
    str(&m, "k.barr");
    u32(&m, MT_GGUF_ARRAY);
    u32(&m, MT_GGUF_BOOL);
    u64(&m, 3);
    m.b[m.n++] = 1;
    m.b[m.n++] = 0;
    m.b[m.n++] = 7;
    refused(&m, MT_ERR_FORMAT, "bool array", "\"k.barr\"", "bool value 7", NULL);
    header(&m, 3, 0, 2);
    kv_u32(&m, "k.dup", 1);
    kv_u32(&m, "k.dup", 2);
    refused(&m, MT_ERR_FORMAT, "duplicate key", "key \"k.dup\" appears twice", NULL);
    header(&m, 3, 0, 1);
    kv_u32(&m, "general.alignment", 48);
    refused(&m, MT_ERR_FORMAT, "alignment", "general.alignment 48 is not a power of two", NULL);
    header(&m, 3, 0, 1);
    kv_u32(&m, "general.alignment", 0);
    refused(&m, MT_ERR_FORMAT, "alignment 0", "general.alignment 0", NULL);
    header(&m, 3, 0, 1);
    str(&m, "general.alignment");
    u32(&m, MT_GGUF_U64);
    u64(&m, 32);
    refused(&m, MT_ERR_FORMAT, "alignment type", "general.alignment", "is u64, it must be u32", NULL);
}

static void test_tensors(void) {
    img m;
    uint64_t ne4[] = {4}, ne2[] = {4, 2};
    header(&m, 3, 1, 0);
    tensor(&m, "t.type", 1, ne4, 40, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_UNSUPPORTED, "type 40", "\"t.type\"", "unknown ggml type id 40", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.removed", 1, ne4, 4, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_UNSUPPORTED, "type 4", "\"t.removed\"", "unknown ggml type id 4", NULL);
    uint64_t ne0[] = {4, 0};
    header(&m, 3, 1, 0);
    tensor(&m, "t.zero", 2, ne0, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "dim 0", "\"t.zero\"", "ne[1] = 0 is 0", NULL);
    uint64_t nebig[] = {1ull << 62, 1ull << 62};
    header(&m, 3, 1, 0);
    tensor(&m, "t.big", 2, nebig, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "overflow", "\"t.big\"", "element count overflows", NULL);
    uint64_t nehuge[] = {1ull << 63};
    header(&m, 3, 1, 0);
    tensor(&m, "t.huge", 1, nehuge, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "dim over int64", "\"t.huge\"", "over 2^63-1", NULL);
    uint64_t nebytes[] = {1ull << 62};
    header(&m, 3, 1, 0);
    tensor(&m, "t.bytes", 1, nebytes, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "bytes overflow", "\"t.bytes\"", "byte size overflows", NULL);
    uint64_t ne5[] = {1, 1, 1, 1, 1};
    header(&m, 3, 1, 0);
    tensor(&m, "t.5d", 5, ne5, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "5 dims", "\"t.5d\"", "5 dims", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.0d", 0, ne5, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "0 dims", "\"t.0d\"", "0 dims", NULL);
    uint64_t ne33[] = {33, 2};
    header(&m, 3, 1, 0);
    tensor(&m, "t.q", 2, ne33, 2, 0);
    data(&m, 32, 64);
    refused(&m, MT_ERR_FORMAT, "blocks", "\"t.q\"", "33 elements is not a whole number of Q4_0 blocks of 32", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.off", 1, ne4, 0, 16);
    data(&m, 32, 64);
    refused(&m, MT_ERR_FORMAT, "alignment", "\"t.off\"", "offset 16 is not a multiple of the alignment 32", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.end", 2, ne2, 0, 0);
    data(&m, 32, 31);
    refused(&m, MT_ERR_FORMAT, "past end", "\"t.end\"", "past the end of the data section (31 bytes)", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.far", 1, ne4, 0, 1ull << 40);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "offset far", "\"t.far\"", "past the end", NULL);
    header(&m, 3, 2, 0);
    tensor(&m, "t.a", 2, ne2, 0, 0);
    tensor(&m, "t.b", 1, ne4, 0, 0);
    data(&m, 32, 64);
    refused(&m, MT_ERR_FORMAT, "overlap", "overlap tensor", "t.a", "t.b", NULL);
    header(&m, 3, 2, 0);
    tensor(&m, "t.same", 1, ne4, 0, 0);
    tensor(&m, "t.same", 1, ne4, 0, 32);
    data(&m, 32, 64);
    refused(&m, MT_ERR_FORMAT, "duplicate tensor", "tensor \"t.same\" appears twice", NULL);
    char name[80];
    memset(name, 'n', 65);
    name[65] = 0;
    header(&m, 3, 1, 0);
    tensor(&m, name, 1, ne4, 0, 0);
    data(&m, 32, 32);
    refused(&m, MT_ERR_FORMAT, "name length", "tensor 0: name", "65 bytes", "limit of 64", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.cut", 1, ne4, 0, 0);
    m.n -= 4;
    refused(&m, MT_ERR_FORMAT, "cut info", "truncated", "\"t.cut\"", NULL);
    header(&m, 3, 1, 0);
    tensor(&m, "t.nodat", 1, ne4, 0, 0); /* the infos end at byte 63: the data section would start at 64 */
    refused(&m, MT_ERR_FORMAT, "no data section", "data section would start at byte", NULL);
}

/* What the reader must accept: v2, gaps, a 64-byte name, a type mitten does not compute with, no tensors, and a
 * small alignment that leaves data misaligned in the buffer. */
static void test_accepted(void) {
    img m;
    uint64_t ne[] = {256, 2}, ne4[] = {4};
    header(&m, 2, 3, 1);
    kv_u32(&m, "general.alignment", 2);
    char name[80];
    memset(name, 'n', 64);
    name[64] = 0;
    tensor(&m, "q5k", 2, ne, 13, 0);
    tensor(&m, name, 1, ne4, 0, 400);
    tensor(&m, "f16", 1, ne4, 1, 418);
    data(&m, 2, 430);
    uint8_t *copy = malloc(m.n + 1);
    memcpy(copy + 1, m.b, m.n); /* odd address: the f32 tensor cannot stay in place */
    mt_gguf *g = NULL;
    mt_err err;
    CHECK_MSG(mt_gguf_open_buffer(copy + 1, m.n, "ok.gguf", &g, &err) == MT_OK, "%s", err.msg);
    if (g) {
        CHECK(mt_gguf_version(g) == 2 && mt_gguf_alignment(g) == 2 && mt_gguf_tensor_count(g) == 3);
        const mt_gguf_tensor *q = mt_gguf_find_tensor(g, "q5k"), *f = mt_gguf_find_tensor(g, name), *h;
        CHECK(q && q->dtype == MT_GGUF_UNSUPPORTED && q->ggml_type == 13 && q->nbytes == 352);
        CHECK(q && q->shape[0] == 2 && q->shape[1] == 256 && q->ndim == 2);
        CHECK(mt_gguf_get_tensor(g, "q5k", &h, &err) == MT_ERR_UNSUPPORTED && strstr(err.msg, "\"q5k\"") &&
              strstr(err.msg, "Q5_K"));
        CHECK(f && f->dtype == MT_F32 && f->nbytes == 16 && (uintptr_t)f->data % 4 == 0);
        CHECK(f && memcmp(f->data, copy + 1 + mt_gguf_data_offset(g) + 400, 16) == 0);
        CHECK(mt_gguf_get_tensor(g, "f16", &h, &err) == MT_OK && h->dtype == MT_F16 && (uintptr_t)h->data % 2 == 0);
        CHECK(mt_gguf_get_tensor(g, "none", &h, &err) == MT_ERR_FORMAT && strstr(err.msg, "no tensor \"none\""));
        mt_gguf_close(g);
    }
    free(copy);
    header(&m, 3, 0, 0);
    CHECK(mt_gguf_open_buffer(m.b, m.n, "empty.gguf", &g, &err) == MT_OK);
    if (g) CHECK(mt_gguf_alignment(g) == 32 && mt_gguf_kv_count(g) == 0 && mt_gguf_tensor_count(g) == 0);
    mt_gguf_close(g);
    CHECK(mt_gguf_open_file("/nonexistent/x.gguf", &g, &err) == MT_ERR_IO && strstr(err.msg, "/nonexistent/x.gguf"));
}

int main(void) {
    test_header();
    test_keys();
    test_tensors();
    test_accepted();
    return check_report();
}
