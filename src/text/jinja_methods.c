/* text/jinja_methods: Python methods templates call on values, the global functions, and the conversions the
 * filters share (str(), iteration, len()).
 *
 *   | receiver | methods                                                                                   |
 *   |----------|-------------------------------------------------------------------------------------------|
 *   | str      | startswith endswith split rsplit strip lstrip rstrip upper lower title capitalize replace |
 *   |          | find rfind count join removeprefix removesuffix isdigit isalpha isspace splitlines         |
 *   | dict     | items keys values get                                                                     |
 *   | loop     | cycle                                                                                     |
 *   | globals  | range namespace dict raise_exception strftime_now                                         |
 *
 * Lists have no methods: transformers renders in an ImmutableSandboxedEnvironment, where list.append and the
 * like are refused, so a template using them fails there too. Whitespace is Python's str.isspace set; case
 * mapping is utf8proc's simple per-code-point mapping.
 */
#include <stdio.h>
#include <time.h>
#include <utf8proc.h>

#include "text/jinja_int.h"

static bool str_arg(jstate *st, const jnode *at, const char *fn, const jv *a, jv *out) {
    if (a->t == JV_STR) return *out = *a, true;
    return jerr(st, at, MT_ERR_FORMAT, "%s() argument must be str, not %s", fn, jv_type_name(*a));
}

bool jv_to_str(jstate *st, const jnode *at, jv v, jv *out) {
    if (v.t == JV_STR) return *out = v, true;
    jbuf b = jb_new(st);
    jv_write_str(&b, v);
    return jv_from_buf(st, at, &b, out);
}

bool jv_iterate(jstate *st, const jnode *at, jv v, jlist **out) {
    jlist *l;
    switch (v.t) {
    case JV_LIST: *out = v.l; return true;
    case JV_UNDEF:
        if (!(l = jv_list_new(&st->ja, 0))) return jerr_alloc(st, at);
        *out = l;
        return true;
    case JV_DICT:
        if (!(l = jv_list_new(&st->ja, v.d->n))) return jerr_alloc(st, at);
        memcpy(l->v, v.d->k, v.d->n * sizeof(jv));
        l->n = v.d->n;
        *out = l;
        return true;
    case JV_STR:
        if (!(l = jv_list_new(&st->ja, v.s.n))) return jerr_alloc(st, at);
        for (size_t i = 0; i < v.s.n;) {
            size_t j = i + 1;
            while (j < v.s.n && ((unsigned char)v.s.p[j] & 0xC0) == 0x80) j++;
            l->v[l->n++] = jv_str(v.s.p + i, j - i);
            i = j;
        }
        *out = l;
        return true;
    default: return jerr(st, at, MT_ERR_FORMAT, "'%s' object is not iterable", jv_type_name(v));
    }
}

bool jv_length(jstate *st, const jnode *at, jv v, int64_t *out) {
    switch (v.t) {
    case JV_STR: *out = (int64_t)ju_len(v.s.p, v.s.n); return true;
    case JV_LIST: *out = (int64_t)v.l->n; return true;
    case JV_DICT: *out = (int64_t)v.d->n; return true;
    case JV_UNDEF: *out = 0; return true;
    default: return jerr(st, at, MT_ERR_FORMAT, "object of type '%s' has no len()", jv_type_name(v));
    }
}

/* Byte length of the Python whitespace character at p[i], or 0. */
static size_t space_at(const char *p, size_t n, size_t i) {
    unsigned char c = (unsigned char)p[i];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) return 1;
    if (c < 0x80) return 0;
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
    if (k <= 0) return 0;
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return (size_t)k;
    return 0;
}

static size_t prev_start(const char *p, size_t i) {
    do i--;
    while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80);
    return i;
}

