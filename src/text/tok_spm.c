/* text/tok_spm: SentencePiece's tokenizer.model read (a bounds-checked protobuf reader for the fields spm.h lists) and
 * written, and the mt_tokenizer made of it (encoding is tok_spm_encode.c).
 *
 * Protobuf wire format, as far as a ModelProto uses it: each field is a varint key (field number << 3 | wire type)
 * and a value:
 *
 *   | wire type | value                                  | used by                                  |
 *   |-----------|----------------------------------------|------------------------------------------|
 *   | 0 varint  | 7 bits a byte, low first, at most 10   | enums, bools, int32 ids (negative: 10 B) |
 *   | 1 fixed64 | 8 bytes                                | (skipped)                                |
 *   | 2 bytes   | varint length, then that many bytes    | strings, nested messages                 |
 *   | 5 fixed32 | 4 bytes, little-endian                 | float scores                             |
 *
 * Groups (wire types 3 and 4) are refused: sentencepiece_model.proto has none.
 *
 * What the tokenizer is made of (the tokenizer.json tables of text_int.h, filled the way SentencePiece sees them):
 *
 *   | piece type         | becomes                                                                        |
 *   |--------------------|--------------------------------------------------------------------------------|
 *   | normal, unused     | a vocab token (by_name) with its score; unused ones are merged into and then    |
 *   |                    | split back, as SentencePiece does                                              |
 *   | user-defined       | a vocab token matched whole in the text (spm_user_lens)                        |
 *   | byte "<0xXX>"      | fallback_id[XX]; decodes to that byte                                          |
 *   | control, unknown   | special added tokens: parse_special finds "<s>" in text, decode skip_special   |
 *   |                    | drops them (transformers' slow tokenizer); sp.encode never matches them        |
 *
 * The decoder is Llama 2's tokenizer.json one, which says what SentencePiece's DecodeIds does: "▁" -> " ", byte
 * runs joined, one leading space stripped when the normalizer adds the dummy prefix or removes extra whitespace.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "text/spm.h"
#include "text/text_int.h"

typedef struct pb {
    const uint8_t *p, *end;
    const char *what; /* the file, for messages */
    const char *msg;  /* the message being read */
    mt_err *err;
} pb;

static mt_status bad(const pb *b, const char *why) {
    return mt_err_set(b->err, MT_ERR_FORMAT, "%s: %s: %s", b->what, b->msg, why);
}

static mt_status varint(pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (b->p >= b->end) return bad(b, "truncated varint");
        uint8_t c = *b->p++;
        if (i == 9 && c > 1) return bad(b, "varint over 64 bits");
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return MT_OK;
        }
    }
    return bad(b, "varint over 10 bytes");
}

/* The next field: its number, wire type, and (varint) its value or (fixed32) its bits or (bytes) its span. */
typedef struct field {
    uint32_t num;
    int wire;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} field;

static mt_status next_field(pb *b, field *f) {
    uint64_t key;
    mt_status st = varint(b, &key);
    if (st) return st;
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (key >> 3 == 0 || key >> 32) return bad(b, "field number 0 or over 2^29");
    switch (f->wire) {
    case 0:
        return varint(b, &f->v);
    case 1:
        if (b->end - b->p < 8) return bad(b, "truncated fixed64 field");
        b->p += 8;
        return MT_OK;
    case 5:
        if (b->end - b->p < 4) return bad(b, "truncated fixed32 field");
        f->v = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 | (uint64_t)b->p[3] << 24;
        b->p += 4;
        return MT_OK;
    case 2:
        if ((st = varint(b, &f->v))) return st;
        if (f->v > (uint64_t)(b->end - b->p)) return bad(b, "a length past the end of its message");
        f->data = b->p;
        f->len = (size_t)f->v;
        b->p += f->len;
        return MT_OK;
    default:
        return bad(b, "wire type 3, 4, 6 or 7 (not in sentencepiece_model.proto)");
    }
}

