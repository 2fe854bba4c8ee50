/* io/safetensors: header parsing, validation and lookup (the format and the checks are drawn in safetensors.h).
 *
 * The header is untrusted: every number is checked to be an integer in [0, 2^53] before it becomes a size, every
 * product and sum is overflow-checked, and byte ranges are compared with the data area and with each other before
 * any pointer into the file is formed. Names in messages are cut at 200 bytes so the file name always fits.
 */
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "io/io_int.h"

typedef struct st_entry {
    mt_st_tensor t;
    size_t begin; /* offset in the data area */
    void *copy;   /* owned aligned copy when the in-file bytes were misaligned, else NULL */
} st_entry;

typedef struct st_file {
    char *path;     /* owned; each tensor's file points at it */
    mt_mapping map; /* empty for a borrowed buffer */
} st_file;

struct mt_safetensors {
    char *where; /* the file or directory opened, for messages */
    st_file *files;
    size_t n_files, cap_files;
    st_entry *e; /* (n) file order, then data offset */
    size_t n, cap;
    st_entry **by_name; /* (n) sorted by name; built by mt_st_index */
    char **meta;        /* (2 * n_meta) owned key, value pairs */
    size_t n_meta, cap_meta;
    size_t total_bytes;
    void *owner; /* mt_safetensors_from_tensors: what the tensors' bytes belong to, released at close */
    void (*release)(void *owner);
};

/* Element sizes in bits: F4 and F6 pack several elements per byte, so sizes are checked in bits. */
static const struct {
    const char *name;
    int bits;
    mt_dtype dtype;
} st_dtypes[] = {
    {"F32", 32, MT_F32},
    {"BF16", 16, MT_BF16},
    {"F16", 16, MT_F16},
    {"I32", 32, MT_I32},
    {"I64", 64, MT_I64},
    {"U8", 8, MT_U8},
    {"BOOL", 8, MT_ST_UNSUPPORTED},
    {"I8", 8, MT_ST_UNSUPPORTED},
    {"I16", 16, MT_ST_UNSUPPORTED},
    {"U16", 16, MT_ST_UNSUPPORTED},
    {"U32", 32, MT_ST_UNSUPPORTED},
    {"U64", 64, MT_ST_UNSUPPORTED},
    {"F64", 64, MT_ST_UNSUPPORTED},
    {"C64", 64, MT_ST_UNSUPPORTED},
    {"F8_E4M3", 8, MT_ST_UNSUPPORTED},
    {"F8_E5M2", 8, MT_ST_UNSUPPORTED},
    {"F8_E8M0", 8, MT_ST_UNSUPPORTED},
    {"F4", 4, MT_ST_UNSUPPORTED},
    {"F6_E2M3", 6, MT_ST_UNSUPPORTED},
    {"F6_E3M2", 6, MT_ST_UNSUPPORTED},
};

/* Integers above 2^53 cannot come through a JSON double exactly; no real tensor comes near it. */
#define ST_MAX_INT ((int64_t)1 << 53)

mt_status mt_st_create(const char *where, mt_safetensors **out, mt_err *err) {
    mt_safetensors *st = mt_calloc(1, sizeof *st);
    if (st) st->where = mt_strdup(where);
    if (!st || !st->where) {
        mt_free(st);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", where);
    }
    *out = st;
    return MT_OK;
}

/* Reads one integer of a shape or data_offsets array. */
static mt_status get_index(const cJSON *v, const char *file, const char *name, const char *field, int64_t *out,
                           mt_err *err) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": %s must hold integers", file, name, field);
    double d = v->valuedouble;
    if (d < 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": %s has a negative value (%.17g)", file, name,
                          field, d);
    if (d > (double)ST_MAX_INT)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: tensor \"%.200s\": %s value %.17g is too large", file, name, field,
                          d);
    *out = (int64_t)d;
    return MT_OK;
}

static mt_status parse_meta(mt_safetensors *st, const cJSON *m, const char *file, mt_err *err) {
    if (cJSON_IsNull(m)) return MT_OK;
    if (!cJSON_IsObject(m)) return mt_err_set(err, MT_ERR_FORMAT, "%s: __metadata__ must be an object", file);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, m) {
        if (!cJSON_IsString(kv))
            return mt_err_set(err, MT_ERR_FORMAT, "%s: __metadata__ \"%.200s\" must be a string", file, kv->string);
        if (!mt_grow((void **)&st->meta, &st->cap_meta, 2 * (st->n_meta + 1), sizeof *st->meta))
            return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", file);
        char *k = mt_strdup(kv->string), *v = mt_strdup(kv->valuestring);
        if (!k || !v) {
            mt_free(k);
            mt_free(v);
            return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", file);
        }
        st->meta[2 * st->n_meta] = k;
        st->meta[2 * st->n_meta + 1] = v;
        st->n_meta++;
    }
    return MT_OK;
}

