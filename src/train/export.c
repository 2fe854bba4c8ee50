/* train/export: HF model folders and PEFT adapter folders from a (trained) model in memory. */
#include "train/export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "tensor/cpu/cpu.h"

#define MAX_SHARD_BYTES ((size_t)5 << 30) /* transformers' save_pretrained default, 5 GB */
#define MAX_SIDE_FILE ((size_t)64 << 20)

/* Config, tokenizer, template and processor files: everything in the base folder but the weights. */
static bool is_side_file(const char *name) {
    if (name[0] == '.' || strstr(name, ".safetensors")) return false;
    const char *ext = strrchr(name, '.');
    return ext && (strcmp(ext, ".json") == 0 || strcmp(ext, ".jinja") == 0 || strcmp(ext, ".txt") == 0 ||
                   strcmp(ext, ".model") == 0 || strcmp(ext, ".tiktoken") == 0);
}

/* A temporary file mt_file_write_atomic left when an export was killed mid-write: "NAME.tmp.PID" where NAME is a file
 * an export writes (a side file or a weights file); a user's file of another name is never taken for one. */
static bool stale_temp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name || !t[5]) return false;
    for (const char *c = t + 5; *c; c++)
        if (*c < '0' || *c > '9') return false;
    char base[256];
    if ((size_t)(t - name) >= sizeof base) return false;
    memcpy(base, name, (size_t)(t - name));
    base[t - name] = 0;
    size_t n = strlen(base);
    bool weights = strncmp(base, "model", 5) == 0 &&
                   ((n > 12 && strcmp(base + n - 12, ".safetensors") == 0) || strcmp(base, "model.safetensors.index.json") == 0);
    return weights || is_side_file(base);
}

/* Removes the temporary files an export killed in this folder left behind; nothing else. */
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (stale_temp(e->d_name)) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* config.json goes last (copy_side_files skips it, the caller copies it after the weights): transformers and mitten
 * take a folder for a model by its config.json, so a folder whose export was cut short never looks complete. */
static mt_status copy_file(const char *from, const char *to, const char *name, mt_err *err) {
    char src[4096], dst[4096];
    char *data = NULL;
    size_t len = 0;
    mt_status st = mt_path_join(src, sizeof src, from, name, err);
    if (!st) st = mt_path_join(dst, sizeof dst, to, name, err);
    if (!st) st = mt_file_read_all(src, MAX_SIDE_FILE, &data, &len, err);
    if (!st) st = mt_file_write_atomic(dst, data, len, err);
    mt_free(data);
    return st;
}

static mt_status copy_side_files(const char *from, const char *to, mt_err *err) {
    DIR *d = opendir(from);
    if (!d) return mt_err_set(err, MT_ERR_IO, "%s: cannot list: %s", from, strerror(errno));
    mt_status st = MT_OK;
    struct dirent *e;
    while (!st && (e = readdir(d)))
        if (is_side_file(e->d_name) && strcmp(e->d_name, "config.json") != 0) st = copy_file(from, to, e->d_name, err);
    closedir(d);
    return st;
}

/* The weight as it is now in f32, adapter folded in: W + scale * B A. */
static mt_status current_f32(const mt_weight *w, float *out, mt_err *err) {
    mt_status st = mt_weight_read_f32(w, out, err);
    if (st) return st;
    const mt_lora *lo = w->linear ? w->linear->lora : NULL;
    if (!lo) return MT_OK;
    int64_t rank = lo->a.shape[0];
    if (lo->b.shape[0] != w->rows || lo->a.shape[1] != w->cols)
        return mt_err_set(err, MT_ERR_INTERNAL, "%s: adapter shape does not match the weight", w->name);
    float *ba = mt_malloc_array((size_t)(w->rows * w->cols), sizeof(float));
    if (!ba) return mt_err_set(err, MT_ERR_NOMEM, "out of memory merging %s", w->name);
    mt_cpu_matmul_f32(NULL, w->rows, w->cols, rank, mt_f32(&lo->b), rank, 1, mt_f32(&lo->a), w->cols, 1, ba, w->cols,
                      false);
    for (int64_t i = 0; i < w->rows * w->cols; i++) out[i] += lo->scale * ba[i];
    mt_free(ba);
    return MT_OK;
}