/* A field of the wrong wire type for its number is a malformed file, not one to skip. */
static mt_status want(const pb *b, const field *f, int wire, const char *name) {
    if (f->wire == wire) return MT_OK;
    return mt_err_set(b->err, MT_ERR_FORMAT, "%s: %s.%s (field %u) has wire type %d, expected %d", b->what, b->msg,
                      name, f->num, f->wire, wire);
}

static pb sub(const pb *b, const field *f, const char *msg) {
    return (pb){f->data, f->data + f->len, b->what, msg, b->err};
}

static mt_status read_piece(pb *b, mt_spm_piece *out) {
    field f;
    mt_status st;
    out->type = MT_SPM_NORMAL;
    bool has_piece = false;
    while (b->p < b->end) {
        if ((st = next_field(b, &f))) return st;
        if (f.num == 1) {
            if ((st = want(b, &f, 2, "piece"))) return st;
            if (f.len > MT_TOK_MAX_TOKEN_LEN)
                return mt_err_set(b->err, MT_ERR_LIMIT, "%s: %s: piece of %zu bytes, over %d", b->what, b->msg, f.len,
                                  MT_TOK_MAX_TOKEN_LEN);
            out->s = (const char *)f.data;
            out->len = (uint32_t)f.len;
            has_piece = true;
        } else if (f.num == 2) {
            if ((st = want(b, &f, 5, "score"))) return st;
            uint32_t bits = (uint32_t)f.v;
            memcpy(&out->score, &bits, 4);
        } else if (f.num == 3) {
            if ((st = want(b, &f, 0, "type"))) return st;
            if (f.v < MT_SPM_NORMAL || f.v > MT_SPM_BYTE)
                return mt_err_set(b->err, MT_ERR_FORMAT, "%s: %s: type %llu is none of 1..6", b->what, b->msg,
                                  (unsigned long long)f.v);
            out->type = (uint8_t)f.v;
        }
    }
    if (!has_piece || out->len == 0) return bad(b, "the piece is empty");
    if (!isfinite(out->score)) return mt_err_set(b->err, MT_ERR_FORMAT, "%s: %s: score %g is not finite", b->what,
                                                 b->msg, (double)out->score);
    if (!mt_utf8_is_valid(out->s, out->len)) return bad(b, "the piece is not valid UTF-8");
    return MT_OK;
}

/* An int32 sent as a varint: negative ones are sign-extended to 64 bits. */
static int32_t as_int32(uint64_t v) { return (int32_t)(uint32_t)v; }

static mt_status read_trainer(pb *b, mt_spm_model *m) {
    field f;
    mt_status st;
    while (b->p < b->end) {
        if ((st = next_field(b, &f))) return st;
        if (f.num == 3 || f.num == 24 || f.num == 35 || (f.num >= 40 && f.num <= 43)) {
            if ((st = want(b, &f, 0, "model_type, a flag or an id"))) return st;
        } else {
            continue;
        }
        if (f.num == 3) {
            if (f.v == 3 || f.v == 4)
                return mt_err_set(b->err, MT_ERR_UNSUPPORTED, "%s: trainer_spec.model_type %s is not supported "
                                  "(only UNIGRAM and BPE)", b->what, f.v == 3 ? "WORD" : "CHAR");
            if (f.v != MT_SPM_UNIGRAM && f.v != MT_SPM_BPE)
                return mt_err_set(b->err, MT_ERR_FORMAT, "%s: trainer_spec.model_type %llu is none of 1..4", b->what,
                                  (unsigned long long)f.v);
            m->model_type = (int)f.v;
        } else if (f.num == 24 && f.v) {
            return mt_err_set(b->err, MT_ERR_UNSUPPORTED, "%s: trainer_spec.treat_whitespace_as_suffix is not "
                              "supported", b->what);
        } else if (f.num == 35) {
            m->byte_fallback = f.v != 0;
        } else if (f.num >= 40) {
            int32_t *ids[] = {&m->unk_id, &m->bos_id, &m->eos_id, &m->pad_id};
            *ids[f.num - 40] = as_int32(f.v);
        }
    }
    return MT_OK;
}

