/* nn: linear, norm, MLP blocks and rotary tables. */
#include "nn/nn.h"


mt_linear mt_linear_rows(const mt_linear *l, int64_t r0, int64_t n) {
    mt_linear s = *l;
    s.lora = NULL;
    s.w.shape[0] = n;
    /* a quantized row is whole blocks: its bytes come from the block size, not an element size */
    s.w.data = (char *)l->w.data + (size_t)r0 * mt_dtype_row_bytes(l->w.dtype, l->w.stride[0]);
    if (l->b.data) {
        s.b.shape[0] = n;
        s.b.data = (float *)l->b.data + r0;
    }
    return s;
}

/* The layer's bias, or NULL when it has none. */
static const mt_tensor *bias_of(const mt_linear *l) { return l->b.data ? &l->b : NULL; }

mt_tensor *mt_nn_linear(mt_ctx *ctx, const mt_tensor *x, const mt_linear *l) {
    mt_tensor *y = mt_op_linear(ctx, x, &l->w, bias_of(l));
    const mt_lora *a = l->lora;
    if (!a) return y;
    /* dropout only while training: evaluation and generation use the whole adapter */
    const mt_tensor *in = a->dropout > 0.0f && ctx->tape ? mt_op_dropout(ctx, x, a->dropout, a->seed) : x;
    mt_tensor *low = mt_op_linear(ctx, mt_op_linear(ctx, in, &a->a, NULL), &a->b, NULL);
    return mt_op_add(ctx, y, mt_op_scale(ctx, low, a->scale));
}

mt_tensor *mt_nn_norm(mt_ctx *ctx, const mt_tensor *x, const mt_norm *n) {
    if (n->b.data) return mt_op_layer_norm(ctx, x, &n->w, &n->b, n->eps);
    return mt_op_rms_norm(ctx, x, &n->w, n->eps);
}

mt_tensor *mt_nn_gated_mlp(mt_ctx *ctx, const mt_tensor *x, const mt_linear *gate, const mt_linear *up,
                           const mt_linear *down, mt_act act) {
    /* gate and up in one pass (mt_op_gated_linear); adapters take the ops one by one */
    mt_tensor *h = !gate->lora && !up->lora
                       ? mt_op_gated_linear(ctx, x, &gate->w, bias_of(gate), &up->w, bias_of(up), act)
                       : mt_op_gated_act(ctx, mt_nn_linear(ctx, x, gate), mt_nn_linear(ctx, x, up), act);
    return mt_nn_linear(ctx, h, down);
}

mt_tensor *mt_nn_mlp(mt_ctx *ctx, const mt_tensor *x, const mt_linear *fc1, const mt_linear *fc2, mt_act act) {
    return mt_nn_linear(ctx, mt_op_act(ctx, mt_nn_linear(ctx, x, fc1), act), fc2);
}
