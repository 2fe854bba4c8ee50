/* models/gguf_vocab: the tokenizer.* keys of a GGUF language model, as llama.cpp's converter writes them for a
 * byte-level BPE tokenizer.json (base.py _set_vocab_gpt2; gguf-py vocab.py SpecialVocab):
 *
 *     | key                        | type     | value                                                           |
 *     |----------------------------|----------|-----------------------------------------------------------------|
 *     | tokenizer.ggml.model       | str      | "gpt2"                                                          |
 *     | tokenizer.ggml.pre         | str      | "qwen2" or "llama-bpe", by the pre-tokenizer's split pattern;   |
 *     |                            |          | "gpt-2" for a lone ByteLevel with its regex (InternVL's tiny)   |
 *     | tokenizer.ggml.tokens      | [str]    | one per embedding row, in stored (byte-level) form; "[PAD<id>]" |
 *     |                            |          | for rows no token names                                         |
 *     | tokenizer.ggml.token_type  | [i32]    | 1 normal, 3 special added, 4 other added, 5 padding             |
 *     | tokenizer.ggml.merges      | [str]    | "left right"                                                    |
 *     | tokenizer.ggml.*_token_id  | u32      | bos, eos, unknown, padding: tokenizer_config.json's tokens,     |
 *     |                            |          | then config.json's *_token_id for those still unset             |
 *     | tokenizer.ggml.add_*_token | bool     | when tokenizer_config.json says                                 |
 *     | tokenizer.chat_template    | str      | the template (named ones: tokenizer.chat_template.NAME and      |
 *     |                            |          | tokenizer.chat_templates)                                       |
 *
 * The converter names the pre-tokenizer by hashing what the tokenizer makes of a test text; the split pattern it
 * hashes is what decides, so it is compared here instead. A pattern llama.cpp has no name for is refused: a GGUF
 * that tokenizes differently from the checkpoint would be a wrong model that loads. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "models/gguf_export_int.h"
#include "text/spm.h"
#include "text/text_int.h"

enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5, TOKEN_BYTE = 6 };

static const cJSON *split_pattern(const cJSON *pre) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "Split"))
        return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pre, "pattern"), "Regex");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    for (const cJSON *p = cJSON_IsArray(list) ? list->child : NULL; p; p = p->next) {
        const cJSON *r = split_pattern(p);
        if (r) return r;
    }
    return NULL;
}

static mt_status pre_name(const cJSON *tok, const char *path, const char **out, mt_err *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "decoder"), "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") || !cJSON_IsString(dec) ||
        strcmp(dec->valuestring, "ByteLevel"))
        return mt_err_set(err, MT_ERR_UNSUPPORTED,
                          "%s: GGUF is written for byte-level BPE tokenizers (Qwen, Llama 3); this one is %s with a "
                          "%s decoder",
                          path, cJSON_IsString(type) ? type->valuestring : "(no model type)",
                          cJSON_IsString(dec) ? dec->valuestring : "(no)");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(tok, "pre_tokenizer");
    /* a lone ByteLevel with its own regex is GPT-2's split, which llama.cpp names gpt-2 (LLAMA_VOCAB_PRE_TYPE_GPT2) */
    const cJSON *pt_type = cJSON_GetObjectItemCaseSensitive(pt, "type");
    if (cJSON_IsString(pt_type) && !strcmp(pt_type->valuestring, "ByteLevel") &&
        !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pt, "use_regex")))
        return *out = "gpt-2", MT_OK;
    const cJSON *re = split_pattern(pt);
    for (size_t i = 0; cJSON_IsString(re) && i < mt_gguf_n_pre_tokenizers; i++)
        if (!strcmp(re->valuestring, mt_gguf_pre_tokenizers[i].pattern)) return *out = mt_gguf_pre_tokenizers[i].name, MT_OK;
    return mt_err_set(err, MT_ERR_UNSUPPORTED,
                      "%s: the pre-tokenizer's split pattern %.120s is none llama.cpp names (qwen2, llama-bpe): a GGUF "
                      "of it would tokenize differently",
                      path, cJSON_IsString(re) ? re->valuestring : "(none)");
}

