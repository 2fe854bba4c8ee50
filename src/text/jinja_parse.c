/* text/jinja_parse: tokens -> AST, by recursive descent with jinja2 3.1's grammar and precedence.
 *
 *   | level (loosest first) | forms                                                        |
 *   |-----------------------|--------------------------------------------------------------|
 *   | conditional           | a if cond else b   (else optional: undefined)                 |
 *   | or / and / not        | boolean, short-circuit, Python's value-returning semantics   |
 *   | compare               | == != < <= > >= in, not in (chained like Python)              |
 *   | + -                   |                                                              |
 *   | ~                     | string concatenation                                         |
 *   | * / // %              |                                                              |
 *   | **                    |                                                              |
 *   | unary - +             | then postfix: .attr [index] [a:b:c] (args), then |filter, is test |
 *
 * Statements: if/elif/else, for (targets, if-filter, else), set (= value, ns.attr, block form with filters),
 * macro, call, filter, break, continue, generation (its body, inline). Errors name what:LINE:COL.
 */
#include <stdio.h>

#include "text/jinja_int.h"

#define MAX_NEST 200

typedef struct parser {
    const jtok *t;
    size_t n, pos;
    const char *what;
    jarena *ja;
    mt_err *err;
    int depth;
    bool failed;
    mt_status code;
} parser;

static const jtok *cur(parser *P) { return &P->t[P->pos]; }

static void *fail(parser *P, const jtok *at, const char *fmt, const char *arg) {
    if (P->failed) return NULL;
    P->failed = true;
    P->code = MT_ERR_FORMAT;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg);
    mt_err_set(P->err, MT_ERR_FORMAT, "%s:%d:%d: %s", P->what, at->line, at->col, msg);
    return NULL;
}

static void *nomem(parser *P) {
    if (!P->failed) mt_err_set(P->err, MT_ERR_NOMEM, "%s: out of memory", P->what), P->code = MT_ERR_NOMEM;
    P->failed = true;
    return NULL;
}

static bool is_name(const jtok *t, const char *s) {
    return t->type == TK_NAME && t->n == strlen(s) && memcmp(t->p, s, t->n) == 0;
}
static bool is_op(const jtok *t, int op) { return t->type == TK_OP && t->op == op; }

static bool accept_op(parser *P, int op) {
    if (!is_op(cur(P), op)) return false;
    P->pos++;
    return true;
}
static bool accept_name(parser *P, const char *s) {
    if (!is_name(cur(P), s)) return false;
    P->pos++;
    return true;
}

static const char *tok_desc(const jtok *t) {
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "text";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: return "a name";
    case TK_STRING: return "a string";
    case TK_INT: case TK_FLOAT: return "a number";
    default: return "an operator";
    }
}

static bool expect_op(parser *P, int op, const char *what) {
    if (accept_op(P, op)) return true;
    char m[64];
    snprintf(m, sizeof m, "expected '%s', got %%s", what);
    fail(P, cur(P), m, tok_desc(cur(P)));
    return false;
}

static jnode *node(parser *P, int kind, const jtok *at) {
    jnode *n = ja_alloc(P->ja, sizeof *n);
    if (!n) return nomem(P);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    return n;
}

/* A growing array of pointers in the arena (doubles by copying; the old space stays in the arena). */
typedef struct vec {
    void **p;
    size_t n, cap;
} vec;

static bool vpush(parser *P, vec *v, void *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **p = ja_alloc(P->ja, cap * sizeof *p);
        if (!p) return nomem(P), false;
        if (v->n) memcpy(p, v->p, v->n * sizeof *p);
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return true;
}

static const char *name_dup(parser *P, const jtok *t) {
    char *s = ja_strdup(P->ja, t->p, t->n);
    if (!s) nomem(P);
    return s;
}

static jnode *parse_expr(parser *P, bool cond);
static jnode *parse_unary(parser *P, bool with_filter);

static bool enter(parser *P) {
    if (++P->depth <= MAX_NEST) return true;
    if (!P->failed) {
        P->failed = true;
        P->code = MT_ERR_LIMIT;
        mt_err_set(P->err, MT_ERR_LIMIT, "%s:%d:%d: nesting deeper than %d", P->what, cur(P)->line, cur(P)->col,
                   MAX_NEST);
    }
    return false;
}