static mt_status read_normalizer(pb *b, mt_spm_model *m, bool denormalizer) {
    field f;
    mt_status st;
    while (b->p < b->end) {
        if ((st = next_field(b, &f))) return st;
        if (f.num == 2) {
            if ((st = want(b, &f, 2, "precompiled_charsmap"))) return st;
            if (f.len && denormalizer)
                return mt_err_set(b->err, MT_ERR_UNSUPPORTED, "%s: a denormalizer_spec with a precompiled_charsmap "
                                  "is not supported", b->what);
            m->charsmap = f.len ? f.data : NULL;
            m->charsmap_len = f.len;
        } else if (f.num >= 3 && f.num <= 5 && !denormalizer) {
            if ((st = want(b, &f, 0, "flag"))) return st;
            bool *flags[] = {&m->add_dummy_prefix, &m->remove_extra_whitespaces, &m->escape_whitespaces};
            *flags[f.num - 3] = f.v != 0;
        }
    }
    return MT_OK;
}

/* "<0xXX>" with two upper-case hex digits, as SentencePiece's ByteToPiece writes it: the byte, else -1. */
static int byte_piece(const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    return hi && lo && s[3] && s[4] ? (int)((hi - hex) * 16 + (lo - hex)) : -1;
}

/* What SentencePiece's ModelInterface::InitializePieces checks, and the charsmap's header. */
static mt_status check_model(const mt_spm_model *m, const char *what, mt_err *err) {
    if (m->n_pieces == 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: no pieces: not a SentencePiece model", what);
    size_t n_unk = 0;
    bool bytes[256] = {false};
    for (size_t i = 0; i < m->n_pieces; i++) {
        const mt_spm_piece *p = &m->pieces[i];
        if (p->type == MT_SPM_UNKNOWN) n_unk++;
        if (p->type != MT_SPM_BYTE) continue;
        int b = byte_piece(p->s, p->len);
        if (!m->byte_fallback)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: pieces[%zu] \"%.*s\" is a byte piece, and byte_fallback is off",
                              what, i, (int)p->len, p->s);
        if (b < 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: pieces[%zu] \"%.*s\" is a byte piece not of the form "
                                     "<0xXX>", what, i, (int)MT_MIN(p->len, 60), p->s);
        bytes[b] = true;
    }
    if (n_unk != 1)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %zu pieces of type UNKNOWN (SentencePiece needs exactly one)", what,
                          n_unk);
    for (int b = 0; b < 256 && m->byte_fallback; b++)
        if (!bytes[b]) return mt_err_set(err, MT_ERR_FORMAT, "%s: byte_fallback is on and there is no piece <0x%02X>",
                                         what, b);
    if (m->charsmap) {
        uint32_t trie_len = m->charsmap_len >= 4 ? (uint32_t)m->charsmap[0] | (uint32_t)m->charsmap[1] << 8 |
                                                       (uint32_t)m->charsmap[2] << 16 | (uint32_t)m->charsmap[3] << 24
                                                 : 0;
        if (m->charsmap_len <= 4 || trie_len == 0 || trie_len % 4 || trie_len > m->charsmap_len - 4)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: normalizer_spec.precompiled_charsmap of %zu bytes has a trie of "
                              "%u bytes, which does not fit or is not whole 4-byte units", what, m->charsmap_len,
                              trie_len);
    }
    return MT_OK;
}