/* Validates one header entry and appends it. data is the start of the data area, data_size its length. */
static mt_status parse_tensor(mt_safetensors *st, const cJSON *j, const char *file, const uint8_t *data,
                              size_t data_size, mt_err *err) {
    const char *name = j->string;
    if (!cJSON_IsObject(j))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": entry must be an object", file, name);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    if (!cJSON_IsString(jd))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": \"dtype\" must be a string", file, name);
    size_t di = 0;
    while (di < MT_ARRAY_LEN(st_dtypes) && strcmp(st_dtypes[di].name, jd->valuestring) != 0) di++;
    if (di == MT_ARRAY_LEN(st_dtypes))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%.200s\": unknown dtype \"%.40s\"", file, name,
                          jd->valuestring);

    mt_st_tensor t = {.name = NULL, .dtype = st_dtypes[di].dtype, .file = file, .st_dtype = st_dtypes[di].name};
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (!cJSON_IsArray(js))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": \"shape\" must be an array", file, name);
    int rank = cJSON_GetArraySize(js);
    if (rank > MT_ST_MAX_DIMS)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: tensor \"%.200s\": rank %d is over the limit of %d", file, name,
                          rank, MT_ST_MAX_DIMS);
    const cJSON *v;
    bool empty = false;
    cJSON_ArrayForEach(v, js) {
        mt_status s = get_index(v, file, name, "shape", &t.shape[t.ndim], err);
        if (s) return s;
        empty |= t.shape[t.ndim++] == 0;
    }
    int64_t count = 1;
    for (int i = 0; i < t.ndim && !empty; i++)
        if (!mt_mul_i64_ok(count, t.shape[i], &count))
            return mt_err_set(err, MT_ERR_LIMIT, "%s: tensor \"%.200s\": element count overflows", file, name);
    if (empty) count = 0;
    int64_t bits;
    if (!mt_mul_i64_ok(count, st_dtypes[di].bits, &bits))
        return mt_err_set(err, MT_ERR_LIMIT, "%s: tensor \"%.200s\": byte size overflows", file, name);

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": \"data_offsets\" must be [begin, end]", file,
                          name);
    int64_t begin, end;
    mt_status s = get_index(jo->child, file, name, "data_offsets", &begin, err);
    if (!s) s = get_index(jo->child->next, file, name, "data_offsets", &end, err);
    if (s) return s;
    if (begin > end)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": data_offsets begin %lld is after end %lld",
                          file, name, (long long)begin, (long long)end);
    if ((uint64_t)end > data_size)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: tensor \"%.200s\": data_offsets end %lld is past the end of the data area (%zu bytes)",
                          file, name, (long long)end, data_size);
    if (bits % 8 != 0 || bits / 8 != end - begin)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: tensor \"%.200s\": %lld bytes in data_offsets, but %s of %lld elements needs %lld%s",
                          file, name, (long long)(end - begin), st_dtypes[di].name, (long long)count,
                          (long long)(bits / 8), bits % 8 ? " and a fraction" : "");
    t.data = data + begin;
    t.nbytes = (size_t)(end - begin);

    if (!mt_grow((void **)&st->e, &st->cap, st->n + 1, sizeof *st->e))
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", file);
    t.name = mt_strdup(name);
    if (!t.name) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", file);
    st->e[st->n++] = (st_entry){.t = t, .begin = (size_t)begin, .copy = NULL};
    return MT_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->t.nbytes != y->t.nbytes) return x->t.nbytes < y->t.nbytes ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* Sorts the entries of one file [first, n) by offset, rejects overlaps, and copies misaligned ones. */
