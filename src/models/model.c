/* models/model: opening a checkpoint folder, the family registry, weight table helpers, KV cache. */
#include "models/model.h"

#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"

extern const mt_family mt_family_qwen2_vl;

static const mt_family *const families[] = {&mt_family_qwen2_vl};

const mt_family *mt_family_find(const char *architecture) {
    for (size_t f = 0; f < MT_ARRAY_LEN(families); f++) {
        for (const char *const *a = families[f]->architectures; *a; a++)
            if (strcmp(*a, architecture) == 0) return families[f];
    }
    return NULL;
}

void mt_dump_tensor(const mt_dump *d, const mt_tensor *t, const char *fmt, ...) {
    if (!d || !d->fn || !t) return;
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    d->fn(d->user, name, t);
}

/* generation_config.json's eos_token_id (one id or a list) overrides config.json's, as in transformers' generate. */
static mt_status read_generation_config(mt_model *m, mt_err *err) {
    char path[4096];
    mt_status st = mt_path_join(path, sizeof path, m->dir, "generation_config.json", err);
    if (st || !mt_file_exists(path)) return st;
    cJSON *gc;
    if ((st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &gc, err))) return st;
    int64_t ids[MT_MAX_EOS];
    size_t n = 0;
    st = mt_json_int_array_opt(gc, "eos_token_id", path, 0, m->desc.vocab_size - 1, ids, MT_MAX_EOS, &n, err);
    if (!st && n > 0) {
        memcpy(m->desc.eos_ids, ids, n * sizeof ids[0]);
        m->desc.n_eos = n;
    }
    cJSON_Delete(gc);
    return st;
}

/* The folder's chat template as transformers finds it; the family's default when the folder has none. */
static mt_status load_chat_template(mt_model *m, mt_err *err) {
    mt_status st = mt_chat_template_load(m->dir, NULL, &m->chat_template, err);
    if (st != MT_ERR_IO) return st;
    if (err) *err = (mt_err){0}; /* none is not an error: chat reports it if it is ever needed */
    const char *src = m->family->default_chat_template;
    if (!src) return MT_OK;
    return mt_chat_template_parse(src, strlen(src), m->family->name, &m->chat_template, err);
}

mt_status mt_model_open(const char *dir, mt_model **out, mt_err *err) {
    char path[4096];
    mt_status st = mt_path_join(path, sizeof path, dir, "config.json", err);
    if (st) return st;
    cJSON *cfg = NULL;
    st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (st) return st;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const cJSON *arch = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(arch)) {
        cJSON_Delete(cfg);
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"architectures\" must be a list of names", path);
    }
    const mt_family *fam = mt_family_find(arch->valuestring);
    if (!fam) {
        st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported", path, arch->valuestring);
        cJSON_Delete(cfg);
        return st;
    }
    mt_model *m = mt_calloc(1, sizeof *m);
    if (!m || !(m->dir = mt_strdup(dir))) {
        mt_free(m);
        cJSON_Delete(cfg);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    m->family = fam;
    m->desc.bos_id = -1;
    st = mt_safetensors_open_dir(dir, &m->st, err);
    if (!st) st = fam->load(m, cfg, path, err);
    cJSON_Delete(cfg);
    if (!st) st = read_generation_config(m, err);
    if (!st && mt_path_join(path, sizeof path, dir, "tokenizer.json", err) == MT_OK && mt_file_exists(path))
        st = mt_tokenizer_load(path, &m->tok, err);
    if (!st) st = load_chat_template(m, err);
    if (st) {
        mt_model_close(m);
        return st;
    }
    *out = m;
    return MT_OK;
}

void mt_model_close(mt_model *m) {
    if (!m) return;
    if (m->family && m->impl) m->family->release(m);
    mt_tokenizer_free(m->tok);
    mt_chat_template_free(m->chat_template);
    mt_weights_release(m);
    for (size_t i = 0; i < m->n_owned; i++) mt_free(m->owned[i]);
    mt_free(m->owned);
    mt_safetensors_close(m->st);
    mt_free(m->dir);
    mt_free(m);
}

