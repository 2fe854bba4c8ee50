/* text/jinja_filters: jinja2 3.1's filters and tests that chat templates use, with transformers' tojson.
 *
 *   | filters | trim tojson length count upper lower capitalize title items first last join default d replace |
 *   |         | safe string int float abs round list reverse sort unique sum min max dictsort selectattr      |
 *   |         | rejectattr select reject map attr indent escape e wordcount                                   |
 *   | tests   | defined undefined none boolean true false integer float number string mapping iterable        |
 *   |         | sequence callable odd even divisibleby eq equalto ne lt gt le ge in lower upper sameas        |
 *
 * An unknown filter or test is a render error naming it (jinja2 reports it at compile time; the message is the
 * same kind). Attribute paths for selectattr / map / sort / sum accept dots ("function.name").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "text/jinja_int.h"

typedef struct fargs {
    const jv *v;
    size_t n;
    const char **kwn;
    const jv *kwv;
    size_t nkw;
} fargs;

static const jv *farg(const fargs *a, size_t i, const char *kw) {
    for (size_t k = 0; k < a->nkw; k++)
        if (kw && !strcmp(a->kwn[k], kw)) return &a->kwv[k];
    return i < a->n ? &a->v[i] : NULL;
}

static bool farg_true(const fargs *a, size_t i, const char *kw) {
    const jv *v = farg(a, i, kw);
    return v && jv_truthy(*v);
}

static bool out_list(jv *out, jlist *l) {
    *out = (jv){.t = JV_LIST, .l = l};
    return true;
}

/* Item or attribute path "a.b.0" of v, as jinja2's make_attrgetter does; undefined when missing. */
static bool attr_path(jstate *st, const jnode *at, jv v, jv path, jv *out) {
    if (path.t != JV_STR) {
        if (v.t == JV_LIST && path.t == JV_INT && path.i >= 0 && (size_t)path.i < v.l->n) return *out = v.l->v[path.i], true;
        return *out = jv_undef(NULL), true;
    }
    size_t i = 0;
    while (i <= path.s.n) {
        size_t j = i;
        while (j < path.s.n && path.s.p[j] != '.') j++;
        const jv *f = NULL;
        bool digits = j > i;
        for (size_t k = i; k < j; k++) digits = digits && path.s.p[k] >= '0' && path.s.p[k] <= '9';
        if (v.t == JV_DICT || v.t == JV_NS) f = jv_dict_get(v.d, path.s.p + i, j - i);
        else if (v.t == JV_LIST && digits && (size_t)atoll(path.s.p + i) < v.l->n) f = &v.l->v[atoll(path.s.p + i)];
        if (!f) return *out = jv_undef(NULL), true;
        v = *f;
        i = j + 1;
    }
    (void)st, (void)at;
    return *out = v, true;
}

/* transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) = json.dumps with
 * those arguments, in that positional order (so x|tojson(2) sets ensure_ascii, not indent). indent: an int n gives
 * n spaces (n <= 0: line breaks only), a string is used as is. separators: a pair of strings. */
