/* SentencePiece's tokenizer.model (text/spm.h): a hand-made model encoded as SentencePiece's BPE would, the writer
 * and reader agreeing, and every malformed input refused with a message naming what is wrong: truncated at every
 * byte, a wire type the proto has not, a negative length, a NaN score, duplicate pieces, no unknown piece, byte
 * pieces without byte_fallback, unsupported model types, a charsmap whose trie does not fit, an added token id out
 * of range; allocation failures at every step of a load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "check.h"
#include "text/spm.h"
#include "text/tokenizer.h"

#define META "\xE2\x96\x81"

static mt_spm_piece pieces[] = {
    {"<unk>", 5, 0, MT_SPM_UNKNOWN}, {"<s>", 3, 0, MT_SPM_CONTROL}, {"</s>", 4, 0, MT_SPM_CONTROL},
    {META "ab", 5, -1, MT_SPM_NORMAL}, {META "a", 4, -2, MT_SPM_NORMAL}, {"ab", 2, -3, MT_SPM_NORMAL},
    {META, 3, -4, MT_SPM_NORMAL},      {"a", 1, -5, MT_SPM_NORMAL},      {"b", 1, -6, MT_SPM_NORMAL},
    {"<x>", 3, 0, MT_SPM_USER_DEFINED},
};

static mt_spm_model tiny(void) {
    return (mt_spm_model){.pieces = pieces, .n_pieces = MT_ARRAY_LEN(pieces), .model_type = MT_SPM_BPE, .unk_id = 0,
                          .bos_id = 1, .eos_id = 2, .pad_id = -1, .add_dummy_prefix = true, .escape_whitespaces = true};
}

static uint8_t *write_model(const mt_spm_model *m, size_t *len) {
    uint8_t *out = NULL;
    mt_err err;
    CHECK(mt_spm_write(m, &out, len, &err) == MT_OK);
    return out;
}

static void check_ids(const mt_tokenizer *tok, const char *text, bool special, const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    mt_err err;
    CHECK(mt_tokenizer_encode(tok, text, strlen(text), special, &ids, &n, &err) == MT_OK);
    bool same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK_MSG(same, "\"%s\": %zu ids, first %d", text, n, n ? ids[0] : -1);
    mt_free(ids);
}

static void test_encode(void) {
    mt_spm_model m = tiny();
    size_t len;
    uint8_t *bytes = write_model(&m, &len);
    mt_tokenizer *tok = NULL;
    mt_err err;
    CHECK(mt_tokenizer_load_spm_mem(bytes, len, "tiny.model", &tok, &err) == MT_OK);
    if (!tok) return;
    /* "▁ab▁a": "▁a" twice at -2, the leftmost first, then "▁ab" at -1 from it, then the other "▁a" */
    check_ids(tok, "ab a", false, (int32_t[]){3, 4}, 2);
    /* unknown characters: one unk per run */
    check_ids(tok, "cc d", false, (int32_t[]){6, 0, 6, 0}, 4);
    /* a user-defined piece is one frozen symbol */
    check_ids(tok, "a<x>b", false, (int32_t[]){4, 9, 8}, 3);
    /* control pieces: split on with parse_special (transformers), text for sp.encode */
    check_ids(tok, "<s>a", true, (int32_t[]){1, 4}, 2);
    check_ids(tok, "<s>a", false, (int32_t[]){6, 0, 7}, 3);
    check_ids(tok, "", false, NULL, 0);
    char *text = NULL;
    size_t n;
    CHECK(mt_tokenizer_decode(tok, (int32_t[]){3, 4}, 2, false, &text, &n, &err) == MT_OK);
    CHECK(text && !strcmp(text, "ab a"));
    mt_free(text);
    CHECK(mt_tokenizer_decode(tok, (int32_t[]){3, 10}, 2, false, &text, &n, &err) == MT_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "10") != NULL);
    mt_tokenizer_free(tok);
    mt_free(bytes);
}

/* Parsing every prefix of a valid file: accepted only whole, and each refusal says what is wrong. */
static void test_truncated(void) {
    mt_spm_model m = tiny();
    size_t len;
    uint8_t *bytes = write_model(&m, &len);
    size_t refused = 0;
    for (size_t k = 0; k < len; k++) {
        mt_spm_model back;
        mt_err err = {0};
        uint8_t *copy = malloc(k ? k : 1); /* exactly k bytes, so ASan sees a read past them */
        memcpy(copy, bytes, k);
        mt_status st = mt_spm_parse(copy, k, "cut.model", &back, &err);
        if (st == MT_OK) {
            mt_spm_model_free(&back);
        } else {
            refused++;
            CHECK_MSG(strstr(err.msg, "cut.model") != NULL, "prefix %zu: %s", k, err.msg);
        }
        free(copy);
    }
    CHECK(refused > len / 2);
    mt_free(bytes);
}

static void expect(const uint8_t *bytes, size_t len, mt_status code, const char *needle) {
    mt_spm_model back;
    mt_err err = {0};
    mt_status st = mt_spm_parse(bytes, len, "bad.model", &back, &err);
    if (st == MT_OK) mt_spm_model_free(&back);
    CHECK_MSG(st == code && strstr(err.msg, needle), "want \"%s\" (%d), got %d: %s", needle, code, st, err.msg);
}

