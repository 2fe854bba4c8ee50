/* text/tok_load: reads tokenizer.json (the serialisation of tokenizers' TokenizerImpl, tokenizers >= 0.13) into an
 * mt_tokenizer. The fields read, and where they go:
 *
 *   | field                                   | becomes                                                      |
 *   |-----------------------------------------|--------------------------------------------------------------|
 *   | model.vocab {token: id}                 | vname/vbytes/flags per id, by_name, by_bytes, byte_id        |
 *   | model.merges ["a b"] or [["a","b"]]     | merges[(id a, id b)] = (position in the list, id of "ab")    |
 *   | model.ignore_merges, unk_token          | ignore_merges, unk_id                                        |
 *   | added_tokens [{id, content, ...}]       | added[], added_of[id]                                        |
 *   | normalizer                              | norm[] (utf8proc option sets)                                |
 *   | pre_tokenizer                           | pre[] (flattened Sequence)                                   |
 *   | decoder                                 | checked to be ByteLevel or null                              |
 *
 * post_processor, truncation and padding are not read (see tokenizer.h).
 */
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#include "base/file.h"
#include "base/json.h"
#include "text/text_int.h"

typedef struct loader {
    mt_tokenizer *tok;
    const char *path;
    mt_err *err;
} loader;

static mt_status nomem(loader *L, const char *what) {
    return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory for %s", L->path, what);
}

static mt_status blob_add(loader *L, const char *s, size_t n, mt_tok_str *out) {
    mt_tbuf *b = &L->tok->blob;
    if (b->len + n >= UINT32_MAX) return mt_err_set(L->err, MT_ERR_LIMIT, "%s: token strings over 4 GiB", L->path);
    out->off = (uint32_t)b->len;
    out->len = (uint32_t)n;
    return mt_tbuf_append(b, s, n) ? MT_OK : nomem(L, "token strings");
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
    return MT_OK;
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
        size_t n = strlen(e->string), nb;
        mt_status st = blob_add(L, e->string, n, &tok->vname[id]);
        if (st) return st;
        tok->flags[id] |= MT_TOK_F_VOCAB;
        if (bytelevel_decode(e->string, n, bytes, &nb)) {
            if ((st = blob_add(L, bytes, nb, &tok->vbytes[id]))) return st;
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
        if (tok->flags[id] & MT_TOK_F_VOCAB) mt_tok_index_put(&tok->by_name, tok->vname, tok->blob.data, id);
        if (tok->flags[id] & MT_TOK_F_BYTELEVEL) mt_tok_index_put(&tok->by_bytes, tok->vbytes, tok->blob.data, id);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        tok->byte_id[b] = mt_tok_index_get(&tok->by_bytes, tok->vbytes, tok->blob.data, &c, 1);
    }
    return MT_OK;
}

static mt_status read_merges(loader *L, const cJSON *merges) {
    mt_tokenizer *tok = L->tok;
    if (!cJSON_IsArray(merges)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges must be an array", L->path);
    size_t n = (size_t)cJSON_GetArraySize(merges);
    mt_status st = mt_tok_merges_init(tok, n, L->err);
    if (st) return mt_err_prefix(L->err, "%s", L->path);
    char joined[2 * MT_TOK_MAX_TOKEN_LEN];
    size_t rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *a, *b;
        size_t na, nb;
        if (cJSON_IsString(m)) {
            a = m->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges[%zu]: \"%.60s\" is not two tokens split by "
                                  "one space", L->path, rank, a);
            na = (size_t)(sp - a);
            b = sp + 1;
            nb = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring;
            b = m->child->next->valuestring;
            na = strlen(a);
            nb = strlen(b);
        } else {
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"]", L->path,
                              rank);
        }
        int32_t ia = mt_tok_index_get(&tok->by_name, tok->vname, tok->blob.data, a, na);
        int32_t ib = mt_tok_index_get(&tok->by_name, tok->vname, tok->blob.data, b, nb);
        int32_t iab = -1;
        if (na + nb <= sizeof joined) {
            memcpy(joined, a, na);
            memcpy(joined + na, b, nb);
            iab = mt_tok_index_get(&tok->by_name, tok->vname, tok->blob.data, joined, na + nb);
        }
        if (ia < 0 || ib < 0 || iab < 0)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.merges[%zu]: \"%.60s\" is not in model.vocab", L->path,
                              rank, ia < 0 ? a : ib < 0 ? b : "(the merged token)");
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
        if ((st = mt_json_str_req(e, "content", what, &content, L->err))) return st;
        size_t len = strlen(content);
        if (len == 0 || len > MT_TOK_MAX_TOKEN_LEN || !mt_utf8_is_valid(content, len))
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
        if ((st = blob_add(L, content, len, &a->content))) return st;
        a->match = a->content;
        if (a->id > *max_id) *max_id = a->id;
        tok->n_added++;
    }
    return MT_OK;
}

