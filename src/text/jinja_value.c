/* text/jinja_value: the value type of the Jinja interpreter - allocation, Python's truthiness, equality and
 * ordering, conversion from cJSON, and the three ways a value becomes text:
 *
 *   | writer          | Python equivalent                         | example                              |
 *   |-----------------|-------------------------------------------|--------------------------------------|
 *   | jv_write_str    | str(v)  ({{ v }})                          | ['a', 1, True, None]  /  1.0  /  abc |
 *   | jv_write_repr   | repr(v) (items inside lists and dicts)     | 'it\'s' -> "it's"                    |
 *   | jv_write_json   | json.dumps(v, ensure_ascii, indent, ...)  | {"a": [1, 2.5, true, null]}          |
 *
 * Floats print as Python's shortest round-trip repr (1e+16, 1e-05, 0.1, 2.0).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/json.h"
#include "text/jinja_int.h"
#include "text/text_int.h"

#define JA_CHUNK ((size_t)64 << 10)

void ja_init(jarena *ja, size_t limit) {
    *ja = (jarena){.limit = limit};
    mt_arena_init(&ja->a, JA_CHUNK);
}

void *ja_alloc(jarena *ja, size_t size) {
    size = (size + 7) & ~(size_t)7;
    if (size < 8) size = 8;
    if (ja->limit && (size > ja->limit || ja->used > ja->limit - size)) return ja->over = true, NULL;
    void *p;
    if (size > JA_CHUNK / 4) {
        p = mt_arena_alloc(&ja->a, size);
    } else {
        if (ja->left < size) {
            ja->cur = mt_arena_alloc(&ja->a, JA_CHUNK);
            ja->left = ja->cur ? JA_CHUNK : 0;
            if (!ja->cur) return NULL;
        }
        p = ja->cur;
        ja->cur += size;
        ja->left -= size;
    }
    if (!p) return NULL;
    ja->used += size;
    memset(p, 0, size);
    return p;
}

char *ja_strdup(jarena *ja, const char *s, size_t n) {
    char *o = n + 1 ? ja_alloc(ja, n + 1) : NULL;
    if (o && n) memcpy(o, s, n);
    return o;
}

void ja_free(jarena *ja) { mt_arena_free(&ja->a); }

jlist *jv_list_new(jarena *ja, size_t cap) {
    jlist *l = ja_alloc(ja, sizeof *l);
    if (!l) return NULL;
    if (cap && !(l->v = ja_alloc(ja, cap * sizeof(jv)))) return NULL;
    l->cap = cap;
    return l;
}

bool jv_list_push(jarena *ja, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(jv) / 2) return false;
        jv *nv = ja_alloc(ja, cap * sizeof(jv));
        if (!nv) return false;
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return true;
}

jdict *jv_dict_new(jarena *ja, size_t cap) {
    jdict *d = ja_alloc(ja, sizeof *d);
    if (!d) return NULL;
    if (cap && (!(d->k = ja_alloc(ja, cap * sizeof(jv))) || !(d->v = ja_alloc(ja, cap * sizeof(jv))))) return NULL;
    d->cap = cap;
    return d;
}

const jv *jv_dict_find(const jdict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->k[i], key)) return &d->v[i];
    return NULL;
}

const jv *jv_dict_get(const jdict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].s.n == n && memcmp(d->k[i].s.p, key, n) == 0) return &d->v[i];
    return NULL;
}

bool jv_dict_set(jarena *ja, jdict *d, jv k, jv v) {
    jv *old = (jv *)jv_dict_find(d, k);
    if (old) return *old = v, true;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(jv) / 2) return false;
        jv *nk = ja_alloc(ja, cap * sizeof(jv)), *nv = ja_alloc(ja, cap * sizeof(jv));
        if (!nk || !nv) return false;
        if (d->n) memcpy(nk, d->k, d->n * sizeof(jv)), memcpy(nv, d->v, d->n * sizeof(jv));
        d->k = nk, d->v = nv, d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
    return true;
}

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0;
    case JV_STR: return v.s.n != 0;
    case JV_LIST: return v.l->n != 0;
    case JV_DICT: return v.d->n != 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double num(jv v) { return v.t == JV_FLOAT ? v.f : v.t == JV_INT ? (double)v.i : v.b; }
static int64_t inum(jv v) { return v.t == JV_INT ? v.i : v.b; }

bool jv_equal(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return inum(a) == inum(b);
        return num(a) == num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.s.n == b.s.n && memcmp(a.s.p, b.s.p, a.s.n) == 0;
    case JV_LIST:
        if (a.l->n != b.l->n || a.l->tuple != b.l->tuple) return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!jv_equal(a.l->v[i], b.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.d->n != b.d->n) return false;
        for (size_t i = 0; i < a.d->n; i++) {
            const jv *o = jv_dict_find(b.d, a.d->k[i]);
            if (!o || !jv_equal(a.d->v[i], *o)) return false;
        }
        return true;
    case JV_NS: return a.d == b.d;
    case JV_FUNC: return a.fn == b.fn;
    default: return false;
    }
}

bool jv_is_str(jv v, const char *s) { return v.t == JV_STR && v.s.n == strlen(s) && memcmp(v.s.p, s, v.s.n) == 0; }

const char *jv_type_name(jv v) {
    static const char *names[] = {"undefined", "NoneType", "bool", "int", "float", "str", "list", "dict",
                                  "Namespace", "function", "LoopContext"};
    if (v.t == JV_LIST && v.l->tuple) return "tuple";
    return names[v.t];
}

int jv_compare(jv a, jv b, bool *ok) {
    *ok = true;
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return (inum(a) > inum(b)) - (inum(a) < inum(b));
        return (num(a) > num(b)) - (num(a) < num(b));
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        int c = memcmp(a.s.p, b.s.p, MT_MIN(a.s.n, b.s.n));
        if (c) return c < 0 ? -1 : 1;
        return (a.s.n > b.s.n) - (a.s.n < b.s.n);
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.l->tuple == b.l->tuple) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++) {
            if (jv_equal(a.l->v[i], b.l->v[i])) continue;
            return jv_compare(a.l->v[i], b.l->v[i], ok);
        }
        return (a.l->n > b.l->n) - (a.l->n < b.l->n);
    }
    *ok = false;
    return 0;
}

/* A string of the cJSON tree as a jv: the tree's own bytes, or a decoded copy when it holds U+0000 (base/json). */
static bool json_str(jarena *ja, const char *s, jv *out) {
    if (!mt_json_has_nul(s)) return *out = jv_str(s, strlen(s)), true;
    char *d = ja_alloc(ja, strlen(s));
    if (!d) return false;
    *out = jv_str(d, mt_json_decode(s, d));
    return true;
}

