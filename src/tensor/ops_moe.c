/* tensor/ops_moe: the ops a mixture-of-experts FFN adds to the dense ones - pick the routing weights, renormalise
 * them, weight an expert's rows and add them back into the layer output. Backward is tensor/ops_backward_moe.c.
 *
 * Reference: Qwen3MoeSparseMoeBlock in transformers (models/qwen3_moe/modeling_qwen3_moe.py): softmax over
 * the router logits, top-k, optional norm_topk_prob, then per expert `out.index_add_(0, tokens, expert(x[tokens])
 * * weights[tokens, slot, None])`. Shapes: T tokens, C channels, E experts, k experts per token, n rows routed to
 * one expert. A layer is written with these ops (the top-k choice itself is made on the host from probs' values
 * and is not differentiated, as in PyTorch):
 *
 *     probs = mt_op_softmax(ctx, mt_op_linear(ctx, x, w_router, NULL));        [T, E]
 *     (host: idx[t*k + j] = the j-th largest column of probs row t)
 *     w = mt_op_row_normalize(ctx, mt_op_gather_cols(ctx, probs, idx, k));     [T, k]
 *     out = mt_tensor_zeros(ctx, MT_F32, 2, (int64_t[]){T, C});
 *     for each expert e with n > 0 rows (tok[i] its tokens, flat[i] = tok[i]*k + slot):
 *         y = mt_nn_gated_mlp(ctx, mt_op_gather_rows(ctx, x, tok, n), ...);    [n, C]
 *         y = mt_op_scale_rows(ctx, y, mt_op_pick(ctx, w, flat, n));
 *         out = mt_op_index_add_rows_inplace(ctx, out, tok, y);
 *
 * Threading: only scale_rows touches [n, C] elementwise, so only it splits rows over the pool. The routing ops
 * work on T*k values, and index_add_rows is one pass of adds that repeated indices would make racy if split by
 * source row; both are tiny next to the experts' matmuls.
 */
#include <string.h>

#include "tensor/cpu/cpu.h"
#include "tensor/ops_backward.h"

static mt_tensor *need_f32(mt_ctx *ctx, const mt_tensor *x, const char *op) {
    if (x->dtype != MT_F32 || !mt_tensor_is_contiguous(x))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "%s: expects a contiguous f32 input", op);
    return (mt_tensor *)x;
}

/* y.flat[i] = x.flat[flat[i]] for the checked flat indices, which stay in the arena for backward. gather_cols and
 * pick are both this, with one backward (a scatter-add). */
static mt_tensor *take(mt_ctx *ctx, const mt_tensor *x, int64_t *flat, mt_tensor *y) {
    int64_t n = mt_tensor_numel(y);
    const float *xs = mt_f32(x);
    float *ys = mt_f32(y);
    for (int64_t i = 0; i < n; i++) ys[i] = xs[flat[i]];
    if (mt_tape_wants(ctx, x, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_take, y, x, NULL, NULL);
        NEED(node);
        node->aux = flat;
        node->i[0] = n;
    }
    return y;
}

mt_tensor *mt_op_gather_cols(mt_ctx *ctx, const mt_tensor *x, const int64_t *idx, int64_t k) {
    NEED(x);
    NEED(mt_need_2d_f32(ctx, x, "gather_cols"));
    int64_t T = x->shape[0], C = x->shape[1];
    if (k < 0) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "gather_cols: %lld columns per row", (long long)k);
    /* the output's allocation checks T*k for overflow before the index array (twice its bytes) is sized */
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, k);
    NEED(y);
    int64_t *flat = mt_arena_alloc(ctx->arena, (size_t)(T * k) * sizeof *flat);
    if (!flat) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory for %lld gather_cols indices", (long long)(T * k));
    for (int64_t t = 0; t < T; t++) {
        for (int64_t j = 0; j < k; j++) {
            int64_t c = idx[t * k + j];
            if (c < 0 || c >= C)
                return mt_ctx_fail(ctx, MT_ERR_INTERNAL,
                                   "gather_cols: index %lld (row %lld, slot %lld) is outside %lld columns",
                                   (long long)c, (long long)t, (long long)j, (long long)C);
            flat[t * k + j] = t * C + c;
        }
    }
    return take(ctx, x, flat, y);
}

mt_tensor *mt_op_pick(mt_ctx *ctx, const mt_tensor *x, const int64_t *flat, int64_t n) {
    NEED(x);
    NEED(need_f32(ctx, x, "pick"));
    int64_t size = mt_tensor_numel(x);
    if (n < 0) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "pick: %lld indices", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (flat[i] < 0 || flat[i] >= size)
            return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "pick: index %lld (entry %lld) is outside the %lld elements",
                               (long long)flat[i], (long long)i, (long long)size);
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, n, 1);
    int64_t *kept = mt_ctx_copy(ctx, flat, (size_t)n * sizeof *flat);
    NEED(y && kept);
    return take(ctx, x, kept, y);
}

