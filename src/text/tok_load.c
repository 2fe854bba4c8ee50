/* text/tok_load: reads tokenizer.json (the serialisation of tokenizers' TokenizerImpl, tokenizers >= 0.13) into an
 * mt_tokenizer. The fields read, and where they go:
 *
 *   | field                                   | becomes                                                      |
 *   |-----------------------------------------|--------------------------------------------------------------|
 *   | model.vocab {token: id}                 | vname/vbytes/flags per id, by_name, by_bytes, byte_id        |
 *   | model.merges ["a b"] or [["a","b"]]     | merges[(id a, id b)] = (position in the list, id of "ab")    |
 *   | model.ignore_merges, unk_token          | ignore_merges, unk_id                                        |
 *   | model.byte_fallback, fuse_unk           | byte_fallback (fallback_id: "<0xXX>" per byte), fuse_unk     |
 *   | added_tokens [{id, content, ...}]       | added[], added_of[id], added_ix                              |
 *   | normalizer, pre_tokenizer, decoder,     | norm[], pre[], sp and dec, post_ids (tok_config.c)           |
 *   | post_processor                          |                                                              |
 *
 * Truncation and padding are not read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "text/text_int.h"

typedef mt_tok_loader loader;

static mt_status nomem(loader *L, const char *what) {
    return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory for %s", L->path, what);
}

mt_status mt_tok_blob_add(loader *L, const char *s, size_t n, mt_tok_str *out) {
    mt_tbuf *b = &L->tok->blob;
    if (b->len + n >= UINT32_MAX) return mt_err_set(L->err, MT_ERR_LIMIT, "%s: token strings over 4 GiB", L->path);
    out->off = (uint32_t)b->len;
    out->len = (uint32_t)n;
    return mt_tbuf_append(b, s, n) ? MT_OK : nomem(L, "token strings");
}

mt_status mt_tok_blob_add_json(loader *L, const char *s, mt_tok_str *out) {
    mt_status st = mt_tok_blob_add(L, s, strlen(s), out);
    if (st || !mt_json_has_nul(s)) return st;
    mt_tbuf *b = &L->tok->blob;
    out->len = (uint32_t)mt_json_decode(s, b->data + out->off); /* shorter than s, which is already in place */
    b->len = out->off + out->len;
    return MT_OK;
}

mt_status mt_tok_compile_json(loader *L, const char *step, const char *pattern, bool literal, pcre2_code **out,
                              mt_tok_str *text) {
    size_t n;
    char *p = mt_json_dup(pattern, &n);
    if (!p) return nomem(L, "a pattern");
    mt_status st = mt_pretok_compile(L, step, p, n, literal, out, text);
    mt_free(p);
    return st;
}

/* s, a string of the parsed tokenizer.json, as bytes: s itself, or decoded into buf (cap bytes) when it holds
 * U+0000; NULL when it does not fit there. */
static const char *json_bytes(const char *s, char *buf, size_t cap, size_t *n) {
    *n = strlen(s);
    if (!mt_json_has_nul(s)) return s;
    if (*n > cap) return NULL;
    *n = mt_json_decode(s, buf);
    return buf;
}

/* The raw bytes a vocab string stands for; false when a character is outside GPT-2's map. */
static bool bytelevel_decode(const char *s, size_t n, char *out, size_t *out_len) {
    size_t i = 0, k = 0;
    while (i < n) {
        size_t len = mt_utf8_valid_len((const uint8_t *)s + i, n - i);
        if (!len) return false;
        int b = mt_bytelevel_byte(mt_utf8_cp((const uint8_t *)s + i, len));
        if (b < 0) return false;
        out[k++] = (char)b;
        i += len;
    }
    *out_len = k;
    return true;
}