typedef struct vocab {
    int64_t n;
    char **tokens; /* [n] owned, NULL until named */
    int32_t *types;
    float *scores; /* SentencePiece vocabularies only */
} vocab;

static void vocab_free(vocab *v) {
    for (int64_t i = 0; v->tokens && i < v->n; i++) mt_free(v->tokens[i]);
    mt_free(v->tokens);
    mt_free(v->types);
    mt_free(v->scores);
}

static mt_status set_token(vocab *v, const cJSON *id, const char *text, int32_t type, const char *path, mt_err *err) {
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (double)v->n || id->valuedouble != id->valueint)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: token \"%.60s\" has id %g, outside the %lld embedding rows", path,
                          text, cJSON_IsNumber(id) ? id->valuedouble : -1.0, (long long)v->n);
    int64_t i = id->valueint;
    mt_free(v->tokens[i]);
    if (!(v->tokens[i] = mt_strdup(text))) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    v->types[i] = type;
    return MT_OK;
}

static mt_status read_vocab(const cJSON *tok, const char *path, vocab *v, mt_err *err) {
    v->tokens = mt_calloc((size_t)v->n, sizeof *v->tokens);
    v->types = mt_malloc_array((size_t)v->n, sizeof *v->types);
    if (!v->tokens || !v->types) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    const cJSON *words = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "vocab");
    if (!cJSON_IsObject(words)) return mt_err_set(err, MT_ERR_FORMAT, "%s: model.vocab is not an object", path);
    mt_status st = MT_OK;
    for (const cJSON *w = words->child; w && !st; w = w->next) st = set_token(v, w, w->string, TOKEN_NORMAL, path, err);
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tok, "added_tokens");
    for (const cJSON *a = cJSON_IsArray(added) ? added->child : NULL; a && !st; a = a->next) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!cJSON_IsString(content)) return mt_err_set(err, MT_ERR_FORMAT, "%s: an added token has no content", path);
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special"));
        st = set_token(v, cJSON_GetObjectItemCaseSensitive(a, "id"), content->valuestring,
                       special ? TOKEN_CONTROL : TOKEN_USER_DEFINED, path, err);
    }
    char pad[32];
    for (int64_t i = 0; i < v->n && !st; i++) {
        if (v->tokens[i]) continue;
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
        if (!(v->tokens[i] = mt_strdup(pad))) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        v->types[i] = TOKEN_UNUSED;
    }
    return st;
}

/* "left right", a space inside a part written as U+0120 as the converter does. */
static char *merge_text(const cJSON *m) {
    const char *a, *b;
    if (cJSON_IsString(m)) return mt_strdup(m->valuestring);
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(m->child) ||
        !cJSON_IsString(m->child->next))
        return NULL;
    a = m->child->valuestring, b = m->child->next->valuestring;
    size_t n = 0;
    for (const char *s = a; *s; s++) n += *s == ' ' ? 2 : 1;
    for (const char *s = b; *s; s++) n += *s == ' ' ? 2 : 1;
    char *out = mt_malloc(n + 2), *o = out;
    for (int k = 0; out && k < 2; k++) {
        for (const char *s = k ? b : a; *s; s++)
            if (*s == ' ') *o++ = (char)0xC4, *o++ = (char)0xA0;
            else *o++ = *s;
        *o++ = k ? '\0' : ' ';
    }
    return out;
}

static mt_status add_merges(mt_gguf_writer *w, const cJSON *tok, const char *path, mt_err *err) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "merges");
    if (!cJSON_IsArray(merges)) return mt_err_set(err, MT_ERR_FORMAT, "%s: model.merges is not a list", path);
    size_t n = (size_t)cJSON_GetArraySize(merges), i = 0;
    char **text = mt_calloc(n ? n : 1, sizeof *text);
    mt_status st = text ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (const cJSON *m = merges->child; m && !st; m = m->next, i++)
        if (!(text[i] = merge_text(m)))
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", path, i);
    if (!st) st = mt_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", (const char *const *)text, n, err);
    for (size_t k = 0; text && k < n; k++) mt_free(text[k]);
    mt_free(text);
    return st;
}

