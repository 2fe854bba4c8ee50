/* models/model: opening a checkpoint folder as a composition of parts, strict loading, the weight loaders parts use. */
#include "models/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "models/decoder.h"
#include "text/spm.h"

void mt_dump_tensor(const mt_dump *d, const mt_tensor *t, const char *fmt, ...) {
    if (!d || !d->fn || !t) return;
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    d->fn(d->user, name, t);
}

/* generation_config.json as transformers' generate reads it: eos_token_id (one id or a list) overrides config.json's,
 * and the sampling fields are the defaults (GenerationConfig's own where absent: temperature 1, top_k 50, top_p 1;
 * greedy unless do_sample is true). A null field counts as absent; a value out of range fails the load. */
static mt_status read_generation_config(mt_model *m, mt_err *err) {
    mt_sampling *d = &m->desc.sampling;
    *d = (mt_sampling){.temperature = 0, .top_k = 50, .top_p = 1, .min_p = 0, .repetition_penalty = 1,
                       .seed = MT_SEED_RANDOM};
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
    bool sample = false;
    double temperature = 1, top_p = 1, min_p = 0, penalty = 1;
    if (!st) st = mt_json_bool_opt(gc, "do_sample", path, &sample, err);
    if (!st) st = mt_json_num_opt(gc, "temperature", path, 0, 100, &temperature, err);
    if (!st) st = mt_json_int_opt(gc, "top_k", path, 0, INT32_MAX, &d->top_k, err);
    if (!st) st = mt_json_num_opt(gc, "top_p", path, 0, 1, &top_p, err);
    if (!st) st = mt_json_num_opt(gc, "min_p", path, 0, 1, &min_p, err);
    if (!st) st = mt_json_num_opt(gc, "repetition_penalty", path, 1e-3, 100, &penalty, err);
    if (!st && top_p <= 0) st = mt_err_set(err, MT_ERR_FORMAT, "%s: field \"top_p\" must be above 0", path);
    d->temperature = sample ? (float)temperature : 0;
    d->top_p = (float)top_p;
    d->min_p = (float)min_p;
    d->repetition_penalty = (float)penalty;
    cJSON_Delete(gc);
    return st;
}

/* The folder's chat template as transformers finds it: one that is there but cannot be read or parsed fails the
 * load. Only a folder with none gets the composition's default, and it is said aloud. */
static mt_status load_chat_template(mt_model *m, mt_err *err) {
    if (mt_chat_template_present(m->dir)) {
        mt_status st = mt_chat_template_load(m->dir, NULL, &m->chat_template, err);
        if (!st && m->comp->image_text)
            st = mt_chat_template_set_image_text(m->chat_template, m->comp->image_text, m->comp->image_token_text, err);
        return st;
    }
    const char *src = m->comp->default_chat_template;
    /* chat says so if it is ever needed; and a folder without a tokenizer (logits, bench) renders no chat */
    if (!src || !m->tok) return MT_OK;
    mt_log(MT_LOG_ERROR, "%s has no chat template: using %s's published one (the checkpoint's own would be safer)",
           m->dir, m->comp->name);
    return mt_chat_template_parse(src, strlen(src), m->comp->name, &m->chat_template, err);
}

/* The first prefix under which probe exists. */
static const char *find_prefix(const mt_safetensors *st, const char *const *prefixes, const char *probe) {
    char name[512];
    for (const char *const *p = prefixes; p && *p; p++) {
        snprintf(name, sizeof name, "%s%s", *p, probe);
        if (mt_safetensors_find(st, name)) return *p;
    }
    return NULL;
}

/* The first prefix under which any tensor exists, or NULL (prefixes may be NULL too: none). */
static const char *find_any_prefix(const mt_safetensors *st, const char *const *prefixes) {
    for (const char *const *p = prefixes; p && *p; p++) {
        size_t k = strlen(*p);
        for (size_t i = 0; i < mt_safetensors_count(st); i++)
            if (strncmp(mt_safetensors_at(st, i)->name, *p, k) == 0) return *p;
    }
    return NULL;
}

/* The image placeholder's id: config.json's image_token_id, else the composition's placeholder text looked up in
 * tokenizer.json (InternVL's original layout names it only there). A composition with that text and neither gives
 * no id is refused: its processor could not place any image. */
