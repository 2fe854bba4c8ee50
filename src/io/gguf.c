/* io/gguf: parsing, validation and lookup of GGUF files (the format and the checks are drawn in gguf.h), and the
 * table of ggml types shared with the writer (gguf_write.c).
 *
 * The file is untrusted: every read goes through a cursor that checks the bytes left first, counts are compared
 * with the bytes that could hold them before anything is allocated (so memory stays within a small multiple of the
 * file size), and sizes are overflow-checked before an offset or a pointer is formed. Names in messages are cut at
 * 200 bytes so the file name always fits.
 */
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "io/gguf_int.h"

/* Block sizes of every ggml type a GGUF file may hold (ggml's ggml_blck_size / ggml_type_size; ids 4, 5 and 31..38
 * were removed from the format). */
static const mt_gguf_ggml_info ggml_types[] = {
    [0] = {"F32", 1, 4, MT_F32},
    [1] = {"F16", 1, 2, MT_F16},
    [2] = {"Q4_0", 32, 18, MT_Q4_0},
    [3] = {"Q4_1", 32, 20, MT_GGUF_UNSUPPORTED},
    [6] = {"Q5_0", 32, 22, MT_GGUF_UNSUPPORTED},
    [7] = {"Q5_1", 32, 24, MT_GGUF_UNSUPPORTED},
    [8] = {"Q8_0", 32, 34, MT_Q8_0},
    [9] = {"Q8_1", 32, 36, MT_GGUF_UNSUPPORTED},
    [10] = {"Q2_K", 256, 84, MT_GGUF_UNSUPPORTED},
    [11] = {"Q3_K", 256, 110, MT_GGUF_UNSUPPORTED},
    [12] = {"Q4_K", 256, 144, MT_Q4_K},
    [13] = {"Q5_K", 256, 176, MT_GGUF_UNSUPPORTED},
    [14] = {"Q6_K", 256, 210, MT_Q6_K},
    [15] = {"Q8_K", 256, 292, MT_GGUF_UNSUPPORTED},
    [16] = {"IQ2_XXS", 256, 66, MT_GGUF_UNSUPPORTED},
    [17] = {"IQ2_XS", 256, 74, MT_GGUF_UNSUPPORTED},
    [18] = {"IQ3_XXS", 256, 98, MT_GGUF_UNSUPPORTED},
    [19] = {"IQ1_S", 256, 50, MT_GGUF_UNSUPPORTED},
    [20] = {"IQ4_NL", 32, 18, MT_GGUF_UNSUPPORTED},
    [21] = {"IQ3_S", 256, 110, MT_GGUF_UNSUPPORTED},
    [22] = {"IQ2_S", 256, 82, MT_GGUF_UNSUPPORTED},
    [23] = {"IQ4_XS", 256, 136, MT_GGUF_UNSUPPORTED},
    [24] = {"I8", 1, 1, MT_GGUF_UNSUPPORTED},
    [25] = {"I16", 1, 2, MT_GGUF_UNSUPPORTED},
    [26] = {"I32", 1, 4, MT_I32},
    [27] = {"I64", 1, 8, MT_I64},
    [28] = {"F64", 1, 8, MT_GGUF_UNSUPPORTED},
    [29] = {"IQ1_M", 256, 56, MT_GGUF_UNSUPPORTED},
    [30] = {"BF16", 1, 2, MT_BF16},
    [34] = {"TQ1_0", 256, 54, MT_GGUF_UNSUPPORTED},
    [35] = {"TQ2_0", 256, 66, MT_GGUF_UNSUPPORTED},
    [39] = {"MXFP4", 32, 17, MT_GGUF_UNSUPPORTED},
};

const mt_gguf_ggml_info *mt_gguf_ggml_info_of(uint32_t ggml_type) {
    return ggml_type < MT_ARRAY_LEN(ggml_types) && ggml_types[ggml_type].name ? &ggml_types[ggml_type] : NULL;
}

