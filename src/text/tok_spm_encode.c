/* text/tok_spm_encode: one piece of text (between added tokens) -> ids, as SentencePiece encodes it
 * (google/sentencepiece src/normalizer.cc Normalize, bpe_model.cc SampleEncode without dropout,
 * unigram_model.cc EncodeOptimized, sentencepiece_processor.cc PopulateSentencePieceText):
 *
 *   text ──normalize──> "▁Hello▁world" ──BPE or unigram──> pieces ──byte fallback / unk──> ids
 *
 * normalize: at each place the longest user-defined piece is kept as it is, else the longest rule of the
 * precompiled charsmap (a Darts-clone double-array trie over UTF-8 bytes, each leaf an offset into NUL-terminated
 * replacement strings) replaces its match, else one character passes; spaces become "▁"; leading, trailing and
 * repeated spaces are dropped with remove_extra_whitespaces; add_dummy_prefix puts one "▁" first.
 *
 * BPE: symbols start as characters (a user-defined piece is one frozen symbol); the adjacent pair whose
 * concatenation is a piece (normal, user-defined or unused) of highest score is merged, the leftmost among equal
 * scores, until none is left; a merged unused piece is split back into the two it was made of.
 *
 * Unigram: Viterbi over byte positions; a piece scores its score (a user-defined one length * max score - 0.1), a
 * character no piece starts with scores min score - 10 as unknown; the arithmetic keeps SentencePiece's float and
 * double mix so that ties break the same way.
 *
 * Then a piece that is no known piece is unknown: with byte_fallback its UTF-8 bytes as "<0xXX>" pieces, otherwise
 * the unknown id, one for each run of unknown pieces.
 *
 * Where mitten differs: text that is not valid UTF-8 was repaired by encode (one U+FFFD per maximal subpart, where
 * SentencePiece's normalizer puts one per byte).
 */
#include <string.h>

#include "text/spm.h"
#include "text/text_int.h"

static const char META[] = "\xE2\x96\x81";

/* Length of the character at s by its first byte, as SentencePiece's OneCharLen, at most n. */
static size_t one_char_len(const uint8_t *s, size_t n) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return MT_MIN((size_t)len[s[0] >> 4], n);
}

/* The longest user-defined piece at s, or 0. */
static size_t user_prefix(const mt_tokenizer *tok, const char *s, size_t n) {
    for (const uint16_t *len = tok->spm_user_lens; *len; len++) {
        if (*len > n) continue;
        int32_t id = mt_tok_index_get(&tok->by_name, tok->blob.data, s, *len);
        if (id >= 0 && tok->spm_type[id] == MT_SPM_USER_DEFINED) return *len;
    }
    return 0;
}

/* The longest charsmap rule at s: its length (0 for none) and replacement. A trie that walks out of its array or
 * points past its strings is a malformed file, reported then. */
static mt_status charsmap_prefix(const mt_tokenizer *tok, const uint8_t *s, size_t n, size_t *len, const char **to,
                                 mt_err *err) {
    const uint32_t *a = tok->spm_trie;
    size_t units = tok->n_spm_trie, pos = 0;
    *len = 0;
    uint32_t u = a[0];
    pos ^= (size_t)(u >> 10) << ((u & (1u << 9)) >> 6);
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= units) break;
        u = a[pos];
        if ((u & ((1u << 31) | 0xFF)) != s[i]) break;
        pos ^= (size_t)(u >> 10) << ((u & (1u << 9)) >> 6);
        if (!((u >> 8) & 1)) continue;
        if (pos >= units) return mt_err_set(err, MT_ERR_FORMAT, "%s: the precompiled_charsmap trie has a leaf at "
                                            "unit %zu of %zu", tok->blob.data + tok->name.off, pos, units);
        uint32_t v = a[pos] & ((1u << 31) - 1);
        if (v >= tok->n_spm_norm) return mt_err_set(err, MT_ERR_FORMAT, "%s: the precompiled_charsmap points at "
                                                    "byte %u of %zu replacement bytes", tok->blob.data + tok->name.off,
                                                    v, tok->n_spm_norm);
        *len = i + 1;
        *to = tok->spm_norm + v;
    }
    return MT_OK;
}