static mt_status image_token(mt_model *m, const char *path, mt_err *err) {
    const char *text = m->comp->image_token_text;
    if (m->desc.image_token_id >= 0 || !text) return MT_OK;
    int32_t id = m->tok ? mt_tokenizer_token_id(m->tok, text) : -1;
    if (id < 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: no \"image_token_id\", and %s/tokenizer.json %s \"%s\": %s cannot "
                          "place images", path, m->dir, m->tok ? "has no token" : "is missing, which would name",
                          text, m->comp->name);
    if (id >= m->desc.vocab_size)
        return mt_err_set(err, MT_ERR_FORMAT, "%s/tokenizer.json: \"%s\" is id %d, outside the vocabulary of %lld",
                          m->dir, text, (int)id, (long long)m->desc.vocab_size);
    m->desc.image_token_id = id;
    return MT_OK;
}

static bool ignored(const mt_composition *c, const char *name) {
    size_t n = strlen(name);
    for (const char *const *s = c->ignored_suffixes; s && *s; s++) {
        size_t k = strlen(*s);
        if (n >= k && strcmp(name + n - k, *s) == 0) return true;
    }
    return false;
}

/* The composition's head name (default "lm_head.weight") with its last part as the decoder kind names it
 * (InternLM2: "language_model.lm_head.weight" -> "language_model.output.weight"). */
static void set_lm_head_name(mt_model *m, const mt_decoder_names *nm) {
    const char *full = m->comp->lm_head ? m->comp->lm_head : "lm_head.weight";
    size_t n = strlen(full), leaf = strlen("lm_head.weight");
    int keep = n >= leaf && strcmp(full + n - leaf, "lm_head.weight") == 0 ? (int)(n - leaf) : (int)n;
    snprintf(m->lm_head_name, sizeof m->lm_head_name, "%.*s%s", keep, full, keep == (int)n ? "" : nm->head);
}

/* Every checkpoint tensor must be read by a part or declared ignored: a mislabelled checkpoint never loads quietly. */
static mt_status check_unused(const mt_model *m, bool allow, mt_err *err) {
    size_t unused = 0;
    char list[600] = "";
    size_t len = 0;
    for (size_t i = 0; i < mt_safetensors_count(m->st); i++) {
        const mt_st_tensor *t = mt_safetensors_at(m->st, i);
        if (mt_weight_find(m, t->name) || ignored(m->comp, t->name)) continue;
        /* transformers ties the head to the embedding and drops a saved copy, as mitten does */
        if (strcmp(t->name, m->lm_head_name) == 0 && mt_decoder_get_cfg(m->decoder)->tied) continue;
        if (unused++ < 5 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%.100s\"", unused > 1 ? ", " : "", t->name);
    }
    if (!unused) return MT_OK;
    if (allow) {
        mt_log(MT_LOG_ERROR, "%s: %zu checkpoint tensor(s) not used by %s: %s%s", m->dir, unused, m->comp->name, list,
               unused > 5 ? ", ..." : "");
        return MT_OK;
    }
    return mt_err_set(err, MT_ERR_FORMAT, "%s: %zu checkpoint tensor(s) are not used by %s: %s%s (is the "
                      "architecture in config.json right? --allow-unused loads it anyway)", m->dir, unused,
                      m->comp->name, list, unused > 5 ? ", ..." : "");
}

static void count_params(mt_model *m) {
    mt_model_desc *d = &m->desc;
    d->params_vision = d->params_projector = d->params_language = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        const mt_weight *w = &m->weights[i];
        size_t n = (size_t)(w->rows * w->cols);
        if (w->part == MT_PART_VISION) d->params_vision += n;
        else if (w->part == MT_PART_PROJECTOR) d->params_projector += n;
        else d->params_language += n;
    }
}