mt_status mt_spm_parse(const uint8_t *data, size_t len, const char *what, mt_spm_model *out, mt_err *err) {
    mt_spm_model m = {.model_type = MT_SPM_UNIGRAM, .unk_id = 0, .bos_id = 1, .eos_id = 2, .pad_id = -1,
                      .add_dummy_prefix = true, .remove_extra_whitespaces = true, .escape_whitespaces = true};
    pb b = {data, data + len, what, "ModelProto", err};
    size_t cap = 0;
    field f;
    mt_status st = MT_OK;
    char msg[64];
    while (!st && b.p < b.end) {
        if ((st = next_field(&b, &f))) break;
        if (f.num >= 1 && f.num <= 5 && f.num != 4 && (st = want(&b, &f, 2, "a message"))) break;
        if (f.num == 1) {
            if (m.n_pieces == MT_TOK_MAX_ID) {
                st = mt_err_set(err, MT_ERR_LIMIT, "%s: more than %d pieces", what, MT_TOK_MAX_ID);
                break;
            }
            if (!mt_grow((void **)&m.pieces, &cap, m.n_pieces + 1, sizeof *m.pieces)) {
                st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for the pieces", what);
                break;
            }
            snprintf(msg, sizeof msg, "pieces[%zu]", m.n_pieces);
            pb s = sub(&b, &f, msg);
            m.pieces[m.n_pieces] = (mt_spm_piece){0};
            if (!(st = read_piece(&s, &m.pieces[m.n_pieces]))) m.n_pieces++;
        } else if (f.num == 2) {
            pb s = sub(&b, &f, "trainer_spec");
            st = read_trainer(&s, &m);
        } else if (f.num == 3 || f.num == 5) {
            pb s = sub(&b, &f, f.num == 3 ? "normalizer_spec" : "denormalizer_spec");
            st = read_normalizer(&s, &m, f.num == 5);
        }
    }
    if (!st) st = check_model(&m, what, err);
    if (st) {
        mt_spm_model_free(&m);
        return st;
    }
    *out = m;
    return MT_OK;
}

void mt_spm_model_free(mt_spm_model *m) {
    if (!m) return;
    mt_free(m->pieces);
    m->pieces = NULL;
    m->n_pieces = 0;
}

/* ---- writing ---- */

static bool put_varint(mt_tbuf *o, uint64_t v) {
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) buf[n] |= 0x80;
        n++;
    } while (v);
    return mt_tbuf_append(o, buf, n);
}

static bool put_key(mt_tbuf *o, uint32_t num, int wire) { return put_varint(o, (uint64_t)num << 3 | (unsigned)wire); }

static bool put_bytes(mt_tbuf *o, uint32_t num, const void *p, size_t n) {
    return put_key(o, num, 2) && put_varint(o, n) && mt_tbuf_append(o, p, n);
}

static bool put_int(mt_tbuf *o, uint32_t num, int64_t v) { return put_key(o, num, 0) && put_varint(o, (uint64_t)v); }

mt_status mt_spm_write(const mt_spm_model *m, uint8_t **out, size_t *out_len, mt_err *err) {
    mt_tbuf o = {0}, msg = {0};
    bool ok = true;
    for (size_t i = 0; i < m->n_pieces && ok; i++) {
        const mt_spm_piece *p = &m->pieces[i];
        uint32_t bits;
        memcpy(&bits, &p->score, 4);
        uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16), (uint8_t)(bits >> 24)};
        msg.len = 0;
        ok = put_bytes(&msg, 1, p->s, p->len) && put_key(&msg, 2, 5) && mt_tbuf_append(&msg, le, 4) &&
             put_int(&msg, 3, p->type) && put_bytes(&o, 1, msg.data, msg.len);
    }
    msg.len = 0;
    ok = ok && put_int(&msg, 3, m->model_type) && put_int(&msg, 35, m->byte_fallback) && put_int(&msg, 40, m->unk_id) &&
         put_int(&msg, 41, m->bos_id) && put_int(&msg, 42, m->eos_id) && put_int(&msg, 43, m->pad_id) &&
         put_bytes(&o, 2, msg.data, msg.len);
    msg.len = 0;
    const char *name = m->charsmap ? "nmt_nfkc" : "identity";
    ok = ok && put_bytes(&msg, 1, name, strlen(name)) &&
         (!m->charsmap || put_bytes(&msg, 2, m->charsmap, m->charsmap_len)) && put_int(&msg, 3, m->add_dummy_prefix) &&
         put_int(&msg, 4, m->remove_extra_whitespaces) && put_int(&msg, 5, m->escape_whitespaces) &&
         put_bytes(&o, 3, msg.data, msg.len);
    mt_free(msg.data);
    if (!ok) {
        mt_free(o.data);
        return mt_err_set(err, MT_ERR_NOMEM, "tokenizer.model: out of memory for %zu pieces", m->n_pieces);
    }
    *out = (uint8_t *)o.data;
    *out_len = o.len;
    return MT_OK;
}