const char *mt_gguf_ggml_type_name(uint32_t ggml_type) {
    const mt_gguf_ggml_info *t = mt_gguf_ggml_info_of(ggml_type);
    return t ? t->name : NULL;
}

bool mt_gguf_ggml_type_of(mt_dtype dtype, uint32_t *ggml_type) {
    for (uint32_t i = 0; i < MT_ARRAY_LEN(ggml_types); i++)
        if (ggml_types[i].name && ggml_types[i].dtype == dtype && dtype != MT_GGUF_UNSUPPORTED) {
            *ggml_type = i;
            return true;
        }
    return false;
}

const char *mt_gguf_type_name(mt_gguf_type t) {
    static const char *names[] = {"u8",   "i8",  "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "str", "array", "u64", "i64", "f64"};
    return (unsigned)t < MT_ARRAY_LEN(names) ? names[t] : "?";
}

size_t mt_gguf_scalar_size(mt_gguf_type t) {
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < MT_ARRAY_LEN(sizes) ? sizes[t] : 0;
}

typedef struct gguf_entry {
    mt_gguf_tensor t;
    void *copy; /* owned aligned copy when the in-file bytes were misaligned, else NULL */
} gguf_entry;

struct mt_gguf {
    char *file;     /* for messages */
    mt_mapping map; /* empty for a borrowed buffer */
    uint32_t version;
    size_t alignment, data_offset;
    mt_gguf_kv *kv; /* (n_kv) file order; keys and values owned */
    size_t n_kv;
    mt_gguf_kv **kv_by_key; /* (n_kv) sorted by key */
    gguf_entry *e;          /* (n_tensors) file order */
    size_t n_tensors;
    gguf_entry **by_name; /* (n_tensors) sorted by name */
};

/* A bounds-checked reader over the file. */
typedef struct cursor {
    const uint8_t *p;
    size_t size, pos;
    const char *file;
} cursor;

static mt_status need(cursor *c, size_t n, const char *what, mt_err *err) {
    if (n <= c->size - c->pos) return MT_OK;
    return mt_err_set(err, MT_ERR_FORMAT, "%s: truncated: %.300s at byte %zu needs %zu bytes, the file has %zu",
                      c->file, what, c->pos, n, c->size);
}

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static mt_status rd(cursor *c, size_t n, uint64_t *out, const char *what, mt_err *err) {
    mt_status s = need(c, n, what, err);
    if (s) return s;
    *out = load_le(c->p + c->pos, n);
    c->pos += n;
    return MT_OK;
}

static mt_status rd_u32(cursor *c, uint32_t *out, const char *what, mt_err *err) {
    uint64_t v;
    mt_status s = rd(c, 4, &v, what, err);
    *out = (uint32_t)v;
    return s;
}

/* A GGUF string: checks its length against limit (0: none but the file) and the bytes left, and with no_nul that
 * it holds no NUL. Returns a pointer into the file. */
static mt_status rd_str(cursor *c, const char *what, uint64_t limit, bool no_nul, const uint8_t **s, uint64_t *len,
                        mt_err *err) {
    mt_status st = rd(c, 8, len, what, err);
    if (st) return st;
    if (limit && *len > limit)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %.300s is %llu bytes long, over the limit of %llu", c->file, what,
                          (unsigned long long)*len, (unsigned long long)limit);
    if (*len > c->size - c->pos)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: %.300s of %llu bytes at byte %zu runs past the end of the file (%zu bytes)", c->file,
                          what, (unsigned long long)*len, c->pos, c->size);
    *s = c->p + c->pos;
    if (no_nul && memchr(*s, 0, (size_t)*len))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %.300s at byte %zu holds a NUL byte", c->file, what, c->pos);
    c->pos += (size_t)*len;
    return MT_OK;
}

/* NUL-terminated copy of len bytes (len <= the file size, so len + 1 cannot overflow). */
static char *copy_str(const uint8_t *s, uint64_t len) {
    char *d = mt_malloc((size_t)len + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)len);
    d[len] = 0;
    return d;
}

