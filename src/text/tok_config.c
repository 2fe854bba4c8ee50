/* text/tok_config: the pipeline stages of tokenizer.json around the model (tokenizers/src/{normalizers,
 * pre_tokenizers,decoders,processors}), read into an mt_tokenizer. What is accepted:
 *
 *   | field          | types                                                                                    |
 *   |----------------|------------------------------------------------------------------------------------------|
 *   | normalizer     | NFC NFD NFKC NFKD, Prepend {prepend}, Replace {pattern: {String|Regex}, content},        |
 *   |                | Sequence {normalizers}                                                                   |
 *   | pre_tokenizer  | Split {pattern, behavior, invert}, Digits {individual_digits}, ByteLevel {add_prefix_space,|
 *   |                | use_regex} (last only), Metaspace {replacement, prepend_scheme | add_prefix_space, split},|
 *   |                | Sequence {pretokenizers}                                                                 |
 *   | decoder        | byte-level models: ByteLevel or null. Others: Replace {pattern: {String}, content},      |
 *   |                | Metaspace, ByteFallback, Fuse, Strip {content, start, stop}, one or a Sequence, in the   |
 *   |                | order per-token steps, ByteFallback, Fuse, Strip                                          |
 *   | post_processor | TemplateProcessing {single, special_tokens}, BertProcessing / RobertaProcessing {cls, sep},|
 *   |                | ByteLevel (no ids), Sequence {processors}                                                |
 *
 * Anything else is MT_ERR_UNSUPPORTED naming it; a field of the wrong shape is MT_ERR_FORMAT naming it. Patterns,
 * Prepend and Replace strings keep U+0000 (base/json); the one-character fields and the names refuse it.
 */
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#include "text/text_int.h"

static mt_status bad(mt_tok_loader *L, const char *what) {
    return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s", L->path, what);
}

/* The "type" of a stage object; MT_OK with *type NULL for null / absent. */
static mt_status stage_type(mt_tok_loader *L, const cJSON *o, const char *stage, const char **type) {
    *type = NULL;
    if (!o || cJSON_IsNull(o)) return MT_OK;
    if (!cJSON_IsObject(o) || mt_json_str_req(o, "type", stage, type, NULL))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s must be an object with a \"type\"", L->path, stage);
    return MT_OK;
}

/* pattern {"String": s} or {"Regex": r}. */
static mt_status read_pattern(mt_tok_loader *L, const cJSON *o, const char *what, const char **lit, const char **re) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    *lit = *re = NULL;
    if (!cJSON_IsObject(pat) || mt_json_raw_opt(pat, "Regex", "", re, NULL) ||
        mt_json_raw_opt(pat, "String", "", lit, NULL) || (!*re && !*lit))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s: \"pattern\" must be {\"Regex\": ...} or {\"String\": ...}",
                          L->path, what);
    return MT_OK;
}

static mt_status add_norm(mt_tok_loader *L, mt_tok_nstep **out) {
    mt_tokenizer *tok = L->tok;
    if (tok->n_norm == MT_TOK_MAX_NORM)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: normalizer: more than %d steps", L->path, MT_TOK_MAX_NORM);
    *out = &tok->norm[tok->n_norm++];
    memset(*out, 0, sizeof **out);
    return MT_OK;
}

