/* text/tok_encode: text -> ids (tokenizers/src/tokenizer/{mod,added_vocabulary}.rs: encode_single_sequence,
 * extract_and_normalize, find_matches).
 *
 *   text ──UTF-8 repair──> split on added tokens that are not normalized (raw text)
 *        ──each other piece──> normalizer ──> split on normalized added tokens ──> pre-tokenizers ──> BPE
 *
 * add_special_tokens wraps the ids in the post-processor's (tok->post_ids).
 *
 * Added tokens are found as Aho-Corasick with MatchKind::LeftmostLongest finds them: at the leftmost position where
 * any matches, the longest. A match is then dropped, still covering its bytes, when it is special and
 * parse_special is off or when single_word is set and a word character touches it. lstrip / rstrip widen an
 * accepted match over the White_Space next to it, which the token then swallows.
 */
#include <string.h>

#include "text/text_int.h"

typedef mt_status (*piece_fn)(mt_encoder *e, const char *s, size_t n);

typedef struct added_pass {
    bool normalized; /* which tokens this pass looks for: tok->added_ix[normalized] */
    bool parse_special;
} added_pass;

/* Leftmost-longest match at or after from; returns the added index or -1, and its start. Each position whose byte
 * starts some token is looked up once per distinct token length, longest first. */
static int32_t find_added(const mt_tokenizer *tok, const added_pass *p, const char *s, size_t n, size_t from,
                          size_t *start) {
    const mt_tok_index *ix = &tok->added_ix[p->normalized];
    const uint16_t *lens = tok->added_lens[p->normalized];
    const bool *first = tok->added_first[p->normalized];
    const uint8_t *pair = tok->added_pair[p->normalized];
    for (size_t i = from; i < n; i++) {
        const uint8_t *c = (const uint8_t *)s + i;
        if (!first[c[0]]) continue;
        bool two = i + 1 < n && (pair[(c[0] << 5) | (c[1] >> 3)] >> (c[1] & 7) & 1);
        for (const uint16_t *len = lens; *len; len++) {
            if (*len > n - i || (*len > 1 && !two)) continue;
            int32_t k = mt_tok_index_get(ix, tok->blob.data, s + i, *len);
            if (k >= 0) {
                *start = i;
                return k;
            }
        }
    }
    return -1;
}

/* The code point that ends at s[end) / starts at s[start], or 0x110000 for none. */
static uint32_t cp_before(const char *s, size_t end) {
    if (end == 0) return 0x110000;
    size_t i = end - 1;
    while (i > 0 && end - i < 4 && ((uint8_t)s[i] & 0xC0) == 0x80) i--;
    size_t k = mt_utf8_valid_len((const uint8_t *)s + i, end - i);
    return k == end - i ? mt_utf8_cp((const uint8_t *)s + i, k) : 0x110000;
}

static uint32_t cp_at(const char *s, size_t n, size_t start, size_t *len) {
    *len = start < n ? mt_utf8_valid_len((const uint8_t *)s + start, n - start) : 0;
    return *len ? mt_utf8_cp((const uint8_t *)s + start, *len) : 0x110000;
}

/* Hands s[start, end) on; it starts the text when s does and start is 0. */
static mt_status next_piece(mt_encoder *e, piece_fn next, const char *s, size_t start, size_t end) {
    bool was = e->at_origin;
    e->at_origin = was && start == 0;
    mt_status st = next(e, s + start, end - start);
    e->at_origin = was;
    return st;
}

static mt_status split_added(mt_encoder *e, const added_pass *p, const char *s, size_t n, piece_fn next) {
    const mt_tokenizer *tok = e->tok;
    if (!tok->added_lens[p->normalized][0]) return next(e, s, n);
    size_t offset = 0, from = 0, start;
    int32_t k;
    mt_status st = MT_OK;
    while (st == MT_OK && (k = find_added(tok, p, s, n, from, &start)) >= 0) {
        const mt_tok_added *a = &tok->added[k];
        size_t stop = start + a->match.len, len;
        from = stop;
        if (a->special && !p->parse_special) continue;
        if (a->single_word && (mt_unicode_is_word(cp_before(s, start)) || mt_unicode_is_word(cp_at(s, n, stop, &len))))
            continue;
        if (a->lstrip) {
            size_t ns = start;
            for (uint32_t c; (c = cp_before(s, ns)) != 0x110000 && mt_unicode_is_space(c);) {
                ns--;
                while (ns > 0 && ((uint8_t)s[ns] & 0xC0) == 0x80) ns--;
            }
            start = MT_MAX(ns, offset);
        }
        if (a->rstrip)
            while (mt_unicode_is_space(cp_at(s, n, stop, &len))) stop += len;
        if (offset < start) st = next_piece(e, next, s, offset, start);
        if (!st && !mt_encoder_push(e, a->id)) st = mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory");
        offset = stop;
    }
    if (!st && offset < n) st = next_piece(e, next, s, offset, n);
    return st;
}

