/* text/tokenizer, SentencePiece-style BPE: a tiny hand-written tokenizer.json in Llama 2's layout, each case
 * worked out by hand from tokenizers' Rust source (models/bpe/model.rs merge_word, normalizers/{prepend,replace}.rs,
 * pre_tokenizers/metaspace.rs, decoders/{byte_fallback,fuse,strip,metaspace}.rs, processors/template.rs), where
 * transformers.js differs (an invalid byte run, Metaspace) and tests/text cannot check.
 *
 *   | id      | token          | merge  | rank |      normalizer  Prepend "▁", Replace " " -> "▁"
 *   |---------|----------------|--------|------|      pre_tokenizer  null
 *   | 0 1 2   | <unk> <s> </s> |        |      |      decoder  Replace "▁" -> " ", ByteFallback, Fuse,
 *   | 3 + b   | <0xbb>, b != E6|        |      |               Strip " " 1 0
 *   | 259     | ▁              |        |      |      post_processor  TemplateProcessing <s> A </s>
 *   | 260-264 | a b c h i      |        |      |      byte_fallback, fuse_unk, unk_token <unk>
 *   | 265     | ▁h             | ▁ h    | 0    |
 *   | 266     | hi             | h i    | 1    |
 *   | 267     | ▁hi            | ▁h i   | 2    |
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "text/tokenizer.h"

#define B(x) (3 + (x)) /* the id of byte token <0xx> */

static cJSON *sp_tokenizer(void) {
    cJSON *root = cJSON_Parse(
        "{\"added_tokens\": ["
        "  {\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},"
        "  {\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false},"
        "  {\"id\": 2, \"content\": \"</s>\", \"special\": true, \"normalized\": false}],"
        " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"▁\"},"
        "   {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]},"
        " \"pre_tokenizer\": null,"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
        "   {\"Sequence\": {\"id\": \"A\"}}, {\"SpecialToken\": {\"id\": \"</s>\"}}], \"special_tokens\": {"
        "   \"<s>\": {\"id\": \"<s>\", \"ids\": [1]}, \"</s>\": {\"id\": \"</s>\", \"ids\": [2]}}},"
        " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
        "   {\"type\": \"Replace\", \"pattern\": {\"String\": \"▁\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"},"
        "   {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
        " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"fuse_unk\": true,"
        "   \"merges\": [\"▁ h\", \"h i\", \"▁h i\"]}}");
    cJSON *vocab = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "model"), "vocab");
    static const char *named[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) cJSON_AddNumberToObject(vocab, named[i], i);
    char name[8];
    for (int b = 0; b < 256; b++) {
        if (b == 0xE6) continue; /* so that 文 (E6 96 87) has no byte fallback and becomes <unk> */
        snprintf(name, sizeof name, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, name, B(b));
    }
    static const char *words[] = {"▁", "a", "b", "c", "h", "i", "▁h", "hi", "▁hi"};
    for (int i = 0; i < 9; i++) cJSON_AddNumberToObject(vocab, words[i], 259 + i);
    return root;
}

static mt_tokenizer *load(cJSON *root) {
    char *json = cJSON_PrintUnformatted(root);
    mt_tokenizer *tok = NULL;
    mt_err err;
    mt_status st = mt_tokenizer_load_json(json, strlen(json), "sp.json", &tok, &err);
    CHECK_MSG(st == MT_OK, "%s", err.msg);
    free(json);
    cJSON_Delete(root);
    return st == MT_OK ? tok : NULL;
}

static void expect_ids(const mt_tokenizer *tok, const char *text, bool add_special, const int32_t *want, size_t n_want) {
    mt_tokenizer_encode_opts opts = mt_tokenizer_encode_default_opts();
    opts.add_special_tokens = add_special;
    int32_t *ids;
    size_t n;
    mt_err err;
    CHECK(mt_tokenizer_encode_with(tok, text, strlen(text), &opts, &ids, &n, &err) == MT_OK);
    bool same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof(int32_t)) == 0);
    CHECK_MSG(same, "encode \"%s\": got %zu ids, first %d", text, n, n ? ids[0] : -1);
    mt_free(ids);
}