/* Arguments of a call or filter, after '(' up to and including ')'. */
static bool parse_args(parser *P, jnode *call) {
    vec pos = {0}, kwv = {0}, kwn = {0};
    while (!accept_op(P, OP_RPAREN)) {
        if (pos.n + kwv.n && !expect_op(P, OP_COMMA, ",")) return false;
        if (accept_op(P, OP_RPAREN)) break;
        const jtok *t = cur(P);
        if (t->type == TK_NAME && is_op(&P->t[P->pos + 1], OP_ASSIGN)) {
            P->pos += 2;
            jnode *v = parse_expr(P, true);
            if (!v || !vpush(P, &kwn, (void *)name_dup(P, t)) || !vpush(P, &kwv, v)) return false;
        } else {
            if (kwv.n) return fail(P, t, "positional argument after keyword argument%s", ""), false;
            jnode *v = parse_expr(P, true);
            if (!v || !vpush(P, &pos, v)) return false;
        }
    }
    call->kids = (jnode **)pos.p, call->n = pos.n;
    call->kids2 = (jnode **)kwv.p, call->n2 = kwv.n;
    call->names = (const char **)kwn.p, call->nnames = kwn.n;
    return true;
}

static jnode *parse_tuple(parser *P, bool cond, bool explicit_parens) {
    const jtok *at = cur(P);
    vec items = {0};
    bool comma = false;
    for (;;) {
        if (items.n) {
            if (!accept_op(P, OP_COMMA)) break;
            comma = true;
            if (explicit_parens && is_op(cur(P), OP_RPAREN)) break;
            if (!explicit_parens && (cur(P)->type == TK_BLOCK_END || cur(P)->type == TK_VAR_END)) break;
        }
        if (explicit_parens && is_op(cur(P), OP_RPAREN) && !items.n) break;
        jnode *e = parse_expr(P, cond);
        if (!e || !vpush(P, &items, e)) return NULL;
    }
    if (items.n == 1 && !comma) return items.p[0];
    jnode *t = node(P, N_TUPLE, at);
    if (t) t->kids = (jnode **)items.p, t->n = items.n;
    return t;
}

static jnode *parse_primary(parser *P) {
    const jtok *t = cur(P);
    jnode *n;
    switch (t->type) {
    case TK_NAME:
        P->pos++;
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            if ((n = node(P, N_BOOL, t))) n->i = t->p[0] == 't' || t->p[0] == 'T';
        } else if (is_name(t, "none") || is_name(t, "None")) {
            n = node(P, N_NONE, t);
        } else if ((n = node(P, N_NAME, t))) {
            n->s = name_dup(P, t), n->sn = t->n;
        }
        return n;
    case TK_STRING: {
        size_t total = 0, k = P->pos;
        for (; P->t[k].type == TK_STRING; k++) total += P->t[k].n;
        char *s = ja_alloc(P->ja, total + 1);
        if (!s) return nomem(P);
        total = 0;
        for (; P->pos < k; P->pos++) memcpy(s + total, P->t[P->pos].p, P->t[P->pos].n), total += P->t[P->pos].n;
        if ((n = node(P, N_STR, t))) n->s = s, n->sn = total;
        return n;
    }
    case TK_INT:
        P->pos++;
        if ((n = node(P, N_INT, t))) n->i = t->i;
        return n;
    case TK_FLOAT:
        P->pos++;
        if ((n = node(P, N_FLOAT, t))) n->f = t->f;
        return n;
    case TK_OP:
        if (accept_op(P, OP_LPAREN)) {
            n = parse_tuple(P, true, true);
            if (n && !expect_op(P, OP_RPAREN, ")")) return NULL;
            if (n && n->kind != N_TUPLE && is_op(&P->t[P->pos - 2], OP_LPAREN)) return fail(P, t, "empty parentheses%s", "");
            return n;
        }
        if (accept_op(P, OP_LBRACKET)) {
            vec items = {0};
            while (!accept_op(P, OP_RBRACKET)) {
                if (items.n && !expect_op(P, OP_COMMA, ",")) return NULL;
                if (accept_op(P, OP_RBRACKET)) break;
                jnode *e = parse_expr(P, true);
                if (!e || !vpush(P, &items, e)) return NULL;
            }
            if ((n = node(P, N_LIST, t))) n->kids = (jnode **)items.p, n->n = items.n;
            return n;
        }
        if (accept_op(P, OP_LBRACE)) {
            vec keys = {0}, vals = {0};
            while (!accept_op(P, OP_RBRACE)) {
                if (keys.n && !expect_op(P, OP_COMMA, ",")) return NULL;
                if (accept_op(P, OP_RBRACE)) break;
                jnode *k = parse_expr(P, true);
                if (!k || !expect_op(P, OP_COLON, ":")) return NULL;
                jnode *v = parse_expr(P, true);
                if (!v || !vpush(P, &keys, k) || !vpush(P, &vals, v)) return NULL;
            }
            if ((n = node(P, N_DICT, t))) n->kids = (jnode **)keys.p, n->kids2 = (jnode **)vals.p, n->n = keys.n;
            return n;
        }
        /* fall through */
    default:
        return fail(P, t, "unexpected %s in expression", tok_desc(t));
    }
}