mt_status mt_export_model(const mt_model *m, const char *dir, mt_err *err) {
    mt_status st = mt_dir_make_all(dir, err);
    if (!st) remove_stale_temps(dir);
    if (!st) {
        /* an earlier, interrupted export must not pass for a model while this one writes */
        char cfg[4096];
        if (!(st = mt_path_join(cfg, sizeof cfg, dir, "config.json", err)) && mt_file_exists(cfg) && unlink(cfg))
            st = mt_err_set(err, MT_ERR_IO, "%s: cannot replace: %s", cfg, strerror(errno));
    }
    if (!st) st = copy_side_files(m->dir, dir, err);
    if (st) return st;
    size_t n = mt_safetensors_count(m->st);
    mt_st_tensor *out = mt_calloc(n + 1, sizeof *out);
    void **owned = mt_calloc(n + 1, sizeof *owned);
    if (!out || !owned) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        const mt_st_tensor *src = mt_safetensors_at(m->st, i);
        out[i] = *src;
        const mt_weight *w = mt_weight_find(m, src->name);
        const mt_tensor *t = w ? mt_weight_whole(w) : NULL;
        bool changed = t && (t->data != src->data || (w->linear && w->linear->lora));
        if (!changed) continue;
        int64_t count = w->rows * w->cols;
        float *f = mt_malloc_array((size_t)count, sizeof(float));
        void *bytes = f;
        if (!f) {
            st = mt_err_set(err, MT_ERR_NOMEM, "out of memory writing %s", src->name);
            break;
        }
        owned[i] = f;
        if ((st = current_f32(w, f, err))) break;
        if (src->dtype != MT_F32) {
            if (!(bytes = mt_malloc_array((size_t)count, mt_dtype_size(src->dtype)))) {
                st = mt_err_set(err, MT_ERR_NOMEM, "out of memory writing %s", src->name);
                break;
            }
            mt_cpu_from_f32(count, f, bytes, src->dtype);
            mt_free(f);
            owned[i] = bytes;
        }
        out[i].data = bytes;
    }
    static const char *const meta[] = {"format", "pt", NULL};
    if (!st) st = mt_safetensors_write_sharded(dir, out, n, MAX_SHARD_BYTES, meta, err);
    if (!st) st = copy_file(m->dir, dir, "config.json", err);
    for (size_t i = 0; owned && i < n; i++) mt_free(owned[i]);
    mt_free(owned);
    mt_free(out);
    return st;
}

/* A checkpoint tensor's name in the current transformers module tree (the composition's renames applied). */
static bool module_tree_name(const mt_model *m, const char *name, char *out, size_t cap) {
    for (const char *const *r = m->comp ? m->comp->module_renames : NULL; r && r[0]; r += 2) {
        size_t n = strlen(r[0]);
        if (strncmp(name, r[0], n) == 0) return (size_t)snprintf(out, cap, "%s%s", r[1], name + n) < cap;
    }
    return (size_t)snprintf(out, cap, "%s", name) < cap;
}

/* A weight trained in full beside the adapters (the projector of InternVL's recipe): one of a part spec trains
 * whole (the language model's are adapted), trainable, with no adapter; mt_trainable_setup gave it an f32 master. */
static bool trained_in_full(const mt_model *m, const mt_train_spec *spec, const mt_weight *w) {
    bool chosen = w->part == MT_PART_VISION ? spec->vision : w->part == MT_PART_PROJECTOR && spec->projector;
    const mt_tensor *t = mt_weight_whole(w);
    return chosen && w->training == MT_WEIGHT_TRAINABLE && !(w->linear && w->linear->lora) && t &&
           t->dtype == MT_F32 && mt_safetensors_find(m->st, w->name);
}

/* Appends the weight's module (its name without the last component) to modules_to_save once. */
static bool add_saved_module(cJSON *saved, const char *tensor) {
    const char *dot = strrchr(tensor, '.');
    if (!dot) return true;
    int n = (int)(dot - tensor);
    for (const cJSON *e = saved->child; e; e = e->next)
        if ((int)strlen(e->valuestring) == n && strncmp(e->valuestring, tensor, (size_t)n) == 0) return true;
    char module[320];
    snprintf(module, sizeof module, "%.*s", n, tensor);
    cJSON *s = cJSON_CreateString(module);
    return s && cJSON_AddItemToArray(saved, s);
}

/* The weights trained in full go into the adapter as PEFT saves modules_to_save: the module tree's tensor name
 * under base_model.model. (PEFT drops "modules_to_save.default." when saving), in the checkpoint's dtype, and
 * their modules listed in modules_to_save. */
