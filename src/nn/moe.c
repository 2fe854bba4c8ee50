/* nn/moe: routing on the host from the f32 probabilities, then one gathered batch per expert (see moe.h).
 *
 * Reference: transformers models/qwen3_moe/modeling_qwen3_moe.py (Qwen3MoeSparseMoeBlock: softmax in float32, topk,
 * optional renormalisation, expert outputs times their weight summed into the token's row) and
 * models/qwen2_moe/modeling_qwen2_moe.py, 5.0.0.dev0 (Qwen2MoeSparseMoeBlock: the same routing, plus
 * F.sigmoid(shared_expert_gate(x)) * shared_expert(x) added to the routed sum).
 */
#include "nn/moe.h"

/* The k largest of p [E], largest first; ties keep the lower index first. */
static void top_k(const float *p, int64_t E, int64_t k, int64_t *out) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            bool taken = false;
            for (int64_t i = 0; i < j && !taken; i++) taken = out[i] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        out[j] = best;
    }
}

mt_tensor *mt_nn_moe(mt_ctx *ctx, const mt_moe *moe, const mt_tensor *x, int64_t *chosen) {
    if (!x) return NULL;
    int64_t T = x->shape[0], E = moe->n_experts, k = moe->top_k;
    mt_tensor *probs = mt_op_softmax(ctx, mt_nn_linear(ctx, x, &moe->router));
    int64_t *idx = mt_arena_alloc(ctx->arena, (size_t)(T * k) * sizeof *idx);
    int64_t *rows = mt_arena_alloc(ctx->arena, (size_t)(T * k) * sizeof *rows);
    int64_t *flat = mt_arena_alloc(ctx->arena, (size_t)(T * k) * sizeof *flat);
    if (!probs || !idx || !rows || !flat) return probs ? mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory") : NULL;
    for (int64_t t = 0; t < T; t++) top_k(mt_f32(probs) + t * E, E, k, idx + t * k);
    if (chosen)
        for (int64_t i = 0; i < T * k; i++) chosen[i] = idx[i];
    mt_tensor *w = mt_op_gather_cols(ctx, probs, idx, k);
    if (moe->norm_topk) w = mt_op_row_normalize(ctx, w);
    mt_tensor *out = mt_tensor_zeros(ctx, MT_F32, 2, x->shape);
    for (int64_t e = 0; e < E && out; e++) {
        int64_t n = 0;
        for (int64_t i = 0; i < T * k; i++)
            if (idx[i] == e) {
                rows[n] = i / k;
                flat[n++] = i;
            }
        if (!n) continue;
        const mt_moe_expert *ex = &moe->experts[e];
        mt_tensor *y = mt_nn_gated_mlp(ctx, mt_op_gather_rows(ctx, x, rows, n), &ex->gate, &ex->up, &ex->down, moe->act);
        y = mt_op_scale_rows(ctx, y, mt_op_pick(ctx, w, flat, n));
        out = mt_op_index_add_rows_inplace(ctx, out, rows, y);
    }
    if (!moe->has_shared || !out) return out;
    const mt_moe_expert *sh = &moe->shared;
    mt_tensor *s = mt_nn_gated_mlp(ctx, x, &sh->gate, &sh->up, &sh->down, moe->act);
    if (moe->has_shared_gate)
        s = mt_op_scale_rows(ctx, s, mt_op_act(ctx, mt_nn_linear(ctx, x, &moe->shared_gate), MT_ACT_SIGMOID));
    return mt_op_add(ctx, out, s);
}
