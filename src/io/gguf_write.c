/* io/gguf_write: build a GGUF v3 file (layout in gguf.h), streaming the tensor data.
 *
 * Keys are serialized as they are added, into one byte buffer; tensors are kept as descriptions and their offsets
 * assigned at write time: each starts at the next multiple of the alignment, and the padding after the last one
 * makes the file a multiple of it too, as ggml's writer does.
 */
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "io/gguf_int.h"
#include "io/io_int.h"

typedef struct w_tensor {
    char *name;
    uint32_t ggml_type;
    int ndim;
    int64_t shape[MT_GGUF_MAX_DIMS]; /* mitten order */
    size_t nbytes;
    const void *data; /* borrowed; NULL when fill gives the bytes */
    mt_gguf_fill_fn fill;
    void *user;
} w_tensor;

struct mt_gguf_writer {
    mt_strbuf kv; /* the serialized key/values */
    char **keys;  /* (n_kv) owned, for the duplicate check */
    size_t n_kv, cap_kv;
    w_tensor *t; /* (n_t) in the order added */
    size_t n_t, cap_t;
    uint32_t alignment;
};

struct mt_gguf_sink {
    mt_outfile *f;
    const char *name;
    size_t want, got;
};

static void put_le(mt_strbuf *b, uint64_t v, size_t n) {
    char bytes[8];
    for (size_t i = 0; i < n; i++) bytes[i] = (char)(v >> (8 * i));
    mt_strbuf_append(b, bytes, n);
}

static void put_str(mt_strbuf *b, const char *s, size_t len) {
    put_le(b, len, 8);
    if (len) mt_strbuf_append(b, s, len);
}

/* A value of a scalar type in the file's bytes. */
static uint64_t scalar_bits(mt_gguf_type t, const void *v) {
    uint64_t u = 0;
    if (t == MT_GGUF_BOOL) return *(const bool *)v ? 1 : 0;
    memcpy(&u, v, mt_gguf_scalar_size(t)); /* little-endian host: the low bytes */
    return u;
}

mt_status mt_gguf_writer_new(mt_gguf_writer **out, mt_err *err) {
    mt_gguf_writer *w = mt_calloc(1, sizeof *w);
    if (!w) return mt_err_set(err, MT_ERR_NOMEM, "gguf writer: out of memory");
    w->alignment = MT_GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return MT_OK;
}

void mt_gguf_writer_free(mt_gguf_writer *w) {
    if (!w) return;
    mt_strbuf_free(&w->kv);
    for (size_t i = 0; i < w->n_kv; i++) mt_free(w->keys[i]);
    for (size_t i = 0; i < w->n_t; i++) mt_free(w->t[i].name);
    mt_free(w->keys);
    mt_free(w->t);
    mt_free(w);
}

/* Checks key and appends it with its value type; the caller appends the value. */
static mt_status begin_kv(mt_gguf_writer *w, const char *key, mt_gguf_type type, mt_err *err) {
    if (!key || !key[0] || strlen(key) > MT_GGUF_MAX_KEY)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: key \"%.200s\" is empty or over %d bytes",
                          key ? key : "(null)", MT_GGUF_MAX_KEY);
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: key \"%.200s\" added twice", key);
    char *k = mt_strdup(key);
    if (!k || !mt_grow((void **)&w->keys, &w->cap_kv, w->n_kv + 1, sizeof *w->keys)) {
        mt_free(k);
        return mt_err_set(err, MT_ERR_NOMEM, "gguf writer: key \"%.200s\": out of memory", key);
    }
    w->keys[w->n_kv++] = k;
    put_str(&w->kv, key, strlen(key));
    put_le(&w->kv, type, 4);
    return MT_OK;
}

static mt_status end_kv(mt_gguf_writer *w, const char *key, mt_err *err) {
    if (w->kv.oom) return mt_err_set(err, MT_ERR_NOMEM, "gguf writer: key \"%.200s\": out of memory", key);
    return MT_OK;
}

static bool is_scalar(mt_gguf_type t) {
    return (unsigned)t < MT_GGUF_TYPE_COUNT && t != MT_GGUF_STR && t != MT_GGUF_ARRAY;
}

mt_status mt_gguf_writer_add(mt_gguf_writer *w, const char *key, mt_gguf_type type, const void *value, mt_err *err) {
    if (!is_scalar(type) || !value)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: key \"%.200s\": %s is not a scalar type",
                          key ? key : "(null)", mt_gguf_type_name(type));
    bool is_align = key && strcmp(key, "general.alignment") == 0;
    if (is_align) {
        uint32_t a = type == MT_GGUF_U32 ? *(const uint32_t *)value : 0;
        if (type != MT_GGUF_U32 || a == 0 || (a & (a - 1)))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: general.alignment must be a u32 power of two");
    }
    mt_status s = begin_kv(w, key, type, err);
    if (s) return s;
    if (is_align) w->alignment = *(const uint32_t *)value;
    put_le(&w->kv, scalar_bits(type, value), mt_gguf_scalar_size(type));
    return end_kv(w, key, err);
}

