/* base/json: cJSON plus typed getters whose errors name the file and the field.
 *
 *     cJSON *cfg;  mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
 *     int64_t h;   mt_json_int(cfg, "hidden_size", path, 1, 1 << 20, &h, err);
 *
 * A missing field is an error for the *_req getters; the *_opt getters leave *out untouched when the field is
 * absent or null, and still fail when it is present with the wrong type or out of range.
 *
 * U+0000 in strings. cJSON holds strings NUL-terminated, so mt_json_parse hands it each \u0000 escape as the two
 * bytes C0 80 (Java's "modified UTF-8"). Those bytes never occur in the text itself, which must be valid UTF-8, so
 * the mapping is exact. Strings of a parsed tree (values and keys) keep that form; it survives cJSON_Duplicate,
 * strcmp and strstr, and only these turn it back:
 *
 *   | mt_json_decode / mt_json_dup        | the bytes, each C0 80 a 0 byte, with their count               |
 *   | mt_json_print                       | JSON text, U+0000 written as \u0000 (as Python's json.dumps)    |
 *   | mt_json_str_req / _opt              | refuse a string with U+0000 (a C string cannot hold it)        |
 *   | mt_json_raw_req / _opt              | the stored form, for callers that decode it themselves         |
 *
 * Errors of mt_json_parse name the problem and where it is as line:column (columns count characters from 1, as
 * Python's json does): invalid JSON (the character found, or that the text ends), text after the value, invalid
 * UTF-8, a raw NUL byte, an invalid escape, a lone surrogate escape, a string not closed, and nesting deeper than
 * MT_JSON_MAX_DEPTH. When there are several, the first in the text is named.
 */
#ifndef MT_JSON_H
#define MT_JSON_H

#include <cjson/cJSON.h>

#include "base/base.h"

#define MT_JSON_MAX_FILE ((size_t)64 << 20)
/* cJSON's own limit on nested arrays and objects, checked before cJSON sees the text so that it can be named. */
#define MT_JSON_MAX_DEPTH CJSON_NESTING_LIMIT

mt_status mt_json_parse_file(const char *path, size_t max_size, cJSON **out, mt_err *err);
/* The whole of text[0, len) must be one JSON value (whitespace around it allowed). Messages begin "what: ". */
mt_status mt_json_parse(const char *text, size_t len, const char *what, cJSON **out, mt_err *err);
/* As mt_json_parse for text that starts on line first_line of a larger file, so that messages name that file's
 * lines; what may be NULL, and then the message starts with the problem. */
mt_status mt_json_parse_from(const char *text, size_t len, const char *what, size_t first_line, cJSON **out,
                             mt_err *err);

/* Whether s, a string of a tree from mt_json_parse, holds U+0000. */
bool mt_json_has_nul(const char *s);
/* The bytes of s (a string of a tree from mt_json_parse) written to dst, which has room for strlen(s) bytes and may
 * be s itself; returns their count. No terminator is written. */
size_t mt_json_decode(const char *s, char *dst);
/* The bytes of s as mt_json_decode gives them, in a copy from mt_malloc with a 0 after the last; *n gets their count.
 * NULL when out of memory. */
char *mt_json_dup(const char *s, size_t *n);
/* A string item holding bytes s [n], a 0 byte among them kept (as mt_json_parse keeps U+0000, for mt_json_print);
 * NULL when out of memory. */
cJSON *mt_json_string_n(const char *s, size_t n);
/* cJSON_Print (formatted) or cJSON_PrintUnformatted, with U+0000 written as \u0000; from mt_malloc, NULL when out of
 * memory. */
char *mt_json_print(const cJSON *item, bool formatted);

mt_status mt_json_int_req(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                          int64_t *out, mt_err *err);
mt_status mt_json_int_opt(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                          int64_t *out, mt_err *err);
mt_status mt_json_num_req(const cJSON *obj, const char *key, const char *what, double lo, double hi, double *out,
                          mt_err *err);
mt_status mt_json_num_opt(const cJSON *obj, const char *key, const char *what, double lo, double hi, double *out,
                          mt_err *err);
mt_status mt_json_bool_opt(const cJSON *obj, const char *key, const char *what, bool *out, mt_err *err);
/* *out points into obj; NULL when absent (opt). A string holding U+0000 is refused, naming the field. */
mt_status mt_json_str_req(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err);
mt_status mt_json_str_opt(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err);
/* As mt_json_str_*, keeping U+0000 in its stored form (C0 80) for mt_json_decode. */
mt_status mt_json_raw_req(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err);
mt_status mt_json_raw_opt(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err);
/* An array of integers (at most cap of them, each in [lo, hi]); *n gets the count. A lone integer counts as an
 * array of one (generation_config's eos_token_id is either). */
mt_status mt_json_int_array_opt(const cJSON *obj, const char *key, const char *what, int64_t lo, int64_t hi,
                                int64_t *out, size_t cap, size_t *n, mt_err *err);

#endif
