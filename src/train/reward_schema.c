/* train/reward_schema: JSON Schema (draft 2020-12 meanings) for the json reward, the keywords reward.h lists.
 * mt_schema_check runs once when the reward is made, so that mt_schema_valid can trust the schema's shape. "pattern"
 * is matched by PCRE2, close to the ECMA-262 regexes the standard names for the patterns schemas use.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "train/reward.h"

static const char *const ignored_keys[] = {"title", "description", "$schema", "$id", "default", "examples",
                                           "$comment"};
static const char *const type_names[] = {"null", "boolean", "object", "array", "number", "string", "integer"};

static bool is_type_name(const char *s) {
    for (size_t i = 0; i < MT_ARRAY_LEN(type_names); i++)
        if (strcmp(s, type_names[i]) == 0) return true;
    return false;
}

static bool is_count(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e15 && floor(v->valuedouble) == v->valuedouble;
}

static pcre2_code *compile(const char *pattern, int *code, PCRE2_SIZE *at) {
    return pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, code, at, NULL);
}

static mt_status check_at(const cJSON *s, const char *what, const char *path, int depth, mt_err *err);

static mt_status check_list(const cJSON *v, const char *what, const char *path, const char *key, int depth,
                            mt_err *err) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/%s must be a non-empty array of schemas", what, path, key);
    char sub[256];
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        snprintf(sub, sizeof sub, "%s/%s/%d", path, key, i);
        mt_status st = check_at(e, what, sub, depth + 1, err);
        if (st) return st;
    }
    return MT_OK;
}

static mt_status check_at(const cJSON *s, const char *what, const char *path, int depth, mt_err *err) {
    if (cJSON_IsBool(s)) return MT_OK;
    if (!cJSON_IsObject(s)) return mt_err_set(err, MT_ERR_FORMAT, "%s: %s is not a schema (an object or a boolean)",
                                              what, *path ? path : "the root");
    if (depth > 64) return mt_err_set(err, MT_ERR_FORMAT, "%s: %s nests schemas more than 64 deep", what, path);
    char sub[256];
    for (const cJSON *k = s->child; k; k = k->next) {
        const char *key = k->string;
        bool ignored = false;
        for (size_t i = 0; i < MT_ARRAY_LEN(ignored_keys); i++) ignored |= strcmp(key, ignored_keys[i]) == 0;
        if (ignored) continue;
        if (strcmp(key, "type") == 0) {
            bool ok = cJSON_IsString(k) && is_type_name(k->valuestring);
            if (cJSON_IsArray(k)) {
                ok = cJSON_GetArraySize(k) > 0;
                for (const cJSON *e = k->child; e; e = e->next) ok &= cJSON_IsString(e) && is_type_name(e->valuestring);
            }
            if (!ok)
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/type must be one of null, boolean, object, array, "
                                  "number, string, integer, or an array of them", what, path);
        } else if (strcmp(key, "enum") == 0) {
            if (!cJSON_IsArray(k)) return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/enum must be an array", what, path);
        } else if (strcmp(key, "const") == 0) {
        } else if (strcmp(key, "properties") == 0) {
            if (!cJSON_IsObject(k))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/properties must be an object", what, path);
            for (const cJSON *p = k->child; p; p = p->next) {
                snprintf(sub, sizeof sub, "%s/properties/%s", path, p->string);
                mt_status st = check_at(p, what, sub, depth + 1, err);
                if (st) return st;
            }
        } else if (strcmp(key, "required") == 0) {
            bool ok = cJSON_IsArray(k);
            for (const cJSON *e = ok ? k->child : NULL; e; e = e->next) ok &= cJSON_IsString(e);
            if (!ok)
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/required must be an array of strings", what, path);
        } else if (strcmp(key, "additionalProperties") == 0 || strcmp(key, "items") == 0 ||
                   strcmp(key, "not") == 0) {
            snprintf(sub, sizeof sub, "%s/%s", path, key);
            mt_status st = check_at(k, what, sub, depth + 1, err);
            if (st) return st;
        } else if (strcmp(key, "anyOf") == 0 || strcmp(key, "oneOf") == 0 || strcmp(key, "allOf") == 0) {
            mt_status st = check_list(k, what, path, key, depth, err);
            if (st) return st;
        } else if (strcmp(key, "minItems") == 0 || strcmp(key, "maxItems") == 0 || strcmp(key, "minLength") == 0 ||
                   strcmp(key, "maxLength") == 0) {
            if (!is_count(k))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/%s must be a whole number >= 0", what, path, key);
        } else if (strcmp(key, "minimum") == 0 || strcmp(key, "maximum") == 0 ||
                   strcmp(key, "exclusiveMinimum") == 0 || strcmp(key, "exclusiveMaximum") == 0) {
            if (!cJSON_IsNumber(k))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/%s must be a number", what, path, key);
        } else if (strcmp(key, "pattern") == 0) {
            if (!cJSON_IsString(k))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/pattern must be a string", what, path);
            int code;
            PCRE2_SIZE at;
            pcre2_code *re = compile(k->valuestring, &code, &at);
            if (!re) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(code, msg, sizeof msg);
                return mt_err_set(err, MT_ERR_FORMAT, "%s: %s/pattern \"%s\": %s at offset %zu", what, path,
                                  k->valuestring, (const char *)msg, (size_t)at);
            }
            pcre2_code_free(re);
        } else {
            return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: %s uses the keyword \"%s\", which the json reward does "
                              "not check (it checks: type, enum, const, properties, required, additionalProperties, "
                              "items, minItems, maxItems, minLength, maxLength, pattern, minimum, maximum, "
                              "exclusiveMinimum, exclusiveMaximum, anyOf, oneOf, allOf, not)",
                              what, *path ? path : "the root", key);
        }
    }
    return MT_OK;
}

mt_status mt_schema_check(const cJSON *schema, const char *what, mt_err *err) {
    return check_at(schema, what, "", 0, err);
}

static bool has_type(const cJSON *v, const char *type) {
    if (strcmp(type, "null") == 0) return cJSON_IsNull(v);
    if (strcmp(type, "boolean") == 0) return cJSON_IsBool(v);
    if (strcmp(type, "object") == 0) return cJSON_IsObject(v);
    if (strcmp(type, "array") == 0) return cJSON_IsArray(v);
    if (strcmp(type, "number") == 0) return cJSON_IsNumber(v);
    if (strcmp(type, "string") == 0) return cJSON_IsString(v);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble;
}

/* Code points in a valid UTF-8 string: the bytes that do not continue a character. */
static size_t code_points(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool pattern_matches(const char *pattern, const char *s) {
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = compile(pattern, &code, &at);
    pcre2_match_data *md = re ? pcre2_match_data_create(1, NULL) : NULL;
    pcre2_match_context *mc = md ? pcre2_match_context_create(NULL) : NULL;
    bool hit = false;
    if (mc) {
        pcre2_set_match_limit(mc, 1000000);
        hit = pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, mc) >= 0;
    }
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return hit;
}