/* Normalizes the content of normalized added tokens (they are searched for in normalized text). */
static mt_status normalize_added(loader *L) {
    mt_tokenizer *tok = L->tok;
    mt_tbuf t = {0};
    for (size_t i = 0; i < tok->n_added; i++) {
        mt_tok_added *a = &tok->added[i];
        tok->added_of[a->id] = (int32_t)i;
        if (a->special) tok->flags[a->id] |= MT_TOK_F_SPECIAL;
        if (!a->normalized || tok->n_norm == 0) continue;
        mt_status st = mt_unicode_normalize(tok->norm, tok->n_norm, tok->blob.data + a->content.off, a->content.len,
                                            &t, L->err);
        if (!st) st = blob_add(L, t.data, t.len, &a->match);
        if (st) {
            mt_free(t.data);
            return st;
        }
    }
    mt_free(t.data);
    return MT_OK;
}

static mt_status read_normalizer(loader *L, const cJSON *n, int depth) {
    mt_tokenizer *tok = L->tok;
    if (!n || cJSON_IsNull(n)) return MT_OK;
    const char *type = NULL;
    if (!cJSON_IsObject(n) || mt_json_str_req(n, "type", "normalizer", &type, NULL))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: normalizer must be an object with a \"type\"", L->path);
    if (!strcmp(type, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list))
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: normalizer.normalizers must be an array", L->path);
        for (const cJSON *c = list->child; c; c = c->next) {
            mt_status st = read_normalizer(L, c, depth + 1);
            if (st) return st;
        }
        return MT_OK;
    }
    static const struct { const char *name; int opt; } forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(forms); i++) {
        if (strcmp(type, forms[i].name)) continue;
        if (tok->n_norm == MT_ARRAY_LEN(tok->norm))
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: normalizer: more than %zu steps", L->path,
                              MT_ARRAY_LEN(tok->norm));
        tok->norm[tok->n_norm++] = forms[i].opt;
        return MT_OK;
    }
    return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: normalizer: type \"%.40s\" is not supported", L->path, type);
}

static mt_status add_pre(loader *L, mt_tok_pre **out) {
    mt_tokenizer *tok = L->tok;
    if (tok->n_pre == MT_TOK_MAX_PRE)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: more than %d steps", L->path, MT_TOK_MAX_PRE);
    *out = &tok->pre[tok->n_pre++];
    memset(*out, 0, sizeof **out);
    return MT_OK;
}

static mt_status read_split(loader *L, const cJSON *p, mt_tok_pre *pre) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *behavior = NULL, *re = NULL, *lit = NULL;
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
    if (!cJSON_IsObject(pat) || mt_json_str_opt(pat, "Regex", "", &re, NULL) ||
        mt_json_str_opt(pat, "String", "", &lit, NULL) || (!re && !lit))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: pre_tokenizer Split: \"pattern\" must be {\"Regex\": ...} or "
                          "{\"String\": ...}", L->path);
    mt_status st;
    if ((st = mt_json_str_req(p, "behavior", "pre_tokenizer Split", &behavior, L->err)) ||
        (st = mt_json_bool_opt(p, "invert", "pre_tokenizer Split", &pre->invert, L->err)))
        return mt_err_prefix(L->err, "%s", L->path);
    size_t k = 0;
    while (k < MT_ARRAY_LEN(names) && strcmp(behavior, names[k])) k++;
    if (k == MT_ARRAY_LEN(names))
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer Split: behavior \"%.40s\" is not supported",
                          L->path, behavior);
    pre->kind = MT_PRE_SPLIT;
    pre->behavior = (mt_split_behavior)k;
    return mt_pretok_compile(re ? re : lit, !re, L->path, &pre->re, L->err);
}

