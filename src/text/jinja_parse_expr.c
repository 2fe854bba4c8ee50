/* text/jinja_parse_expr: expressions, by recursive descent with jinja2 3.1's grammar and precedence.
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
 * Primaries: names, true/false/none (either case), adjacent string literals joined, numbers, (tuples),
 * [lists], {dicts}. Errors name what:LINE:COL.
 */
#include <stdio.h>

#include "text/jinja_parser.h"

static jnode *parse_unary(parser *P, bool with_filter);

/* Arguments of a call or filter, after '(' up to and including ')'. */
static bool parse_args(parser *P, jnode *call) {
    vec pos = {0}, kwv = {0}, kwn = {0};
    while (!accept_op(P, OP_RPAREN)) {
        if (pos.n + kwv.n && !jp_expect_op(P, OP_COMMA, ",")) return false;
        if (accept_op(P, OP_RPAREN)) break;
        const jtok *t = cur(P);
        if (t->type == TK_NAME && is_op(&P->t[P->pos + 1], OP_ASSIGN)) {
            P->pos += 2;
            jnode *v = jp_expr(P, true);
            if (!v || !jp_vpush(P, &kwn, (void *)jp_name_dup(P, t)) || !jp_vpush(P, &kwv, v)) return false;
        } else {
            if (kwv.n) return jp_fail(P, t, "positional argument after keyword argument%s", ""), false;
            jnode *v = jp_expr(P, true);
            if (!v || !jp_vpush(P, &pos, v)) return false;
        }
    }
    call->kids = (jnode **)pos.p, call->n = pos.n;
    call->kids2 = (jnode **)kwv.p, call->n2 = kwv.n;
    call->names = (const char **)kwn.p, call->nnames = kwn.n;
    return true;
}

jnode *jp_tuple(parser *P, bool cond, bool explicit_parens) {
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
        jnode *e = jp_expr(P, cond);
        if (!e || !jp_vpush(P, &items, e)) return NULL;
    }
    if (items.n == 1 && !comma) return items.p[0];
    jnode *t = jp_node(P, N_TUPLE, at);
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
            if ((n = jp_node(P, N_BOOL, t))) n->i = t->p[0] == 't' || t->p[0] == 'T';
        } else if (is_name(t, "none") || is_name(t, "None")) {
            n = jp_node(P, N_NONE, t);
        } else if ((n = jp_node(P, N_NAME, t))) {
            n->s = jp_name_dup(P, t), n->sn = t->n;
        }
        return n;
    case TK_STRING: {
        size_t total = 0, k = P->pos;
        for (; P->t[k].type == TK_STRING; k++) total += P->t[k].n;
        char *s = ja_alloc(P->ja, total + 1);
        if (!s) return jp_nomem(P);
        total = 0;
        for (; P->pos < k; P->pos++) memcpy(s + total, P->t[P->pos].p, P->t[P->pos].n), total += P->t[P->pos].n;
        if ((n = jp_node(P, N_STR, t))) n->s = s, n->sn = total;
        return n;
    }
    case TK_INT:
        P->pos++;
        if ((n = jp_node(P, N_INT, t))) n->i = t->i;
        return n;
    case TK_FLOAT:
        P->pos++;
        if ((n = jp_node(P, N_FLOAT, t))) n->f = t->f;
        return n;
    case TK_OP:
        if (accept_op(P, OP_LPAREN)) {
            n = jp_tuple(P, true, true);
            if (n && !jp_expect_op(P, OP_RPAREN, ")")) return NULL;
            if (n && n->kind != N_TUPLE && is_op(&P->t[P->pos - 2], OP_LPAREN)) return jp_fail(P, t, "empty parentheses%s", "");
            return n;
        }
        if (accept_op(P, OP_LBRACKET)) {
            vec items = {0};
            while (!accept_op(P, OP_RBRACKET)) {
                if (items.n && !jp_expect_op(P, OP_COMMA, ",")) return NULL;
                if (accept_op(P, OP_RBRACKET)) break;
                jnode *e = jp_expr(P, true);
                if (!e || !jp_vpush(P, &items, e)) return NULL;
            }
            if ((n = jp_node(P, N_LIST, t))) n->kids = (jnode **)items.p, n->n = items.n;
            return n;
        }
        if (accept_op(P, OP_LBRACE)) {
            vec keys = {0}, vals = {0};
            while (!accept_op(P, OP_RBRACE)) {
                if (keys.n && !jp_expect_op(P, OP_COMMA, ",")) return NULL;
                if (accept_op(P, OP_RBRACE)) break;
                jnode *k = jp_expr(P, true);
                if (!k || !jp_expect_op(P, OP_COLON, ":")) return NULL;
                jnode *v = jp_expr(P, true);
                if (!v || !jp_vpush(P, &keys, k) || !jp_vpush(P, &vals, v)) return NULL;
            }
            if ((n = jp_node(P, N_DICT, t))) n->kids = (jnode **)keys.p, n->kids2 = (jnode **)vals.p, n->n = keys.n;
            return n;
        }
        /* fall through */
    default:
        return jp_fail(P, t, "unexpected %s in expression", jp_tok_desc(t));
    }
}