static bool valid_at(const cJSON *s, const cJSON *v, int depth) {
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s);
    if (depth > 64) return false;
    const cJSON *k;
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "type"))) {
        bool any = false;
        if (cJSON_IsString(k)) any = has_type(v, k->valuestring);
        for (const cJSON *e = cJSON_IsArray(k) ? k->child : NULL; e; e = e->next) any |= has_type(v, e->valuestring);
        if (!any) return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
        bool any = false;
        for (const cJSON *e = k->child; e && !any; e = e->next) any = cJSON_Compare(e, v, true);
        if (!any) return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "const")) && !cJSON_Compare(k, v, true)) return false;
    if (cJSON_IsObject(v)) {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
        const cJSON *extra = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
        for (const cJSON *m = v->child; m; m = m->next) {
            const cJSON *p = props ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
            if (p ? !valid_at(p, m, depth + 1) : extra && !valid_at(extra, m, depth + 1)) return false;
        }
        for (const cJSON *r = (k = cJSON_GetObjectItemCaseSensitive(s, "required")) ? k->child : NULL; r; r = r->next)
            if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring)) return false;
    }
    if (cJSON_IsArray(v)) {
        double n = cJSON_GetArraySize(v);
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "minItems")) && n < k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "maxItems")) && n > k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "items")))
            for (const cJSON *e = v->child; e; e = e->next)
                if (!valid_at(k, e, depth + 1)) return false;
    }
    if (cJSON_IsString(v)) {
        /* Lengths count characters (code points), as the standard says. */
        double n = (double)code_points(v->valuestring);
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "minLength")) && n < k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "maxLength")) && n > k->valuedouble) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "pattern")) && !pattern_matches(k->valuestring, v->valuestring))
            return false;
    }
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "minimum")) && !(x >= k->valuedouble)) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "maximum")) && !(x <= k->valuedouble)) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum")) && !(x > k->valuedouble)) return false;
        if ((k = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum")) && !(x < k->valuedouble)) return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "allOf")))
        for (const cJSON *e = k->child; e; e = e->next)
            if (!valid_at(e, v, depth + 1)) return false;
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "anyOf"))) {
        bool any = false;
        for (const cJSON *e = k->child; e && !any; e = e->next) any = valid_at(e, v, depth + 1);
        if (!any) return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "oneOf"))) {
        int hits = 0;
        for (const cJSON *e = k->child; e && hits < 2; e = e->next) hits += valid_at(e, v, depth + 1);
        if (hits != 1) return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "not")) && valid_at(k, v, depth + 1)) return false;
    return true;
}

bool mt_schema_valid(const cJSON *schema, const cJSON *value) { return valid_at(schema, value, 0); }
