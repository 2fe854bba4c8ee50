/* tensor/ops_train: the forward ops that training adds - scale, scatter of rows, dropout, token cross-entropy. */
#include <math.h>
#include <string.h>

#include "tensor/cpu/cpu.h"
#include "tensor/ops_backward.h"

mt_tensor *mt_op_scale(mt_ctx *ctx, const mt_tensor *x, float s) {
    if (!x || !mt_need_2d_f32(ctx, x, "scale")) return NULL;
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, x->shape[0], x->shape[1]);
    if (!y) return NULL;
    int64_t n = mt_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) mt_f32(y)[i] = s * mt_f32(x)[i];
    if (mt_tape_wants(ctx, x, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_scale, y, x, NULL, NULL);
        if (!node) return NULL;
        node->f[0] = s;
    }
    return y;
}

mt_tensor *mt_op_scale_cols(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *g) {
    if (!x || !g || !mt_need_2d_f32(ctx, x, "scale_cols") || !mt_need_host(ctx, g, "scale_cols")) return NULL;
    int64_t T = x->shape[0], C = x->shape[1];
    if (g->dtype != MT_F32 || mt_tensor_numel(g) != C || !mt_tensor_is_contiguous(g))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "scale_cols: the scale must be f32 with %lld values", (long long)C);
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, C);
    if (!y) return NULL;
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < C; c++) mt_f32(y)[t * C + c] = mt_f32(x)[t * C + c] * mt_f32(g)[c];
    if (mt_tape_wants(ctx, x, g, NULL) && !mt_tape_record(ctx, mt_bw_scale_cols, y, x, g, NULL)) return NULL;
    return y;
}

mt_tensor *mt_op_scatter_rows(mt_ctx *ctx, const mt_tensor *base, const int64_t *idx, const mt_tensor *src) {
    if (!base || !src) return NULL;
    if (!mt_need_2d_f32(ctx, base, "scatter_rows") || !mt_need_2d_f32(ctx, src, "scatter_rows")) return NULL;
    int64_t T = base->shape[0], C = base->shape[1], n = src->shape[0];
    if (src->shape[1] != C) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "scatter_rows: width mismatch");
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, C);
    bool *seen = mt_arena_alloc(ctx->arena, (size_t)T + 1);
    if (!y || !seen) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    memset(seen, 0, (size_t)T);
    memcpy(y->data, base->data, (size_t)(T * C) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= T || seen[idx[i]])
            return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "scatter_rows: index %lld is outside %lld rows or repeated",
                               (long long)idx[i], (long long)T);
        seen[idx[i]] = true;
        memcpy(mt_f32(y) + idx[i] * C, mt_f32(src) + i * C, (size_t)C * sizeof(float));
    }
    if (mt_tape_wants(ctx, base, src, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_scatter_rows, y, base, src, NULL);
        if (!node || !(node->aux = mt_ctx_copy(ctx, idx, (size_t)n * sizeof *idx))) return NULL;
    }
    return y;
}

/* splitmix64 of (seed, i): a pure function, so the mask needs no storage and survives a resume */
bool mt_dropout_keep(uint64_t seed, int64_t i, float p) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f) >= p;
}

mt_tensor *mt_op_dropout(mt_ctx *ctx, const mt_tensor *x, float p, uint64_t seed) {
    if (!x || !mt_need_2d_f32(ctx, x, "dropout")) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "dropout: p = %g is not in [0, 1)", p);
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, x->shape[0], x->shape[1]);
    if (!y) return NULL;
    int64_t n = mt_tensor_numel(x);
    float keep_scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) mt_f32(y)[i] = mt_dropout_keep(seed, i, p) ? mt_f32(x)[i] * keep_scale : 0.0f;
    if (mt_tape_wants(ctx, x, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_dropout, y, x, NULL, NULL);
        if (!node) return NULL;
        node->f[0] = p;
        node->i[0] = (int64_t)seed;
    }
    return y;
}

typedef struct ce_job {
    const float *logits;
    const int32_t *targets;
    float *lse, *row_loss;
    int64_t V;
} ce_job;

static void ce_rows(void *user, int64_t r0, int64_t r1) {
    ce_job *j = user;
    for (int64_t t = r0; t < r1; t++) {
        j->row_loss[t] = 0.0f;
        if (j->targets[t] < 0) continue;
        const float *l = j->logits + t * j->V;
        float mx = mt_cpu_max(j->V, l), buf[1024];
        double sum = 0; /* chunk sums (SIMD exp, f32) added in double */
        for (int64_t c = 0; c < j->V; c += 1024) sum += mt_cpu_exp_sum(MT_MIN(1024, j->V - c), l + c, mx, buf);
        j->lse[t] = mx + (float)log(sum);
        j->row_loss[t] = j->lse[t] - l[j->targets[t]];
    }
}

static mt_tensor *cross_entropy(mt_ctx *ctx, const mt_tensor *logits, const int32_t *targets, const float *weights,
                                float inv_norm, float *row_nll) {
    if (!logits || !mt_need_2d_f32(ctx, logits, "cross_entropy")) return NULL;
    int64_t T = logits->shape[0], V = logits->shape[1];
    for (int64_t t = 0; t < T; t++)
        if (targets[t] >= V)
            return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "cross_entropy: target %d at row %lld is outside [0, %lld)",
                               targets[t], (long long)t, (long long)V);
    ce_job j = {.logits = mt_f32(logits), .V = V};
    j.targets = mt_ctx_copy(ctx, targets, (size_t)T * sizeof *targets);
    const float *w = weights ? mt_ctx_copy(ctx, weights, (size_t)T * sizeof *weights) : NULL;
    j.lse = mt_arena_alloc(ctx->arena, (size_t)(2 * T + 1) * sizeof(float));
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, 1, 1);
    mt_ce_saved *saved = mt_arena_alloc(ctx->arena, sizeof *saved);
    if (!j.targets || !j.lse || !y || !saved || (weights && !w)) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    j.row_loss = j.lse + T;
    mt_ctx_parallel_rows(ctx, T, V, ce_rows, &j);
    double total = 0;
    for (int64_t t = 0; t < T; t++) total += (w ? (double)w[t] : 1.0) * j.row_loss[t];
    if (row_nll) memcpy(row_nll, j.row_loss, (size_t)T * sizeof *row_nll);
    mt_f32(y)[0] = (float)(total * inv_norm);
    if (mt_tape_wants(ctx, logits, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_cross_entropy, y, logits, NULL, NULL);
        if (!node) return NULL;
        *saved = (mt_ce_saved){.targets = j.targets, .lse = j.lse, .weights = w};
        node->aux = saved;
        node->f[0] = inv_norm;
    }
    return y;
}

mt_tensor *mt_op_cross_entropy(mt_ctx *ctx, const mt_tensor *logits, const int32_t *targets, float inv_norm) {
    return cross_entropy(ctx, logits, targets, NULL, inv_norm, NULL);
}

mt_tensor *mt_op_cross_entropy_weighted(mt_ctx *ctx, const mt_tensor *logits, const int32_t *targets,
                                        const float *weights, float *row_nll) {
    return cross_entropy(ctx, logits, targets, weights, 1.0f, row_nll);
}
