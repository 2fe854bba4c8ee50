/* text/jinja_eval: the tree-walking interpreter - scopes, expressions, statements, macros, and the
 * jinja_run that a render starts with (jinja.c holds the public entry points).
 *
 * Scopes follow jinja2: a for loop and a macro call open a new scope (what {% set %} does inside stays inside;
 * namespace() objects carry values out), if/elif/else do not. Macros see the scope they were defined in.
 * Every loop iteration and macro call counts as a step; steps, macro depth, output bytes and arena bytes are
 * bounded by mt_jinja_limits, so no template can run forever or grow without limit.
 */
#include "text/jinja_int.h"

#define MAX_EVAL_DEPTH 2000 /* nested expression evaluations, across macro calls: bounds the C stack */

/* ---- scopes ---- */

static jscope *scope_new(jstate *st, jscope *parent) {
    jscope *s = ja_alloc(&st->ja, sizeof *s);
    if (s) s->parent = parent;
    return s;
}

static bool scope_set(jstate *st, const jnode *at, jscope *s, const char *name, jv v) {
    size_t len = strlen(name);
    for (size_t i = 0; i < s->n; i++)
        if (s->lens[i] == len && memcmp(s->names[i], name, len) == 0) return s->vals[i] = v, true;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **nn = ja_alloc(&st->ja, cap * sizeof *nn);
        size_t *nl = ja_alloc(&st->ja, cap * sizeof *nl);
        jv *nv = ja_alloc(&st->ja, cap * sizeof *nv);
        if (!nn || !nl || !nv) return jerr_alloc(st, at);
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nl, s->lens, s->n * sizeof *nl);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn, s->lens = nl, s->vals = nv, s->cap = cap;
    }
    s->names[s->n] = name, s->lens[s->n] = len, s->vals[s->n++] = v;
    return true;
}

static bool lookup(jstate *st, jscope *s, const char *name, size_t len, jv *out) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (s->lens[i] == len && memcmp(s->names[i], name, len) == 0) return *out = s->vals[i], true;
    if (jglobal_exists(name, len)) {
        jfunc *f = ja_alloc(&st->ja, sizeof *f);
        if (!f) return jerr_alloc(st, NULL);
        f->kind = FN_GLOBAL, f->name = name;
        *out = (jv){.t = JV_FUNC, .fn = f};
        return true;
    }
    *out = jv_undef(name);
    return true;
}

/* ---- expressions ---- */

static bool eval(jstate *st, jscope *sc, const jnode *n, jv *out);
static bool exec_body(jstate *st, jscope *sc, jnode *const *body, size_t n);

static bool step(jstate *st, const jnode *at) {
    if (++st->steps <= st->max_steps) return true;
    return jerr(st, at, MT_ERR_LIMIT, "more than %zu loop iterations and macro calls", st->max_steps);
}

static bool bound_method(jstate *st, const jnode *at, jv self, const char *name, jv *out) {
    jfunc *f = ja_alloc(&st->ja, sizeof *f);
    if (!f) return jerr_alloc(st, at);
    f->kind = FN_METHOD, f->name = name, f->self = self;
    *out = (jv){.t = JV_FUNC, .fn = f};
    return true;
}

static bool loop_attr(jstate *st, const jnode *at, const jloop *lp, const char *name, jv *out) {
    int64_t i = lp->index0, n = lp->length;
    if (!strcmp(name, "index")) *out = jv_int(i + 1);
    else if (!strcmp(name, "index0")) *out = jv_int(i);
    else if (!strcmp(name, "revindex")) *out = jv_int(n - i);
    else if (!strcmp(name, "revindex0")) *out = jv_int(n - i - 1);
    else if (!strcmp(name, "first")) *out = jv_bool(i == 0);
    else if (!strcmp(name, "last")) *out = jv_bool(i == n - 1);
    else if (!strcmp(name, "length")) *out = jv_int(n);
    else if (!strcmp(name, "depth")) *out = jv_int(1);
    else if (!strcmp(name, "depth0")) *out = jv_int(0);
    else if (!strcmp(name, "previtem")) *out = i > 0 ? lp->items->v[i - 1] : jv_undef("previtem");
    else if (!strcmp(name, "nextitem")) *out = i + 1 < n ? lp->items->v[i + 1] : jv_undef("nextitem");
    else if (!strcmp(name, "cycle")) return bound_method(st, at, (jv){.t = JV_LOOP, .loop = (jloop *)lp}, name, out);
    else *out = jv_undef(name);
    return true;
}