static mt_status load_parts(mt_model *m, const cJSON *cfg, const char *path, mt_err *err) {
    const mt_composition *c = m->comp;
    const cJSON *text = mt_cfg_section(cfg, c->text_config_key, true);
    const char *what = text == cfg ? "" : c->text_config_key, *kind = c->decoder_kind;
    mt_decoder_cfg dc;
    mt_status st = mt_decoder_kind(c, text, path, what, &kind, err);
    if (!st) st = mt_decoder_config(kind, cfg, text, path, what, &dc, err);
    if (st) return st;
    m->decoder_kind = kind;
    if (c->untied_head) dc.tied = false;
    char probe[64];
    snprintf(probe, sizeof probe, "%sweight", dc.names->embed);
    const char *tp = find_prefix(m->st, c->text_prefixes, probe);
    if (!tp) {
        mt_free(dc.dense_layer);
        return mt_err_set(err, MT_ERR_FORMAT, "%s: the checkpoint has no text embedding (%s%s)", m->dir,
                          c->text_prefixes[0], probe);
    }
    m->text_prefix = tp;
    set_lm_head_name(m, dc.names);
    if (c->vision) {
        m->vision_prefix = find_any_prefix(m->st, c->vision_prefixes);
        if (!m->vision_prefix) m->vision_prefix = c->vision_prefixes[0];
        m->projector_prefix = find_any_prefix(m->st, c->projector_prefixes);
    }
    st = mt_decoder_load(m, &dc, tp, m->lm_head_name, &m->decoder, err);
    if (st) return st;
    mt_model_desc *d = &m->desc;
    d->vocab_size = dc.vocab;
    d->hidden_size = dc.hidden;
    d->n_layers = dc.n_layers;
    d->max_positions = dc.max_positions;
    d->k_width = d->v_width = dc.n_kv * dc.head_dim;
    d->pos_axes = mt_rope_axes(&dc.rope);
    d->weight_dtype = mt_decoder_lm_head(m->decoder)->dtype;
    d->attention_dropout = dc.attn_dropout;
    mt_cfg r = {path, "", err, MT_OK};
    int64_t V = dc.vocab;
    d->image_token_id = mt_cfg_int_opt(&r, cfg, "image_token_id", 0, V - 1, -1);
    d->video_token_id = mt_cfg_int_opt(&r, cfg, "video_token_id", 0, V - 1, -1);
    d->video_row_id = d->video_token_id;
    d->vision_start_id = mt_cfg_int_opt(&r, cfg, "vision_start_token_id", 0, V - 1, -1);
    d->vision_end_id = mt_cfg_int_opt(&r, cfg, "vision_end_token_id", 0, V - 1, -1);
    const cJSON *ids_src = cJSON_GetObjectItemCaseSensitive(text, "bos_token_id") ? text : cfg;
    d->bos_id = mt_cfg_int_opt(&r, ids_src, "bos_token_id", 0, V - 1, -1);
    int64_t eos[MT_MAX_EOS];
    ids_src = cJSON_GetObjectItemCaseSensitive(text, "eos_token_id") ? text : cfg;
    d->n_eos = mt_cfg_int_list(&r, ids_src, "eos_token_id", 0, V - 1, eos, MT_MAX_EOS);
    memcpy(d->eos_ids, eos, d->n_eos * sizeof eos[0]);
    if (r.st) return r.st;
    if ((st = image_token(m, path, err))) return st;
    if (c->vision && (st = c->vision->load(m, cfg, path, m->vision_prefix, &m->vision, err))) return st;
    if (c->processor && (st = c->processor->load(m, cfg, path, &m->processor, err))) return st;
    count_params(m);
    return MT_OK;
}

mt_status mt_model_open_params(const char *dir, const mt_model_params *params, mt_model **out, mt_err *err) {
    char path[4096];
    mt_gguf_source *gguf = NULL;
    mt_safetensors *gguf_st = NULL;
    const char *mmproj = params ? params->mmproj : NULL, *given = dir;
    mt_status st = MT_OK;
    if (mt_gguf_is_file(dir)) st = mt_gguf_source_open(dir, mmproj, &gguf, &dir, &gguf_st, err);
    else if (mmproj)
        st = mt_err_set(err, MT_ERR_INVALID_ARG, "--mmproj %s goes with a GGUF model file; %s is not one", mmproj, dir);
    if (!st) st = mt_path_join(path, sizeof path, dir, "config.json", err);
    if (st) {
        mt_safetensors_close(gguf_st);
        mt_gguf_source_close(gguf);
        return st;
    }
    cJSON *cfg = NULL;
    st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (st) {
        mt_safetensors_close(gguf_st);
        mt_gguf_source_close(gguf);
        return st;
    }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const cJSON *arch = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    const mt_composition *comp = cJSON_IsString(arch) ? mt_composition_find(arch->valuestring) : NULL;
    mt_model *m = comp ? mt_calloc(1, sizeof *m) : NULL;
    if (!m || !(m->dir = mt_strdup(dir)) || !(m->source = mt_strdup(given))) {
        if (!cJSON_IsString(arch)) st = mt_err_set(err, MT_ERR_FORMAT, "%s: field \"architectures\" must be a list of names", path);
        else if (!comp) st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported", path, arch->valuestring);
        else st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        if (m) mt_free(m->dir);
        mt_free(m);
        cJSON_Delete(cfg);
        mt_safetensors_close(gguf_st);
        mt_gguf_source_close(gguf);
        return st;
    }
    m->gguf = gguf;
    m->comp = comp;
    if (params) m->params = *params;
    m->desc.bos_id = -1;
    if (gguf) m->st = gguf_st;
    else st = mt_safetensors_open_dir(dir, &m->st, err);
    /* the tokenizer first: a part may need a token's id (InternVL's <IMG_CONTEXT>) */
    char tok_path[4096];
    if (!st) st = mt_path_join(tok_path, sizeof tok_path, dir, "tokenizer.json", err);
    if (!st && mt_file_exists(tok_path)) st = mt_tokenizer_load(tok_path, &m->tok, err);
    /* InternLM2 ships only SentencePiece's file; tokenizer.json wins where both are, as in transformers */
    if (!st && !m->tok && !(st = mt_path_join(tok_path, sizeof tok_path, dir, "tokenizer.model", err)) &&
        mt_file_exists(tok_path))
        st = mt_tokenizer_load_spm(tok_path, &m->tok, err);
    if (!st) st = load_parts(m, cfg, path, err);
    cJSON_Delete(cfg);
    if (!st) st = check_unused(m, m->params.allow_unused, err);
    if (!st) st = mt_weights_place(m, err);
    if (!st) st = read_generation_config(m, err);
    if (!st) st = load_chat_template(m, err);
    if (st) {
        if (m->gguf) mt_gguf_source_name_errors(m->gguf, err);
        mt_model_close(m);
        return st;
    }
    *out = m;
    return MT_OK;
}