/* decode, and the stream's pieces joined, both equal want */
static void expect_text(const mt_tokenizer *tok, const int32_t *ids, size_t n, bool skip, const char *want) {
    char *text;
    size_t len;
    mt_err err;
    CHECK(mt_tokenizer_decode(tok, ids, n, skip, &text, &len, &err) == MT_OK);
    CHECK_MSG(len == strlen(want) && memcmp(text, want, len) == 0, "decode: \"%s\", want \"%s\"", text, want);
    mt_free(text);
    mt_detok_stream *s;
    CHECK(mt_detok_stream_new(tok, skip, &s, &err) == MT_OK);
    char joined[256] = "";
    const char *piece;
    size_t pn;
    for (size_t i = 0; i < n; i++) {
        CHECK(mt_detok_stream_push(s, ids[i], &piece, &pn, &err) == MT_OK);
        strncat(joined, piece, sizeof joined - strlen(joined) - 1);
    }
    CHECK(mt_detok_stream_flush(s, &piece, &pn, &err) == MT_OK);
    strncat(joined, piece, sizeof joined - strlen(joined) - 1);
    CHECK_MSG(!strcmp(joined, want), "stream: \"%s\", want \"%s\"", joined, want);
    mt_detok_stream_free(s);
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

static void test_encode(void) {
    mt_tokenizer *tok = load(sp_tokenizer());
    if (!tok) return;
    expect_ids(tok, "hi ab", false, IDS(267, 259, 260, 261));
    expect_ids(tok, "hi", true, IDS(1, 267, 2));
    expect_ids(tok, "", true, IDS(1, 2));
    /* each piece between special tokens gets its own Prepend */
    expect_ids(tok, "<s>hi</s>", false, IDS(1, 267, 2));
    /* a character outside the vocab: its bytes */
    expect_ids(tok, "中", false, IDS(259, B(0xE4), B(0xB8), B(0xAD)));
    /* 文 lacks <0xE6>, so it is <unk>; two of them fuse; byte tokens go out before a waiting unk (tokenizers) */
    expect_ids(tok, "文文", false, IDS(259, 0));
    expect_ids(tok, "文中a", false, IDS(259, B(0xE4), B(0xB8), B(0xAD), 0, 260));
    mt_tokenizer_free(tok);

    cJSON *root = sp_tokenizer();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "model"), "fuse_unk", cJSON_CreateFalse());
    cJSON *norm = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "normalizer"), "normalizers");
    cJSON_InsertItemInArray(norm, 0, cJSON_Parse("{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\s{2,}\"}, "
                                                 "\"content\": \" \"}"));
    if (!(tok = load(root))) return;
    expect_ids(tok, "文文", false, IDS(259, 0, 0));
    expect_ids(tok, "a \t\n b", false, IDS(259, 260, 259, 261));
    mt_tokenizer_free(tok);
}

static void test_decode(void) {
    mt_tokenizer *tok = load(sp_tokenizer());
    if (!tok) return;
    expect_text(tok, IDS(267, 259, 260), false, "hi a");      /* Strip takes the one leading space */
    expect_text(tok, IDS(259, 259, 260), false, " a");        /* and only one */
    expect_text(tok, IDS(1, 267, 2), false, "<s> hi</s>");    /* after <s> the space stays */
    expect_text(tok, IDS(1, 267, 2), true, "hi");             /* special tokens are gone before Strip */
    expect_text(tok, IDS(B(0xE4), B(0xB8), B(0xAD), 260), false, "\xe4\xb8\xad" "a");
    /* an invalid run: one U+FFFD per byte of it (tokenizers; a lossy UTF-8 decode would give one here) */
    expect_text(tok, IDS(B(0xE4), B(0xB8), 260), false, "\xef\xbf\xbd\xef\xbf\xbd" "a");
    expect_text(tok, IDS(B(0x41), B(0xE4)), false, "\xef\xbf\xbd\xef\xbf\xbd");
    expect_text(tok, IDS(B(0x41), 1, B(0x42)), false, "A<s>B");
    expect_text(tok, IDS(B(0xE4), 1, B(0xB8), B(0xAD)), true, "\xe4\xb8\xad"); /* skipped: the runs join */
    expect_text(tok, IDS(B(0x20), 260), false, "a");                            /* Strip after the byte run */
    size_t len;
    const char *t = mt_tokenizer_id_to_token(tok, 265, &len);
    CHECK(t && len == 4 && !memcmp(t, "\xe2\x96\x81h", 4));
    CHECK(mt_tokenizer_id_to_token(tok, B(0xE6), &len) == NULL && mt_tokenizer_id_to_token(tok, 268, &len) == NULL);
    mt_tokenizer_free(tok);
}