/* ---- the tokenizer ---- */

typedef mt_tok_loader loader;

static mt_status nomem(loader *L) { return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory", L->path); }

static int cmp_u16_desc(const void *a, const void *b) {
    return (int)*(const uint16_t *)b - (int)*(const uint16_t *)a;
}

static mt_status add_special(loader *L, int32_t id) {
    mt_tokenizer *tok = L->tok;
    mt_tok_added *a = &tok->added[tok->n_added++];
    *a = (mt_tok_added){.content = tok->vname[id], .match = tok->vname[id], .piece = tok->vname[id], .id = id,
                        .special = true};
    tok->added_of[id] = (int32_t)(tok->n_added - 1);
    tok->flags[id] |= MT_TOK_F_SPECIAL;
    return MT_OK;
}

/* The charsmap's trie and its replacement strings, copied so that the strings end in a NUL whatever the file holds. */
static mt_status copy_charsmap(loader *L, const mt_spm_model *m) {
    mt_tokenizer *tok = L->tok;
    const uint8_t *c = m->charsmap;
    size_t trie_len = (size_t)c[0] | (size_t)c[1] << 8 | (size_t)c[2] << 16 | (size_t)c[3] << 24;
    tok->n_spm_trie = trie_len / 4;
    tok->spm_trie = mt_malloc_array(tok->n_spm_trie, sizeof(uint32_t));
    tok->n_spm_norm = m->charsmap_len - 4 - trie_len;
    tok->spm_norm = mt_malloc(tok->n_spm_norm + 1);
    if (!tok->spm_trie || !tok->spm_norm) return nomem(L);
    for (size_t i = 0; i < tok->n_spm_trie; i++) {
        const uint8_t *u = c + 4 + 4 * i;
        tok->spm_trie[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(tok->spm_norm, c + 4 + trie_len, tok->n_spm_norm);
    tok->spm_norm[tok->n_spm_norm] = 0;
    return MT_OK;
}

static mt_status set_decoder(loader *L, const mt_spm_model *m) {
    mt_tokenizer *tok = L->tok;
    mt_tok_dec *d = &tok->dec;
    mt_status st = MT_OK;
    if (m->escape_whitespaces) {
        d->n_step = 1;
        st = mt_tok_blob_add(L, "\xE2\x96\x81", 3, &d->step[0].from);
        if (!st) st = mt_tok_blob_add(L, " ", 1, &d->step[0].to);
    }
    d->byte_fallback = m->byte_fallback;
    if (m->add_dummy_prefix || m->remove_extra_whitespaces) {
        d->strip = true;
        d->strip_cp = ' ';
        d->strip_start = 1;
    }
    return st;
}

static mt_status build(loader *L, const mt_spm_model *m) {
    mt_tokenizer *tok = L->tok;
    size_t n = m->n_pieces;
    mt_status st = mt_tok_blob_add(L, L->path, strlen(L->path), &tok->name);
    if (st) return st;
    tok->n_ids = (int32_t)n;
    tok->sp = true;
    tok->spm = m->model_type;
    tok->byte_fallback = m->byte_fallback;
    tok->spm_dummy = m->add_dummy_prefix;
    tok->spm_rm_ws = m->remove_extra_whitespaces;
    tok->spm_escape = m->escape_whitespaces;
    tok->vname = mt_calloc(n, sizeof(mt_tok_str));
    tok->vbytes = mt_calloc(n, sizeof(mt_tok_str));
    tok->flags = mt_calloc(n, 1);
    tok->whole = mt_calloc(n, 1);
    tok->added_of = mt_malloc_array(n, sizeof(int32_t));
    tok->spm_score = mt_malloc_array(n, sizeof(float));
    tok->spm_type = mt_malloc_array(n, 1);
    tok->added = mt_calloc(n, sizeof(mt_tok_added));
    if (!tok->vname || !tok->vbytes || !tok->flags || !tok->whole || !tok->added_of || !tok->spm_score ||
        !tok->spm_type || !tok->added || !mt_tok_index_init(&tok->by_name, n))
        return nomem(L);
    memset(tok->added_of, 0xff, n * sizeof(int32_t));
    if ((st = set_decoder(L, m))) return st;
    size_t n_user = 0;
    tok->spm_min_score = INFINITY;
    tok->spm_max_score = 1.17549435e-38f; /* FLT_MIN, where SentencePiece's unigram model starts its maximum */
    for (size_t i = 0; i < n; i++) {
        const mt_spm_piece *p = &m->pieces[i];
        int32_t id = (int32_t)i;
        if ((st = mt_tok_blob_add(L, p->s, p->len, &tok->vname[id]))) return st;
        if (mt_tok_index_get(&tok->by_name, tok->blob.data, p->s, p->len) >= 0)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: pieces[%zu] \"%.*s\" is defined twice", L->path, i,
                              (int)MT_MIN(p->len, 60), p->s);
        mt_tok_index_put(&tok->by_name, tok->blob.data, tok->vname[id], id);
        tok->flags[id] = MT_TOK_F_VOCAB;
        tok->spm_score[id] = p->score;
        tok->spm_type[id] = p->type;
        if (p->type == MT_SPM_NORMAL) {
            tok->spm_min_score = MT_MIN(tok->spm_min_score, p->score);
            tok->spm_max_score = MT_MAX(tok->spm_max_score, p->score);
        }
        if (p->type == MT_SPM_NORMAL || p->type == MT_SPM_USER_DEFINED || p->type == MT_SPM_UNUSED)
            tok->spm_max_len = MT_MAX(tok->spm_max_len, p->len);
        if (p->type == MT_SPM_USER_DEFINED) n_user++;
        if (p->type == MT_SPM_UNKNOWN) tok->unk_id = id;
        if (p->type == MT_SPM_BYTE) {
            char c = (char)byte_piece(p->s, p->len);
            tok->fallback_id[(uint8_t)c] = id;
            tok->flags[id] |= MT_TOK_F_BYTE;
            st = mt_tok_blob_add(L, &c, 1, &tok->vbytes[id]);
        } else if (p->type == MT_SPM_CONTROL || p->type == MT_SPM_UNKNOWN) {
            tok->vbytes[id] = tok->vname[id];
            st = add_special(L, id);
        } else {
            mt_tbuf t = {0};
            st = mt_tok_dec_piece(tok, p->s, p->len, false, &t) ? mt_tok_blob_add(L, t.data, t.len, &tok->vbytes[id])
                                                                : nomem(L);
            mt_free(t.data);
        }
        if (st) return st;
    }
    if (m->model_type == MT_SPM_UNIGRAM && !isfinite(tok->spm_min_score))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: a unigram model with no NORMAL piece", L->path);
    tok->spm_user_lens = mt_calloc(n_user + 1, sizeof(uint16_t));
    if (!tok->spm_user_lens) return nomem(L);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (m->pieces[i].type == MT_SPM_USER_DEFINED) tok->spm_user_lens[k++] = (uint16_t)m->pieces[i].len;
    qsort(tok->spm_user_lens, k, sizeof(uint16_t), cmp_u16_desc);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || tok->spm_user_lens[u - 1] != tok->spm_user_lens[i])
            tok->spm_user_lens[u++] = tok->spm_user_lens[i];
    tok->spm_user_lens[u] = 0;
    return m->charsmap ? copy_charsmap(L, m) : MT_OK;
}

/* The added tokens of tokenizer_config.json's added_tokens_decoder {"id": {"content", "special", "lstrip", "rstrip",
 * "single_word", "normalized"}}, as transformers' slow tokenizer splits the text on them. An id inside the model
 * takes the content over (InternLM2's <|im_start|> is a spare piece of the model). */
static mt_status read_added_decoder(loader *L, const cJSON *dec, const char *cfg_path) {
    mt_tokenizer *tok = L->tok;
    if (!dec) return MT_OK;
    if (!cJSON_IsObject(dec)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: added_tokens_decoder must be an object",
                                                cfg_path);
    size_t n_new = (size_t)cJSON_GetArraySize(dec);
    int32_t max_id = tok->n_ids - 1;
    char what[300];
    for (const cJSON *e = dec->child; e; e = e->next) {
        char *end;
        long id = strtol(e->string, &end, 10);
        if (*end || end == e->string || id < 0 || id >= MT_TOK_MAX_ID)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: added_tokens_decoder key \"%.40s\" is not an id in [0, %d)",
                              cfg_path, e->string, MT_TOK_MAX_ID);
        max_id = MT_MAX(max_id, (int32_t)id);
    }
    size_t n_ids = (size_t)max_id + 1, old = (size_t)tok->n_ids;
    if (n_ids > old) {
        mt_tok_str *vn = mt_realloc(tok->vname, n_ids * sizeof *vn);
        if (vn) tok->vname = vn;
        mt_tok_str *vb = mt_realloc(tok->vbytes, n_ids * sizeof *vb);
        if (vb) tok->vbytes = vb;
        uint8_t *fl = mt_realloc(tok->flags, n_ids);
        if (fl) tok->flags = fl;
        uint8_t *wh = mt_realloc(tok->whole, n_ids);
        if (wh) tok->whole = wh;
        int32_t *ao = mt_realloc(tok->added_of, n_ids * sizeof *ao);
        if (ao) tok->added_of = ao;
        float *sc = mt_realloc(tok->spm_score, n_ids * sizeof *sc);
        if (sc) tok->spm_score = sc;
        uint8_t *ty = mt_realloc(tok->spm_type, n_ids);
        if (ty) tok->spm_type = ty;
        if (!vn || !vb || !fl || !wh || !ao || !sc || !ty) return nomem(L);
        for (size_t i = old; i < n_ids; i++) {
            tok->vname[i] = tok->vbytes[i] = (mt_tok_str){0, 0};
            tok->flags[i] = tok->whole[i] = 0;
            tok->added_of[i] = -1;
            tok->spm_score[i] = 0;
            tok->spm_type[i] = MT_SPM_CONTROL;
        }
        tok->n_ids = (int32_t)n_ids;
    }
    mt_tok_added *added = mt_realloc(tok->added, (tok->n_added + n_new) * sizeof *added);
    if (!added) return nomem(L);
    tok->added = added;
    for (const cJSON *e = dec->child; e; e = e->next) {
        int32_t id = (int32_t)strtol(e->string, NULL, 10);
        snprintf(what, sizeof what, "%s: added_tokens_decoder[\"%s\"]", cfg_path, e->string);
        if (!cJSON_IsObject(e)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s must be an object", what);
        const char *content;
        mt_status st = mt_json_raw_req(e, "content", what, &content, L->err);
        if (st) return st;
        size_t len = strlen(content);
        if (len == 0 || len > MT_TOK_MAX_TOKEN_LEN)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: field \"content\" must be 1 to %d bytes", what,
                              MT_TOK_MAX_TOKEN_LEN);
        size_t k = tok->added_of[id] >= 0 ? (size_t)tok->added_of[id] : tok->n_added++;
        mt_tok_added *a = &tok->added[k];
        *a = (mt_tok_added){.id = id};
        if ((st = mt_json_bool_opt(e, "special", what, &a->special, L->err)) ||
            (st = mt_json_bool_opt(e, "lstrip", what, &a->lstrip, L->err)) ||
            (st = mt_json_bool_opt(e, "rstrip", what, &a->rstrip, L->err)) ||
            (st = mt_json_bool_opt(e, "single_word", what, &a->single_word, L->err)))
            return st;
        if ((st = mt_tok_blob_add_json(L, content, &a->content))) return st;
        a->match = a->piece = a->content;
        tok->added_of[id] = (int32_t)k;
        tok->flags[id] = (uint8_t)((tok->flags[id] & ~MT_TOK_F_SPECIAL) | (a->special ? MT_TOK_F_SPECIAL : 0));
    }
    return MT_OK;
}

