/* nn/vit: the vision transformer block and the merge-block patch order. */
#include "nn/vit.h"

mt_tensor *mt_nn_vit_block(mt_ctx *ctx, const mt_vit_block *b, const mt_tensor *x, int heads, const mt_tensor *cos,
                           const mt_tensor *sin, const mt_attn_opts *ao, mt_act act) {
    mt_tensor *h = mt_nn_norm(ctx, x, &b->norm1);
    mt_tensor *q = mt_nn_linear(ctx, h, &b->q), *k = mt_nn_linear(ctx, h, &b->k);
    if (b->q_norm.w.data) {
        q = mt_nn_norm(ctx, q, &b->q_norm);
        k = mt_nn_norm(ctx, k, &b->k_norm);
    }
    if (cos) {
        q = mt_op_rope(ctx, q, heads, cos, sin);
        k = mt_op_rope(ctx, k, heads, cos, sin);
    }
    /* A vision tower's attention multiplies on bf16 products where its linears do: 1.4x faster at head dim 80, for
     * an error the linears' rounding already brings (docs/DESIGN.md, "A vision tower's attention"). */
    mt_attn_opts o = *ao;
    o.bf16_products = true;
    mt_tensor *v = mt_nn_linear(ctx, h, &b->v);
    mt_tensor *a = mt_nn_linear(ctx, mt_op_attention(ctx, q, k, v, heads, heads, &o), &b->proj);
    if (b->ls1.data) a = mt_op_scale_cols(ctx, a, &b->ls1);
    mt_tensor *y = mt_op_add(ctx, x, a);
    h = mt_nn_norm(ctx, y, &b->norm2);
    h = b->gate.w.data ? mt_nn_gated_mlp(ctx, h, &b->gate, &b->up, &b->down, act) : mt_nn_mlp(ctx, h, &b->fc1, &b->fc2, act);
    if (b->ls2.data) h = mt_op_scale_cols(ctx, h, &b->ls2);
    return mt_op_add(ctx, y, h);
}

void mt_nn_merge_block_coords(int64_t t, int64_t h, int64_t w, int64_t m, int64_t *rows, int64_t *cols) {
    int64_t n = 0;
    for (int64_t f = 0; f < t; f++)
        for (int64_t bh = 0; bh < h / m; bh++)
            for (int64_t bw = 0; bw < w / m; bw++)
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < m; j++, n++) {
                        rows[n] = bh * m + i;
                        cols[n] = bw * m + j;
                    }
}