static jnode *parse_subscript(parser *P, jnode *obj) {
    const jtok *t = cur(P);
    if (accept_op(P, OP_DOT)) {
        const jtok *nt = cur(P);
        jnode *n;
        if (nt->type == TK_INT) {
            P->pos++;
            jnode *idx = node(P, N_INT, nt);
            if (!idx || !(n = node(P, N_ITEM, t))) return NULL;
            idx->i = nt->i;
            n->a = obj, n->b = idx;
            return n;
        }
        if (nt->type != TK_NAME) return fail(P, nt, "expected an attribute name after '.', got %s", tok_desc(nt));
        P->pos++;
        if (!(n = node(P, N_ATTR, t))) return NULL;
        n->a = obj, n->s = name_dup(P, nt), n->sn = nt->n;
        return n;
    }
    P->pos++; /* [ */
    jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    for (;;) {
        if (is_op(cur(P), OP_COLON)) {
            P->pos++;
            slice = true;
            if (++k > 2) return fail(P, cur(P), "too many ':' in slice%s", "");
            continue;
        }
        if (is_op(cur(P), OP_RBRACKET)) break;
        if (parts[k]) return fail(P, cur(P), "expected ']' or ':', got %s", tok_desc(cur(P)));
        if (!(parts[k] = parse_expr(P, true))) return NULL;
    }
    P->pos++;
    if (!slice && !parts[0]) return fail(P, t, "empty subscript%s", "");
    jnode *n = node(P, slice ? N_SLICE : N_ITEM, t);
    if (!n) return NULL;
    n->a = obj, n->b = parts[0];
    if (slice) {
        n->c = parts[1];
        if (!(n->kids2 = ja_alloc(P->ja, sizeof(jnode *)))) return nomem(P);
        n->kids2[0] = parts[2], n->n2 = 1;
    }
    return n;
}

static jnode *parse_postfix(parser *P, jnode *n) {
    while (n) {
        if (is_op(cur(P), OP_DOT) || is_op(cur(P), OP_LBRACKET)) {
            n = parse_subscript(P, n);
        } else if (is_op(cur(P), OP_LPAREN)) {
            jnode *c = node(P, N_CALL, cur(P));
            P->pos++;
            if (!c || !parse_args(P, c)) return NULL;
            c->a = n;
            n = c;
        } else {
            break;
        }
    }
    return n;
}

/* |name(args) and "is [not] name args" after an operand. only_filters: 1 = no tests; 2 = also the first filter
 * comes without its '|' ({% filter name %}). */