static jnode *parse_subscript(parser *P, jnode *obj) {
    const jtok *t = cur(P);
    if (accept_op(P, OP_DOT)) {
        const jtok *nt = cur(P);
        jnode *n;
        if (nt->type == TK_INT) {
            P->pos++;
            jnode *idx = jp_node(P, N_INT, nt);
            if (!idx || !(n = jp_node(P, N_ITEM, t))) return NULL;
            idx->i = nt->i;
            n->a = obj, n->b = idx;
            return n;
        }
        if (nt->type != TK_NAME) return jp_fail(P, nt, "expected an attribute name after '.', got %s", jp_tok_desc(nt));
        P->pos++;
        if (!(n = jp_node(P, N_ATTR, t))) return NULL;
        n->a = obj, n->s = jp_name_dup(P, nt), n->sn = nt->n;
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
            if (++k > 2) return jp_fail(P, cur(P), "too many ':' in slice%s", "");
            continue;
        }
        if (is_op(cur(P), OP_RBRACKET)) break;
        if (parts[k]) return jp_fail(P, cur(P), "expected ']' or ':', got %s", jp_tok_desc(cur(P)));
        if (!(parts[k] = jp_expr(P, true))) return NULL;
    }
    P->pos++;
    if (!slice && !parts[0]) return jp_fail(P, t, "empty subscript%s", "");
    jnode *n = jp_node(P, slice ? N_SLICE : N_ITEM, t);
    if (!n) return NULL;
    n->a = obj, n->b = parts[0];
    if (slice) {
        n->c = parts[1];
        if (!(n->kids2 = ja_alloc(P->ja, sizeof(jnode *)))) return jp_nomem(P);
        n->kids2[0] = parts[2], n->n2 = 1;
    }
    return n;
}