static mt_status read_vocab(loader *L, const cJSON *vocab, int32_t *max_id, size_t *count) {
    if (!cJSON_IsObject(vocab)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.vocab must be an object", L->path);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        double d = e->valuedouble;
        if (!cJSON_IsNumber(e) || !(d >= 0 && d < MT_TOK_MAX_ID) || d != (double)(int32_t)d)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.vocab[\"%.60s\"]: id must be an integer in [0, %d)",
                              L->path, e->string, MT_TOK_MAX_ID);
        if (strlen(e->string) > MT_TOK_MAX_TOKEN_LEN)
            return mt_err_set(L->err, MT_ERR_LIMIT, "%s: model.vocab[\"%.60s...\"]: token over %d bytes", L->path,
                              e->string, MT_TOK_MAX_TOKEN_LEN);
        if ((int32_t)d > *max_id) *max_id = (int32_t)d;
        (*count)++;
    }
    /* nothing could be encoded: refuse it here rather than give every text zero tokens */
    if (*count == 0) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.vocab is empty", L->path);
    return MT_OK;
}

/* "<0xXX>" (two hex digits, or '+' and one, as Rust's u8::from_str_radix takes them): the byte, else -1. */
static int fallback_byte(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0 && !(i == 3 && c == '+')) return -1;
        v = d < 0 ? 0 : v * 16 + d;
    }
    return v;
}

/* sp: vbytes is the token after the decoder's per-token steps, or the byte of a ByteFallback token. */
static mt_status sp_piece(loader *L, int32_t id, mt_tbuf *t) {
    mt_tokenizer *tok = L->tok;
    const char *s = tok->blob.data + tok->vname[id].off;
    size_t n = tok->vname[id].len;
    if (!mt_utf8_is_valid(s, n))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.vocab: token %d is not valid UTF-8", L->path, id);
    int b = tok->dec.byte_fallback ? fallback_byte(s, n) : -1;
    if (b >= 0) {
        char c = (char)b;
        tok->flags[id] |= MT_TOK_F_BYTE;
        return mt_tok_blob_add(L, &c, 1, &tok->vbytes[id]);
    }
    t->len = 0;
    if (!mt_tok_dec_piece(tok, s, n, false, t)) return nomem(L, "token strings");
    if (t->len == n && memcmp(t->data, s, n) == 0) {
        tok->vbytes[id] = tok->vname[id];
        return MT_OK;
    }
    return mt_tok_blob_add(L, t->data, t->len, &tok->vbytes[id]);
}

