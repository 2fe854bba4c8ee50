/* text/tok_decode: ids -> text, whole or streamed.
 *
 * Byte-level models (tokenizers/src/decoders/byte_level.rs and String::from_utf8_lossy; transformers.js
 * ByteLevelDecoder for added tokens, which it passes through verbatim): each model id stands for the raw bytes of
 * its token (vbytes), each added id for its content. The bytes are joined and every maximal ill-formed UTF-8
 * subpart becomes U+FFFD.
 *
 * sp models (tokenizers/src/decoders/{replace,metaspace,byte_fallback,fuse,strip}.rs), the decoder steps in order:
 *
 *   | step         | what it does to "<0xE4><0xB8><0xAD>▁is▁<0xFF>" (Llama 2)                                |
 *   |--------------|-----------------------------------------------------------------------------------------|
 *   | per token    | Replace "▁" -> " " in each token (done at load: vbytes, added[].piece); Metaspace also  |
 *   |              | drops its replacement from the first token, recomputed here                              |
 *   | ByteFallback | each run of "<0xXX>" tokens becomes its bytes when they are valid UTF-8, else one U+FFFD |
 *   |              | per byte (tokenizers; transformers.js's TextDecoder differs): "中", " is ", "\uFFFD"      |
 *   | Fuse, Strip  | joined, then up to start / stop copies of the Strip character cut from the ends          |
 *
 * A stream does the same in pieces, so its pieces joined equal the whole decode: it holds back a trailing prefix
 * of a character that may yet complete (byte-level), a run of byte tokens until a token ends it (sp: validity is
 * judged on the whole run), and Strip characters at the end that a later stop could cut.
 */
#include <string.h>

#include "text/text_int.h"

static mt_status token_bytes(const mt_tokenizer *tok, int32_t id, bool skip_special, const char **p, size_t *n,
                             mt_err *err) {
    if (id < 0 || id >= tok->n_ids)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "decode: id %d is outside the vocab [0, %d)", id, tok->n_ids);
    int32_t a = tok->added_of[id];
    if (a >= 0) {
        const mt_tok_added *t = &tok->added[a];
        bool skip = skip_special && t->special;
        *p = tok->blob.data + (tok->sp ? t->piece : t->content).off;
        *n = skip ? 0 : (tok->sp ? t->piece : t->content).len;
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

bool mt_tok_dec_piece(const mt_tokenizer *tok, const char *s, size_t n, bool first, mt_tbuf *out) {
    const mt_tok_dec *d = &tok->dec;
    mt_tbuf buf[2] = {{0}, {0}};
    const char *cur = s;
    size_t len = n;
    bool ok = true;
    for (size_t i = 0; i < d->n_step && ok; i++) {
        const mt_tok_dstep *st = &d->step[i];
        const char *from = tok->blob.data + st->from.off;
        if (!mt_tok_find(cur, len, from, st->from.len)) continue;
        mt_tbuf *b = &buf[i & 1];
        b->len = 0;
        bool drop = st->metaspace && st->first && first;
        ok = mt_tok_replace_literal(cur, len, from, st->from.len, tok->blob.data + st->to.off, drop ? 0 : st->to.len, b);
        cur = b->data;
        len = b->len;
    }
    ok = ok && mt_tbuf_append(out, cur, len);
    mt_free(buf[0].data);
    mt_free(buf[1].data);
    return ok;
}

/* ByteFallback: a run of byte tokens is its bytes when they are valid UTF-8, else one U+FFFD per byte. */
static bool flush_run(mt_tbuf *run, mt_tbuf *out) {
    bool ok = true;
    if (mt_utf8_is_valid(run->data, run->len)) ok = mt_tbuf_append(out, run->data, run->len);
    else
        for (size_t i = 0; i < run->len && ok; i++) ok = mt_tbuf_append(out, "\xEF\xBF\xBD", 3);
    run->len = 0;
    return ok;
}

/* Appends the text of one sp token: a byte token joins the run, any other ends it. */
static mt_status sp_token(const mt_tokenizer *tok, int32_t id, bool skip_special, bool *first, mt_tbuf *run,
                          mt_tbuf *out, mt_err *err) {
    const char *p;
    size_t n;
    mt_status st = token_bytes(tok, id, skip_special, &p, &n, err);
    if (st) return st;
    if (skip_special && mt_tokenizer_is_special(tok, id)) return MT_OK;
    bool ok;
    if ((tok->flags[id] & MT_TOK_F_BYTE) && tok->added_of[id] < 0) {
        ok = mt_tbuf_append(run, p, n);
    } else {
        ok = flush_run(run, out);
        if (ok && *first && tok->dec.first_differs) {
            int32_t a = tok->added_of[id];
            const mt_tok_str *raw = a >= 0 ? &tok->added[a].content : &tok->vname[id];
            ok = mt_tok_dec_piece(tok, tok->blob.data + raw->off, raw->len, true, out);
        } else if (ok) {
            ok = mt_tbuf_append(out, p, n);
        }
    }
    *first = false;
    return ok ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "decode: out of memory");
}