mt_status mt_tok_read_normalizer(mt_tok_loader *L, const cJSON *n, int depth) {
    const char *type;
    mt_status st = stage_type(L, n, "normalizer", &type);
    if (st || !type) return st;
    if (!strcmp(type, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list)) return bad(L, "normalizer.normalizers must be an array");
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = mt_tok_read_normalizer(L, c, depth + 1))) return st;
        return MT_OK;
    }
    static const struct { const char *name; int opt; } forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    mt_tok_nstep *s = NULL;
    for (size_t i = 0; i < MT_ARRAY_LEN(forms); i++) {
        if (strcmp(type, forms[i].name)) continue;
        if ((st = add_norm(L, &s))) return st;
        s->kind = MT_NORM_UNICODE;
        s->form = forms[i].opt;
        return MT_OK;
    }
    const char *a = NULL, *re = NULL;
    if (!strcmp(type, "Prepend")) {
        if ((st = mt_json_raw_req(n, "prepend", "normalizer Prepend", &a, L->err)))
            return mt_err_prefix(L->err, "%s", L->path);
        if ((st = add_norm(L, &s))) return st;
        s->kind = MT_NORM_PREPEND;
        return mt_tok_blob_add_json(L, a, &s->from);
    }
    if (!strcmp(type, "Replace")) {
        const char *to;
        if ((st = read_pattern(L, n, "normalizer Replace", &a, &re))) return st;
        if ((st = mt_json_raw_req(n, "content", "normalizer Replace", &to, L->err)))
            return mt_err_prefix(L->err, "%s", L->path);
        if (a && !*a) return bad(L, "normalizer Replace: empty \"String\" pattern");
        if ((st = add_norm(L, &s))) return st;
        s->kind = MT_NORM_REPLACE;
        if ((st = mt_tok_blob_add_json(L, to, &s->to))) return st;
        if (re) return mt_tok_compile_json(L, "normalizer Replace", re, false, &s->re, &s->pattern);
        return mt_tok_blob_add_json(L, a, &s->from);
    }
    return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: normalizer: type \"%.40s\" is not supported", L->path, type);
}

static mt_status add_pre(mt_tok_loader *L, mt_tok_pre **out) {
    mt_tokenizer *tok = L->tok;
    if (tok->n_pre == MT_TOK_MAX_PRE)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: more than %d steps", L->path, MT_TOK_MAX_PRE);
    *out = &tok->pre[tok->n_pre++];
    memset(*out, 0, sizeof **out);
    return MT_OK;
}

static mt_status read_split(mt_tok_loader *L, const cJSON *p, mt_tok_pre *pre) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *behavior = NULL, *re, *lit;
    mt_status st;
    if ((st = read_pattern(L, p, "pre_tokenizer Split", &lit, &re))) return st;
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
    return mt_tok_compile_json(L, "pre_tokenizer Split", re ? re : lit, !re, &pre->re, &pre->pattern);
}

/* One character of UTF-8 into out[5]; false when s is not exactly one. */
static bool one_char(const char *s, char out[5]) {
    size_t n = strlen(s);
    if (n == 0 || n > 4 || mt_utf8_valid_len((const uint8_t *)s, n) != n) return false;
    memcpy(out, s, n + 1);
    return true;
}

static mt_status read_metaspace(mt_tok_loader *L, const cJSON *p, const char *what, char repl[5],
                                mt_prepend_scheme *scheme, bool *split) {
    const char *r, *ps = NULL;
    bool add_prefix_space = true, has_aps = cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space"));
    mt_status st;
    if ((st = mt_json_str_req(p, "replacement", what, &r, L->err)) ||
        (st = mt_json_str_opt(p, "prepend_scheme", what, &ps, L->err)) ||
        (st = mt_json_bool_opt(p, "add_prefix_space", what, &add_prefix_space, L->err)) ||
        (split && (st = mt_json_bool_opt(p, "split", what, split, L->err))))
        return mt_err_prefix(L->err, "%s", L->path);
    if (!one_char(r, repl))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s: \"replacement\" must be one character", L->path, what);
    *scheme = MT_PREPEND_ALWAYS; /* tokenizers' default */
    if (ps && !strcmp(ps, "first")) *scheme = MT_PREPEND_FIRST;
    else if (ps && !strcmp(ps, "never")) *scheme = MT_PREPEND_NEVER;
    else if (ps && strcmp(ps, "always"))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s: prepend_scheme \"%.20s\" is not first, never or always",
                          L->path, what, ps);
    if (has_aps && !add_prefix_space) {
        if (ps && *scheme != MT_PREPEND_NEVER)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s: add_prefix_space false does not match prepend_scheme",
                              L->path, what);
        *scheme = MT_PREPEND_NEVER;
    }
    return MT_OK;
}