static bool getattr_(jstate *st, const jnode *at, jv obj, const char *name, size_t len, jv *out) {
    switch (obj.t) {
    case JV_UNDEF:
        if (obj.s.p) return jerr(st, at, MT_ERR_FORMAT, "'%.*s' is undefined", (int)obj.s.n, obj.s.p);
        return jerr(st, at, MT_ERR_FORMAT, "attribute '%.*s' of an undefined value", (int)len, name);
    case JV_DICT:
        if (jmethod_exists(obj, name, len)) return bound_method(st, at, obj, name, out);
        /* fall through */
    case JV_NS: {
        const jv *v = jv_dict_get(obj.d, name, len);
        *out = v ? *v : jv_undef(name);
        return true;
    }
    case JV_LOOP: return loop_attr(st, at, obj.loop, name, out);
    default:
        if (jmethod_exists(obj, name, len)) return bound_method(st, at, obj, name, out);
        *out = jv_undef(name);
        return true;
    }
}

static bool getitem(jstate *st, const jnode *at, jv obj, jv key, jv *out) {
    if (obj.t == JV_UNDEF) return getattr_(st, at, obj, "[]", 2, out);
    if (obj.t == JV_DICT || obj.t == JV_NS) {
        const jv *v = jv_dict_find(obj.d, key);
        if (v) return *out = *v, true;
    } else if ((obj.t == JV_LIST || obj.t == JV_STR) && (key.t == JV_INT || key.t == JV_BOOL)) {
        int64_t i = key.t == JV_INT ? key.i : key.b;
        int64_t n = obj.t == JV_LIST ? (int64_t)obj.l->n : (int64_t)ju_len(obj.s.p, obj.s.n);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return *out = jv_undef(NULL), true;
        if (obj.t == JV_LIST) return *out = obj.l->v[i], true;
        size_t b = ju_offset(obj.s.p, obj.s.n, (size_t)i), e = ju_offset(obj.s.p, obj.s.n, (size_t)i + 1);
        return *out = jv_str(obj.s.p + b, e - b), true;
    }
    if (key.t == JV_STR && obj.t != JV_DICT && obj.t != JV_NS) {
        char *name = ja_strdup(&st->ja, key.s.p, key.s.n);
        if (!name) return jerr_alloc(st, at);
        return getattr_(st, at, obj, name, key.s.n, out);
    }
    *out = jv_undef(NULL);
    return true;
}

static bool slice_index(jstate *st, const jnode *at, jscope *sc, const jnode *e, int64_t *out, bool *given) {
    *given = false;
    if (!e) return true;
    jv v;
    if (!eval(st, sc, e, &v)) return false;
    if (v.t == JV_NONE) return true;
    if (v.t != JV_INT && v.t != JV_BOOL) return jerr(st, at, MT_ERR_FORMAT, "slice indices must be integers");
    *out = v.t == JV_INT ? v.i : v.b;
    *given = true;
    return true;
}

static bool eval_slice(jstate *st, jscope *sc, const jnode *n, jv *out) {
    jv obj;
    if (!eval(st, sc, n->a, &obj)) return false;
    if (obj.t != JV_LIST && obj.t != JV_STR)
        return jerr(st, n, MT_ERR_FORMAT, "cannot slice a %s", jv_type_name(obj));
    int64_t len = obj.t == JV_LIST ? (int64_t)obj.l->n : (int64_t)ju_len(obj.s.p, obj.s.n);
    int64_t start = 0, stop = 0, stepv = 1;
    bool hs, he, hp;
    if (!slice_index(st, n, sc, n->b, &start, &hs) || !slice_index(st, n, sc, n->c, &stop, &he) ||
        !slice_index(st, n, sc, n->kids2[0], &stepv, &hp))
        return false;
    if (stepv == 0) return jerr(st, n, MT_ERR_FORMAT, "slice step cannot be zero");
    /* Python's PySlice_AdjustIndices */
    int64_t lo = stepv < 0 ? -1 : 0, hi = stepv < 0 ? len - 1 : len;
    if (!hs) start = stepv < 0 ? hi : lo;
    else if (start < 0) start = MT_MAX(start + len, lo);
    else start = MT_MIN(start, hi);
    if (!he) stop = stepv < 0 ? lo : hi;
    else if (stop < 0) stop = MT_MAX(stop + len, lo);
    else stop = MT_MIN(stop, hi);
    jlist *l = jv_list_new(&st->ja, 0);
    if (!l) return jerr_alloc(st, n);
    jbuf b = jb_new(st);
    for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) {
        bool ok;
        if (obj.t == JV_LIST) {
            ok = jv_list_push(&st->ja, l, obj.l->v[i]);
            if (!ok) return jerr_alloc(st, n);
        } else {
            size_t bo = ju_offset(obj.s.p, obj.s.n, (size_t)i), eo = ju_offset(obj.s.p, obj.s.n, (size_t)i + 1);
            if (!jb_put(&b, obj.s.p + bo, eo - bo)) break;
        }
    }
    if (obj.t == JV_STR) return jv_from_buf(st, n, &b, out);
    l->tuple = obj.l->tuple;
    *out = (jv){.t = JV_LIST, .l = l};
    return true;
}