bool jv_from_json(jarena *ja, const cJSON *j, int depth, jv *out) {
    if (depth > 200) return false;
    if (cJSON_IsNull(j)) return *out = jv_none(), true;
    if (cJSON_IsBool(j)) return *out = jv_bool(cJSON_IsTrue(j)), true;
    if (cJSON_IsString(j)) return json_str(ja, j->valuestring, out);
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0) *out = jv_int((int64_t)d);
        else *out = jv_float(d);
        return true;
    }
    size_t n = (size_t)cJSON_GetArraySize(j);
    if (cJSON_IsArray(j)) {
        jlist *l = jv_list_new(ja, n);
        if (!l) return false;
        for (const cJSON *c = j->child; c; c = c->next)
            if (!jv_from_json(ja, c, depth + 1, &l->v[l->n++])) return false;
        out->t = JV_LIST, out->l = l;
        return true;
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jv_dict_new(ja, n);
        if (!d) return false;
        for (const cJSON *c = j->child; c; c = c->next) {
            jv k, v;
            if (!json_str(ja, c->string ? c->string : "", &k) || !jv_from_json(ja, c, depth + 1, &v) ||
                !jv_dict_set(ja, d, k, v))
                return false;
        }
        out->t = JV_DICT, out->d = d;
        return true;
    }
    return false;
}