static mt_status nomem(const char *file, mt_err *err) {
    return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", file);
}

static void store_scalar(mt_gguf_kv *kv, mt_gguf_type t, uint64_t v) {
    switch (t) {
    case MT_GGUF_U8: kv->v.u8 = (uint8_t)v; break;
    case MT_GGUF_I8: kv->v.i8 = (int8_t)(uint8_t)v; break;
    case MT_GGUF_U16: kv->v.u16 = (uint16_t)v; break;
    case MT_GGUF_I16: kv->v.i16 = (int16_t)(uint16_t)v; break;
    case MT_GGUF_U32: kv->v.u32 = (uint32_t)v; break;
    case MT_GGUF_I32: kv->v.i32 = (int32_t)(uint32_t)v; break;
    case MT_GGUF_F32: {
        uint32_t u = (uint32_t)v;
        memcpy(&kv->v.f32, &u, 4);
        break;
    }
    case MT_GGUF_BOOL: kv->v.b = v != 0; break;
    case MT_GGUF_U64: kv->v.u64 = v; break;
    case MT_GGUF_I64: kv->v.i64 = (int64_t)v; break;
    case MT_GGUF_F64: memcpy(&kv->v.f64, &v, 8); break;
    default: break;
    }
}

static mt_status check_bool(const cursor *c, uint64_t v, size_t pos, const char *key, mt_err *err) {
    if (v <= 1) return MT_OK;
    return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\": bool value %llu at byte %zu is not 0 or 1", c->file, key,
                      (unsigned long long)v, pos);
}

/* Array of strings: one allocation holds the n mt_gguf_str and then every string with its NUL. */
static mt_status read_str_array(cursor *c, mt_gguf_kv *kv, mt_err *err) {
    size_t start = c->pos, total = 0;
    char what[256];
    snprintf(what, sizeof what, "key \"%.200s\": array string", kv->key);
    for (uint64_t i = 0; i < kv->n; i++) {
        const uint8_t *s;
        uint64_t len;
        mt_status st = rd_str(c, what, 0, false, &s, &len, err);
        if (st) return st;
        total += (size_t)len + 1; /* the strings lie in the file: the sum stays below its size plus n */
    }
    size_t head = (size_t)kv->n * sizeof(mt_gguf_str), bytes;
    if (!mt_add_ok(head, total, &bytes)) return nomem(c->file, err);
    mt_gguf_str *a = mt_malloc(bytes ? bytes : 1);
    if (!a) return nomem(c->file, err);
    char *text = (char *)a + head;
    c->pos = start;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t len = load_le(c->p + c->pos, 8);
        memcpy(text, c->p + c->pos + 8, (size_t)len);
        text[len] = 0;
        a[i] = (mt_gguf_str){text, len};
        text += len + 1;
        c->pos += 8 + (size_t)len;
    }
    kv->arr = a;
    return MT_OK;
}

static mt_status read_array(cursor *c, mt_gguf_kv *kv, mt_err *err) {
    uint32_t elem;
    char what[256];
    snprintf(what, sizeof what, "key \"%.200s\": array header", kv->key);
    mt_status s = rd_u32(c, &elem, what, err);
    if (!s) s = rd(c, 8, &kv->n, what, err);
    if (s) return s;
    if (elem == MT_GGUF_ARRAY)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: key \"%.200s\": nested arrays are not supported", c->file,
                          kv->key);
    if (elem >= MT_GGUF_TYPE_COUNT)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\": unknown array element type %u", c->file, kv->key,
                          elem);
    kv->elem = (mt_gguf_type)elem;
    size_t esize = elem == MT_GGUF_STR ? 8 : mt_gguf_scalar_size(kv->elem);
    if (kv->n > (c->size - c->pos) / esize)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: key \"%.200s\": array of %llu %s cannot fit in the %zu bytes left at byte %zu", c->file,
                          kv->key, (unsigned long long)kv->n, mt_gguf_type_name(kv->elem), c->size - c->pos, c->pos);
    if (kv->n == 0) return MT_OK;
    if (elem == MT_GGUF_STR) return read_str_array(c, kv, err);
    /* Copied out so the values are aligned and bools are C bools; the file stores them packed. */
    size_t csize = elem == MT_GGUF_BOOL ? sizeof(bool) : esize;
    uint8_t *a = mt_malloc_array((size_t)kv->n, csize);
    if (!a) return nomem(c->file, err);
    kv->arr = a;
    for (uint64_t i = 0; i < kv->n; i++) {
        const uint8_t *p = c->p + c->pos + i * esize;
        if (elem == MT_GGUF_BOOL) {
            if ((s = check_bool(c, *p, c->pos + (size_t)i, kv->key, err))) return s;
            ((bool *)a)[i] = *p != 0;
        } else {
            mt_gguf_kv one;
            store_scalar(&one, kv->elem, load_le(p, esize));
            memcpy(a + i * csize, &one.v, csize);
        }
    }
    c->pos += (size_t)kv->n * esize;
    return MT_OK;
}

