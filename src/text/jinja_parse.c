/* text/jinja_parse: tokens -> AST. Statements here, expressions in jinja_parse_expr.c.
 *
 *   | tag                  | forms                                                                |
 *   |----------------------|----------------------------------------------------------------------|
 *   | if / elif / else     |                                                                      |
 *   | for                  | targets (a, b), "if" filter, else; "recursive" is refused            |
 *   | set                  | name = value, a, b = value, ns.attr = value, block form with filters |
 *   | macro / call         | defaults; call block with caller(args)                               |
 *   | filter               | block through filters                                                |
 *   | break / continue     | loopcontrols                                                         |
 *   | generation           | its body, inline (transformers' AssistantTracker)                    |
 *
 * Errors name what:LINE:COL.
 */
#include <stdio.h>

#include "text/jinja_parser.h"

void *jp_fail(parser *P, const jtok *at, const char *fmt, const char *arg) {
    if (P->failed) return NULL;
    P->failed = true;
    P->code = MT_ERR_FORMAT;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg);
    mt_err_set(P->err, MT_ERR_FORMAT, "%s:%d:%d: %s", P->what, at->line, at->col, msg);
    return NULL;
}

void *jp_nomem(parser *P) {
    if (!P->failed) mt_err_set(P->err, MT_ERR_NOMEM, "%s: out of memory", P->what), P->code = MT_ERR_NOMEM;
    P->failed = true;
    return NULL;
}

