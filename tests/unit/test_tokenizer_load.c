/* text/tokenizer: tokenizer.json rejected with the right code and a message naming the field; allocation failure at
 * every step of load and encode; tokenizer_config.json's split_special_tokens. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "test_tokenizer_tiny.h"
#include "text/tokenizer.h"

/* Replaces (json != NULL) or deletes the item at a '/'-separated path such as "model/merges/0". */
static void mutate(cJSON *root, const char *path, const char *json) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *parent = root;
    char *key = buf, *slash;
    while ((slash = strchr(key, '/'))) {
        *slash = 0;
        parent = cJSON_IsArray(parent) ? cJSON_GetArrayItem(parent, atoi(key)) : cJSON_GetObjectItem(parent, key);
        key = slash + 1;
    }
    if (cJSON_IsArray(parent)) {
        if (json) cJSON_ReplaceItemInArray(parent, atoi(key), cJSON_Parse(json));
        else cJSON_DeleteItemFromArray(parent, atoi(key));
    } else if (!json) {
        cJSON_DeleteItemFromObject(parent, key);
    } else if (cJSON_GetObjectItem(parent, key)) {
        cJSON_ReplaceItemInObject(parent, key, cJSON_Parse(json));
    } else {
        cJSON_AddItemToObject(parent, key, cJSON_Parse(json));
    }
}