static mt_status not_alignment(const char *key, mt_err *err) {
    if (key && strcmp(key, "general.alignment") == 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: general.alignment must be a u32 power of two");
    return MT_OK;
}

mt_status mt_gguf_writer_add_str(mt_gguf_writer *w, const char *key, const char *s, size_t len, mt_err *err) {
    if (!s && len) return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: key \"%.200s\": no string", key);
    mt_status st = not_alignment(key, err);
    if (!st) st = begin_kv(w, key, MT_GGUF_STR, err);
    if (st) return st;
    put_str(&w->kv, s, len);
    return end_kv(w, key, err);
}

mt_status mt_gguf_writer_add_array(mt_gguf_writer *w, const char *key, mt_gguf_type elem, const void *data, size_t n,
                                   mt_err *err) {
    if (!is_scalar(elem) || (!data && n))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: key \"%.200s\": bad array of %s", key ? key : "(null)",
                          mt_gguf_type_name(elem));
    mt_status s = not_alignment(key, err);
    if (!s) s = begin_kv(w, key, MT_GGUF_ARRAY, err);
    if (s) return s;
    put_le(&w->kv, elem, 4);
    put_le(&w->kv, n, 8);
    size_t esize = mt_gguf_scalar_size(elem), csize = elem == MT_GGUF_BOOL ? sizeof(bool) : esize;
    for (size_t i = 0; i < n && !w->kv.oom; i++)
        put_le(&w->kv, scalar_bits(elem, (const char *)data + i * csize), esize);
    return end_kv(w, key, err);
}

mt_status mt_gguf_writer_add_str_array(mt_gguf_writer *w, const char *key, const char *const *strs, size_t n,
                                       mt_err *err) {
    for (size_t i = 0; i < n; i++)
        if (!strs || !strs[i])
            return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: key \"%.200s\": string %zu is NULL",
                              key ? key : "(null)", i);
    mt_status s = not_alignment(key, err);
    if (!s) s = begin_kv(w, key, MT_GGUF_ARRAY, err);
    if (s) return s;
    put_le(&w->kv, MT_GGUF_STR, 4);
    put_le(&w->kv, n, 8);
    for (size_t i = 0; i < n && !w->kv.oom; i++) put_str(&w->kv, strs[i], strlen(strs[i]));
    return end_kv(w, key, err);
}

static mt_status add_tensor(mt_gguf_writer *w, const char *name, mt_dtype dtype, int ndim, const int64_t *shape,
                            w_tensor *t, mt_err *err) {
    if (!name || !name[0] || strlen(name) > MT_GGUF_MAX_NAME_WRITE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor name \"%.200s\" is empty or over %d bytes",
                          name ? name : "(null)", MT_GGUF_MAX_NAME_WRITE);
    if ((unsigned)dtype >= MT_DTYPE_COUNT || !mt_gguf_ggml_type_of(dtype, &t->ggml_type))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor \"%s\": dtype %s has no GGUF type", name,
                          (unsigned)dtype < MT_DTYPE_COUNT ? mt_dtype_name(dtype) : "?");
    if (ndim < 1 || ndim > MT_GGUF_MAX_DIMS || !shape)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor \"%s\": %d dims, GGUF allows 1 to %d", name,
                          ndim, MT_GGUF_MAX_DIMS);
    int64_t count = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0 || !mt_mul_i64_ok(count, shape[i], &count))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor \"%s\": bad dimension %lld", name,
                              (long long)shape[i]);
    const mt_gguf_ggml_info *ti = mt_gguf_ggml_info_of(t->ggml_type);
    if (shape[ndim - 1] % ti->block_elems)
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "gguf writer: tensor \"%s\": a row of %lld elements is not a whole number of %s blocks of %d",
                          name, (long long)shape[ndim - 1], ti->name, ti->block_elems);
    if (!mt_mul_ok((size_t)(count / ti->block_elems), ti->block_bytes, &t->nbytes))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor \"%s\": byte size overflows", name);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    if (!mt_grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof *w->t) || !(t->name = mt_strdup(name)))
        return mt_err_set(err, MT_ERR_NOMEM, "gguf writer: tensor \"%s\": out of memory", name);
    w->t[w->n_t++] = *t;
    return MT_OK;
}

mt_status mt_gguf_writer_add_tensor(mt_gguf_writer *w, const char *name, mt_dtype dtype, int ndim, const int64_t *shape,
                                    const void *data, size_t nbytes, mt_err *err) {
    w_tensor t = {.data = data};
    mt_status s = add_tensor(w, name, dtype, ndim, shape, &t, err);
    if (s) return s;
    if (nbytes != t.nbytes || !data) {
        mt_free(w->t[--w->n_t].name);
        return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor \"%s\": %zu bytes%s, but its shape needs %zu",
                          name, nbytes, data ? "" : " and no data", t.nbytes);
    }
    return MT_OK;
}

