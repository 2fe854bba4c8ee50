/* libFuzzer target for the tokenizer: the tokenizer.json loader, encode and decode.
 *
 * The first byte picks the mode; the rest is the input:
 *
 *   | data[0] % 4 | what                                                                                       |
 *   |-------------|--------------------------------------------------------------------------------------------|
 *   | 0           | tokenizer.json text: load it, and when accepted encode and decode a fixed text             |
 *   | 1, 2, 3     | text encoded by one of three tiny tokenizers (GPT-2 regex; Split + invert; Digits + prefix |
 *   |             | space), parse_special = data[0] & 4; then its ids decoded whole and streamed               |
 *
 * In every mode, pairs of bytes also become ids to decode (in range or not). Broken promises trap: ids outside the
 * vocab, a decode that is not valid UTF-8, a stream whose pieces differ from the whole decode.
 */
#include <stdlib.h>
#include <string.h>

#include "../unit/test_tokenizer_tiny.h"
#include "text/tokenizer.h"

static mt_tokenizer *tiny[3];

static void build(void) {
    static const char *pre[3] = {
        NULL,
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
        "\"\\\\s+(?!\\\\S)|[\\\\p{L}']+\"}, \"behavior\": \"MergedWithNext\", \"invert\": true}, {\"type\": "
        "\"Split\", \"pattern\": {\"String\": \"l\"}, \"behavior\": \"Contiguous\"}, {\"type\": \"ByteLevel\", "
        "\"add_prefix_space\": false, \"use_regex\": false}]}",
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": false}, "
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}]}",
    };
    for (int i = 0; i < 3; i++) {
        cJSON *root = tiny_tokenizer(i == 1);
        if (pre[i]) tiny_with_pre(root, pre[i]);
        mt_err err;
        if (tiny_load(root, &tiny[i], &err) != MT_OK) __builtin_trap();
    }
}

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or 0; written apart from the library's. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t k;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (k > n || s[1] < lo || s[1] > hi) return 0;
    for (size_t j = 2; j < k; j++)
        if ((s[j] & 0xC0) != 0x80) return 0;
    return k;
}

static bool valid_utf8_nul_terminated(const char *s, size_t n) {
    if (s[n] != 0) return false;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_len((const unsigned char *)s + i, n - i))) return false;
    return true;
}

static void check_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, bool skip) {
    char *text;
    size_t len;
    mt_err err;
    mt_status st = mt_tokenizer_decode(tok, ids, n, skip, &text, &len, &err);
    mt_detok_stream *s;
    if (mt_detok_stream_new(tok, skip, &s, &err) != MT_OK) __builtin_trap();
    size_t at = 0;
    mt_status sst = MT_OK;
    for (size_t i = 0; i < n && sst == MT_OK; i++) {
        const char *piece;
        size_t pn;
        sst = mt_detok_stream_push(s, ids[i], &piece, &pn, &err);
        if (sst == MT_OK && st == MT_OK && (at + pn > len || memcmp(text + at, piece, pn) != 0)) __builtin_trap();
        if (sst == MT_OK) at += pn;
    }
    if ((sst == MT_OK) != (st == MT_OK)) __builtin_trap();
    if (st == MT_OK) {
        const char *piece;
        size_t pn;
        if (mt_detok_stream_flush(s, &piece, &pn, &err) != MT_OK || at + pn != len || memcmp(text + at, piece, pn))
            __builtin_trap();
        if (!valid_utf8_nul_terminated(text, len)) __builtin_trap();
        mt_free(text);
    } else if (st != MT_ERR_INVALID_ARG) {
        __builtin_trap();
    }
    mt_detok_stream_free(s);
}

static void encode_and_check(const mt_tokenizer *tok, const char *text, size_t len, bool special) {
    int32_t *ids;
    size_t n;
    mt_err err;
    if (mt_tokenizer_encode(tok, text, len, special, &ids, &n, &err) != MT_OK) return;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= mt_tokenizer_vocab_size(tok)) __builtin_trap();
    check_decode(tok, ids, n, false);
    check_decode(tok, ids, n, true);
    mt_free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tiny[0]) build();
    if (size == 0) return 0;
    int mode = data[0] % 4;
    bool special = data[0] & 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const mt_tokenizer *tok = tiny[mode ? mode - 1 : 0];
    mt_tokenizer *loaded = NULL;
    if (mode == 0) {
        mt_err err;
        if (mt_tokenizer_load_json(text, len, "fuzz.json", &loaded, &err) != MT_OK) return 0;
        static const char sample[] = "Hello, world! 123 caf\xc3\xa9 <|end|>\n\n  x";
        encode_and_check(loaded, sample, sizeof sample - 1, special);
        tok = loaded;
    } else {
        encode_and_check(tok, text, len, special);
    }
    int32_t ids[256];
    size_t n = 0;
    int64_t range = mt_tokenizer_vocab_size(tok) + 8;
    for (size_t i = 0; i + 1 < len && n < 256; i += 2)
        ids[n++] = (int32_t)(((uint32_t)(uint8_t)text[i] << 8 | (uint8_t)text[i + 1]) % range) - 2;
    check_decode(tok, ids, n, special);
    mt_tokenizer_free(loaded);
    return 0;
}
