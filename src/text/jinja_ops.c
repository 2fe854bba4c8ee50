/* text/jinja_ops: binary operators on values as Python evaluates them - arithmetic on ints and floats (ints
 * stay 64-bit and fail on overflow instead of growing), / always float, // and % flooring, ** , ~ concatenation
 * of str(), + on strings / lists / tuples, * repetition, and str % args (jinja_format.c).
 */
#include <math.h>

#include "text/jinja_int.h"

static bool int_result(jstate *st, const jnode *n, bool fits, int64_t r, jv *out) {
    if (!fits) return jerr(st, n, MT_ERR_LIMIT, "integer overflow");
    *out = jv_int(r);
    return true;
}

static bool repeat(jstate *st, const jnode *n, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        jbuf b = jb_new(st);
        for (int64_t i = 0; i < times && jb_put(&b, seq.s.p, seq.s.n); i++) {}
        return jv_from_buf(st, n, &b, out);
    }
    size_t total;
    if (!mt_mul_ok(seq.l->n, (size_t)times, &total) || total > st->out.limit)
        return jerr(st, n, MT_ERR_LIMIT, "list repetition too large");
    jlist *l = jv_list_new(&st->ja, total);
    if (!l) return jerr_alloc(st, n);
    for (int64_t i = 0; i < times; i++) memcpy(l->v + l->n, seq.l->v, seq.l->n * sizeof(jv)), l->n += seq.l->n;
    l->tuple = seq.l->tuple;
    *out = (jv){.t = JV_LIST, .l = l};
    return true;
}

bool jarith(jstate *st, const jnode *n, int op, jv a, jv b, jv *out) {
    if (op == OP_TILDE) {
        jbuf s = jb_new(st);
        jv_write_str(&s, a);
        jv_write_str(&s, b);
        return jv_from_buf(st, n, &s, out);
    }
    if (op == OP_MOD && a.t == JV_STR) return jstr_percent(st, n, a, b, out);
    bool an = a.t == JV_INT || a.t == JV_BOOL || a.t == JV_FLOAT, bn = b.t == JV_INT || b.t == JV_BOOL || b.t == JV_FLOAT;
    if (an && bn) {
        bool fl = a.t == JV_FLOAT || b.t == JV_FLOAT;
        /* a float operand is read only through fx / fy: its union bytes are not a bool */
        int64_t x = a.t == JV_INT ? a.i : a.t == JV_BOOL ? a.b : 0, y = b.t == JV_INT ? b.i : b.t == JV_BOOL ? b.b : 0;
        int64_t r = 0;
        double fx = a.t == JV_FLOAT ? a.f : (double)x, fy = b.t == JV_FLOAT ? b.f : (double)y;
        switch (op) {
        case OP_ADD: case OP_SUB: case OP_MUL: {
            if (fl) return *out = jv_float(op == OP_ADD ? fx + fy : op == OP_SUB ? fx - fy : fx * fy), true;
            bool over = op == OP_ADD ? __builtin_add_overflow(x, y, &r)
                      : op == OP_SUB ? __builtin_sub_overflow(x, y, &r) : __builtin_mul_overflow(x, y, &r);
            return int_result(st, n, !over, r, out);
        }
        case OP_DIV:
            if (fy == 0) return jerr(st, n, MT_ERR_FORMAT, "division by zero");
            return *out = jv_float(fx / fy), true;
        case OP_FLOORDIV: case OP_MOD:
            if (fy == 0) return jerr(st, n, MT_ERR_FORMAT, "integer division or modulo by zero");
            if (fl) {
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                return *out = jv_float(op == OP_MOD ? m : floor((fx - m) / fy + 0.5)), true;
            }
            if (x == INT64_MIN && y == -1) return jerr(st, n, MT_ERR_LIMIT, "integer overflow");
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return *out = jv_int(op == OP_MOD ? r : (x - r) / y), true;
        case OP_POW:
            if (fl || y < 0) return *out = jv_float(pow(fx, fy)), true;
            r = 1;
            for (int64_t i = 0; i < y; i++) {
                if (__builtin_mul_overflow(r, x, &r)) return jerr(st, n, MT_ERR_LIMIT, "integer overflow");
                if (r == 0 || r == 1) break;
            }
            return *out = jv_int(r), true;
        }
    }
    if (op == OP_ADD && a.t == JV_STR && b.t == JV_STR) {
        jbuf s = jb_new(st);
        jb_put(&s, a.s.p, a.s.n);
        jb_put(&s, b.s.p, b.s.n);
        return jv_from_buf(st, n, &s, out);
    }
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST && a.l->tuple == b.l->tuple) {
        jlist *l = jv_list_new(&st->ja, a.l->n + b.l->n);
        if (!l) return jerr_alloc(st, n);
        if (a.l->n) memcpy(l->v, a.l->v, a.l->n * sizeof(jv));
        if (b.l->n) memcpy(l->v + a.l->n, b.l->v, b.l->n * sizeof(jv));
        l->n = a.l->n + b.l->n, l->tuple = a.l->tuple;
        *out = (jv){.t = JV_LIST, .l = l};
        return true;
    }
    if (op == OP_MUL && (a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
        return repeat(st, n, a, b.t == JV_INT ? b.i : b.b, out);
    if (op == OP_MUL && (b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
        return repeat(st, n, b, a.t == JV_INT ? a.i : a.b, out);
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) {
        jv u = a.t == JV_UNDEF ? a : b;
        if (u.s.p) return jerr(st, n, MT_ERR_FORMAT, "'%.*s' is undefined", (int)u.s.n, u.s.p);
        return jerr(st, n, MT_ERR_FORMAT, "operation on an undefined value");
    }
    static const char *names[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    return jerr(st, n, MT_ERR_FORMAT, "unsupported operand types for %s: %s and %s", op <= OP_POW ? names[op] : "?",
                jv_type_name(a), jv_type_name(b));
}