static mt_status fill_vocab(loader *L, const cJSON *vocab) {
    mt_tokenizer *tok = L->tok;
    char bytes[MT_TOK_MAX_TOKEN_LEN];
    size_t n_vocab = 0, n_bytelevel = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        if (tok->flags[id] & MT_TOK_F_VOCAB)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.vocab[\"%.60s\"]: id %d is used twice", L->path,
                              e->string, id);
        size_t nb;
        mt_status st = mt_tok_blob_add_json(L, e->string, &tok->vname[id]);
        if (st) return st;
        tok->flags[id] |= MT_TOK_F_VOCAB;
        const char *name = tok->blob.data + tok->vname[id].off;
        if (!tok->sp && bytelevel_decode(name, tok->vname[id].len, bytes, &nb)) {
            if ((st = mt_tok_blob_add(L, bytes, nb, &tok->vbytes[id]))) return st;
            tok->flags[id] |= MT_TOK_F_BYTELEVEL;
            n_bytelevel++;
        } else {
            tok->vbytes[id] = tok->vname[id]; /* decoded as written, as tokenizers' ByteLevel decoder does */
        }
        n_vocab++;
    }
    if (!mt_tok_index_init(&tok->by_name, n_vocab) || !mt_tok_index_init(&tok->by_bytes, n_bytelevel))
        return nomem(L, "the vocab index");
    for (int32_t id = 0; id < tok->n_ids; id++) {
        if (tok->flags[id] & MT_TOK_F_VOCAB) mt_tok_index_put(&tok->by_name, tok->blob.data, tok->vname[id], id);
        if (tok->flags[id] & MT_TOK_F_BYTELEVEL) mt_tok_index_put(&tok->by_bytes, tok->blob.data, tok->vbytes[id], id);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b, name[8];
        /* sp: the id of each ASCII character, so BPE looks up only the others */
        tok->byte_id[b] = tok->sp ? (b < 0x80 ? mt_tok_index_get(&tok->by_name, tok->blob.data, &c, 1) : -1)
                                  : mt_tok_index_get(&tok->by_bytes, tok->blob.data, &c, 1);
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->fallback_id[b] = tok->byte_fallback ? mt_tok_index_get(&tok->by_name, tok->blob.data, name, 6)
                                                 : -1;
    }
    if (!tok->sp) return MT_OK;
    tok->char_id = mt_malloc_array(MT_TOK_CHAR_IDS, sizeof(int32_t));
    if (!tok->char_id) return nomem(L, "the vocab index");
    memset(tok->char_id, 0xff, MT_TOK_CHAR_IDS * sizeof(int32_t));
    for (int32_t id = 0; id < tok->n_ids; id++) {
        const uint8_t *s = (const uint8_t *)tok->blob.data + tok->vname[id].off;
        size_t n = tok->vname[id].len;
        if (!(tok->flags[id] & MT_TOK_F_VOCAB) || n < 2 || n > 3 || mt_utf8_valid_len(s, n) != n) continue;
        /* what the index holds under that name, so the table agrees with it where names repeat */
        tok->char_id[mt_utf8_cp(s, n) - 0x80] = mt_tok_index_get(&tok->by_name, tok->blob.data, (const char *)s, n);
    }
    mt_tbuf t = {0};
    mt_status st = MT_OK;
    for (int32_t id = 0; id < tok->n_ids && !st; id++)
        if (tok->flags[id] & MT_TOK_F_VOCAB) st = sp_piece(L, id, &t);
    mt_free(t.data);
    return st;
}

static mt_status read_merges(loader *L, const cJSON *merges) {
    mt_tokenizer *tok = L->tok;
    if (!cJSON_IsArray(merges)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges must be an array", L->path);
    size_t n = (size_t)cJSON_GetArraySize(merges);
    mt_status st = mt_tok_merges_init(tok, n, L->err);
    if (st) return mt_err_prefix(L->err, "%s", L->path);
    char joined[2 * MT_TOK_MAX_TOKEN_LEN], whole[2 * MT_TOK_MAX_TOKEN_LEN + 1], ba[MT_TOK_MAX_TOKEN_LEN],
        bb[MT_TOK_MAX_TOKEN_LEN];
    size_t rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *a, *b;
        size_t na, nb;
        if (cJSON_IsString(m)) {
            size_t n_all;
            a = json_bytes(m->valuestring, whole, sizeof whole, &n_all);
            const char *sp = a ? memchr(a, ' ', n_all) : NULL;
            if (a && (!sp || memchr(sp + 1, ' ', n_all - (size_t)(sp + 1 - a))))
                return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges[%zu]: \"%.60s\" is not two tokens split by "
                                  "one space", L->path, rank, m->valuestring);
            na = sp ? (size_t)(sp - a) : 0;
            b = sp ? sp + 1 : NULL;
            nb = sp ? n_all - na - 1 : 0;
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = json_bytes(m->child->valuestring, ba, sizeof ba, &na);
            b = json_bytes(m->child->next->valuestring, bb, sizeof bb, &nb);
        } else {
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"]", L->path,
                              rank);
        }
        if (!a || !b) /* longer than any vocab token */
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges[%zu]: a token is not in model.vocab", L->path,
                              rank);
        int32_t ia = mt_tok_index_get(&tok->by_name, tok->blob.data, a, na);
        int32_t ib = mt_tok_index_get(&tok->by_name, tok->blob.data, b, nb);
        int32_t iab = -1;
        if (ia >= 0 && ib >= 0) { /* vocab tokens are at most MT_TOK_MAX_TOKEN_LEN bytes: the two fit */
            memcpy(joined, a, na);
            memcpy(joined + na, b, nb);
            iab = mt_tok_index_get(&tok->by_name, tok->blob.data, joined, na + nb);
        }
        if (iab < 0) {
            const char *which = ia < 0 ? "its first part" : ib < 0 ? "its second part" : "the merged token";
            const char *bad = ia < 0 ? a : ib < 0 ? b : joined;
            size_t nbad = ia < 0 ? na : ib < 0 ? nb : na + nb;
            return mt_err_set(L->err, MT_ERR_FORMAT,
                              "%s: model.merges[%zu] (\"%.*s\", \"%.*s\"): %s \"%.*s\"%s is not in model.vocab",
                              L->path, rank, (int)MT_MIN(na, 60), a, (int)MT_MIN(nb, 60), b, which,
                              (int)MT_MIN(nbad, 120), bad, nbad > 120 ? "..." : "");
        }
        mt_tok_merges_put(tok, ia, ib, (uint32_t)rank, iab);
    }
    return MT_OK;
}