/* Whether the code point at p[i] (length *k) is one of chars (a str) or, chars NULL, whitespace. */
static bool strip_char(const char *p, size_t n, size_t i, const jv *chars, size_t *k) {
    if (!chars) return (*k = space_at(p, n, i)) != 0;
    size_t j = i + 1;
    while (j < n && ((unsigned char)p[j] & 0xC0) == 0x80) j++;
    *k = j - i;
    for (size_t c = 0; c < chars->s.n;) {
        size_t e = c + 1;
        while (e < chars->s.n && ((unsigned char)chars->s.p[e] & 0xC0) == 0x80) e++;
        if (e - c == *k && memcmp(chars->s.p + c, p + i, *k) == 0) return true;
        c = e;
    }
    return false;
}

jv jstr_strip(jv s, const jv *chars, bool left, bool right) {
    size_t b = 0, e = s.s.n, k;
    if (left)
        while (b < e && strip_char(s.s.p, s.s.n, b, chars, &k)) b += k;
    if (right)
        while (e > b) {
            size_t ps = prev_start(s.s.p, e);
            if (!strip_char(s.s.p, s.s.n, ps, chars, &k)) break;
            e = ps;
        }
    return jv_str(s.s.p + b, e - b);
}

/* upper / lower / capitalize / title over code points. */
bool jstr_case(jstate *st, const jnode *at, jv s, int mode, jv *out) {
    jbuf b = jb_new(st);
    bool word_start = true, first = true;
    for (size_t i = 0; i < s.s.n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s.s.p + i, (utf8proc_ssize_t)(s.s.n - i), &cp);
        if (k <= 0) {
            jb_put(&b, s.s.p + i, 1);
            i++;
            continue;
        }
        bool cased = utf8proc_toupper(cp) != cp || utf8proc_tolower(cp) != cp;
        utf8proc_int32_t o = cp;
        if (mode == 0) o = utf8proc_toupper(cp);
        else if (mode == 1) o = utf8proc_tolower(cp);
        else if (mode == 2) o = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
        else o = word_start ? utf8proc_totitle(cp) : utf8proc_tolower(cp);
        if (mode == 3) word_start = !cased;
        first = false;
        utf8proc_uint8_t enc[4];
        jb_put(&b, (const char *)enc, (size_t)utf8proc_encode_char(o, enc));
        i += (size_t)k;
    }
    return jv_from_buf(st, at, &b, out);
}

bool jstr_replace(jstate *st, const jnode *at, jv s, jv old, jv new_, int64_t count, jv *out) {
    jbuf b = jb_new(st);
    size_t i = 0;
    int64_t done = 0;
    if (!old.s.n) {
        /* Python inserts new_ before every code point and at the end */
        for (; i <= s.s.n && (count < 0 || done < count); done++) {
            jb_put(&b, new_.s.p, new_.s.n);
            if (i == s.s.n) { i++; break; }
            size_t j = i + 1;
            while (j < s.s.n && ((unsigned char)s.s.p[j] & 0xC0) == 0x80) j++;
            jb_put(&b, s.s.p + i, j - i);
            i = j;
        }
        if (i < s.s.n) jb_put(&b, s.s.p + i, s.s.n - i);
        return jv_from_buf(st, at, &b, out);
    }
    while (i < s.s.n && (count < 0 || done < count)) {
        const char *f = ju_find(s.s.p + i, s.s.n - i, old.s.p, old.s.n);
        if (!f) break;
        jb_put(&b, s.s.p + i, (size_t)(f - s.s.p) - i);
        jb_put(&b, new_.s.p, new_.s.n);
        i = (size_t)(f - s.s.p) + old.s.n;
        done++;
    }
    jb_put(&b, s.s.p + i, s.s.n - i);
    return jv_from_buf(st, at, &b, out);
}