static mt_status check_layout(mt_safetensors *st, size_t first, const char *file, mt_err *err) {
    if (st->n == first) return MT_OK;
    qsort(st->e + first, st->n - first, sizeof *st->e, cmp_offset);
    const st_entry *prev = NULL; /* the non-empty entry reaching furthest so far */
    for (size_t i = first; i < st->n; i++) {
        st_entry *e = &st->e[i];
        if (e->t.nbytes == 0) continue;
        if (prev && e->begin < prev->begin + prev->t.nbytes)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": bytes [%zu, %zu) overlap tensor \"%.200s\"",
                              file, e->t.name, e->begin, e->begin + e->t.nbytes, prev->t.name);
        if (!prev || e->begin + e->t.nbytes > prev->begin + prev->t.nbytes) prev = e;
    }
    for (size_t i = first; i < st->n; i++) {
        st_entry *e = &st->e[i];
        st->total_bytes += e->t.nbytes; /* ranges are disjoint within one mapping: cannot overflow */
        if (e->t.dtype == MT_ST_UNSUPPORTED || (uintptr_t)e->t.data % mt_dtype_size(e->t.dtype) == 0) continue;
        e->copy = mt_malloc_aligned(e->t.nbytes);
        if (!e->copy)
            return mt_err_set(err, MT_ERR_NOMEM, "%s: tensor \"%.200s\": out of memory copying %zu misaligned bytes",
                              file, e->t.name, e->t.nbytes);
        memcpy(e->copy, e->t.data, e->t.nbytes);
        e->t.data = e->copy;
        mt_log(MT_LOG_DEBUG, "%s: tensor \"%s\" is misaligned in the file; copied", file, e->t.name);
    }
    return MT_OK;
}

static mt_status parse(mt_safetensors *st, const char *file, const uint8_t *buf, size_t size, mt_err *err) {
    if (size < 8)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %zu bytes is too short for the 8-byte header length", file, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > MT_ST_MAX_HEADER)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: header length %llu is over the limit of %zu bytes", file,
                          (unsigned long long)hlen, MT_ST_MAX_HEADER);
    if (hlen > size - 8)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: header length %llu is past the end of the file (%zu bytes)", file,
                          (unsigned long long)hlen, size);
    char what[MT_ERR_MSG_MAX];
    snprintf(what, sizeof what, "%s: header", file);
    cJSON *root = NULL;
    mt_status s = mt_json_parse((const char *)buf + 8, (size_t)hlen, what, &root, err);
    if (s) return s;
    if (!cJSON_IsObject(root)) s = mt_err_set(err, MT_ERR_FORMAT, "%s: header must be a JSON object", file);
    size_t first = st->n;
    const cJSON *j;
    const uint8_t *data = buf + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    if (!s) {
        cJSON_ArrayForEach(j, root) {
            s = strcmp(j->string, "__metadata__") == 0 ? parse_meta(st, j, file, err)
                                                       : parse_tensor(st, j, file, data, data_size, err);
            if (s) break;
        }
    }
    cJSON_Delete(root);
    return s ? s : check_layout(st, first, file, err);
}

/* Registers a file so that close releases it whatever happens next; returns its stable path copy. */
static mt_status add_slot(mt_safetensors *st, const char *path, const mt_mapping *map, const char **file,
                          mt_err *err) {
    char *p = mt_strdup(path);
    if (!p || !mt_grow((void **)&st->files, &st->cap_files, st->n_files + 1, sizeof *st->files)) {
        mt_free(p);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    st->files[st->n_files++] = (st_file){p, *map};
    *file = p;
    return MT_OK;
}

mt_status mt_st_add_file(mt_safetensors *st, const char *path, mt_err *err) {
    mt_mapping m;
    mt_status s = mt_file_map(path, &m, err);
    if (s) return s;
    const char *file;
    s = add_slot(st, path, &m, &file, err);
    if (s) {
        mt_file_unmap(&m);
        return s;
    }
    return parse(st, file, m.data, m.size, err);
}

mt_status mt_st_add_buffer(mt_safetensors *st, const char *name, const uint8_t *buf, size_t size, mt_err *err) {
    const char *file;
    mt_mapping none = {0};
    mt_status s = add_slot(st, name, &none, &file, err);
    return s ? s : parse(st, file, buf, size, err);
}

static int cmp_name(const void *a, const void *b) {
    const st_entry *const *x = a, *const *y = b;
    return strcmp((*x)->t.name, (*y)->t.name);
}

mt_status mt_st_index(mt_safetensors *st, mt_err *err) {
    mt_free(st->by_name);
    st->by_name = mt_malloc_array(st->n, sizeof *st->by_name);
    if (!st->by_name) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", st->where);
    for (size_t i = 0; i < st->n; i++) st->by_name[i] = &st->e[i];
    if (st->n) qsort(st->by_name, st->n, sizeof *st->by_name, cmp_name);
    for (size_t i = 1; i < st->n; i++) {
        const mt_st_tensor *a = &st->by_name[i - 1]->t, *b = &st->by_name[i]->t;
        if (strcmp(a->name, b->name) == 0)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%.200s\": defined twice (also in %s)", b->file,
                              b->name, a->file);
    }
    return MT_OK;
}