static void test_bad_files(void) {
    static const struct { const char *path, *json; mt_status code; const char *says; } cases[] = {
        {"model", NULL, MT_ERR_FORMAT, "\"model\""},
        {"model/type", "\"WordPiece\"", MT_ERR_UNSUPPORTED, "model.type"},
        {"model/vocab", "[]", MT_ERR_FORMAT, "model.vocab"},
        {"model/vocab", "{}", MT_ERR_FORMAT, "model.vocab"},
        {"model/vocab/a", "-1", MT_ERR_FORMAT, "model.vocab[\"a\"]"},
        {"model/vocab/a", "\"7\"", MT_ERR_FORMAT, "model.vocab[\"a\"]"},
        {"model/vocab/a", "1.5", MT_ERR_FORMAT, "model.vocab[\"a\"]"},
        {"model/vocab/a", "1e12", MT_ERR_FORMAT, "model.vocab[\"a\"]"},
        {"model/vocab/a", "98", MT_ERR_FORMAT, "used twice"},
        {"model/merges", "{}", MT_ERR_FORMAT, "model.merges"},
        {"model/merges/0", "\"bc\"", MT_ERR_FORMAT, "model.merges[0]"},
        {"model/merges/0", "\"b c d\"", MT_ERR_FORMAT, "model.merges[0]"},
        {"model/merges/0", "[\"b\"]", MT_ERR_FORMAT, "model.merges[0]"},
        {"model/merges/0", "[1, 2]", MT_ERR_FORMAT, "model.merges[0]"},
        {"model/merges/0", "\"b zz\"", MT_ERR_FORMAT,
         "model.merges[0] (\"b\", \"zz\"): its second part \"zz\" is not in model.vocab"},
        {"model/merges/2", "[\"zz\", \"c\"]", MT_ERR_FORMAT,
         "model.merges[2] (\"zz\", \"c\"): its first part \"zz\" is not in model.vocab"},
        {"model/merges/0", "\"a c\"", MT_ERR_FORMAT,
         "model.merges[0] (\"a\", \"c\"): the merged token \"ac\" is not in model.vocab"},
        {"model/dropout", "0.1", MT_ERR_UNSUPPORTED, "dropout"},
        {"model/byte_fallback", "true", MT_ERR_UNSUPPORTED, "byte_fallback"},
        {"model/continuing_subword_prefix", "\"##\"", MT_ERR_UNSUPPORTED, "continuing_subword_prefix"},
        {"model/unk_token", "\"<unk>\"", MT_ERR_FORMAT, "unk_token"},
        {"added_tokens", "{}", MT_ERR_FORMAT, "added_tokens"},
        {"added_tokens/0", "7", MT_ERR_FORMAT, "added_tokens[0]"},
        {"added_tokens/1/id", NULL, MT_ERR_FORMAT, "added_tokens[1]: missing field \"id\""},
        {"added_tokens/1/id", "-3", MT_ERR_FORMAT, "added_tokens[1]"},
        {"added_tokens/1/content", "\"\"", MT_ERR_FORMAT, "added_tokens[1]"},
        {"added_tokens/1/special", "\"yes\"", MT_ERR_FORMAT, "\"special\""},
        {"normalizer", "{\"type\": \"Lowercase\"}", MT_ERR_UNSUPPORTED, "Lowercase"},
        {"normalizer", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Strip\"}]}",
         MT_ERR_UNSUPPORTED, "Strip"},
        {"normalizer", "[]", MT_ERR_FORMAT, "normalizer"},
        {"pre_tokenizer", "{\"type\": \"Whitespace\"}", MT_ERR_UNSUPPORTED, "Whitespace"},
        {"pre_tokenizer", "null", MT_ERR_UNSUPPORTED, "ByteLevel"},
        {"pre_tokenizer",
         "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Digits\"}]}",
         MT_ERR_UNSUPPORTED, "ByteLevel"},
        {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": 3}", MT_ERR_FORMAT, "pretokenizers"},
        {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                          "\"(\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}",
         MT_ERR_UNSUPPORTED, "PCRE2"},
        {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                          "\"a\"}, \"behavior\": \"Sideways\"}, {\"type\": \"ByteLevel\"}]}",
         MT_ERR_UNSUPPORTED, "Sideways"},
        {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": 5, "
                          "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}",
         MT_ERR_FORMAT, "pattern"},
        {"pre_tokenizer/use_regex", "1", MT_ERR_FORMAT, "use_regex"},
        {"decoder", "{\"type\": \"WordPiece\"}", MT_ERR_UNSUPPORTED, "decoder"},
        {"decoder", "3", MT_ERR_FORMAT, "decoder"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        cJSON *root = tiny_tokenizer(false);
        mutate(root, cases[i].path, cases[i].json);
        mt_tokenizer *tok = (mt_tokenizer *)&cases; /* must stay untouched on failure */
        mt_err err = {0};
        mt_status st = tiny_load(root, &tok, &err);
        CHECK_MSG(st == cases[i].code && strstr(err.msg, cases[i].says) && strstr(err.msg, "tiny.json") &&
                      tok == (mt_tokenizer *)&cases,
                  "case %zu (%s = %s): got %d \"%s\"", i, cases[i].path, cases[i].json ? cases[i].json : "deleted",
                  (int)st, err.msg);
        if (st == MT_OK) mt_tokenizer_free(tok);
    }
    mt_tokenizer *tok;
    mt_err err;
    /* an empty vocabulary with no merges would give every text zero tokens */
    cJSON *empty = tiny_tokenizer(false);
    mutate(empty, "model/vocab", "{}");
    mutate(empty, "model/merges", "[]");
    mutate(empty, "added_tokens", "[]");
    CHECK(tiny_load(empty, &tok, &err) == MT_ERR_FORMAT && strstr(err.msg, "model.vocab is empty"));
    /* Replace steps that feed each other: refused once the text grows past its bound, not after 1.5 GB */
    cJSON *chain = tiny_tokenizer(false);
    char seq[1024] = "{\"type\": \"Sequence\", \"normalizers\": [";
    for (int i = 0; i < 8; i++)
        strcat(seq, i ? ", {\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, \"content\": \"aaaaaaaa\"}"
                      : "{\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, \"content\": \"aaaaaaaa\"}");
    strcat(seq, "]}");
    mutate(chain, "normalizer", seq);
    CHECK(tiny_load(chain, &tok, &err) == MT_OK);
    if (tok) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(mt_tokenizer_encode(tok, "aaaaaaaaaa", 10, false, &ids, &n, &err) == MT_ERR_LIMIT &&
              strstr(err.msg, "normalizer"));
        mt_free(ids);
        mt_tokenizer_free(tok);
    }
    CHECK(mt_tokenizer_load_json("{\"model\": ", 10, "cut.json", &tok, &err) == MT_ERR_FORMAT);
    CHECK(mt_tokenizer_load_json("[1]", 3, "arr.json", &tok, &err) == MT_ERR_FORMAT);
    CHECK(mt_tokenizer_load("/nonexistent/tokenizer.json", &tok, &err) == MT_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/tokenizer.json") != NULL);
}

/* A regex PCRE2 gives up on (its match limit), in a pre-tokenizer and in a normalizer, and one too long to compile:
 * each message names the file, the step and the pattern. */
static void test_regex_limits(void) {
    char text[64];
    memset(text, 'a', 40);
    strcpy(text + 40, "!");
    static const struct { const char *path, *json, *step; } cases[] = {
        {"pre_tokenizer", "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                          "\"(a+)+$\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
         "pre_tokenizer"},
        {"normalizer", "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"(a+)+$\"}, \"content\": \"b\"}",
         "normalizer Replace"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        cJSON *root = tiny_tokenizer(false);
        mutate(root, cases[i].path, cases[i].json);
        mt_tokenizer *tok = NULL;
        mt_err err = {0};
        CHECK(tiny_load(root, &tok, &err) == MT_OK);
        if (!tok) continue;
        int32_t *ids = NULL;
        size_t n = 0;
        mt_status st = mt_tokenizer_encode(tok, text, strlen(text), false, &ids, &n, &err);
        char want[128];
        snprintf(want, sizeof want, "tiny.json: %s: pattern \"(a+)+$\": regex match failed on a piece of 41 bytes",
                 cases[i].step);
        CHECK_MSG(st == MT_ERR_LIMIT && ids == NULL && strstr(err.msg, want), "case %zu: %d \"%s\"", i, (int)st,
                  err.msg);
        mt_free(ids);
        mt_tokenizer_free(tok);
    }
    size_t big = 70000;
    char *pre = malloc(big + 200);
    int at = snprintf(pre, 200, "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"");
    memset(pre + at, 'x', big);
    strcpy(pre + at + big, "\"}, \"behavior\": \"Isolated\"}");
    cJSON *root = tiny_tokenizer(false);
    mutate(root, "pre_tokenizer", pre);
    free(pre);
    mt_tokenizer *tok = NULL;
    mt_err err = {0};
    CHECK(tiny_load(root, &tok, &err) == MT_ERR_LIMIT && tok == NULL);
    CHECK_MSG(strstr(err.msg, "tiny.json: pre_tokenizer Split: pattern \"xxxx") &&
                  strstr(err.msg, "is 70000 bytes, over the 65536 allowed"),
              "%s", err.msg);
}

/* The k-th allocation fails, for every k, in load and in encode: a clean error or success, never a crash or leak
 * (the sanitizer build checks the leaks). */
static void test_alloc_failure(void) {
    cJSON *root = tiny_tokenizer(false);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t len = strlen(json);
    int loaded = 0, failed = 0;
    for (size_t k = 1; k < 400 && !loaded; k++) {
        mt_tokenizer *tok = NULL;
        mt_err err;
        mt_alloc_fail_after(k);
        mt_status st = mt_tokenizer_load_json(json, len, "tiny.json", &tok, &err);
        mt_alloc_fail_after(0);
        if (st == MT_OK) loaded = 1;
        else failed += st == MT_ERR_NOMEM;
        mt_tokenizer_free(tok);
    }
    CHECK(loaded && failed > 5);
    mt_tokenizer *tok;
    mt_err err;
    CHECK(mt_tokenizer_load_json(json, len, "tiny.json", &tok, &err) == MT_OK);
    const char text[] = "hello <|end|> caf\xc3\xa9 e\xcc\x81\xff  <mask> aaa 123\n";
    int encoded = 0;
    for (size_t k = 1; k < 100 && !encoded; k++) {
        int32_t *ids = NULL;
        size_t n = 0;
        mt_alloc_fail_after(k);
        mt_status st = mt_tokenizer_encode(tok, text, sizeof text - 1, true, &ids, &n, &err);
        mt_alloc_fail_after(0);
        CHECK(st == MT_OK || (st == MT_ERR_NOMEM && ids == NULL));
        if (st == MT_OK) encoded = 1;
        mt_free(ids);
    }
    CHECK(encoded);
    mt_tokenizer_free(tok);
    cJSON_free(json);
}

/* tokenizer_config.json beside tokenizer.json: split_special_tokens=true makes specials text in every encode, as
 * transformers' encode_special_tokens does; a malformed config is rejected naming it. */
static void test_config_split_special(void) {
    char dir[] = "/tmp/mt_tok_cfg_XXXXXX", json_path[64], cfg_path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(json_path, sizeof json_path, "%s/tokenizer.json", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
    cJSON *root = tiny_tokenizer(false);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    FILE *f = fopen(json_path, "w");
    fputs(json, f);
    fclose(f);
    cJSON_free(json);
    static const struct { const char *cfg; mt_status code; bool split; } cases[] = {
        {NULL, MT_OK, false},
        {"{\"split_special_tokens\": false}", MT_OK, false},
        {"{\"model_max_length\": 8}", MT_OK, false},
        {"{\"split_special_tokens\": true}", MT_OK, true},
        {"{\"split_special_tokens\": \"yes\"}", MT_ERR_FORMAT, false},
        {"[true]", MT_ERR_FORMAT, false},
        {"{", MT_ERR_FORMAT, false},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        remove(cfg_path);
        if (cases[i].cfg) {
            f = fopen(cfg_path, "w");
            fputs(cases[i].cfg, f);
            fclose(f);
        }
        mt_tokenizer *tok = NULL;
        mt_err err = {0};
        mt_status st = mt_tokenizer_load(json_path, &tok, &err);
        CHECK_MSG(st == cases[i].code, "case %zu: status %d (%s)", i, st, err.msg);
        if (st) {
            CHECK_MSG(strstr(err.msg, "tokenizer_config.json") != NULL, "case %zu: %s", i, err.msg);
            continue;
        }
        CHECK(mt_tokenizer_splits_special(tok) == cases[i].split);
        int32_t *ids;
        size_t n;
        CHECK(mt_tokenizer_encode(tok, "<|end|><tool>", 13, true, &ids, &n, &err) == MT_OK);
        if (cases[i].split) /* the special one as its 7 bytes; the non-special <tool> still matches */
            CHECK(n == 8 && ids[0] == '<' && ids[6] == '>' && ids[7] == 301);
        else
            CHECK(n == 2 && ids[0] == 300 && ids[1] == 301);
        mt_free(ids);
        mt_tokenizer_free(tok);
    }
    remove(cfg_path);
    remove(json_path);
    rmdir(dir);
}

int main(void) {
    test_bad_files();
    test_regex_limits();
    test_alloc_failure();
    test_config_split_special();
    return check_report();
}