static jnode *parse_postfix(parser *P, jnode *n) {
    while (n) {
        if (is_op(cur(P), OP_DOT) || is_op(cur(P), OP_LBRACKET)) {
            n = parse_subscript(P, n);
        } else if (is_op(cur(P), OP_LPAREN)) {
            jnode *c = jp_node(P, N_CALL, cur(P));
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
jnode *jp_filters(parser *P, jnode *n, int only_filters) {
    for (bool first = only_filters == 2;; first = false) {
        const jtok *t = cur(P);
        if (is_op(t, OP_PIPE) || first) {
            if (!first) P->pos++;
            const jtok *nt = cur(P);
            if (nt->type != TK_NAME) return jp_fail(P, nt, "expected a filter name after '|', got %s", jp_tok_desc(nt));
            P->pos++;
            jnode *f = jp_node(P, N_FILTER, t);
            if (!f) return NULL;
            f->a = n, f->s = jp_name_dup(P, nt), f->sn = nt->n;
            if (accept_op(P, OP_LPAREN) && !parse_args(P, f)) return NULL;
            n = f;
        } else if (!only_filters && is_name(t, "is")) {
            P->pos++;
            jnode *f = jp_node(P, N_TEST, t);
            if (!f) return NULL;
            f->op = accept_name(P, "not");
            const jtok *nt = cur(P);
            if (nt->type != TK_NAME) return jp_fail(P, nt, "expected a test name after 'is', got %s", jp_tok_desc(nt));
            P->pos++;
            f->a = n, f->s = jp_name_dup(P, nt), f->sn = nt->n;
            const jtok *at = cur(P);
            if (accept_op(P, OP_LPAREN)) {
                if (!parse_args(P, f)) return NULL;
            } else if ((at->type == TK_NAME || at->type == TK_STRING || at->type == TK_INT || at->type == TK_FLOAT ||
                        is_op(at, OP_LBRACKET) || is_op(at, OP_LBRACE)) &&
                       !is_name(at, "else") && !is_name(at, "or") && !is_name(at, "and")) {
                if (is_name(at, "is")) return jp_fail(P, at, "tests cannot be chained with 'is'%s", "");
                jnode *arg = parse_postfix(P, parse_primary(P));
                if (!arg || !(f->kids = ja_alloc(P->ja, sizeof(jnode *)))) return arg ? jp_nomem(P) : NULL;
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
    if (!jp_enter(P)) return NULL;
    if (is_op(t, OP_SUB) || is_op(t, OP_ADD)) {
        P->pos++;
        jnode *operand = parse_unary(P, false);
        if (!operand || !(n = jp_node(P, is_op(t, OP_SUB) ? N_NEG : N_POS, t))) return NULL;
        n->a = operand;
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (n && with_filter) n = jp_filters(P, n, false);
    P->depth--;
    return n;
}

static jnode *binop(parser *P, const jtok *at, int op, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *n = jp_node(P, N_BINOP, at);
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
        if (nops == sizeof opbuf) return jp_fail(P, t, "comparison chain too long%s", "");
        jnode *rhs = parse_math1(P);
        if (!rhs || !jp_vpush(P, &operands, rhs)) return NULL;
        opbuf[nops++] = (uint8_t)op;
    }
    if (!first || !nops) return first;
    jnode *n = jp_node(P, N_COMPARE, at);
    if (!n || !(n->ops = ja_alloc(P->ja, nops))) return n ? jp_nomem(P) : NULL;
    memcpy(n->ops, opbuf, nops);
    n->a = first, n->kids = (jnode **)operands.p, n->n = operands.n;
    return n;
}

static jnode *parse_not(parser *P) {
    const jtok *t = cur(P);
    if (accept_name(P, "not")) {
        if (!jp_enter(P)) return NULL;
        jnode *a = parse_not(P), *n = a ? jp_node(P, N_NOT, t) : NULL;
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
        jnode *b = parse_not(P), *m = b ? jp_node(P, N_AND, t) : NULL;
        if (!m) return NULL;
        m->a = n, m->b = b, n = m;
    }
    return n;
}

static jnode *parse_or(parser *P) {
    jnode *n = parse_and(P);
    while (n && is_name(cur(P), "or")) {
        const jtok *t = &P->t[P->pos++];
        jnode *b = parse_and(P), *m = b ? jp_node(P, N_OR, t) : NULL;
        if (!m) return NULL;
        m->a = n, m->b = b, n = m;
    }
    return n;
}

jnode *jp_expr(parser *P, bool cond) {
    if (!jp_enter(P)) return NULL;
    jnode *n = parse_or(P);
    while (n && cond && is_name(cur(P), "if")) {
        const jtok *t = &P->t[P->pos++];
        jnode *c = jp_node(P, N_COND, t);
        if (!c || !(c->b = parse_or(P))) return NULL;
        c->a = n;
        if (accept_name(P, "else") && !(c->c = jp_expr(P, true))) return NULL;
        n = c;
    }
    P->depth--;
    return n;
}