static bool str_split(jstate *st, const jnode *at, jv s, const jv *sep, int64_t maxsplit, bool from_right, jv *out) {
    jlist *l = jv_list_new(&st->ja, 0);
    if (!l) return jerr_alloc(st, at);
    const char *p = s.s.p;
    size_t n = s.s.n, k;
    if (sep && !sep->s.n) return jerr(st, at, MT_ERR_FORMAT, "empty separator");
    if (!from_right) {
        size_t i = 0;
        for (int64_t done = 0;; done++) {
            if (!sep) {
                while (i < n && (k = space_at(p, n, i))) i += k;
                if (i == n) break;
            }
            size_t j = i;
            if (maxsplit < 0 || done < maxsplit) {
                if (sep) {
                    const char *f = ju_find(p + i, n - i, sep->s.p, sep->s.n);
                    j = f ? (size_t)(f - p) : n;
                } else {
                    while (j < n && !space_at(p, n, j)) j++;
                }
            } else {
                j = n;
                if (!sep) while (j > i && space_at(p, n, prev_start(p, j))) j = prev_start(p, j);
            }
            if (!jv_list_push(&st->ja, l, jv_str(p + i, j - i))) return jerr_alloc(st, at);
            if (j >= n) break;
            i = sep ? j + sep->s.n : j;
            if (sep && i == n) {
                if (!jv_list_push(&st->ja, l, jv_str(p + n, 0))) return jerr_alloc(st, at);
                break;
            }
        }
    } else {
        size_t e = n;
        for (int64_t done = 0;; done++) {
            if (!sep) {
                while (e > 0 && space_at(p, n, prev_start(p, e))) e = prev_start(p, e);
                if (e == 0) break;
            }
            size_t b = 0, next = 0;
            bool found = false;
            if (maxsplit < 0 || done < maxsplit) {
                if (sep) {
                    for (size_t i = e >= sep->s.n ? e - sep->s.n + 1 : 0; i-- > 0;)
                        if (memcmp(p + i, sep->s.p, sep->s.n) == 0) { b = i + sep->s.n, next = i, found = true; break; }
                } else {
                    b = e;
                    while (b > 0 && !space_at(p, n, prev_start(p, b))) b = prev_start(p, b);
                    found = b > 0, next = b;
                }
            } else if (!sep) {
                while (b < e && (k = space_at(p, n, b))) b += k;
            }
            if (!jv_list_push(&st->ja, l, jv_str(p + b, e - b))) return jerr_alloc(st, at);
            if (!found) break;
            e = next;
        }
        for (size_t i = 0; i < l->n / 2; i++) {
            jv t = l->v[i];
            l->v[i] = l->v[l->n - 1 - i], l->v[l->n - 1 - i] = t;
        }
    }
    *out = (jv){.t = JV_LIST, .l = l};
    return true;
}

static const char *const str_methods[] = {"startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip",
                                          "upper", "lower", "title", "capitalize", "replace", "find", "rfind",
                                          "count", "join", "removeprefix", "removesuffix", "isdigit", "isalpha",
                                          "isspace", "splitlines", NULL};
static const char *const dict_methods[] = {"items", "keys", "values", "get", NULL};

static bool in_list(const char *const *names, const char *s, size_t n) {
    for (; *names; names++)
        if (strlen(*names) == n && memcmp(*names, s, n) == 0) return true;
    return false;
}

bool jmethod_exists(jv self, const char *name, size_t n) {
    if (self.t == JV_STR) return in_list(str_methods, name, n);
    if (self.t == JV_DICT) return in_list(dict_methods, name, n);
    return false;
}

/* Argument i, positional or by keyword, or NULL. */
static const jv *arg(const jv *args, size_t nargs, const char **kwn, const jv *kwv, size_t nkw, size_t i,
                     const char *kw) {
    if (i < nargs) return &args[i];
    for (size_t k = 0; k < nkw; k++)
        if (kw && !strcmp(kwn[k], kw)) return &kwv[k];
    return NULL;
}