static bool eval_args(jstate *st, jscope *sc, const jnode *n, jv **args, jv **kwv) {
    *args = n->n ? ja_alloc(&st->ja, n->n * sizeof(jv)) : NULL;
    *kwv = n->n2 ? ja_alloc(&st->ja, n->n2 * sizeof(jv)) : NULL;
    if ((n->n && !*args) || (n->n2 && !*kwv)) return jerr_alloc(st, n);
    for (size_t i = 0; i < n->n; i++)
        if (!eval(st, sc, n->kids[i], &(*args)[i])) return false;
    for (size_t i = 0; i < n->n2; i++)
        if (!eval(st, sc, n->kids2[i], &(*kwv)[i])) return false;
    return true;
}

static bool eval_compare(jstate *st, jscope *sc, const jnode *n, jv *out) {
    jv left;
    if (!eval(st, sc, n->a, &left)) return false;
    for (size_t i = 0; i < n->n; i++) {
        jv right;
        if (!eval(st, sc, n->kids[i], &right)) return false;
        bool r;
        int op = n->ops[i];
        if (op == OP_EQ || op == OP_NE) {
            r = jv_equal(left, right) == (op == OP_EQ);
        } else if (op == OP_IN || op == OP_NOTIN) {
            if (!jtest(st, n, "in", left, &right, 1, &r)) return false;
            if (op == OP_NOTIN) r = !r;
        } else {
            bool ok;
            int c = jv_compare(left, right, &ok);
            if (!ok)
                return jerr(st, n, MT_ERR_FORMAT, "'<' not supported between %s and %s", jv_type_name(left),
                            jv_type_name(right));
            r = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
        }
        if (!r) return *out = jv_bool(false), true;
        left = right;
    }
    *out = jv_bool(true);
    return true;
}