static bool f_tojson(jstate *st, const jnode *at, jv v, const fargs *a, jv *out) {
    static const char *const names[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    const jv *arg[4] = {0};
    if (a->n > 4) return jerr(st, at, MT_ERR_FORMAT, "tojson takes at most 4 arguments, %zu given", a->n);
    for (size_t i = 0; i < a->n; i++) arg[i] = &a->v[i];
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < 4 && strcmp(a->kwn[k], names[i]) != 0) i++;
        if (i == 4 || arg[i]) return jerr(st, at, MT_ERR_FORMAT, "tojson got an unexpected or repeated argument '%s'", a->kwn[k]);
        arg[i] = &a->kwv[k];
    }
    jjson_opts o = {.ensure_ascii = arg[0] && jv_truthy(*arg[0]), .sort_keys = arg[3] && jv_truthy(*arg[3])};
    const jv *ind = arg[1], *sep = arg[2];
    if (ind && (ind->t == JV_INT || ind->t == JV_BOOL)) {
        int64_t k = ind->t == JV_INT ? ind->i : ind->b;
        if (k < 0) k = 0;
        if ((uint64_t)k > st->out.limit) return jerr(st, at, MT_ERR_LIMIT, "tojson indent %lld too large", (long long)k);
        char *sp = ja_alloc(&st->ja, (size_t)k + 1);
        if (!sp) return jerr_alloc(st, at);
        memset(sp, ' ', (size_t)k);
        o.indent = sp;
    } else if (ind && ind->t == JV_STR) {
        if (!(o.indent = ja_strdup(&st->ja, ind->s.p, ind->s.n))) return jerr_alloc(st, at);
    } else if (ind && ind->t != JV_NONE) {
        return jerr(st, at, MT_ERR_FORMAT, "tojson indent must be an int or a string, not %s", jv_type_name(*ind));
    }
    if (sep && sep->t != JV_NONE) {
        if (sep->t != JV_LIST || sep->l->n != 2 || sep->l->v[0].t != JV_STR || sep->l->v[1].t != JV_STR)
            return jerr(st, at, MT_ERR_FORMAT, "tojson separators must be a pair of strings");
        o.item_sep = ja_strdup(&st->ja, sep->l->v[0].s.p, sep->l->v[0].s.n);
        o.key_sep = ja_strdup(&st->ja, sep->l->v[1].s.p, sep->l->v[1].s.n);
        if (!o.item_sep || !o.key_sep) return jerr_alloc(st, at);
    }
    jbuf b = jb_new(st);
    const char *bad = NULL;
    if (!jv_write_json(&b, v, &o, 0, &bad) && bad) {
        mt_free(b.p);
        return jerr(st, at, MT_ERR_FORMAT, "tojson: object of type %s is not JSON serializable", bad);
    }
    return jv_from_buf(st, at, &b, out);
}

static bool f_join(jstate *st, const jnode *at, jv v, const fargs *a, jv *out) {
    jlist *items;
    const jv *sep = farg(a, 0, "d"), *attr = farg(a, 1, "attribute");
    if (!jv_iterate(st, at, v, &items)) return false;
    jbuf b = jb_new(st);
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->v[i];
        if (attr && !attr_path(st, at, x, *attr, &x)) return mt_free(b.p), false;
        if (i && sep) jv_write_str(&b, *sep);
        jv_write_str(&b, x);
    }
    return jv_from_buf(st, at, &b, out);
}

static int sort_cmp(jv x, jv y, bool case_sensitive, bool *ok) {
    if (!case_sensitive && x.t == JV_STR && y.t == JV_STR) {
        for (size_t i = 0; i < x.s.n && i < y.s.n; i++) {
            int cx = (unsigned char)x.s.p[i], cy = (unsigned char)y.s.p[i];
            if (cx >= 'A' && cx <= 'Z') cx += 32;
            if (cy >= 'A' && cy <= 'Z') cy += 32;
            if (cx != cy) return *ok = true, cx < cy ? -1 : 1;
        }
        return *ok = true, (x.s.n > y.s.n) - (x.s.n < y.s.n);
    }
    return jv_compare(x, y, ok);
}