static bool put_space(const mt_tokenizer *tok, mt_tbuf *out) {
    return tok->spm_escape ? mt_tbuf_append(out, META, 3) : mt_tbuf_append(out, " ", 1);
}

/* The normalized form of the prefix at s (*used bytes of s): a view into s, the charsmap or a constant. */
static mt_status prefix(const mt_tokenizer *tok, const char *s, size_t n, const char **p, size_t *pn, size_t *used,
                        mt_err *err) {
    size_t k = user_prefix(tok, s, n);
    if (k) {
        *p = s, *pn = *used = k;
        return MT_OK;
    }
    if (tok->spm_trie) {
        mt_status st = charsmap_prefix(tok, (const uint8_t *)s, n, &k, p, err);
        if (st) return st;
        if (k) {
            *pn = strlen(*p);
            *used = k;
            return MT_OK;
        }
    }
    k = mt_utf8_valid_len((const uint8_t *)s, n);
    if (!k) {
        *p = "\xEF\xBF\xBD", *pn = 3, *used = 1;
        return MT_OK;
    }
    *p = s, *pn = *used = k;
    return MT_OK;
}

static mt_status normalize(const mt_tokenizer *tok, const char *s, size_t n, mt_tbuf *out, mt_err *err) {
    out->len = 0;
    const char *p;
    size_t pn, used, i = 0;
    mt_status st;
    if (tok->spm_rm_ws)
        for (; i < n; i += used) {
            if ((st = prefix(tok, s + i, n - i, &p, &pn, &used, err))) return st;
            if (pn != 1 || p[0] != ' ') break;
        }
    if (i == n) return MT_OK;
    bool ok = !tok->spm_dummy || put_space(tok, out);
    bool prev_space = tok->spm_rm_ws;
    for (; i < n && ok; i += used) {
        if ((st = prefix(tok, s + i, n - i, &p, &pn, &used, err))) return st;
        while (prev_space && pn && p[0] == ' ') p++, pn--;
        if (pn) {
            for (size_t k = 0; k < pn && ok; k++)
                ok = p[k] == ' ' ? put_space(tok, out) : mt_tbuf_append(out, p + k, 1);
            prev_space = p[pn - 1] == ' ';
        }
        if (!tok->spm_rm_ws) prev_space = false;
    }
    if (!ok) return mt_err_set(err, MT_ERR_NOMEM, "encode: out of memory");
    if (tok->spm_rm_ws) {
        size_t sl = tok->spm_escape ? 3 : 1;
        const char *sp = tok->spm_escape ? META : " ";
        while (out->len >= sl && memcmp(out->data + out->len - sl, sp, sl) == 0) out->len -= sl;
    }
    return MT_OK;
}

/* ---- turning pieces into ids ---- */

typedef struct emit {
    mt_encoder *e;
    bool prev_unk;
} emit;

/* A piece of the normalized text: its id, its bytes under byte fallback, or the unknown id (one per run). */
static bool emit_piece(const mt_tokenizer *tok, emit *o, const char *s, size_t n, int32_t id) {
    if (id < 0) id = mt_tok_index_get(&tok->by_name, tok->blob.data, s, n);
    bool unk = id < 0 || id == tok->unk_id;
    if (unk && tok->byte_fallback) {
        for (size_t i = 0; i < n; i++)
            if (!mt_encoder_push(o->e, tok->fallback_id[(uint8_t)s[i]])) return false;
        o->prev_unk = true;
        return true;
    }
    bool skip = unk && o->prev_unk;
    o->prev_unk = unk;
    return skip || mt_encoder_push(o->e, unk ? tok->unk_id : id);
}

