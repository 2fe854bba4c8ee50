/* text/jinja_format: Python's printf-style `str % args` (CPython's PyUnicode_Format, Objects/unicodeobject.c),
 * which jinja2 evaluates as plain Python: "%s-%d" % (a, b), "%.2f" % x, "%(name)s" % d.
 *
 *   | spec part  | forms                         | notes                                               |
 *   |------------|-------------------------------|-----------------------------------------------------|
 *   | key        | %(name)                       | args must be a mapping                              |
 *   | flags      | - + space # 0                 | '0' pads numbers after sign and 0x; '-' wins over it |
 *   | width      | digits or *                   | counted in code points                              |
 *   | precision  | .digits or .*                 | strings: cut to that many code points; ints: digits |
 *   | length     | h l L                         | ignored                                             |
 *   | conversion | s r a d i u o x X e E f F g G c | %% only directly after %                       |
 *
 * Arguments: a tuple gives one per conversion; anything else is the single argument. A mapping (dict, or list as
 * Python's PyMapping_Check sees it) as args excuses unused arguments. Errors follow Python's: "not enough
 * arguments", "not all arguments converted", "a real number is required", "unsupported format character".
 */
#include <math.h>
#include <stdio.h>

#include "text/jinja_int.h"
#include "text/text_int.h"

typedef struct pctx {
    jstate *st;
    const jnode *at;
    const jv *argv;
    size_t argc, argi;
    bool single_used, single; /* args is one value, not a tuple */
    const jv *mapping;
} pctx;

static bool next_arg(pctx *c, jv *out) {
    if (c->single) {
        if (c->single_used) return jerr(c->st, c->at, MT_ERR_FORMAT, "not enough arguments for format string");
        c->single_used = true;
        return *out = c->argv[0], true;
    }
    if (c->argi >= c->argc) return jerr(c->st, c->at, MT_ERR_FORMAT, "not enough arguments for format string");
    *out = c->argv[c->argi++];
    return true;
}

/* Appends n copies of ch. */
static bool pad(jbuf *b, char ch, size_t n) {
    char t[64];
    memset(t, ch, sizeof t);
    for (; n > sizeof t; n -= sizeof t)
        if (!jb_put(b, t, sizeof t)) return false;
    return jb_put(b, t, n);
}

typedef struct pspec {
    bool left, plus, space, alt, zero;
    int64_t width, prec; /* prec < 0: none */
    char conv;
} pspec;

/* A number: sign, then prefix (0x), then digits, padded to the width with zeros between prefix and digits when
 * asked, with spaces otherwise. */
static bool put_number(jbuf *b, const pspec *s, bool neg, const char *prefix, const char *digits, size_t nd) {
    char sign[2] = {0};
    if (neg) sign[0] = '-';
    else if (s->plus) sign[0] = '+';
    else if (s->space) sign[0] = ' ';
    size_t len = strlen(sign) + strlen(prefix) + nd, fill = s->width > 0 && (uint64_t)s->width > len ? (size_t)s->width - len : 0;
    bool ok = true;
    if (fill && !s->left && !s->zero) ok = pad(b, ' ', fill);
    ok = ok && jb_puts(b, sign) && jb_puts(b, prefix);
    if (fill && !s->left && s->zero) ok = ok && pad(b, '0', fill);
    ok = ok && jb_put(b, digits, nd);
    if (fill && s->left) ok = ok && pad(b, ' ', fill);
    return ok;
}

static bool put_text(jbuf *b, const pspec *s, const char *p, size_t n) {
    if (s->prec >= 0) n = ju_offset(p, n, (size_t)s->prec);
    size_t cps = ju_len(p, n), fill = s->width > 0 && (uint64_t)s->width > cps ? (size_t)s->width - cps : 0;
    bool ok = true;
    if (fill && !s->left) ok = pad(b, ' ', fill);
    ok = ok && jb_put(b, p, n);
    if (fill && s->left) ok = ok && pad(b, ' ', fill);
    return ok;
}

