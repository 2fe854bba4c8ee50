/* Tests of BPE's merge order in src/text/tok_merge.c: the sweep, its early stop, and the heap it hands long words to.
 *
 * Reference: tokenizers' Word::merge_all (tokenizers/src/models/bpe/word.rs) pops the pair of lowest rank, leftmost
 * among equals, from a heap, so a pair that a merge creates goes before pairs of higher rank already waiting. The
 * tiny tokenizer (test_tokenizer_tiny.h) gets one more merge, "ab a" -> "aba" (id 266), listed first, i.e. ranked
 * below "a b" although it needs "ab": merging every "a b" of a word in one pass would be wrong.
 *
 *   | word      | heap order                                   | ids                     |
 *   |-----------|----------------------------------------------|-------------------------|
 *   | abab      | a b -> ab; ab a (rank 0) -> aba; b stays     | aba b                   |
 *   | (ab)^n    | the same every four bytes                    | (aba b)^(n/4), then the |
 *   |           |                                              | rest: a, ab or aba      |
 *   | a^n       | a a, leftmost first, one pass per level      | aa ... (a when n is odd)|
 */
#include <stdlib.h>

#include "check.h"
#include "test_tokenizer_tiny.h"

enum { ID_AA = 262, ID_AB = 264, ID_ABA = 266 };

static mt_tokenizer *load_with_aba(void) {
    cJSON *root = tiny_tokenizer(false);
    cJSON *model = cJSON_GetObjectItem(root, "model");
    cJSON_AddNumberToObject(cJSON_GetObjectItem(model, "vocab"), "aba", ID_ABA);
    cJSON_InsertItemInArray(cJSON_GetObjectItem(model, "merges"), 0, cJSON_CreateString("ab a"));
    mt_tokenizer *tok = NULL;
    mt_err err;
    mt_status st = tiny_load(root, &tok, &err);
    CHECK_MSG(st == MT_OK, "%s", err.msg);
    return st == MT_OK ? tok : NULL;
}

/* Encodes text (one word for GPT-2's regex) and compares with want[0..n_want). */
static void expect_ids(const mt_tokenizer *tok, const char *text, const int32_t *want, size_t n_want) {
    int32_t *ids = NULL;
    size_t n = 0;
    mt_err err;
    mt_status st = mt_tokenizer_encode(tok, text, strlen(text), true, &ids, &n, &err);
    size_t first_diff = 0;
    while (first_diff < n && first_diff < n_want && ids[first_diff] == want[first_diff]) first_diff++;
    CHECK_MSG(st == MT_OK && n == n_want && first_diff == n, "%zu-byte word: %zu ids, want %zu, first difference at %zu",
              strlen(text), n, n_want, first_diff);
    mt_free(ids);
}

static void test_created_pair_goes_first(mt_tokenizer *tok) {
    expect_ids(tok, "abab", (const int32_t[]){ID_ABA, 'b'}, 2);
    expect_ids(tok, "aba", (const int32_t[]){ID_ABA}, 1);
    expect_ids(tok, "abb", (const int32_t[]){ID_AB, 'b'}, 2);
}

/* Words long enough that the sweep gives up (each pass stops after one merge) and the heap finishes them. */
static void test_long_words(mt_tokenizer *tok) {
    static const size_t lens[] = {8, 63, 64, 65, 66, 200, 201, 2000};
    static const int32_t tail[4][2] = {{0}, {'a'}, {ID_AB}, {ID_ABA}}; /* what the last n % 4 bytes of (ab)^n give */
    for (size_t k = 0; k < MT_ARRAY_LEN(lens); k++) {
        size_t n = lens[k];
        char *text = malloc(n + 1);
        int32_t *want = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) text[i] = "ab"[i % 2];
        text[n] = 0;
        size_t m = 0;
        for (size_t i = 0; i + 4 <= n; i += 4) want[m++] = ID_ABA, want[m++] = 'b';
        if (n % 4) want[m++] = tail[n % 4][0];
        expect_ids(tok, text, want, m);

        memset(text, 'a', n);
        m = 0;
        for (size_t i = 0; i + 2 <= n; i += 2) want[m++] = ID_AA;
        if (n % 2) want[m++] = 'a';
        expect_ids(tok, text, want, m);
        free(text);
        free(want);
    }
}

int main(void) {
    mt_tokenizer *tok = load_with_aba();
    if (tok) {
        test_created_pair_goes_first(tok);
        test_long_words(tok);
    }
    mt_tokenizer_free(tok);
    return check_report();
}