static bool eval(jstate *st, jscope *sc, const jnode *n, jv *out) {
    if (++st->depth > MAX_EVAL_DEPTH) {
        st->depth--;
        return jerr(st, n, MT_ERR_LIMIT, "expression nesting too deep");
    }
    bool ok = true;
    jv a, b;
    switch (n->kind) {
    case N_STR: *out = jv_str(n->s, n->sn); break;
    case N_INT: *out = jv_int(n->i); break;
    case N_FLOAT: *out = jv_float(n->f); break;
    case N_BOOL: *out = jv_bool(n->i != 0); break;
    case N_NONE: *out = jv_none(); break;
    case N_BLOCKVAL: *out = st->blockval; break;
    case N_NAME: ok = lookup(st, sc, n->s, n->sn, out); break;
    case N_LIST: case N_TUPLE: {
        jlist *l = jv_list_new(&st->ja, n->n);
        if (!l) { ok = jerr_alloc(st, n); break; }
        for (size_t i = 0; ok && i < n->n; i++) ok = eval(st, sc, n->kids[i], &l->v[l->n++]);
        l->tuple = n->kind == N_TUPLE;
        *out = (jv){.t = JV_LIST, .l = l};
        break;
    }
    case N_DICT: {
        jdict *d = jv_dict_new(&st->ja, n->n);
        if (!d) { ok = jerr_alloc(st, n); break; }
        for (size_t i = 0; ok && i < n->n; i++) {
            ok = eval(st, sc, n->kids[i], &a) && eval(st, sc, n->kids2[i], &b);
            if (ok && !jv_dict_set(&st->ja, d, a, b)) ok = jerr_alloc(st, n);
        }
        *out = (jv){.t = JV_DICT, .d = d};
        break;
    }
    case N_ATTR: ok = eval(st, sc, n->a, &a) && getattr_(st, n, a, n->s, n->sn, out); break;
    case N_ITEM: ok = eval(st, sc, n->a, &a) && eval(st, sc, n->b, &b) && getitem(st, n, a, b, out); break;
    case N_SLICE: ok = eval_slice(st, sc, n, out); break;
    case N_CALL: {
        jv *args, *kwv;
        ok = eval(st, sc, n->a, &a) && eval_args(st, sc, n, &args, &kwv) &&
             jcall(st, n, a, args, n->n, n->names, kwv, n->n2, out);
        break;
    }
    case N_FILTER: {
        jv *args, *kwv;
        ok = eval(st, sc, n->a, &a) && eval_args(st, sc, n, &args, &kwv) &&
             jfilter(st, n, n->s, a, args, n->n, n->names, kwv, n->n2, out);
        break;
    }
    case N_TEST: {
        jv *args, *kwv;
        bool r;
        ok = eval(st, sc, n->a, &a) && eval_args(st, sc, n, &args, &kwv) && jtest(st, n, n->s, a, args, n->n, &r);
        *out = jv_bool(ok && r != (n->op != 0));
        break;
    }
    case N_BINOP: ok = eval(st, sc, n->a, &a) && eval(st, sc, n->b, &b) && jarith(st, n, n->op, a, b, out); break;
    case N_NOT:
        ok = eval(st, sc, n->a, &a); /* a is unset when its evaluation failed */
        if (ok) *out = jv_bool(!jv_truthy(a));
        break;
    case N_NEG: case N_POS:
        ok = eval(st, sc, n->a, &a);
        if (ok && a.t == JV_BOOL) a = jv_int(a.b);
        if (ok && a.t == JV_INT) *out = jv_int(n->kind == N_NEG && a.i != INT64_MIN ? -a.i : a.i);
        else if (ok && a.t == JV_FLOAT) *out = jv_float(n->kind == N_NEG ? -a.f : a.f);
        else if (ok) ok = jerr(st, n, MT_ERR_FORMAT, "bad operand type for unary -: %s", jv_type_name(a));
        break;
    case N_AND: ok = eval(st, sc, n->a, &a) && (jv_truthy(a) ? eval(st, sc, n->b, out) : (*out = a, true)); break;
    case N_OR: ok = eval(st, sc, n->a, &a) && (jv_truthy(a) ? (*out = a, true) : eval(st, sc, n->b, out)); break;
    case N_COMPARE: ok = eval_compare(st, sc, n, out); break;
    case N_COND:
        ok = eval(st, sc, n->b, &a);
        if (ok && jv_truthy(a)) ok = eval(st, sc, n->a, out);
        else if (ok && n->c) ok = eval(st, sc, n->c, out);
        else if (ok) *out = jv_undef(NULL);
        break;
    default: ok = jerr(st, n, MT_ERR_INTERNAL, "statement in expression position");
    }
    st->depth--;
    return ok;
}

/* ---- calls ---- */

static bool run_captured(jstate *st, const jnode *at, jscope *sc, jnode *const *body, size_t n, jv *out) {
    size_t mark = st->out.n;
    int saved_ctl = st->loop_ctl;
    if (!exec_body(st, sc, body, n)) return false;
    st->loop_ctl = saved_ctl;
    char *s = ja_strdup(&st->ja, st->out.p ? st->out.p + mark : "", st->out.n - mark);
    if (!s) return jerr_alloc(st, at);
    *out = jv_str(s, st->out.n - mark);
    st->out.n = mark;
    if (st->out.p) st->out.p[mark] = 0;
    return true;
}

static bool bind_params(jstate *st, const jnode *at, jscope *sc, const jnode *def, const jv *args, size_t nargs,
                        const char **kwn, const jv *kwv, size_t nkw) {
    if (nargs > def->nnames)
        return jerr(st, at, MT_ERR_FORMAT, "macro '%s' takes %zu arguments, %zu given", def->s ? def->s : "caller",
                    def->nnames, nargs);
    for (size_t k = 0; k < nkw; k++) {
        size_t i = 0;
        while (i < def->nnames && strcmp(def->names[i], kwn[k]) != 0) i++;
        if (i == def->nnames || i < nargs)
            return jerr(st, at, MT_ERR_FORMAT, "macro '%s' got an unexpected or repeated argument '%s'",
                        def->s ? def->s : "caller", kwn[k]);
    }
    for (size_t i = 0; i < def->nnames; i++) {
        jv v = jv_undef(def->names[i]);
        bool set = false;
        if (i < nargs) v = args[i], set = true;
        for (size_t k = 0; !set && k < nkw; k++)
            if (!strcmp(def->names[i], kwn[k])) v = kwv[k], set = true;
        if (!set && i < def->n2 && def->kids2 && def->kids2[i] && !eval(st, sc, def->kids2[i], &v)) return false;
        if (!scope_set(st, at, sc, def->names[i], v)) return false;
    }
    return true;
}