static mt_status read_added(loader *L, const cJSON *arr, int32_t *max_id) {
    mt_tokenizer *tok = L->tok;
    if (!arr || cJSON_IsNull(arr)) return MT_OK;
    if (!cJSON_IsArray(arr)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: added_tokens must be an array", L->path);
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n > MT_TOK_MAX_ID) return mt_err_set(L->err, MT_ERR_LIMIT, "%s: %zu added_tokens", L->path, n);
    tok->added = mt_calloc(n ? n : 1, sizeof(mt_tok_added));
    if (!tok->added) return nomem(L, "added_tokens");
    char what[300];
    for (const cJSON *e = arr->child; e; e = e->next) {
        mt_tok_added *a = &tok->added[tok->n_added];
        snprintf(what, sizeof what, "%s: added_tokens[%zu]", L->path, tok->n_added);
        if (!cJSON_IsObject(e)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s must be an object", what);
        int64_t id;
        const char *content;
        mt_status st;
        if ((st = mt_json_int_req(e, "id", what, 0, MT_TOK_MAX_ID - 1, &id, L->err))) return st;
        if ((st = mt_json_raw_req(e, "content", what, &content, L->err))) return st;
        size_t len = strlen(content);
        if (len == 0 || len > MT_TOK_MAX_TOKEN_LEN)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: field \"content\" must be 1 to %d bytes of UTF-8", what,
                              MT_TOK_MAX_TOKEN_LEN);
        a->id = (int32_t)id;
        if ((st = mt_json_bool_opt(e, "special", what, &a->special, L->err))) return st;
        a->normalized = !a->special; /* tokenizers' default when the field is absent */
        if ((st = mt_json_bool_opt(e, "normalized", what, &a->normalized, L->err)) ||
            (st = mt_json_bool_opt(e, "lstrip", what, &a->lstrip, L->err)) ||
            (st = mt_json_bool_opt(e, "rstrip", what, &a->rstrip, L->err)) ||
            (st = mt_json_bool_opt(e, "single_word", what, &a->single_word, L->err)))
            return st;
        if ((st = mt_tok_blob_add_json(L, content, &a->content))) return st;
        a->match = a->content;
        if (a->id > *max_id) *max_id = a->id;
        tok->n_added++;
    }
    return MT_OK;
}

static int cmp_len_desc(const void *a, const void *b) {
    return (int)*(const uint16_t *)b - (int)*(const uint16_t *)a;
}