static mt_status add_full_weights(const mt_model *m, const mt_train_spec *spec, cJSON *saved, mt_st_tensor *out,
                                  char **names, void **owned, size_t *k, mt_err *err) {
    for (size_t i = 0; i < m->n_weights; i++) {
        const mt_weight *w = &m->weights[i];
        if (!trained_in_full(m, spec, w)) continue;
        const mt_st_tensor *src = mt_safetensors_find(m->st, w->name);
        char path[300], name[320];
        if (!module_tree_name(m, w->name, path, sizeof path) ||
            (size_t)snprintf(name, sizeof name, "base_model.model.%s", path) >= sizeof name)
            return mt_err_set(err, MT_ERR_LIMIT, "%s: the name is too long for an adapter tensor", w->name);
        int64_t count = w->rows * w->cols;
        float *f = mt_malloc_array((size_t)count, sizeof(float));
        void *bytes = f;
        if (!f || !(names[*k] = mt_strdup(name)) || !add_saved_module(saved, path)) {
            mt_free(f);
            return mt_err_set(err, MT_ERR_NOMEM, "out of memory saving %s", w->name);
        }
        owned[*k] = f;
        mt_status st = mt_weight_read_f32(w, f, err);
        if (st) return st;
        if (src->dtype != MT_F32) {
            if (!(bytes = mt_malloc_array((size_t)count, mt_dtype_size(src->dtype))))
                return mt_err_set(err, MT_ERR_NOMEM, "out of memory saving %s", w->name);
            mt_cpu_from_f32(count, f, bytes, src->dtype);
            mt_free(f);
            owned[*k] = bytes;
        }
        out[*k] = *src;
        out[*k].name = names[*k];
        out[*k].data = bytes;
        (*k)++;
    }
    return MT_OK;
}

mt_status mt_export_adapter(const mt_model *m, const mt_train_spec *spec, const char *dir, mt_err *err) {
    mt_status st = mt_dir_make(dir, err);
    if (st) return st;
    mt_st_tensor *out = mt_calloc(3 * m->n_weights + 1, sizeof *out);
    char **names = mt_calloc(3 * m->n_weights + 1, sizeof *names);
    void **owned = mt_calloc(3 * m->n_weights + 1, sizeof *owned);
    cJSON *cfg = cJSON_CreateObject(), *targets = cJSON_AddArrayToObject(cfg, "target_modules");
    cJSON *saved = cJSON_CreateArray();
    size_t k = 0;
    if (!out || !names || !owned || !cfg || !saved) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_weights && !st; i++) {
        const mt_weight *w = &m->weights[i];
        char module[256];
        const mt_lora *lo = w->linear ? w->linear->lora : NULL;
        if (!lo || !mt_weight_module(m, w->name, true, module, sizeof module)) continue;
        /* full module paths of the current transformers module tree: PEFT then adapts exactly these modules,
         * whatever else shares their leaf name */
        cJSON_AddItemToArray(targets, cJSON_CreateString(module));
        const mt_tensor *ab[2] = {&lo->a, &lo->b};
        for (int j = 0; j < 2; j++, k++) {
            char name[320];
            if (!mt_lora_tensor_name(m, w, true, j, name, sizeof name) || !(names[k] = mt_strdup(name))) {
                st = mt_err_set(err, MT_ERR_NOMEM, "out of memory naming the adapter of %s", module);
                break;
            }
            out[k] = (mt_st_tensor){.name = names[k], .dtype = MT_F32, .ndim = 2,
                                    .shape = {ab[j]->shape[0], ab[j]->shape[1]}, .data = ab[j]->data,
                                    .nbytes = (size_t)mt_tensor_numel(ab[j]) * sizeof(float)};
        }
    }
    if (!st && k == 0) st = mt_err_set(err, MT_ERR_INVALID_ARG, "the model has no LoRA adapters to save");
    if (!st) st = add_full_weights(m, spec, saved, out, names, owned, &k, err);
    char path[4096];
    if (!st) {
        cJSON_AddStringToObject(cfg, "peft_type", "LORA");
        cJSON_AddStringToObject(cfg, "task_type", "CAUSAL_LM");
        cJSON_AddStringToObject(cfg, "base_model_name_or_path", m->dir);
        cJSON_AddNumberToObject(cfg, "r", spec->lora_rank);
        cJSON_AddNumberToObject(cfg, "lora_alpha", spec->lora_alpha);
        cJSON_AddNumberToObject(cfg, "lora_dropout", spec->lora_dropout);
        cJSON_AddStringToObject(cfg, "bias", "none");
        cJSON_AddBoolToObject(cfg, "fan_in_fan_out", false);
        cJSON_AddBoolToObject(cfg, "inference_mode", true);
        cJSON_AddBoolToObject(cfg, "use_rslora", false);
        cJSON_AddBoolToObject(cfg, "use_dora", false);
        if (cJSON_GetArraySize(saved)) {
            cJSON_AddItemToObject(cfg, "modules_to_save", saved);
            saved = NULL;
        } else {
            cJSON_AddNullToObject(cfg, "modules_to_save");
        }
        char *text = mt_json_print(cfg, true);
        if (!text) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        if (!st && !(st = mt_path_join(path, sizeof path, dir, "adapter_config.json", err)))
            st = mt_file_write_atomic(path, text, strlen(text), err);
        mt_free(text);
    }
    static const char *const meta[] = {"format", "pt", NULL};
    if (!st && !(st = mt_path_join(path, sizeof path, dir, "adapter_model.safetensors", err)))
        st = mt_safetensors_write(path, out, k, meta, err);
    for (size_t i = 0; names && i < 3 * m->n_weights; i++) mt_free(names[i]);
    for (size_t i = 0; owned && i < 3 * m->n_weights; i++) mt_free(owned[i]);
    mt_free(names);
    mt_free(owned);
    mt_free(out);
    cJSON_Delete(cfg);
    cJSON_Delete(saved);
    return st;
}