/* A special token of tokenizer_config.json (a string or {"content": ...}) as its id, or -1. */
static int64_t config_token(const cJSON *tc, const char *key, const vocab *v) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(tc, key);
    if (cJSON_IsObject(t)) t = cJSON_GetObjectItemCaseSensitive(t, "content");
    if (!cJSON_IsString(t)) return -1;
    for (int64_t i = 0; i < v->n; i++)
        if (v->types[i] != TOKEN_UNUSED && !strcmp(v->tokens[i], t->valuestring)) return i;
    return -1;
}

/* config.json's *_token_id (top level, else the text section): an integer id inside the vocabulary, or -1. */
static int64_t config_id(const cJSON *cfg, const char *key, int64_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    for (const char *sec = "text_config"; !cJSON_IsNumber(v) && sec; sec = sec[0] == 't' ? "llm_config" : NULL)
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, sec), key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)n ? (int64_t)v->valuedouble : -1;
}

/* eos_override >= 0: InternLM2Model.set_vocab's eos, <|im_end|> of the chat models. */
static mt_status add_specials(mt_gguf_writer *w, const cJSON *tc, const cJSON *cfg, const vocab *v, int32_t eos_override,
                              mt_err *err) {
    static const struct {
        const char *config_key, *id_key, *gguf;
    } specials[] = {
        {"bos_token", "bos_token_id", "tokenizer.ggml.bos_token_id"},
        {"eos_token", "eos_token_id", "tokenizer.ggml.eos_token_id"},
        {"unk_token", "unk_token_id", "tokenizer.ggml.unknown_token_id"},
        {"pad_token", "pad_token_id", "tokenizer.ggml.padding_token_id"},
    };
    mt_status st = MT_OK;
    for (size_t i = 0; i < MT_ARRAY_LEN(specials) && !st; i++) {
        int64_t id = config_token(tc, specials[i].config_key, v);
        if (id < 0) id = config_id(cfg, specials[i].id_key, v->n);
        if (i == 1 && eos_override >= 0) id = eos_override;
        uint32_t u = (uint32_t)id;
        if (id >= 0) st = mt_gguf_writer_add(w, specials[i].gguf, MT_GGUF_U32, &u, err);
    }
    static const char *const adds[][2] = {{"add_bos_token", "tokenizer.ggml.add_bos_token"},
                                          {"add_eos_token", "tokenizer.ggml.add_eos_token"}};
    for (size_t i = 0; i < MT_ARRAY_LEN(adds) && !st; i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(tc, adds[i][0]);
        bool on = cJSON_IsTrue(b);
        if (cJSON_IsBool(b)) st = mt_gguf_writer_add(w, adds[i][1], MT_GGUF_BOOL, &on, err);
    }
    return st;
}

static mt_status add_templates(mt_gguf_writer *w, const mt_model *m, mt_err *err) {
    const char *names[64];
    size_t n_named = 0;
    mt_status st = MT_OK;
    for (size_t i = 0; i < mt_chat_template_count(m->chat_template) && !st; i++) {
        const char *name;
        size_t len;
        const char *src = mt_chat_template_source(m->chat_template, i, &name, &len);
        char key[256];
        if (!name || !strcmp(name, "default")) {
            snprintf(key, sizeof key, "tokenizer.chat_template");
        } else {
            snprintf(key, sizeof key, "tokenizer.chat_template.%s", name);
            if (n_named < MT_ARRAY_LEN(names)) names[n_named++] = name;
        }
        st = mt_gguf_writer_add_str(w, key, src, len, err);
    }
    if (!st && n_named) st = mt_gguf_writer_add_str_array(w, "tokenizer.chat_templates", names, n_named, err);
    return st;
}

/* ---- SentencePiece ("llama") vocabularies ---- */

/* The converter's does_token_look_special: added tokens some models forget to mark special. */
static bool looks_special(const char *t) {
    size_t n = strlen(t);
    if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") || !strcmp(t, "[@BOS@]")) return true;
    if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>")) return true;
    if (n >= 8 && !strncmp(t, "<\xEF\xBD\x9C", 4) && !strcmp(t + n - 4, "\xEF\xBD\x9C>")) return true;
    return n >= 8 && !strncmp(t, "<unused", 7) && t[n - 1] == '>';
}

