/* nn/attention: projections, q/k norm, rotary, then one fused attention call per sequence group of the batch. */
#include "nn/attention.h"

/* RMSNorm over each head of x [T, H*D]. */
static mt_tensor *head_norm(mt_ctx *ctx, mt_tensor *x, const mt_norm *n, int heads, int64_t D) {
    if (!x || !n->w.data) return x;
    int64_t T = x->shape[0];
    mt_tensor *y = mt_nn_norm(ctx, mt_op_reshape(ctx, x, 2, (int64_t[]){T * heads, D}), n);
    return mt_op_reshape(ctx, y, 2, (int64_t[]){T, heads * D});
}

static mt_tensor *attend_group(mt_ctx *ctx, const mt_attn_block *a, const mt_kv_plan *plan, int layer,
                               const mt_kv_group *g, mt_tensor *q, mt_tensor *k, mt_tensor *v, bool whole) {
    mt_attn_opts ao = {.scale = a->scale, .causal = true, .q_pos0 = g->pos0, .window = a->window};
    mt_tensor *qg = whole ? q : mt_tensor_rows(ctx, q, g->row0, g->n);
    mt_tensor *kg = whole ? k : mt_tensor_rows(ctx, k, g->row0, g->n);
    mt_tensor *vg = whole ? v : mt_tensor_rows(ctx, v, g->row0, g->n);
    if (!plan->kv) return mt_op_attention(ctx, qg, kg, vg, a->n_heads, a->n_kv_heads, &ao);
    if (!qg || !kg || !vg) return NULL;
    mt_kv_write(plan->kv, g->seq, layer, false, g->pos0, kg);
    mt_kv_write(plan->kv, g->seq, layer, true, g->pos0, vg);
    mt_tensor keys = mt_kv_keys(plan->kv, g->seq, layer, g->pos0 + g->n);
    mt_tensor values = mt_kv_values(plan->kv, g->seq, layer, g->pos0 + g->n);
    return mt_op_attention(ctx, qg, &keys, &values, a->n_heads, a->n_kv_heads, &ao);
}

/* The grouped projection's output [T, Hkv*(g+2)*D] as q [T, Hq*D], k and v [T, Hkv*D]: viewed as [T*Hkv, (g+2)*D],
 * the columns [0, g*D) of each row are group j's query heads in order, then D of key, then D of value. */
static void split_grouped(mt_ctx *ctx, const mt_attn_block *a, mt_tensor *qkv, mt_tensor **q, mt_tensor **k,
                          mt_tensor **v) {
    int64_t D = a->head_dim, g = a->n_heads / a->n_kv_heads, T = qkv ? qkv->shape[0] : 0;
    mt_tensor *rows = qkv ? mt_op_reshape(ctx, qkv, 2, (int64_t[]){T * a->n_kv_heads, (g + 2) * D}) : NULL;
    mt_tensor *parts[3];
    for (int i = 0; i < 3; i++) {
        int64_t c0 = i == 0 ? 0 : (g + i - 1) * D, n = i == 0 ? g * D : D;
        mt_tensor *p = mt_op_contiguous(ctx, mt_tensor_cols(ctx, rows, c0, n));
        parts[i] = p ? mt_op_reshape(ctx, p, 2, (int64_t[]){T, a->n_kv_heads * n}) : NULL;
    }
    *q = parts[0];
    *k = parts[1];
    *v = parts[2];
}

mt_tensor *mt_nn_self_attention(mt_ctx *ctx, const mt_attn_block *a, const mt_tensor *x, const mt_tensor *cos,
                                const mt_tensor *sin, const mt_kv_plan *plan, int layer) {
    if (!x) return NULL;
    if (plan->n_groups < 1) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "attention: empty batch plan");
    mt_tensor *q, *k, *v;
    if (a->packed_qkv) {
        split_grouped(ctx, a, mt_nn_linear(ctx, x, &a->qkv), &q, &k, &v);
    } else {
        q = mt_nn_linear(ctx, x, &a->q);
        k = mt_nn_linear(ctx, x, &a->k);
        v = mt_nn_linear(ctx, x, &a->v);
    }
    q = head_norm(ctx, q, &a->q_norm, a->n_heads, a->head_dim);
    k = head_norm(ctx, k, &a->k_norm, a->n_kv_heads, a->head_dim);
    q = mt_op_rope(ctx, q, a->n_heads, cos, sin);
    k = mt_op_rope(ctx, k, a->n_kv_heads, cos, sin);
    if (!q || !k || !v) return NULL;
    bool whole = plan->n_groups == 1;
    mt_tensor *out = NULL;
    for (int i = 0; i < plan->n_groups; i++) {
        mt_tensor *o = attend_group(ctx, a, plan, layer, &plan->groups[i], q, k, v, whole);
        out = out ? mt_op_concat_rows(ctx, out, o) : o;
    }
    return mt_nn_linear(ctx, out, &a->o);
}