static bool affix(jstate *st, const jnode *at, jv s, const jv *a, bool end, bool *out) {
    if (!a) return jerr(st, at, MT_ERR_FORMAT, "%s() takes at least 1 argument", end ? "endswith" : "startswith");
    if (a->t == JV_LIST && a->l->tuple) {
        *out = false;
        for (size_t i = 0; i < a->l->n && !*out; i++)
            if (!affix(st, at, s, &a->l->v[i], end, out)) return false;
        return true;
    }
    jv x = jv_str("", 0);
    if (!str_arg(st, at, end ? "endswith" : "startswith", a, &x)) return false;
    *out = x.s.n <= s.s.n && memcmp(s.s.p + (end ? s.s.n - x.s.n : 0), x.s.p, x.s.n) == 0;
    return true;
}

static bool str_method(jstate *st, const jnode *at, const char *m, jv s, const jv *args, size_t nargs,
                       const char **kwn, const jv *kwv, size_t nkw, jv *out) {
    const jv *a0 = arg(args, nargs, kwn, kwv, nkw, 0, NULL), *a1 = arg(args, nargs, kwn, kwv, nkw, 1, NULL);
    jv x = jv_str("", 0), y = x;
    bool b;
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith"))
        return affix(st, at, s, a0, m[0] == 'e', &b) && (*out = jv_bool(b), true);
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        const jv *sep = arg(args, nargs, kwn, kwv, nkw, 0, "sep"), *mx = arg(args, nargs, kwn, kwv, nkw, 1, "maxsplit");
        if (sep && sep->t == JV_NONE) sep = NULL;
        if (sep && !str_arg(st, at, m, sep, &x)) return false;
        return str_split(st, at, s, sep, mx && mx->t == JV_INT ? mx->i : -1, m[0] == 'r', out);
    }
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        if (a0 && a0->t == JV_NONE) a0 = NULL;
        if (a0 && !str_arg(st, at, m, a0, &x)) return false;
        *out = jstr_strip(s, a0, m[0] != 'r', m[0] != 'l');
        return true;
    }
    if (!strcmp(m, "upper")) return jstr_case(st, at, s, 0, out);
    if (!strcmp(m, "lower")) return jstr_case(st, at, s, 1, out);
    if (!strcmp(m, "capitalize")) return jstr_case(st, at, s, 2, out);
    if (!strcmp(m, "title")) return jstr_case(st, at, s, 3, out);
    if (!strcmp(m, "replace")) {
        const jv *cnt = arg(args, nargs, kwn, kwv, nkw, 2, "count");
        if (!a0 || !a1 || !str_arg(st, at, m, a0, &x) || !str_arg(st, at, m, a1, &y))
            return a0 && a1 ? false : jerr(st, at, MT_ERR_FORMAT, "replace() takes at least 2 arguments");
        return jstr_replace(st, at, s, x, y, cnt && cnt->t == JV_INT ? cnt->i : -1, out);
    }
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "count")) {
        if (!a0 || !str_arg(st, at, m, a0, &x)) return a0 ? false : jerr(st, at, MT_ERR_FORMAT, "%s() takes 1 argument", m);
        int64_t found = -1, count = 0;
        for (size_t i = 0; i + x.s.n <= s.s.n;) {
            if (memcmp(s.s.p + i, x.s.p, x.s.n) == 0) {
                if (found < 0 || m[0] == 'r') found = (int64_t)ju_len(s.s.p, i);
                count++;
                i += x.s.n ? x.s.n : 1;
            } else {
                i++;
            }
        }
        if (!x.s.n) count = (int64_t)ju_len(s.s.p, s.s.n) + 1, found = m[0] == 'r' ? count - 1 : 0;
        *out = jv_int(m[0] == 'c' ? count : found);
        return true;
    }
    if (!strcmp(m, "join")) {
        jlist *items;
        if (!a0 || !jv_iterate(st, at, *a0, &items)) return a0 ? false : jerr(st, at, MT_ERR_FORMAT, "join() takes 1 argument");
        jbuf bb = jb_new(st);
        for (size_t i = 0; i < items->n; i++) {
            if (items->v[i].t != JV_STR) {
                mt_free(bb.p);
                return jerr(st, at, MT_ERR_FORMAT, "join(): expected str, got %s", jv_type_name(items->v[i]));
            }
            if (i) jb_put(&bb, s.s.p, s.s.n);
            jb_put(&bb, items->v[i].s.p, items->v[i].s.n);
        }
        return jv_from_buf(st, at, &bb, out);
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        bool suffix = m[6] == 's';
        if (!a0 || !str_arg(st, at, m, a0, &x)) return a0 ? false : jerr(st, at, MT_ERR_FORMAT, "%s() takes 1 argument", m);
        if (!affix(st, at, s, &x, suffix, &b)) return false;
        *out = b ? jv_str(s.s.p + (suffix ? 0 : x.s.n), s.s.n - x.s.n) : s;
        return true;
    }
    if (!strcmp(m, "isdigit") || !strcmp(m, "isalpha") || !strcmp(m, "isspace")) {
        b = s.s.n > 0;
        for (size_t i = 0; i < s.s.n && b;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s.s.p + i, (utf8proc_ssize_t)(s.s.n - i), &cp);
            if (k <= 0) { b = false; break; }
            utf8proc_category_t c = utf8proc_category(cp);
            if (m[2] == 'd') b = c == UTF8PROC_CATEGORY_ND;
            else if (m[2] == 'a') b = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
            else b = space_at(s.s.p, s.s.n, i) != 0;
            i += (size_t)k;
        }
        *out = jv_bool(b);
        return true;
    }
    /* splitlines */
    jlist *l = jv_list_new(&st->ja, 0);
    if (!l) return jerr_alloc(st, at);
    for (size_t i = 0; i < s.s.n;) {
        size_t j = i;
        while (j < s.s.n && s.s.p[j] != '\n' && s.s.p[j] != '\r') j++;
        if (!jv_list_push(&st->ja, l, jv_str(s.s.p + i, j - i))) return jerr_alloc(st, at);
        if (j < s.s.n && s.s.p[j] == '\r' && j + 1 < s.s.n && s.s.p[j + 1] == '\n') j++;
        i = j + 1;
    }
    *out = (jv){.t = JV_LIST, .l = l};
    return true;
}