mt_status mt_gguf_writer_add_tensor_fill(mt_gguf_writer *w, const char *name, mt_dtype dtype, int ndim,
                                         const int64_t *shape, mt_gguf_fill_fn fill, void *user, mt_err *err) {
    if (!fill) return mt_err_set(err, MT_ERR_INVALID_ARG, "gguf writer: tensor \"%.200s\": no fill function", name);
    w_tensor t = {.fill = fill, .user = user};
    return add_tensor(w, name, dtype, ndim, shape, &t, err);
}

mt_status mt_gguf_sink_write(mt_gguf_sink *sink, const void *data, size_t n, mt_err *err) {
    if (n > sink->want - sink->got)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\": fill wrote more than its %zu bytes", sink->f->path,
                          sink->name, sink->want);
    sink->got += n;
    return n ? mt_outfile_write(sink->f, data, n, err) : MT_OK;
}

static mt_status write_zeros(mt_outfile *f, size_t n, mt_err *err) {
    static const char zeros[4096];
    while (n > 0) {
        size_t k = MT_MIN(n, sizeof zeros);
        mt_status s = mt_outfile_write(f, zeros, k, err);
        if (s) return s;
        n -= k;
    }
    return MT_OK;
}

static size_t pad_of(size_t pos, size_t align) { return (align - pos % align) % align; }

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const w_tensor *const *)a)->name, (*(const w_tensor *const *)b)->name);
}

static mt_status check_names(const mt_gguf_writer *w, const char *path, mt_err *err) {
    if (w->n_t < 2) return MT_OK;
    const w_tensor **by = mt_malloc_array(w->n_t, sizeof *by);
    if (!by) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < w->n_t; i++) by[i] = &w->t[i];
    qsort(by, w->n_t, sizeof *by, cmp_name);
    mt_status s = MT_OK;
    for (size_t i = 1; i < w->n_t && !s; i++)
        if (strcmp(by[i - 1]->name, by[i]->name) == 0)
            s = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%s\" added twice", path, by[i]->name);
    mt_free(by);
    return s;
}

/* The header: magic, version, counts, the keys, the tensor infos with their offsets, padding. */
static mt_status build_header(const mt_gguf_writer *w, const char *path, mt_strbuf *h, mt_err *err) {
    mt_strbuf_append(h, "GGUF", 4);
    put_le(h, 3, 4);
    put_le(h, w->n_t, 8);
    put_le(h, w->n_kv, 8);
    if (w->kv.len) mt_strbuf_append(h, w->kv.s, w->kv.len);
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const w_tensor *t = &w->t[i];
        put_str(h, t->name, strlen(t->name));
        put_le(h, (uint64_t)t->ndim, 4);
        for (int d = t->ndim - 1; d >= 0; d--) put_le(h, (uint64_t)t->shape[d], 8);
        put_le(h, t->ggml_type, 4);
        put_le(h, off, 8);
        if (!mt_add_ok(off, t->nbytes, &off) || !mt_add_ok(off, pad_of(off, w->alignment), &off))
            return mt_err_set(err, MT_ERR_LIMIT, "%s: the tensors' bytes overflow", path);
    }
    size_t pad = pad_of(h->len, w->alignment);
    for (size_t i = 0; i < pad && !h->oom; i++) mt_strbuf_append(h, "", 1);
    if (h->oom || w->kv.oom) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    return MT_OK;
}

static mt_status write_tensor(const w_tensor *t, mt_outfile *f, size_t align, mt_err *err) {
    mt_status s;
    if (t->data) {
        s = mt_outfile_write(f, t->data, t->nbytes, err);
    } else {
        mt_gguf_sink sink = {f, t->name, t->nbytes, 0};
        s = t->fill(t->user, t->name, &sink, err);
        if (!s && sink.got != t->nbytes)
            s = mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\": fill wrote %zu of its %zu bytes", f->path, t->name,
                           sink.got, t->nbytes);
    }
    return s ? s : write_zeros(f, pad_of(t->nbytes, align), err);
}

mt_status mt_gguf_write(mt_gguf_writer *w, const char *path, bool overwrite, mt_err *err) {
    if (!overwrite && mt_file_exists(path)) return mt_err_set(err, MT_ERR_IO, "%s: exists; not overwritten", path);
    mt_status s = check_names(w, path, err);
    mt_strbuf h = {0};
    if (!s) s = build_header(w, path, &h, err);
    mt_outfile f;
    if (!s) s = mt_outfile_open(&f, path, err);
    if (s) {
        mt_strbuf_free(&h);
        return s;
    }
    s = mt_outfile_write(&f, h.s, h.len, err);
    mt_strbuf_free(&h);
    for (size_t i = 0; i < w->n_t && !s; i++) s = write_tensor(&w->t[i], &f, w->alignment, err);
    if (s) {
        mt_outfile_abort(&f);
        return s;
    }
    return overwrite ? mt_outfile_commit(&f, err) : mt_outfile_commit_new(&f, err);
}
