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

const cJSON *mt_cfg_section(const cJSON *cfg, const char *key, bool flat_ok) {
    if (!key) return cfg;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(s)) return s;
    return flat_ok ? cfg : NULL;
}

void mt_cfg_rope(mt_cfg *r, const cJSON *text, int64_t head_dim, int64_t max_positions, mt_rope_cfg *out) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(text, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(text, "rope_scaling");
    *out = (mt_rope_cfg){.type = MT_ROPE_DEFAULT, .dim = head_dim, .factor = 1.0, .yarn_truncate = true,
                         .beta_fast = 32.0, .beta_slow = 1.0, .low_freq_factor = 1.0, .high_freq_factor = 4.0};
    out->theta = mt_cfg_num_opt(r, text, "rope_theta", 1e-3, 1e15, 10000.0);
    const cJSON *src = cJSON_IsObject(rp) ? rp : cJSON_IsObject(rs) ? rs : NULL;
    if (!src || r->st) {
        char msg[200];
        if (!r->st && !mt_rope_cfg_check(out, msg, sizeof msg)) mt_cfg_fail(r, MT_ERR_FORMAT, "%s", msg);
        return;
    }
    out->theta = mt_cfg_num_opt(r, src, "rope_theta", 1e-3, 1e15, out->theta);
    const char *type = mt_cfg_str_opt(r, src, "rope_type", mt_cfg_str_opt(r, src, "type", "default"));
    if (r->st) return;
    if (!mt_rope_type_parse(type, &out->type)) {
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "rope type \"%s\" is not supported (default, mrope, linear, dynamic, yarn, "
                    "llama3)", type);
        return;
    }
    out->factor = mt_cfg_num_opt(r, src, "factor", 1.0, 1e6, 1.0);
    out->original_max = mt_cfg_int_opt(r, src, "original_max_position_embeddings", 1, INT64_C(1) << 40,
                                       max_positions);
    out->low_freq_factor = mt_cfg_num_opt(r, src, "low_freq_factor", 1e-6, 1e6, out->low_freq_factor);
    out->high_freq_factor = mt_cfg_num_opt(r, src, "high_freq_factor", 1e-6, 1e6, out->high_freq_factor);
    out->beta_fast = mt_cfg_num_opt(r, src, "beta_fast", 1e-6, 1e6, out->beta_fast);
    out->beta_slow = mt_cfg_num_opt(r, src, "beta_slow", 1e-6, 1e6, out->beta_slow);
    out->attention_factor = mt_cfg_num_opt(r, src, "attention_factor", 1e-6, 1e6, 0.0);
    out->yarn_truncate = mt_cfg_bool_opt(r, src, "truncate", true);
    out->interleaved = mt_cfg_bool_opt(r, src, "mrope_interleaved", false);
    int64_t sec[4] = {0};
    size_t n = mt_cfg_int_list(r, src, "mrope_section", 0, 1 << 16, sec, 4);
    if (r->st) return;
    if (n && n != 3) {
        mt_cfg_fail(r, MT_ERR_FORMAT, "field \"mrope_section\" must have 3 values, it has %zu", n);
        return;
    }
    memcpy(out->sections, sec, sizeof out->sections);
    char msg[200];
    if (!mt_rope_cfg_check(out, msg, sizeof msg)) mt_cfg_fail(r, MT_ERR_FORMAT, "%s", msg);
}