bool jmethod_call(jstate *st, const jnode *at, const jfunc *fn, const jv *args, size_t nargs, const char **kwn,
                  const jv *kwv, size_t nkw, jv *out) {
    jv self = fn->self;
    const char *m = fn->name;
    if (self.t == JV_STR) return str_method(st, at, m, self, args, nargs, kwn, kwv, nkw, out);
    if (self.t == JV_LOOP) {
        if (!nargs) return jerr(st, at, MT_ERR_FORMAT, "loop.cycle() needs at least one argument");
        *out = args[self.loop->index0 % (int64_t)nargs];
        return true;
    }
    const jdict *d = self.d;
    if (!strcmp(m, "get")) {
        const jv *k = arg(args, nargs, kwn, kwv, nkw, 0, NULL), *def = arg(args, nargs, kwn, kwv, nkw, 1, NULL);
        if (!k) return jerr(st, at, MT_ERR_FORMAT, "get() takes at least 1 argument");
        const jv *v = jv_dict_find(d, *k);
        *out = v ? *v : def ? *def : jv_none();
        return true;
    }
    jlist *l = jv_list_new(&st->ja, d->n);
    if (!l) return jerr_alloc(st, at);
    for (size_t i = 0; i < d->n; i++) {
        if (m[0] == 'k') {
            l->v[i] = d->k[i];
        } else if (m[0] == 'v') {
            l->v[i] = d->v[i];
        } else {
            jlist *pair = jv_list_new(&st->ja, 2);
            if (!pair) return jerr_alloc(st, at);
            pair->v[0] = d->k[i], pair->v[1] = d->v[i], pair->n = 2, pair->tuple = true;
            l->v[i] = (jv){.t = JV_LIST, .l = pair};
        }
    }
    l->n = d->n;
    *out = (jv){.t = JV_LIST, .l = l};
    return true;
}