static mt_status read_pre(loader *L, const cJSON *p, int depth) {
    if (!p || cJSON_IsNull(p)) return MT_OK;
    const char *type = NULL;
    if (!cJSON_IsObject(p) || mt_json_str_req(p, "type", "pre_tokenizer", &type, NULL))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: pre_tokenizer must be an object with a \"type\"", L->path);
    mt_tok_pre *pre = NULL;
    mt_status st;
    if (!strcmp(type, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list))
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: pre_tokenizer.pretokenizers must be an array", L->path);
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = read_pre(L, c, depth + 1))) return st;
        return MT_OK;
    }
    if (!strcmp(type, "Split")) {
        if ((st = add_pre(L, &pre))) return st;
        return read_split(L, p, pre);
    }
    if (!strcmp(type, "Digits")) {
        bool individual = false;
        if ((st = mt_json_bool_opt(p, "individual_digits", "pre_tokenizer Digits", &individual, L->err)))
            return mt_err_prefix(L->err, "%s", L->path);
        if ((st = add_pre(L, &pre))) return st;
        pre->kind = MT_PRE_SPLIT; /* tokenizers splits on char::is_numeric, which is \p{N} */
        pre->behavior = individual ? MT_SPLIT_ISOLATED : MT_SPLIT_CONTIGUOUS;
        return mt_pretok_compile("\\p{N}", false, L->path, &pre->re, L->err);
    }
    if (!strcmp(type, "ByteLevel")) {
        bool use_regex = true;
        if ((st = add_pre(L, &pre))) return st;
        pre->kind = MT_PRE_BYTELEVEL;
        pre->add_prefix_space = true;
        if ((st = mt_json_bool_opt(p, "add_prefix_space", "pre_tokenizer ByteLevel", &pre->add_prefix_space, L->err)) ||
            (st = mt_json_bool_opt(p, "use_regex", "pre_tokenizer ByteLevel", &use_regex, L->err)))
            return mt_err_prefix(L->err, "%s", L->path);
        return use_regex ? mt_pretok_gpt2_regex(L->path, &pre->re, L->err) : MT_OK;
    }
    return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: type \"%.40s\" is not supported", L->path, type);
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
    bool byte_fallback = false;
    if ((st = mt_json_num_opt(model, "dropout", "model", 0, 1, &dropout, L->err)) ||
        (st = mt_json_bool_opt(model, "byte_fallback", "model", &byte_fallback, L->err)) ||
        (st = mt_json_bool_opt(model, "ignore_merges", "model", &L->tok->ignore_merges, L->err)))
        return mt_err_prefix(L->err, "%s", L->path);
    if (dropout > 0) return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: model.dropout > 0 is not supported", L->path);
    if (byte_fallback)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: model.byte_fallback is not supported", L->path);
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

static mt_status check_layout(loader *L, const cJSON *root) {
    mt_tokenizer *tok = L->tok;
    if (tok->n_pre == 0 || tok->pre[tok->n_pre - 1].kind != MT_PRE_BYTELEVEL)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: only byte-level BPE is supported (a "
                          "ByteLevel step must come last)", L->path);
    for (size_t i = 0; i + 1 < tok->n_pre; i++)
        if (tok->pre[i].kind == MT_PRE_BYTELEVEL)
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: ByteLevel must be the last step",
                              L->path);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *type = NULL;
    if (dec && !cJSON_IsNull(dec)) {
        if (!cJSON_IsObject(dec) || mt_json_str_req(dec, "type", "decoder", &type, NULL))
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: decoder must be an object with a \"type\"", L->path);
        if (strcmp(type, "ByteLevel"))
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: type \"%.40s\" is not supported", L->path,
                              type);
    }
    return MT_OK;
}

static mt_status load(loader *L, const cJSON *root) {
    mt_tokenizer *tok = L->tok;
    mt_status st;
    if (!cJSON_IsObject(root)) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: not a JSON object", L->path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int32_t max_id = -1;
    size_t n_vocab = 0;
    if ((st = read_model(L, model, &max_id, &n_vocab))) return st;
    if ((st = read_added(L, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), &max_id))) return st;
    if ((st = read_normalizer(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0))) return st;
    if ((st = read_pre(L, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0))) return st;
    if ((st = check_layout(L, root))) return st;
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
    if ((st = normalize_added(L))) return st;
    tok->unk_id = -1;
    const char *unk = NULL;
    if ((st = mt_json_str_opt(model, "unk_token", "model", &unk, L->err))) return mt_err_prefix(L->err, "%s", L->path);
    if (unk && (tok->unk_id = mt_tokenizer_token_id(tok, unk)) < 0)
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: model.unk_token \"%.60s\" is not a token", L->path, unk);
    return MT_OK;
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

mt_status mt_tokenizer_load(const char *path, mt_tokenizer **out, mt_err *err) {
    char *text;
    size_t len;
    mt_status st = mt_file_read_all(path, MT_JSON_MAX_FILE, &text, &len, err);
    if (st) return st;
    st = mt_tokenizer_load_json(text, len, path, out, err);
    mt_free(text);
    return st;
}

void mt_tokenizer_free(mt_tokenizer *tok) {
    if (!tok) return;
    for (size_t i = 0; i < tok->n_pre; i++) pcre2_code_free(tok->pre[i].re);
    mt_tok_index_free(&tok->by_name);
    mt_tok_index_free(&tok->by_bytes);
    mt_free(tok->merges);
    mt_free(tok->added);
    mt_free(tok->vname);
    mt_free(tok->vbytes);
    mt_free(tok->added_of);
    mt_free(tok->flags);
    mt_free(tok->whole);
    mt_free(tok->blob.data);
    mt_free(tok);
}
