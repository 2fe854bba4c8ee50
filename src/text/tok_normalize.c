/* text/tok_normalize: the normalizer steps of tokenizer.json (tokenizers/src/normalizers/{unicode,prepend,replace}.rs),
 * run in order on one piece of text:
 *
 *   | step              | effect                                                                      |
 *   |-------------------|-----------------------------------------------------------------------------|
 *   | NFC NFD NFKC NFKD | utf8proc                                                                    |
 *   | Prepend           | the prefix goes in front, unless the text is empty (Llama 2: "▁")           |
 *   | Replace           | every non-overlapping match, leftmost first, becomes the content (" " -> "▁")|
 *
 * A Regex pattern is matched by PCRE2 (compiled by tok_pretok.c, so \s means Unicode White_Space); an empty match
 * inserts the content and the search moves on by one character, as Rust's find_iter does.
 */
#include <string.h>

#include "text/text_int.h"

const char *mt_tok_find(const char *s, size_t n, const char *pat, size_t pn) {
    if (pn == 0 || pn > n) return NULL;
    for (const char *p = s, *end = s + n - pn + 1; (p = memchr(p, pat[0], (size_t)(end - p))); p++)
        if (memcmp(p, pat, pn) == 0) return p;
    return NULL;
}

bool mt_tok_replace_literal(const char *s, size_t n, const char *from, size_t from_len, const char *to, size_t to_len,
                            mt_tbuf *out) {
    if (!mt_tbuf_reserve(out, n)) return false;
    size_t i = 0;
    while (i < n) {
        const char *hit = mt_tok_find(s + i, n - i, from, from_len);
        if (!hit) break;
        size_t at = (size_t)(hit - s);
        if (!mt_tbuf_append(out, s + i, at - i) || !mt_tbuf_append(out, to, to_len)) return false;
        i = at + from_len;
    }
    return mt_tbuf_append(out, s + i, n - i);
}

static mt_status replace_regex(const mt_tokenizer *tok, const mt_tok_nstep *st, const char *s, size_t n,
                               mt_tbuf *out, mt_err *err) {
    const char *to = tok->blob.data + st->to.off;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory");
    size_t pos = 0, copied = 0;
    bool ok = true;
    mt_status status = MT_OK;
    while (ok && pos <= n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            status = mt_tok_match_failed(tok, "normalizer Replace", st->pattern, rc, n, err);
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        ok = mt_tbuf_append(out, s + copied, ov[0] - copied) && mt_tbuf_append(out, to, st->to.len);
        copied = ov[1];
        if (ov[1] > ov[0]) {
            pos = ov[1];
        } else {
            if (ov[0] >= n) break;
            size_t k = mt_utf8_valid_len((const uint8_t *)s + ov[0], n - ov[0]);
            pos = ov[0] + (k ? k : 1);
        }
    }
    pcre2_match_data_free(md);
    if (status) return status;
    if (!ok || !mt_tbuf_append(out, s + copied, n - copied))
        return mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory");
    return MT_OK;
}

static mt_status step(const mt_tokenizer *tok, const mt_tok_nstep *st, const char *s, size_t n, mt_tbuf *out,
                      mt_err *err) {
    const char *blob = tok->blob.data;
    out->len = 0;
    bool ok = true;
    switch (st->kind) {
    case MT_NORM_UNICODE: return mt_unicode_normalize(&st->form, 1, s, n, out, err);
    case MT_NORM_PREPEND:
        if (n) ok = mt_tbuf_append(out, blob + st->from.off, st->from.len);
        ok = ok && mt_tbuf_append(out, s, n);
        break;
    case MT_NORM_REPLACE:
        if (st->re) return replace_regex(tok, st, s, n, out, err);
        ok = mt_tok_replace_literal(s, n, blob + st->from.off, st->from.len, blob + st->to.off, st->to.len, out);
        break;
    }
    return ok ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory");
}

/* The most a normalizer chain may grow its input: NFKC expands a character at most 18 times and Prepend adds one
 * string, so a real tokenizer.json stays far below; chained Replaces that feed each other do not (8 steps of "a" ->
 * "aaaaaaaa" grow 10 bytes to 160 MB). */
#define MAX_GROWTH 32
#define MAX_SLACK 4096

mt_status mt_tok_normalize(const mt_tokenizer *tok, const char *s, size_t n, mt_tbuf *out, mt_tbuf *tmp,
                           mt_err *err) {
    out->len = 0;
    size_t cap = n > (SIZE_MAX - MAX_SLACK) / MAX_GROWTH ? SIZE_MAX : n * MAX_GROWTH + MAX_SLACK;
    if (tok->n_norm == 0)
        return mt_tbuf_append(out, s, n) ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory");
    for (size_t i = 0; i < tok->n_norm; i++) {
        mt_status st;
        if (i == 0) {
            st = step(tok, &tok->norm[i], s, n, out, err);
        } else {
            mt_tbuf t = *tmp;
            *tmp = *out;
            *out = t;
            st = step(tok, &tok->norm[i], tmp->data, tmp->len, out, err);
        }
        if (st) return st;
        if (out->len > cap)
            return mt_err_set(err, MT_ERR_LIMIT, "normalizer step %zu grew %zu bytes of text to %zu, over %d times the "
                              "input: the tokenizer.json's normalizers feed each other", i + 1, n, out->len, MAX_GROWTH);
    }
    return MT_OK;
}