static jnode *parse_filters(parser *P, jnode *n, int only_filters) {
    for (bool first = only_filters == 2;; first = false) {
        const jtok *t = cur(P);
        if (is_op(t, OP_PIPE) || first) {
            if (!first) P->pos++;
            const jtok *nt = cur(P);
            if (nt->type != TK_NAME) return fail(P, nt, "expected a filter name after '|', got %s", tok_desc(nt));
            P->pos++;
            jnode *f = node(P, N_FILTER, t);
            if (!f) return NULL;
            f->a = n, f->s = name_dup(P, nt), f->sn = nt->n;
            if (accept_op(P, OP_LPAREN) && !parse_args(P, f)) return NULL;
            n = f;
        } else if (!only_filters && is_name(t, "is")) {
            P->pos++;
            jnode *f = node(P, N_TEST, t);
            if (!f) return NULL;
            f->op = accept_name(P, "not");
            const jtok *nt = cur(P);
            if (nt->type != TK_NAME) return fail(P, nt, "expected a test name after 'is', got %s", tok_desc(nt));
            P->pos++;
            f->a = n, f->s = name_dup(P, nt), f->sn = nt->n;
            const jtok *at = cur(P);
            if (accept_op(P, OP_LPAREN)) {
                if (!parse_args(P, f)) return NULL;
            } else if ((at->type == TK_NAME || at->type == TK_STRING || at->type == TK_INT || at->type == TK_FLOAT ||
                        is_op(at, OP_LBRACKET) || is_op(at, OP_LBRACE)) &&
                       !is_name(at, "else") && !is_name(at, "or") && !is_name(at, "and")) {
                if (is_name(at, "is")) return fail(P, at, "tests cannot be chained with 'is'%s", "");
                jnode *arg = parse_postfix(P, parse_primary(P));
                if (!arg || !(f->kids = ja_alloc(P->ja, sizeof(jnode *)))) return arg ? nomem(P) : NULL;
                f->kids[0] = arg, f->n = 1;
            }
            n = f;
        } else if (!only_filters && is_op(t, OP_LPAREN)) {
            n = parse_postfix(P, n);
        } else {
            return n;
        }
        if (!n) return NULL;
    }
}