static mt_status read_kv(cursor *c, mt_gguf_kv *kv, uint64_t index, mt_err *err) {
    char what[256];
    snprintf(what, sizeof what, "key %llu", (unsigned long long)index);
    const uint8_t *ks;
    uint64_t klen;
    mt_status s = rd_str(c, what, MT_GGUF_MAX_KEY, true, &ks, &klen, err);
    if (s) return s;
    if (!(kv->key = copy_str(ks, klen))) return nomem(c->file, err);
    snprintf(what, sizeof what, "key \"%.200s\": value", kv->key);
    uint32_t type;
    if ((s = rd_u32(c, &type, what, err))) return s;
    if (type >= MT_GGUF_TYPE_COUNT)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\": unknown value type %u", c->file, kv->key, type);
    kv->type = (mt_gguf_type)type;
    if (type == MT_GGUF_ARRAY) return read_array(c, kv, err);
    if (type == MT_GGUF_STR) {
        const uint8_t *vs;
        uint64_t vlen;
        if ((s = rd_str(c, what, 0, false, &vs, &vlen, err))) return s;
        char *v = copy_str(vs, vlen);
        if (!v) return nomem(c->file, err);
        kv->v.str = (mt_gguf_str){v, vlen};
        return MT_OK;
    }
    uint64_t v;
    if ((s = rd(c, mt_gguf_scalar_size(kv->type), &v, what, err))) return s;
    if (type == MT_GGUF_BOOL && (s = check_bool(c, v, c->pos - 1, kv->key, err))) return s;
    store_scalar(kv, kv->type, v);
    return MT_OK;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(mt_gguf_kv *const *)a)->key, (*(mt_gguf_kv *const *)b)->key);
}

static mt_status index_kv(mt_gguf *g, mt_err *err) {
    g->kv_by_key = mt_malloc_array(g->n_kv ? g->n_kv : 1, sizeof *g->kv_by_key);
    if (!g->kv_by_key) return nomem(g->file, err);
    for (size_t i = 0; i < g->n_kv; i++) g->kv_by_key[i] = &g->kv[i];
    if (g->n_kv) qsort(g->kv_by_key, g->n_kv, sizeof *g->kv_by_key, cmp_kv);
    for (size_t i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv_by_key[i - 1]->key, g->kv_by_key[i]->key) == 0)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\" appears twice", g->file, g->kv_by_key[i]->key);
    const mt_gguf_kv *a = mt_gguf_find_kv(g, "general.alignment");
    g->alignment = MT_GGUF_DEFAULT_ALIGNMENT;
    if (!a) return MT_OK;
    if (a->type != MT_GGUF_U32)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"general.alignment\" is %s, it must be u32", g->file,
                          mt_gguf_type_name(a->type));
    if (a->v.u32 == 0 || (a->v.u32 & (a->v.u32 - 1)))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: general.alignment %u is not a power of two", g->file, a->v.u32);
    g->alignment = a->v.u32;
    return MT_OK;
}

