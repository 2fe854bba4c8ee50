/* text/jinja_int: what the Jinja lexer, parser, values and interpreter share (private to src/text/jinja_*.c).
 *
 * Pipeline: source -> tokens (jinja_lex.c) -> AST of jnode (jinja_parse.c statements, jinja_parse_expr.c
 * expressions) -> tree-walking render (jinja_eval.c; operators in jinja_ops.c and jinja_format.c) over jv values
 * (jinja_value.c) with filters and tests (jinja_filters.c) and methods and globals (jinja_methods.c). Entry
 * points: jinja.c.
 *
 *   | layer   | lives in                                   | freed                    |
 *   |---------|--------------------------------------------|--------------------------|
 *   | tokens  | one mt_realloc'd array                      | after parsing            |
 *   | AST     | the template's jarena                       | mt_jinja_free            |
 *   | values  | the render's jarena (never freed one by one) | at the end of the render |
 *
 * Semantics follow Python's jinja2 3.1 with transformers' chat-template environment (trim_blocks, lstrip_blocks,
 * loopcontrols, ImmutableSandboxedEnvironment, tojson without HTML escaping).
 */
#ifndef MT_JINJA_INT_H
#define MT_JINJA_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "text/jinja.h"

/* ---- bump allocation: small pieces out of mt_arena blocks, counted against a byte limit ---- */
typedef struct jarena {
    mt_arena a;
    char *cur;
    size_t left;
    size_t used, limit; /* limit 0 = none */
    bool over;          /* an allocation was refused for the limit */
} jarena;

void ja_init(jarena *ja, size_t limit);
void *ja_alloc(jarena *ja, size_t size); /* 8-aligned, zeroed; NULL when out of memory or over the limit */
char *ja_strdup(jarena *ja, const char *s, size_t n);
void ja_free(jarena *ja);

/* ---- tokens ---- */
typedef enum {
    TK_EOF,
    TK_DATA,        /* text between tags (p, n) */
    TK_VAR_BEGIN,   /* {{ */
    TK_VAR_END,     /* }} */
    TK_BLOCK_BEGIN, /* {% */
    TK_BLOCK_END,   /* %} */
    TK_NAME,
    TK_STRING, /* decoded (p, n) */
    TK_INT,
    TK_FLOAT,
    TK_OP /* op: one of the operator codes below */
} jtok_type;

/* Operators and punctuation, one code each. */
enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT,
    OP_GE, OP_ASSIGN, OP_DOT, OP_COMMA, OP_COLON, OP_PIPE, OP_LPAREN, OP_RPAREN, OP_LBRACKET, OP_RBRACKET,
    OP_LBRACE, OP_RBRACE, OP_IN, OP_NOTIN /* the last two only in comparison chains */
};

typedef struct jtok {
    uint8_t type, op;
    int line, col;
    const char *p;
    size_t n;
    int64_t i;
    double f;
} jtok;

/* Tokenizes src; *toks is mt_malloc'd (the caller frees it), strings decoded into ja. */
mt_status jinja_lex(const char *src, size_t len, const char *what, jarena *ja, jtok **toks, size_t *n, mt_err *err);

/* ---- AST ---- */
typedef enum {
    /* expressions */
    N_STR, N_INT, N_FLOAT, N_BOOL, N_NONE, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL,
    N_FILTER, N_TEST, N_BINOP, N_NOT, N_NEG, N_POS, N_AND, N_OR, N_COMPARE, N_COND, N_BLOCKVAL,
    /* statements */
    N_TEXT, N_PRINT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK, N_BREAK, N_CONTINUE
} jnode_kind;

typedef struct jnode jnode;
struct jnode {
    uint8_t kind, op;  /* op: operator for N_BINOP; negation for N_TEST */
    int line;
    jnode *a, *b, *c;  /* operands; N_SLICE: a[b:c:d] with d in kids2[0] */
    jnode **kids;      /* body / positional args / items / compare operands */
    size_t n;
    jnode **kids2;     /* else body / kwarg values / dict values / macro defaults */
    size_t n2;
    const char *s;     /* name, string value, filter or test name */
    size_t sn;
    const char **names; /* kwarg names, for/set targets, macro parameters */
    size_t nnames;
    uint8_t *ops;       /* N_COMPARE: one per operand */
    int64_t i;
    double f;
};