/* Metaspace pre-tokenizer and decoder, as Mistral's newer files have them; and the post-processor Sequence. */
static void test_metaspace(void) {
    static const struct { const char *scheme; int32_t first, after_special; } cases[] = {
        {"first", 267, 266}, {"always", 267, 267}, {"never", 266, 266}};
    for (size_t i = 0; i < 3; i++) {
        cJSON *root = sp_tokenizer();
        cJSON_ReplaceItemInObject(root, "normalizer", cJSON_CreateNull());
        char pre[200];
        snprintf(pre, sizeof pre, "{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"%s\", "
                 "\"split\": true}", cases[i].scheme);
        cJSON_ReplaceItemInObject(root, "pre_tokenizer", cJSON_Parse(pre));
        cJSON_ReplaceItemInObject(root, "decoder", cJSON_Parse(pre));
        cJSON_ReplaceItemInObject(root, "post_processor", cJSON_Parse(
            "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": \"TemplateProcessing\", "
            "\"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}, {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": "
            "{\"<s>\": {\"id\": \"<s>\", \"ids\": [1]}}}, {\"type\": \"BertProcessing\", \"cls\": [\"</s>\", 2], "
            "\"sep\": [\"<s>\", 1]}]}"));
        mt_tokenizer *tok = load(root);
        if (!tok) return;
        expect_ids(tok, "hi", false, &cases[i].first, 1);
        expect_ids(tok, "<s>hi", false, IDS(1, cases[i].after_special));
        expect_ids(tok, " hi", false, IDS(267));
        expect_ids(tok, "hi", true, IDS(2, 1, cases[i].first, 1));
        if (cases[i].first == 267) expect_ids(tok, "hi hi", false, IDS(267, 267));
        if (i == 0) {
            /* the first token loses every ▁, the others turn them into spaces */
            expect_text(tok, IDS(267, 267), false, "hi hi");
            expect_text(tok, IDS(259, 267), false, " hi");
            expect_text(tok, IDS(1, 267), true, "hi");
        } else if (i == 2) {
            expect_text(tok, IDS(267, 267), false, " hi hi");
        }
        mt_tokenizer_free(tok);
    }
}

/* Replaces (json != NULL) or deletes key in the object at path ("" = root, "model", "decoder/decoders/1"). */
static void set(cJSON *root, const char *path, const char *key, const char *json) {
    cJSON *o = root;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strtok(buf, "/"); p; p = strtok(NULL, "/"))
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, atoi(p)) : cJSON_GetObjectItem(o, p);
    cJSON_DeleteItemFromObject(o, key);
    if (json) cJSON_AddItemToObject(o, key, cJSON_Parse(json));
}