/* Reads one tensor info; the data range is checked later, once the data section is known. */
static mt_status read_tensor(cursor *c, mt_gguf *g, gguf_entry *e, uint64_t index, mt_err *err) {
    char what[256];
    snprintf(what, sizeof what, "tensor %llu: name", (unsigned long long)index);
    const uint8_t *ns;
    uint64_t nlen;
    mt_status s = rd_str(c, what, MT_GGUF_MAX_NAME, true, &ns, &nlen, err);
    if (s) return s;
    mt_gguf_tensor *t = &e->t;
    if (!(t->name = copy_str(ns, nlen))) return nomem(c->file, err);
    const char *name = t->name;
    snprintf(what, sizeof what, "tensor \"%.200s\": info", name);
    uint32_t ndim;
    if ((s = rd_u32(c, &ndim, what, err))) return s;
    if (ndim == 0 || ndim > MT_GGUF_MAX_DIMS)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": %u dims, GGUF allows 1 to %d", c->file, name,
                          ndim, MT_GGUF_MAX_DIMS);
    t->ndim = (int)ndim;
    int64_t count = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        uint64_t ne;
        if ((s = rd(c, 8, &ne, what, err))) return s;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": dim ne[%u] = %llu is %s", c->file, name, i,
                              (unsigned long long)ne, ne ? "over 2^63-1" : "0");
        t->shape[ndim - 1 - i] = (int64_t)ne;
        if (!mt_mul_i64_ok(count, (int64_t)ne, &count))
            return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": element count overflows", c->file, name);
    }
    if ((s = rd_u32(c, &t->ggml_type, what, err))) return s;
    const mt_gguf_ggml_info *ti = mt_gguf_ggml_info_of(t->ggml_type);
    if (!ti)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%.200s\": unknown ggml type id %u", c->file, name,
                          t->ggml_type);
    t->dtype = ti->dtype;
    int64_t row = t->shape[ndim - 1];
    if (row % ti->block_elems)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: tensor \"%.200s\": a row of %lld elements is not a whole number of %s blocks of %d",
                          c->file, name, (long long)row, ti->name, ti->block_elems);
    size_t nbytes;
    if (!mt_mul_ok((size_t)(count / ti->block_elems), ti->block_bytes, &nbytes))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": byte size overflows", c->file, name);
    t->nbytes = nbytes;
    if ((s = rd(c, 8, &t->offset, what, err))) return s;
    if (t->offset % g->alignment)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: tensor \"%.200s\": offset %llu is not a multiple of the alignment %zu", c->file, name,
                          (unsigned long long)t->offset, g->alignment);
    return MT_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(gguf_entry *const *)a)->t.name, (*(gguf_entry *const *)b)->t.name);
}

static int cmp_offset(const void *a, const void *b) {
    const gguf_entry *x = *(gguf_entry *const *)a, *y = *(gguf_entry *const *)b;
    if (x->t.offset != y->t.offset) return x->t.offset < y->t.offset ? -1 : 1;
    return 0;
}