bool jb_put(jbuf *b, const char *s, size_t n) {
    if (b->over || b->nomem) return false;
    if (n > b->limit || b->n > b->limit - n) return b->over = true, false;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = mt_realloc(b->p, cap);
        if (!p) return b->nomem = true, false;
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

static bool write_float(jbuf *b, double x) {
    if (isnan(x)) return jb_puts(b, "nan");
    if (isinf(x)) return jb_puts(b, x < 0 ? "-inf" : "inf");
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    char digits[24], out[64];
    size_t nd = 0, k = 0;
    const char *q = e;
    if (*q == '-') out[k++] = '-', q++;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[k++] = (size_t)i < nd ? digits[i] : '0';
            out[k++] = '.';
            if ((size_t)exp + 1 >= nd) out[k++] = '0';
            for (size_t i = (size_t)exp + 1; i < nd; i++) out[k++] = digits[i];
        } else {
            out[k++] = '0', out[k++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[k++] = '0';
            for (size_t i = 0; i < nd; i++) out[k++] = digits[i];
        }
        return jb_put(b, out, k);
    }
    out[k++] = digits[0];
    if (nd > 1) {
        out[k++] = '.';
        for (size_t i = 1; i < nd; i++) out[k++] = digits[i];
    }
    k += (size_t)snprintf(out + k, sizeof out - k, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    return jb_put(b, out, k);
}

static bool write_int(jbuf *b, int64_t i) {
    char t[24];
    return jb_put(b, t, (size_t)snprintf(t, sizeof t, "%lld", (long long)i));
}

static bool write_str_repr(jbuf *b, const char *p, size_t n) {
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    if (!jb_put(b, &q, 1)) return false;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char esc[8];
        size_t en = 0, skip = 1;
        if (c == '\\' || c == (unsigned char)q) esc[0] = '\\', esc[1] = (char)c, en = 2;
        else if (c == '\n') memcpy(esc, "\\n", 2), en = 2;
        else if (c == '\r') memcpy(esc, "\\r", 2), en = 2;
        else if (c == '\t') memcpy(esc, "\\t", 2), en = 2;
        else if (c < 0x20 || c == 0x7f) en = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
        else if (c == 0xC2 && i + 1 < n && (unsigned char)p[i + 1] >= 0x80 && (unsigned char)p[i + 1] <= 0xA0)
            en = (size_t)snprintf(esc, sizeof esc, "\\x%02x", (unsigned char)p[i + 1]), skip = 2;
        if (!en) continue;
        if (!jb_put(b, p + run, i - run) || !jb_put(b, esc, en)) return false;
        i += skip - 1;
        run = i + 1;
    }
    return jb_put(b, p + run, n - run) && jb_put(b, &q, 1);
}

bool jv_write_repr(jbuf *b, jv v) {
    switch (v.t) {
    case JV_STR: return write_str_repr(b, v.s.p, v.s.n);
    case JV_LIST: {
        bool ok = jb_puts(b, v.l->tuple ? "(" : "[");
        for (size_t i = 0; ok && i < v.l->n; i++) ok = (!i || jb_puts(b, ", ")) && jv_write_repr(b, v.l->v[i]);
        if (ok && v.l->tuple && v.l->n == 1) ok = jb_puts(b, ",");
        return ok && jb_puts(b, v.l->tuple ? ")" : "]");
    }
    case JV_DICT: case JV_NS: {
        bool ok = jb_puts(b, v.t == JV_NS ? "<Namespace {" : "{");
        for (size_t i = 0; ok && i < v.d->n; i++)
            ok = (!i || jb_puts(b, ", ")) && jv_write_repr(b, v.d->k[i]) && jb_puts(b, ": ") &&
                 jv_write_repr(b, v.d->v[i]);
        return ok && jb_puts(b, v.t == JV_NS ? "}>" : "}");
    }
    default: return jv_write_str(b, v);
    }
}

bool jv_write_str(jbuf *b, jv v) {
    switch (v.t) {
    case JV_UNDEF: return true;
    case JV_NONE: return jb_puts(b, "None");
    case JV_BOOL: return jb_puts(b, v.b ? "True" : "False");
    case JV_INT: return write_int(b, v.i);
    case JV_FLOAT: return write_float(b, v.f);
    case JV_STR: return jb_put(b, v.s.p, v.s.n);
    case JV_FUNC: return jb_puts(b, "<function ") && jb_puts(b, v.fn->name ? v.fn->name : "?") && jb_puts(b, ">");
    case JV_LOOP: return jb_puts(b, "<LoopContext>");
    default: return jv_write_repr(b, v);
    }
}

/* A JSON string as json.dumps writes it. ascii (ensure_ascii=True): every non-ASCII code point as \uXXXX, those
 * past U+FFFF as a surrogate pair; a byte that is not valid UTF-8 (Python strings hold none) as \ufffd. */
static bool write_json_str(jbuf *b, const char *p, size_t n, bool ascii) {
    if (!jb_puts(b, "\"")) return false;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !ascii)) continue;
        char esc[16];
        size_t en, len = 1;
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (named) {
            memcpy(esc, named, 2), en = 2;
        } else if (c < 0x80) {
            en = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            len = mt_utf8_valid_len((const uint8_t *)p + i, n - i);
            uint32_t cp = len ? mt_utf8_cp((const uint8_t *)p + i, len) : 0xFFFD;
            if (!len) len = 1;
            if (cp < 0x10000) en = (size_t)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            else
                en = (size_t)snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800u + ((cp - 0x10000) >> 10),
                                      0xDC00u + ((cp - 0x10000) & 0x3FF));
        }
        if (!jb_put(b, p + run, i - run) || !jb_put(b, esc, en)) return false;
        i += len - 1;
        run = i + 1;
    }
    return jb_put(b, p + run, n - run) && jb_puts(b, "\"");
}