/* Bytes of the Strip character at the start (up to max of them) and before end (up to max). */
static size_t strip_head(const mt_tokenizer *tok, const char *s, size_t n, size_t max, size_t *count) {
    size_t i = 0, k;
    *count = 0;
    while (*count < max && i < n && (k = mt_utf8_valid_len((const uint8_t *)s + i, n - i)) &&
           mt_utf8_cp((const uint8_t *)s + i, k) == tok->dec.strip_cp) {
        i += k;
        (*count)++;
    }
    return i;
}

static size_t strip_tail(const mt_tokenizer *tok, const char *s, size_t n, size_t max) {
    size_t end = n, count = 0;
    while (count < max && end > 0) {
        size_t i = end - 1;
        while (i > 0 && end - i < 4 && ((uint8_t)s[i] & 0xC0) == 0x80) i--;
        size_t k = mt_utf8_valid_len((const uint8_t *)s + i, end - i);
        if (k != end - i || mt_utf8_cp((const uint8_t *)s + i, k) != tok->dec.strip_cp) break;
        end = i;
        count++;
    }
    return n - end;
}

static mt_status sp_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, mt_tbuf *text,
                           mt_err *err) {
    mt_tbuf run = {0};
    bool first = true;
    mt_status st = MT_OK;
    for (size_t i = 0; i < n && !st; i++) st = sp_token(tok, ids[i], skip_special, &first, &run, text, err);
    if (!st && !flush_run(&run, text)) st = mt_err_set(err, MT_ERR_NOMEM, "decode: out of memory");
    mt_free(run.data);
    if (st || !tok->dec.strip) return st;
    size_t count, head = strip_head(tok, text->data, text->len, tok->dec.strip_start, &count);
    memmove(text->data, text->data + head, text->len - head);
    text->len -= head;
    text->len -= strip_tail(tok, text->data, text->len, tok->dec.strip_stop);
    return MT_OK;
}

mt_status mt_tokenizer_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out,
                              size_t *out_len, mt_err *err) {
    if (!tok || (!ids && n) || !out)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "decode: NULL tokenizer, ids or output");
    mt_tbuf raw = {0}, text = {0};
    mt_status st = MT_OK;
    bool ok = mt_tbuf_reserve(&raw, n * 4 < n ? n : n * 4);
    if (ok && tok->sp) {
        st = sp_decode(tok, ids, n, skip_special, &text, err);
    } else {
        for (size_t i = 0; i < n && ok && !st; i++) {
            const char *p;
            size_t len;
            st = token_bytes(tok, ids[i], skip_special, &p, &len, err);
            if (!st) ok = mt_tbuf_append(&raw, p, len);
        }
        if (!st && ok) append_lossy(&text, raw.data, raw.len, false, &ok);
    }
    mt_free(raw.data);
    if (!st && ok) ok = mt_tbuf_reserve(&text, 0);
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
    mt_tbuf held; /* byte-level: bytes of an unfinished character; sp: the run of byte tokens */
    mt_tbuf out;  /* the piece handed back */
    /* sp */
    bool first;        /* no token decoded yet */
    size_t strip_left; /* Strip characters the start may still lose */
    mt_tbuf text;      /* this push's text before Strip */
    mt_tbuf tail;      /* Strip characters at the end, held back */
};