/* Places each tensor in the data section; rejects ranges past its end, overlaps and duplicate names. */
static mt_status check_layout(mt_gguf *g, const uint8_t *data, size_t data_size, mt_err *err) {
    size_t n = g->n_tensors;
    g->by_name = mt_malloc_array(n ? n : 1, sizeof *g->by_name);
    if (!g->by_name) return nomem(g->file, err);
    for (size_t i = 0; i < n; i++) {
        gguf_entry *e = &g->e[i];
        if (e->t.offset > data_size || e->t.nbytes > data_size - e->t.offset)
            return mt_err_set(
                err, MT_ERR_FORMAT,
                "%s: tensor \"%.200s\": bytes [%llu, +%zu) run past the end of the data section (%zu bytes)", g->file,
                e->t.name, (unsigned long long)e->t.offset, e->t.nbytes, data_size);
        g->by_name[i] = e;
    }
    /* by_name is first sorted by offset for the overlap check, then by name for lookup. */
    if (n) qsort(g->by_name, n, sizeof *g->by_name, cmp_offset);
    for (size_t i = 1; i < n; i++) {
        const gguf_entry *a = g->by_name[i - 1], *b = g->by_name[i];
        if (b->t.offset < a->t.offset + a->t.nbytes)
            return mt_err_set(err, MT_ERR_FORMAT,
                              "%s: tensor \"%.200s\": bytes at offset %llu overlap tensor \"%.200s\"", g->file,
                              b->t.name, (unsigned long long)b->t.offset, a->t.name);
    }
    if (n) qsort(g->by_name, n, sizeof *g->by_name, cmp_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(g->by_name[i - 1]->t.name, g->by_name[i]->t.name) == 0)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\" appears twice", g->file,
                              g->by_name[i]->t.name);
    for (size_t i = 0; i < n; i++) {
        gguf_entry *e = &g->e[i];
        e->t.data = data + e->t.offset;
        const mt_gguf_ggml_info *ti = mt_gguf_ggml_info_of(e->t.ggml_type);
        size_t align = ti->block_elems == 1 ? ti->block_bytes : 2; /* blocks start with or hold f16 scales */
        /* Unsupported tensors are never handed out, so they stay in the file, however they sit. */
        if (e->t.dtype == MT_GGUF_UNSUPPORTED || (uintptr_t)e->t.data % align == 0) continue;
        e->copy = mt_malloc_aligned(e->t.nbytes);
        if (!e->copy)
            return mt_err_set(err, MT_ERR_NOMEM, "%s: tensor \"%.200s\": out of memory copying %zu misaligned bytes",
                              g->file, e->t.name, e->t.nbytes);
        memcpy(e->copy, e->t.data, e->t.nbytes);
        e->t.data = e->copy;
    }
    return MT_OK;
}

static mt_status parse(mt_gguf *g, const uint8_t *buf, size_t size, mt_err *err) {
    cursor c = {buf, size, 0, g->file};
    if (size < 4 || memcmp(buf, "GGUF", 4) != 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: not a GGUF file (it does not start with \"GGUF\")", g->file);
    c.pos = 4;
    mt_status s = rd_u32(&c, &g->version, "header version", err);
    if (s) return s;
    uint32_t swapped = __builtin_bswap32(g->version);
    if (swapped == 2 || swapped == 3)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: big-endian GGUF (version %u byte-swapped) is not supported",
                          g->file, swapped);
    if (g->version != 2 && g->version != 3)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)", g->file,
                          g->version);
    uint64_t n_tensors, n_kv;
    if ((s = rd(&c, 8, &n_tensors, "header tensor count", err)) || (s = rd(&c, 8, &n_kv, "header key count", err)))
        return s;
    /* The smallest key takes 13 bytes (length, type, a u8) and the smallest tensor info 32 (one dim). */
    size_t left = size - c.pos;
    if (n_kv > left / 13 || n_tensors > left / 32 || n_kv * 13 + n_tensors * 32 > left)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: %llu keys and %llu tensors cannot fit in the %zu bytes after the header", g->file,
                          (unsigned long long)n_kv, (unsigned long long)n_tensors, left);
    g->kv = mt_calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->e = mt_calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->e);
    if (!g->kv || !g->e) return nomem(g->file, err);
    for (; g->n_kv < n_kv; g->n_kv++)
        if ((s = read_kv(&c, &g->kv[g->n_kv], g->n_kv, err))) {
            g->n_kv++; /* what it allocated is freed by close */
            return s;
        }
    if ((s = index_kv(g, err))) return s;
    for (; g->n_tensors < n_tensors; g->n_tensors++)
        if ((s = read_tensor(&c, g, &g->e[g->n_tensors], g->n_tensors, err))) {
            g->n_tensors++;
            return s;
        }
    size_t data_offset = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if (data_offset < c.pos) data_offset = SIZE_MAX;
    g->data_offset = data_offset;
    if (n_tensors && data_offset > size)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: the data section would start at byte %zu, past the end of the file (%zu bytes)", g->file,
                          data_offset, size);
    size_t data_size = data_offset < size ? size - data_offset : 0;
    return check_layout(g, data_offset < size ? buf + data_offset : buf + size, data_size, err);
}

