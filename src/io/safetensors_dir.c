/* io/safetensors_dir: open a Hugging Face model directory, single-file or sharded.
 *
 * Reference: transformers modeling_utils (SAFE_WEIGHTS_NAME is tried before SAFE_WEIGHTS_INDEX_NAME) and the
 * index written by huggingface_hub's save_torch_state_dict:
 *
 *     model.safetensors.index.json
 *     | key                | content                                                        |
 *     | ------------------ | -------------------------------------------------------------- |
 *     | metadata           | {"total_size": bytes of tensor data}   (optional, not checked) |
 *     | weight_map         | {"<tensor name>": "<shard file name>", ...}                    |
 *
 * The index is untrusted: a shard name is a plain file name inside the directory (no '/', not "." or ".."), so a
 * checkpoint cannot make mitten map files elsewhere on the machine.
 */
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "io/io_int.h"
#include "io/safetensors.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

static bool plain_file_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n <= 255 && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The distinct shard names of weight_map, sorted (which is shard order for the 0000i-of-0000n names).
 * *names is owned by the caller; the strings point into the JSON. */
static mt_status shard_names(const cJSON *wm, const char *index, const char ***names, size_t *n, mt_err *err) {
    size_t count = (size_t)cJSON_GetArraySize(wm);
    const char **v = mt_malloc_array(count, sizeof *v);
    if (!v) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", index);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e)) {
            mt_free(v);
            return mt_err_set(err, MT_ERR_FORMAT, "%s: weight_map: tensor \"%.200s\": shard must be a string", index,
                              e->string);
        }
        if (!plain_file_name(e->valuestring)) {
            mt_free(v);
            return mt_err_set(err, MT_ERR_FORMAT,
                              "%s: weight_map: tensor \"%.200s\": shard \"%.200s\" is not a plain file name", index,
                              e->string, e->valuestring);
        }
        v[i++] = e->valuestring;
    }
    qsort(v, count, sizeof *v, cmp_str);
    size_t u = 0;
    for (i = 0; i < count; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0) v[u++] = v[i];
    if (u > MT_ST_MAX_SHARDS) {
        mt_free(v);
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %zu shards, over the limit of %d", index, u, MT_ST_MAX_SHARDS);
    }
    *names = v;
    *n = u;
    return MT_OK;
}

/* Every weight_map entry must name the shard its tensor was found in. */
static mt_status check_map(const mt_safetensors *st, const cJSON *wm, const char *dir, const char *index,
                           mt_err *err) {
    char path[4096];
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        mt_status s = mt_path_join(path, sizeof path, dir, e->valuestring, err);
        if (s) return s;
        const mt_st_tensor *t = mt_safetensors_find(st, e->string);
        if (!t)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: weight_map: tensor \"%.200s\" is not in its shard %s", index,
                              e->string, e->valuestring);
        if (strcmp(t->file, path) != 0)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: weight_map: tensor \"%.200s\" is mapped to %s but is in %s",
                              index, e->string, e->valuestring, t->file);
    }
    return MT_OK;
}

static mt_status open_sharded(mt_safetensors *st, const char *dir, const char *index, mt_err *err) {
    cJSON *root;
    mt_status s = mt_json_parse_file(index, MT_JSON_MAX_FILE, &root, err);
    if (s) return s;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    const char **names = NULL;
    size_t n = 0;
    if (!cJSON_IsObject(wm))
        s = mt_err_set(err, MT_ERR_FORMAT, "%s: \"weight_map\" must be an object", index);
    if (!s) s = shard_names(wm, index, &names, &n, err);
    char path[4096];
    for (size_t i = 0; i < n && !s; i++) {
        s = mt_path_join(path, sizeof path, dir, names[i], err);
        if (!s) s = mt_st_add_file(st, path, err);
    }
    if (!s) s = mt_st_index(st, err);
    if (!s) s = check_map(st, wm, dir, index, err);
    mt_free(names);
    cJSON_Delete(root);
    return s;
}

mt_status mt_safetensors_open_dir(const char *model_dir, mt_safetensors **out, mt_err *err) {
    char single[4096], index[4096];
    mt_status s = mt_path_join(single, sizeof single, model_dir, SINGLE_NAME, err);
    if (!s) s = mt_path_join(index, sizeof index, model_dir, INDEX_NAME, err);
    if (s) return s;
    if (mt_file_exists(single)) return mt_safetensors_open_file(single, out, err);
    if (!mt_file_exists(index))
        return mt_err_set(err, MT_ERR_IO, "%s: neither %s nor %s is there", model_dir, SINGLE_NAME, INDEX_NAME);
    mt_safetensors *st = NULL;
    s = mt_st_create(model_dir, &st, err);
    if (!s) s = open_sharded(st, model_dir, index, err);
    if (s) {
        mt_safetensors_close(st);
        return s;
    }
    *out = st;
    return MT_OK;
}
