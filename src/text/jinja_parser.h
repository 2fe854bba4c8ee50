/* text/jinja_parser: what the statement parser (jinja_parse.c) and the expression parser (jinja_parse_expr.c)
 * share: the cursor over the token stream, error reporting, node and array allocation in the template's arena.
 * Private to those two files.
 */
#ifndef MT_JINJA_PARSER_H
#define MT_JINJA_PARSER_H

#include "text/jinja_int.h"

#define JP_MAX_NEST 200 /* nested expressions and blocks: bounds the C stack */

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

/* A growing array of pointers in the arena (doubles by copying; the old space stays in the arena). */
typedef struct vec {
    void **p;
    size_t n, cap;
} vec;

static inline const jtok *cur(parser *P) { return &P->t[P->pos]; }
static inline bool is_name(const jtok *t, const char *s) {
    return t->type == TK_NAME && t->n == strlen(s) && memcmp(t->p, s, t->n) == 0;
}
static inline bool is_op(const jtok *t, int op) { return t->type == TK_OP && t->op == op; }
static inline bool accept_op(parser *P, int op) {
    if (!is_op(cur(P), op)) return false;
    P->pos++;
    return true;
}
static inline bool accept_name(parser *P, const char *s) {
    if (!is_name(cur(P), s)) return false;
    P->pos++;
    return true;
}

/* Records a syntax error at what:LINE:COL of at (fmt takes one %s, arg) unless one is recorded; returns NULL. */
void *jp_fail(parser *P, const jtok *at, const char *fmt, const char *arg);
void *jp_nomem(parser *P);
const char *jp_tok_desc(const jtok *t); /* "a name", "'%}'", ... for messages */
bool jp_expect_op(parser *P, int op, const char *what);
jnode *jp_node(parser *P, int kind, const jtok *at);
bool jp_vpush(parser *P, vec *v, void *x);
const char *jp_name_dup(parser *P, const jtok *t);
/* Counts one nesting level (the caller decrements P->depth when done); false past JP_MAX_NEST. */
bool jp_enter(parser *P);

/* Expressions (jinja_parse_expr.c). cond: a trailing "if c else d" belongs to this expression. */
jnode *jp_expr(parser *P, bool cond);
/* a, b, c as a tuple (one item without a comma: that item); explicit_parens: inside ( ) already consumed. */
jnode *jp_tuple(parser *P, bool cond, bool explicit_parens);
/* |filter(args) and "is test" after an operand n. only_filters: 1 = no tests; 2 = the first filter comes without
 * its '|' ({% filter name %}). */
jnode *jp_filters(parser *P, jnode *n, int only_filters);

#endif