static mt_status open_common(const char *name, const mt_mapping *map, const uint8_t *buf, size_t size, mt_gguf **out,
                             mt_err *err) {
    mt_gguf *g = mt_calloc(1, sizeof *g);
    if (g) g->file = mt_strdup(name);
    if (!g || !g->file) {
        mt_free(g);
        if (map) mt_file_unmap((mt_mapping *)map);
        return nomem(name, err);
    }
    if (map) g->map = *map;
    mt_status s = parse(g, buf, size, err);
    if (s) {
        mt_gguf_close(g);
        return s;
    }
    *out = g;
    return MT_OK;
}

mt_status mt_gguf_open_file(const char *path, mt_gguf **out, mt_err *err) {
    mt_mapping m;
    mt_status s = mt_file_map(path, &m, err);
    if (s) return s;
    return open_common(path, &m, m.data, m.size, out, err);
}

mt_status mt_gguf_open_buffer(const void *buf, size_t size, const char *name, mt_gguf **out, mt_err *err) {
    return open_common(name, NULL, buf, size, out, err);
}

const mt_mapping *mt_gguf_mapping_of(const mt_gguf *g, const void *p, size_t n) {
    return g && mt_mapping_holds(&g->map, p, n) ? &g->map : NULL;
}

void mt_gguf_close(mt_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        mt_gguf_kv *kv = &g->kv[i];
        mt_free((char *)kv->key);
        if (kv->type == MT_GGUF_STR) mt_free((char *)kv->v.str.s);
        mt_free((void *)kv->arr);
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        mt_free((char *)g->e[i].t.name);
        mt_free(g->e[i].copy);
    }
    mt_file_unmap(&g->map);
    mt_free(g->kv);
    mt_free(g->kv_by_key);
    mt_free(g->e);
    mt_free(g->by_name);
    mt_free(g->file);
    mt_free(g);
}

uint32_t mt_gguf_version(const mt_gguf *g) { return g->version; }
size_t mt_gguf_alignment(const mt_gguf *g) { return g->alignment; }
size_t mt_gguf_data_offset(const mt_gguf *g) { return g->data_offset; }
size_t mt_gguf_kv_count(const mt_gguf *g) { return g ? g->n_kv : 0; }
const mt_gguf_kv *mt_gguf_kv_at(const mt_gguf *g, size_t i) { return g && i < g->n_kv ? &g->kv[i] : NULL; }
size_t mt_gguf_tensor_count(const mt_gguf *g) { return g ? g->n_tensors : 0; }
const mt_gguf_tensor *mt_gguf_tensor_at(const mt_gguf *g, size_t i) {
    return g && i < g->n_tensors ? &g->e[i].t : NULL;
}

static int cmp_kv_key(const void *key, const void *elem) { return strcmp(key, (*(mt_gguf_kv *const *)elem)->key); }

const mt_gguf_kv *mt_gguf_find_kv(const mt_gguf *g, const char *key) {
    if (!g || !key || !g->kv_by_key) return NULL;
    mt_gguf_kv *const *kv = bsearch(key, g->kv_by_key, g->n_kv, sizeof *g->kv_by_key, cmp_kv_key);
    return kv ? *kv : NULL;
}

static int cmp_tensor_key(const void *key, const void *elem) {
    return strcmp(key, (*(gguf_entry *const *)elem)->t.name);
}

const mt_gguf_tensor *mt_gguf_find_tensor(const mt_gguf *g, const char *name) {
    if (!g || !name || !g->by_name) return NULL;
    gguf_entry *const *e = bsearch(name, g->by_name, g->n_tensors, sizeof *g->by_name, cmp_tensor_key);
    return e ? &(*e)->t : NULL;
}