static mt_status index_added(loader *L) {
    mt_tokenizer *tok = L->tok;
    uint16_t *lens = mt_malloc_array(tok->n_added + 1, sizeof(uint16_t));
    tok->added_pair[0] = mt_calloc(8192, 1);
    tok->added_pair[1] = mt_calloc(8192, 1);
    tok->added_lens[1] = mt_calloc(1, sizeof(uint16_t));
    if (!lens || !tok->added_pair[0] || !tok->added_pair[1] || !tok->added_lens[1] ||
        !mt_tok_index_init(&tok->added_ix[0], tok->n_added) || !mt_tok_index_init(&tok->added_ix[1], 0)) {
        mt_free(lens);
        return nomem(L);
    }
    tok->added_lens[0] = lens;
    size_t n = 0;
    for (size_t i = tok->n_added; i-- > 0;) {
        const mt_tok_added *a = &tok->added[i];
        mt_tok_index_put(&tok->added_ix[0], tok->blob.data, a->match, (int32_t)i);
        lens[n++] = (uint16_t)a->match.len;
        const uint8_t *c = (const uint8_t *)tok->blob.data + a->match.off;
        tok->added_first[0][c[0]] = true;
        if (a->match.len > 1) tok->added_pair[0][(c[0] << 5) | (c[1] >> 3)] |= (uint8_t)(1u << (c[1] & 7));
    }
    qsort(lens, n, sizeof *lens, cmp_u16_desc);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || lens[u - 1] != lens[i]) lens[u++] = lens[i];
    lens[u] = 0;
    return MT_OK;
}