/* The two indexes encode searches added tokens with, and the distinct lengths to try at each position. */
static mt_status index_added(loader *L) {
    mt_tokenizer *tok = L->tok;
    size_t count[2] = {0, 0};
    for (size_t i = 0; i < tok->n_added; i++) count[tok->added[i].normalized && tok->n_norm > 0]++;
    for (int k = 0; k < 2; k++) {
        uint16_t *lens = mt_malloc_array(count[k] + 1, sizeof(uint16_t));
        tok->added_pair[k] = mt_calloc(8192, 1);
        if (!lens || !tok->added_pair[k] || !mt_tok_index_init(&tok->added_ix[k], count[k])) {
            mt_free(lens);
            return nomem(L, "the added_tokens index");
        }
        tok->added_lens[k] = lens;
        size_t n = 0;
        /* backwards: among equal strings the first added token wins, as in the first-match scan it replaces */
        for (size_t i = tok->n_added; i-- > 0;) {
            const mt_tok_added *a = &tok->added[i];
            if ((a->normalized && tok->n_norm > 0) != (k == 1) || a->match.len == 0) continue;
            mt_tok_index_put(&tok->added_ix[k], tok->blob.data, a->match, (int32_t)i);
            lens[n++] = (uint16_t)a->match.len;
            const uint8_t *m = (const uint8_t *)tok->blob.data + a->match.off;
            tok->added_first[k][m[0]] = true;
            if (a->match.len > 1) tok->added_pair[k][(m[0] << 5) | (m[1] >> 3)] |= (uint8_t)(1u << (m[1] & 7));
        }
        qsort(lens, n, sizeof *lens, cmp_len_desc);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (m == 0 || lens[m - 1] != lens[i]) lens[m++] = lens[i];
        lens[m] = 0;
    }
    return MT_OK;
}

/* Normalizes the content of normalized added tokens (they are searched for in normalized text, with the whole
 * normalizer applied, Prepend included, as tokenizers' AddedVocabulary does), and gives each its decode piece. */
static mt_status normalize_added(loader *L) {
    mt_tokenizer *tok = L->tok;
    mt_tbuf t = {0}, tmp = {0};
    mt_status st = MT_OK;
    for (size_t i = 0; i < tok->n_added && !st; i++) {
        mt_tok_added *a = &tok->added[i];
        const char *content = tok->blob.data + a->content.off;
        tok->added_of[a->id] = (int32_t)i;
        if (a->special) tok->flags[a->id] |= MT_TOK_F_SPECIAL;
        a->piece = a->content;
        if (tok->sp) {
            t.len = 0;
            if (!mt_tok_dec_piece(tok, content, a->content.len, false, &t)) st = nomem(L, "added_tokens");
            if (!st) st = mt_tok_blob_add(L, t.data, t.len, &a->piece);
        }
        if (st || !a->normalized || tok->n_norm == 0) continue;
        content = tok->blob.data + a->content.off; /* the blob may have moved */
        st = mt_tok_normalize(tok, content, a->content.len, &t, &tmp, L->err);
        if (!st) st = mt_tok_blob_add(L, t.data, t.len, &a->match);
    }
    mt_free(t.data);
    mt_free(tmp.data);
    return st ? st : index_added(L);
}

/* Which vocab tokens hold "▁" (U+2581) right after another character. BPE merges only into vocab tokens, so a
 * place in a word where "▁" follows another character can be crossed only by one of these; with few of them
 * (Gemma 3 has ">▁</", Llama 2 none) tok_bpe.c cuts long words there and merges the pieces alone. */
static void find_sp_spans(mt_tokenizer *tok) {
    tok->sp_cut = tok->sp;
    for (int32_t id = 0; tok->sp_cut && id < tok->n_ids; id++) {
        const uint8_t *p = (const uint8_t *)tok->blob.data + tok->vname[id].off;
        size_t n = tok->vname[id].len;
        for (size_t i = 1; i + 3 <= n; i++) {
            if (p[i] != 0xE2 || p[i + 1] != 0x96 || p[i + 2] != 0x81) continue;
            if (i >= 3 && p[i - 3] == 0xE2 && p[i - 2] == 0x96 && p[i - 1] == 0x81) continue;
            if (tok->n_sp_span == MT_TOK_MAX_SPAN) tok->sp_cut = false;
            else tok->sp_span[tok->n_sp_span++] = id;
            break;
        }
    }
}