/* ascii(x): repr with every non-ASCII code point escaped as \xNN, \uNNNN or \UNNNNNNNN. */
static bool write_ascii(jbuf *b, jv v) {
    jbuf r = {.limit = b->limit};
    bool ok = jv_write_repr(&r, v);
    for (size_t i = 0; ok && i < r.n;) {
        const uint8_t *p = (const uint8_t *)r.p + i;
        size_t len = p[0] < 0x80 ? 1 : mt_utf8_valid_len(p, r.n - i);
        if (len == 1 && p[0] < 0x80) {
            ok = jb_put(b, (const char *)p, 1), i++;
            continue;
        }
        uint32_t cp = len ? mt_utf8_cp(p, len) : 0xFFFD;
        char e[12];
        int en = cp < 0x100 ? snprintf(e, sizeof e, "\\x%02x", (unsigned)cp)
               : cp < 0x10000 ? snprintf(e, sizeof e, "\\u%04x", (unsigned)cp) : snprintf(e, sizeof e, "\\U%08x", (unsigned)cp);
        ok = jb_put(b, e, (size_t)en);
        i += len ? len : 1;
    }
    ok = ok && !r.over && !r.nomem;
    if (r.over) b->over = true;
    if (r.nomem) b->nomem = true;
    mt_free(r.p);
    return ok;
}

static bool fmt_int(pctx *c, jbuf *b, const pspec *s, jv v) {
    int64_t x;
    if (v.t == JV_INT) x = v.i;
    else if (v.t == JV_BOOL) x = v.b;
    else if (v.t == JV_FLOAT && (s->conv == 'd' || s->conv == 'i' || s->conv == 'u')) {
        if (isnan(v.f)) return jerr(c->st, c->at, MT_ERR_FORMAT, "cannot convert float NaN to integer");
        if (!(fabs(v.f) < 9.2e18)) return jerr(c->st, c->at, MT_ERR_LIMIT, "%%d of a float past the 64-bit range");
        x = (int64_t)v.f;
    } else if (s->conv == 'd' || s->conv == 'i' || s->conv == 'u') {
        return jerr(c->st, c->at, MT_ERR_FORMAT, "%%%c format: a real number is required, not %s", s->conv, jv_type_name(v));
    } else {
        return jerr(c->st, c->at, MT_ERR_FORMAT, "%%%c format: an integer is required, not %s", s->conv, jv_type_name(v));
    }
    uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    unsigned base = s->conv == 'o' ? 8 : s->conv == 'x' || s->conv == 'X' ? 16 : 10;
    const char *dig = s->conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    char t[24];
    size_t nd = 0;
    do t[sizeof t - ++nd] = dig[u % base], u /= base;
    while (u);
    const char *prefix = !s->alt ? "" : s->conv == 'o' ? "0o" : s->conv == 'x' ? "0x" : s->conv == 'X' ? "0X" : "";
    size_t prec = s->prec > 0 ? (size_t)s->prec : 0;
    if (prec <= nd) return put_number(b, s, x < 0, prefix, t + sizeof t - nd, nd);
    if (prec > c->st->out.limit) return jerr(c->st, c->at, MT_ERR_LIMIT, "format precision too large");
    char *d = mt_malloc(prec);
    if (!d) return jerr(c->st, c->at, MT_ERR_NOMEM, "out of memory");
    memset(d, '0', prec - nd);
    memcpy(d + prec - nd, t + sizeof t - nd, nd);
    bool ok = put_number(b, s, x < 0, prefix, d, prec);
    mt_free(d);
    return ok;
}