static mt_status load_spm(const uint8_t *data, size_t len, const char *what, const cJSON *added_decoder,
                          const char *cfg_path, mt_tokenizer **out, mt_err *err) {
    mt_spm_model m;
    mt_status st = mt_spm_parse(data, len, what, &m, err);
    if (st) return st;
    mt_tokenizer *tok = mt_calloc(1, sizeof *tok);
    if (!tok) {
        mt_spm_model_free(&m);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    }
    loader L = {tok, what, err};
    tok->unk_id = -1;
    memset(tok->fallback_id, 0xff, sizeof tok->fallback_id);
    memset(tok->byte_id, 0xff, sizeof tok->byte_id);
    st = build(&L, &m);
    mt_spm_model_free(&m);
    if (!st) st = read_added_decoder(&L, added_decoder, cfg_path);
    if (!st) st = index_added(&L);
    if (st) {
        mt_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return MT_OK;
}

mt_status mt_tokenizer_load_spm_mem(const uint8_t *data, size_t len, const char *what, mt_tokenizer **out,
                                    mt_err *err) {
    return load_spm(data, len, what, NULL, NULL, out, err);
}

mt_status mt_tokenizer_load_spm(const char *path, mt_tokenizer **out, mt_err *err) {
    char *data = NULL, dir[4096], cfg_path[4096];
    size_t len;
    cJSON *cfg = NULL;
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (n >= sizeof dir) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: path too long", path);
    memcpy(dir, slash ? path : ".", n);
    dir[n] = 0;
    mt_status st = mt_path_join(cfg_path, sizeof cfg_path, dir, "tokenizer_config.json", err);
    if (!st && mt_file_exists(cfg_path)) {
        st = mt_json_parse_file(cfg_path, MT_JSON_MAX_FILE, &cfg, err);
        if (!st && !cJSON_IsObject(cfg)) st = mt_err_set(err, MT_ERR_FORMAT, "%s: not a JSON object", cfg_path);
    }
    if (!st) st = mt_file_read_all(path, MT_JSON_MAX_FILE, &data, &len, err);
    if (!st)
        st = load_spm((const uint8_t *)data, len, path, cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder"),
                      cfg_path, out, err);
    if (!st && cfg && (st = mt_json_bool_opt(cfg, "split_special_tokens", cfg_path, &(*out)->split_special, err))) {
        mt_tokenizer_free(*out);
        *out = NULL;
    }
    mt_free(data);
    cJSON_Delete(cfg);
    return st;
}
