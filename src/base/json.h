/* base/json: cJSON plus typed getters whose errors name the file and the field.
 *
 *     cJSON *cfg;  mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
 *     int64_t h;   mt_json_int(cfg, "hidden_size", path, 1, 1 << 20, &h, err);
 *
 * A missing field is an error for the *_req getters; the *_opt getters leave *out untouched when the field is
 * absent or null, and still fail when it is present with the wrong type or out of range.
 */
#ifndef MT_JSON_H
#define MT_JSON_H

#include <cjson/cJSON.h>

#include "base/base.h"

#define MT_JSON_MAX_FILE ((size_t)64 << 20)

mt_status mt_json_parse_file(const char *path, size_t max_size, cJSON **out, mt_err *err);
mt_status mt_json_parse(const char *text, size_t len, const char *what, cJSON **out, mt_err *err);

mt_status mt_json_int_req(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                          int64_t *out, mt_err *err);
mt_status mt_json_int_opt(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                          int64_t *out, mt_err *err);
mt_status mt_json_num_req(const cJSON *obj, const char *key, const char *what, double lo, double hi, double *out,
                          mt_err *err);
mt_status mt_json_num_opt(const cJSON *obj, const char *key, const char *what, double lo, double hi, double *out,
                          mt_err *err);
mt_status mt_json_bool_opt(const cJSON *obj, const char *key, const char *what, bool *out, mt_err *err);
/* *out points into obj; NULL when absent (opt). */
mt_status mt_json_str_req(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err);
mt_status mt_json_str_opt(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err);
/* An array of integers (at most cap of them, each in [lo, hi]); *n gets the count. A lone integer counts as an
 * array of one (generation_config's eos_token_id is either). */
mt_status mt_json_int_array_opt(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                                int64_t *out, size_t cap, size_t *n, mt_err *err);

#endif