mt_status mt_tok_read_pre(mt_tok_loader *L, const cJSON *p, int depth) {
    const char *type;
    mt_status st = stage_type(L, p, "pre_tokenizer", &type);
    if (st || !type) return st;
    mt_tok_pre *pre = NULL;
    if (!strcmp(type, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list)) return bad(L, "pre_tokenizer.pretokenizers must be an array");
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = mt_tok_read_pre(L, c, depth + 1))) return st;
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
        return mt_pretok_compile(L, "pre_tokenizer Digits", "\\p{N}", 5, false, &pre->re, &pre->pattern);
    }
    if (!strcmp(type, "ByteLevel")) {
        bool use_regex = true;
        if ((st = add_pre(L, &pre))) return st;
        pre->kind = MT_PRE_BYTELEVEL;
        pre->add_prefix_space = true;
        if ((st = mt_json_bool_opt(p, "add_prefix_space", "pre_tokenizer ByteLevel", &pre->add_prefix_space, L->err)) ||
            (st = mt_json_bool_opt(p, "use_regex", "pre_tokenizer ByteLevel", &use_regex, L->err)))
            return mt_err_prefix(L->err, "%s", L->path);
        return use_regex ? mt_pretok_gpt2_regex(L, &pre->re, &pre->pattern) : MT_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        bool split = true;
        if ((st = add_pre(L, &pre))) return st;
        pre->kind = MT_PRE_METASPACE;
        if ((st = read_metaspace(L, p, "pre_tokenizer Metaspace", pre->repl, &pre->prepend, &split))) return st;
        pre->behavior = MT_SPLIT_MERGED_NEXT;
        return split ? mt_pretok_compile(L, "pre_tokenizer Metaspace", pre->repl, strlen(pre->repl), true, &pre->re,
                                         &pre->pattern)
                     : MT_OK;
    }
    return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: type \"%.40s\" is not supported", L->path, type);
}

/* Decoder steps in the accepted order: 0 per-token, 1 ByteFallback, 2 Fuse, 3 Strip. */
static mt_status read_dec_step(mt_tok_loader *L, const cJSON *d, int *stage) {
    mt_tok_dec *dec = &L->tok->dec;
    const char *type;
    mt_status st = stage_type(L, d, "decoder", &type);
    if (st) return st;
    if (!type) return bad(L, "decoder: a step of a Sequence is null");
    static const char *order[] = {"Replace", "ByteFallback", "Fuse", "Strip"};
    int at = !strcmp(type, "Metaspace") ? 0 : -1;
    for (int i = 0; i < 4 && at < 0; i++)
        if (!strcmp(type, order[i])) at = i;
    if (at < 0)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: type \"%.40s\" is not supported with a model "
                          "that is not byte-level", L->path, type);
    if (at < *stage || (at == *stage && at > 0))
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: \"%s\" after \"%s\" is not supported (the order "
                          "must be Replace/Metaspace, ByteFallback, Fuse, Strip)", L->path, type, order[*stage]);
    if (at == 3 && *stage != 2)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: Strip without a Fuse before it is not supported",
                          L->path);
    *stage = at;
    if (at == 1) dec->byte_fallback = true;
    if (at == 3) {
        const char *c;
        int64_t start = 0, stop = 0;
        char ch[5];
        if ((st = mt_json_str_req(d, "content", "decoder Strip", &c, L->err)) ||
            (st = mt_json_int_opt(d, "start", "decoder Strip", 0, 1 << 20, &start, L->err)) ||
            (st = mt_json_int_opt(d, "stop", "decoder Strip", 0, 1 << 20, &stop, L->err)))
            return mt_err_prefix(L->err, "%s", L->path);
        if (!one_char(c, ch)) return bad(L, "decoder Strip: \"content\" must be one character");
        dec->strip = true;
        dec->strip_cp = mt_utf8_cp((const uint8_t *)ch, strlen(ch));
        dec->strip_start = (size_t)start;
        dec->strip_stop = (size_t)stop;
    }
    if (at != 0) return MT_OK;
    if (dec->n_step == MT_TOK_MAX_DEC)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: more than %d steps", L->path, MT_TOK_MAX_DEC);
    mt_tok_dstep *s = &dec->step[dec->n_step++];
    memset(s, 0, sizeof *s);
    if (!strcmp(type, "Metaspace")) {
        char repl[5];
        mt_prepend_scheme scheme;
        if ((st = read_metaspace(L, d, "decoder Metaspace", repl, &scheme, NULL))) return st;
        s->metaspace = true;
        s->first = scheme != MT_PREPEND_NEVER;
        dec->first_differs |= s->first;
        if ((st = mt_tok_blob_add(L, " ", 1, &s->to))) return st;
        return mt_tok_blob_add(L, repl, strlen(repl), &s->from);
    }
    const char *lit, *re, *to;
    if ((st = read_pattern(L, d, "decoder Replace", &lit, &re))) return st;
    if (re)
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder Replace: a Regex pattern is not supported", L->path);
    if (!*lit) return bad(L, "decoder Replace: empty \"String\" pattern");
    if ((st = mt_json_raw_req(d, "content", "decoder Replace", &to, L->err)))
        return mt_err_prefix(L->err, "%s", L->path);
    if ((st = mt_tok_blob_add_json(L, to, &s->to))) return st;
    return mt_tok_blob_add_json(L, lit, &s->from);
}

