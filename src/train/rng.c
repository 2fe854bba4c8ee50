/* train/rng: counter-based random streams (see rng.h). */
#include "train/rng.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MT_GOLDEN 0x9e3779b97f4a7c15ull

uint64_t mt_rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

mt_rng mt_rng_stream(uint64_t seed, uint64_t purpose, uint64_t index) {
    /* Each input goes through the mix before the next is folded in, so (seed, purpose, index) tuples that differ
     * anywhere give unrelated keys. */
    uint64_t k = mt_rng_mix64(seed + MT_GOLDEN);
    k = mt_rng_mix64(k ^ (purpose * MT_GOLDEN + 1));
    k = mt_rng_mix64(k ^ (index * 0xd1b54a32d192ed03ull + 2));
    return (mt_rng){.key = k, .ctr = 0};
}

uint64_t mt_rng_u64(mt_rng *r) {
    uint64_t c = r->ctr++;
    return mt_rng_mix64(mt_rng_mix64(c * MT_GOLDEN + r->key) ^ r->key);
}

float mt_rng_float(mt_rng *r) { return (float)(mt_rng_u64(r) >> 40) * 0x1p-24f; }

double mt_rng_double(mt_rng *r) { return (double)(mt_rng_u64(r) >> 11) * 0x1p-53; }

uint64_t mt_rng_below(mt_rng *r, uint64_t n) {
    if (n == 0) return 0;
    unsigned __int128 m = (unsigned __int128)mt_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t threshold = (0 - n) % n;
        while (lo < threshold) {
            m = (unsigned __int128)mt_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void mt_rng_shuffle(mt_rng *r, int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)mt_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

cJSON *mt_rng_to_json(const mt_rng *r) {
    char key[17], ctr[17];
    snprintf(key, sizeof key, "%016" PRIx64, r->key);
    snprintf(ctr, sizeof ctr, "%016" PRIx64, r->ctr);
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "key", key) || !cJSON_AddStringToObject(o, "ctr", ctr)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static mt_status hex_field(const cJSON *obj, const char *name, const char *what, uint64_t *out, mt_err *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(f) || strlen(f->valuestring) != 16)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\" must be a string of 16 hex digits", what, name);
    uint64_t v = 0;
    for (const char *p = f->valuestring; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9') d = *p - '0';
        else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
        else return mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\" must be a string of 16 hex digits", what, name);
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return MT_OK;
}

mt_status mt_rng_from_json(const cJSON *obj, const char *what, mt_rng *out, mt_err *err) {
    if (!cJSON_IsObject(obj)) return mt_err_set(err, MT_ERR_FORMAT, "%s: random state must be an object", what);
    mt_rng r;
    mt_status s = hex_field(obj, "key", what, &r.key, err);
    if (!s) s = hex_field(obj, "ctr", what, &r.ctr, err);
    if (!s) *out = r;
    return s;
}