static jnode *parse_unary(parser *P, bool with_filter) {
    const jtok *t = cur(P);
    jnode *n;
    if (!enter(P)) return NULL;
    if (is_op(t, OP_SUB) || is_op(t, OP_ADD)) {
        P->pos++;
        jnode *operand = parse_unary(P, false);
        if (!operand || !(n = node(P, is_op(t, OP_SUB) ? N_NEG : N_POS, t))) return NULL;
        n->a = operand;
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (n && with_filter) n = parse_filters(P, n, false);
    P->depth--;
    return n;
}

static jnode *binop(parser *P, const jtok *at, int op, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *n = node(P, N_BINOP, at);
    if (n) n->op = (uint8_t)op, n->a = a, n->b = b;
    return n;
}

static jnode *parse_pow(parser *P) {
    jnode *n = parse_unary(P, true);
    while (n && is_op(cur(P), OP_POW)) {
        const jtok *t = &P->t[P->pos++];
        n = binop(P, t, OP_POW, n, parse_unary(P, true));
    }
    return n;
}

static jnode *parse_math2(parser *P) {
    jnode *n = parse_pow(P);
    while (n && (is_op(cur(P), OP_MUL) || is_op(cur(P), OP_DIV) || is_op(cur(P), OP_FLOORDIV) || is_op(cur(P), OP_MOD))) {
        const jtok *t = &P->t[P->pos++];
        n = binop(P, t, t->op, n, parse_pow(P));
    }
    return n;
}

static jnode *parse_concat(parser *P) {
    jnode *n = parse_math2(P);
    while (n && is_op(cur(P), OP_TILDE)) {
        const jtok *t = &P->t[P->pos++];
        n = binop(P, t, OP_TILDE, n, parse_math2(P));
    }
    return n;
}

static jnode *parse_math1(parser *P) {
    jnode *n = parse_concat(P);
    while (n && (is_op(cur(P), OP_ADD) || is_op(cur(P), OP_SUB))) {
        const jtok *t = &P->t[P->pos++];
        n = binop(P, t, t->op, n, parse_concat(P));
    }
    return n;
}

static jnode *parse_compare(parser *P) {
    const jtok *at = cur(P);
    jnode *first = parse_math1(P);
    vec operands = {0};
    uint8_t opbuf[64];
    size_t nops = 0;
    while (first) {
        const jtok *t = cur(P);
        int op = 0;
        if (t->type == TK_OP && t->op >= OP_EQ && t->op <= OP_GE) op = t->op, P->pos++;
        else if (is_name(t, "in")) op = OP_IN, P->pos++;
        else if (is_name(t, "not") && is_name(&P->t[P->pos + 1], "in")) op = OP_NOTIN, P->pos += 2;
        else break;
        if (nops == sizeof opbuf) return fail(P, t, "comparison chain too long%s", "");
        jnode *rhs = parse_math1(P);
        if (!rhs || !vpush(P, &operands, rhs)) return NULL;
        opbuf[nops++] = (uint8_t)op;
    }
    if (!first || !nops) return first;
    jnode *n = node(P, N_COMPARE, at);
    if (!n || !(n->ops = ja_alloc(P->ja, nops))) return n ? nomem(P) : NULL;
    memcpy(n->ops, opbuf, nops);
    n->a = first, n->kids = (jnode **)operands.p, n->n = operands.n;
    return n;
}

static jnode *parse_not(parser *P) {
    const jtok *t = cur(P);
    if (accept_name(P, "not")) {
        if (!enter(P)) return NULL;
        jnode *a = parse_not(P), *n = a ? node(P, N_NOT, t) : NULL;
        if (n) n->a = a;
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

static jnode *parse_and(parser *P) {
    jnode *n = parse_not(P);
    while (n && is_name(cur(P), "and")) {
        const jtok *t = &P->t[P->pos++];
        jnode *b = parse_not(P), *m = b ? node(P, N_AND, t) : NULL;
        if (!m) return NULL;
        m->a = n, m->b = b, n = m;
    }
    return n;
}

static jnode *parse_or(parser *P) {
    jnode *n = parse_and(P);
    while (n && is_name(cur(P), "or")) {
        const jtok *t = &P->t[P->pos++];
        jnode *b = parse_and(P), *m = b ? node(P, N_OR, t) : NULL;
        if (!m) return NULL;
        m->a = n, m->b = b, n = m;
    }
    return n;
}

static jnode *parse_expr(parser *P, bool cond) {
    if (!enter(P)) return NULL;
    jnode *n = parse_or(P);
    while (n && cond && is_name(cur(P), "if")) {
        const jtok *t = &P->t[P->pos++];
        jnode *c = node(P, N_COND, t);
        if (!c || !(c->b = parse_or(P))) return NULL;
        c->a = n;
        if (accept_name(P, "else") && !(c->c = parse_expr(P, true))) return NULL;
        n = c;
    }
    P->depth--;
    return n;
}

/* ---- statements ---- */

static bool parse_body(parser *P, const char *const *ends, vec *body, const char **ended);

static bool block_end(parser *P) {
    if (cur(P)->type == TK_BLOCK_END) return P->pos++, true;
    fail(P, cur(P), "expected '%%}', got %s", tok_desc(cur(P)));
    return false;
}

static bool parse_names(parser *P, vec *names, bool parens) {
    do {
        const jtok *t = cur(P);
        if (t->type != TK_NAME) return fail(P, t, "expected a name, got %s", tok_desc(t)), false;
        P->pos++;
        if (!vpush(P, names, (void *)name_dup(P, t))) return false;
    } while (accept_op(P, OP_COMMA));
    return !parens || expect_op(P, OP_RPAREN, ")");
}

static jnode *parse_for(parser *P, const jtok *at) {
    jnode *n = node(P, N_FOR, at);
    vec names = {0}, body = {0}, els = {0};
    bool paren = accept_op(P, OP_LPAREN);
    if (!n || !parse_names(P, &names, paren)) return NULL;
    if (!accept_name(P, "in")) return fail(P, cur(P), "expected 'in' in for loop, got %s", tok_desc(cur(P)));
    if (!(n->a = parse_tuple(P, false, false))) return NULL;
    if (accept_name(P, "if") && !(n->b = parse_expr(P, true))) return NULL;
    if (is_name(cur(P), "recursive")) return fail(P, cur(P), "recursive loops are not supported%s", "");
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    const char *ended;
    if (!block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
    if (strcmp(ended, "else") == 0 && !parse_body(P, ends2, &els, &ended)) return NULL;
    n->names = (const char **)names.p, n->nnames = names.n;
    n->kids = (jnode **)body.p, n->n = body.n, n->kids2 = (jnode **)els.p, n->n2 = els.n;
    return n;
}

static jnode *parse_if(parser *P, const jtok *at) {
    jnode *n = node(P, N_IF, at);
    vec body = {0}, els = {0};
    if (!n || !(n->a = parse_expr(P, true)) || !block_end(P)) return NULL;
    static const char *const ends[] = {"endif", "elif", "else", NULL};
    static const char *const ends2[] = {"endif", NULL};
    const char *ended;
    if (!parse_body(P, ends, &body, &ended)) return NULL;
    n->kids = (jnode **)body.p, n->n = body.n;
    if (strcmp(ended, "elif") == 0) {
        jnode *e = parse_if(P, &P->t[P->pos - 1]);
        if (!e || !vpush(P, &els, e)) return NULL;
    } else if (strcmp(ended, "else") == 0 && !parse_body(P, ends2, &els, &ended)) {
        return NULL;
    }
    n->kids2 = (jnode **)els.p, n->n2 = els.n;
    return n;
}

static jnode *parse_set(parser *P, const jtok *at) {
    const jtok *t = cur(P);
    if (t->type != TK_NAME) return fail(P, t, "expected a name after 'set', got %s", tok_desc(t));
    jnode *n = node(P, N_SET, at);
    if (!n) return NULL;
    if (is_op(&P->t[P->pos + 1], OP_DOT)) {
        /* {% set ns.attr = value %} */
        P->pos += 2;
        const jtok *attr = cur(P);
        if (attr->type != TK_NAME) return fail(P, attr, "expected an attribute name, got %s", tok_desc(attr));
        P->pos++;
        n->s = name_dup(P, t), n->sn = t->n;
        if (!(n->names = ja_alloc(P->ja, sizeof(char *)))) return nomem(P);
        n->names[0] = name_dup(P, attr), n->nnames = 1;
        n->op = 1;
    } else {
        vec names = {0};
        if (!parse_names(P, &names, false)) return NULL;
        n->names = (const char **)names.p, n->nnames = names.n;
    }
    if (accept_op(P, OP_ASSIGN)) {
        if (!(n->a = parse_tuple(P, true, false))) return NULL;
        return block_end(P) ? n : NULL;
    }
    if (n->op || n->nnames != 1) return fail(P, cur(P), "expected '=' in set, got %s", tok_desc(cur(P)));
    n->kind = N_SETBLOCK;
    if (is_op(cur(P), OP_PIPE)) {
        jnode *leaf = node(P, N_BLOCKVAL, cur(P));
        if (!leaf || !(n->a = parse_filters(P, leaf, true))) return NULL;
    }
    vec body = {0};
    static const char *const ends[] = {"endset", NULL};
    const char *ended;
    if (!block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
    n->kids = (jnode **)body.p, n->n = body.n;
    return n;
}

static jnode *parse_macro(parser *P, const jtok *at) {
    const jtok *t = cur(P);
    if (t->type != TK_NAME) return fail(P, t, "expected a macro name, got %s", tok_desc(t));
    P->pos++;
    jnode *n = node(P, N_MACRO, at);
    vec names = {0}, defs = {0}, body = {0};
    if (!n || !expect_op(P, OP_LPAREN, "(")) return NULL;
    n->s = name_dup(P, t), n->sn = t->n;
    while (!accept_op(P, OP_RPAREN)) {
        if (names.n && !expect_op(P, OP_COMMA, ",")) return NULL;
        const jtok *pt = cur(P);
        if (pt->type != TK_NAME) return fail(P, pt, "expected a parameter name, got %s", tok_desc(pt));
        P->pos++;
        jnode *d = NULL;
        if (accept_op(P, OP_ASSIGN) && !(d = parse_expr(P, true))) return NULL;
        if (!vpush(P, &names, (void *)name_dup(P, pt)) || !vpush(P, &defs, d)) return NULL;
    }
    static const char *const ends[] = {"endmacro", NULL};
    const char *ended;
    if (!block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
    n->names = (const char **)names.p, n->nnames = names.n, n->kids2 = (jnode **)defs.p, n->n2 = defs.n;
    n->kids = (jnode **)body.p, n->n = body.n;
    return n;
}

static jnode *parse_statement(parser *P, vec *into) {
    const jtok *at = cur(P);
    if (at->type != TK_NAME) return fail(P, at, "expected a tag name, got %s", tok_desc(at));
    P->pos++;
    jnode *n = NULL;
    const char *ended;
    if (is_name(at, "if")) return parse_if(P, at);
    if (is_name(at, "for")) return parse_for(P, at);
    if (is_name(at, "set")) return parse_set(P, at);
    if (is_name(at, "macro")) return parse_macro(P, at);
    if (is_name(at, "break") || is_name(at, "continue")) {
        n = node(P, is_name(at, "break") ? N_BREAK : N_CONTINUE, at);
        return n && block_end(P) ? n : NULL;
    }
    if (is_name(at, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        /* transformers' AssistantTracker only marks positions: the body renders as if the tag were absent */
        if (!block_end(P) || !parse_body(P, ends, into, &ended)) return NULL;
        return (jnode *)into;
    }
    if (is_name(at, "call")) {
        vec params = {0}, body = {0};
        if (accept_op(P, OP_LPAREN) && !is_op(cur(P), OP_RPAREN) && !parse_names(P, &params, true)) return NULL;
        if (is_op(cur(P), OP_RPAREN)) P->pos++;
        if (!(n = node(P, N_CALLBLOCK, at)) || !(n->a = parse_expr(P, true))) return NULL;
        if (n->a->kind != N_CALL) return fail(P, at, "expected a macro call after 'call'%s", "");
        static const char *const ends[] = {"endcall", NULL};
        if (!block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
        n->names = (const char **)params.p, n->nnames = params.n, n->kids = (jnode **)body.p, n->n = body.n;
        return n;
    }
    if (is_name(at, "filter")) {
        vec body = {0};
        jnode *leaf = node(P, N_BLOCKVAL, at);
        if (!leaf || !(n = node(P, N_FILTERBLOCK, at))) return NULL;
        n->a = parse_filters(P, leaf, 2);
        static const char *const ends[] = {"endfilter", NULL};
        if (!n->a || !block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
        n->kids = (jnode **)body.p, n->n = body.n;
        return n;
    }
    char name[48];
    snprintf(name, sizeof name, "%.*s", (int)MT_MIN(at->n, 40), at->p);
    return fail(P, at, "unknown or misplaced tag '%s'", name);
}

/* Statements until a block tag named in ends (NULL-terminated; NULL ends = until end of template). The end tag
 * is consumed up to its name; *ended gets that name. */
static bool parse_body(parser *P, const char *const *ends, vec *body, const char **ended) {
    if (!enter(P)) return false;
    for (;;) {
        const jtok *t = cur(P);
        if (P->failed) return false;
        if (t->type == TK_EOF) {
            if (!ends) break;
            fail(P, t, "missing {%% %s %%}", ends[0]);
            return false;
        }
        P->pos++;
        jnode *n = NULL;
        if (t->type == TK_DATA) {
            if ((n = node(P, N_TEXT, t))) n->s = t->p, n->sn = t->n;
        } else if (t->type == TK_VAR_BEGIN) {
            if (!(n = node(P, N_PRINT, t)) || !(n->a = parse_tuple(P, true, false))) return false;
            if (cur(P)->type != TK_VAR_END) return fail(P, cur(P), "expected '}}', got %s", tok_desc(cur(P))), false;
            P->pos++;
        } else if (t->type == TK_BLOCK_BEGIN) {
            for (size_t i = 0; ends && ends[i]; i++)
                if (is_name(cur(P), ends[i])) {
                    *ended = ends[i];
                    P->pos++;
                    bool ok = strcmp(ends[i], "elif") == 0 || block_end(P);
                    P->depth--;
                    return ok;
                }
            n = parse_statement(P, body);
            if (n == (jnode *)body) continue;
        } else {
            return fail(P, t, "unexpected %s", tok_desc(t)), false;
        }
        if (!n || !vpush(P, body, n)) return false;
    }
    P->depth--;
    return true;
}

mt_status jinja_parse(const jtok *toks, size_t n, const char *what, jarena *ja, jnode ***body, size_t *nbody,
                      mt_err *err) {
    parser P = {.t = toks, .n = n, .what = what, .ja = ja, .err = err};
    vec v = {0};
    const char *ended;
    if (!parse_body(&P, NULL, &v, &ended) || P.failed) return P.code ? P.code : MT_ERR_FORMAT;
    *body = (jnode **)v.p;
    *nbody = v.n;
    return MT_OK;
}