mt_status mt_tok_read_decoder(mt_tok_loader *L, const cJSON *root) {
    mt_tokenizer *tok = L->tok;
    for (size_t i = 0; i + 1 < tok->n_pre; i++)
        if (tok->pre[i].kind == MT_PRE_BYTELEVEL)
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: pre_tokenizer: ByteLevel must be the last step",
                              L->path);
    tok->sp = tok->n_pre == 0 || tok->pre[tok->n_pre - 1].kind != MT_PRE_BYTELEVEL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *type;
    mt_status st = stage_type(L, d, "decoder", &type);
    if (st) return st;
    if (!tok->sp) {
        if (tok->byte_fallback)
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: model.byte_fallback with a ByteLevel pre_tokenizer is "
                              "not supported", L->path);
        if (type && strcmp(type, "ByteLevel"))
            return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: type \"%.40s\" is not supported with a "
                              "ByteLevel pre_tokenizer", L->path, type);
        return MT_OK;
    }
    if (!type || !strcmp(type, "ByteLevel"))
        return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: decoder: %s needs a ByteLevel pre_tokenizer last (BPE "
                          "without one works on characters)", L->path, type ? "ByteLevel" : "null");
    int stage = 0;
    if (strcmp(type, "Sequence")) return read_dec_step(L, d, &stage);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
    if (!cJSON_IsArray(list)) return bad(L, "decoder.decoders must be an array");
    for (const cJSON *c = list->child; c; c = c->next)
        if ((st = read_dec_step(L, c, &stage))) return st;
    return MT_OK;
}

/* Adds ids around what the post-processor has so far: a later processor of a Sequence wraps an earlier one. */
static mt_status post_add(mt_tok_loader *L, const int32_t *ids, size_t n, bool prefix) {
    mt_tokenizer *tok = L->tok;
    if (tok->n_post + n > MT_TOK_MAX_POST)
        return mt_err_set(L->err, MT_ERR_LIMIT, "%s: post_processor adds more than %d ids", L->path, MT_TOK_MAX_POST);
    int32_t *at = tok->post_ids + (prefix ? 0 : tok->n_post);
    memmove(at + n, at, (size_t)(tok->post_ids + tok->n_post - at) * sizeof(int32_t));
    memcpy(at, ids, n * sizeof(int32_t));
    tok->n_post += n;
    if (prefix) tok->n_post_prefix += n;
    return MT_OK;
}

