/* text/tok_decode: ids -> text, whole or streamed (tokenizers/src/decoders/byte_level.rs and
 * String::from_utf8_lossy; transformers.js ByteLevelDecoder for added tokens, which it passes through verbatim).
 *
 * Each model id stands for the raw bytes of its token (vbytes); each added id for its content. The bytes are joined
 * and every maximal ill-formed UTF-8 subpart becomes U+FFFD. A stream does the same in pieces: it holds back a
 * trailing prefix of a character that may yet complete, so its pieces joined equal the whole decode.
 */
#include <string.h>

#include "text/text_int.h"

static mt_status token_bytes(const mt_tokenizer *tok, int32_t id, bool skip_special, const char **p, size_t *n,
                             mt_err *err) {
    if (id < 0 || id >= tok->n_ids)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "decode: id %d is outside the vocab [0, %d)", id, tok->n_ids);
    int32_t a = tok->added_of[id];
    if (a >= 0) {
        bool skip = skip_special && tok->added[a].special;
        *p = tok->blob.data + tok->added[a].content.off;
        *n = skip ? 0 : tok->added[a].content.len;
        return MT_OK;
    }
    if (!(tok->flags[id] & MT_TOK_F_VOCAB))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "decode: id %d has no token", id);
    *p = tok->blob.data + tok->vbytes[id].off;
    *n = tok->vbytes[id].len;
    return MT_OK;
}

/* Appends the valid UTF-8 of src[0..n) to out with U+FFFD for ill-formed subparts. When hold is set, a trailing
 * prefix of a character that more bytes could complete is left out; returns how many bytes were consumed. */
static size_t append_lossy(mt_tbuf *out, const char *src, size_t n, bool hold, bool *ok) {
    const uint8_t *s = (const uint8_t *)src;
    size_t i = 0;
    *ok = mt_tbuf_reserve(out, n);
    while (*ok && i < n) {
        size_t run = i;
        while (run < n && s[run] < 0x80) run++;
        if (run > i) {
            *ok = mt_tbuf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        size_t k = mt_utf8_valid_len(s + i, n - i);
        if (k) {
            *ok = mt_tbuf_append(out, s + i, k);
            i += k;
            continue;
        }
        if (hold && mt_utf8_is_partial(s + i, n - i)) break;
        *ok = mt_tbuf_append(out, "\xEF\xBF\xBD", 3);
        i += mt_utf8_bad_len(s + i, n - i);
    }
    return i;
}

mt_status mt_tokenizer_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out,
                              size_t *out_len, mt_err *err) {
    if (!tok || (!ids && n) || !out)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "decode: NULL tokenizer, ids or output");
    mt_tbuf raw = {0}, text = {0};
    mt_status st = MT_OK;
    bool ok = mt_tbuf_reserve(&raw, n * 4 < n ? n : n * 4);
    for (size_t i = 0; i < n && ok && !st; i++) {
        const char *p;
        size_t len;
        st = token_bytes(tok, ids[i], skip_special, &p, &len, err);
        if (!st) ok = mt_tbuf_append(&raw, p, len);
    }
    if (!st && ok) {
        append_lossy(&text, raw.data, raw.len, false, &ok);
        if (ok) ok = mt_tbuf_reserve(&text, 0);
    }
    mt_free(raw.data);
    if (!st && !ok) st = mt_err_set(err, MT_ERR_NOMEM, "decode: out of memory for %zu ids", n);
    if (st) {
        mt_free(text.data);
        return st;
    }
    text.data[text.len] = 0;
    *out = text.data;
    if (out_len) *out_len = text.len;
    return MT_OK;
}

struct mt_detok_stream {
    const mt_tokenizer *tok;
    bool skip_special;
    mt_tbuf held; /* bytes of an unfinished character */
    mt_tbuf out;  /* the piece handed back */
};

mt_status mt_detok_stream_new(const mt_tokenizer *tok, bool skip_special, mt_detok_stream **out, mt_err *err) {
    if (!tok || !out) return mt_err_set(err, MT_ERR_INVALID_ARG, "detok stream: NULL tokenizer or output");
    mt_detok_stream *s = mt_calloc(1, sizeof *s);
    if (!s || !mt_tbuf_reserve(&s->out, 64) || !mt_tbuf_reserve(&s->held, 8)) {
        mt_detok_stream_free(s);
        return mt_err_set(err, MT_ERR_NOMEM, "detok stream: out of memory");
    }
    s->tok = tok;
    s->skip_special = skip_special;
    *out = s;
    return MT_OK;
}

mt_status mt_detok_stream_push(mt_detok_stream *s, int32_t id, const char **piece, size_t *len, mt_err *err) {
    if (!s || !piece) return mt_err_set(err, MT_ERR_INVALID_ARG, "detok stream: NULL stream or output");
    const char *p;
    size_t n;
    mt_status st = token_bytes(s->tok, id, s->skip_special, &p, &n, err);
    if (st) return st;
    bool ok = mt_tbuf_append(&s->held, p, n);
    s->out.len = 0;
    size_t used = ok ? append_lossy(&s->out, s->held.data, s->held.len, true, &ok) : 0;
    if (!ok) return mt_err_set(err, MT_ERR_NOMEM, "detok stream: out of memory");
    memmove(s->held.data, s->held.data + used, s->held.len - used);
    s->held.len -= used;
    s->out.data[s->out.len] = 0;
    *piece = s->out.data;
    if (len) *len = s->out.len;
    return MT_OK;
}

mt_status mt_detok_stream_flush(mt_detok_stream *s, const char **piece, size_t *len, mt_err *err) {
    if (!s || !piece) return mt_err_set(err, MT_ERR_INVALID_ARG, "detok stream: NULL stream or output");
    bool ok;
    s->out.len = 0;
    append_lossy(&s->out, s->held.data, s->held.len, false, &ok);
    if (!ok) return mt_err_set(err, MT_ERR_NOMEM, "detok stream: out of memory");
    s->held.len = 0;
    s->out.data[s->out.len] = 0;
    *piece = s->out.data;
    if (len) *len = s->out.len;
    return MT_OK;
}

void mt_detok_stream_free(mt_detok_stream *s) {
    if (!s) return;
    mt_free(s->held.data);
    mt_free(s->out.data);
    mt_free(s);
}