static bool fmt_float(pctx *c, jbuf *b, const pspec *s, jv v) {
    double x;
    if (v.t == JV_FLOAT) x = v.f;
    else if (v.t == JV_INT) x = (double)v.i;
    else if (v.t == JV_BOOL) x = v.b;
    else return jerr(c->st, c->at, MT_ERR_FORMAT, "must be real number, not %s", jv_type_name(v));
    bool upper = s->conv == 'E' || s->conv == 'F' || s->conv == 'G';
    if (!isfinite(x)) {
        const char *t = isnan(x) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
        return put_number(b, s, isinf(x) && x < 0, "", t, 3);
    }
    int prec = s->prec < 0 ? 6 : s->prec > 100000 ? -1 : (int)s->prec;
    if (prec < 0) return jerr(c->st, c->at, MT_ERR_LIMIT, "format precision too large");
    char f[8];
    snprintf(f, sizeof f, "%%%s.*%c", s->alt ? "#" : "", s->conv);
    int n = snprintf(NULL, 0, f, prec, fabs(x));
    char *d = n > 0 ? mt_malloc((size_t)n + 1) : NULL;
    if (!d) return jerr(c->st, c->at, MT_ERR_NOMEM, "out of memory");
    snprintf(d, (size_t)n + 1, f, prec, fabs(x));
    bool ok = put_number(b, s, signbit(x), "", d, (size_t)n);
    mt_free(d);
    return ok;
}

static bool fmt_char(pctx *c, jbuf *b, const pspec *s, jv v) {
    if (v.t == JV_STR && ju_len(v.s.p, v.s.n) == 1) return put_text(b, s, v.s.p, v.s.n);
    if (v.t != JV_INT && v.t != JV_BOOL) return jerr(c->st, c->at, MT_ERR_FORMAT, "%%c requires int or char");
    int64_t cp = v.t == JV_INT ? v.i : v.b;
    if (cp < 0 || cp > 0x10FFFF) return jerr(c->st, c->at, MT_ERR_FORMAT, "%%c arg not in range(0x110000)");
    if (cp >= 0xD800 && cp < 0xE000) return jerr(c->st, c->at, MT_ERR_FORMAT, "%%c of a surrogate cannot be UTF-8");
    char u[4];
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (n == 1) u[0] = (char)cp;
    else {
        for (size_t i = n - 1; i > 0; i--) u[i] = (char)(0x80 | (cp & 0x3F)), cp >>= 6;
        u[0] = (char)((n == 2 ? 0xC0 : n == 3 ? 0xE0 : 0xF0) | cp);
    }
    return put_text(b, s, u, n);
}

static bool fmt_text(pctx *c, jbuf *b, const pspec *s, jv v) {
    jbuf t = {.limit = b->limit};
    bool ok = s->conv == 's' ? jv_write_str(&t, v) : s->conv == 'r' ? jv_write_repr(&t, v) : write_ascii(&t, v);
    if (!ok) {
        if (t.over) b->over = true;
        else b->nomem = true;
        mt_free(t.p);
        return jerr_buf(c->st, c->at, b);
    }
    ok = put_text(b, s, t.p ? t.p : "", t.n);
    mt_free(t.p);
    return ok;
}

/* Width or precision: digits, or * taking the next argument (an int). */
static bool spec_num(pctx *c, const char *f, size_t n, size_t *i, int64_t *out) {
    if (*i < n && f[*i] == '*') {
        (*i)++;
        jv v;
        if (!next_arg(c, &v)) return false;
        if (v.t != JV_INT && v.t != JV_BOOL) return jerr(c->st, c->at, MT_ERR_FORMAT, "* wants int");
        *out = v.t == JV_INT ? v.i : v.b;
        return true;
    }
    int64_t x = 0;
    for (; *i < n && f[*i] >= '0' && f[*i] <= '9'; (*i)++)
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, f[*i] - '0', &x))
            return jerr(c->st, c->at, MT_ERR_FORMAT, "width or precision too big");
    *out = x;
    return true;
}