static void test_bad_files(void) {
    static const struct { const char *path, *key, *json; mt_status code; const char *says; } cases[] = {
        {"", "decoder", "{\"type\": \"ByteLevel\"}", MT_ERR_UNSUPPORTED, "ByteLevel"},
        {"", "decoder", "null", MT_ERR_UNSUPPORTED, "decoder"},
        {"", "decoder", "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, {\"type\": \"ByteFallback\"}]}",
         MT_ERR_UNSUPPORTED, "ByteFallback"},
        {"", "decoder", "{\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}", MT_ERR_UNSUPPORTED,
         "Fuse"},
        {"", "decoder", "{\"type\": \"Sequence\", \"decoders\": 3}", MT_ERR_FORMAT, "decoder.decoders"},
        {"", "decoder", "{\"type\": \"CTC\"}", MT_ERR_UNSUPPORTED, "CTC"},
        {"decoder/decoders/0", "pattern", "{\"Regex\": \" \"}", MT_ERR_UNSUPPORTED, "Regex"},
        {"decoder/decoders/0", "content", NULL, MT_ERR_FORMAT, "content"},
        {"decoder/decoders/3", "content", "\"ab\"", MT_ERR_FORMAT, "Strip"},
        {"decoder/decoders/3", "start", "-1", MT_ERR_FORMAT, "start"},
        {"normalizer/normalizers/0", "prepend", NULL, MT_ERR_FORMAT, "prepend"},
        {"normalizer/normalizers/1", "pattern", "\"x\"", MT_ERR_FORMAT, "pattern"},
        {"normalizer/normalizers/1", "pattern", "{\"String\": \"\"}", MT_ERR_FORMAT, "empty"},
        {"normalizer/normalizers/1", "pattern", "{\"Regex\": \"(\"}", MT_ERR_UNSUPPORTED, "PCRE2"},
        {"normalizer/normalizers/1", "content", "7", MT_ERR_FORMAT, "content"},
        {"", "pre_tokenizer", "{\"type\": \"Metaspace\", \"replacement\": \"__\"}", MT_ERR_FORMAT, "replacement"},
        {"", "pre_tokenizer", "{\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\": \"sometimes\"}",
         MT_ERR_FORMAT, "sometimes"},
        {"", "pre_tokenizer", "{\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\": \"always\", "
                              "\"add_prefix_space\": false}", MT_ERR_FORMAT, "add_prefix_space"},
        {"", "pre_tokenizer", "{\"type\": \"Metaspace\"}", MT_ERR_FORMAT, "replacement"},
        {"", "post_processor", "{\"type\": \"Unknown\"}", MT_ERR_UNSUPPORTED, "Unknown"},
        {"", "post_processor", "{\"type\": \"Sequence\", \"processors\": {}}", MT_ERR_FORMAT, "processors"},
        {"post_processor", "single", "[{\"Sequence\": {\"id\": \"B\"}}]", MT_ERR_FORMAT, "Sequence \"A\""},
        {"post_processor", "single", "[{\"SpecialToken\": {\"id\": \"<s>\"}}]", MT_ERR_FORMAT, "once"},
        {"post_processor", "single", "[{\"Other\": 1}, {\"Sequence\": {\"id\": \"A\"}}]", MT_ERR_FORMAT, "SpecialToken"},
        {"post_processor", "special_tokens", "{}", MT_ERR_FORMAT, "special_tokens[\"<s>\"]"},
        {"post_processor", "special_tokens", "{\"<s>\": {\"ids\": [999]}, \"</s>\": {\"ids\": [2]}}", MT_ERR_FORMAT,
         "special_tokens[\"<s>\"]"},
        {"", "post_processor", "{\"type\": \"BertProcessing\", \"cls\": [\"x\", 5000], \"sep\": [\"y\", 1]}",
         MT_ERR_FORMAT, "cls"},
        {"model", "fuse_unk", "\"yes\"", MT_ERR_FORMAT, "fuse_unk"},
        {"model", "unk_token", "\"<nope>\"", MT_ERR_FORMAT, "unk_token"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        cJSON *root = sp_tokenizer();
        set(root, cases[i].path, cases[i].key, cases[i].json);
        char *json = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        mt_tokenizer *tok = NULL;
        mt_err err = {0};
        mt_status st = mt_tokenizer_load_json(json, strlen(json), "sp.json", &tok, &err);
        CHECK_MSG(st == cases[i].code && strstr(err.msg, "sp.json") && strstr(err.msg, cases[i].says),
                  "case %zu (%s %s): status %d, \"%s\"", i, cases[i].path, cases[i].key, st, err.msg);
        CHECK(tok == NULL);
        free(json);
    }
}

/* The k-th allocation fails, for every k, in load, encode, decode and the stream: a clean error, never a crash. */
static void test_alloc_failure(void) {
    cJSON *root = sp_tokenizer();
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    int loaded = 0;
    mt_tokenizer *tok = NULL;
    mt_err err;
    for (size_t k = 1; k < 2000 && !loaded; k++) {
        mt_alloc_fail_after(k);
        mt_status st = mt_tokenizer_load_json(json, strlen(json), "sp.json", &tok, &err);
        mt_alloc_fail_after(0);
        CHECK(st == MT_OK || st == MT_ERR_NOMEM);
        loaded = st == MT_OK;
    }
    free(json);
    CHECK(loaded);
    if (!loaded) return;
    const char text[] = "hi <s>\xe4\xb8\xad\xe6\x96\x87 ab\xff";
    const int32_t ids[] = {1, 267, B(0xE4), B(0xB8), 260, 0, 259};
    int done = 0;
    for (size_t k = 1; k < 200 && done < 3; k++) {
        int32_t *out = NULL;
        size_t n;
        char *s = NULL;
        mt_detok_stream *ds = NULL;
        const char *piece;
        mt_alloc_fail_after(k);
        mt_tokenizer_encode_opts opts = mt_tokenizer_encode_default_opts();
        opts.add_special_tokens = true;
        mt_status a = mt_tokenizer_encode_with(tok, text, sizeof text - 1, &opts, &out, &n, &err);
        mt_status b = mt_tokenizer_decode(tok, ids, MT_ARRAY_LEN(ids), false, &s, &n, &err);
        mt_status c = mt_detok_stream_new(tok, false, &ds, &err);
        for (size_t i = 0; !c && i < MT_ARRAY_LEN(ids); i++) c = mt_detok_stream_push(ds, ids[i], &piece, &n, &err);
        if (!c) c = mt_detok_stream_flush(ds, &piece, &n, &err);
        mt_alloc_fail_after(0);
        CHECK((a == MT_OK || a == MT_ERR_NOMEM) && (b == MT_OK || b == MT_ERR_NOMEM) &&
              (c == MT_OK || c == MT_ERR_NOMEM));
        done = (a == MT_OK) + (b == MT_OK) + (c == MT_OK);
        mt_free(out);
        mt_free(s);
        mt_detok_stream_free(ds);
    }
    CHECK(done == 3);
    mt_tokenizer_free(tok);
}

/* U+0000 written \u0000 in tokenizer.json (vocab keys, merges in both forms, a Replace pattern and its content) is a
 * 0 byte of the text, never where a string ends. Normalized, "a\0\0\0a\0" is "az\0\0a\0" (Replace is leftmost and
 * does not look again at what it wrote); merge rank 0 (a, \0) goes first, then rank 1 (z, \0). */
static void test_nul(void) {
    const char *json =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false}],"
        " \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u0000\\u0000\"},"
        "   \"content\": \"z\\u0000\"},"
        " \"pre_tokenizer\": null, \"decoder\": {\"type\": \"Fuse\"},"
        " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"merges\": [\"a \\u0000\", [\"z\", \"\\u0000\"]],"
        "   \"vocab\": {\"<unk>\": 0, \"a\": 1, \"\\u0000\": 2, \"z\": 3, \"a\\u0000\": 4, \"z\\u0000\": 5}}}";
    mt_tokenizer *tok = NULL;
    mt_err err;
    CHECK_MSG(mt_tokenizer_load_json(json, strlen(json), "nul.json", &tok, &err) == MT_OK, "%s", err.msg);
    if (!tok) return;
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(mt_tokenizer_encode(tok, "a\0\0\0a\0", 6, false, &ids, &n, &err) == MT_OK);
    static const int32_t want[] = {1, 5, 2, 4};
    CHECK_MSG(n == 4 && memcmp(ids, want, sizeof want) == 0, "%zu ids, first %d", n, n ? ids[0] : -1);
    char *text = NULL;
    size_t len = 0;
    CHECK(ids && mt_tokenizer_decode(tok, ids, n, false, &text, &len, &err) == MT_OK);
    CHECK(text && len == 6 && memcmp(text, "az\0\0a\0", 6) == 0);
    mt_free(text);
    mt_free(ids);
    mt_tokenizer_free(tok);
}

int main(void) {
    test_nul();
    test_encode();
    test_decode();
    test_metaspace();
    test_bad_files();
    test_alloc_failure();
    return check_report();
}