mt_status mt_model_open(const char *dir, mt_model **out, mt_err *err) { return mt_model_open_params(dir, NULL, out, err); }

int64_t mt_model_max_context(const mt_model *m) { return m ? m->desc.max_positions : 0; }

mt_status mt_model_check_context(const mt_model *m, int64_t n_ctx, mt_err *err) {
    if (n_ctx <= m->desc.max_positions) return MT_OK;
    return mt_err_set(err, MT_ERR_INVALID_ARG, "a context of %lld tokens is over the model's maximum of %lld "
                      "(max_position_embeddings in %s/config.json)", (long long)n_ctx,
                      (long long)m->desc.max_positions, m->dir);
}

void mt_model_close(mt_model *m) {
    if (!m) return;
    if (m->comp && m->comp->vision && m->vision) m->comp->vision->release(m->vision);
    if (m->comp && m->comp->processor && m->processor) m->comp->processor->release(m->processor);
    mt_decoder_free(m->decoder);
    mt_tokenizer_free(m->tok);
    mt_chat_template_free(m->chat_template);
    mt_weights_release(m);
    for (size_t i = 0; i < m->n_owned; i++) mt_free(m->owned[i]);
    mt_free(m->owned);
    mt_free_pages(m->pages, m->pages_bytes);
    mt_safetensors_close(m->st);
    mt_gguf_source_close(m->gguf);
    mt_free(m->dir);
    mt_free(m->source);
    mt_free(m);
}

static const char *shape_str(const mt_st_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* MT_ERR_UNSUPPORTED naming the tensor unless it holds f32, bf16 or f16 (or, quant_ok, a GGUF block type) */
static mt_status float_dtype(const mt_st_tensor *t, const char *name, bool quant_ok, mt_err *err) {
    if (t->dtype == MT_F32 || t->dtype == MT_BF16 || t->dtype == MT_F16 || (quant_ok && mt_dtype_is_quant(t->dtype)))
        return MT_OK;
    return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s, expected F32, BF16 or F16%s", t->file,
                      name, mt_dtype_name(t->dtype), quant_ok ? " or a GGUF quantized type" : "");
}

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
    /* matrices may be quantized (GGUF): the linear and embedding ops read the blocks */
    if ((st = float_dtype(t, name, t->ndim == 2, err))) return st;
    int64_t shape[2] = {rows, cols};
    *out = mt_tensor_wrap(t->dtype, 2, shape, t->data);
    return mt_weight_register(m, name, out, err);
}

mt_status mt_weight_stack(mt_model *m, const char *name, int64_t n, int64_t rows, int64_t cols, mt_tensor *out,
                          mt_err *err) {
    const mt_st_tensor *t;
    mt_status st = mt_safetensors_get(m->st, name, &t, err);
    if (st) return st;
    char buf[128];
    if (t->ndim != 3 || t->shape[0] != n || t->shape[1] != rows || t->shape[2] != cols)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\" has shape %s, expected [%lld, %lld, %lld]", t->file,
                          name, shape_str(t, buf, sizeof buf), (long long)n, (long long)rows, (long long)cols);
    if ((st = float_dtype(t, name, false, err))) return st;
    *out = mt_tensor_wrap(t->dtype, 2, (int64_t[]){n * rows, cols}, t->data);
    st = mt_weight_register(m, name, out, err);
    if (!st) mt_weight_find(m, name)->training = MT_WEIGHT_FROZEN;
    return st;
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
    if ((st = float_dtype(t, name, false, err))) return st;
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **grown = mt_realloc(m->owned, cap * sizeof *grown);
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

bool mt_model_is_eos(const mt_model *m, int32_t token) {
    for (size_t i = 0; i < m->desc.n_eos; i++)
        if (m->desc.eos_ids[i] == token) return true;
    return false;
}
