/* text/tok_index: the tokenizer's two hash tables, both open addressing with linear probing, sized at load to at
 * most half full and never grown afterwards.
 *
 *   | table        | key                      | slot                          |
 *   |--------------|--------------------------|-------------------------------|
 *   | mt_tok_index | a byte string            | the id whose string it is     |
 *   | merges       | (left id, right id)      | (rank, merged id)             |
 *
 * The string table keeps no key bytes of its own: a slot holds an id, and the key is that id's string in the
 * tokenizer's blob, so the vocab is stored once.
 */
#include <string.h>

#include "text/text_int.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t table_size(size_t n_keys) {
    size_t cap = 16;
    while (cap < n_keys * 2 + 1) cap *= 2;
    return cap;
}

bool mt_tok_index_init(mt_tok_index *ix, size_t n_keys) {
    if (n_keys > (SIZE_MAX / 8)) return false;
    size_t cap = table_size(n_keys);
    ix->slots = mt_malloc_array(cap, sizeof(int32_t));
    if (!ix->slots) return false;
    memset(ix->slots, 0xff, cap * sizeof(int32_t));
    ix->mask = cap - 1;
    return true;
}

void mt_tok_index_free(mt_tok_index *ix) {
    mt_free(ix->slots);
    ix->slots = NULL;
}

static bool key_eq(const mt_tok_str *strs, const char *blob, int32_t id, const char *key, size_t len) {
    return strs[id].len == len && memcmp(blob + strs[id].off, key, len) == 0;
}

void mt_tok_index_put(mt_tok_index *ix, const mt_tok_str *strs, const char *blob, int32_t id) {
    const char *key = blob + strs[id].off;
    size_t len = strs[id].len;
    size_t i = hash_bytes(key, len) & ix->mask;
    while (ix->slots[i] >= 0 && !key_eq(strs, blob, ix->slots[i], key, len)) i = (i + 1) & ix->mask;
    ix->slots[i] = id;
}

int32_t mt_tok_index_get(const mt_tok_index *ix, const mt_tok_str *strs, const char *blob, const char *key,
                         size_t len) {
    if (!ix->slots) return -1;
    size_t i = hash_bytes(key, len) & ix->mask;
    while (ix->slots[i] >= 0) {
        if (key_eq(strs, blob, ix->slots[i], key, len)) return ix->slots[i];
        i = (i + 1) & ix->mask;
    }
    return -1;
}

static size_t hash_pair(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

mt_status mt_tok_merges_init(mt_tokenizer *tok, size_t n_merges, mt_err *err) {
    if (n_merges > (SIZE_MAX / 64)) return mt_err_set(err, MT_ERR_LIMIT, "merges: %zu entries", n_merges);
    size_t cap = table_size(n_merges);
    tok->merges = mt_malloc_array(cap, sizeof(mt_tok_merge));
    if (!tok->merges) return mt_err_set(err, MT_ERR_NOMEM, "merges: out of memory for %zu entries", n_merges);
    for (size_t i = 0; i < cap; i++) tok->merges[i].key = UINT64_MAX;
    tok->merge_mask = cap - 1;
    return MT_OK;
}

/* A pair listed twice keeps its last rank, as the HashMap that tokenizers collects the list into does. */
void mt_tok_merges_put(mt_tokenizer *tok, int32_t left, int32_t right, uint32_t rank, int32_t id) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t i = hash_pair(key, tok->merge_mask);
    while (tok->merges[i].key != UINT64_MAX && tok->merges[i].key != key) i = (i + 1) & tok->merge_mask;
    tok->merges[i] = (mt_tok_merge){key, rank, id};
}

const mt_tok_merge *mt_tok_merge_find(const mt_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t i = hash_pair(key, tok->merge_mask);
    for (;;) {
        const mt_tok_merge *m = &tok->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        i = (i + 1) & tok->merge_mask;
    }
}
