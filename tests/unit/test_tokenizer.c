/* text/tokenizer: encode and decode semantics on a tiny hand-made tokenizer.json (test_tokenizer_tiny.h).
 * Expected splits follow tokenizers' own tests and docs (added_vocabulary.rs tests, the Split behavior examples
 * "the-final--countdown") and the Unicode standard's U+FFFD example (section 3.9, table 3-8). The full Qwen vocab is
 * compared with a reference implementation by tests/text (label ref). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "test_tokenizer_tiny.h"
#include "text/tokenizer.h"

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), (sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

static bool same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(int32_t)) == 0);
}

static void expect_len(const mt_tokenizer *tok, const char *text, size_t len, bool special, const int32_t *want,
                       size_t n_want, int line) {
    int32_t *ids;
    size_t n;
    mt_err err;
    mt_status st = mt_tokenizer_encode(tok, text, len, special, &ids, &n, &err);
    bool ok = st == MT_OK && same_ids(ids, n, want, n_want);
    CHECK_MSG(ok, "line %d: encode(\"%s\") %s", line, text, st ? err.msg : "gave other ids");
    if (!ok && !st) {
        print_ids("got ", ids, n);
        print_ids("want", want, n_want);
    }
    if (!st) mt_free(ids);
}
#define EXPECT(tok, text, special, ...) expect_len(tok, text, strlen(text), special, IDS(__VA_ARGS__), __LINE__)

/* ids of encode(a) ++ ids of encode(b) ++ ..., for splits where only the boundaries matter. */
static size_t concat(const mt_tokenizer *tok, const char **parts, size_t n_parts, int32_t *out) {
    size_t total = 0;
    mt_err err;
    for (size_t i = 0; i < n_parts; i++) {
        int32_t *ids;
        size_t n;
        if (parts[i][0] == '#') { /* "#302": that id */
            out[total++] = (int32_t)atoi(parts[i] + 1);
            continue;
        }
        if (mt_tokenizer_encode(tok, parts[i], strlen(parts[i]), true, &ids, &n, &err) != MT_OK) return 0;
        memcpy(out + total, ids, n * sizeof(int32_t));
        total += n;
        mt_free(ids);
    }
    return total;
}

static void test_bpe(void) {
    mt_tokenizer *tok;
    mt_err err;
    for (int pairs = 0; pairs < 2; pairs++) {
        CHECK(tiny_load(tiny_tokenizer(pairs), &tok, &err) == MT_OK);
        EXPECT(tok, "hello", true, 259);
        EXPECT(tok, " hello", true, 261);
        EXPECT(tok, "hello hello", true, 259, 261);
        EXPECT(tok, "abc", true, 97, 263); /* "b c" has the lower rank */
        EXPECT(tok, "aaa", true, 262, 97); /* leftmost of equal ranks first */
        EXPECT(tok, "aaaa", true, 262, 262);
        EXPECT(tok, "he", true, 256);
        EXPECT(tok, "", true);
        mt_tokenizer_free(tok);
    }
    /* A word longer than the short-word path takes the heap path: same answer as pieces of it. */
    CHECK(tiny_load(tiny_tokenizer(false), &tok, &err) == MT_OK);
    char longw[401];
    for (int i = 0; i < 400; i++) longw[i] = "aab"[i % 3] == 'b' ? 'c' : 'a';
    longw[400] = 0; /* "aacaac..." : aa then c, repeated */
    int32_t want[400];
    size_t n_want = 0;
    for (int i = 0; i < 400; i += 3) {
        if (i + 1 < 400) want[n_want++] = 262;
        else want[n_want++] = 97;
        if (i + 2 < 400) want[n_want++] = 'c';
    }
    expect_len(tok, longw, 400, true, want, n_want, __LINE__);
    CHECK(mt_tokenizer_vocab_size(tok) == 304);
    CHECK(mt_tokenizer_token_id(tok, "Ġhello") == 261);
    CHECK(mt_tokenizer_token_id(tok, "Ġ") == 32);
    CHECK(mt_tokenizer_token_id(tok, "<mask>") == 302);
    CHECK(mt_tokenizer_token_id(tok, "nope") == -1);
    CHECK(mt_tokenizer_is_special(tok, 300) && !mt_tokenizer_is_special(tok, 301) && !mt_tokenizer_is_special(tok, 5));
    mt_tokenizer_free(tok);
}

