/* base/hashmap: open-addressing hash maps from a key to a size_t value, for lookups that run per tensor name at
 * load (an MoE checkpoint has tens of thousands of tensors) or per tensor pointer in training.
 *
 * Usage:
 *     mt_hashmap h = {0};
 *     mt_hashmap_put_str(&h, "model.norm.weight", 7, err);        // the key string is borrowed: it must outlive h
 *     size_t v;  if (mt_hashmap_get_str(&h, "model.norm.weight", &v)) ...
 *     mt_hashmap_free(&h);
 *
 * One map holds either string keys or pointer keys, never both. Linear probing at load factor <= 1/2; a put of a key
 * already present replaces its value. Failure (out of memory) leaves the map as it was.
 */
#ifndef MT_HASHMAP_H
#define MT_HASHMAP_H

#include "base/base.h"

typedef struct mt_hashmap {
    const void **keys; /* NULL: empty slot */
    size_t *values;
    size_t cap, count; /* cap is 0 or a power of two */
} mt_hashmap;

mt_status mt_hashmap_put_str(mt_hashmap *h, const char *key, size_t value, mt_err *err);
bool mt_hashmap_get_str(const mt_hashmap *h, const char *key, size_t *value);
mt_status mt_hashmap_put_ptr(mt_hashmap *h, const void *key, size_t value, mt_err *err);
bool mt_hashmap_get_ptr(const mt_hashmap *h, const void *key, size_t *value);
void mt_hashmap_free(mt_hashmap *h);

#endif