static mt_status spm_alloc(vocab *v) {
    v->tokens = mt_calloc((size_t)v->n, sizeof *v->tokens);
    v->types = mt_malloc_array((size_t)v->n, sizeof *v->types);
    v->scores = mt_malloc_array((size_t)v->n, sizeof *v->scores);
    return v->tokens && v->types && v->scores ? MT_OK : MT_ERR_NOMEM;
}

static bool set_spm(vocab *v, int64_t i, const char *s, size_t len, float score, int32_t type) {
    mt_free(v->tokens[i]);
    v->scores[i] = score;
    v->types[i] = type;
    return (v->tokens[i] = mt_strndup(s, len)) != NULL;
}

/* _create_vocab_sentencepiece (InternLM2Model.set_vocab for internlm2): every piece with its score and type, a
 * user-defined piece typed USER_DEFINED (the converter writes NORMAL, which llama.cpp would merge into rather than
 * match whole as SentencePiece does), rows past the pieces "[PAD<id>]" UNUSED at -10000; then
 * tokenizer_config.json's added_tokens_decoder over them at -1000, CONTROL when special (or, but for internlm2,
 * looking special), else USER_DEFINED with "▁" as a space. */
static mt_status spm_from_model(vocab *v, const char *sp_path, const cJSON *tc, bool internlm2, int32_t *im_end,
                                bool *add_prefix, mt_err *err) {
    char *data;
    size_t len;
    mt_spm_model sp;
    mt_status st = mt_file_read_all(sp_path, MT_JSON_MAX_FILE, &data, &len, err);
    if (st) return st;
    if ((st = mt_spm_parse((const uint8_t *)data, len, sp_path, &sp, err))) {
        mt_free(data);
        return st;
    }
    *add_prefix = sp.add_dummy_prefix;
    if ((int64_t)sp.n_pieces > v->n)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %zu pieces, more than the model's %lld embedding rows", sp_path,
                        sp.n_pieces, (long long)v->n);
    if (!st && spm_alloc(v)) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    char pad[32];
    for (int64_t i = 0; i < v->n && !st; i++) {
        bool ok;
        if (i < (int64_t)sp.n_pieces) {
            const mt_spm_piece *p = &sp.pieces[i];
            int32_t t = p->type;
            if (internlm2 && p->len >= 7 && !memcmp(p->s, "[UNUSED", 7)) t = TOKEN_UNUSED;
            if (memchr(p->s, 0, p->len)) {
                /* a GGUF string is read as a C string by llama.cpp: InternLM2's converter writes this piece as 🐉 */
                if (!internlm2 || p->len != 1)
                    st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: piece %lld holds a NUL byte, which llama.cpp "
                                    "cannot read", sp_path, (long long)i);
                ok = set_spm(v, i, "\xF0\x9F\x90\x89", 4, p->score, t);
            } else {
                ok = set_spm(v, i, p->s, p->len, p->score, t);
            }
        } else {
            snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
            ok = set_spm(v, i, pad, strlen(pad), -10000.0f, TOKEN_UNUSED);
        }
        if (!ok && !st) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    mt_spm_model_free(&sp);
    mt_free(data);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(tc, "added_tokens_decoder");
    for (const cJSON *e = cJSON_IsObject(dec) ? dec->child : NULL; e && !st; e = e->next) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        char *end;
        long id = strtol(e->string, &end, 10);
        if (!cJSON_IsString(content) || !content->valuestring[0] || *end || end == e->string || id < 0)
            return mt_err_set(err, MT_ERR_FORMAT, "tokenizer_config.json: added_tokens_decoder[\"%.40s\"] is not an "
                              "id with a content", e->string);
        if (id >= v->n) continue; /* the converter skips them with a warning */
        const char *text = content->valuestring;
        if (!strcmp(text, "<|im_end|>")) *im_end = (int32_t)id;
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")) ||
                       (!internlm2 && looks_special(text));
        mt_tbuf t = {0};
        bool ok = special || internlm2 ? mt_tbuf_append(&t, text, strlen(text))
                                       : mt_tok_replace_literal(text, strlen(text), "\xE2\x96\x81", 3, " ", 1, &t);
        ok = ok && set_spm(v, id, t.data, t.len, -1000.0f, special ? TOKEN_CONTROL : TOKEN_USER_DEFINED);
        mt_free(t.data);
        if (!ok) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    return st;
}

