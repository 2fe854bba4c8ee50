/* models/config: sticky-failure getters over base/json, and the rope block of both config generations. */
#include "models/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"

void mt_cfg_fail(mt_cfg *r, mt_status code, const char *fmt, ...) {
    if (r->st) return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->st = mt_err_set(r->err, code, "%s: %s%s%s", r->path, r->what && *r->what ? r->what : "",
                       r->what && *r->what ? ": " : "", msg);
}

/* base/json names the file in its messages; the section goes into the "what" it is given */
static const char *where(mt_cfg *r, char *buf, size_t cap) {
    if (!r->what || !*r->what) return r->path;
    snprintf(buf, cap, "%s: %s", r->path, r->what);
    return buf;
}

int64_t mt_cfg_int(mt_cfg *r, const cJSON *o, const char *key, int64_t lo, int64_t hi) {
    int64_t v = 0;
    char w[512];
    if (!r->st) r->st = mt_json_int_req(o, key, where(r, w, sizeof w), lo, hi, &v, r->err);
    return v;
}

int64_t mt_cfg_int_opt(mt_cfg *r, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t dflt) {
    int64_t v = dflt;
    char w[512];
    if (!r->st) r->st = mt_json_int_opt(o, key, where(r, w, sizeof w), lo, hi, &v, r->err);
    return v;
}

int64_t mt_cfg_int_either(mt_cfg *r, const cJSON *o, const char *a, const char *b, int64_t lo, int64_t hi,
                          int64_t dflt) {
    return mt_cfg_int_opt(r, o, a, lo, hi, mt_cfg_int_opt(r, o, b, lo, hi, dflt));
}

double mt_cfg_num_opt(mt_cfg *r, const cJSON *o, const char *key, double lo, double hi, double dflt) {
    double v = dflt;
    char w[512];
    if (!r->st) r->st = mt_json_num_opt(o, key, where(r, w, sizeof w), lo, hi, &v, r->err);
    return v;
}

bool mt_cfg_bool_opt(mt_cfg *r, const cJSON *o, const char *key, bool dflt) {
    bool v = dflt;
    char w[512];
    if (!r->st) r->st = mt_json_bool_opt(o, key, where(r, w, sizeof w), &v, r->err);
    return v;
}

const char *mt_cfg_str_opt(mt_cfg *r, const cJSON *o, const char *key, const char *dflt) {
    const char *v = NULL;
    char w[512];
    if (!r->st) r->st = mt_json_str_opt(o, key, where(r, w, sizeof w), &v, r->err);
    return v ? v : dflt;
}

size_t mt_cfg_int_list(mt_cfg *r, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out, size_t cap) {
    size_t n = 0;
    char w[512];
    if (!r->st) r->st = mt_json_int_array_opt(o, key, where(r, w, sizeof w), lo, hi, out, cap, &n, r->err);
    return r->st ? 0 : n;
}

mt_act mt_cfg_act(mt_cfg *r, const cJSON *o, const char *dflt) {
    const char *name = mt_cfg_str_opt(r, o, "hidden_act", dflt);
    mt_act act = MT_ACT_SILU;
    if (!r->st && !mt_act_parse(name, &act)) {
        char known[256];
        mt_act_list(known, sizeof known);
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "field \"hidden_act\" = \"%.60s\" is not supported (accepted: %s)", name,
                    known);
    }
    return act;
}

/* Informative only (weights carry their own dtype), but a value no checkpoint can have is a broken config. */
void mt_cfg_dtype(mt_cfg *r, const cJSON *o) {
    static const char *const known[] = {"float32", "bfloat16", "float16"};
    const char *keys[] = {"torch_dtype", "dtype"};
    for (int k = 0; k < 2 && !r->st; k++) {
        const char *v = mt_cfg_str_opt(r, o, keys[k], NULL);
        bool ok = !v;
        for (size_t i = 0; i < MT_ARRAY_LEN(known) && !ok; i++) ok = strcmp(v, known[i]) == 0;
        if (!r->st && !ok)
            mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "field \"%s\" = \"%.60s\" is not supported (accepted: float32, "
                        "bfloat16, float16)", keys[k], v);
    }
}

const cJSON *mt_cfg_section(const cJSON *cfg, const char *key, bool flat_ok) {
    if (!key) return cfg;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(s)) return s;
    return flat_ok ? cfg : NULL;
}

static bool has(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v);
}

/* The rope block as transformers' PreTrainedConfig reads it (convert_rope_params_to_dict, standardize_rope_params,
 * validate_rope of 5.0): rope_scaling when it is a non-empty object, else rope_parameters; rope_theta from the block,
 * else the top level, else 10000; "type" for "rope_type"; "mrope" is "default" (Qwen2VLTextConfig). Required keys
 * (transformers raises KeyError): factor for linear, dynamic and yarn, and low_freq_factor / high_freq_factor with it
 * for llama3. original_max_position_embeddings of yarn and llama3 comes from the top level when there (standardize
 * puts it over the block's), else the block, else max_position_embeddings; dynamic reads max_position_embeddings
 * only. Refused besides (transformers warns or computes nonsense): partial_rotary_factor other than 1 (mitten
 * rotates whole heads), factor < 1, llama3 high_freq_factor <= low_freq_factor, yarn beta_fast < beta_slow,
 * mrope_section of other than 3 values or not summing to head_dim / 2, and the types transformers has that mitten
 * has not (longrope). */
