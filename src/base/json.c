/* base/json: a checking pass over JSON text before cJSON reads it, the U+0000 encoding drawn in json.h, and typed
 * field access with messages naming the file and the field.
 *
 * The pass follows RFC 8259's grammar, as Python's json does, with cJSON's leniency kept where files rely on it:
 * control characters inside strings are taken as they are. It names the first problem in the text; cJSON's own
 * error pointer is not used for that, since it stops one byte past a missing key and at the last byte when the
 * text ends early.
 */
#include "base/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"

/* --- the checking pass ---------------------------------------------------------------------------------------- */

typedef struct lexer {
    const char *t;
    size_t len, i;
    size_t n_nul;   /* \u0000 escapes seen */
    size_t bad;     /* where the problem starts */
    char head[64];  /* what the problem is, before "at line L, column C" */
    char tail[112]; /* what follows the position */
} lexer;

static bool fail(lexer *x, size_t at, const char *head, const char *tail_fmt, ...) MT_PRINTF(4, 5);
static bool fail(lexer *x, size_t at, const char *head, const char *tail_fmt, ...) {
    x->bad = at;
    snprintf(x->head, sizeof x->head, "%s", head);
    va_list ap;
    va_start(ap, tail_fmt);
    vsnprintf(x->tail, sizeof x->tail, tail_fmt, ap);
    va_end(ap);
    return false;
}

/* The length of the valid UTF-8 sequence at s (overlong forms, surrogates and code points past U+10FFFF are not);
 * 0 when there is none. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return k;
}

static bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(lexer *x) { return x->i < x->len && x->t[x->i] >= '0' && x->t[x->i] <= '9'; }

static void skip_space(lexer *x) {
    while (x->i < x->len && is_space(x->t[x->i])) x->i++;
}

/* A byte that does not belong at x->i: named as a NUL byte or invalid UTF-8 when it is one, else as what was
 * expected and what is there instead. */