static const char *shape_str(const mt_st_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static bool is_float_dtype(mt_dtype d) { return d == MT_F32 || d == MT_BF16 || d == MT_F16; }

mt_status mt_weight_matrix(mt_model *m, const char *name, int64_t rows, int64_t cols, mt_tensor *out, mt_err *err) {
    const mt_st_tensor *t;
    mt_status st = mt_safetensors_get(m->st, name, &t, err);
    if (st) return st;
    int64_t rest = 1;
    for (int i = 1; i < t->ndim; i++) rest *= t->shape[i];
    char buf[128];
    if (t->ndim < 2 || t->shape[0] != rows || rest != cols)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\" has shape %s, expected [%lld, %lld]", t->file, name,
                          shape_str(t, buf, sizeof buf), (long long)rows, (long long)cols);
    if (!is_float_dtype(t->dtype))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, expected F32, BF16 or F16",
                          t->file, name, mt_dtype_name(t->dtype));
    int64_t shape[2] = {rows, cols};
    *out = mt_tensor_wrap(t->dtype, 2, shape, t->data);
    return mt_weight_register(m, name, out, err);
}

mt_status mt_weight_vector(mt_model *m, const char *name, int64_t n, bool optional, mt_tensor *out, mt_err *err) {
    const mt_st_tensor *t = mt_safetensors_find(m->st, name);
    if (!t && optional) {
        *out = (mt_tensor){0};
        return MT_OK;
    }
    mt_status st = mt_safetensors_get(m->st, name, &t, err);
    if (st) return st;
    char buf[128];
    if (t->ndim != 1 || t->shape[0] != n)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\" has shape %s, expected [%lld]", t->file, name,
                          shape_str(t, buf, sizeof buf), (long long)n);
    if (!is_float_dtype(t->dtype))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, expected F32, BF16 or F16",
                          t->file, name, mt_dtype_name(t->dtype));
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        float **grown = mt_realloc(m->owned, cap * sizeof *grown);
        if (!grown) return mt_err_set(err, MT_ERR_NOMEM, "out of memory loading \"%s\"", name);
        m->owned = grown;
        m->cap_owned = cap;
    }
    mt_tensor view = mt_tensor_wrap(t->dtype, 1, &n, t->data);
    float *f;
    st = mt_tensor_to_f32_alloc(&view, &f, err);
    if (st) return st;
    m->owned[m->n_owned++] = f;
    *out = mt_tensor_wrap(MT_F32, 1, &n, f);
    return mt_weight_register(m, name, out, err);
}

mt_status mt_kv_cache_init(mt_kv_cache *c, int n_layers, int64_t capacity, int64_t width, mt_err *err) {
    *c = (mt_kv_cache){.n_layers = n_layers, .capacity = capacity, .width = width};
    size_t per;
    if (!mt_mul_ok((size_t)capacity, (size_t)width * sizeof(float), &per))
        return mt_err_set(err, MT_ERR_LIMIT, "KV cache: %lld positions is too many", (long long)capacity);
    c->k = mt_calloc((size_t)n_layers, sizeof(float *));
    c->v = mt_calloc((size_t)n_layers, sizeof(float *));
    if (!c->k || !c->v) goto oom;
    for (int l = 0; l < n_layers; l++) {
        c->k[l] = mt_malloc_aligned(per);
        c->v[l] = mt_malloc_aligned(per);
        if (!c->k[l] || !c->v[l]) goto oom;
    }
    return MT_OK;
oom:
    mt_kv_cache_release(c);
    return mt_err_set(err, MT_ERR_NOMEM, "KV cache: out of memory for %lld positions x %d layers",
                      (long long)capacity, n_layers);
}

void mt_kv_cache_release(mt_kv_cache *c) {
    for (int l = 0; c->k && l < c->n_layers; l++) mt_free(c->k[l]);
    for (int l = 0; c->v && l < c->n_layers; l++) mt_free(c->v[l]);
    mt_free(c->k);
    mt_free(c->v);
    *c = (mt_kv_cache){0};
}