/* The id of a piece BPE may merge into (normal, user-defined, unused), or -1. */
static int32_t mergeable(const mt_tokenizer *tok, const char *s, size_t n) {
    if (n > tok->spm_max_len) return -1;
    int32_t id = mt_tok_index_get(&tok->by_name, tok->blob.data, s, n);
    if (id < 0) return -1;
    uint8_t t = tok->spm_type[id];
    return t == MT_SPM_NORMAL || t == MT_SPM_USER_DEFINED || t == MT_SPM_UNUSED ? id : -1;
}

typedef struct sym {
    uint32_t start, len;
    int32_t prev, next;
    bool freeze;
} sym;

typedef struct pair {
    float score;
    int32_t left, right;
    uint32_t size;
} pair;

/* Heap order: higher score first, then the leftmost. */
static bool before(const pair *a, const pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct bpe {
    const mt_tokenizer *tok;
    const char *w;
    sym *s;
    pair *h;
    size_t nh, caph;
    uint32_t *split; /* [start, len, left length] of each unused piece merged */
    size_t nsplit, capsplit;
    bool ok;
} bpe;

static void push_pair(bpe *b, int32_t l, int32_t r) {
    if (l < 0 || r < 0 || b->s[l].freeze || b->s[r].freeze) return;
    uint32_t size = b->s[l].len + b->s[r].len;
    int32_t id = mergeable(b->tok, b->w + b->s[l].start, size);
    if (id < 0) return;
    if (b->tok->spm_type[id] == MT_SPM_UNUSED) {
        if (!mt_grow((void **)&b->split, &b->capsplit, b->nsplit + 3, sizeof(uint32_t))) {
            b->ok = false;
            return;
        }
        b->split[b->nsplit++] = b->s[l].start;
        b->split[b->nsplit++] = size;
        b->split[b->nsplit++] = b->s[l].len;
    }
    if (!mt_grow((void **)&b->h, &b->caph, b->nh + 1, sizeof(pair))) {
        b->ok = false;
        return;
    }
    pair c = {b->tok->spm_score[id], l, r, size};
    size_t i = b->nh++;
    while (i > 0 && before(&c, &b->h[(i - 1) / 2])) {
        b->h[i] = b->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    b->h[i] = c;
}

static pair pop_pair(bpe *b) {
    pair top = b->h[0], last = b->h[--b->nh];
    size_t i = 0, n = b->nh;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&b->h[c + 1], &b->h[c])) c++;
        if (!before(&b->h[c], &last)) break;
        b->h[i] = b->h[c];
        i = c;
    }
    if (n) b->h[i] = last;
    return top;
}

/* Emits w[start, start + len), splitting a merged unused piece back into its parts (the last split recorded for
 * that span, as SentencePiece's rev_merge keeps the last). */
static bool resegment(bpe *b, emit *o, uint32_t start, uint32_t len, int depth) {
    int32_t id = mt_tok_index_get(&b->tok->by_name, b->tok->blob.data, b->w + start, len);
    if (id >= 0 && b->tok->spm_type[id] == MT_SPM_UNUSED && depth < 64) {
        for (size_t k = b->nsplit; k >= 3; k -= 3) {
            const uint32_t *r = b->split + k - 3;
            if (r[0] != start || r[1] != len) continue;
            return resegment(b, o, start, r[2], depth + 1) && resegment(b, o, start + r[2], len - r[2], depth + 1);
        }
    }
    return emit_piece(b->tok, o, b->w + start, len, id);
}