/* Parses the token stream into a body (N_* statements). */
mt_status jinja_parse(const jtok *toks, size_t n, const char *what, jarena *ja, jnode ***body, size_t *nbody,
                      mt_err *err);

/* ---- values ---- */
typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS, JV_FUNC, JV_LOOP } jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jloop jloop;

typedef struct jv {
    uint8_t t;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* JV_STR; JV_UNDEF: the missing name (may be NULL) */
            size_t n;
        } s;
        jlist *l;
        jdict *d; /* JV_DICT and JV_NS */
        jfunc *fn;
        jloop *loop;
    };
} jv;

struct jlist {
    jv *v;
    size_t n, cap;
    bool tuple;
};

struct jdict {
    jv *k, *v;
    size_t n, cap;
};

typedef struct jstate jstate;
typedef struct jscope jscope;

struct jfunc {
    int kind;          /* FN_* */
    const char *name;
    const jnode *node; /* FN_MACRO: the macro; FN_CALLER: the call block */
    jscope *scope;     /* where it was defined */
    jv self;           /* FN_METHOD: the receiver */
    jv caller;         /* FN_MACRO invoked from a call block: its caller() */
};
enum { FN_MACRO, FN_CALLER, FN_METHOD, FN_GLOBAL };

struct jloop {
    int64_t index0, length;
    const jlist *items;
};

static inline jv jv_undef(const char *name) { jv v = {.t = JV_UNDEF}; v.s.p = name; v.s.n = name ? strlen(name) : 0; return v; }
static inline jv jv_none(void) { return (jv){.t = JV_NONE}; }
static inline jv jv_bool(bool b) { return (jv){.t = JV_BOOL, .b = b}; }
static inline jv jv_int(int64_t i) { return (jv){.t = JV_INT, .i = i}; }
static inline jv jv_float(double f) { return (jv){.t = JV_FLOAT, .f = f}; }
static inline jv jv_str(const char *p, size_t n) { jv v = {.t = JV_STR}; v.s.p = p; v.s.n = n; return v; }

jlist *jv_list_new(jarena *ja, size_t cap);
bool jv_list_push(jarena *ja, jlist *l, jv v);
jdict *jv_dict_new(jarena *ja, size_t cap);
bool jv_dict_set(jarena *ja, jdict *d, jv k, jv v); /* replaces an equal key in place */
const jv *jv_dict_get(const jdict *d, const char *key, size_t n);
const jv *jv_dict_find(const jdict *d, jv key);

bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
bool jv_is_str(jv v, const char *s);
const char *jv_type_name(jv v);
/* Python's ordering for < on numbers, strings and lists; false with *ok = false when the types do not order. */
int jv_compare(jv a, jv b, bool *ok);

/* Converts cJSON to values (depth-limited). Numbers with an integral value become ints (cJSON keeps no text). */
bool jv_from_json(jarena *ja, const cJSON *j, int depth, jv *out);

/* A growing output buffer with a size limit. */
typedef struct jbuf {
    char *p;
    size_t n, cap, limit;
    bool over; /* a write went past limit */
    bool nomem;
} jbuf;
bool jb_put(jbuf *b, const char *s, size_t n);
static inline bool jb_puts(jbuf *b, const char *s) { return jb_put(b, s, strlen(s)); }

/* str(v) as Python prints it (what {{ v }} writes); repr(v) for items inside lists and dicts. */
bool jv_write_str(jbuf *b, jv v);
bool jv_write_repr(jbuf *b, jv v);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson calls it. indent: the string
 * one level adds (NULL: one line; "" still breaks lines); item_sep / key_sep NULL: Python's defaults for that
 * indent. Fails (with *bad naming the type) on values JSON cannot hold. */
typedef struct jjson_opts {
    const char *indent, *item_sep, *key_sep;
    bool sort_keys, ensure_ascii;
} jjson_opts;
bool jv_write_json(jbuf *b, jv v, const jjson_opts *o, int level, const char **bad);

