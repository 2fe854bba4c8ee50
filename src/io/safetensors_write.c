/* io/safetensors_write: stream tensors into a .safetensors file, or a sharded model directory.
 *
 * Reference: huggingface/safetensors safetensors/src/tensor.rs (prepare / serialize_to_file) for the layout:
 * tensors sorted by element size, largest first, then by name; data offsets contiguous from 0; the JSON header
 * padded with spaces to a multiple of 8 bytes so the data area, and with that sort every tensor, is aligned.
 * huggingface_hub's save_torch_state_dict / split_torch_state_dict_into_shards for the sharded layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "io/io_int.h"
#include "io/safetensors.h"

static mt_status check_tensor(const mt_st_tensor *t, const char *path, mt_err *err) {
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor name \"%.200s\" is not allowed", path,
                          t->name ? t->name : "(null)");
    if ((unsigned)t->dtype >= MT_DTYPE_COUNT || mt_dtype_is_quant(t->dtype))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%.200s\": dtype %d is not writable as safetensors",
                          path, t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > MT_ST_MAX_DIMS)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%.200s\": rank %d", path, t->name, t->ndim);
    size_t bytes = mt_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || !mt_mul_ok(bytes, (size_t)t->shape[i], &bytes))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%.200s\": bad dimension %lld", path, t->name,
                              (long long)t->shape[i]);
    if (bytes != t->nbytes)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%.200s\": nbytes %zu, but its shape needs %zu", path,
                          t->name, t->nbytes, bytes);
    if (!t->data && t->nbytes)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%.200s\": no data", path, t->name);
    return MT_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const mt_st_tensor *const *)a)->name, (*(const mt_st_tensor *const *)b)->name);
}

static int cmp_layout(const void *a, const void *b) {
    const mt_st_tensor *x = *(const mt_st_tensor *const *)a, *y = *(const mt_st_tensor *const *)b;
    size_t sx = mt_dtype_size(x->dtype), sy = mt_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Checks every tensor and meta_kv; returns the tensors sorted by name (owned by the caller). */
static mt_status validate(const char *path, const mt_st_tensor *tensors, size_t n, const char *const *meta_kv,
                          const mt_st_tensor ***sorted, mt_err *err) {
    size_t nkv = 0;
    while (meta_kv && meta_kv[nkv]) nkv++;
    if (nkv % 2) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: metadata key \"%s\" has no value", path,
                                   meta_kv[nkv - 1]);
    if (n && !tensors) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: no tensors given", path);
    for (size_t i = 0; i < n; i++) {
        mt_status s = check_tensor(&tensors[i], path, err);
        if (s) return s;
    }
    const mt_st_tensor **v = mt_malloc_array(n, sizeof *v);
    if (!v) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) v[i] = &tensors[i];
    qsort(v, n, sizeof *v, cmp_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            mt_err_set(err, MT_ERR_INVALID_ARG, "%s: tensor \"%.200s\" given twice", path, v[i]->name);
            mt_free(v);
            return MT_ERR_INVALID_ARG;
        }
    *sorted = v;
    return MT_OK;
}

/* The JSON header for tensors in layout order v, padded with spaces to a multiple of 8. */
static mt_status build_header(const char *path, const mt_st_tensor *const *v, size_t n, const char *const *meta_kv,
                              mt_strbuf *h, mt_err *err) {
    mt_strbuf_append(h, "{", 1);
    if (meta_kv && meta_kv[0]) {
        mt_strbuf_append(h, "\"__metadata__\":{", 16);
        for (size_t i = 0; meta_kv[i]; i += 2) {
            if (i) mt_strbuf_append(h, ",", 1);
            mt_strbuf_json_string(h, meta_kv[i]);
            mt_strbuf_append(h, ":", 1);
            mt_strbuf_json_string(h, meta_kv[i + 1]);
        }
        mt_strbuf_append(h, "}", 1);
    }
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const mt_st_tensor *t = v[i];
        if (i || (meta_kv && meta_kv[0])) mt_strbuf_append(h, ",", 1);
        mt_strbuf_json_string(h, t->name);
        mt_strbuf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", mt_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) mt_strbuf_printf(h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        if (!mt_add_ok(offset, t->nbytes, &offset))
            return mt_err_set(err, MT_ERR_LIMIT, "%s: total size overflows", path);
        mt_strbuf_printf(h, "],\"data_offsets\":[%zu,%zu]}", offset - t->nbytes, offset);
    }
    mt_strbuf_append(h, "}", 1);
    while (!h->oom && h->len % 8) mt_strbuf_append(h, " ", 1);
    if (h->oom) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory building the header", path);
    return MT_OK;
}

/* Writes tensors whose validity was checked, in layout order. */
static mt_status write_file(const char *path, const mt_st_tensor *tensors, size_t n, const char *const *meta_kv,
                            mt_err *err) {
    const mt_st_tensor **v = mt_malloc_array(n, sizeof *v);
    if (!v) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) v[i] = &tensors[i];
    qsort(v, n, sizeof *v, cmp_layout);
    mt_strbuf h = {0};
    mt_status s = build_header(path, v, n, meta_kv, &h, err);
    mt_outfile f;
    if (!s) s = mt_outfile_open(&f, path, err);
    if (!s) {
        uint8_t len[8];
        for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        s = mt_outfile_write(&f, len, 8, err);
        if (!s) s = mt_outfile_write(&f, h.s, h.len, err);
        for (size_t i = 0; i < n && !s; i++) s = mt_outfile_write(&f, v[i]->data, v[i]->nbytes, err);
        s = s ? s : mt_outfile_commit(&f, err);
        mt_outfile_abort(&f);
    }
    mt_strbuf_free(&h);
    mt_free(v);
    return s;
}