static bool f_sort(jstate *st, const jnode *at, jv v, const fargs *a, jv *out, int mode) {
    /* mode 0 sort, 1 min, 2 max, 3 unique */
    jlist *items, *keys, *l;
    bool rev = mode == 0 && farg_true(a, 0, "reverse"), cs = farg_true(a, mode == 0 ? 1 : 0, "case_sensitive");
    const jv *attr = farg(a, mode == 0 ? 2 : 1, "attribute");
    if (!jv_iterate(st, at, v, &items)) return false;
    if (!(l = jv_list_new(&st->ja, items->n)) || !(keys = jv_list_new(&st->ja, items->n))) return jerr_alloc(st, at);
    for (size_t i = 0; i < items->n; i++) {
        jv k = items->v[i];
        if (attr && !attr_path(st, at, k, *attr, &k)) return false;
        if (mode == 3) {
            bool seen = false;
            for (size_t j = 0; j < l->n && !seen; j++) {
                bool ok;
                seen = sort_cmp(keys->v[j], k, cs, &ok) == 0 && ok;
                if (!ok) seen = jv_equal(keys->v[j], k);
            }
            if (seen) continue;
        }
        size_t j = l->n;
        if (mode != 3) /* stable insertion */
            for (; j > 0; j--) {
                bool ok;
                int c = sort_cmp(keys->v[j - 1], k, cs, &ok);
                if (!ok) return jerr(st, at, MT_ERR_FORMAT, "cannot order %s and %s", jv_type_name(keys->v[j - 1]), jv_type_name(k));
                if (rev ? c >= 0 : c <= 0) break;
            }
        memmove(l->v + j + 1, l->v + j, (l->n - j) * sizeof(jv));
        memmove(keys->v + j + 1, keys->v + j, (keys->n - j) * sizeof(jv));
        l->v[j] = items->v[i], keys->v[j] = k;
        l->n++, keys->n++;
    }
    if (mode == 1 || mode == 2) {
        *out = l->n ? l->v[mode == 1 ? 0 : l->n - 1] : jv_undef(NULL);
        if (mode == 2 && l->n) /* max keeps the first of equal maxima */
            for (size_t j = l->n - 1; j > 0; j--) {
                bool ok;
                if (sort_cmp(keys->v[j - 1], keys->v[l->n - 1], cs, &ok) != 0) break;
                *out = l->v[j - 1];
            }
        return true;
    }
    return out_list(out, l);
}

/* select / reject / selectattr / rejectattr: keep items whose test (default: truthiness) says keep. */
static bool f_select(jstate *st, const jnode *at, jv v, const fargs *a, jv *out, bool by_attr, bool keep) {
    jlist *items, *l;
    if (!jv_truthy(v)) v = jv_undef(NULL); /* jinja2 yields nothing for a falsy input, None included */
    if (!jv_iterate(st, at, v, &items)) return false;
    size_t t0 = by_attr ? 1 : 0;
    if (by_attr && a->n < 1) return jerr(st, at, MT_ERR_FORMAT, "selectattr/rejectattr need an attribute");
    const jv *test = a->n > t0 ? &a->v[t0] : NULL;
    if (test && test->t != JV_STR) return jerr(st, at, MT_ERR_FORMAT, "test name must be a string");
    char name[64];
    if (test) snprintf(name, sizeof name, "%.*s", (int)MT_MIN(test->s.n, 63), test->s.p);
    if (!(l = jv_list_new(&st->ja, items->n))) return jerr_alloc(st, at);
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->v[i];
        if (by_attr && !attr_path(st, at, x, a->v[0], &x)) return false;
        bool r = jv_truthy(x);
        if (test && !jtest(st, at, name, x, a->v + t0 + 1, a->n - t0 - 1, &r)) return false;
        if (r == keep) l->v[l->n++] = items->v[i];
    }
    return out_list(out, l);
}

static bool f_map(jstate *st, const jnode *at, jv v, const fargs *a, jv *out) {
    jlist *items, *l;
    if (!jv_truthy(v)) v = jv_undef(NULL); /* as in select: None maps to nothing */
    if (!jv_iterate(st, at, v, &items)) return false;
    if (!(l = jv_list_new(&st->ja, items->n))) return jerr_alloc(st, at);
    const jv *attr = farg(a, 99, "attribute"), *def = farg(a, 99, "default");
    char name[64] = "";
    if (!attr) {
        if (!a->n || a->v[0].t != JV_STR) return jerr(st, at, MT_ERR_FORMAT, "map() needs a filter name or attribute=");
        snprintf(name, sizeof name, "%.*s", (int)MT_MIN(a->v[0].s.n, 63), a->v[0].s.p);
    }
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->v[i];
        if (attr) {
            if (!attr_path(st, at, x, *attr, &x)) return false;
            if (x.t == JV_UNDEF && def) x = *def;
        } else if (!jfilter(st, at, name, x, a->v + 1, a->n - 1, a->kwn, a->kwv, a->nkw, &x)) {
            return false;
        }
        l->v[l->n++] = x;
    }
    return out_list(out, l);
}