/* ---- interpreter ---- */
struct jscope {
    jscope *parent;
    const char **names;
    size_t *lens;
    jv *vals;
    size_t n, cap;
};

struct jstate {
    jarena ja;
    jbuf out;
    const char *what;
    mt_err *err;
    bool failed;
    mt_status code;
    jscope *globals;
    size_t steps, max_steps;
    int depth;             /* nested expression evaluations */
    int call_depth, max_depth; /* nested macro calls */
    int loop_ctl; /* 0, 1 = break, 2 = continue */
    jv blockval;  /* the captured body an N_BLOCKVAL reads */
};

bool jerr(jstate *st, const jnode *at, mt_status code, const char *fmt, ...) MT_PRINTF(4, 5);
/* Reports an allocation failure of the arena (a limit or out of memory) or of a buffer; returns false. */
bool jerr_alloc(jstate *st, const jnode *at);
bool jerr_buf(jstate *st, const jnode *at, const jbuf *b);
/* A buffer for building one string, with the output limit; jv_from_buf moves its text into the arena. */
jbuf jb_new(const jstate *st);
bool jv_from_buf(jstate *st, const jnode *at, jbuf *b, jv *out);
/* Calls a function value with positional and keyword arguments. */
bool jcall(jstate *st, const jnode *at, jv fn, const jv *args, size_t nargs, const char **kwn, const jv *kwv,
           size_t nkw, jv *out);

/* Builtins: filter, test, method (attribute of a str / dict / list called as a function) and global functions. */
bool jfilter(jstate *st, const jnode *at, const char *name, jv v, const jv *args, size_t nargs, const char **kwn,
             const jv *kwv, size_t nkw, jv *out);
bool jtest(jstate *st, const jnode *at, const char *name, jv v, const jv *args, size_t nargs, bool *out);
bool jmethod_exists(jv self, const char *name, size_t n);
bool jmethod_call(jstate *st, const jnode *at, const jfunc *fn, const jv *args, size_t nargs, const char **kwn,
                  const jv *kwv, size_t nkw, jv *out);
bool jglobal_call(jstate *st, const jnode *at, const char *name, const jv *args, size_t nargs, const char **kwn,
                  const jv *kwv, size_t nkw, jv *out);
bool jglobal_exists(const char *name, size_t n);
/* Python str(v) as a new string value. */
bool jv_to_str(jstate *st, const jnode *at, jv v, jv *out);
bool jv_iterate(jstate *st, const jnode *at, jv v, jlist **out); /* list of the items a for-loop sees */
bool jv_length(jstate *st, const jnode *at, jv v, int64_t *out);

/* str helpers the filters share with the methods: strip (chars NULL = whitespace), case (0 upper, 1 lower,
 * 2 capitalize, 3 title), replace (count < 0 = all). */
jv jstr_strip(jv s, const jv *chars, bool left, bool right);
bool jstr_case(jstate *st, const jnode *at, jv s, int mode, jv *out);
bool jstr_replace(jstate *st, const jnode *at, jv s, jv old, jv new_, int64_t count, jv *out);

/* Runs a parsed body with vars (a JSON object or NULL) as globals (jinja_eval.c). */
bool jinja_run(jstate *st, jnode *const *body, size_t n, const cJSON *vars);
/* a op b for a binary operator OP_ADD .. OP_TILDE (jinja_ops.c). */
bool jarith(jstate *st, const jnode *n, int op, jv a, jv b, jv *out);
/* Python's fmt % args on a string (jinja_format.c). */
bool jstr_percent(jstate *st, const jnode *at, jv fmt, jv args, jv *out);

/* UTF-8 helpers: code point count, byte offset of the k-th code point. */
size_t ju_len(const char *p, size_t n);
size_t ju_offset(const char *p, size_t n, size_t k);
/* First occurrence of needle in hay (bytes), or NULL; an empty needle is found at hay. */
const char *ju_find(const char *hay, size_t hn, const char *needle, size_t nn);

#endif
