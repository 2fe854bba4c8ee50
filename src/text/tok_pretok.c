/* text/tok_pretok: pre-tokenizers (tokenizers/src/pre_tokenizers/{split,byte_level,digits,metaspace,sequence}.rs)
 * with PCRE2 standing in for Oniguruma.
 *
 * A Split step cuts a piece into segments, alternately gaps and matches of its regex (flags flipped by invert), and
 * joins them by its behavior:
 *
 *   | behavior           | segments: g1 m1 g2 m2 m3        | rule                                            |
 *   |--------------------|---------------------------------|-------------------------------------------------|
 *   | Removed            | g1 g2                           | matches dropped                                 |
 *   | Isolated           | g1 m1 g2 m2 m3                  | every segment its own piece                     |
 *   | MergedWithPrevious | g1m1 g2m2 m3                    | a match joins the segment before unless a match |
 *   | MergedWithNext     | g1 m1g2 m2 m3                   | a match joins the segment after unless a match  |
 *   | Contiguous         | g1 m1 g2 m2m3                   | adjacent matches join                           |
 *
 * Empty segments are dropped. An empty match splits like any other (and yields nothing itself), except right after
 * a previous match, where regex engines skip it.
 *
 * Regexes are Oniguruma syntax, which PCRE2 with UTF + UCP reads the same for what tokenizer.json files use
 * (\p{L}, \p{N}, lookahead, (?i:...)), except \s: Oniguruma's is Unicode White_Space and PCRE2's adds U+180E, so
 * \s and \S are rewritten into explicit classes before compiling.
 */
#include <string.h>

#include "text/text_int.h"

#define MT_REGEX_MAX_LEN 65536

/* Unicode White_Space, written as class members. */
static const char SPACE_MEMBERS[] = "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
                                    "\\x{205F}\\x{3000}";

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Copies the n bytes of p (p[n] is 0) with \s and \S outside classes turned into [...] / [^...], and \s inside a
 * class into its members. \S inside a class is left to PCRE2 (it cannot be spelt as members). */
static bool rewrite_space(const char *p, size_t n, mt_tbuf *out) {
    int in_class = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok;) {
        if (p[i] == '\\' && p[i + 1]) {
            char c = p[i + 1];
            if (c == 's' && in_class) {
                ok = mt_tbuf_append(out, SPACE_MEMBERS, sizeof SPACE_MEMBERS - 1);
            } else if ((c == 's' || c == 'S') && !in_class) {
                ok = mt_tbuf_append(out, c == 's' ? "[" : "[^", c == 's' ? 1 : 2) &&
                     mt_tbuf_append(out, SPACE_MEMBERS, sizeof SPACE_MEMBERS - 1) && mt_tbuf_append(out, "]", 1);
            } else {
                ok = mt_tbuf_append(out, p + i, 2);
            }
            i += 2;
            continue;
        }
        if (p[i] == '[') {
            if (in_class && p[i + 1] == ':') { /* POSIX class [:alpha:] inside a class: copy it whole */
                const char *end = strstr(p + i + 2, ":]");
                if (end) {
                    size_t k = (size_t)(end + 2 - (p + i));
                    ok = mt_tbuf_append(out, p + i, k);
                    i += k;
                    continue;
                }
            }
            in_class++;
            ok = mt_tbuf_append(out, p + i, 1);
            i++;
            /* A ']' right after '[' or '[^' is a literal member. */
            if (p[i] == '^') ok = ok && mt_tbuf_append(out, p + i++, 1);
            if (p[i] == ']') ok = ok && mt_tbuf_append(out, p + i++, 1);
            continue;
        }
        if (p[i] == ']' && in_class) in_class--;
        ok = mt_tbuf_append(out, p + i, 1);
        i++;
    }
    return ok;
}