static void sp_reset(mt_detok_stream *s) {
    s->first = true;
    s->strip_left = s->tok->dec.strip ? s->tok->dec.strip_start : 0;
    s->held.len = s->text.len = s->tail.len = 0;
}

/* Moves s->text to s->out through Strip: the start loses what it may, and up to stop Strip characters at the end
 * wait in s->tail for text after them (a flush drops them). */
static bool sp_emit(mt_detok_stream *s) {
    const mt_tokenizer *tok = s->tok;
    const char *t = s->text.data;
    size_t n = s->text.len, count;
    if (s->strip_left) {
        size_t head = strip_head(tok, t, n, s->strip_left, &count);
        t += head;
        n -= head;
        s->strip_left = n ? 0 : s->strip_left - count;
    }
    size_t stop = tok->dec.strip ? tok->dec.strip_stop : 0;
    if (!stop) return mt_tbuf_append(&s->out, t, n);
    if (!mt_tbuf_append(&s->tail, t, n)) return false;
    size_t keep = strip_tail(tok, s->tail.data, s->tail.len, stop);
    bool ok = mt_tbuf_append(&s->out, s->tail.data, s->tail.len - keep);
    memmove(s->tail.data, s->tail.data + s->tail.len - keep, keep);
    s->tail.len = keep;
    return ok;
}

mt_status mt_detok_stream_new(const mt_tokenizer *tok, bool skip_special, mt_detok_stream **out, mt_err *err) {
    if (!tok || !out) return mt_err_set(err, MT_ERR_INVALID_ARG, "detok stream: NULL tokenizer or output");
    mt_detok_stream *s = mt_calloc(1, sizeof *s);
    if (!s || !mt_tbuf_reserve(&s->out, 64) || !mt_tbuf_reserve(&s->held, 8)) {
        mt_detok_stream_free(s);
        return mt_err_set(err, MT_ERR_NOMEM, "detok stream: out of memory");
    }
    s->tok = tok;
    s->skip_special = skip_special;
    sp_reset(s);
    *out = s;
    return MT_OK;
}

mt_status mt_detok_stream_push(mt_detok_stream *s, int32_t id, const char **piece, size_t *len, mt_err *err) {
    if (!s || !piece) return mt_err_set(err, MT_ERR_INVALID_ARG, "detok stream: NULL stream or output");
    s->out.len = 0;
    if (s->tok->sp) {
        s->text.len = 0;
        mt_status st = sp_token(s->tok, id, s->skip_special, &s->first, &s->held, &s->text, err);
        if (st) return st;
        if (!sp_emit(s) || !mt_tbuf_reserve(&s->out, 0))
            return mt_err_set(err, MT_ERR_NOMEM, "detok stream: out of memory");
        s->out.data[s->out.len] = 0;
        *piece = s->out.data;
        if (len) *len = s->out.len;
        return MT_OK;
    }
    const char *p;
    size_t n;
    mt_status st = token_bytes(s->tok, id, s->skip_special, &p, &n, err);
    if (st) return st;
    bool ok = mt_tbuf_append(&s->held, p, n);
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
    if (s->tok->sp) {
        s->text.len = 0;
        ok = flush_run(&s->held, &s->text) && sp_emit(s) && mt_tbuf_reserve(&s->out, 0);
        sp_reset(s);
    } else {
        append_lossy(&s->out, s->held.data, s->held.len, false, &ok);
    }
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
    mt_free(s->text.data);
    mt_free(s->tail.data);
    mt_free(s);
}
