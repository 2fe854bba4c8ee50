/* train/rng: a small counter-based random generator whose whole state is two u64s, so a checkpoint can save it
 * and a resumed run draws exactly the numbers the uninterrupted run would have drawn.
 *
 * Usage:
 *     mt_rng shuffle = mt_rng_stream(seed, MT_RNG_SHUFFLE, epoch);      // one stream per purpose and index
 *     mt_rng_shuffle(&shuffle, order, n_samples);                        // Fisher-Yates
 *     mt_rng drop = mt_rng_stream(seed, MT_RNG_DROPOUT, rank);
 *     float u = mt_rng_float(&drop);                                     // [0, 1)
 *     cJSON *j = mt_rng_to_json(&drop);   ...   mt_rng_from_json(j, "trainer_state.json: rng", &drop, &err);
 *
 * Construction (the same idea as splitmix64 and the counter-based generators of Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11): output i of a stream is a fixed bijective mix of (key, i). The mix is
 * splitmix64's finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA'14)
 * applied twice with the key folded in between, so streams with different keys are not shifted copies of one
 * another, and each stream has period 2^64 with no repeats within it.
 *
 *     | field | meaning                                                          |
 *     | ----- | ---------------------------------------------------------------- |
 *     | key   | which stream: derived from (seed, purpose, index) by mt_rng_stream |
 *     | ctr   | how many u64s this stream has produced                           |
 *
 * Not for cryptography.
 */
#ifndef MT_RNG_H
#define MT_RNG_H

#include <cjson/cJSON.h>

#include "base/base.h"

typedef struct mt_rng {
    uint64_t key;
    uint64_t ctr;
} mt_rng;

/* Purposes, so that streams for different jobs never coincide even with the same index. */
enum { MT_RNG_SHUFFLE = 1, MT_RNG_DROPOUT = 2, MT_RNG_INIT = 3, MT_RNG_SAMPLE = 4 };

/* splitmix64's output function: a bijection on u64 with good avalanche. mt_rng_mix64(0x9e3779b97f4a7c15) is the
 * first output of splitmix64 seeded with 0 (0xe220a8397b1dcdaf). */
uint64_t mt_rng_mix64(uint64_t z);

/* An independent stream for (seed, purpose, index), starting at counter 0. */
mt_rng mt_rng_stream(uint64_t seed, uint64_t purpose, uint64_t index);

uint64_t mt_rng_u64(mt_rng *r);
/* Uniform in [0, 1) with 24 random bits (every value is an exact float). */
float mt_rng_float(mt_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double mt_rng_double(mt_rng *r);
/* Uniform integer in [0, n) without modulo bias (Lemire's multiply-and-reject); n = 0 returns 0. */
uint64_t mt_rng_below(mt_rng *r, uint64_t n);
/* Shuffles a[0..n) in place (Fisher-Yates, from the end), drawing n - 1 numbers. */
void mt_rng_shuffle(mt_rng *r, int64_t *a, int64_t n);

/* {"key": "<16 hex digits>", "ctr": "<16 hex digits>"}: strings, because JSON numbers hold only 53 bits. NULL
 * when out of memory. The caller owns the result. */
cJSON *mt_rng_to_json(const mt_rng *r);
/* Reads what mt_rng_to_json wrote; MT_ERR_FORMAT naming what and the field otherwise. *out unchanged on error. */
mt_status mt_rng_from_json(const cJSON *obj, const char *what, mt_rng *out, mt_err *err);

#endif