/* %(key): the value of key in the mapping. */
static bool mapping_arg(pctx *c, const char *f, size_t n, size_t *i, jv *out) {
    if (!c->mapping) return jerr(c->st, c->at, MT_ERR_FORMAT, "format requires a mapping");
    size_t start = ++*i, depth = 1;
    for (; *i < n; (*i)++) {
        if (f[*i] == '(') depth++;
        else if (f[*i] == ')' && --depth == 0) break;
    }
    if (*i >= n) return jerr(c->st, c->at, MT_ERR_FORMAT, "incomplete format key");
    jv key = jv_str(f + start, *i - start);
    (*i)++;
    const jv *v = c->mapping->t == JV_DICT ? jv_dict_find(c->mapping->d, key) : NULL;
    if (c->mapping->t != JV_DICT) return jerr(c->st, c->at, MT_ERR_FORMAT, "list indices must be integers, not str");
    if (!v) return jerr(c->st, c->at, MT_ERR_FORMAT, "format key '%.*s' not found", (int)key.s.n, key.s.p);
    *out = *v;
    return true;
}

bool jstr_percent(jstate *st, const jnode *at, jv fmt, jv args, jv *out) {
    pctx c = {.st = st, .at = at};
    if (args.t == JV_LIST && args.l->tuple) c.argv = args.l->v, c.argc = args.l->n;
    else c.argv = &args, c.argc = 1, c.single = true;
    if (args.t == JV_DICT || (args.t == JV_LIST && !args.l->tuple)) c.mapping = &args;
    const char *f = fmt.s.p;
    size_t n = fmt.s.n, run = 0;
    jbuf b = jb_new(st);
    for (size_t i = 0; i < n; i++) {
        if (f[i] != '%') continue;
        if (!jb_put(&b, f + run, i - run)) break;
        i++;
        if (i < n && f[i] == '%') {
            if (!jb_put(&b, "%", 1)) break;
            run = i + 1;
            continue;
        }
        pspec s = {.prec = -1};
        jv v;
        bool keyed = i < n && f[i] == '(';
        if (keyed && !mapping_arg(&c, f, n, &i, &v)) goto fail;
        for (; i < n && strchr("-+ #0", f[i]); i++) {
            if (f[i] == '-') s.left = true;
            else if (f[i] == '+') s.plus = true;
            else if (f[i] == ' ') s.space = true;
            else if (f[i] == '#') s.alt = true;
            else s.zero = true;
        }
        if (!spec_num(&c, f, n, &i, &s.width)) goto fail;
        if (s.width < 0) s.left = true, s.width = -s.width;
        if (i < n && f[i] == '.') {
            i++;
            if (!spec_num(&c, f, n, &i, &s.prec)) goto fail;
            if (s.prec < 0) s.prec = 0;
        }
        while (i < n && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L')) i++;
        if (i >= n) {
            jerr(st, at, MT_ERR_FORMAT, "incomplete format");
            goto fail;
        }
        s.conv = f[i];
        if (!strchr("sradiuoxXeEfFgGc", s.conv) || !s.conv) {
            jerr(st, at, MT_ERR_FORMAT, "unsupported format character '%c' (0x%x) at index %zu",
                 (unsigned char)s.conv < 0x80 && s.conv >= 0x20 ? s.conv : '?', (unsigned char)s.conv, ju_len(f, i));
            goto fail;
        }
        if (!keyed && !next_arg(&c, &v)) goto fail;
        bool ok = strchr("sra", s.conv) ? fmt_text(&c, &b, &s, v)
                : s.conv == 'c' ? fmt_char(&c, &b, &s, v)
                : strchr("diuoxX", s.conv) ? fmt_int(&c, &b, &s, v) : fmt_float(&c, &b, &s, v);
        if (!ok) goto fail;
        run = i + 1;
    }
    jb_put(&b, f + run, n - run);
    if (!c.mapping && (c.single ? !c.single_used : c.argi < c.argc)) {
        jerr(st, at, MT_ERR_FORMAT, "not all arguments converted during string formatting");
        goto fail;
    }
    return jv_from_buf(st, at, &b, out);
fail:
    mt_free(b.p);
    return st->failed ? false : jerr_buf(st, at, &b);
}