static bool newline_indent(jbuf *b, const jjson_opts *o, int level) {
    if (!jb_puts(b, "\n")) return false;
    for (int i = 0; i < level; i++)
        if (!jb_puts(b, o->indent)) return false;
    return true;
}

/* A dict key as json.dumps coerces it: str as is; numbers, bools and None to their JSON text. */
static bool write_json_key(jbuf *b, jv k, bool ascii, const char **bad) {
    if (k.t == JV_STR) return write_json_str(b, k.s.p, k.s.n, ascii);
    if (k.t == JV_LIST || k.t == JV_DICT || k.t == JV_UNDEF || k.t > JV_STR) return *bad = jv_type_name(k), false;
    jbuf t = {.limit = 64};
    bool ok = k.t == JV_NONE ? jb_puts(&t, "null") : k.t == JV_BOOL ? jb_puts(&t, k.b ? "true" : "false")
                                                                    : jv_write_str(&t, k);
    ok = ok && write_json_str(b, t.p, t.n, false);
    mt_free(t.p);
    return ok;
}

bool jv_write_json(jbuf *b, jv v, const jjson_opts *o, int level, const char **bad) {
    if (level > 200) return *bad = "nesting", false;
    const char *isep = o->item_sep ? o->item_sep : o->indent ? "," : ", ";
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    switch (v.t) {
    case JV_NONE: return jb_puts(b, "null");
    case JV_BOOL: return jb_puts(b, v.b ? "true" : "false");
    case JV_INT: return write_int(b, v.i);
    case JV_FLOAT:
        if (isnan(v.f)) return jb_puts(b, "NaN");
        if (isinf(v.f)) return jb_puts(b, v.f < 0 ? "-Infinity" : "Infinity");
        return write_float(b, v.f);
    case JV_STR: return write_json_str(b, v.s.p, v.s.n, o->ensure_ascii);
    case JV_LIST: {
        if (!v.l->n) return jb_puts(b, "[]");
        bool ok = jb_puts(b, "[");
        for (size_t i = 0; ok && i < v.l->n; i++) {
            if (i) ok = jb_puts(b, isep);
            if (ok && o->indent) ok = newline_indent(b, o, level + 1);
            ok = ok && jv_write_json(b, v.l->v[i], o, level + 1, bad);
        }
        if (ok && o->indent) ok = newline_indent(b, o, level);
        return ok && jb_puts(b, "]");
    }
    case JV_DICT: {
        if (!v.d->n) return jb_puts(b, "{}");
        size_t order_buf[64], *order = v.d->n <= 64 ? order_buf : mt_malloc_array(v.d->n, sizeof *order);
        if (!order) return b->nomem = true, false;
        for (size_t i = 0; i < v.d->n; i++) order[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < v.d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    bool cmp_ok;
                    if (jv_compare(v.d->k[order[j - 1]], v.d->k[order[j]], &cmp_ok) <= 0) break;
                    size_t t = order[j];
                    order[j] = order[j - 1], order[j - 1] = t;
                }
        bool ok = jb_puts(b, "{");
        for (size_t i = 0; ok && i < v.d->n; i++) {
            if (i) ok = jb_puts(b, isep);
            if (ok && o->indent) ok = newline_indent(b, o, level + 1);
            ok = ok && write_json_key(b, v.d->k[order[i]], o->ensure_ascii, bad) && jb_puts(b, ksep) &&
                 jv_write_json(b, v.d->v[order[i]], o, level + 1, bad);
        }
        if (order != order_buf) mt_free(order);
        if (ok && o->indent) ok = newline_indent(b, o, level);
        return ok && jb_puts(b, "}");
    }
    default: return *bad = jv_type_name(v), false;
    }
}

size_t ju_len(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xC0) != 0x80;
    return k;
}

size_t ju_offset(const char *p, size_t n, size_t k) {
    size_t i = 0;
    for (; i < n; i++)
        if (((unsigned char)p[i] & 0xC0) != 0x80 && k-- == 0) return i;
    return n;
}

const char *ju_find(const char *hay, size_t hn, const char *needle, size_t nn) {
    if (!nn) return hay;
    for (size_t i = 0; i + nn <= hn; i++) {
        const char *f = memchr(hay + i, needle[0], hn - nn + 1 - i);
        if (!f) return NULL;
        i = (size_t)(f - hay);
        if (memcmp(f, needle, nn) == 0) return f;
    }
    return NULL;
}
