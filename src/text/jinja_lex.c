/* text/jinja_lex: Jinja source -> tokens, with jinja2 3.1's whitespace rules as transformers configures them.
 *
 *   | where                     | rule                                                                          |
 *   |---------------------------|-------------------------------------------------------------------------------|
 *   | whole source              | \r\n and \r become \n; one trailing newline is dropped (keep_trailing_newline) |
 *   | {%- {{- {#-               | text before the tag loses all trailing whitespace                             |
 *   | -%} -}} -#}               | text after the tag loses all leading whitespace                               |
 *   | {% or {# alone on a line  | spaces/tabs before it on that line go (lstrip_blocks); {%+ keeps them         |
 *   | %} or #}                  | one newline right after goes (trim_blocks); +%} keeps it                      |
 *   | {% raw %}..{% endraw %}   | the text between is data, untouched                                           |
 *
 * Inside {{ }} and {% %} the tag ends only outside brackets, so {{ {'a': {'b': 1}} }} reads as one expression.
 * String literals decode Python's escapes; unknown escapes stay as written (unicode-escape semantics). Numbers:
 * 42, 1_000, 0x1F / 0o17 / 0b101, 2.5, 1e-5.
 */
#include <stdio.h>
#include <stdlib.h>

#include "text/jinja_int.h"

typedef struct lexer {
    const char *s;
    size_t n, pos;
    int line, col;
    size_t mark; /* position line/col describe */
    const char *what;
    jarena *ja;
    jtok *t;
    size_t nt, cap;
    mt_err *err;
} lexer;

static void sync(lexer *L, size_t to) {
    for (; L->mark < to; L->mark++) {
        if (L->s[L->mark] == '\n') L->line++, L->col = 1;
        else L->col++;
    }
}

static mt_status lex_fail(lexer *L, size_t at, const char *msg) {
    sync(L, at);
    return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%d:%d: %s", L->what, L->line, L->col, msg);
}

static jtok *emit(lexer *L, int type, size_t at) {
    if (L->nt == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *t = mt_realloc(L->t, cap * sizeof *t);
        if (!t) return NULL;
        L->t = t;
        L->cap = cap;
    }
    sync(L, at);
    jtok *t = &L->t[L->nt++];
    *t = (jtok){.type = (uint8_t)type, .line = L->line, .col = L->col};
    return t;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 63)), o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)), o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Decodes the literal whose opening quote is at L->pos; leaves pos after the closing quote. */