bool jcall(jstate *st, const jnode *at, jv fn, const jv *args, size_t nargs, const char **kwn, const jv *kwv,
           size_t nkw, jv *out) {
    if (fn.t != JV_FUNC) {
        if (fn.t == JV_UNDEF && fn.s.p)
            return jerr(st, at, MT_ERR_FORMAT, "'%.*s' is undefined (called as a function)", (int)fn.s.n, fn.s.p);
        return jerr(st, at, MT_ERR_FORMAT, "a %s is not callable", jv_type_name(fn));
    }
    const jfunc *f = fn.fn;
    if (f->kind == FN_METHOD) return jmethod_call(st, at, f, args, nargs, kwn, kwv, nkw, out);
    if (f->kind == FN_GLOBAL) return jglobal_call(st, at, f->name, args, nargs, kwn, kwv, nkw, out);
    if (!step(st, at)) return false;
    if (st->call_depth >= st->max_depth)
        return jerr(st, at, MT_ERR_LIMIT, "macro calls nested deeper than %d", st->max_depth);
    jscope *sc = scope_new(st, f->scope);
    if (!sc) return jerr_alloc(st, at);
    const jnode *def = f->node;
    if (f->kind == FN_CALLER) {
        jnode fake = *def;
        fake.s = NULL;
        if (!bind_params(st, at, sc, &fake, args, nargs, kwn, kwv, nkw)) return false;
    } else {
        if (!bind_params(st, at, sc, def, args, nargs, kwn, kwv, nkw)) return false;
        if (f->caller.t == JV_FUNC && !scope_set(st, at, sc, "caller", f->caller)) return false;
    }
    st->call_depth++;
    bool ok = run_captured(st, at, sc, def->kids, def->n, out);
    st->call_depth--;
    return ok;
}

/* ---- statements ---- */

static bool assign(jstate *st, const jnode *at, jscope *sc, const char *const *names, size_t nn, jv v) {
    if (nn == 1) return scope_set(st, at, sc, names[0], v);
    jlist *items;
    if (v.t == JV_LIST) items = v.l;
    else if (!jv_iterate(st, at, v, &items)) return false;
    if (items->n != nn)
        return jerr(st, at, MT_ERR_FORMAT, "cannot unpack %zu values into %zu names", items->n, nn);
    for (size_t i = 0; i < nn; i++)
        if (!scope_set(st, at, sc, names[i], items->v[i])) return false;
    return true;
}