static mt_status encode_bpe(mt_encoder *e, const char *w, size_t n) {
    const mt_tokenizer *tok = e->tok;
    if (n >= INT32_MAX) return mt_err_set(e->err, MT_ERR_LIMIT, "encode: a piece of %zu bytes", n);
    bpe b = {.tok = tok, .w = w, .ok = true};
    b.s = mt_malloc_array(n, sizeof(sym));
    if (!b.s) return mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory for %zu bytes", n);
    int32_t m = 0;
    for (size_t i = 0; i < n; m++) {
        size_t k = user_prefix(tok, w + i, n - i);
        bool freeze = k > 0;
        if (!k) k = one_char_len((const uint8_t *)w + i, n - i);
        b.s[m] = (sym){(uint32_t)i, (uint32_t)k, m - 1, -1, freeze};
        if (m > 0) b.s[m - 1].next = m;
        i += k;
    }
    for (int32_t i = 1; i < m && b.ok; i++) push_pair(&b, i - 1, i);
    while (b.nh && b.ok) {
        pair top = pop_pair(&b);
        sym *l = &b.s[top.left], *r = &b.s[top.right];
        if (!l->len || !r->len || l->len + r->len != top.size) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) b.s[r->next].prev = top.left;
        r->len = 0;
        push_pair(&b, l->prev, top.left);
        push_pair(&b, top.left, l->next);
    }
    emit o = {e, false};
    for (int32_t i = 0; m && i >= 0 && b.ok; i = b.s[i].next) b.ok = resegment(&b, &o, b.s[i].start, b.s[i].len, 0);
    mt_free(b.s);
    mt_free(b.h);
    mt_free(b.split);
    return b.ok ? MT_OK : mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory for %zu bytes", n);
}

typedef struct node {
    int32_t id;
    float score;
    int32_t start; /* -1: no path ends here yet */
} node;

static mt_status encode_unigram(mt_encoder *e, const char *w, size_t n) {
    const mt_tokenizer *tok = e->tok;
    if (n >= INT32_MAX) return mt_err_set(e->err, MT_ERR_LIMIT, "encode: a piece of %zu bytes", n);
    node *best = mt_malloc_array(n + 1, sizeof(node));
    if (!best) return mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory for %zu bytes", n);
    for (size_t i = 0; i <= n; i++) best[i] = (node){-1, 0, -1};
    const float unk_score = tok->spm_min_score - 10.0f;
    for (size_t at = 0; at < n;) {
        float till = best[at].score;
        size_t mblen = one_char_len((const uint8_t *)w + at, n - at);
        bool single = false;
        size_t max = MT_MIN(n - at, (size_t)tok->spm_max_len);
        for (size_t len = 1; len <= max; len++) {
            int32_t id = mergeable(tok, w + at, len);
            if (id < 0 || tok->spm_type[id] == MT_SPM_UNUSED) continue;
            double score = tok->spm_type[id] == MT_SPM_USER_DEFINED ? (double)((float)len * tok->spm_max_score) - 0.1
                                                                    : (double)tok->spm_score[id];
            double cand = score + (double)till;
            node *t = &best[at + len];
            if (t->start < 0 || cand > (double)t->score) *t = (node){id, (float)cand, (int32_t)at};
            single = single || len == mblen;
        }
        if (!single) {
            float cand = unk_score + till;
            node *t = &best[at + mblen];
            if (t->start < 0 || cand > t->score) *t = (node){tok->unk_id, cand, (int32_t)at};
        }
        at += mblen;
    }
    size_t count = 0;
    for (size_t end = n; end > 0 && best[end].start >= 0; end = (size_t)best[end].start) count++;
    /* the path backwards, reversed in place over the starts */
    int32_t *path = mt_malloc_array(count ? count : 1, sizeof(int32_t));
    bool ok = path != NULL;
    size_t k = count;
    for (size_t end = n; ok && end > 0 && best[end].start >= 0; end = (size_t)best[end].start) path[--k] = (int32_t)end;
    emit o = {e, false};
    for (size_t i = 0; ok && i < count; i++) {
        size_t end = (size_t)path[i], start = (size_t)best[end].start;
        ok = emit_piece(tok, &o, w + start, end - start, best[end].id);
    }
    mt_free(path);
    mt_free(best);
    return ok ? MT_OK : mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory for %zu bytes", n);
}

mt_status mt_spm_encode(mt_encoder *e, const char *s, size_t n, mt_tbuf *norm) {
    mt_status st = normalize(e->tok, s, n, norm, e->err);
    if (st || norm->len == 0) return st;
    return e->tok->spm == MT_SPM_BPE ? encode_bpe(e, norm->data, norm->len) : encode_unigram(e, norm->data, norm->len);
}