void mt_cfg_rope(mt_cfg *r, const cJSON *text, int64_t head_dim, int64_t max_positions, mt_rope_cfg *out) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(text, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(text, "rope_scaling");
    *out = (mt_rope_cfg){.type = MT_ROPE_DEFAULT, .dim = head_dim, .factor = 1.0, .yarn_truncate = true,
                         .beta_fast = 32.0, .beta_slow = 1.0, .original_max = max_positions};
    out->theta = mt_cfg_num_opt(r, text, "rope_theta", 1e-3, 1e15, 10000.0);
    double partial = mt_cfg_num_opt(r, text, "partial_rotary_factor", 0.0, 1.0, 1.0);
    bool use_rs = cJSON_IsObject(rs) && rs->child;
    const cJSON *src = use_rs ? rs : cJSON_IsObject(rp) ? rp : NULL;
    /* messages name the block: "config.json: text_config.rope_scaling: field ..." */
    const char *what = r->what;
    char block[128];
    if (src) {
        const char *name = use_rs ? "rope_scaling" : "rope_parameters";
        snprintf(block, sizeof block, "%s%s%s", what && *what ? what : "", what && *what ? "." : "", name);
        r->what = block;
        out->theta = mt_cfg_num_opt(r, src, "rope_theta", 1e-3, 1e15, out->theta);
        partial = mt_cfg_num_opt(r, src, "partial_rotary_factor", 0.0, 1.0, partial);
    }
    if (!r->st && partial != 1.0) {
        if (!(src && has(src, "partial_rotary_factor"))) r->what = what;
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "partial_rotary_factor %g is not supported (mitten rotates whole heads)",
                    partial);
    }
    if (src && !r->st) {
        const char *type = mt_cfg_str_opt(r, src, "rope_type", mt_cfg_str_opt(r, src, "type", "default"));
        if (!r->st && !mt_rope_type_parse(type, &out->type))
            mt_cfg_fail(r, MT_ERR_UNSUPPORTED,
                        "rope type \"%s\" is not supported (default, mrope, linear, dynamic, yarn, llama3)", type);
        mt_rope_type t = out->type;
        const char *need[3] = {t == MT_ROPE_DEFAULT ? NULL : "factor", t == MT_ROPE_LLAMA3 ? "low_freq_factor" : NULL,
                               t == MT_ROPE_LLAMA3 ? "high_freq_factor" : NULL};
        for (int i = 0; i < 3 && !r->st; i++)
            if (need[i] && !has(src, need[i]))
                mt_cfg_fail(r, MT_ERR_FORMAT, "field \"%s\" is required for rope type \"%s\"", need[i], type);
        if (t != MT_ROPE_DEFAULT) out->factor = mt_cfg_num_opt(r, src, "factor", 1.0, 1e6, 1.0);
        if (t == MT_ROPE_YARN || t == MT_ROPE_LLAMA3) {
            const char *k = "original_max_position_embeddings";
            out->original_max = has(text, k) ? mt_cfg_int_opt(r, text, k, 1, INT64_C(1) << 40, max_positions)
                                             : mt_cfg_int_opt(r, src, k, 1, INT64_C(1) << 40, max_positions);
        }
        if (t == MT_ROPE_LLAMA3) {
            out->low_freq_factor = mt_cfg_num_opt(r, src, "low_freq_factor", 1e-6, 1e6, 0.0);
            out->high_freq_factor = mt_cfg_num_opt(r, src, "high_freq_factor", 1e-6, 1e6, 0.0);
        }
        if (t == MT_ROPE_YARN) {
            out->beta_fast = mt_cfg_num_opt(r, src, "beta_fast", 1e-6, 1e6, out->beta_fast);
            out->beta_slow = mt_cfg_num_opt(r, src, "beta_slow", 1e-6, 1e6, out->beta_slow);
            out->attention_factor = mt_cfg_num_opt(r, src, "attention_factor", 1e-6, 1e6, 0.0);
            out->mscale = mt_cfg_num_opt(r, src, "mscale", 0.0, 1e6, 0.0);
            out->mscale_all_dim = mt_cfg_num_opt(r, src, "mscale_all_dim", 0.0, 1e6, 0.0);
            out->yarn_truncate = mt_cfg_bool_opt(r, src, "truncate", true);
        }
        out->interleaved = mt_cfg_bool_opt(r, src, "mrope_interleaved", false);
        int64_t sec[4] = {0};
        size_t n = mt_cfg_int_list(r, src, "mrope_section", 0, 1 << 16, sec, 4);
        if (!r->st && n && n != 3)
            mt_cfg_fail(r, MT_ERR_FORMAT, "field \"mrope_section\" must have 3 values, it has %zu", n);
        memcpy(out->sections, sec, sizeof out->sections);
    }
    char msg[200];
    if (!r->st && !mt_rope_cfg_check(out, msg, sizeof msg)) mt_cfg_fail(r, MT_ERR_FORMAT, "%s", msg);
    r->what = what;
}