mt_status mt_safetensors_write(const char *path, const mt_st_tensor *tensors, size_t n, const char *const *meta_kv,
                               mt_err *err) {
    const mt_st_tensor **sorted;
    mt_status s = validate(path, tensors, n, meta_kv, &sorted, err);
    if (s) return s;
    mt_free(sorted);
    return write_file(path, tensors, n, meta_kv, err);
}

/* The index JSON as json.dumps(indent=2, sort_keys=True) writes it; sorted[i] lives in shard shard_of[i]. */
static mt_status write_index(const char *path, const mt_st_tensor *const *sorted, const size_t *shard_of, size_t n,
                             size_t n_shards, size_t total, mt_err *err) {
    mt_strbuf b = {0};
    mt_strbuf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {", total);
    for (size_t i = 0; i < n; i++) {
        char shard[64];
        snprintf(shard, sizeof shard, "model-%05zu-of-%05zu.safetensors", shard_of[i] + 1, n_shards);
        mt_strbuf_append(&b, i ? ",\n    " : "\n    ", i ? 6 : 5);
        mt_strbuf_json_string(&b, sorted[i]->name);
        mt_strbuf_append(&b, ": ", 2);
        mt_strbuf_json_string(&b, shard);
    }
    mt_strbuf_append(&b, "\n  }\n}\n", 7);
    mt_status s = b.oom ? mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path)
                        : mt_file_write_atomic(path, b.s, b.len, err);
    mt_strbuf_free(&b);
    return s;
}

/* Removes a file of the other layout left by an earlier save, which the reader would otherwise prefer or trip on. */
static mt_status remove_stale(const char *dir, const char *name, mt_err *err) {
    char path[4096];
    mt_status s = mt_path_join(path, sizeof path, dir, name, err);
    if (!s && mt_file_exists(path) && unlink(path) != 0)
        s = mt_err_set(err, MT_ERR_IO, "%s: cannot remove the stale file", path);
    return s;
}

mt_status mt_safetensors_write_sharded(const char *model_dir, const mt_st_tensor *tensors, size_t n,
                                       size_t max_shard_bytes, const char *const *meta_kv, mt_err *err) {
    const mt_st_tensor **sorted;
    mt_status s = validate(model_dir, tensors, n, meta_kv, &sorted, err);
    if (s) return s;
    /* shard i holds tensors[first[i] .. first[i+1]); a tensor starts a new shard when it would overflow this one */
    size_t *first = mt_malloc_array(n + 1, sizeof *first);
    size_t *shard_of = mt_malloc_array(n, sizeof *shard_of);
    size_t n_shards = 0, fill = 0, total = 0;
    if (!first || !shard_of) s = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", model_dir);
    for (size_t i = 0; i < n && !s; i++) {
        if (n_shards == 0 || (fill > 0 && tensors[i].nbytes > max_shard_bytes - MT_MIN(fill, max_shard_bytes))) {
            first[n_shards++] = i;
            fill = 0;
        }
        fill += tensors[i].nbytes;
        if (!mt_add_ok(total, tensors[i].nbytes, &total))
            s = mt_err_set(err, MT_ERR_LIMIT, "%s: total size overflows", model_dir);
    }
    if (!s && n_shards == 0) first[n_shards++] = 0; /* no tensors: one empty file */
    if (!s && n_shards > MT_ST_MAX_SHARDS)
        s = mt_err_set(err, MT_ERR_LIMIT, "%s: %zu shards, over the limit of %d", model_dir, n_shards,
                       MT_ST_MAX_SHARDS);
    if (!s) first[n_shards] = n;
    char path[4096];
    for (size_t i = 0; i < n_shards && !s; i++) {
        char name[64];
        if (n_shards == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n_shards);
        s = mt_path_join(path, sizeof path, model_dir, name, err);
        if (!s) s = write_file(path, tensors + first[i], first[i + 1] - first[i], meta_kv, err);
    }
    if (!s && n_shards == 1) s = remove_stale(model_dir, "model.safetensors.index.json", err);
    if (!s && n_shards > 1) {
        for (size_t i = 0; i < n_shards; i++)
            for (size_t k = first[i]; k < first[i + 1]; k++) shard_of[k] = i;
        /* shard_of is by input position; the index is by name */
        size_t *by_name = mt_malloc_array(n, sizeof *by_name);
        if (!by_name) s = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", model_dir);
        for (size_t i = 0; i < n && !s; i++) by_name[i] = shard_of[sorted[i] - tensors];
        if (!s) s = mt_path_join(path, sizeof path, model_dir, "model.safetensors.index.json", err);
        if (!s) s = write_index(path, sorted, by_name, n, n_shards, total, err);
        if (!s) s = remove_stale(model_dir, "model.safetensors", err);
        mt_free(by_name);
    }
    mt_free(first);
    mt_free(shard_of);
    mt_free(sorted);
    return s;
}
