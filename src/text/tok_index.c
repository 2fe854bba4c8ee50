/* text/tok_index: the tokenizer's two hash tables, both open addressing with linear probing, sized at load to at
 * most half full and never grown afterwards.
 *
 *   | table        | key                      | slot                          |
 *   |--------------|--------------------------|-------------------------------|
 *   | mt_tok_index | a byte string            | its id, where it lies in the  |
 *   |              |                          | blob, 32 bits of its hash     |
 *   | merges       | (left id, right id)      | the pair and its rank, packed |
 *
 * The string table keeps no key bytes of its own: the key of a slot is a string in the tokenizer's blob, so the
 * vocab is stored once; a probe compares the bytes only when the hashes agree. The merged id of each rank is kept
 * apart (merge_id[rank]), so that a merge slot is one word and a lookup that fails reads no more than it must.
 */
#include <string.h>

#include "text/text_int.h"

/* 8 bytes at a time: a multiply-xorshift over little-endian words, the tail zero-padded, the length mixed in. */
static uint64_t hash_bytes(const char *s, size_t n) {
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h = n * k;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, s + i, n - i);
        h = (h ^ w) * k;
    }
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    return h ^ (h >> 32);
}

static size_t table_size(size_t n_keys) {
    size_t cap = 16;
    while (cap < n_keys * 2 + 1) cap *= 2;
    return cap;
}

bool mt_tok_index_init(mt_tok_index *ix, size_t n_keys) {
    if (n_keys > (SIZE_MAX / 64)) return false;
    size_t cap = table_size(n_keys);
    ix->slots = mt_malloc_array(cap, sizeof(mt_tok_slot));
    if (!ix->slots) return false;
    for (size_t i = 0; i < cap; i++) ix->slots[i] = (mt_tok_slot){0, -1, 0, 0};
    ix->mask = cap - 1;
    return true;
}

void mt_tok_index_free(mt_tok_index *ix) {
    mt_free(ix->slots);
    ix->slots = NULL;
}

/* memcmp(a, b, n) == 0 without a library call: the keys are short. */
static bool bytes_eq(const char *a, const char *b, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return false;
    }
    for (; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static const mt_tok_slot *find(const mt_tok_index *ix, const char *blob, const char *key, size_t len, uint64_t h) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & ix->mask;; i = (i + 1) & ix->mask) {
        const mt_tok_slot *sl = &ix->slots[i];
        if (sl->id < 0 || (sl->tag == tag && sl->len == len && bytes_eq(blob + sl->off, key, len))) return sl;
    }
}

void mt_tok_index_put(mt_tok_index *ix, const char *blob, mt_tok_str key, int32_t id) {
    uint64_t h = hash_bytes(blob + key.off, key.len);
    mt_tok_slot *sl = (mt_tok_slot *)find(ix, blob, blob + key.off, key.len, h);
    *sl = (mt_tok_slot){(uint32_t)(h >> 32), id, key.off, key.len};
}

int32_t mt_tok_index_get(const mt_tok_index *ix, const char *blob, const char *key, size_t len) {
    if (!ix->slots) return -1;
    return find(ix, blob, key, len, hash_bytes(key, len))->id;
}

/* Bits 32 and up of the product depend on every bit of the 42-bit pair key. */
static size_t hash_pair(uint64_t pair, size_t mask) { return (size_t)((pair * 0x9E3779B97F4A7C15ull) >> 32) & mask; }

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 21 | (uint32_t)right; }

mt_status mt_tok_merges_init(mt_tokenizer *tok, size_t n_merges, mt_err *err) {
    if (n_merges > MT_TOK_MAX_MERGES)
        return mt_err_set(err, MT_ERR_LIMIT, "merges: %zu entries, more than %u", n_merges, MT_TOK_MAX_MERGES);
    size_t cap = table_size(n_merges);
    tok->merges = mt_calloc(cap, sizeof(mt_tok_merge));
    tok->merge_id = mt_malloc_array(n_merges ? n_merges : 1, sizeof(int32_t));
    if (!tok->merges || !tok->merge_id)
        return mt_err_set(err, MT_ERR_NOMEM, "merges: out of memory for %zu entries", n_merges);
    tok->merge_mask = cap - 1;
    return MT_OK;
}

/* A pair listed twice keeps its last rank, as the HashMap that tokenizers collects the list into does. */
void mt_tok_merges_put(mt_tokenizer *tok, int32_t left, int32_t right, uint32_t rank, int32_t id) {
    uint64_t pair = pair_key(left, right);
    size_t i = hash_pair(pair, tok->merge_mask);
    while (tok->merges[i] && tok->merges[i] >> 22 != pair) i = (i + 1) & tok->merge_mask;
    tok->merges[i] = pair << 22 | (rank + 1);
    tok->merge_id[rank] = id;
}

uint32_t mt_tok_merge_rank(const mt_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t pair = pair_key(left, right);
    for (size_t i = hash_pair(pair, tok->merge_mask);; i = (i + 1) & tok->merge_mask) {
        mt_tok_merge m = tok->merges[i];
        if (!m) return MT_TOK_NO_RANK;
        if (m >> 22 == pair) return (uint32_t)(m & MT_TOK_MAX_MERGES) - 1;
    }
}