mt_status mt_gguf_get_tensor(const mt_gguf *g, const char *name, const mt_gguf_tensor **out, mt_err *err) {
    const mt_gguf_tensor *t = mt_gguf_find_tensor(g, name);
    if (!t) return mt_err_set(err, MT_ERR_FORMAT, "%s: no tensor \"%.200s\"", g->file, name);
    if (t->dtype == MT_GGUF_UNSUPPORTED)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%.200s\": ggml type %s is not supported", g->file,
                          t->name, mt_gguf_ggml_type_name(t->ggml_type));
    *out = t;
    return MT_OK;
}

static mt_status find_typed(const mt_gguf *g, const char *key, mt_gguf_type type, mt_gguf_type elem,
                            const mt_gguf_kv **out, mt_err *err) {
    const mt_gguf_kv *kv = mt_gguf_find_kv(g, key);
    if (!kv) return mt_err_set(err, MT_ERR_FORMAT, "%s: no key \"%.200s\"", g->file, key);
    if (kv->type != type || (type == MT_GGUF_ARRAY && kv->elem != elem)) {
        bool want_arr = type == MT_GGUF_ARRAY, is_arr = kv->type == MT_GGUF_ARRAY;
        return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\" is %s%s, not %s%s", g->file, key,
                          is_arr ? "an array of " : "", mt_gguf_type_name(is_arr ? kv->elem : kv->type),
                          want_arr ? "an array of " : "", mt_gguf_type_name(want_arr ? elem : type));
    }
    *out = kv;
    return MT_OK;
}

mt_status mt_gguf_get(const mt_gguf *g, const char *key, mt_gguf_type type, void *out, mt_err *err) {
    if ((unsigned)type >= MT_GGUF_TYPE_COUNT || type == MT_GGUF_ARRAY)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: key \"%.200s\": mt_gguf_get of type %s", g->file, key,
                          mt_gguf_type_name(type));
    const mt_gguf_kv *kv;
    mt_status s = find_typed(g, key, type, type, &kv, err);
    if (s) return s;
    size_t n = type == MT_GGUF_STR    ? sizeof(mt_gguf_str)
               : type == MT_GGUF_BOOL ? sizeof(bool)
                                      : mt_gguf_scalar_size(type);
    memcpy(out, &kv->v, n);
    return MT_OK;
}

mt_status mt_gguf_get_array(const mt_gguf *g, const char *key, mt_gguf_type elem, const void **data, uint64_t *n,
                            mt_err *err) {
    const mt_gguf_kv *kv;
    mt_status s = find_typed(g, key, MT_GGUF_ARRAY, elem, &kv, err);
    if (s) return s;
    *data = kv->arr;
    *n = kv->n;
    return MT_OK;
}

mt_status mt_gguf_get_int(const mt_gguf *g, const char *key, int64_t *out, mt_err *err) {
    const mt_gguf_kv *kv = mt_gguf_find_kv(g, key);
    if (!kv) return mt_err_set(err, MT_ERR_FORMAT, "%s: no key \"%.200s\"", g->file, key);
    switch (kv->type) {
    case MT_GGUF_U8: *out = kv->v.u8; return MT_OK;
    case MT_GGUF_I8: *out = kv->v.i8; return MT_OK;
    case MT_GGUF_U16: *out = kv->v.u16; return MT_OK;
    case MT_GGUF_I16: *out = kv->v.i16; return MT_OK;
    case MT_GGUF_U32: *out = kv->v.u32; return MT_OK;
    case MT_GGUF_I32: *out = kv->v.i32; return MT_OK;
    case MT_GGUF_I64: *out = kv->v.i64; return MT_OK;
    case MT_GGUF_U64:
        if (kv->v.u64 > (uint64_t)INT64_MAX)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\": %llu is over 2^63-1", g->file, key,
                              (unsigned long long)kv->v.u64);
        *out = (int64_t)kv->v.u64;
        return MT_OK;
    default:
        return mt_err_set(err, MT_ERR_FORMAT, "%s: key \"%.200s\" is %s, not an integer", g->file, key,
                          mt_gguf_type_name(kv->type));
    }
}