static const char *const globals[] = {"range", "namespace", "dict", "raise_exception", "strftime_now", NULL};

bool jglobal_exists(const char *name, size_t n) { return in_list(globals, name, n); }

bool jglobal_call(jstate *st, const jnode *at, const char *name, const jv *args, size_t nargs, const char **kwn,
                  const jv *kwv, size_t nkw, jv *out) {
    if (!strcmp(name, "raise_exception")) {
        jv msg = jv_str("", 0);
        if (nargs && !jv_to_str(st, at, args[0], &msg)) return false;
        return jerr(st, at, MT_ERR_INVALID_ARG, "raise_exception: %.*s", (int)MT_MIN(msg.s.n, 300), msg.s.p);
    }
    if (!strcmp(name, "strftime_now")) {
        if (nargs != 1 || args[0].t != JV_STR) return jerr(st, at, MT_ERR_FORMAT, "strftime_now() takes one str");
        char fmt[128], buf[256];
        snprintf(fmt, sizeof fmt, "%.*s", (int)MT_MIN(args[0].s.n, sizeof fmt - 1), args[0].s.p);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t k = strftime(buf, sizeof buf, fmt, &tm);
        char *s = ja_strdup(&st->ja, buf, k);
        if (!s) return jerr_alloc(st, at);
        *out = jv_str(s, k);
        return true;
    }
    if (!strcmp(name, "range")) {
        int64_t v[3] = {0, 0, 1};
        if (nargs < 1 || nargs > 3) return jerr(st, at, MT_ERR_FORMAT, "range() takes 1 to 3 arguments");
        for (size_t i = 0; i < nargs; i++) {
            if (args[i].t != JV_INT && args[i].t != JV_BOOL) return jerr(st, at, MT_ERR_FORMAT, "range() takes integers");
            v[nargs == 1 ? 1 : i] = args[i].t == JV_INT ? args[i].i : args[i].b;
        }
        if (!v[2]) return jerr(st, at, MT_ERR_FORMAT, "range() step must not be zero");
        jlist *l = jv_list_new(&st->ja, 0);
        if (!l) return jerr_alloc(st, at);
        for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
            if (l->n >= st->max_steps) return jerr(st, at, MT_ERR_LIMIT, "range() longer than %zu", st->max_steps);
            if (!jv_list_push(&st->ja, l, jv_int(i))) return jerr_alloc(st, at);
            if ((v[2] > 0 && i > INT64_MAX - v[2]) || (v[2] < 0 && i < INT64_MIN - v[2])) break;
        }
        *out = (jv){.t = JV_LIST, .l = l};
        return true;
    }
    /* namespace(...) and dict(...): a mapping from an optional dict argument plus keywords */
    jdict *d = jv_dict_new(&st->ja, nkw);
    if (!d) return jerr_alloc(st, at);
    if (nargs > 1 || (nargs == 1 && args[0].t != JV_DICT))
        return jerr(st, at, MT_ERR_FORMAT, "%s() takes keyword arguments or one dict", name);
    for (size_t i = 0; nargs && i < args[0].d->n; i++)
        if (!jv_dict_set(&st->ja, d, args[0].d->k[i], args[0].d->v[i])) return jerr_alloc(st, at);
    for (size_t i = 0; i < nkw; i++)
        if (!jv_dict_set(&st->ja, d, jv_str(kwn[i], strlen(kwn[i])), kwv[i])) return jerr_alloc(st, at);
    *out = (jv){.t = name[0] == 'n' ? JV_NS : JV_DICT, .d = d};
    return true;
}