static bool unexpected(lexer *x, const char *expected) {
    size_t at = x->i;
    if (at >= x->len) return fail(x, at, "invalid JSON", ": expected %s, found the end of the text", expected);
    const unsigned char *s = (const unsigned char *)x->t + at;
    size_t k = utf8_len(s, x->len - at);
    if (*s == 0) return fail(x, at, "a NUL byte", " (inside a string, write U+0000 as \\u0000)");
    if (!k) return fail(x, at, "invalid UTF-8", " (byte 0x%02x)", *s);
    if (k == 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        return fail(x, at, "invalid JSON", ": expected %s, found a byte order mark (U+FEFF)", expected);
    if (*s < 0x20 || *s == 0x7F)
        return fail(x, at, "invalid JSON", ": expected %s, found the control character 0x%02x", expected, *s);
    return fail(x, at, "invalid JSON", ": expected %s, found '%.*s'", expected, (int)k, (const char *)s);
}

static int hex4(const lexer *x, size_t at) {
    if (at > x->len || x->len - at < 4) return -1;
    int v = 0;
    for (size_t i = at; i < at + 4; i++) {
        char c = x->t[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The escape at x->i (a backslash inside a string); moves past it. */
static bool escape(lexer *x) {
    size_t at = x->i;
    if (at + 1 >= x->len) return fail(x, at, "invalid escape", ": the text ends after the backslash");
    char e = x->t[at + 1];
    char head[sizeof x->head];
    if (e != 'u') {
        x->i += 2;
        if (e && strchr("\"\\/bfnrt", e)) return true;
        if ((unsigned char)e >= 0x21 && (unsigned char)e < 0x7F) {
            snprintf(head, sizeof head, "invalid escape \\%c", e);
            return fail(x, at, head, " (JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
        }
        return fail(x, at, "invalid escape", " (a backslash before byte 0x%02x)", (unsigned char)e);
    }
    int v = hex4(x, at + 2);
    if (v < 0) {
        size_t n = 2;
        while (n < 6 && at + n < x->len && is_alnum(x->t[at + n])) n++;
        snprintf(head, sizeof head, "invalid escape %.*s", (int)n, x->t + at);
        return fail(x, at, head, " (\\u takes four hexadecimal digits)");
    }
    x->i += 6;
    if (v == 0) x->n_nul++;
    if (v >= 0xDC00 && v <= 0xDFFF) {
        snprintf(head, sizeof head, "lone surrogate %.6s", x->t + at);
        return fail(x, at, head, ": a low surrogate without a high surrogate before it");
    }
    if (v < 0xD800 || v > 0xDBFF) return true;
    int w = x->i + 1 < x->len && x->t[x->i] == '\\' && x->t[x->i + 1] == 'u' ? hex4(x, x->i + 2) : -1;
    if (w < 0xDC00 || w > 0xDFFF) {
        snprintf(head, sizeof head, "lone surrogate %.6s", x->t + at);
        return fail(x, at, head, ": a high surrogate not followed by a low surrogate (\\udc00 to \\udfff)");
    }
    x->i += 6;
    return true;
}

static bool string(lexer *x) {
    size_t start = x->i++;
    while (x->i < x->len) {
        const unsigned char *s = (const unsigned char *)x->t + x->i;
        if (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') { /* most of any text */
            x->i++;
            continue;
        }
        if (*s == '"') {
            x->i++;
            return true;
        }
        if (*s == '\\') {
            if (!escape(x)) return false;
            continue;
        }
        if (*s == 0) return fail(x, x->i, "a NUL byte", " in a string (write U+0000 as \\u0000)");
        size_t k = utf8_len(s, x->len - x->i);
        if (!k) return fail(x, x->i, "invalid UTF-8", " (byte 0x%02x)", *s);
        x->i += k;
    }
    return fail(x, start, "string not closed", " (the text ends inside it)");
}

static bool digits(lexer *x) {
    if (!is_digit(x)) return unexpected(x, "a digit");
    while (is_digit(x)) x->i++;
    return true;
}

static bool number(lexer *x) {
    if (x->t[x->i] == '-') x->i++;
    if (x->i < x->len && x->t[x->i] == '0') x->i++;
    else if (!digits(x)) return false;
    if (x->i < x->len && x->t[x->i] == '.' && (x->i++, !digits(x))) return false;
    if (x->i < x->len && (x->t[x->i] == 'e' || x->t[x->i] == 'E')) {
        x->i++;
        if (x->i < x->len && (x->t[x->i] == '+' || x->t[x->i] == '-')) x->i++;
        return digits(x);
    }
    return true;
}

static bool value(lexer *x, int depth);

/* An array or object at x->i, itself at nesting depth. */
static bool container(lexer *x, int depth) {
    bool object = x->t[x->i] == '{';
    char close = object ? '}' : ']';
    if (depth >= MT_JSON_MAX_DEPTH) {
        char head[sizeof x->head];
        snprintf(head, sizeof head, "nesting deeper than %d levels", MT_JSON_MAX_DEPTH);
        return fail(x, x->i, head, " (arrays and objects inside each other)");
    }
    x->i++;
    skip_space(x);
    if (x->i < x->len && x->t[x->i] == close) return x->i++, true;
    for (;;) {
        if (object) {
            skip_space(x);
            if (x->i >= x->len || x->t[x->i] != '"') return unexpected(x, "a key in double quotes");
            if (!string(x)) return false;
            skip_space(x);
            if (x->i >= x->len || x->t[x->i] != ':') return unexpected(x, "':' after the key");
            x->i++;
        }
        if (!value(x, depth + 1)) return false;
        skip_space(x);
        if (x->i < x->len && x->t[x->i] == ',') {
            x->i++;
            continue;
        }
        if (x->i < x->len && x->t[x->i] == close) return x->i++, true;
        return unexpected(x, object ? "',' or '}'" : "',' or ']'");
    }
}

static bool word(lexer *x, const char *w) {
    size_t n = strlen(w);
    if (x->len - x->i < n || memcmp(x->t + x->i, w, n) != 0) return unexpected(x, "a value");
    x->i += n;
    return true;
}

static bool value(lexer *x, int depth) {
    skip_space(x);
    if (x->i >= x->len) return unexpected(x, "a value");
    char c = x->t[x->i];
    if (c == '{' || c == '[') return container(x, depth);
    if (c == '"') return string(x);
    if (c == '-' || (c >= '0' && c <= '9')) return number(x);
    if (c == 't') return word(x, "true");
    if (c == 'f') return word(x, "false");
    if (c == 'n') return word(x, "null");
    return unexpected(x, "a value");
}

static bool check(lexer *x) {
    if (!value(x, 0)) return false;
    skip_space(x);
    if (x->i == x->len) return true;
    const unsigned char *s = (const unsigned char *)x->t + x->i;
    if (*s && utf8_len(s, x->len - x->i)) return fail(x, x->i, "text after the JSON value", "%s", "");
    return unexpected(x, "the end of the text");
}

/* The text with each \u0000 escape as C0 80, into out (len bytes at least); returns its length. The text has passed
 * check, so every backslash in it starts a valid escape inside a string. */
static size_t encode_nul(const char *t, size_t len, char *out) {
    size_t k = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '"') in_str = !in_str;
        if (in_str && c == '\\') {
            if (t[i + 1] == 'u' && memcmp(t + i + 2, "0000", 4) == 0) {
                out[k++] = (char)0xC0;
                out[k++] = (char)0x80;
                i += 5;
                continue;
            }
            out[k++] = c;
            c = t[++i];
        }
        out[k++] = c;
    }
    return k;
}

mt_status mt_json_parse_from(const char *text, size_t len, const char *what, size_t first_line, cJSON **out,
                             mt_err *err) {
    lexer x = {.t = text, .len = len};
    bool ok = check(&x);
    char *copy = NULL;
    size_t n = len;
    if (ok && x.n_nul) {
        if (!(copy = mt_malloc(len)))
            return mt_err_set(err, MT_ERR_NOMEM, "%s%sout of memory", what ? what : "", what ? ": " : "");
        n = encode_nul(text, len, copy);
    }
    cJSON *j = ok ? cJSON_ParseWithLengthOpts(copy ? copy : text, n, NULL, 0) : NULL;
    mt_free(copy);
    if (ok && !j)
        return mt_err_set(err, MT_ERR_NOMEM, "%s%sout of memory reading %zu bytes of JSON (or a number of more than "
                          "63 characters, which cJSON cannot read)", what ? what : "", what ? ": " : "", len);
    if (j) {
        *out = j;
        return MT_OK;
    }
    size_t line = first_line, col = 1;
    for (size_t i = 0; i < x.bad && i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') line++, col = 1;
        else if ((c & 0xC0) != 0x80) col++; /* a UTF-8 continuation byte starts no character */
    }
    return mt_err_set(err, MT_ERR_FORMAT, "%s%s%s at line %zu, column %zu%s", what ? what : "", what ? ": " : "",
                      x.head, line, col, x.tail);
}

mt_status mt_json_parse(const char *text, size_t len, const char *what, cJSON **out, mt_err *err) {
    return mt_json_parse_from(text, len, what, 1, out, err);
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

/* --- U+0000 in parsed strings --------------------------------------------------------------------------------- */

bool mt_json_has_nul(const char *s) { return strstr(s, "\xC0\x80") != NULL; }

size_t mt_json_decode(const char *s, char *dst) {
    size_t k = 0;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)p[0] == 0xC0 && (unsigned char)p[1] == 0x80) dst[k++] = 0, p++;
        else dst[k++] = *p;
    }
    return k;
}

char *mt_json_dup(const char *s, size_t *n) {
    char *d = mt_malloc(strlen(s) + 1);
    if (!d) return NULL;
    *n = mt_json_decode(s, d);
    d[*n] = 0;
    return d;
}

cJSON *mt_json_string_n(const char *s, size_t n) {
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += s[i] == 0;
    char *b = mt_malloc(n + zeros + 1);
    if (!b) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i]) {
            b[k++] = s[i];
        } else {
            b[k++] = (char)0xC0;
            b[k++] = (char)0x80;
        }
    }
    b[k] = 0;
    cJSON *item = cJSON_CreateString(b);
    mt_free(b);
    return item;
}