static bool f_indent(jstate *st, const jnode *at, jv v, const fargs *a, jv *out) {
    const jv *w = farg(a, 0, "width");
    bool first = farg_true(a, 1, "first"), blank = farg_true(a, 2, "blank");
    char pad[65] = "    ";
    const char *ind = pad;
    size_t in = 4;
    if (w && w->t == JV_INT) {
        if (w->i < 0 || w->i > 64) return jerr(st, at, MT_ERR_LIMIT, "indent width out of range");
        memset(pad, ' ', (size_t)w->i), pad[w->i] = 0, in = (size_t)w->i;
    } else if (w && w->t == JV_STR) {
        ind = w->s.p, in = w->s.n;
    }
    if (!jv_to_str(st, at, v, &v)) return false;
    jbuf b = jb_new(st);
    bool line_start = first;
    for (size_t i = 0; i < v.s.n;) {
        size_t j = i;
        while (j < v.s.n && v.s.p[j] != '\n') j++;
        bool empty = j == i;
        if (line_start && (blank || !empty)) jb_put(&b, ind, in);
        jb_put(&b, v.s.p + i, j - i);
        if (j < v.s.n) jb_put(&b, "\n", 1);
        i = j + 1;
        line_start = true;
    }
    return jv_from_buf(st, at, &b, out);
}