/* A Llama-style SentencePiece tokenizer.json (BPE with byte_fallback, a Sequence decoder: what LlamaHfVocab
 * takes): tokens as in read_vocab, "<0xXX>" typed BYTE. The converter gives every token the score -1000, which
 * makes llama.cpp merge the leftmost pair first, not the BPE of tokenizer.json: here a token made by a merge
 * scores minus the rank of its first merge, so merging by score is merging by rank, and any other token -1e9. */
static mt_status spm_from_json(vocab *v, const cJSON *tok, const char *path, bool *add_prefix, mt_err *err) {
    mt_status st = read_vocab(tok, path, v, err);
    if (st) return st;
    if (!(v->scores = mt_malloc_array((size_t)v->n, sizeof *v->scores)))
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < v->n; i++) {
        const char *t = v->tokens[i];
        v->scores[i] = v->types[i] == TOKEN_UNUSED ? -1000.0f : -1e9f;
        if (v->types[i] == TOKEN_NORMAL && strlen(t) == 6 && !strncmp(t, "<0x", 3) && t[5] == '>' &&
            isxdigit((unsigned char)t[3]) && isxdigit((unsigned char)t[4]))
            v->types[i] = TOKEN_BYTE;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok, "model");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *words = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    size_t rank = 0;
    char buf[2 * 4096 + 2];
    for (const cJSON *m = cJSON_IsArray(merges) ? merges->child : NULL; m; m = m->next, rank++) {
        /* the merged token: the two parts joined ("a b" split at its first space after the first byte) */
        const char *l = NULL, *r = NULL;
        size_t nl = 0;
        if (cJSON_IsString(m) && m->valuestring[0]) {
            const char *sp = strchr(m->valuestring + 1, ' ');
            if (sp) l = m->valuestring, nl = (size_t)(sp - l), r = sp + 1;
        } else if (cJSON_IsArray(m) && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            l = m->child->valuestring, nl = strlen(l), r = m->child->next->valuestring;
        }
        size_t nr = r ? strlen(r) : 0;
        if (!l || nl + nr >= sizeof buf)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", path, rank);
        memcpy(buf, l, nl);
        memcpy(buf + nl, r, nr + 1);
        const char *a = buf;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(words, a);
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (double)v->n)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: merge %zu makes \"%.60s\", which is not in model.vocab", path,
                              rank, a);
        float *sc = &v->scores[(int64_t)id->valuedouble];
        if (*sc == -1e9f) *sc = -(float)rank;
    }
    /* a Prepend "▁" normalizer or a Metaspace that prepends is the dummy prefix */
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(tok, "normalizer");
    char *ntext = norm ? cJSON_PrintUnformatted(norm) : NULL, *ptext = NULL;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(tok, "pre_tokenizer");
    if (pre) ptext = cJSON_PrintUnformatted(pre);
    *add_prefix = (ntext && strstr(ntext, "\"prepend\":\"\xE2\x96\x81\"")) ||
                  (ptext && strstr(ptext, "\"Metaspace\"") && !strstr(ptext, "\"prepend_scheme\":\"never\"") &&
                   !strstr(ptext, "\"add_prefix_space\":false"));
    cJSON_free(ntext);
    cJSON_free(ptext);
    return MT_OK;
}

static bool is_bytelevel(const cJSON *tok) {
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "decoder"), "type");
    return cJSON_IsString(dec) && !strcmp(dec->valuestring, "ByteLevel");
}

static bool is_llama_spm(const cJSON *tok) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "decoder"), "type");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "BPE") &&
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) && cJSON_IsString(dec) &&
           !strcmp(dec->valuestring, "Sequence");
}

/* tokenizer.ggml.model "llama", pre "default", tokens, scores, types, add_space_prefix (from the dummy prefix, or
 * tokenizer_config.json's add_prefix_space, which the converter writes when present). */
