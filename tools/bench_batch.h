/* tools/bench_batch: decoding several sequences in one forward (continuous batching's step), for `mitten bench`.
 * Each of n_seqs sequences gets its own prompt of L random ids; then D steps decode one row per sequence, all in one
 * batch, so the weights are read once per step for all of them. */
#ifndef MT_BENCH_BATCH_H
#define MT_BENCH_BATCH_H

#include "base/pool.h"
#include "models/model.h"

/* *seconds: wall time of the D batched steps (prompts not counted). */
mt_status mt_bench_decode_batch(const mt_model *m, mt_pool *pool, int n_seqs, int64_t L, int64_t D, double *seconds,
                                mt_err *err);

#endif