mt_status mt_pretok_compile(mt_tok_loader *L, const char *step, const char *pattern, size_t len, bool literal,
                            pcre2_code **out, mt_tok_str *text) {
    if (len > MT_REGEX_MAX_LEN)
        return mt_err_set(L->err, MT_ERR_LIMIT, "%s: %s: pattern \"%.60s...\" is %zu bytes, over the %d allowed",
                          L->path, step, pattern, len, MT_REGEX_MAX_LEN);
    mt_status st = mt_tok_blob_add(L, pattern, len, text);
    if (st) return st;
    mt_tbuf src = {0};
    if (!literal && !rewrite_space(pattern, len, &src)) {
        mt_free(src.data);
        return mt_err_set(L->err, MT_ERR_NOMEM, "%s: %s: out of memory", L->path, step);
    }
    int code;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(literal ? pattern : src.data), literal ? len : src.len, opts, &code,
                                   &off, NULL);
    mt_free(src.data);
    if (!re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof msg);
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: %s: pattern \"%.80s\" not accepted by PCRE2: %s", L->path,
                          step, pattern, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT, matching still works, only slower */
    *out = re;
    return MT_OK;
}

mt_status mt_pretok_gpt2_regex(mt_tok_loader *L, pcre2_code **out, mt_tok_str *text) {
    return mt_pretok_compile(L, "pre_tokenizer ByteLevel", GPT2_PATTERN, sizeof GPT2_PATTERN - 1, false, out, text);
}

mt_status mt_tok_match_failed(const mt_tokenizer *tok, const char *step, mt_tok_str pattern, int rc, size_t n,
                              mt_err *err) {
    PCRE2_UCHAR msg[200];
    pcre2_get_error_message(rc, msg, sizeof msg);
    const char *blob = tok->blob.data;
    return mt_err_set(err, MT_ERR_LIMIT, "%.*s: %s: pattern \"%.*s%s\": regex match failed on a piece of %zu bytes: %s",
                      (int)tok->name.len, blob + tok->name.off, step, (int)MT_MIN(pattern.len, 120),
                      blob + pattern.off, pattern.len > 120 ? "..." : "", n, (const char *)msg);
}

/* Joins segments by behavior, holding at most one segment back. */
typedef struct joiner {
    mt_encoder *e;
    size_t step;
    const char *s;
    mt_split_behavior behavior;
    bool has_pending, pending_match, prev_match;
    size_t ps, pe;
} joiner;

static mt_status emit(joiner *j, size_t start, size_t end) {
    if (end <= start) return MT_OK;
    bool was = j->e->at_origin;
    j->e->at_origin = was && start == 0;
    mt_status st = mt_pretok_run(j->e, j->step + 1, j->s + start, end - start);
    j->e->at_origin = was;
    return st;
}

static mt_status flush(joiner *j) {
    if (!j->has_pending) return MT_OK;
    j->has_pending = false;
    return emit(j, j->ps, j->pe);
}

static mt_status hold(joiner *j, size_t start, size_t end, bool match) {
    mt_status st = flush(j);
    j->has_pending = true;
    j->ps = start;
    j->pe = end;
    j->pending_match = match;
    return st;
}

static mt_status segment(joiner *j, size_t start, size_t end, bool match) {
    mt_status st = MT_OK;
    switch (j->behavior) {
    case MT_SPLIT_REMOVED:
        if (!match) st = emit(j, start, end);
        break;
    case MT_SPLIT_ISOLATED: st = emit(j, start, end); break;
    case MT_SPLIT_MERGED_PREV:
        if (match && !j->prev_match && j->has_pending) j->pe = end;
        else st = hold(j, start, end, match);
        break;
    case MT_SPLIT_MERGED_NEXT:
        if (j->has_pending && j->pending_match && !match) {
            j->has_pending = false;
            st = emit(j, j->ps, end);
        } else if (match) {
            st = hold(j, start, end, match);
        } else {
            if (!(st = flush(j))) st = emit(j, start, end);
        }
        break;
    case MT_SPLIT_CONTIGUOUS:
        if (j->has_pending && j->pending_match && match) j->pe = end;
        else st = hold(j, start, end, match);
        break;
    }
    j->prev_match = match;
    return st;
}

