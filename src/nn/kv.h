/* nn/kv: the KV memory of a decoder - every layer's keys and values for many sequences - owned by whoever runs the
 * model (the engine), never by a model family. Attention blocks (nn/attention.h) write a batch's rows into it and read
 * each sequence's keys back; masks come from the sequence ids of the batch.
 *
 * Layout: sequence s holds, per layer l, keys [cap_s, k_width] and values [cap_s, v_width] (k_width and v_width apart:
 * MLA caches differ), f32 or bf16. cap_s grows in whole blocks of block_rows as the sequence grows (geometrically, so
 * appending is amortised O(1)); a dropped sequence frees its memory; a fork copies the rows of its source.
 *
 *     mt_kv *kv;  mt_kv_new(&(mt_kv_params){.n_layers = L, .k_width = kw, .v_width = vw}, &kv, err);
 *     int s;      mt_kv_seq_new(kv, &s, err);            // a new, empty sequence
 *     ... forward passes append rows (mt_kv_plan / mt_kv_commit around them) ...
 *     mt_kv_seq_truncate(kv, s, n);  mt_kv_seq_drop(kv, s);  mt_kv_free(kv);
 */
#ifndef MT_KV_H
#define MT_KV_H

#include "tensor/tensor.h"

typedef struct mt_kv_params {
    int n_layers;
    int64_t k_width, v_width; /* per row: kv heads x head dim of K and of V */
    mt_dtype dtype;           /* MT_F32 (default when 0) or MT_BF16 */
    int64_t block_rows;       /* growth granularity; 0: 256 */
    int64_t max_rows;         /* rows of all sequences together; 0: no limit */
    int max_seqs;             /* 0: 256 */
} mt_kv_params;

typedef struct mt_kv mt_kv;

mt_status mt_kv_new(const mt_kv_params *p, mt_kv **out, mt_err *err);
void mt_kv_free(mt_kv *kv);

mt_status mt_kv_seq_new(mt_kv *kv, int *seq, mt_err *err);
/* A new sequence holding a copy of the first n rows of src (n < 0: all of them). */
mt_status mt_kv_seq_fork(mt_kv *kv, int src, int64_t n, int *seq, mt_err *err);
void mt_kv_seq_drop(mt_kv *kv, int seq);
/* Forgets rows from n on (n >= the length does nothing). */
void mt_kv_seq_truncate(mt_kv *kv, int seq, int64_t n);
/* Rows held, or -1 for a sequence that does not exist. */
int64_t mt_kv_seq_len(const mt_kv *kv, int seq);
int64_t mt_kv_rows_used(const mt_kv *kv);
size_t mt_kv_bytes(const mt_kv *kv);

/* The rows of one batch, grouped by sequence: rows [row0, row0 + n) of the batch belong to sequence seq and go to its
 * cache rows [pos0, pos0 + n). Without a KV memory (training, scoring) pos0 is 0 and the group attends to itself. */
typedef struct mt_kv_group {
    int seq;
    int64_t row0, n, pos0;
} mt_kv_group;

typedef struct mt_kv_plan {
    mt_kv *kv; /* NULL: no cache */
    const mt_kv_group *groups;
    int n_groups;
} mt_kv_plan;

/* Groups the batch rows by their sequence ids seq [T] (NULL: all rows are sequence 0). Rows of one sequence must be
 * consecutive. With kv, every sequence must exist, and room for its new rows is made (so a failure leaves the caches
 * as they were); without, pos0 is 0. groups come from ctx->arena. */
mt_status mt_kv_plan_batch(mt_kv *kv, mt_ctx *ctx, const int32_t *seq, int64_t T, mt_kv_plan *plan, mt_err *err);
/* After a forward pass succeeded: each group's sequence now ends at pos0 + n. */
void mt_kv_commit(const mt_kv_plan *plan);

/* Keys and values of layer l of a sequence: rows [0, cap) of its storage (kernels read the first rows they need). */
mt_tensor mt_kv_keys(const mt_kv *kv, int seq, int layer, int64_t rows);
mt_tensor mt_kv_values(const mt_kv *kv, int seq, int layer, int64_t rows);
/* Writes rows [0, x->shape[0]) of x (f32 [n, width]) at row pos0 of layer l's keys (or values). */
void mt_kv_write(mt_kv *kv, int seq, int layer, bool values, int64_t pos0, const mt_tensor *x);

#endif