static mt_status add_spm(mt_gguf_writer *w, const vocab *v, bool add_prefix, const cJSON *tc, mt_err *err) {
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(tc, "add_prefix_space");
    if (cJSON_IsBool(aps)) add_prefix = cJSON_IsTrue(aps);
    mt_status st = mt_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5, err);
    if (!st) st = mt_gguf_writer_add_str(w, "tokenizer.ggml.pre", "default", 7, err);
    if (!st)
        st = mt_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (size_t)v->n, err);
    if (!st) st = mt_gguf_writer_add_array(w, "tokenizer.ggml.scores", MT_GGUF_F32, v->scores, (size_t)v->n, err);
    if (!st) st = mt_gguf_writer_add_array(w, "tokenizer.ggml.token_type", MT_GGUF_I32, v->types, (size_t)v->n, err);
    if (!st) st = mt_gguf_writer_add(w, "tokenizer.ggml.add_space_prefix", MT_GGUF_BOOL, &add_prefix, err);
    return st;
}

mt_status mt_gguf_add_vocab(mt_gguf_writer *w, const mt_model *m, const char *arch, int64_t n_vocab, mt_err *err) {
    char tok_path[4096], tc_path[4096], cfg_path[4096], sp_path[4096];
    cJSON *tok = NULL, *tc = NULL, *cfg = NULL;
    vocab v = {.n = n_vocab};
    const char *pre = NULL;
    bool internlm2 = !strcmp(arch, "internlm2"), add_prefix = true;
    int32_t im_end = -1;
    mt_status st = mt_path_join(tok_path, sizeof tok_path, m->dir, "tokenizer.json", err);
    if (!st) st = mt_path_join(tc_path, sizeof tc_path, m->dir, "tokenizer_config.json", err);
    if (!st) st = mt_path_join(cfg_path, sizeof cfg_path, m->dir, "config.json", err);
    if (!st) st = mt_path_join(sp_path, sizeof sp_path, m->dir, "tokenizer.model", err);
    if (!st && mt_file_exists(tok_path)) st = mt_json_parse_file(tok_path, MT_JSON_MAX_FILE, &tok, err);
    if (!st && mt_file_exists(tc_path)) st = mt_json_parse_file(tc_path, MT_JSON_MAX_FILE, &tc, err);
    if (!st) st = mt_json_parse_file(cfg_path, MT_JSON_MAX_FILE, &cfg, err);
    /* the converter tries tokenizer.model first, then a Llama-style tokenizer.json, then byte-level BPE */
    bool from_model = !st && (!tok || !is_bytelevel(tok)) && mt_file_exists(sp_path);
    bool from_json = !st && !from_model && tok && is_llama_spm(tok);
    if (!st && !tok && !from_model)
        st = mt_err_set(err, MT_ERR_IO, "%s: neither tokenizer.json nor tokenizer.model, which GGUF needs", m->dir);
    if (!st && from_model) st = spm_from_model(&v, sp_path, tc, internlm2, &im_end, &add_prefix, err);
    else if (!st && from_json) st = spm_from_json(&v, tok, tok_path, &add_prefix, err);
    if (!st && (from_model || from_json)) st = add_spm(w, &v, add_prefix, tc, err);
    if (!st && !from_model && !from_json) {
        st = pre_name(tok, tok_path, &pre, err);
        if (!st) st = read_vocab(tok, tok_path, &v, err);
        if (!st) st = mt_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", 4, err);
        if (!st) st = mt_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, strlen(pre), err);
        if (!st)
            st = mt_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, (size_t)v.n, err);
        if (!st) st = mt_gguf_writer_add_array(w, "tokenizer.ggml.token_type", MT_GGUF_I32, v.types, (size_t)v.n, err);
        if (!st) st = add_merges(w, tok, tok_path, err);
    }
    if (!st) st = add_specials(w, tc, cfg, &v, internlm2 ? im_end : -1, err);
    if (!st) st = add_templates(w, m, err);
    vocab_free(&v);
    cJSON_Delete(tok);
    cJSON_Delete(tc);
    cJSON_Delete(cfg);
    return st;
}