static mt_status lex_string(lexer *L, jtok *t) {
    char q = L->s[L->pos];
    size_t start = L->pos++, end = L->pos;
    while (end < L->n && L->s[end] != q) end += L->s[end] == '\\' ? 2 : 1;
    if (end >= L->n) return lex_fail(L, start, "unterminated string literal");
    char *o = ja_alloc(L->ja, end - L->pos + 1);
    if (!o) return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory", L->what);
    size_t k = 0;
    for (size_t i = L->pos; i < end;) {
        char c = L->s[i++];
        if (c != '\\') { o[k++] = c; continue; }
        char e = L->s[i++];
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (digits) {
            uint32_t cp = 0;
            int d = 0;
            for (; d < digits && i + (size_t)d < end && hexval(L->s[i + d]) >= 0; d++) cp = cp * 16 + (uint32_t)hexval(L->s[i + d]);
            if (d < digits || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
                return lex_fail(L, i - 2, "bad \\x, \\u or \\U escape in string literal");
            i += (size_t)digits;
            k += put_utf8(o + k, cp);
            continue;
        }
        if (e >= '0' && e <= '7') {
            uint32_t cp = (uint32_t)(e - '0');
            for (int d = 0; d < 2 && i < end && L->s[i] >= '0' && L->s[i] <= '7'; d++) cp = cp * 8 + (uint32_t)(L->s[i++] - '0');
            k += put_utf8(o + k, cp);
            continue;
        }
        const char *from = "ntr\\'\"bfva\n", *to = "\n\t\r\\'\"\b\f\v\a";
        const char *f = e ? strchr(from, e) : NULL;
        if (f && e == '\n') continue; /* backslash-newline joins lines */
        if (f) o[k++] = to[f - from];
        else o[k++] = '\\', o[k++] = e;
    }
    t->p = o;
    t->n = k;
    L->pos = end + 1;
    return MT_OK;
}

static const struct { const char *s; uint8_t op; } ops[] = {
    {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
    {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD}, {"~", OP_TILDE}, {"<", OP_LT},
    {">", OP_GT}, {"=", OP_ASSIGN}, {".", OP_DOT}, {",", OP_COMMA}, {":", OP_COLON}, {"|", OP_PIPE},
    {"(", OP_LPAREN}, {")", OP_RPAREN}, {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"{", OP_LBRACE}, {"}", OP_RBRACE},
};

/* Lexes the inside of a tag opened at L->pos (after its sign); returns with pos after the closing marker and
 * *strip_after / *keep_after from its sign. */
static mt_status lex_tag(lexer *L, bool block, size_t open, bool *strip_after, bool *keep_after) {
    int depth = 0;
    for (;;) {
        while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
        if (L->pos >= L->n) return lex_fail(L, open, block ? "unclosed {% tag" : "unclosed {{ tag");
        const char *p = L->s + L->pos;
        size_t left = L->n - L->pos;
        char close = block ? '%' : '}';
        if (depth == 0) {
            size_t sign = (p[0] == '-' || p[0] == '+') ? 1 : 0;
            if (left >= sign + 2 && p[sign] == close && p[sign + 1] == '}') {
                *strip_after = sign && p[0] == '-';
                *keep_after = sign && p[0] == '+';
                if (!emit(L, block ? TK_BLOCK_END : TK_VAR_END, L->pos)) goto nomem;
                L->pos += sign + 2;
                return MT_OK;
            }
        }
        jtok *t = emit(L, TK_EOF, L->pos);
        if (!t) goto nomem;
        char c = p[0];
        if (is_name0(c)) {
            size_t k = 1;
            while (k < left && (is_name0(p[k]) || is_digit(p[k]))) k++;
            t->type = TK_NAME, t->p = p, t->n = k;
            L->pos += k;
        } else if (c == '0' && left > 2 && strchr("xXoObB", p[1]) && p[1]) {
            /* 0x / 0o / 0b literals, digits optionally separated by single underscores (jinja2's integer_re) */
            int base = p[1] == 'x' || p[1] == 'X' ? 16 : p[1] == 'o' || p[1] == 'O' ? 8 : 2;
            size_t k = 2;
            uint64_t v = 0;
            for (;;) {
                size_t d = k < left && p[k] == '_' ? k + 1 : k;
                int x = d >= left ? -1 : is_digit(p[d]) ? p[d] - '0' : (p[d] | 0x20) >= 'a' && (p[d] | 0x20) <= 'f' ? (p[d] | 0x20) - 'a' + 10 : -1;
                if (x < 0 || x >= base) break;
                if (v > (uint64_t)INT64_MAX / (uint64_t)base) return lex_fail(L, L->pos, "integer literal out of range");
                v = v * (uint64_t)base + (uint64_t)x;
                if (v > (uint64_t)INT64_MAX) return lex_fail(L, L->pos, "integer literal out of range");
                k = d + 1;
            }
            if (k == 2) return lex_fail(L, L->pos, "digits expected after the base prefix");
            t->type = TK_INT, t->i = (int64_t)v;
            L->pos += k;
        } else if (is_digit(c)) {
            size_t k = 0;
            bool fl = false;
            while (k < left && (is_digit(p[k]) || (p[k] == '_' && k + 1 < left && is_digit(p[k + 1])))) k++;
            if (k + 1 < left && p[k] == '.' && is_digit(p[k + 1])) {
                fl = true;
                for (k++; k < left && is_digit(p[k]); k++) {}
            }
            if (k < left && (p[k] == 'e' || p[k] == 'E')) {
                size_t e = k + 1;
                if (e < left && (p[e] == '+' || p[e] == '-')) e++;
                if (e < left && is_digit(p[e])) {
                    fl = true;
                    for (k = e; k < left && is_digit(p[k]); k++) {}
                }
            }
            char num[64];
            size_t m = 0;
            for (size_t i = 0; i < k && m < sizeof num - 1; i++)
                if (p[i] != '_') num[m++] = p[i];
            num[m] = 0;
            if (k >= sizeof num) return lex_fail(L, L->pos, "number literal too long");
            if (fl) {
                t->type = TK_FLOAT, t->f = strtod(num, NULL);
            } else {
                char *end;
                t->type = TK_INT, t->i = strtoll(num, &end, 10);
                if (t->i == INT64_MAX && strcmp(num, "9223372036854775807") != 0)
                    return lex_fail(L, L->pos, "integer literal out of range");
            }
            L->pos += k;
        } else if (c == '\'' || c == '"') {
            t->type = TK_STRING;
            mt_status st = lex_string(L, t);
            if (st) return st;
        } else {
            size_t i = 0;
            for (; i < MT_ARRAY_LEN(ops); i++)
                if (strncmp(p, ops[i].s, strlen(ops[i].s)) == 0 && strlen(ops[i].s) <= left) break;
            if (i == MT_ARRAY_LEN(ops)) return lex_fail(L, L->pos, "unexpected character in tag");
            t->type = TK_OP, t->op = ops[i].op;
            if (t->op == OP_LPAREN || t->op == OP_LBRACKET || t->op == OP_LBRACE) depth++;
            if ((t->op == OP_RPAREN || t->op == OP_RBRACKET || t->op == OP_RBRACE) && depth > 0) depth--;
            L->pos += strlen(ops[i].s);
        }
    }
nomem:
    return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory", L->what);
}

/* After "{% raw %}": the text up to {% endraw %} is one data token. */
static mt_status lex_raw(lexer *L, size_t open, bool *strip_after, bool *keep_after) {
    for (size_t i = L->pos; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        size_t j = i + 2;
        bool strip_before = j < L->n && L->s[j] == '-';
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) j++;
        while (j < L->n && is_ws(L->s[j])) j++;
        if (L->n - j < 6 || memcmp(L->s + j, "endraw", 6) != 0) continue;
        j += 6;
        while (j < L->n && is_ws(L->s[j])) j++;
        size_t sign = j < L->n && (L->s[j] == '-' || L->s[j] == '+');
        if (L->n - j < sign + 2 || L->s[j + sign] != '%' || L->s[j + sign + 1] != '}') continue;
        size_t end = i;
        if (strip_before)
            while (end > L->pos && is_ws(L->s[end - 1])) end--;
        if (end > L->pos) {
            jtok *t = emit(L, TK_DATA, L->pos);
            if (!t) return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory", L->what);
            t->p = L->s + L->pos, t->n = end - L->pos;
        }
        *strip_after = sign && L->s[j] == '-';
        *keep_after = sign && L->s[j] == '+';
        L->pos = j + sign + 2;
        return MT_OK;
    }
    return lex_fail(L, open, "{% raw %} without {% endraw %}");
}

static char *normalize(jarena *ja, const char *src, size_t len, size_t *out_len) {
    char *o = ja_alloc(ja, len + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            o[k++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            o[k++] = src[i];
        }
    }
    if (k && o[k - 1] == '\n') k--;
    o[k] = 0;
    *out_len = k;
    return o;
}

mt_status jinja_lex(const char *src, size_t len, const char *what, jarena *ja, jtok **toks, size_t *ntoks,
                    mt_err *err) {
    lexer L = {.what = what, .ja = ja, .err = err, .line = 1, .col = 1};
    L.s = normalize(ja, src, len, &L.n);
    if (!L.s) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    bool strip_next = false, trim_next = false;
    mt_status st = MT_OK;
    while (L.pos < L.n && st == MT_OK) {
        if (strip_next)
            while (L.pos < L.n && is_ws(L.s[L.pos])) L.pos++;
        else if (trim_next && L.pos < L.n && L.s[L.pos] == '\n')
            L.pos++;
        strip_next = trim_next = false;
        size_t start = L.pos, tag = start;
        char kind = 0;
        for (; tag + 1 < L.n; tag++)
            if (L.s[tag] == '{' && (L.s[tag + 1] == '{' || L.s[tag + 1] == '%' || L.s[tag + 1] == '#')) {
                kind = L.s[tag + 1];
                break;
            }
        if (!kind) tag = L.n;
        char sign = kind && tag + 2 < L.n ? L.s[tag + 2] : 0;
        size_t end = tag;
        if (sign == '-') {
            while (end > start && is_ws(L.s[end - 1])) end--;
        } else if (kind && kind != '{' && sign != '+') {
            size_t l = end;
            while (l > start && (L.s[l - 1] == ' ' || L.s[l - 1] == '\t')) l--;
            bool line_start = l == 0 || L.s[l - 1] == '\n';
            if (line_start) end = l;
        }
        if (end > start) {
            jtok *t = emit(&L, TK_DATA, start);
            if (!t) return mt_free(L.t), mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
            t->p = L.s + start, t->n = end - start;
        }
        if (!kind) break;
        L.pos = tag + 2 + (sign == '-' || sign == '+');
        bool strip_after = false, keep_after = false;
        if (kind == '#') {
            size_t c = L.pos;
            while (c + 1 < L.n && !(L.s[c] == '#' && L.s[c + 1] == '}')) c++;
            if (c + 1 >= L.n) {
                st = lex_fail(&L, tag, "unclosed comment {#");
                break;
            }
            strip_after = c > L.pos && L.s[c - 1] == '-';
            keep_after = c > L.pos && L.s[c - 1] == '+';
            L.pos = c + 2;
        } else {
            size_t first = L.nt;
            if (!emit(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, tag)) {
                st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
                break;
            }
            st = lex_tag(&L, kind == '%', tag, &strip_after, &keep_after);
            if (st == MT_OK && kind == '%' && L.nt == first + 3 && L.t[first + 1].type == TK_NAME &&
                L.t[first + 1].n == 3 && memcmp(L.t[first + 1].p, "raw", 3) == 0) {
                L.nt = first;
                if (strip_after)
                    while (L.pos < L.n && is_ws(L.s[L.pos])) L.pos++;
                else if (!keep_after && L.pos < L.n && L.s[L.pos] == '\n')
                    L.pos++;
                st = lex_raw(&L, tag, &strip_after, &keep_after);
            }
        }
        strip_next = strip_after;
        trim_next = kind != '{' && !keep_after;
    }
    jtok *t = st == MT_OK ? emit(&L, TK_EOF, L.n) : NULL;
    if (st == MT_OK && !t) st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    if (st) {
        mt_free(L.t);
        return st;
    }
    *toks = L.t;
    *ntoks = L.nt;
    return MT_OK;
}