static void test_added_tokens(void) {
    mt_tokenizer *tok;
    mt_err err;
    CHECK(tiny_load(tiny_tokenizer(false), &tok, &err) == MT_OK);
    EXPECT(tok, "<|end|>", true, 300);
    EXPECT(tok, "<|end|>xx", true, 303); /* longest match */
    EXPECT(tok, "<|end|>x", true, 300, 'x');
    EXPECT(tok, "he<tool>he", true, 256, 301, 256); /* non-special */
    EXPECT(tok, "<|end|><|end|>", true, 300, 300);
    EXPECT(tok, "<|end|>", false, '<', '|', 'e', 'n', 'd', '|', '>'); /* as text */
    EXPECT(tok, "<tool><|end|>", false, 301, '<', '|', 'e', 'n', 'd', '|', '>');
    EXPECT(tok, "<|end|>xx", false, '<', '|', 'e', 'n', 'd', '|', '>', 'x', 'x');
    /* tokenizers' test_single_word_is_correct, test_lstrip_unicode_space and options_use_cases */
    int32_t want[64], got_n;
    const char *a[] = {"#302", "My name", "#302", "A<mask> <mask>ony", "#302"}; /* spaces go to the strips */
    got_n = (int32_t)concat(tok, a, 5, want);
    expect_len(tok, "<mask> My name <mask> A<mask> <mask>ony <mask>", 46, true, want, (size_t)got_n, __LINE__);
    const char *b[] = {"Hi", "#302", "there", "#302", "#302"};
    got_n = (int32_t)concat(tok, b, 5, want);
    const char *text_b = "Hi <mask> there\t<mask>\t<mask>\xe2\x80\x80";
    expect_len(tok, text_b, strlen(text_b), true, want, (size_t)got_n, __LINE__);
    /* a combining mark is a word character, so no match; GPT-2's regex then splits "\u0330<" "mask" ">" */
    EXPECT(tok, "\xcc\xb0<mask>", true, 0xCC, 0xB0, '<', 'm', 'a', 's', 'k', '>');
    mt_tokenizer_free(tok);
}

static void test_normalize_and_utf8(void) {
    mt_tokenizer *tok;
    mt_err err;
    CHECK(tiny_load(tiny_tokenizer(false), &tok, &err) == MT_OK);
    EXPECT(tok, "\xc3\xa9", true, 265);  /* é */
    EXPECT(tok, "e\xcc\x81", true, 265); /* e + U+0301 composes under NFC */
    /* Unicode 15 section 3.9, table 3-8:
     * 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b FFFD c FFFD FFFD d */
    const char bad[] = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    const char good[] = "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                        "b\xEF\xBF\xBD"
                        "c\xEF\xBF\xBD\xEF\xBF\xBD"
                        "d";
    int32_t *x, *y;
    size_t nx, ny;
    CHECK(mt_tokenizer_encode(tok, bad, sizeof bad - 1, true, &x, &nx, &err) == MT_OK);
    CHECK(mt_tokenizer_encode(tok, good, sizeof good - 1, true, &y, &ny, &err) == MT_OK);
    CHECK(same_ids(x, nx, y, ny));
    mt_free(x);
    mt_free(y);
    /* truncated at the end, a surrogate, an overlong, NUL inside */
    static const struct { const char *bad; size_t n; const char *good; } cases[] = {
        {"ab\xF0\x9F\x98", 5, "ab\xEF\xBF\xBD"},
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xFF", 1, "\xEF\xBF\xBD"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        CHECK(mt_tokenizer_encode(tok, cases[i].bad, cases[i].n, true, &x, &nx, &err) == MT_OK);
        CHECK(mt_tokenizer_encode(tok, cases[i].good, strlen(cases[i].good), true, &y, &ny, &err) == MT_OK);
        CHECK_MSG(same_ids(x, nx, y, ny), "invalid UTF-8 case %zu", i);
        mt_free(x);
        mt_free(y);
    }
    expect_len(tok, "a\0b", 3, true, IDS('a', 0, 'b'), __LINE__);
    mt_tokenizer_free(tok);
}

/* tokenizers' Split docs: "the-final--countdown" split on "-" by each behavior. The tiny vocab gets merges that
 * join '-' with a neighbour, so a piece boundary shows as a merge that did not happen. */