/* The ids of special_tokens[name] of a TemplateProcessing. */
static mt_status template_ids(mt_tok_loader *L, const cJSON *specials, const char *name, int32_t *ids, size_t *n) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(specials, name);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(s, "ids");
    char what[200];
    snprintf(what, sizeof what, "post_processor.special_tokens[\"%.60s\"]", name);
    if (!cJSON_IsArray(arr))
        return mt_err_set(L->err, MT_ERR_FORMAT, "%s: %s: missing array \"ids\"", L->path, what);
    int64_t v[MT_TOK_MAX_POST];
    mt_status st = mt_json_int_array_opt(s, "ids", what, 0, L->tok->n_ids - 1, v, MT_TOK_MAX_POST, n, L->err);
    if (st) return mt_err_prefix(L->err, "%s", L->path);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)v[i];
    return MT_OK;
}

static mt_status read_template(mt_tok_loader *L, const cJSON *p) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single)) return bad(L, "post_processor TemplateProcessing: \"single\" must be an array");
    int32_t before[MT_TOK_MAX_POST], after[MT_TOK_MAX_POST], ids[MT_TOK_MAX_POST];
    size_t nb = 0, na = 0, seen_a = 0, n;
    mt_status st;
    for (const cJSON *e = single->child; e; e = e->next) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const char *id = NULL;
        if (seq) {
            if (mt_json_str_req(seq, "id", "", &id, NULL) || strcmp(id, "A"))
                return bad(L, "post_processor TemplateProcessing: \"single\" may only hold Sequence \"A\"");
            seen_a++;
            continue;
        }
        if (!sp || mt_json_str_req(sp, "id", "", &id, NULL))
            return bad(L, "post_processor TemplateProcessing: each piece must be {\"SpecialToken\": {\"id\": ...}} or "
                       "{\"Sequence\": {\"id\": \"A\"}}");
        if ((st = template_ids(L, specials, id, ids, &n))) return st;
        if ((seen_a ? na : nb) + n > MT_TOK_MAX_POST)
            return mt_err_set(L->err, MT_ERR_LIMIT, "%s: post_processor adds more than %d ids", L->path,
                              MT_TOK_MAX_POST);
        memcpy(seen_a ? after + na : before + nb, ids, n * sizeof(int32_t));
        *(seen_a ? &na : &nb) += n;
    }
    if (seen_a != 1) return bad(L, "post_processor TemplateProcessing: \"single\" must hold Sequence \"A\" once");
    if ((st = post_add(L, before, nb, true))) return st;
    return post_add(L, after, na, false);
}

/* BertProcessing / RobertaProcessing: {"cls": ["[CLS]", 101], "sep": ["[SEP]", 102]} -> cls A sep. */
static mt_status read_cls_sep(mt_tok_loader *L, const cJSON *p) {
    int32_t ids[2];
    static const char *keys[] = {"cls", "sep"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
        const cJSON *id = cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2 ? a->child->next : NULL;
        double d = id && cJSON_IsNumber(id) ? id->valuedouble : -1;
        if (!(d >= 0 && d < L->tok->n_ids) || d != (double)(int32_t)d)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s: post_processor: \"%s\" must be [token, id] with an id in "
                              "the vocab", L->path, keys[i]);
        ids[i] = (int32_t)d;
    }
    mt_status st = post_add(L, &ids[0], 1, true);
    return st ? st : post_add(L, &ids[1], 1, false);
}

mt_status mt_tok_read_post(mt_tok_loader *L, const cJSON *p, int depth) {
    const char *type;
    mt_status st = stage_type(L, p, "post_processor", &type);
    if (st || !type || !strcmp(type, "ByteLevel")) return st; /* ByteLevel only trims offsets */
    if (!strcmp(type, "Sequence") && depth < 4) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors");
        if (!cJSON_IsArray(list)) return bad(L, "post_processor.processors must be an array");
        for (const cJSON *c = list->child; c; c = c->next)
            if ((st = mt_tok_read_post(L, c, depth + 1))) return st;
        return MT_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) return read_template(L, p);
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) return read_cls_sep(L, p);
    return mt_err_set(L->err, MT_ERR_UNSUPPORTED, "%s: post_processor: type \"%.40s\" is not supported", L->path,
                      type);
}
