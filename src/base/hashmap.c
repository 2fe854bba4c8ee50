/* base/hashmap: linear probing over a power-of-two table; FNV-1a for strings, a 64-bit mix for pointers. */
#include "base/hashmap.h"

#include <string.h>

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_ptr(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static bool same(const void *a, const void *b, bool str) { return str ? strcmp(a, b) == 0 : a == b; }

static size_t slot_of(const mt_hashmap *h, const void *key, bool str) {
    size_t mask = h->cap - 1, i = (size_t)(str ? hash_str(key) : hash_ptr(key)) & mask;
    while (h->keys[i] && !same(h->keys[i], key, str)) i = (i + 1) & mask;
    return i;
}

static mt_status grow(mt_hashmap *h, bool str, mt_err *err) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    mt_hashmap bigger = {mt_calloc(cap, sizeof(void *)), mt_malloc_array(cap, sizeof(size_t)), cap, h->count};
    if (!bigger.keys || !bigger.values) {
        mt_free(bigger.keys);
        mt_free(bigger.values);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory for a hash table of %zu entries", cap);
    }
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->keys[i]) continue;
        size_t s = slot_of(&bigger, h->keys[i], str);
        bigger.keys[s] = h->keys[i];
        bigger.values[s] = h->values[i];
    }
    mt_hashmap_free(h);
    *h = bigger;
    return MT_OK;
}

static mt_status put(mt_hashmap *h, const void *key, bool str, size_t value, mt_err *err) {
    if (2 * (h->count + 1) > h->cap) {
        mt_status st = grow(h, str, err);
        if (st) return st;
    }
    size_t s = slot_of(h, key, str);
    if (!h->keys[s]) h->count++;
    h->keys[s] = key;
    h->values[s] = value;
    return MT_OK;
}

static bool get(const mt_hashmap *h, const void *key, bool str, size_t *value) {
    if (!h->cap) return false;
    size_t s = slot_of(h, key, str);
    if (!h->keys[s]) return false;
    if (value) *value = h->values[s];
    return true;
}

mt_status mt_hashmap_put_str(mt_hashmap *h, const char *key, size_t value, mt_err *err) {
    return put(h, key, true, value, err);
}
bool mt_hashmap_get_str(const mt_hashmap *h, const char *key, size_t *value) { return get(h, key, true, value); }
mt_status mt_hashmap_put_ptr(mt_hashmap *h, const void *key, size_t value, mt_err *err) {
    return put(h, key, false, value, err);
}
bool mt_hashmap_get_ptr(const mt_hashmap *h, const void *key, size_t *value) { return get(h, key, false, value); }

void mt_hashmap_free(mt_hashmap *h) {
    mt_free(h->keys);
    mt_free(h->values);
    *h = (mt_hashmap){0};
}