static size_t char_len(const char *s, size_t n, size_t at) {
    size_t k = mt_utf8_valid_len((const uint8_t *)s + at, n - at);
    return k ? k : 1;
}

static mt_status split(mt_encoder *e, size_t step, const mt_tok_pre *pre, mt_split_behavior behavior, bool invert,
                       const char *s, size_t n) {
    joiner j = {.e = e, .step = step, .s = s, .behavior = behavior};
    size_t pos = 0, prev = 0;
    bool after_match = false;
    mt_status st = MT_OK;
    while (pos <= n && st == MT_OK) {
        int rc = pcre2_match(pre->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return mt_tok_match_failed(e->tok, "pre_tokenizer", pre->pattern, rc, n, e->err);
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me) {
            if (!(after_match && ms == prev)) {
                if (ms > prev) st = segment(&j, prev, ms, invert);
                if (!st) st = segment(&j, ms, ms, !invert);
                prev = ms;
            }
            if (ms >= n) break;
            pos = ms + char_len(s, n, ms);
            after_match = false;
            continue;
        }
        if (ms > prev) st = segment(&j, prev, ms, invert);
        if (!st) st = segment(&j, ms, me, !invert);
        prev = pos = me;
        after_match = true;
    }
    if (!st && prev < n) st = segment(&j, prev, n, invert);
    if (!st) st = flush(&j);
    return st;
}

/* Metaspace: spaces become the replacement, which is put in front by the prepend scheme unless already there; with
 * split, the piece is cut before each replacement (MergedWithNext). */
static mt_status metaspace(mt_encoder *e, size_t step, const mt_tok_pre *pre, const char *s, size_t n) {
    size_t rn = strlen(pre->repl);
    mt_tbuf t = {0};
    bool starts = s[0] == ' ' || (n >= rn && memcmp(s, pre->repl, rn) == 0); /* after the replacing */
    bool prepend = !starts && (pre->prepend == MT_PREPEND_ALWAYS || (pre->prepend == MT_PREPEND_FIRST && e->at_origin));
    bool ok = (!prepend || mt_tbuf_append(&t, pre->repl, rn)) && mt_tok_replace_literal(s, n, " ", 1, pre->repl, rn, &t);
    mt_status st = ok ? MT_OK : mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory");
    if (!st && pre->re) st = split(e, step, pre, MT_SPLIT_MERGED_NEXT, false, t.data, t.len);
    else if (!st) st = mt_pretok_run(e, step + 1, t.data, t.len);
    mt_free(t.data);
    return st;
}

mt_status mt_pretok_run(mt_encoder *e, size_t step, const char *s, size_t n) {
    const mt_tokenizer *tok = e->tok;
    if (n == 0) return MT_OK;
    if (step == tok->n_pre) return mt_bpe_word(e, (const uint8_t *)s, n);
    const mt_tok_pre *pre = &tok->pre[step];
    if (pre->kind == MT_PRE_SPLIT) return split(e, step, pre, pre->behavior, pre->invert, s, n);
    if (pre->kind == MT_PRE_METASPACE) return metaspace(e, step, pre, s, n);
    if (pre->add_prefix_space && s[0] != ' ') {
        /* ByteLevel is the last step, so what follows never touches scratch again. */
        e->scratch.len = 0;
        if (!mt_tbuf_append(&e->scratch, " ", 1) || !mt_tbuf_append(&e->scratch, s, n))
            return mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory");
        s = e->scratch.data;
        n = e->scratch.len;
    }
    if (pre->re) return split(e, step, pre, MT_SPLIT_ISOLATED, false, s, n);
    return mt_pretok_run(e, step + 1, s, n);
}