mt_status mt_safetensors_open_file(const char *path, mt_safetensors **out, mt_err *err) {
    mt_safetensors *st = NULL;
    mt_status s = mt_st_create(path, &st, err);
    if (!s) s = mt_st_add_file(st, path, err);
    if (!s) s = mt_st_index(st, err);
    if (s) {
        mt_safetensors_close(st);
        return s;
    }
    *out = st;
    return MT_OK;
}

mt_status mt_safetensors_open_buffer(const void *buf, size_t size, const char *name, mt_safetensors **out,
                                     mt_err *err) {
    mt_safetensors *st = NULL;
    mt_status s = mt_st_create(name, &st, err);
    if (!s) s = mt_st_add_buffer(st, name, buf, size, err);
    if (!s) s = mt_st_index(st, err);
    if (s) {
        mt_safetensors_close(st);
        return s;
    }
    *out = st;
    return MT_OK;
}

static int cmp_key(const void *key, const void *elem) {
    const st_entry *const *e = elem;
    return strcmp(key, (*e)->t.name);
}

const mt_st_tensor *mt_safetensors_find(const mt_safetensors *st, const char *name) {
    if (!st || !name || !st->by_name) return NULL;
    st_entry *const *e = bsearch(name, st->by_name, st->n, sizeof *st->by_name, cmp_key);
    return e ? &(*e)->t : NULL;
}

mt_status mt_safetensors_get(const mt_safetensors *st, const char *name, const mt_st_tensor **out, mt_err *err) {
    const mt_st_tensor *t = mt_safetensors_find(st, name);
    if (!t) return mt_err_set(err, MT_ERR_FORMAT, "%s: no tensor \"%.200s\"", st ? st->where : "?", name);
    if (t->dtype == MT_ST_UNSUPPORTED)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%.200s\": dtype %s is not supported", t->file,
                          t->name, t->st_dtype);
    *out = t;
    return MT_OK;
}

size_t mt_safetensors_count(const mt_safetensors *st) { return st ? st->n : 0; }

const mt_st_tensor *mt_safetensors_at(const mt_safetensors *st, size_t i) {
    return st && i < st->n ? &st->e[i].t : NULL;
}

size_t mt_safetensors_total_bytes(const mt_safetensors *st) { return st ? st->total_bytes : 0; }

const char *mt_safetensors_meta(const mt_safetensors *st, const char *key) {
    for (size_t i = 0; st && i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

const mt_mapping *mt_safetensors_mapping_of(const mt_safetensors *st, const void *p, size_t n) {
    for (size_t i = 0; st && i < st->n_files; i++)
        if (mt_mapping_holds(&st->files[i].map, p, n)) return &st->files[i].map;
    return NULL;
}

void mt_safetensors_close(mt_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) {
        mt_free((char *)st->e[i].t.name);
        mt_free(st->e[i].copy);
    }
    for (size_t i = 0; i < st->n_files; i++) {
        mt_file_unmap(&st->files[i].map);
        mt_free(st->files[i].path);
    }
    for (size_t i = 0; i < 2 * st->n_meta; i++) mt_free(st->meta[i]);
    mt_free(st->e);
    mt_free(st->by_name);
    mt_free(st->files);
    mt_free(st->meta);
    mt_free(st->where);
    if (st->release) st->release(st->owner);
    mt_free(st);
}

mt_status mt_safetensors_from_tensors(const char *where, const mt_st_tensor *tensors, size_t n, void *owner,
                                      void (*release)(void *owner), mt_safetensors **out, mt_err *err) {
    mt_safetensors *st = NULL;
    mt_status s = mt_st_create(where, &st, err);
    if (s) {
        if (release) release(owner);
        return s;
    }
    st->owner = owner, st->release = release;
    if (!mt_grow((void **)&st->e, &st->cap, n, sizeof *st->e)) s = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !s; i++) {
        mt_st_tensor t = tensors[i];
        t.file = st->where;
        if (!(t.name = mt_strdup(tensors[i].name))) s = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        else st->e[st->n++] = (st_entry){.t = t};
        st->total_bytes += t.nbytes;
    }
    if (!s) s = mt_st_index(st, err);
    if (s) {
        mt_safetensors_close(st);
        return s;
    }
    *out = st;
    return MT_OK;
}