static mt_status read_model(loader *L, const cJSON *model, int32_t *max_id, size_t *n_vocab) {
    if (!cJSON_IsObject(model)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: missing object \"model\"", L->path);
    const char *type = NULL, *s = NULL;
    mt_status st;
    if ((st = mt_json_str_opt(model, "type", "model", &type, L->err))) return mt_err_prefix(L->err, "%s", L->path);
    if (type && strcmp(type, "BPE"))
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: model.type \"%.40s\" is not supported (only BPE)", L->path,
                          type);
    double dropout = 0;
    if ((st = mt_json_num_opt(model, "dropout", "model", 0, 1, &dropout, L->err)) ||
        (st = mt_json_bool_opt(model, "byte_fallback", "model", &L->tok->byte_fallback, L->err)) ||
        (st = mt_json_bool_opt(model, "fuse_unk", "model", &L->tok->fuse_unk, L->err)) ||
        (st = mt_json_bool_opt(model, "ignore_merges", "model", &L->tok->ignore_merges, L->err)))
        return mt_err_prefix(L->err, "%s", L->path);
    if (dropout > 0) return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: model.dropout > 0 is not supported", L->path);
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        if ((st = mt_json_str_opt(model, affixes[i], "model", &s, L->err))) return mt_err_prefix(L->err, "%s", L->path);
        if (s && *s)
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: model.%s \"%.20s\" is not supported", L->path,
                              affixes[i], s);
        s = NULL;
    }
    return read_vocab(L, cJSON_GetObjectItemCaseSensitive(model, "vocab"), max_id, n_vocab);
}

static mt_status load(loader *L, const cJSON *root) {
    mt_tokenizer *tok = L->tok;
    mt_status st;
    if (!cJSON_IsObject(root)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: not a JSON object", L->path);
    if ((st = mt_tok_blob_add(L, L->path, strlen(L->path), &tok->name))) return st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int32_t max_id = -1;
    size_t n_vocab = 0;
    if ((st = read_model(L, model, &max_id, &n_vocab))) return st;
    if ((st = read_added(L, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), &max_id))) return st;
    if ((st = mt_tok_read_normalizer(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0))) return st;
    if ((st = mt_tok_read_pre(L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0))) return st;
    if ((st = mt_tok_read_decoder(L, root))) return st;
    if (max_id < 0) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.vocab is empty", L->path);
    tok->n_ids = max_id + 1;
    size_t n = (size_t)tok->n_ids;
    tok->vname = mt_calloc(n, sizeof(mt_tok_str));
    tok->vbytes = mt_calloc(n, sizeof(mt_tok_str));
    tok->flags = mt_calloc(n, 1);
    tok->whole = mt_calloc(n, 1);
    tok->added_of = mt_malloc_array(n, sizeof(int32_t));
    if (!tok->vname || !tok->vbytes || !tok->flags || !tok->whole || !tok->added_of) return nomem(L, "the vocab");
    memset(tok->added_of, 0xff, n * sizeof(int32_t));
    if ((st = fill_vocab(L, cJSON_GetObjectItemCaseSensitive(model, "vocab")))) return st;
    if ((st = read_merges(L, cJSON_GetObjectItemCaseSensitive(model, "merges")))) return st;
    find_sp_spans(tok);
    if ((st = normalize_added(L))) return st;
    tok->unk_id = -1;
    const char *unk = NULL, *unk_bytes = NULL;
    char buf[MT_TOK_MAX_TOKEN_LEN];
    size_t unk_len = 0;
    if ((st = mt_json_raw_opt(model, "unk_token", "model", &unk, L->err))) return mt_err_prefix(L->err, "%s", L->path);
    if (unk) unk_bytes = json_bytes(unk, buf, sizeof buf, &unk_len);
    if (unk && (!unk_bytes || (tok->unk_id = mt_tok_index_get(&tok->by_name, tok->blob.data, unk_bytes, unk_len)) < 0))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.unk_token \"%.60s\" is not in model.vocab", L->path, unk);
    return mt_tok_read_post(L, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), 0);
}