char *mt_json_print(const cJSON *item, bool formatted) {
    char *p = formatted ? cJSON_Print(item) : cJSON_PrintUnformatted(item);
    if (!p) return NULL;
    /* cJSON writes bytes from 0x80 up as they are, so an encoded U+0000 shows as C0 80 inside a string */
    size_t n = strlen(p), extra = 0;
    for (const char *q = p; (q = strstr(q, "\xC0\x80")) != NULL; q += 2) extra += 4;
    char *out = mt_malloc(n + extra + 1);
    if (out) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)p[i] == 0xC0 && (unsigned char)p[i + 1] == 0x80) {
                memcpy(out + k, "\\u0000", 6);
                k += 6;
                i++;
            } else {
                out[k++] = p[i];
            }
        }
        out[k] = 0;
    }
    cJSON_free(p);
    return out;
}

/* --- typed fields --------------------------------------------------------------------------------------------- */

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

static mt_status get_str(const cJSON *obj, const char *key, const char *what, bool req, bool nul_ok,
                         const char **out, mt_err *err) {
    const cJSON *v = field(obj, key);
    if (!v && !req) *out = NULL;
    if (!v) return req ? mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"%s\"", what, key) : MT_OK;
    if (!cJSON_IsString(v)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be a string", what, key);
    if (!nul_ok && mt_json_has_nul(v->valuestring))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" holds U+0000 (\\u0000), which it cannot", what, key);
    *out = v->valuestring;
    return MT_OK;
}

mt_status mt_json_str_req(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err) {
    return get_str(obj, key, what, true, false, out, err);
}

mt_status mt_json_str_opt(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err) {
    return get_str(obj, key, what, false, false, out, err);
}

mt_status mt_json_raw_req(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err) {
    return get_str(obj, key, what, true, true, out, err);
}

mt_status mt_json_raw_opt(const cJSON *obj, const char *key, const char *what, const char **out, mt_err *err) {
    return get_str(obj, key, what, false, true, out, err);
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
