/* base/json: typed field access with messages naming the file and the field. */
#include "base/json.h"

#include <math.h>

#include "base/file.h"

mt_status mt_json_parse(const char *text, size_t len, const char *what, cJSON **out, mt_err *err) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        size_t off = end ? (size_t)(end - text) : 0;
        if (off > len) off = len;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return mt_err_set(err, MT_ERR_FORMAT, "%s: invalid JSON near line %zu, column %zu", what, line, col);
    }
    *out = j;
    return MT_OK;
}

mt_status mt_json_parse_file(const char *path, size_t max_size, cJSON **out, mt_err *err) {
    char *text;
    size_t len;
    mt_status st = mt_file_read_all(path, max_size, &text, &len, err);
    if (st) return st;
    st = mt_json_parse(text, len, path, out, err);
    mt_free(text);
    return st;
}

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static mt_status get_int(const cJSON *v, const char *key, const char *what, int64_t lo, int64_t hi, int64_t *out,
                         mt_err *err) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be an integer", what, key);
    double d = v->valuedouble;
    if (d < (double)lo || d > (double)hi)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" = %.17g is outside [%lld, %lld]", what, key, d,
                          (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return MT_OK;
}

mt_status mt_json_int_req(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                          int64_t *out, mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"%s\"", what, key);
    return get_int(v, key, what, lo, hi, out, err);
}

mt_status mt_json_int_opt(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                          int64_t *out, mt_err *err) {
    const cJSON *v = field(obj, key);
    return v ? get_int(v, key, what, lo, hi, out, err) : MT_OK;
}

static mt_status get_num(const cJSON *v, const char *key, const char *what, double lo, double hi, double *out,
                         mt_err *err) {
    if (!cJSON_IsNumber(v)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be a number", what, key);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" = %g is outside [%g, %g]", what, key, d, lo, hi);
    *out = d;
    return MT_OK;
}

mt_status mt_json_num_req(const cJSON *obj, const char *key, const char *what, double lo, double hi, double *out,
                          mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"%s\"", what, key);
    return get_num(v, key, what, lo, hi, out, err);
}

mt_status mt_json_num_opt(const cJSON *obj, const char *key, const char *what, double lo, double hi, double *out,
                          mt_err *err) {
    const cJSON *v = field(obj, key);
    return v ? get_num(v, key, what, lo, hi, out, err) : MT_OK;
}

mt_status mt_json_bool_opt(const cJSON *obj, const char *key, const char *what, bool *out, mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v) return MT_OK;
    if (!cJSON_IsBool(v)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be true or false", what, key);
    *out = cJSON_IsTrue(v);
    return MT_OK;
}

mt_status mt_json_str_req(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"%s\"", what, key);
    if (!cJSON_IsString(v)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be a string", what, key);
    *out = v->valuestring;
    return MT_OK;
}

mt_status mt_json_str_opt(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v) {
        *out = NULL;
        return MT_OK;
    }
    if (!cJSON_IsString(v)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be a string", what, key);
    *out = v->valuestring;
    return MT_OK;
}

mt_status mt_json_int_array_opt(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                                int64_t *out, size_t cap, size_t *n, mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v) return MT_OK;
    if (cJSON_IsNumber(v)) {
        if (cap < 1) return mt_err_set(err, MT_ERR_LIMIT, "%s: field \"%s\" has too many values", what, key);
        *n = 1;
        return get_int(v, key, what, lo, hi, out, err);
    }
    if (!cJSON_IsArray(v))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be an integer or an array of them", what, key);
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (count > cap)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: field \"%s\" has %zu values, at most %zu allowed", what, key, count,
                          cap);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        mt_status st = get_int(e, key, what, lo, hi, &out[i++], err);
        if (st) return st;
    }
    *n = count;
    return MT_OK;
}