mt_tensor *mt_op_row_normalize(mt_ctx *ctx, const mt_tensor *x) {
    NEED(x);
    NEED(mt_need_2d_f32(ctx, x, "row_normalize"));
    int64_t T = x->shape[0], C = x->shape[1];
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, C);
    float *sums = mt_arena_alloc(ctx->arena, (size_t)T * sizeof *sums);
    if (!y || !sums) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory in row_normalize");
    for (int64_t t = 0; t < T; t++) {
        const float *xr = mt_f32(x) + t * C;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += xr[c];
        /* top-k probabilities never sum to zero (the largest is at least 1/E); a zero row is a caller's bug */
        if (s == 0.0)
            return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "row_normalize: row %lld sums to zero", (long long)t);
        sums[t] = (float)s;
        for (int64_t c = 0; c < C; c++) mt_f32(y)[t * C + c] = xr[c] / sums[t];
    }
    if (mt_tape_wants(ctx, x, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_row_normalize, y, x, NULL, NULL);
        NEED(node);
        node->aux = sums;
    }
    return y;
}

typedef struct scale_rows_job {
    const float *x, *w;
    float *y;
    int64_t C;
} scale_rows_job;

static void scale_rows_task(void *user, int64_t r0, int64_t r1) {
    scale_rows_job *j = user;
    for (int64_t i = r0; i < r1; i++)
        for (int64_t c = 0; c < j->C; c++) j->y[i * j->C + c] = j->x[i * j->C + c] * j->w[i];
}

mt_tensor *mt_op_scale_rows(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w) {
    NEED(x && w);
    NEED(mt_need_2d_f32(ctx, x, "scale_rows") && need_f32(ctx, w, "scale_rows"));
    int64_t n = x->shape[0], C = x->shape[1];
    bool column = w->ndim == 1 || (w->ndim == 2 && w->shape[1] == 1);
    if (!column || w->shape[0] != n)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "scale_rows: weights must be [%lld] or [%lld, 1]", (long long)n,
                           (long long)n);
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, n, C);
    NEED(y);
    scale_rows_job j = {.x = mt_f32(x), .w = mt_f32(w), .y = mt_f32(y), .C = C};
    mt_ctx_parallel_rows(ctx, n, C, scale_rows_task, &j);
    RECORD_OR_FAIL(mt_bw_scale_rows, y, x, w, NULL);
    return y;
}

/* Checks base, src and every index before anything is written, so a failure leaves base unchanged. */
static bool index_add_ok(mt_ctx *ctx, const mt_tensor *base, const int64_t *idx, const mt_tensor *src) {
    if (!mt_need_2d_f32(ctx, base, "index_add_rows") || !mt_need_2d_f32(ctx, src, "index_add_rows")) return false;
    int64_t T = base->shape[0];
    if (src->shape[1] != base->shape[1]) {
        mt_ctx_fail(ctx, MT_ERR_INTERNAL, "index_add_rows: rows of %lld added to rows of %lld",
                    (long long)src->shape[1], (long long)base->shape[1]);
        return false;
    }
    for (int64_t i = 0; i < src->shape[0]; i++) {
        if (idx[i] < 0 || idx[i] >= T) {
            mt_ctx_fail(ctx, MT_ERR_INTERNAL, "index_add_rows: index %lld (source row %lld) is outside %lld rows",
                        (long long)idx[i], (long long)i, (long long)T);
            return false;
        }
    }
    return true;
}

static void index_add_into(float *dst, const int64_t *idx, const mt_tensor *src) {
    int64_t C = src->shape[1];
    for (int64_t i = 0; i < src->shape[0]; i++) mt_cpu_axpy(C, 1.0f, mt_f32(src) + i * C, dst + idx[i] * C);
}

mt_tensor *mt_op_index_add_rows(mt_ctx *ctx, const mt_tensor *base, const int64_t *idx, const mt_tensor *src) {
    NEED(base && src);
    if (!index_add_ok(ctx, base, idx, src)) return NULL;
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, base->shape[0], base->shape[1]);
    NEED(y);
    memcpy(y->data, base->data, (size_t)mt_tensor_numel(base) * sizeof(float));
    index_add_into(mt_f32(y), idx, src);
    if (mt_tape_wants(ctx, base, src, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_index_add_rows, y, base, src, NULL);
        if (!node || !(node->aux = mt_ctx_copy(ctx, idx, (size_t)src->shape[0] * sizeof *idx))) return NULL;
    }
    return y;
}

mt_tensor *mt_op_index_add_rows_inplace(mt_ctx *ctx, mt_tensor *base, const int64_t *idx, const mt_tensor *src) {
    NEED(base && src);
    /* With a tape, an earlier node may hold base's data as an input it reads in backward (mul keeps both
     * factors), so only inference may write into it. */
    uintptr_t b0 = (uintptr_t)base->data, b1 = b0 + (uintptr_t)mt_tensor_numel(base) * sizeof(float);
    uintptr_t s0 = (uintptr_t)src->data, s1 = s0 + (uintptr_t)mt_tensor_numel(src) * sizeof(float);
    bool overlap = s0 < b1 && b0 < s1;
    if (ctx->tape || base->requires_grad || overlap) return mt_op_index_add_rows(ctx, base, idx, src);
    if (!index_add_ok(ctx, base, idx, src)) return NULL;
    index_add_into(mt_f32(base), idx, src);
    return base;
}