mt_status mt_adapter_read_config(const char *dir, mt_train_spec *spec, char *targets, size_t cap, mt_err *err) {
    char path[4096];
    cJSON *cfg = NULL;
    mt_status st = mt_path_join(path, sizeof path, dir, "adapter_config.json", err);
    if (!st) st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    int64_t r = 0;
    double alpha = 0, dropout = 0;
    if (!st) st = mt_json_int_req(cfg, "r", path, 1, 4096, &r, err);
    if (!st) st = mt_json_num_req(cfg, "lora_alpha", path, 0, 1e6, &alpha, err);
    if (!st) st = mt_json_num_opt(cfg, "lora_dropout", path, 0, 0.999, &dropout, err);
    const cJSON *tm = st ? NULL : cJSON_GetObjectItemCaseSensitive(cfg, "target_modules");
    if (!st && cJSON_IsString(tm) && strcmp(tm->valuestring, "all-linear") != 0 &&
        strpbrk(tm->valuestring, "*+?()[]{}|^$\\")) {
        st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: target_modules as a regular expression is not supported", path);
    } else if (!st && cJSON_IsString(tm)) {
        snprintf(targets, cap, "%s", tm->valuestring);
    } else if (!st && cJSON_IsArray(tm)) {
        targets[0] = '\0';
        size_t used = 0;
        for (const cJSON *e = tm->child; e && !st; e = e->next) {
            if (!cJSON_IsString(e) || used + strlen(e->valuestring) + 2 > cap)
                st = mt_err_set(err, MT_ERR_FORMAT, "%s: target_modules must be short strings", path);
            else
                used += (size_t)snprintf(targets + used, cap - used, "%s%s", used ? "," : "", e->valuestring);
        }
    } else if (!st) {
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: target_modules is missing", path);
    }
    if (!st) {
        spec->lora_rank = (int)r;
        spec->lora_alpha = (float)alpha;
        spec->lora_dropout = (float)dropout;
        spec->lora_targets = targets;
    }
    cJSON_Delete(cfg);
    return st;
}

/* The name a fully saved weight has in an adapter file (add_full_weights). */
static bool saved_name(const mt_model *m, const mt_weight *w, char *out, size_t cap) {
    char path[300];
    return module_tree_name(m, w->name, path, sizeof path) &&
           (size_t)snprintf(out, cap, "base_model.model.%s", path) < cap;
}

mt_status mt_adapter_saved_parts(const mt_model *m, const char *dir, mt_train_spec *spec, mt_err *err) {
    char path[4096];
    mt_safetensors *f = NULL;
    mt_status st = mt_path_join(path, sizeof path, dir, "adapter_model.safetensors", err);
    if (!st) st = mt_safetensors_open_file(path, &f, err);
    for (size_t i = 0; i < m->n_weights && !st; i++) {
        char name[320];
        const mt_weight *w = &m->weights[i];
        if (!saved_name(m, w, name, sizeof name) || !mt_safetensors_find(f, name)) continue;
        if (w->part == MT_PART_LANGUAGE)
            st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: \"%s\" saves a language-model weight whole "
                            "(modules_to_save); mitten merges whole weights of the vision tower and projector only",
                            path, name);
        else if (w->part == MT_PART_VISION)
            spec->vision = true;
        else
            spec->projector = true;
    }
    mt_safetensors_close(f);
    return st;
}