static bool f_number(jstate *st, const jnode *at, jv v, const fargs *a, jv *out, bool want_int) {
    const jv *def = farg(a, 0, "default");
    jv d = def ? *def : want_int ? jv_int(0) : jv_float(0);
    if (v.t == JV_BOOL) v = jv_int(v.b);
    if (v.t == JV_INT) return *out = want_int ? v : jv_float((double)v.i), true;
    if (v.t == JV_FLOAT) {
        if (want_int && !(fabs(v.f) < 9.2e18)) return *out = d, true;
        return *out = want_int ? jv_int((int64_t)v.f) : v, true;
    }
    if (v.t != JV_STR || v.s.n > 60) return *out = d, true;
    char buf[64], *end;
    jv s = jstr_strip(v, NULL, true, true);
    snprintf(buf, sizeof buf, "%.*s", (int)s.s.n, s.s.p);
    if (want_int) {
        long long i = strtoll(buf, &end, 10);
        if (*buf && !*end) return *out = jv_int(i), true;
    }
    double f = strtod(buf, &end);
    if (!*buf || *end || (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'))) return *out = d, true;
    if (want_int && !(fabs(f) < 9.2e18)) return *out = d, true;
    *out = want_int ? jv_int((int64_t)f) : jv_float(f);
    (void)st, (void)at;
    return true;
}

static bool f_first_last(jstate *st, const jnode *at, jv v, jv *out, bool last) {
    jlist *items;
    if (!jv_iterate(st, at, v, &items)) return false;
    *out = items->n ? items->v[last ? items->n - 1 : 0] : jv_undef(NULL);
    return true;
}

bool jfilter(jstate *st, const jnode *at, const char *f, jv v, const jv *args, size_t nargs, const char **kwn,
             const jv *kwv, size_t nkw, jv *out) {
    fargs a = {args, nargs, kwn, kwv, nkw};
    int64_t n;
    jv s, x, y;
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        const jv *d = farg(&a, 0, "default_value");
        bool falsy = farg_true(&a, 1, "boolean");
        *out = v.t == JV_UNDEF || (falsy && !jv_truthy(v)) ? (d ? *d : jv_str("", 0)) : v;
        return true;
    }
    if (!strcmp(f, "safe")) return *out = v, true;
    if (!strcmp(f, "tojson")) return f_tojson(st, at, v, &a, out);
    if (!strcmp(f, "length") || !strcmp(f, "count")) return jv_length(st, at, v, &n) && (*out = jv_int(n), true);
    if (!strcmp(f, "string")) return jv_to_str(st, at, v, out);
    if (!strcmp(f, "trim")) {
        const jv *chars = farg(&a, 0, "chars");
        if (chars && chars->t != JV_STR) chars = NULL;
        return jv_to_str(st, at, v, &s) && (*out = jstr_strip(s, chars, true, true), true);
    }
    if (!strcmp(f, "upper")) return jv_to_str(st, at, v, &s) && jstr_case(st, at, s, 0, out);
    if (!strcmp(f, "lower")) return jv_to_str(st, at, v, &s) && jstr_case(st, at, s, 1, out);
    if (!strcmp(f, "capitalize")) return jv_to_str(st, at, v, &s) && jstr_case(st, at, s, 2, out);
    if (!strcmp(f, "title")) return jv_to_str(st, at, v, &s) && jstr_case(st, at, s, 3, out);
    if (!strcmp(f, "replace")) {
        const jv *old = farg(&a, 0, "old"), *nw = farg(&a, 1, "new"), *cnt = farg(&a, 2, "count");
        if (!old || !nw) return jerr(st, at, MT_ERR_FORMAT, "replace needs old and new");
        return jv_to_str(st, at, v, &s) && jv_to_str(st, at, *old, &x) && jv_to_str(st, at, *nw, &y) &&
               jstr_replace(st, at, s, x, y, cnt && cnt->t == JV_INT ? cnt->i : -1, out);
    }
    if (!strcmp(f, "items")) {
        if (v.t == JV_UNDEF) return jv_iterate(st, at, v, &out->l) && (out->t = JV_LIST, true);
        if (v.t != JV_DICT) return jerr(st, at, MT_ERR_FORMAT, "items filter needs a mapping, got %s", jv_type_name(v));
        jfunc m = {.kind = FN_METHOD, .name = "items", .self = v};
        return jmethod_call(st, at, &m, NULL, 0, NULL, NULL, 0, out);
    }
    if (!strcmp(f, "dictsort")) {
        if (v.t != JV_DICT) return jerr(st, at, MT_ERR_FORMAT, "dictsort needs a mapping");
        jfunc m = {.kind = FN_METHOD, .name = "items", .self = v};
        fargs none = {0};
        return jmethod_call(st, at, &m, NULL, 0, NULL, NULL, 0, &x) && f_sort(st, at, x, &none, out, 0);
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) return f_first_last(st, at, v, out, f[0] == 'l');
    if (!strcmp(f, "join")) return f_join(st, at, v, &a, out);
    if (!strcmp(f, "int")) return f_number(st, at, v, &a, out, true);
    if (!strcmp(f, "float")) return f_number(st, at, v, &a, out, false);
    if (!strcmp(f, "abs")) {
        if (v.t == JV_INT) return *out = jv_int(v.i < 0 && v.i != INT64_MIN ? -v.i : v.i), true;
        if (v.t == JV_FLOAT) return *out = jv_float(fabs(v.f)), true;
        return jerr(st, at, MT_ERR_FORMAT, "bad operand type for abs(): %s", jv_type_name(v));
    }
    if (!strcmp(f, "round")) {
        const jv *p = farg(&a, 0, "precision");
        double m = pow(10, p && p->t == JV_INT ? (double)p->i : 0), x0;
        if (v.t != JV_INT && v.t != JV_FLOAT) return jerr(st, at, MT_ERR_FORMAT, "round needs a number");
        x0 = v.t == JV_INT ? (double)v.i : v.f;
        return *out = jv_float(round(x0 * m) / m), true;
    }
    if (!strcmp(f, "list")) return jv_iterate(st, at, v, &out->l) && (out->t = JV_LIST, true);
    if (!strcmp(f, "reverse")) {
        jlist *items, *l;
        if (v.t == JV_STR) {
            jbuf b = jb_new(st);
            for (size_t e = v.s.n; e > 0;) {
                size_t k = e - 1;
                while (k > 0 && ((unsigned char)v.s.p[k] & 0xC0) == 0x80) k--;
                jb_put(&b, v.s.p + k, e - k);
                e = k;
            }
            return jv_from_buf(st, at, &b, out);
        }
        if (!jv_iterate(st, at, v, &items) || !(l = jv_list_new(&st->ja, items->n))) return st->failed ? false : jerr_alloc(st, at);
        for (size_t i = items->n; i-- > 0;) l->v[l->n++] = items->v[i];
        return out_list(out, l);
    }
    if (!strcmp(f, "sort")) return f_sort(st, at, v, &a, out, 0);
    if (!strcmp(f, "min")) return f_sort(st, at, v, &a, out, 1);
    if (!strcmp(f, "max")) return f_sort(st, at, v, &a, out, 2);
    if (!strcmp(f, "unique")) return f_sort(st, at, v, &a, out, 3);
    if (!strcmp(f, "sum")) {
        jlist *items;
        const jv *attr = farg(&a, 0, "attribute"), *start = farg(&a, 1, "start");
        if (!jv_iterate(st, at, v, &items)) return false;
        jv acc = start ? *start : jv_int(0);
        jnode plus = {.kind = N_BINOP, .op = OP_ADD, .line = at->line};
        for (size_t i = 0; i < items->n; i++) {
            x = items->v[i];
            if (attr && !attr_path(st, at, x, *attr, &x)) return false;
            jv vals[2] = {acc, x};
            if (x.t != JV_INT && x.t != JV_FLOAT && x.t != JV_BOOL) return jerr(st, at, MT_ERR_FORMAT, "sum of a %s", jv_type_name(x));
            bool fl = acc.t == JV_FLOAT || x.t == JV_FLOAT;
            double fa = acc.t == JV_FLOAT ? acc.f : acc.t == JV_INT ? (double)acc.i : acc.b;
            double fx = x.t == JV_FLOAT ? x.f : x.t == JV_INT ? (double)x.i : x.b;
            int64_t r;
            if (fl) acc = jv_float(fa + fx);
            else if (__builtin_add_overflow(acc.t == JV_INT ? acc.i : acc.b, x.t == JV_INT ? x.i : x.b, &r))
                return jerr(st, &plus, MT_ERR_LIMIT, "integer overflow");
            else acc = jv_int(r);
            (void)vals;
        }
        return *out = acc, true;
    }
    if (!strcmp(f, "selectattr")) return f_select(st, at, v, &a, out, true, true);
    if (!strcmp(f, "rejectattr")) return f_select(st, at, v, &a, out, true, false);
    if (!strcmp(f, "select")) return f_select(st, at, v, &a, out, false, true);
    if (!strcmp(f, "reject")) return f_select(st, at, v, &a, out, false, false);
    if (!strcmp(f, "map")) return f_map(st, at, v, &a, out);
    if (!strcmp(f, "attr")) return nargs ? attr_path(st, at, v, args[0], out) : jerr(st, at, MT_ERR_FORMAT, "attr needs a name");
    if (!strcmp(f, "indent")) return f_indent(st, at, v, &a, out);
    if (!strcmp(f, "wordcount")) {
        if (!jv_to_str(st, at, v, &s)) return false;
        jnode dummy = *at;
        jfunc m = {.kind = FN_METHOD, .name = "split", .self = s};
        return jmethod_call(st, &dummy, &m, NULL, 0, NULL, NULL, 0, &x) && (*out = jv_int((int64_t)x.l->n), true);
    }
    if (!strcmp(f, "escape") || !strcmp(f, "e")) {
        if (!jv_to_str(st, at, v, &s)) return false;
        jbuf b = jb_new(st);
        for (size_t i = 0; i < s.s.n; i++) {
            const char *r = s.s.p[i] == '&' ? "&amp;" : s.s.p[i] == '<' ? "&lt;" : s.s.p[i] == '>' ? "&gt;"
                          : s.s.p[i] == '"' ? "&#34;" : s.s.p[i] == '\'' ? "&#39;" : NULL;
            if (r) jb_puts(&b, r);
            else jb_put(&b, s.s.p + i, 1);
        }
        return jv_from_buf(st, at, &b, out);
    }
    return jerr(st, at, MT_ERR_FORMAT, "no filter named '%s'", f);
}

bool jtest(jstate *st, const jnode *at, const char *t, jv v, const jv *args, size_t nargs, bool *out) {
    const jv *a0 = nargs ? &args[0] : NULL;
    bool num = v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
    if (!strcmp(t, "defined")) *out = v.t != JV_UNDEF;
    else if (!strcmp(t, "undefined")) *out = v.t == JV_UNDEF;
    else if (!strcmp(t, "none")) *out = v.t == JV_NONE;
    else if (!strcmp(t, "boolean")) *out = v.t == JV_BOOL;
    else if (!strcmp(t, "true")) *out = v.t == JV_BOOL && v.b;
    else if (!strcmp(t, "false")) *out = v.t == JV_BOOL && !v.b;
    else if (!strcmp(t, "integer")) *out = v.t == JV_INT;
    else if (!strcmp(t, "float")) *out = v.t == JV_FLOAT;
    else if (!strcmp(t, "number")) *out = num;
    else if (!strcmp(t, "string")) *out = v.t == JV_STR;
    else if (!strcmp(t, "mapping")) *out = v.t == JV_DICT;
    else if (!strcmp(t, "iterable")) *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF;
    else if (!strcmp(t, "sequence")) *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT;
    else if (!strcmp(t, "callable")) *out = v.t == JV_FUNC;
    else if (!strcmp(t, "odd") || !strcmp(t, "even") || !strcmp(t, "divisibleby")) {
        int64_t d = t[0] == 'd' ? (a0 && a0->t == JV_INT ? a0->i : 0) : 2;
        if (v.t != JV_INT || !d) return jerr(st, at, MT_ERR_FORMAT, "test '%s' needs integers", t);
        int64_t r = d == -1 ? 0 : v.i % d;
        *out = t[0] == 'o' ? r != 0 : r == 0;
    } else if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        jv s;
        if (v.t != JV_STR) return *out = false, true;
        if (!jstr_case(st, at, v, t[0] == 'l' ? 1 : 0, &s)) return false;
        *out = jv_equal(s, v);
    } else if (!strcmp(t, "in")) {
        if (!a0) return jerr(st, at, MT_ERR_FORMAT, "test 'in' needs a container");
        if (a0->t == JV_STR) {
            if (v.t != JV_STR) return jerr(st, at, MT_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", jv_type_name(v));
            *out = v.s.n == 0 || ju_find(a0->s.p, a0->s.n, v.s.p, v.s.n) != NULL;
        } else if (a0->t == JV_LIST) {
            *out = false;
            for (size_t i = 0; i < a0->l->n && !*out; i++) *out = jv_equal(a0->l->v[i], v);
        } else if (a0->t == JV_DICT || a0->t == JV_NS) {
            *out = jv_dict_find(a0->d, v) != NULL;
        } else if (a0->t == JV_UNDEF) {
            *out = false;
        } else {
            return jerr(st, at, MT_ERR_FORMAT, "argument of type '%s' is not iterable", jv_type_name(*a0));
        }
    } else {
        static const char *const cmp[][2] = {{"eq", "=="}, {"equalto", "=="}, {"sameas", "=="}, {"ne", "!="},
                                             {"lt", "<"},   {"lessthan", "<"}, {"le", "<="},    {"gt", ">"},
                                             {"greaterthan", ">"}, {"ge", ">="}, {"==", "=="}, {"!=", "!="},
                                             {"<", "<"}, {"<=", "<="}, {">", ">"}, {">=", ">="}};
        size_t i = 0;
        while (i < MT_ARRAY_LEN(cmp) && strcmp(cmp[i][0], t)) i++;
        if (i == MT_ARRAY_LEN(cmp)) return jerr(st, at, MT_ERR_FORMAT, "no test named '%s'", t);
        if (!a0) return jerr(st, at, MT_ERR_FORMAT, "test '%s' needs an argument", t);
        const char *op = cmp[i][1];
        if (!strcmp(t, "sameas")) {
            *out = v.t == a0->t && (v.t == JV_NONE || v.t == JV_UNDEF || (v.t == JV_BOOL && v.b == a0->b) ||
                                    ((v.t == JV_LIST || v.t == JV_DICT) && v.l == a0->l) || (v.t == JV_INT && v.i == a0->i));
            return true;
        }
        if (op[0] == '=' || op[0] == '!') return *out = jv_equal(v, *a0) == (op[0] == '='), true;
        bool ok;
        int c = jv_compare(v, *a0, &ok);
        if (!ok) return jerr(st, at, MT_ERR_FORMAT, "cannot compare %s and %s", jv_type_name(v), jv_type_name(*a0));
        *out = op[0] == '<' ? (op[1] ? c <= 0 : c < 0) : (op[1] ? c >= 0 : c > 0);
    }
    return true;
}
