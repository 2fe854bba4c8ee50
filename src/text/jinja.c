/* text/jinja: the public entry points (parse, render, free) and the error and string-building helpers every
 * part of a render shares. Pipeline and memory: jinja_int.h.
 */
#include <stdio.h>

#include "text/jinja_int.h"

#define MAX_SOURCE ((size_t)4 << 20)

struct mt_jinja {
    jarena ja;
    jnode **body;
    size_t n;
    const char *what;
};

const mt_jinja_limits mt_jinja_limits_default = {(size_t)16 << 20, (size_t)256 << 20, 10000000, 64};

bool jerr(jstate *st, const jnode *at, mt_status code, const char *fmt, ...) {
    if (st->failed) return false;
    st->failed = true;
    st->code = code;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) mt_err_set(st->err, code, "%s:%d: %s", st->what, at->line, msg);
    else mt_err_set(st->err, code, "%s: %s", st->what, msg);
    return false;
}

bool jerr_alloc(jstate *st, const jnode *at) {
    if (st->ja.over) return jerr(st, at, MT_ERR_LIMIT, "render uses more than %zu bytes of memory", st->ja.limit);
    return jerr(st, at, MT_ERR_NOMEM, "out of memory");
}

bool jerr_buf(jstate *st, const jnode *at, const jbuf *b) {
    if (b->over) return jerr(st, at, MT_ERR_LIMIT, "output or a string longer than %zu bytes", b->limit);
    return jerr(st, at, MT_ERR_NOMEM, "out of memory");
}

jbuf jb_new(const jstate *st) { return (jbuf){.limit = st->out.limit}; }

bool jv_from_buf(jstate *st, const jnode *at, jbuf *b, jv *out) {
    if (b->over || b->nomem) {
        jerr_buf(st, at, b);
        mt_free(b->p);
        return false;
    }
    char *s = ja_strdup(&st->ja, b->p ? b->p : "", b->n);
    size_t n = b->n;
    mt_free(b->p);
    if (!s) return jerr_alloc(st, at);
    *out = jv_str(s, n);
    return true;
}

/* ---- entry points ---- */

mt_status mt_jinja_parse(const char *src, size_t len, const char *what, mt_jinja **out, mt_err *err) {
    if (!what) what = "template";
    if (!src && len) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: NULL source", what);
    if (len > MAX_SOURCE) return mt_err_set(err, MT_ERR_LIMIT, "%s: template of %zu bytes (limit %zu)", what, len, MAX_SOURCE);
    mt_jinja *t = mt_calloc(1, sizeof *t);
    if (!t) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    ja_init(&t->ja, 0);
    t->what = ja_strdup(&t->ja, what, strlen(what));
    jtok *toks = NULL;
    size_t ntoks;
    mt_status st = t->what ? jinja_lex(src ? src : "", len, what, &t->ja, &toks, &ntoks, err)
                           : mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    if (st == MT_OK) st = jinja_parse(toks, ntoks, what, &t->ja, &t->body, &t->n, err);
    mt_free(toks);
    if (st) {
        mt_jinja_free(t);
        return st;
    }
    *out = t;
    return MT_OK;
}

mt_status mt_jinja_render(const mt_jinja *t, const cJSON *vars, const mt_jinja_limits *limits, char **out,
                          size_t *out_len, mt_err *err) {
    if (!t || !out) return mt_err_set(err, MT_ERR_INVALID_ARG, "jinja render: NULL template or output");
    const mt_jinja_limits *lim = limits ? limits : &mt_jinja_limits_default;
    jstate st = {.what = t->what, .err = err, .max_steps = lim->max_steps, .max_depth = lim->max_depth};
    st.out.limit = lim->max_output;
    ja_init(&st.ja, lim->max_memory);
    bool ok = jinja_run(&st, t->body, t->n, vars);
    if (ok && !st.out.p) ok = jb_put(&st.out, "", 0) || jerr_buf(&st, NULL, &st.out);
    ja_free(&st.ja);
    if (!ok) {
        mt_free(st.out.p);
        return st.code ? st.code : MT_ERR_INTERNAL;
    }
    *out = st.out.p;
    if (out_len) *out_len = st.out.n;
    return MT_OK;
}

void mt_jinja_free(mt_jinja *t) {
    if (!t) return;
    ja_free(&t->ja);
    mt_free(t);
}