static void test_split_behaviors(void) {
    /* "the" is always t + he (merge "h e" ranks before "e -"); OUNTDOWN spells the end of "countdown" */
#define OUNTDOWN 'o', 'u', 'n', 't', 'd', 'o', 'w', 'n'
    static const struct { const char *behavior; bool invert; int32_t ids[24]; size_t n; } cases[] = {
        {"Removed", false, {'t', 256, 'f', 'i', 'n', 'a', 'l', 'c', OUNTDOWN}, 16},
        {"Isolated", false, {'t', 256, '-', 'f', 'i', 'n', 'a', 'l', '-', '-', 'c', OUNTDOWN}, 19},
        {"MergedWithPrevious", false, {'t', 256, '-', 'f', 'i', 'n', 'a', 267, '-', 'c', OUNTDOWN}, 18},
        {"MergedWithNext", false, {'t', 256, 268, 'i', 'n', 'a', 'l', '-', 269, OUNTDOWN}, 17},
        {"Contiguous", false, {'t', 256, '-', 'f', 'i', 'n', 'a', 'l', 270, 'c', OUNTDOWN}, 18},
        {"Removed", true, {'-', '-', '-'}, 3}, /* adjacent matches stay apart, so do the gaps they become */
    };
    static const char *extra[][3] = {
        {"e", "-", "e-"}, {"l", "-", "l-"}, {"-", "f", "-f"}, {"-", "c", "-c"}, {"-", "-", "--"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        cJSON *root = tiny_tokenizer(false);
        cJSON *model = cJSON_GetObjectItem(root, "model");
        for (int k = 0; k < 5; k++) {
            cJSON_AddNumberToObject(cJSON_GetObjectItem(model, "vocab"), extra[k][2], 266 + k);
            char m[16];
            snprintf(m, sizeof m, "%s %s", extra[k][0], extra[k][1]);
            cJSON_AddItemToArray(cJSON_GetObjectItem(model, "merges"), cJSON_CreateString(m));
        }
        char pre[512];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, "
                 "\"behavior\": \"%s\", \"invert\": %s}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                 "\"use_regex\": false}]}",
                 cases[i].behavior, cases[i].invert ? "true" : "false");
        mt_tokenizer *tok;
        mt_err err;
        CHECK_MSG(tiny_load(tiny_with_pre(root, pre), &tok, &err) == MT_OK, "%s", err.msg);
        expect_len(tok, "the-final--countdown", 20, true, cases[i].ids, cases[i].n, __LINE__ + (int)i * 1000);
        mt_tokenizer_free(tok);
    }
}

static void test_pre_tokenizers(void) {
    mt_tokenizer *tok;
    mt_err err;
    /* \s is Unicode White_Space as in Oniguruma: U+0085 and U+3000 are removed, U+180E and U+FEFF are not. */
    const char *pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                      "\"\\\\s+\"}, \"behavior\": \"Removed\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                      "\"add_prefix_space\": false, \"use_regex\": false}]}";
    CHECK(tiny_load(tiny_with_pre(tiny_tokenizer(false), pre), &tok, &err) == MT_OK);
    EXPECT(tok, "a\xc2\x85" "b\xe3\x80\x80" "c", true, 'a', 'b', 'c');
    EXPECT(tok, "a\xe1\xa0\x8e" "b\xef\xbb\xbf" "c", true, 'a', 0xE1, 0xA0, 0x8E, 'b', 0xEF, 0xBB, 0xBF, 'c');
    mt_tokenizer_free(tok);
    /* add_prefix_space: "hello" is encoded as " hello" */
    pre = "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}";
    CHECK(tiny_load(tiny_with_pre(tiny_tokenizer(false), pre), &tok, &err) == MT_OK);
    EXPECT(tok, "hello", true, 261);
    EXPECT(tok, " hello", true, 261);
    mt_tokenizer_free(tok);
    /* Digits(individual_digits) */
    pre = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true}, "
          "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}";
    CHECK(tiny_load(tiny_with_pre(tiny_tokenizer(false), pre), &tok, &err) == MT_OK);
    EXPECT(tok, "aa12aa", true, 262, '1', '2', 262);
    mt_tokenizer_free(tok);
    /* GPT-2's regex: contractions split off, "aa" stays one word */
    CHECK(tiny_load(tiny_tokenizer(false), &tok, &err) == MT_OK);
    EXPECT(tok, "aa'll", true, 262, '\'', 257);
    EXPECT(tok, "  hello", true, 32, 261);
    mt_tokenizer_free(tok);
}