mt_status mt_tokenizer_load_json(const char *json, size_t len, const char *what, mt_tokenizer **out, mt_err *err) {
    cJSON *root;
    mt_status st = mt_json_parse(json, len, what, &root, err);
    if (st) return st;
    mt_tokenizer *tok = mt_calloc(1, sizeof *tok);
    if (!tok) {
        cJSON_Delete(root);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    }
    loader L = {tok, what, err};
    st = load(&L, root);
    cJSON_Delete(root);
    if (st) {
        mt_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return MT_OK;
}

/* split_special_tokens from the tokenizer_config.json beside tokenizer.json, as transformers' tokenizer __init__
 * reads it (default false; an absent file is no error). */
static mt_status read_config_flags(const char *json_path, mt_tokenizer *tok, mt_err *err) {
    char dir[4096], cfg_path[4096];
    const char *slash = strrchr(json_path, '/');
    size_t n = slash ? (size_t)(slash - json_path) : 1;
    if (n >= sizeof dir) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: path too long", json_path);
    memcpy(dir, slash ? json_path : ".", n);
    dir[n] = 0;
    mt_status st = mt_path_join(cfg_path, sizeof cfg_path, dir, "tokenizer_config.json", err);
    if (st || !mt_file_exists(cfg_path)) return st;
    cJSON *cfg;
    if ((st = mt_json_parse_file(cfg_path, MT_JSON_MAX_FILE, &cfg, err))) return st;
    if (!cJSON_IsObject(cfg)) st = mt_err_set(err, MT_ERR_FORMAT, "%s: not a JSON object", cfg_path);
    else st = mt_json_bool_opt(cfg, "split_special_tokens", cfg_path, &tok->split_special, err);
    cJSON_Delete(cfg);
    return st;
}

mt_status mt_tokenizer_load(const char *path, mt_tokenizer **out, mt_err *err) {
    char *text;
    size_t len;
    mt_status st = mt_file_read_all(path, MT_JSON_MAX_FILE, &text, &len, err);
    if (st) return st;
    st = mt_tokenizer_load_json(text, len, path, out, err);
    mt_free(text);
    if (!st && (st = read_config_flags(path, *out, err))) {
        mt_tokenizer_free(*out);
        *out = NULL;
    }
    return st;
}

bool mt_tokenizer_splits_special(const mt_tokenizer *tok) { return tok->split_special; }

void mt_tokenizer_free(mt_tokenizer *tok) {
    if (!tok) return;
    for (size_t i = 0; i < tok->n_pre; i++) pcre2_code_free(tok->pre[i].re);
    for (size_t i = 0; i < tok->n_norm; i++) pcre2_code_free(tok->norm[i].re);
    for (int k = 0; k < 2; k++) {
        mt_tok_index_free(&tok->added_ix[k]);
        mt_free(tok->added_lens[k]);
        mt_free(tok->added_pair[k]);
    }
    mt_tok_index_free(&tok->by_name);
    mt_tok_index_free(&tok->by_bytes);
    mt_free(tok->merges);
    mt_free(tok->merge_id);
    mt_free(tok->char_id);
    mt_free(tok->spm_score);
    mt_free(tok->spm_type);
    mt_free(tok->spm_user_lens);
    mt_free(tok->spm_trie);
    mt_free(tok->spm_norm);
    mt_free(tok->added);
    mt_free(tok->vname);
    mt_free(tok->vbytes);
    mt_free(tok->added_of);
    mt_free(tok->flags);
    mt_free(tok->whole);
    mt_free(tok->blob.data);
    mt_free(tok);
}