/* A weight saved whole in the adapter replaces the f32 master that mt_adapter_saved_parts asked for. */
static mt_status load_full(const mt_model *m, const mt_train_spec *spec, const mt_safetensors *f, const char *path,
                           size_t *taken, mt_err *err) {
    for (size_t i = 0; i < m->n_weights; i++) {
        char name[320];
        const mt_weight *w = &m->weights[i];
        const mt_st_tensor *t = saved_name(m, w, name, sizeof name) ? mt_safetensors_find(f, name) : NULL;
        if (!t) continue;
        const mt_st_tensor *src = mt_safetensors_find(m->st, w->name);
        mt_tensor *dst = (mt_tensor *)mt_weight_whole(w);
        bool same_shape = src && t->ndim == src->ndim;
        for (int d = 0; same_shape && d < t->ndim; d++) same_shape = t->shape[d] == src->shape[d];
        if (!same_shape || (t->dtype != MT_F32 && t->dtype != MT_BF16 && t->dtype != MT_F16))
            return mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\" should be a float tensor shaped as %s in the base",
                              path, name, w->name);
        if (!trained_in_full(m, spec, w) || !dst)
            return mt_err_set(err, MT_ERR_INTERNAL, "%s: no writable copy of %s to load \"%s\" into", path,
                              w->name, name);
        mt_cpu_to_f32(w->rows * w->cols, t->data, t->dtype, mt_f32(dst));
        (*taken)++;
    }
    return MT_OK;
}

mt_status mt_adapter_load(const mt_model *m, const mt_train_spec *spec, const char *dir, mt_err *err) {
    char path[4096];
    mt_safetensors *st_file = NULL;
    mt_status st = mt_path_join(path, sizeof path, dir, "adapter_model.safetensors", err);
    if (!st) st = mt_safetensors_open_file(path, &st_file, err);
    size_t taken = 0;
    for (size_t i = 0; i < m->n_weights && !st; i++) {
        const mt_weight *w = &m->weights[i];
        const mt_lora *lo = w->linear ? w->linear->lora : NULL;
        if (!lo) continue;
        const mt_tensor *ab[2] = {&lo->a, &lo->b};
        for (int j = 0; j < 2 && !st; j++) {
            char name[320], old[320];
            const mt_st_tensor *t = NULL;
            if (mt_lora_tensor_name(m, w, true, j, name, sizeof name)) t = mt_safetensors_find(st_file, name);
            if (!t && mt_lora_tensor_name(m, w, false, j, old, sizeof old) && (t = mt_safetensors_find(st_file, old)))
                snprintf(name, sizeof name, "%s", old);
            if (!t) {
                st = mt_err_set(err, MT_ERR_FORMAT, "%s: no \"%s\"", path, name);
                break;
            }
            if (t->ndim != 2 || t->shape[0] != ab[j]->shape[0] || t->shape[1] != ab[j]->shape[1] ||
                (t->dtype != MT_F32 && t->dtype != MT_BF16 && t->dtype != MT_F16)) {
                st = mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\" should be a float [%lld, %lld]", path, name,
                                (long long)ab[j]->shape[0], (long long)ab[j]->shape[1]);
                break;
            }
            mt_cpu_to_f32(mt_tensor_numel(ab[j]), t->data, t->dtype, mt_f32(ab[j]));
            taken++;
        }
    }
    if (!st) st = load_full(m, spec, st_file, path, &taken, err);
    /* a tensor no adapter took (a module this model does not have, or one mitten cannot adapt) would be lost */
    for (size_t i = 0; !st && taken != mt_safetensors_count(st_file) && i < mt_safetensors_count(st_file); i++) {
        const char *name = mt_safetensors_at(st_file, i)->name;
        bool known = false;
        for (size_t w = 0; w < m->n_weights && !known; w++) {
            char whole[320];
            if (trained_in_full(m, spec, &m->weights[w]) && saved_name(m, &m->weights[w], whole, sizeof whole) &&
                strcmp(whole, name) == 0) {
                known = true;
                break;
            }
            if (!m->weights[w].linear || !m->weights[w].linear->lora) continue;
            for (int k = 0; k < 4 && !known; k++) {
                char want[320];
                known = mt_lora_tensor_name(m, &m->weights[w], k < 2, k % 2, want, sizeof want) && strcmp(want, name) == 0;
            }
        }
        if (!known)
            st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%s\" matches no adapted module of %s", path, name,
                            m->dir);
    }
    mt_safetensors_close(st_file);
    return st;
}