const char *jp_tok_desc(const jtok *t) {
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

bool jp_expect_op(parser *P, int op, const char *what) {
    if (accept_op(P, op)) return true;
    char m[64];
    snprintf(m, sizeof m, "expected '%s', got %%s", what);
    jp_fail(P, cur(P), m, jp_tok_desc(cur(P)));
    return false;
}

jnode *jp_node(parser *P, int kind, const jtok *at) {
    jnode *n = ja_alloc(P->ja, sizeof *n);
    if (!n) return jp_nomem(P);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    return n;
}

bool jp_vpush(parser *P, vec *v, void *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **p = ja_alloc(P->ja, cap * sizeof *p);
        if (!p) return jp_nomem(P), false;
        if (v->n) memcpy(p, v->p, v->n * sizeof *p);
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return true;
}

const char *jp_name_dup(parser *P, const jtok *t) {
    char *s = ja_strdup(P->ja, t->p, t->n);
    if (!s) jp_nomem(P);
    return s;
}

bool jp_enter(parser *P) {
    if (++P->depth <= JP_MAX_NEST) return true;
    if (!P->failed) {
        P->failed = true;
        P->code = MT_ERR_LIMIT;
        mt_err_set(P->err, MT_ERR_LIMIT, "%s:%d:%d: nesting deeper than %d", P->what, cur(P)->line, cur(P)->col,
                   JP_MAX_NEST);
    }
    return false;
}

/* ---- statements ---- */

static bool parse_body(parser *P, const char *const *ends, vec *body, const char **ended);

static bool block_end(parser *P) {
    if (cur(P)->type == TK_BLOCK_END) return P->pos++, true;
    jp_fail(P, cur(P), "expected '%%}', got %s", jp_tok_desc(cur(P)));
    return false;
}

static bool parse_names(parser *P, vec *names, bool parens) {
    do {
        const jtok *t = cur(P);
        if (t->type != TK_NAME) return jp_fail(P, t, "expected a name, got %s", jp_tok_desc(t)), false;
        P->pos++;
        if (!jp_vpush(P, names, (void *)jp_name_dup(P, t))) return false;
    } while (accept_op(P, OP_COMMA));
    return !parens || jp_expect_op(P, OP_RPAREN, ")");
}

static jnode *parse_for(parser *P, const jtok *at) {
    jnode *n = jp_node(P, N_FOR, at);
    vec names = {0}, body = {0}, els = {0};
    bool paren = accept_op(P, OP_LPAREN);
    if (!n || !parse_names(P, &names, paren)) return NULL;
    if (!accept_name(P, "in")) return jp_fail(P, cur(P), "expected 'in' in for loop, got %s", jp_tok_desc(cur(P)));
    if (!(n->a = jp_tuple(P, false, false))) return NULL;
    if (accept_name(P, "if") && !(n->b = jp_expr(P, true))) return NULL;
    if (is_name(cur(P), "recursive")) return jp_fail(P, cur(P), "recursive loops are not supported%s", "");
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
    jnode *n = jp_node(P, N_IF, at);
    vec body = {0}, els = {0};
    if (!n || !(n->a = jp_expr(P, true)) || !block_end(P)) return NULL;
    static const char *const ends[] = {"endif", "elif", "else", NULL};
    static const char *const ends2[] = {"endif", NULL};
    const char *ended;
    if (!parse_body(P, ends, &body, &ended)) return NULL;
    n->kids = (jnode **)body.p, n->n = body.n;
    if (strcmp(ended, "elif") == 0) {
        jnode *e = parse_if(P, &P->t[P->pos - 1]);
        if (!e || !jp_vpush(P, &els, e)) return NULL;
    } else if (strcmp(ended, "else") == 0 && !parse_body(P, ends2, &els, &ended)) {
        return NULL;
    }
    n->kids2 = (jnode **)els.p, n->n2 = els.n;
    return n;
}

static jnode *parse_set(parser *P, const jtok *at) {
    const jtok *t = cur(P);
    if (t->type != TK_NAME) return jp_fail(P, t, "expected a name after 'set', got %s", jp_tok_desc(t));
    jnode *n = jp_node(P, N_SET, at);
    if (!n) return NULL;
    if (is_op(&P->t[P->pos + 1], OP_DOT)) {
        /* {% set ns.attr = value %} */
        P->pos += 2;
        const jtok *attr = cur(P);
        if (attr->type != TK_NAME) return jp_fail(P, attr, "expected an attribute name, got %s", jp_tok_desc(attr));
        P->pos++;
        n->s = jp_name_dup(P, t), n->sn = t->n;
        if (!(n->names = ja_alloc(P->ja, sizeof(char *)))) return jp_nomem(P);
        n->names[0] = jp_name_dup(P, attr), n->nnames = 1;
        n->op = 1;
    } else {
        vec names = {0};
        if (!parse_names(P, &names, false)) return NULL;
        n->names = (const char **)names.p, n->nnames = names.n;
    }
    if (accept_op(P, OP_ASSIGN)) {
        if (!(n->a = jp_tuple(P, true, false))) return NULL;
        return block_end(P) ? n : NULL;
    }
    if (n->op || n->nnames != 1) return jp_fail(P, cur(P), "expected '=' in set, got %s", jp_tok_desc(cur(P)));
    n->kind = N_SETBLOCK;
    if (is_op(cur(P), OP_PIPE)) {
        jnode *leaf = jp_node(P, N_BLOCKVAL, cur(P));
        if (!leaf || !(n->a = jp_filters(P, leaf, true))) return NULL;
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
    if (t->type != TK_NAME) return jp_fail(P, t, "expected a macro name, got %s", jp_tok_desc(t));
    P->pos++;
    jnode *n = jp_node(P, N_MACRO, at);
    vec names = {0}, defs = {0}, body = {0};
    if (!n || !jp_expect_op(P, OP_LPAREN, "(")) return NULL;
    n->s = jp_name_dup(P, t), n->sn = t->n;
    while (!accept_op(P, OP_RPAREN)) {
        if (names.n && !jp_expect_op(P, OP_COMMA, ",")) return NULL;
        const jtok *pt = cur(P);
        if (pt->type != TK_NAME) return jp_fail(P, pt, "expected a parameter name, got %s", jp_tok_desc(pt));
        P->pos++;
        jnode *d = NULL;
        if (accept_op(P, OP_ASSIGN) && !(d = jp_expr(P, true))) return NULL;
        if (!jp_vpush(P, &names, (void *)jp_name_dup(P, pt)) || !jp_vpush(P, &defs, d)) return NULL;
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
    if (at->type != TK_NAME) return jp_fail(P, at, "expected a tag name, got %s", jp_tok_desc(at));
    P->pos++;
    jnode *n = NULL;
    const char *ended;
    if (is_name(at, "if")) return parse_if(P, at);
    if (is_name(at, "for")) return parse_for(P, at);
    if (is_name(at, "set")) return parse_set(P, at);
    if (is_name(at, "macro")) return parse_macro(P, at);
    if (is_name(at, "break") || is_name(at, "continue")) {
        n = jp_node(P, is_name(at, "break") ? N_BREAK : N_CONTINUE, at);
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
        if (!(n = jp_node(P, N_CALLBLOCK, at)) || !(n->a = jp_expr(P, true))) return NULL;
        if (n->a->kind != N_CALL) return jp_fail(P, at, "expected a macro call after 'call'%s", "");
        static const char *const ends[] = {"endcall", NULL};
        if (!block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
        n->names = (const char **)params.p, n->nnames = params.n, n->kids = (jnode **)body.p, n->n = body.n;
        return n;
    }
    if (is_name(at, "filter")) {
        vec body = {0};
        jnode *leaf = jp_node(P, N_BLOCKVAL, at);
        if (!leaf || !(n = jp_node(P, N_FILTERBLOCK, at))) return NULL;
        n->a = jp_filters(P, leaf, 2);
        static const char *const ends[] = {"endfilter", NULL};
        if (!n->a || !block_end(P) || !parse_body(P, ends, &body, &ended)) return NULL;
        n->kids = (jnode **)body.p, n->n = body.n;
        return n;
    }
    char name[48];
    snprintf(name, sizeof name, "%.*s", (int)MT_MIN(at->n, 40), at->p);
    return jp_fail(P, at, "unknown or misplaced tag '%s'", name);
}

/* Statements until a block tag named in ends (NULL-terminated; NULL ends = until end of template). The end tag
 * is consumed up to its name; *ended gets that name. */
static bool parse_body(parser *P, const char *const *ends, vec *body, const char **ended) {
    if (!jp_enter(P)) return false;
    for (;;) {
        const jtok *t = cur(P);
        if (P->failed) return false;
        if (t->type == TK_EOF) {
            if (!ends) break;
            jp_fail(P, t, "missing {%% %s %%}", ends[0]);
            return false;
        }
        P->pos++;
        jnode *n = NULL;
        if (t->type == TK_DATA) {
            if ((n = jp_node(P, N_TEXT, t))) n->s = t->p, n->sn = t->n;
        } else if (t->type == TK_VAR_BEGIN) {
            if (!(n = jp_node(P, N_PRINT, t)) || !(n->a = jp_tuple(P, true, false))) return false;
            if (cur(P)->type != TK_VAR_END) return jp_fail(P, cur(P), "expected '}}', got %s", jp_tok_desc(cur(P))), false;
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
            return jp_fail(P, t, "unexpected %s", jp_tok_desc(t)), false;
        }
        if (!n || !jp_vpush(P, body, n)) return false;
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