static bool exec_for(jstate *st, jscope *sc, const jnode *n) {
    jv seq;
    jlist *items;
    if (!eval(st, sc, n->a, &seq) || !jv_iterate(st, n, seq, &items)) return false;
    jscope *inner = scope_new(st, sc);
    if (!inner) return jerr_alloc(st, n);
    if (n->b) {
        jlist *kept = jv_list_new(&st->ja, items->n);
        if (!kept) return jerr_alloc(st, n);
        for (size_t i = 0; i < items->n; i++) {
            jv c;
            if (!step(st, n) || !assign(st, n, inner, n->names, n->nnames, items->v[i]) || !eval(st, inner, n->b, &c))
                return false;
            if (jv_truthy(c)) kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    if (!items->n) return exec_body(st, sc, n->kids2, n->n2);
    jloop *lp = ja_alloc(&st->ja, sizeof *lp);
    if (!lp) return jerr_alloc(st, n);
    lp->items = items, lp->length = (int64_t)items->n;
    if (!scope_set(st, n, inner, "loop", (jv){.t = JV_LOOP, .loop = lp})) return false;
    for (size_t i = 0; i < items->n; i++) {
        lp->index0 = (int64_t)i;
        if (!step(st, n) || !assign(st, n, inner, n->names, n->nnames, items->v[i])) return false;
        if (!scope_set(st, n, inner, "loop", (jv){.t = JV_LOOP, .loop = lp})) return false;
        if (!exec_body(st, inner, n->kids, n->n)) return false;
        int ctl = st->loop_ctl;
        st->loop_ctl = 0;
        if (ctl == 1) break;
    }
    return true;
}

static bool exec_call_block(jstate *st, jscope *sc, const jnode *n) {
    const jnode *call = n->a;
    jv callee, *args, *kwv, res;
    if (!eval(st, sc, call->a, &callee) || !eval_args(st, sc, call, &args, &kwv)) return false;
    jfunc *caller = ja_alloc(&st->ja, sizeof *caller), *bound = ja_alloc(&st->ja, sizeof *bound);
    if (!caller || !bound) return jerr_alloc(st, n);
    caller->kind = FN_CALLER, caller->name = "caller", caller->node = n, caller->scope = sc;
    if (callee.t == JV_FUNC && callee.fn->kind == FN_MACRO) {
        *bound = *callee.fn;
        bound->caller = (jv){.t = JV_FUNC, .fn = caller};
        callee.fn = bound;
    }
    if (!jcall(st, n, callee, args, call->n, call->names, kwv, call->n2, &res)) return false;
    return jv_write_str(&st->out, res) || jerr_buf(st, n, &st->out);
}

static bool exec(jstate *st, jscope *sc, const jnode *n) {
    jv v;
    switch (n->kind) {
    case N_TEXT: return jb_put(&st->out, n->s, n->sn) || jerr_buf(st, n, &st->out);
    case N_PRINT: return eval(st, sc, n->a, &v) && (jv_write_str(&st->out, v) || jerr_buf(st, n, &st->out));
    case N_IF:
        if (!eval(st, sc, n->a, &v)) return false;
        return jv_truthy(v) ? exec_body(st, sc, n->kids, n->n) : exec_body(st, sc, n->kids2, n->n2);
    case N_FOR: return exec_for(st, sc, n);
    case N_SET:
        if (!eval(st, sc, n->a, &v)) return false;
        if (n->op) {
            jv ns;
            if (!lookup(st, sc, n->s, n->sn, &ns)) return false;
            if (ns.t != JV_NS) return jerr(st, n, MT_ERR_FORMAT, "cannot assign attribute on a %s", jv_type_name(ns));
            return jv_dict_set(&st->ja, ns.d, jv_str(n->names[0], strlen(n->names[0])), v) || jerr_alloc(st, n);
        }
        return assign(st, n, sc, n->names, n->nnames, v);
    case N_SETBLOCK: case N_FILTERBLOCK:
        if (!run_captured(st, n, sc, n->kids, n->n, &v)) return false;
        if (n->a) {
            jv saved = st->blockval;
            st->blockval = v;
            bool ok = eval(st, sc, n->a, &v);
            st->blockval = saved;
            if (!ok) return false;
        }
        if (n->kind == N_FILTERBLOCK) return jv_write_str(&st->out, v) || jerr_buf(st, n, &st->out);
        return scope_set(st, n, sc, n->names[0], v);
    case N_MACRO: {
        jfunc *f = ja_alloc(&st->ja, sizeof *f);
        if (!f) return jerr_alloc(st, n);
        f->kind = FN_MACRO, f->name = n->s, f->node = n, f->scope = sc;
        return scope_set(st, n, sc, n->s, (jv){.t = JV_FUNC, .fn = f});
    }
    case N_CALLBLOCK: return exec_call_block(st, sc, n);
    case N_BREAK: st->loop_ctl = 1; return true;
    case N_CONTINUE: st->loop_ctl = 2; return true;
    default: return jerr(st, n, MT_ERR_INTERNAL, "expression in statement position");
    }
}

static bool exec_body(jstate *st, jscope *sc, jnode *const *body, size_t n) {
    for (size_t i = 0; i < n && !st->loop_ctl; i++)
        if (!exec(st, sc, body[i])) return false;
    return true;
}

bool jinja_run(jstate *st, jnode *const *body, size_t n, const cJSON *vars) {
    if (!(st->globals = scope_new(st, NULL))) return jerr_alloc(st, NULL);
    if (vars && !cJSON_IsObject(vars)) return jerr(st, NULL, MT_ERR_INVALID_ARG, "variables must be a JSON object");
    for (const cJSON *c = vars ? vars->child : NULL; c; c = c->next) {
        jv v;
        if (!jv_from_json(&st->ja, c, 0, &v))
            return jerr(st, NULL, MT_ERR_LIMIT, "variable '%s' too deep or too large", c->string);
        if (!scope_set(st, NULL, st->globals, c->string, v)) return false;
    }
    return exec_body(st, st->globals, body, n);
}