static void test_malformed(void) {
    /* field 1 with wire type 3 (a group) */
    expect((const uint8_t[]){0x0B}, 1, MT_ERR_FORMAT, "wire type");
    /* pieces with a length of -1 as a 10-byte varint */
    expect((const uint8_t[]){0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 11, MT_ERR_FORMAT,
           "length past the end");
    /* a varint of 11 bytes */
    expect((const uint8_t[]){0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12,
           MT_ERR_FORMAT, "varint");
    /* a piece field that is a varint */
    expect((const uint8_t[]){0x08, 0x01}, 2, MT_ERR_FORMAT, "wire type 0");
    expect(NULL, 0, MT_ERR_FORMAT, "no pieces");

    mt_spm_piece p[MT_ARRAY_LEN(pieces)];
    mt_spm_model m = tiny();
    m.pieces = p;
    size_t len;
    uint8_t *bytes;
    memcpy(p, pieces, sizeof p);
    p[4].score = NAN;
    bytes = write_model(&m, &len);
    expect(bytes, len, MT_ERR_FORMAT, "pieces[4]: score nan is not finite");
    mt_free(bytes);

    memcpy(p, pieces, sizeof p);
    p[0].type = MT_SPM_NORMAL;
    bytes = write_model(&m, &len);
    expect(bytes, len, MT_ERR_FORMAT, "0 pieces of type UNKNOWN");
    mt_free(bytes);

    memcpy(p, pieces, sizeof p);
    p[7].type = MT_SPM_BYTE;
    bytes = write_model(&m, &len);
    expect(bytes, len, MT_ERR_FORMAT, "pieces[7] \"a\" is a byte piece, and byte_fallback is off");
    mt_free(bytes);

    memcpy(p, pieces, sizeof p);
    m.byte_fallback = true;
    bytes = write_model(&m, &len);
    expect(bytes, len, MT_ERR_FORMAT, "no piece <0x00>");
    mt_free(bytes);
    m.byte_fallback = false;

    m.model_type = 3;
    bytes = write_model(&m, &len);
    expect(bytes, len, MT_ERR_UNSUPPORTED, "model_type WORD");
    mt_free(bytes);
    m.model_type = MT_SPM_BPE;

    /* a charsmap whose trie claims more bytes than the blob has */
    static const uint8_t charsmap[] = {0x40, 0, 0, 0, 1, 2, 3, 4, 'x', 0};
    m.charsmap = charsmap;
    m.charsmap_len = sizeof charsmap;
    bytes = write_model(&m, &len);
    expect(bytes, len, MT_ERR_FORMAT, "precompiled_charsmap of 10 bytes has a trie of 64 bytes");
    mt_free(bytes);
    m.charsmap = NULL;
    m.charsmap_len = 0;

    /* the tokenizer refuses a piece written twice */
    memcpy(p, pieces, sizeof p);
    p[8] = p[7];
    bytes = write_model(&m, &len);
    mt_tokenizer *tok = NULL;
    mt_err err = {0};
    CHECK(mt_tokenizer_load_spm_mem(bytes, len, "dup.model", &tok, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "pieces[8] \"a\" is defined twice") != NULL, "%s", err.msg);
    mt_free(bytes);
}

/* tokenizer_config.json beside the model: an added token over a spare piece, and an id out of range refused. */
static void test_config(void) {
    char dir[] = "/tmp/mt_spm_XXXXXX", model[64], cfg[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(model, sizeof model, "%s/tokenizer.model", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    mt_spm_model m = tiny();
    size_t len;
    uint8_t *bytes = write_model(&m, &len);
    mt_err err = {0};
    CHECK(mt_file_write_atomic(model, bytes, len, &err) == MT_OK);
    static const char good[] = "{\"added_tokens_decoder\": {\"9\": {\"content\": \"<|im_end|>\", \"special\": true},"
                               " \"12\": {\"content\": \"<extra>\", \"special\": false}}}";
    CHECK(mt_file_write_atomic(cfg, good, strlen(good), &err) == MT_OK);
    mt_tokenizer *tok = NULL;
    CHECK(mt_tokenizer_load_spm(model, &tok, &err) == MT_OK);
    if (tok) {
        CHECK(mt_tokenizer_vocab_size(tok) == 13);
        CHECK(mt_tokenizer_token_id(tok, "<|im_end|>") == 9);
        check_ids(tok, "a<|im_end|>b<extra>", true, (int32_t[]){4, 9, 6, 8, 12}, 5);
        mt_tokenizer_free(tok);
        tok = NULL;
    }
    static const char bad[] = "{\"added_tokens_decoder\": {\"-3\": {\"content\": \"x\"}}}";
    CHECK(mt_file_write_atomic(cfg, bad, strlen(bad), &err) == MT_OK);
    CHECK(mt_tokenizer_load_spm(model, &tok, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "tokenizer_config.json: added_tokens_decoder key \"-3\"") != NULL, "%s", err.msg);
    unlink(cfg);
    unlink(model);
    rmdir(dir);
    mt_free(bytes);
}

static void test_oom(void) {
    mt_spm_model m = tiny();
    size_t len;
    uint8_t *bytes = write_model(&m, &len);
    for (size_t k = 1; k < 200; k++) {
        mt_tokenizer *tok = NULL;
        mt_err err = {0};
        mt_alloc_fail_after(k);
        mt_status st = mt_tokenizer_load_spm_mem(bytes, len, "oom.model", &tok, &err);
        int32_t *ids = NULL;
        size_t n;
        if (st == MT_OK) st = mt_tokenizer_encode(tok, "ab a c", 6, false, &ids, &n, &err);
        size_t made = mt_alloc_fail_after(0);
        mt_free(ids);
        mt_tokenizer_free(tok);
        CHECK_MSG(st == MT_OK || st == MT_ERR_NOMEM, "allocation %zu: %d %s", k, st, err.msg);
        if (st == MT_OK && made < k) break;
    }
    mt_free(bytes);
}

int main(void) {
    test_encode();
    test_truncated();
    test_malformed();
    test_config();
    test_oom();
    return check_report();
}