typedef struct encode_ctx {
    mt_encoder e;
    added_pass normalized_pass;
    mt_tbuf norm, norm_tmp;
} encode_ctx;

static mt_status to_pretok(mt_encoder *e, const char *s, size_t n) { return mt_pretok_run(e, 0, s, n); }

static mt_status normalize_piece(mt_encoder *e, const char *s, size_t n) {
    encode_ctx *c = (encode_ctx *)e;
    if (e->tok->spm) return mt_spm_encode(e, s, n, &c->norm);
    if (e->tok->n_norm == 0) return mt_pretok_run(e, 0, s, n);
    mt_status st = mt_tok_normalize(e->tok, s, n, &c->norm, &c->norm_tmp, e->err);
    if (st) return st;
    return split_added(e, &c->normalized_pass, c->norm.data, c->norm.len, to_pretok);
}

mt_tokenizer_encode_opts mt_tokenizer_encode_default_opts(void) {
    return (mt_tokenizer_encode_opts){.parse_special = true, .add_special_tokens = false};
}

static bool push_all(mt_encoder *e, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!mt_encoder_push(e, ids[i])) return false;
    return true;
}

mt_status mt_tokenizer_encode_with(const mt_tokenizer *tok, const char *text, size_t len,
                                   const mt_tokenizer_encode_opts *opts, int32_t **ids, size_t *n_ids, mt_err *err) {
    if (!tok || (!text && len) || !opts || !ids || !n_ids)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "encode: NULL tokenizer, text, options or output");
    encode_ctx c = {.e = {.tok = tok, .err = err, .at_origin = true}};
    mt_encoder *e = &c.e;
    mt_tbuf clean = {0};
    mt_status st = MT_OK;
    bool parse_special = opts->parse_special && !tok->split_special;
    added_pass raw_pass = {false, parse_special};
    c.normalized_pass = (added_pass){true, parse_special};
    e->md = pcre2_match_data_create(1, NULL);
    if (!e->md || !mt_bpe_cache_new(e, len)) st = mt_err_set(err, MT_ERR_NOMEM, "encode: out of memory");
    if (!st && !mt_utf8_is_valid(text, len)) {
        if (mt_utf8_sanitize(text, len, &clean)) {
            text = clean.data;
            len = clean.len;
        } else {
            st = mt_err_set(err, MT_ERR_NOMEM, "encode: out of memory");
        }
    }
    bool post = opts->add_special_tokens;
    if (!st && post && !push_all(e, tok->post_ids, tok->n_post_prefix))
        st = mt_err_set(err, MT_ERR_NOMEM, "encode: out of memory");
    if (!st && len) st = split_added(e, &raw_pass, text, len, normalize_piece);
    if (!st && post && !push_all(e, tok->post_ids + tok->n_post_prefix, tok->n_post - tok->n_post_prefix))
        st = mt_err_set(err, MT_ERR_NOMEM, "encode: out of memory");
    pcre2_match_data_free(e->md);
    mt_bpe_cache_free(e);
    mt_free(e->scratch.data);
    mt_free(c.norm.data);
    mt_free(c.norm_tmp.data);
    mt_free(clean.data);
    if (st) {
        mt_free(e->ids);
        return st;
    }
    if (e->n_ids == 0) {
        mt_free(e->ids);
        e->ids = NULL;
    }
    *ids = e->ids;
    *n_ids = e->n_ids;
    return MT_OK;
}

mt_status mt_tokenizer_encode(const mt_tokenizer *tok, const char *text, size_t len, bool parse_special, int32_t **ids,
                              size_t *n_ids, mt_err *err) {
    mt_tokenizer_encode_opts opts = mt_tokenizer_encode_default_opts();
    opts.parse_special = parse_special;
    return mt_tokenizer_encode_with(tok, text, len, &opts, ids, n_ids, err);
}

int32_t mt_tokenizer_token_id(const mt_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    size_t n = strlen(token);
    for (size_t i = tok->n_added; i-- > 0;) {
        const mt_tok_added *a = &tok->added[i];
        if (a->content.len == n && memcmp(tok->blob.data + a->content.off, token, n) == 0) return a->id;
    }
    return mt_tok_index_get(&tok->by_name, tok->blob.data, token, n);
}

int64_t mt_tokenizer_vocab_size(const mt_tokenizer *tok) { return tok ? tok->n_ids : 0; }

const char *mt_tokenizer_id_to_token(const mt_tokenizer *tok, int32_t id, size_t *len) {
    if (!tok || id < 0 || id >= tok->n_ids) return NULL;
    int32_t a = tok->added_of[id];
    const mt_tok_str *s = a >= 0 ? &tok->added[a].content : (tok->flags[id] & MT_TOK_F_VOCAB) ? &tok->vname[id] : NULL;
    if (!s) return NULL;
    if (len) *len = s->len;
    return tok->blob.data + s->off;
}

bool mt_tokenizer_is_special(const mt_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n_ids && (tok->flags[id] & MT_TOK_F_SPECIAL);
}