static void test_decode(void) {
    mt_tokenizer *tok;
    mt_err err;
    CHECK(tiny_load(tiny_tokenizer(false), &tok, &err) == MT_OK);
    char *s;
    size_t n;
    CHECK(mt_tokenizer_decode(tok, IDS(259, 261, 300, 32, 301), false, &s, &n, &err) == MT_OK);
    CHECK(n == 25 && !strcmp(s, "hello hello<|end|> <tool>"));
    mt_free(s);
    CHECK(mt_tokenizer_decode(tok, IDS(259, 300, 301), true, &s, &n, &err) == MT_OK);
    CHECK(!strcmp(s, "hello<tool>") && n == 11);
    mt_free(s);
    CHECK(mt_tokenizer_decode(tok, IDS(0xE4, 0xBD, 'x', 0xA0), false, &s, &n, &err) == MT_OK);
    CHECK(!strcmp(s, "\xEF\xBF\xBDx\xEF\xBF\xBD")); /* E4 BD is one maximal subpart */
    mt_free(s);
    CHECK(mt_tokenizer_decode(tok, IDS(0), false, &s, &n, &err) == MT_OK && n == 1 && s[0] == 0);
    mt_free(s);
    CHECK(mt_tokenizer_decode(tok, IDS(5, 304), false, &s, &n, &err) == MT_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "304") != NULL);
    CHECK(mt_tokenizer_decode(tok, IDS(-1), false, &s, &n, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_tokenizer_decode(tok, IDS(290), false, &s, &n, &err) == MT_ERR_INVALID_ARG); /* a hole */
    CHECK(strstr(err.msg, "290") != NULL);
    CHECK(mt_tokenizer_decode(tok, NULL, 0, false, &s, &n, &err) == MT_OK && n == 0 && s[0] == 0);
    mt_free(s);

    /* streaming: 你 = E4 BD A0 arrives one byte per token */
    mt_detok_stream *st;
    const char *piece;
    size_t len;
    CHECK(mt_detok_stream_new(tok, false, &st, &err) == MT_OK);
    CHECK(mt_detok_stream_push(st, 'a', &piece, &len, &err) == MT_OK && len == 1 && piece[0] == 'a');
    CHECK(mt_detok_stream_push(st, 0xE4, &piece, &len, &err) == MT_OK && len == 0);
    CHECK(mt_detok_stream_push(st, 0xBD, &piece, &len, &err) == MT_OK && len == 0);
    CHECK(mt_detok_stream_push(st, 0xA0, &piece, &len, &err) == MT_OK && !strcmp(piece, "\xE4\xBD\xA0"));
    CHECK(mt_detok_stream_push(st, 0xF0, &piece, &len, &err) == MT_OK && len == 0);
    CHECK(mt_detok_stream_push(st, 'b', &piece, &len, &err) == MT_OK && !strcmp(piece, "\xEF\xBF\xBD" "b"));
    CHECK(mt_detok_stream_push(st, 0xE4, &piece, &len, &err) == MT_OK && len == 0);
    CHECK(mt_detok_stream_push(st, 99999, &piece, &len, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_detok_stream_flush(st, &piece, &len, &err) == MT_OK && !strcmp(piece, "\xEF\xBF\xBD"));
    CHECK(mt_detok_stream_flush(st, &piece, &len, &err) == MT_OK && len == 0);
    mt_detok_stream_free(st);
    CHECK(mt_detok_stream_new(tok, true, &st, &err) == MT_OK);
    CHECK(mt_detok_stream_push(st, 300, &piece, &len, &err) == MT_OK && len == 0);
    CHECK(mt_detok_stream_push(st, 301, &piece, &len, &err) == MT_OK && !strcmp(piece, "<tool>"));
    mt_detok_stream_free(st);
    mt_detok_stream_free(NULL);
    mt_tokenizer_free(tok);
    mt_tokenizer_free(NULL);
}

/* Round trip of every short byte string over a small alphabet, valid UTF-8 or not: decode(encode(x)) == x for
 * valid x, and for invalid x the decode equals the U+FFFD-repaired x. */
static void test_round_trip(void) {
    mt_tokenizer *tok;
    mt_err err;
    CHECK(tiny_load(tiny_tokenizer(false), &tok, &err) == MT_OK);
    static const char *alpha[] = {"a", "h", "e", "l", "o", " ", "\xc3", "\xa9", "'", "<|end|>", "\n", "1",
                                  "\xe4\xbd\xa0"};
    int bad = 0;
    for (int code = 0; code < 13 * 13 * 13 * 13; code++) {
        char text[64];
        size_t len = 0;
        for (int k = 0, c = code; k < 4; k++, c /= 13) {
            size_t l = strlen(alpha[c % 13]);
            memcpy(text + len, alpha[c % 13], l);
            len += l;
        }
        int32_t *ids;
        size_t n;
        char *back;
        size_t back_len;
        if (mt_tokenizer_encode(tok, text, len, true, &ids, &n, &err) != MT_OK ||
            mt_tokenizer_decode(tok, ids, n, false, &back, &back_len, &err) != MT_OK) {
            bad++;
            continue;
        }
        int32_t *ids2;
        size_t n2;
        /* the decode is valid UTF-8, so it must encode to the same ids as the repaired text did */
        if (mt_tokenizer_encode(tok, back, back_len, true, &ids2, &n2, &err) != MT_OK || !same_ids(ids, n, ids2, n2))
            bad++;
        else if (memchr(text, 0xc3, len) == NULL && memchr(text, 0xa9, len) == NULL &&
                 (back_len != len || memcmp(back, text, len)))
            bad++;
        mt_free(ids2);
        mt_free(ids);
        mt_free(back);
    }
    CHECK_MSG(bad == 0, "%d round trips failed", bad);
    mt_tokenizer_free(tok);
}

int main(void) {
    test_bpe();
    test_added_tokens();
    test_normalize_and_utf8();
    test_split_behaviors();
    test_pre_tokenizers();
    test_decode();
    test_round_trip();
    return check_report();
}
